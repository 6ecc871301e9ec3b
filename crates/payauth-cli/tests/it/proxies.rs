//! A proxy that refuses: `payauth token` through a raw python3 proxy
//! (`payauth_testkit::proxy`) set by `HTTPS_PROXY` or `ALL_PROXY`. A
//! refusal it will repeat (our credentials) exits 1 naming the variable,
//! never the password; one it may not (an early close) exits 75.

use payauth_testkit::proxy::ScriptedProxy;

use crate::common::mypos;

#[test]
fn a_proxy_refusing_its_credentials_exits_1_naming_the_variable_and_an_early_close_exits_75() {
    // (variable, scheme, proxy mode, exit status, words on stderr)
    let cases = [
        (
            "HTTPS_PROXY",
            "http",
            "http:407",
            1,
            "refused the user name and password in its URL (HTTP 407",
        ),
        (
            "https_proxy",
            "http",
            "http:403",
            1,
            "refused to open a tunnel to the provider (HTTP 403)",
        ),
        (
            "ALL_PROXY",
            "socks5h",
            "socks:auth-refused",
            1,
            "refused the user name and password in its URL (SOCKS5)",
        ),
        (
            "HTTPS_PROXY",
            "http",
            "http:close",
            75,
            "unexpected end of file",
        ),
        (
            "HTTPS_PROXY",
            "http",
            "http:502",
            75,
            "could not open a tunnel to the provider (HTTP 502)",
        ),
    ];
    for (variable, scheme, mode, status, says) in cases {
        let proxy = ScriptedProxy::start(mode);
        let output = mypos("https://provider.invalid")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .env(
                variable,
                format!("{scheme}://agent:pw-CANARY@127.0.0.1:{}", proxy.port()),
            )
            .args(["token", "mypos"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(status), "{mode}: {stderr}");
        assert!(stderr.contains(says), "{mode}: {stderr}");
        if status == 1 {
            assert!(
                stderr.contains(&format!("the proxy in {variable}")),
                "{mode}: {stderr}"
            );
        }
        assert!(!stderr.contains("pw-CANARY"), "{mode}: {stderr}");
        assert!(!stderr.contains("cHctQ0FOQVJZ"), "{mode}: {stderr}");
    }
}
