//! Errors as the cache's callers see them, over real HTTP to a raw TCP
//! gateway: a refusal without a reason never displaces a valid token, and
//! a transport failure keeps its cause (refused, DNS, TLS) in the message
//! every waiter gets, without the URL.

use std::sync::Arc;
use std::time::Duration;

use payauth_core::http::{self, MAX_BODY};
use payauth_core::oauth2::{TokenFields, read_token};
use payauth_core::wire::NumberOrString;
use payauth_core::{
    AccessToken, BoxFuture, Error, ErrorKind, Issued, ManualClock, Secret, TokenCache, TokenSource,
};
use payauth_testkit::gateway::{RawGateway, answer, json};
use progenitor_client::{Error as Generated, ResponseValue};

const SENTINEL: &str = "SENTINEL-errors-77";

#[derive(serde::Deserialize)]
struct TokenBody {
    access_token: Option<String>,
    expires_in: Option<i64>,
}

#[derive(serde::Deserialize)]
struct OAuthBody {
    error: Option<String>,
    error_description: Option<String>,
}

payauth_core::oauth_error_body!(OAuthBody);

/// A token source that calls `url` the way a generated client does: the
/// capped exec hook, 200 decoded as the token, 400 and 401 as declared
/// error bodies, anything else unexpected.
struct Endpoint {
    url: String,
    http: payauth_core::http::HttpClient,
    clock: Arc<ManualClock>,
}

impl Endpoint {
    fn new(url: impl Into<String>, clock: &Arc<ManualClock>) -> Self {
        Self {
            url: url.into(),
            http: http::default_client().unwrap(),
            clock: Arc::clone(clock),
        }
    }

    async fn call(&self) -> Result<ResponseValue<TokenBody>, Generated<OAuthBody>> {
        let request = self
            .http
            .requests()
            .post(&self.url)
            .body(format!("client_secret={SENTINEL}"))
            .build()?;
        let response = http::execute_capped(&self.http, request, MAX_BODY).await?;
        match response.status().as_u16() {
            200 => ResponseValue::from_response(response).await,
            400 | 401 => Err(Generated::ErrorResponse(
                ResponseValue::from_response(response).await?,
            )),
            _ => Err(Generated::UnexpectedResponse(response)),
        }
    }
}

impl TokenSource for Endpoint {
    fn fetch<'a>(
        &'a self,
        _previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async move {
            let issued = Issued::now(self.clock.as_ref());
            let body = self
                .call()
                .await
                .map_err(|e| http::from_generated(e, None))?
                .into_inner();
            let fields = TokenFields {
                access_token: body.access_token.map(Secret::new),
                expires_in: body.expires_in.map(NumberOrString::Number),
                ..TokenFields::default()
            };
            read_token(fields, issued, Duration::from_secs(60))
        })
    }
}

fn cache(source: Endpoint, clock: &Arc<ManualClock>) -> TokenCache {
    TokenCache::builder(source)
        .clock(Arc::clone(clock) as _)
        .refresh_margin(Duration::from_secs(30))
        .jitter(0.0)
        .build()
}

fn token_answer() -> Vec<u8> {
    json("200 OK", r#"{"access_token":"first","expires_in":100}"#)
}

/// A cache holding a 100 s token whose refresh, 80 s in, meets `refusal`;
/// returns once the gateway has seen the refresh and it has had time to
/// land.
async fn refresh_meets(
    refusal: Vec<u8>,
) -> (TokenCache, Arc<AccessToken>, RawGateway, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let gateway = RawGateway::sequence(vec![token_answer(), refusal]);
    let cache = cache(Endpoint::new(gateway.base_url(), &clock), &clock);
    let first = cache.token().await.unwrap();
    clock.advance(Duration::from_secs(80));
    let served = cache.token().await.unwrap();
    assert!(
        Arc::ptr_eq(&first, &served),
        "inside the margin, the token is served"
    );
    for _ in 0..500 {
        if gateway.hits() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(gateway.hits(), 2, "the refresh went out");
    tokio::time::sleep(Duration::from_millis(300)).await;
    (cache, first, gateway, clock)
}

fn refusals() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "a bare 403",
            answer("403 Forbidden", &[("content-length", b"0")], b""),
        ),
        (
            "an empty 401",
            answer("401 Unauthorized", &[("content-length", b"0")], b""),
        ),
        (
            "a WAF's HTML 403",
            answer(
                "403 Forbidden",
                &[("content-type", b"text/html"), ("content-length", b"20")],
                b"<html>blocked</html>",
            ),
        ),
        (
            "a 401 with a code payauth does not know",
            json("401 Unauthorized", r#"{"error":"invalid_token"}"#),
        ),
    ]
}

