//! Every way a proxy can fail, one row each, against a raw python3 proxy
//! (`payauth_testkit::proxy`): a refusal the proxy will repeat (our
//! credentials, its policy, a server that is no proxy of its scheme) is
//! `ErrorKind::Proxy`, not transient, and one it may not (it could not
//! reach the provider, it closed the connection, it is down) a transient
//! `Transport` error. Every error names where the proxy was set and never
//! its credentials.

use payauth::core::{Environment, ErrorKind, Secret};
use payauth::mypos::{Mypos, MyposSettings};
use payauth_sandbox::defaults;
use payauth_testkit::proxy::ScriptedProxy;

/// One failure: the proxy's mode (`None`: nothing listening), its URL's
/// scheme and userinfo, the kind and transience expected, and words the
/// error must say.
struct Row {
    mode: Option<&'static str>,
    scheme: &'static str,
    userinfo: &'static str,
    kind: ErrorKind,
    says: &'static str,
}

const CREDENTIALS: &str = "agent:pw-CANARY@";

const fn row(
    mode: Option<&'static str>,
    scheme: &'static str,
    userinfo: &'static str,
    kind: ErrorKind,
    says: &'static str,
) -> Row {
    Row {
        mode,
        scheme,
        userinfo,
        kind,
        says,
    }
}

const ROWS: &[Row] = &[
    // HTTP CONNECT.
    row(
        None,
        "http",
        CREDENTIALS,
        ErrorKind::Transport,
        "error sending request",
    ),
    row(
        Some("http:407"),
        "http",
        CREDENTIALS,
        ErrorKind::Proxy,
        "refused the user name and password in its URL (HTTP 407",
    ),
    row(
        Some("http:407"),
        "http",
        "",
        ErrorKind::Proxy,
        "requires a user name and password, and its URL has none",
    ),
    row(
        Some("http:403"),
        "http",
        CREDENTIALS,
        ErrorKind::Proxy,
        "refused to open a tunnel to the provider (HTTP 403)",
    ),
    row(Some("http:400"), "http", "", ErrorKind::Proxy, "(HTTP 400)"),
    row(
        Some("http:502"),
        "http",
        CREDENTIALS,
        ErrorKind::Transport,
        "could not open a tunnel to the provider (HTTP 502)",
    ),
    row(
        Some("http:503"),
        "http",
        "",
        ErrorKind::Transport,
        "(HTTP 503)",
    ),
    row(
        Some("http:504"),
        "http",
        "",
        ErrorKind::Transport,
        "(HTTP 504)",
    ),
    row(
        Some("http:garbage"),
        "http",
        CREDENTIALS,
        ErrorKind::Proxy,
        "no HTTP status line",
    ),
    row(
        Some("http:close"),
        "http",
        CREDENTIALS,
        ErrorKind::Transport,
        "error sending request",
    ),
    // SOCKS5 (the proxy resolves the provider's name).
    row(
        None,
        "socks5h",
        CREDENTIALS,
        ErrorKind::Transport,
        "error sending request",
    ),
    row(
        Some("socks:auth-refused"),
        "socks5h",
        CREDENTIALS,
        ErrorKind::Proxy,
        "refused the user name and password in its URL (SOCKS5)",
    ),
    row(
        Some("socks:none-acceptable"),
        "socks5h",
        CREDENTIALS,
        ErrorKind::Proxy,
        "accepts none of the authentication methods offered",
    ),
    row(
        Some("socks:none-acceptable"),
        "socks5h",
        "",
        ErrorKind::Proxy,
        "accepts none of the authentication methods offered",
    ),
    row(
        Some("socks:wants-password"),
        "socks5h",
        "",
        ErrorKind::Proxy,
        "chose an authentication method payauth did not offer",
    ),
    row(
        Some("socks:1"),
        "socks5h",
        CREDENTIALS,
        ErrorKind::Transport,
        "general server failure",
    ),
    row(
        Some("socks:2"),
        "socks5h",
        CREDENTIALS,
        ErrorKind::Proxy,
        "does not allow a connection to the provider",
    ),
    row(
        Some("socks:3"),
        "socks5h",
        "",
        ErrorKind::Transport,
        "network unreachable",
    ),
    row(
        Some("socks:4"),
        "socks5h",
        "",
        ErrorKind::Transport,
        "host unreachable",
    ),
    row(
        Some("socks:5"),
        "socks5h",
        "",
        ErrorKind::Transport,
        "connection refused",
    ),
    row(
        Some("socks:6"),
        "socks5h",
        "",
        ErrorKind::Transport,
        "ttl expired",
    ),
    row(
        Some("socks:7"),
        "socks5h",
        "",
        ErrorKind::Proxy,
        "command not supported",
    ),
    row(
        Some("socks:8"),
        "socks5h",
        "",
        ErrorKind::Proxy,
        "address type not supported",
    ),
    row(
        Some("socks:garbage"),
        "socks5h",
        CREDENTIALS,
        ErrorKind::Proxy,
        "no SOCKS5 reply",
    ),
    row(
        Some("socks:close"),
        "socks5h",
        CREDENTIALS,
        ErrorKind::Transport,
        "error sending request",
    ),
];

#[tokio::test]
async fn every_proxy_failure_is_proxy_when_it_will_be_repeated_and_transient_transport_when_not() {
    let mut wrong = Vec::new();
    for row in ROWS {
        let proxy = row.mode.map(ScriptedProxy::start);
        let port = proxy
            .as_ref()
            .map_or_else(payauth_testkit::proxy::closed_port, ScriptedProxy::port);
        let url = format!("{}://{}127.0.0.1:{port}", row.scheme, row.userinfo);
        let http = payauth::core::http::client_builder()
            .proxy(url)
            .build()
            .unwrap();
        let settings = MyposSettings::new(
            defaults::MYPOS_CLIENT_ID,
            Secret::new(defaults::MYPOS_CLIENT_SECRET),
            Environment::Custom("https://provider.invalid".to_owned()),
        );
        let name = format!("{} {:?} {:?}", row.scheme, row.mode, row.userinfo);
        let Err(error) = Mypos::new(&settings, &http).unwrap().fetch_token().await else {
            wrong.push(format!("{name}: a token through a failing proxy"));
            continue;
        };
        let shown = format!("{error} | {error:?}");
        let transient = row.kind == ErrorKind::Transport;
        if error.kind() != row.kind || error.is_transient() != transient || error.is_permanent() {
            wrong.push(format!(
                "{name}: {:?} (transient {}, permanent {}), expected {:?}: {error}",
                error.kind(),
                error.is_transient(),
                error.is_permanent(),
                row.kind
            ));
        }
        if !error.to_string().contains(row.says) {
            wrong.push(format!("{name}: does not say {:?}: {error}", row.says));
        }
        if row.kind == ErrorKind::Proxy
            && !error
                .to_string()
                .contains("the proxy given to HttpClientBuilder::proxy")
        {
            wrong.push(format!("{name}: names no proxy setting: {error}"));
        }
        // The password, raw or in the Basic header's base64.
        for secret in ["pw-CANARY", "cHctQ0FOQVJZ", "YWdlbnQ6cHctQ0FOQVJZ"] {
            if shown.contains(secret) {
                wrong.push(format!("{name}: shows {secret}: {shown}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
