//! `BearerLayer` on a tower service standing in for an API: headers
//! attached, one renewal and one retry on a 401, a second 401 returned.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use payauth::core::{
    AccessToken, BoxFuture, Error, Issued, Secret, SystemClock, TokenCache, TokenSource,
};
use payauth::tower::BearerLayer;
use tower::{Layer as _, ServiceExt as _};

#[derive(Default)]
struct Counting(AtomicUsize);

impl TokenSource for Counting {
    fn fetch<'a>(
        &'a self,
        _: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async move {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            AccessToken::new(
                Secret::new(format!("t{n}")),
                "Bearer",
                Issued::now(&SystemClock),
                Duration::from_secs(3600),
            )
        })
    }
}

/// An API that accepts only the tokens in `accepted`, counting calls.
fn api(
    accepted: &'static [&'static str],
    calls: Arc<AtomicUsize>,
) -> impl tower::Service<
    http::Request<String>,
    Response = http::Response<String>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(move |request: http::Request<String>| {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            let auth = request
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let ok = accepted.iter().any(|t| auth == format!("Bearer {t}"))
                && request.headers().contains_key("api-key");
            let status = if ok { 200 } else { 401 };
            Ok(http::Response::builder()
                .status(status)
                .body(request.into_body())
                .unwrap())
        }
    })
}

fn layer(source: &Arc<Counting>) -> BearerLayer {
    BearerLayer::new(TokenCache::builder(Arc::clone(source) as Arc<dyn TokenSource>).build())
        .with_headers(|_, headers| {
            headers.insert("api-key", "client-1".parse().unwrap());
            Ok(())
        })
}

#[tokio::test]
async fn the_token_and_extras_are_attached() {
    let (source, calls) = (Arc::new(Counting::default()), Arc::new(AtomicUsize::new(0)));
    let service = layer(&source).layer(api(&["t1"], Arc::clone(&calls)));
    let response = service
        .oneshot(http::Request::new("body".to_owned()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_401_renews_once_and_replays_the_same_body_once() {
    let (source, calls) = (Arc::new(Counting::default()), Arc::new(AtomicUsize::new(0)));
    let service = layer(&source).layer(api(&["t2"], Arc::clone(&calls)));
    let response = service
        .oneshot(http::Request::new("amount=5".to_owned()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.into_body(), "amount=5");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(source.0.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_second_401_goes_back_to_the_caller() {
    let (source, calls) = (Arc::new(Counting::default()), Arc::new(AtomicUsize::new(0)));
    let service = layer(&source).layer(api(&[], Arc::clone(&calls)));
    let response = service
        .oneshot(http::Request::new(String::new()))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one try and one retry, no more"
    );
}

#[tokio::test]
async fn an_api_that_rejects_every_token_gets_one_renewal_not_a_fetch_per_request() {
    let (source, calls) = (Arc::new(Counting::default()), Arc::new(AtomicUsize::new(0)));
    let service = layer(&source).layer(api(&[], Arc::clone(&calls)));
    for _ in 0..50 {
        let response = service
            .clone()
            .oneshot(http::Request::new(String::new()))
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    assert_eq!(
        source.0.load(Ordering::SeqCst),
        2,
        "the first token and one renewal in the backoff window"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        51,
        "one replay, then each 401 as is"
    );
}
