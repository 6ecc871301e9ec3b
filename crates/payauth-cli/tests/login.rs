//! `payauth login vakifbank`, with the sandbox's browser helper playing the
//! browser: it opens the printed URL on the sandbox, follows the redirect
//! to the CLI's loopback listener, and checks the tokens landed in the file
//! store under the key a config file would read.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use payauth_sandbox::{Sandbox, defaults};

#[test]
fn login_completes_through_the_loopback_redirect_and_stores_the_tokens() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sandbox = runtime.block_on(Sandbox::builder().start()).unwrap();
    let store = tempfile::tempdir().unwrap();

    let mut child = Command::new(assert_cmd::cargo::cargo_bin("payauth"))
        .args(["--json", "login", "vakifbank", "--scope", "account"])
        .env("PAYAUTH_ENVIRONMENT", sandbox.base_url())
        .env("PAYAUTH_VAKIFBANK_CLIENT_ID", defaults::VAKIFBANK_CLIENT_ID)
        .env(
            "PAYAUTH_VAKIFBANK_CLIENT_SECRET",
            defaults::VAKIFBANK_CLIENT_SECRET,
        )
        // A directory of its own: the store refuses one open to other users.
        .env("PAYAUTH_STORE_DIR", store.path().join("tokens"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut url = String::new();
    while !url.starts_with("http") {
        url.clear();
        assert!(
            stdout.read_line(&mut url).unwrap() > 0,
            "the CLI printed no URL"
        );
    }

    // The browser: the bank's page redirects back to the CLI's listener.
    runtime.block_on(async {
        let http = payauth_core::http::default_client().unwrap();
        let back = payauth_sandbox::browser::authorize(&http, url.trim())
            .await
            .unwrap();
        assert!(back.starts_with("http://127.0.0.1:"), "{back}");
        let done = http
            .execute(http.requests().get(&back).build().unwrap())
            .await
            .unwrap();
        assert_eq!(done.status(), 200);
    });

    assert!(child.wait().unwrap().success());
    let mut result = String::new();
    stdout.read_line(&mut result).unwrap();
    let json: serde_json::Value = serde_json::from_str(&result).unwrap();
    assert_eq!(json["logged_in"], true);
    assert_eq!(json["has_refresh_token"], true);
    // The key a config file's `flow = "authorization_code"` source with
    // `customer = "default"` reads: the one scheme, environment included.
    assert_eq!(
        json["store_key"],
        format!(
            "vakifbank/{}/{}/authorization_code/retail/default/account",
            sandbox.base_url().replace('/', "%2F"),
            defaults::VAKIFBANK_CLIENT_ID
        )
    );

    let files: Vec<_> = std::fs::read_dir(store.path().join("tokens"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let stored = std::fs::read_to_string(&files[0]).unwrap();
    assert!(stored.contains("refresh_token"));
}
