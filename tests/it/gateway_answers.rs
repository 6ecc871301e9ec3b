//! Every provider flow against what gateways, proxies and broken servers
//! really send (a raw TCP server writes the bytes): whatever the body, the
//! caller gets a typed error that keeps the HTTP status, `Retry-After`, the
//! provider's code and the right kind, and every provider string in it is
//! printable and short.

use std::sync::Arc;
use std::time::Duration;

use payauth::core::{Environment, Error, ErrorKind, Secret, TokenSource};
use payauth::iyzico::pwi::{Pwi, PwiSettings};
use payauth::iyzico::terminal_login::{TerminalLogin, TerminalLoginSettings};
use payauth::mypos::{Mypos, MyposSettings};
use payauth::vakifbank::{VakifBank, VakifBankSettings};
use payauth_testkit::gateway::{RawGateway, answer, chunked, json};

const SENTINEL: &str = "SENTINEL-gateway-secret-77";

thread_local! {
    /// One client per test thread: building one costs milliseconds, and
    /// the answers close every connection, so none outlives its test.
    static HTTP: payauth::core::http::HttpClient = payauth::core::http::default_client().unwrap();
}

fn http() -> payauth::core::http::HttpClient {
    HTTP.with(Clone::clone)
}

fn mypos(base: &str) -> Mypos {
    let settings = MyposSettings::new(
        "client-1",
        Secret::new(SENTINEL),
        Environment::Custom(base.to_owned()),
    );
    Mypos::new(&settings, &http()).unwrap()
}

fn vakifbank(base: &str) -> VakifBank {
    let settings = VakifBankSettings::new(
        "client-1",
        Secret::new(SENTINEL),
        Environment::Custom(base.to_owned()),
    );
    VakifBank::new(&settings, &http()).unwrap()
}

/// Each flow's first request, as a token source.
fn flows(base: &str) -> Vec<(&'static str, Arc<dyn TokenSource>)> {
    let terminal = TerminalLoginSettings::new(
        "client-1",
        Secret::new(SENTINEL),
        "cashier",
        Secret::new(SENTINEL),
        Environment::Custom(base.to_owned()),
    );
    let pwi = PwiSettings::new(
        "api-key",
        Secret::new(SENTINEL),
        Environment::Custom(base.to_owned()),
    );
    vec![
        ("mypos", Arc::new(mypos(base)) as Arc<dyn TokenSource>),
        (
            "vakifbank",
            Arc::new(vakifbank(base).client_credentials(&["public"])),
        ),
        (
            "iyzico-terminal",
            Arc::new(TerminalLogin::new(&terminal, &http()).unwrap()),
        ),
        (
            "iyzico-pwi",
            Arc::new(
                Pwi::new(&pwi, &http())
                    .unwrap()
                    .access_token(Secret::new(SENTINEL), "member-1"),
            ),
        ),
    ]
}

/// What a caller must see.
struct Expect {
    kind: ErrorKind,
    status: Option<u16>,
    retry_after: Option<u64>,
}

fn expect(kind: ErrorKind, status: u16) -> Expect {
    Expect {
        kind,
        status: Some(status),
        retry_after: None,
    }
}

fn check(flow: &str, case: &str, error: &Error, expected: &Expect) {
    let shown = format!("{error} | {error:?}");
    assert_eq!(error.kind(), expected.kind, "{flow}/{case}: {shown}");
    assert_eq!(error.status(), expected.status, "{flow}/{case}: {shown}");
    assert_eq!(
        error.retry_after().map(|d| d.as_secs()),
        expected.retry_after,
        "{flow}/{case}: {shown}"
    );
    assert!(!shown.contains(SENTINEL), "{flow}/{case}: {shown}");
    assert!(
        !error.to_string().chars().any(char::is_control),
        "{flow}/{case}: {shown}"
    );
}