#[tokio::test]
async fn a_bare_401_or_403_during_a_refresh_never_displaces_a_valid_token() {
    for (case, refusal) in refusals() {
        let (cache, first, gateway, clock) = refresh_meets(refusal).await;
        let still = cache
            .token()
            .await
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert!(
            Arc::ptr_eq(&first, &still),
            "{case}: the valid token was kept"
        );
        assert!(
            cache.peek().is_some_and(|t| Arc::ptr_eq(&t, &first)),
            "{case}"
        );

        // Past the backoff, still valid: tried again, token still served.
        clock.advance(Duration::from_secs(5));
        let again = cache.token().await.unwrap();
        assert!(Arc::ptr_eq(&first, &again), "{case}");
        for _ in 0..500 {
            if gateway.hits() >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(gateway.hits(), 3, "{case}: retried after the backoff");

        // Past expiry: the refusal, reported with its status, never the stale token.
        clock.advance(Duration::from_secs(60));
        let error = cache.token().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Refused, "{case}: {error}");
        assert!(
            error.status() == Some(401) || error.status() == Some(403),
            "{case}"
        );
        assert!(!error.is_permanent() && !error.is_transient(), "{case}");
    }
}

#[tokio::test]
async fn a_401_that_says_invalid_client_drops_the_token_at_once() {
    let (cache, _, _, _) = refresh_meets(json(
        "401 Unauthorized",
        r#"{"error":"invalid_client","error_description":"unknown client"}"#,
    ))
    .await;
    assert!(
        cache.peek().is_none(),
        "a verdict on the credentials drops the token"
    );
    let error = cache.token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidClient);
    assert!(error.is_permanent());
}

/// The error a cache gives two waiters for a fetch from `url`, as the
/// leader's own error and as the shared copy a later caller gets within
/// the failure backoff; both read the same.
async fn transport_error(url: String) -> String {
    let clock = Arc::new(ManualClock::new());
    let cache = cache(Endpoint::new(url, &clock), &clock);
    let (first, second) = tokio::join!(cache.token(), cache.token());
    let first = first.unwrap_err();
    let second = second.unwrap_err();
    let remembered = cache.token().await.unwrap_err();
    assert_eq!(first.kind(), ErrorKind::Transport, "{first}");
    assert!(first.is_transient());
    for other in [&second, &remembered] {
        assert_eq!(other.to_string(), first.to_string());
        assert_eq!(format!("{other:?}"), format!("{first:?}"));
    }
    let shown = format!("{first} {first:?}");
    assert!(!shown.contains(SENTINEL), "{shown}");
    first.to_string()
}

fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn a_refused_connection_says_so_to_every_waiter_without_the_url() {
    let shown = transport_error(format!("http://{}/{SENTINEL}?q={SENTINEL}", closed_port())).await;
    assert!(
        shown.to_lowercase().contains("connection refused"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_dns_failure_says_so_to_every_waiter_without_the_url() {
    let shown = transport_error(format!("http://{SENTINEL}.invalid/{SENTINEL}?q={SENTINEL}")).await;
    assert!(shown.to_lowercase().contains("dns"), "{shown}");
}

#[tokio::test]
async fn a_tls_failure_says_so_to_every_waiter_without_the_url() {
    let gateway = RawGateway::answering(b"HTTP/1.1 200 OK\r\n\r\nthis is no TLS".to_vec());
    let shown = transport_error(format!("{}/{SENTINEL}?q={SENTINEL}", gateway.https_url())).await;
    // Said in words whichever backend: OpenSSL's text ("wrong version
    // number") does not name TLS.
    assert!(
        shown.starts_with("transport error: the TLS handshake failed: error sending request: "),
        "{shown}"
    );
}

#[tokio::test]
async fn a_4xx_the_client_does_not_declare_still_has_its_body_read() {
    let clock = Arc::new(ManualClock::new());
    let gateway = RawGateway::answering(json(
        "403 Forbidden",
        r#"{"error":"access_denied","error_description":"not for you"}"#,
    ));
    let error = Endpoint::new(gateway.base_url(), &clock)
        .fetch(None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AccessDenied);
    assert_eq!(error.description(), Some("not for you"));
    assert_eq!(error.status(), Some(403));
}

#[test]
fn an_error_marked_transient_stays_transient_when_shared() {
    let error = payauth_core::Error::new(payauth_core::ErrorKind::Store);
    assert!(
        !error.is_transient(),
        "a store error is no outage by default"
    );
    let outage = error.with_transient();
    assert!(outage.is_transient() && !outage.is_permanent());
    assert!(outage.clone().is_transient(), "shared with every waiter");
}
