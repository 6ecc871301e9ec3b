//! Helpers shared by the sandbox tests.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use payauth_sandbox::{Endpoint, RunningSandbox, Sandbox};
use serde_json::Value;

/// A client that does not follow redirects (token endpoints must not, and
/// the VakıfBank authorize tests read the `Location`). The sandbox speaks
/// plain HTTP and payauth turns on no TLS in reqwest: no root certificates
/// to load, which keeps building a client (one per request here, for fresh
/// connections) cheap.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A sandbox with the defaults.
pub(crate) async fn sandbox() -> RunningSandbox {
    Sandbox::builder().start().await.unwrap()
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
pub(crate) fn basic(id: &str, secret: &str) -> String {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", encode(id), encode(secret)))
    )
}

/// A form body.
pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

/// POSTs a form to an endpoint, with an `Authorization` header if given.
pub(crate) async fn post_form(
    sandbox: &RunningSandbox,
    endpoint: Endpoint,
    authorization: Option<&str>,
    pairs: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = client()
        .post(sandbox.url(endpoint))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    request.send().await.unwrap()
}

/// The status and JSON body of a response.
pub(crate) async fn status_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json().await.unwrap();
    (status, body)
}

/// The claims of a JWT-shaped token.
pub(crate) fn jwt_claims(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}