/// Refusals and outages as gateways send them, whatever the provider's
/// own body format.
fn gateway_answers() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let html = b"<html><head><title>503 Service Temporarily Unavailable</title></head><body>nginx</body></html>";
    vec![
        (
            "an empty 401 (Content-Length 0)",
            answer("401 Unauthorized", &[("content-length", b"0")], b""),
            expect(ErrorKind::Refused, 401),
        ),
        (
            "a 401 with only WWW-Authenticate",
            answer(
                "401 Unauthorized",
                &[
                    ("www-authenticate", b"Basic realm=\"api\""),
                    ("content-length", b"0"),
                ],
                b"",
            ),
            expect(ErrorKind::Refused, 401),
        ),
        (
            "a WAF's HTML 403",
            answer(
                "403 Forbidden",
                &[("content-type", b"text/html"), ("content-length", b"20")],
                b"<html>blocked</html>",
            ),
            expect(ErrorKind::Refused, 403),
        ),
        (
            "a load balancer's chunked HTML 503 with Retry-After",
            answer(
                "503 Service Unavailable",
                &[
                    ("content-type", b"text/html"),
                    ("retry-after", b"7"),
                    ("transfer-encoding", b"chunked"),
                ],
                &chunked(html, 16),
            ),
            Expect {
                kind: ErrorKind::Unavailable,
                status: Some(503),
                retry_after: Some(7),
            },
        ),
        (
            "a 429 with Retry-After as an HTTP date",
            answer(
                "429 Too Many Requests",
                &[
                    ("date", b"Wed, 21 Oct 2015 07:28:00 GMT"),
                    ("retry-after", b"Wed, 21 Oct 2015 07:30:00 GMT"),
                    ("content-length", b"0"),
                ],
                b"",
            ),
            Expect {
                kind: ErrorKind::RateLimited,
                status: Some(429),
                retry_after: Some(120),
            },
        ),
        (
            "a JSON array on 400",
            json("400 Bad Request", "[1,2,3]"),
            expect(ErrorKind::Provider, 400),
        ),
    ]
}

/// Answers no token endpoint should give: odd statuses, oversized, torn or
/// undecodable ones.
fn odd_answers() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let big_html = "<p>padding</p>".repeat(10_000);
    vec![
        (
            "a JSON string on 401",
            json("401 Unauthorized", r#""denied""#),
            expect(ErrorKind::Refused, 401),
        ),
        (
            "a 407 from a proxy",
            answer(
                "407 Proxy Authentication Required",
                &[
                    ("proxy-authenticate", b"Basic realm=\"proxy\""),
                    ("content-length", b"0"),
                ],
                b"",
            ),
            expect(ErrorKind::Provider, 407),
        ),
        (
            "a 418",
            answer("418 I'm a teapot", &[("content-length", b"5")], b"tea\r\n"),
            expect(ErrorKind::Provider, 418),
        ),
        (
            "a 302 to elsewhere",
            answer(
                "302 Found",
                &[
                    ("location", b"https://login.elsewhere.example/?next=token"),
                    ("content-length", b"0"),
                ],
                b"",
            ),
            expect(ErrorKind::Provider, 302),
        ),
        (
            "a 503 whose HTML page is larger than the cap",
            answer(
                "503 Service Unavailable",
                &[
                    ("content-type", b"text/html"),
                    ("content-length", big_html.len().to_string().as_bytes()),
                ],
                big_html.as_bytes(),
            ),
            expect(ErrorKind::Unavailable, 503),
        ),
        (
            "a chunked 400 larger than the cap",
            answer(
                "400 Bad Request",
                &[("transfer-encoding", b"chunked")],
                &chunked(big_html.as_bytes(), 4096),
            ),
            expect(ErrorKind::Provider, 400),
        ),
        (
            "a 401 whose body breaks off",
            answer(
                "401 Unauthorized",
                &[
                    ("content-type", b"application/json"),
                    ("content-length", b"100"),
                ],
                br#"{"error":"inv"#,
            ),
            expect(ErrorKind::Refused, 401),
        ),
        (
            "an empty 401 posing as payauth's own kept body",
            answer(
                "401 Unauthorized",
                &[
                    // base64 of {"error":"invalid_grant"}
                    (
                        "x-payauth-error-body",
                        b"read:eyJlcnJvciI6ImludmFsaWRfZ3JhbnQifQ==",
                    ),
                    ("content-length", b"0"),
                ],
                b"",
            ),
            expect(ErrorKind::Refused, 401),
        ),
        (
            "a 400 with non-UTF-8 header values",
            answer(
                "400 Bad Request",
                &[
                    ("content-type", b"text/\xff\xfeplain"),
                    ("x-ca-err", b"300\xff3201"),
                    ("retry-after", b"\xff"),
                    ("content-length", b"3"),
                ],
                b"\xff\xfe\x00",
            ),
            expect(ErrorKind::Provider, 400),
        ),
    ]
}

