//! `BearerAuth` on a reqwest-middleware client, against an httpmock API:
//! headers attached, one renewal and one retry on a 401, a second 401
//! returned to the caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use httpmock::prelude::*;
use payauth::core::{
    AccessToken, BoxFuture, Error, Issued, Secret, SystemClock, TokenCache, TokenSource,
};
use payauth::middleware::BearerAuth;

/// Tokens `t1`, `t2`, … counted.
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

fn client(source: &Arc<Counting>, extras: bool) -> reqwest_middleware::ClientWithMiddleware {
    let cache = TokenCache::builder(Arc::clone(source) as Arc<dyn TokenSource>).build();
    let mut auth = BearerAuth::new(cache);
    if extras {
        auth = auth.with_headers(|_, headers| {
            headers.insert("api-key", "client-1".parse().unwrap());
            Ok(())
        });
    }
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(auth)
        .build()
}

#[tokio::test]
async fn the_token_and_provider_extras_are_attached() {
    let server = MockServer::start_async().await;
    let api = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/orders")
                .header("authorization", "Bearer t1")
                .header("api-key", "client-1");
            then.status(200);
        })
        .await;
    let source = Arc::new(Counting::default());
    let response = client(&source, true)
        .get(server.url("/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    api.assert_async().await;
}

#[tokio::test]
async fn a_401_renews_the_token_once_and_retries_once() {
    let server = MockServer::start_async().await;
    let rejected = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/payments")
                .header("authorization", "Bearer t1")
                .body("amount=5");
            then.status(401);
        })
        .await;
    let accepted = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/payments")
                .header("authorization", "Bearer t2")
                .body("amount=5");
            then.status(201);
        })
        .await;
    let source = Arc::new(Counting::default());
    let response = client(&source, false)
        .post(server.url("/payments"))
        .body("amount=5")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(source.0.load(Ordering::SeqCst), 2, "exactly one renewal");
    assert_eq!(rejected.calls_async().await, 1);
    assert_eq!(
        accepted.calls_async().await,
        1,
        "exactly one retry, same body"
    );
}

#[tokio::test]
async fn a_second_401_goes_back_to_the_caller() {
    let server = MockServer::start_async().await;
    let api = server
        .mock_async(|when, then| {
            when.method(GET).path("/orders");
            then.status(401);
        })
        .await;
    let source = Arc::new(Counting::default());
    let response = client(&source, false)
        .get(server.url("/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        api.calls_async().await,
        2,
        "the first try and one retry, no more"
    );
    assert_eq!(source.0.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_api_that_rejects_every_token_gets_one_renewal_not_a_fetch_per_request() {
    let server = MockServer::start_async().await;
    let api = server
        .mock_async(|when, then| {
            when.method(GET).path("/orders");
            then.status(401);
        })
        .await;
    let source = Arc::new(Counting::default());
    let client = client(&source, false);
    for _ in 0..50 {
        let response = client.get(server.url("/orders")).send().await.unwrap();
        assert_eq!(response.status(), 401);
    }
    assert_eq!(
        source.0.load(Ordering::SeqCst),
        2,
        "the first token and one renewal in the backoff window"
    );
    assert_eq!(
        api.calls_async().await,
        51,
        "one replay, then each 401 as is"
    );
}

#[tokio::test]
async fn a_401_to_a_streaming_body_still_drops_the_rejected_token() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/uploads");
            then.status(401);
        })
        .await;
    let source = Arc::new(Counting::default());
    let cache = TokenCache::builder(Arc::clone(&source)).build();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(cache.clone()))
        .build();
    let response = client
        .post(server.url("/uploads"))
        .body(reqwest::Body::wrap("a stream, sent once".to_owned()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "a stream cannot be replayed");
    assert!(cache.peek().is_none(), "the rejected token was dropped");
    assert_eq!(cache.token().await.unwrap().secret().expose_secret(), "t2");
}