#[tokio::test]
async fn every_flow_keeps_status_headers_and_kind_whatever_the_gateway_sends() {
    for (case, bytes, expected) in gateway_answers().into_iter().chain(odd_answers()) {
        let gateway = RawGateway::answering(bytes);
        for (flow, source) in flows(&gateway.base_url()) {
            let error = source.fetch(None).await.unwrap_err();
            check(flow, case, &error, &expected);
        }
    }
}

#[tokio::test]
async fn an_empty_401_on_a_token_endpoint_is_a_refusal_without_a_reason_not_a_malformed_answer() {
    let gateway =
        RawGateway::answering(answer("401 Unauthorized", &[("content-length", b"0")], b""));
    let base = gateway.base_url();
    for (flow, error) in [
        ("mypos", mypos(&base).fetch_token().await.unwrap_err()),
        (
            "vakifbank",
            vakifbank(&base)
                .client_credentials(&["public"])
                .fetch(None)
                .await
                .unwrap_err(),
        ),
    ] {
        check(flow, "empty 401", &error, &expect(ErrorKind::Refused, 401));
        assert!(!error.is_permanent(), "{flow}: {error}");
        assert!(!error.is_transient(), "{flow}: {error}");
    }
}

#[tokio::test]
async fn an_empty_401_on_mypos_revoke_keeps_its_status() {
    let gateway =
        RawGateway::answering(answer("401 Unauthorized", &[("content-length", b"0")], b""));
    let error = mypos(&gateway.base_url())
        .revoke(&Secret::new("t"))
        .await
        .unwrap_err();
    check(
        "mypos revoke",
        "empty 401",
        &error,
        &expect(ErrorKind::Refused, 401),
    );
    assert_eq!(gateway.hits(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn an_html_503_on_mypos_revoke_is_retried_per_retry_after() {
    let html = b"<html><body><h1>503 Service Unavailable</h1></body></html>";
    let length = html.len().to_string();
    let unavailable = answer(
        "503 Service Unavailable",
        &[
            ("content-type", b"text/html"),
            ("retry-after", b"0"),
            ("content-length", length.as_bytes()),
        ],
        html,
    );
    let gateway = RawGateway::answering(unavailable.clone());
    let error = mypos(&gateway.base_url())
        .revoke(&Secret::new("t"))
        .await
        .unwrap_err();
    assert_eq!(gateway.hits(), 3, "one try and two retries");
    check(
        "mypos revoke",
        "HTML 503",
        &error,
        &Expect {
            kind: ErrorKind::Unavailable,
            status: Some(503),
            retry_after: Some(0),
        },
    );

    let gateway = RawGateway::sequence(vec![
        unavailable,
        answer("200 OK", &[("content-length", b"0")], b""),
    ]);
    mypos(&gateway.base_url())
        .revoke(&Secret::new("t"))
        .await
        .expect("the retry after the 503 succeeds");
    assert_eq!(gateway.hits(), 2);
}

#[tokio::test]
async fn a_layer7_400_with_only_x_ca_err_keeps_the_code_and_the_status() {
    let gateway = RawGateway::answering(answer(
        "400 Bad Request",
        &[("x-ca-err", b"3003201"), ("content-length", b"0")],
        b"",
    ));
    let error = vakifbank(&gateway.base_url())
        .client_credentials(&["public"])
        .fetch(None)
        .await
        .unwrap_err();
    check(
        "vakifbank",
        "x-ca-err only",
        &error,
        &expect(ErrorKind::Provider, 400),
    );
    assert_eq!(error.provider_code(), Some("3003201"));
    assert!(error.to_string().contains("3003201"), "{error}");
}

#[tokio::test]
async fn an_oauth_code_on_any_4xx_is_read_even_where_the_spec_declares_none() {
    // 403 and 422 are not declared in any spec: the body is read all the same.
    for (status_line, kind) in [
        ("403 Forbidden", ErrorKind::AccessDenied),
        ("422 Unprocessable Entity", ErrorKind::InvalidRequest),
    ] {
        let code = if kind == ErrorKind::AccessDenied {
            "access_denied"
        } else {
            "invalid_request"
        };
        let body = format!(r#"{{"error":"{code}","error_description":"said the server"}}"#);
        let gateway = RawGateway::answering(json(status_line, &body));
        let error = mypos(&gateway.base_url()).fetch_token().await.unwrap_err();
        assert_eq!(error.kind(), kind, "{status_line}: {error}");
        assert_eq!(error.description(), Some("said the server"));
        assert_eq!(error.provider_code(), Some(code));
    }
}

#[tokio::test]
async fn a_wrongly_typed_field_does_not_hide_the_others() {
    let gateway = RawGateway::answering(json(
        "400 Bad Request",
        r#"{"error":"invalid_grant","error_description":5,"extra":[1]}"#,
    ));
    let error = vakifbank(&gateway.base_url())
        .client_credentials(&["public"])
        .fetch(None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidGrant, "{error}");
    assert_eq!(error.status(), Some(400));
}

#[tokio::test]
async fn control_characters_and_huge_codes_from_a_provider_never_reach_the_message_whole() {
    let long = "x".repeat(5 * 1024);
    let body = format!(
        r#"{{"error":"bad\u001b[31m\nINFO forged line {long}","error_description":"one\r\ntwo\u202eevil\u200b"}}"#
    );
    let gateway = RawGateway::answering(json("400 Bad Request", &body));
    for (flow, source) in flows(&gateway.base_url()).into_iter().take(2) {
        let error = source.fetch(None).await.unwrap_err();
        let shown = error.to_string();
        assert!(
            !shown.contains('\n') && !shown.contains('\u{1b}'),
            "{flow}: {shown:?}"
        );
        assert!(
            !shown.contains('\u{202e}') && !shown.contains('\u{200b}'),
            "{flow}: {shown:?}"
        );
        assert!(shown.len() < 1024, "{flow}: {} bytes", shown.len());
        assert_eq!(error.status(), Some(400));
    }
}

#[tokio::test]
async fn a_200_that_says_failure_is_a_typed_error_never_a_token() {
    let gateway = RawGateway::answering(json("200 OK", r#"{"error":"invalid_grant"}"#));
    for (flow, source) in flows(&gateway.base_url()) {
        let error = source.fetch(None).await.unwrap_err();
        assert!(!error.is_permanent(), "{flow}: {error}");
        assert!(!format!("{error:?}").contains(SENTINEL), "{flow}");
    }
}

#[tokio::test]
async fn a_pwi_envelope_follows_the_same_rule_as_an_http_status() {
    for (envelope, kind) in [
        // A gateway's numeric status in the envelope decides first.
        (
            r#"{"status":503,"errorCode":"1000","errorMessage":"busy"}"#,
            ErrorKind::Unavailable,
        ),
        // A code payauth does not know is no verdict on the keys.
        (
            r#"{"status":401,"errorCode":"5","errorMessage":"unauthorized"}"#,
            ErrorKind::Refused,
        ),
        (
            r#"{"status":"failure","errorCode":"1001","errorMessage":"api key"}"#,
            ErrorKind::InvalidClient,
        ),
        (
            r#"{"status":"failure","errorCode":"77","errorMessage":"other"}"#,
            ErrorKind::Provider,
        ),
    ] {
        let gateway = RawGateway::answering(json("200 OK", envelope));
        let (_, source) = flows(&gateway.base_url()).pop().unwrap();
        let error = source.fetch(None).await.unwrap_err();
        assert_eq!(error.kind(), kind, "{envelope}: {error}");
    }
}

#[test]
fn a_callback_error_payauth_does_not_know_is_no_verdict_and_prints_clean() {
    let bank = vakifbank("https://apigw.example");
    let pending = bank
        .authorize_url(
            payauth::vakifbank::Channel::Retail,
            &["account"],
            "https://app.example/cb",
            false,
        )
        .unwrap();
    let state = pending.state.expose_secret().to_owned();
    let error = pending
        .callback(&format!(
            "https://app.example/cb?error=login_required%0AINFO%20forged&error_description=%1B%5B2J&state={state}"
        ))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Provider, "{error}");
    assert!(!error.is_permanent());
    assert_eq!(error.provider_code(), Some("login_required INFO forged"));
    assert!(
        !error.to_string().chars().any(char::is_control),
        "{error:?}"
    );
    let denied = pending
        .callback(&format!("?error=access_denied&state={state}"))
        .unwrap_err();
    assert_eq!(denied.kind(), ErrorKind::AccessDenied);
}

#[tokio::test]
async fn a_waf_403_on_the_terminal_refresh_keeps_serving_the_valid_token() {
    use payauth::core::{ManualClock, TokenCache};
    let clock = Arc::new(ManualClock::new());
    let gateway = RawGateway::sequence(vec![
        json("200 OK", r#"{"code":"auth-code"}"#),
        json(
            "200 OK",
            r#"{"access_token":"first","refresh_token":"r1","token_type":"Bearer","expires_in":100}"#,
        ),
        answer(
            "403 Forbidden",
            &[("content-type", b"text/html"), ("content-length", b"20")],
            b"<html>blocked</html>",
        ),
    ]);
    let config = TerminalLoginSettings::new(
        "client-1",
        Secret::new(SENTINEL),
        "cashier",
        Secret::new(SENTINEL),
        Environment::Custom(gateway.base_url()),
    );
    let login = TerminalLogin::new(&config, &http())
        .unwrap()
        .with_clock(Arc::clone(&clock) as _);
    let cache = TokenCache::builder(login)
        .clock(Arc::clone(&clock) as _)
        .refresh_margin(Duration::from_secs(30))
        .jitter(0.0)
        .build();
    let first = cache.token().await.unwrap();
    clock.advance(Duration::from_secs(80));
    assert!(Arc::ptr_eq(&first, &cache.token().await.unwrap()));
    for _ in 0..500 {
        if gateway.hits() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gateway.hits() >= 3, "the refresh met the WAF");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still = cache
        .token()
        .await
        .expect("the valid token is still served");
    assert!(Arc::ptr_eq(&first, &still));
    clock.advance(Duration::from_secs(30));
    let error = cache.token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Refused, "{error}");
    assert_eq!(error.status(), Some(403));
}

#[tokio::test]
async fn a_granted_scope_with_control_characters_is_cleaned() {
    let gateway = RawGateway::answering(json(
        "200 OK",
        r#"{"access_token":"t","token_type":"Bearer","expires_in":3600,"scope":"webhooks\u001b[2J\nINFO forged\u202e"}"#,
    ));
    let token = mypos(&gateway.base_url()).fetch_token().await.unwrap();
    assert_eq!(token.scope(), Some("webhooks [2J INFO forged"));
}
