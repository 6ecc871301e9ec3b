//! The myPOS flow against httpmock: tokens through the cache, every error
//! shape as a typed error, revocation semantics, resource headers, and the
//! exact wire request (snapshot).

use std::sync::Arc;

use httpmock::prelude::*;
use payauth_core::{ErrorKind, Secret, TokenCache};
use payauth_mypos::{Environment, Mypos, MyposSettings};

const SENTINEL: &str = "SENTINEL-mypos-secret-42";

fn mypos(server: &MockServer, secret: &str) -> Arc<Mypos> {
    let settings = MyposSettings::new(
        "client-1",
        Secret::new(secret),
        Environment::Custom(server.base_url()),
    );
    Arc::new(Mypos::new(&settings, &payauth_core::http::default_client().unwrap()).unwrap())
}

async fn token_answer(
    server: &MockServer,
    status: u16,
    content_type: &str,
    body: impl Into<String>,
) {
    let body = body.into();
    let content_type = content_type.to_owned();
    server
        .mock_async(move |when, then| {
            when.method(POST).path("/oauth/token");
            then.status(status)
                .header("content-type", content_type)
                .body(body);
        })
        .await;
}

#[tokio::test]
async fn a_cache_over_mypos_fetches_once_and_reads_a_string_expires_in() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/oauth/token")
                .body("grant_type=client_credentials");
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"access_token":"tok","token_type":"bearer","expires_in":"86400"}"#);
        })
        .await;
    let cache = TokenCache::builder(mypos(&server, "secret")).build();
    let first = cache.token().await.unwrap();
    let second = cache.token().await.unwrap();
    assert_eq!(mock.calls_async().await, 1);
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(first.lifetime().as_secs(), 86_400);
    assert_eq!(first.authorization().to_str().unwrap(), "Bearer tok");
}

#[tokio::test]
async fn a_mac_token_type_is_refused_never_put_in_an_authorization_header() {
    let server = MockServer::start_async().await;
    token_answer(
        &server,
        200,
        "application/json",
        r#"{"access_token":"tok","token_type":"MAC","expires_in":60}"#,
    )
    .await;
    let error = mypos(&server, "s").fetch_token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Malformed);
}

#[tokio::test]
async fn refused_credentials_are_invalid_client_and_the_message_holds_no_secret() {
    let server = MockServer::start_async().await;
    token_answer(
        &server,
        401,
        "application/json",
        r#"{"error":"invalid_client","error_description":"Bad client"}"#,
    )
    .await;
    let error = mypos(&server, SENTINEL).fetch_token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidClient);
    assert!(error.is_permanent());
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("Bad client"), "{shown}");
    assert!(!shown.contains(SENTINEL), "{shown}");
}

#[tokio::test]
async fn an_html_error_page_is_a_transient_typed_error() {
    let server = MockServer::start_async().await;
    token_answer(
        &server,
        502,
        "text/html",
        "<html><body>Bad Gateway</body></html>",
    )
    .await;
    let error = mypos(&server, "s").fetch_token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error.is_transient());
}

#[tokio::test]
async fn a_200_that_is_not_a_token_is_malformed() {
    for body in [
        "not json at all",
        r#"{"access_token":"t","expires_in":true}"#,
        r#"{"token_type":"Bearer"}"#,
        r#"{"access_tok"#,
    ] {
        let server = MockServer::start_async().await;
        token_answer(&server, 200, "application/json", body).await;
        let error = mypos(&server, "s").fetch_token().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Malformed, "{body}: {error}");
    }
}

#[tokio::test]
async fn a_ten_megabyte_body_is_malformed_not_buffered() {
    let server = MockServer::start_async().await;
    token_answer(
        &server,
        200,
        "application/json",
        "x".repeat(10 * 1024 * 1024),
    )
    .await;
    let error = mypos(&server, "s").fetch_token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Malformed);
    assert!(error.to_string().contains("larger than the cap"), "{error}");
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_cached_token() {
    let server = MockServer::start_async().await;
    let ok = server
        .mock_async(|when, then| {
            when.method(POST).path("/oauth/token");
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"access_token":"tok","expires_in":3600}"#);
        })
        .await;
    let cache = TokenCache::builder(mypos(&server, "s")).build();
    let token = cache.token().await.unwrap();
    ok.delete_async().await;
    token_answer(&server, 503, "text/html", "<html>down</html>").await;
    assert!(cache.invalidate(&token));
    let error = cache.token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
}

#[tokio::test]
async fn revoking_an_unknown_token_succeeds() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/oauth/revoke")
                .header("authorization", "Basic Y2xpZW50LTE6cw==")
                .body("token=unknown");
            then.status(200);
        })
        .await;
    mypos(&server, "s")
        .revoke(&Secret::new("unknown"))
        .await
        .unwrap();
    mock.assert_async().await;
}

#[tokio::test]
async fn any_2xx_answer_to_a_revocation_is_success_and_nothing_else_is() {
    for (status, revoked) in [
        (200, true),
        (202, true),
        (204, true),
        (299, true),
        (302, false),
        (400, false),
        (404, false),
    ] {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(POST).path("/oauth/revoke");
                then.status(status);
            })
            .await;
        let outcome = mypos(&server, "s").revoke(&Secret::new("t")).await;
        assert_eq!(outcome.is_ok(), revoked, "{status}: {outcome:?}");
    }
}

#[tokio::test]
async fn revocation_retries_a_503_with_retry_after_then_gives_up() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST).path("/oauth/revoke");
            then.status(503)
                .header("retry-after", "0")
                .header("content-type", "application/json")
                .body(r#"{"error":"temporarily_unavailable"}"#);
        })
        .await;
    let error = mypos(&server, "s")
        .revoke(&Secret::new("t"))
        .await
        .unwrap_err();
    assert_eq!(mock.calls_async().await, 3, "one try and two retries");
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.retry_after().map(|d| d.as_secs()), Some(0));
}

#[tokio::test]
async fn a_503_without_retry_after_is_not_retried() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST).path("/oauth/revoke");
            then.status(503);
        })
        .await;
    assert!(mypos(&server, "s").revoke(&Secret::new("t")).await.is_err());
    assert_eq!(mock.calls_async().await, 1);
}

#[tokio::test]
async fn revoking_through_the_cache_drops_the_cached_token() {
    let server = MockServer::start_async().await;
    let token = server
        .mock_async(|when, then| {
            when.method(POST).path("/oauth/token");
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"access_token":"tok","expires_in":3600}"#);
        })
        .await;
    let revoke = server
        .mock_async(|when, then| {
            when.method(POST).path("/oauth/revoke").body("token=tok");
            then.status(200);
        })
        .await;
    let mypos = mypos(&server, "s");
    let cache = TokenCache::builder(mypos.clone()).build();
    cache.token().await.unwrap();
    mypos.revoke_cached(&cache).await.unwrap();
    assert!(cache.peek().is_none());
    cache.token().await.unwrap();
    assert_eq!(revoke.calls_async().await, 1);
    assert_eq!(token.calls_async().await, 2, "a new token after revocation");
}

#[tokio::test]
async fn a_revoked_token_is_cleared_from_the_store_so_the_next_process_never_serves_it() {
    let server = MockServer::start_async().await;
    let token = server
        .mock_async(|when, then| {
            when.method(POST).path("/oauth/token");
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"access_token":"tok","expires_in":3600}"#);
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/oauth/revoke").body("token=tok");
            then.status(200);
        })
        .await;
    let store = Arc::new(payauth_core::MemoryStore::new());
    let mypos = mypos(&server, "s");
    let cache = TokenCache::builder(mypos.clone())
        .store(Arc::clone(&store) as _, "mypos")
        .build();
    cache.token().await.unwrap();
    mypos.revoke_cached(&cache).await.unwrap();
    assert_eq!(
        payauth_core::TokenStore::load(store.as_ref(), "mypos")
            .await
            .unwrap(),
        None
    );
    let next_process = TokenCache::builder(mypos.clone())
        .store(store as _, "mypos")
        .build();
    next_process.token().await.unwrap();
    assert_eq!(
        token.calls_async().await,
        2,
        "the next process fetches anew"
    );
}

#[tokio::test]
async fn the_revocation_url_is_configurable() {
    let tokens = MockServer::start_async().await;
    let revocations = MockServer::start_async().await;
    let mock = revocations
        .mock_async(|when, then| {
            when.method(POST).path("/oauth/revoke");
            then.status(200);
        })
        .await;
    let settings = MyposSettings::new(
        "client-1",
        Secret::new("s"),
        Environment::Custom(tokens.base_url()),
    )
    .revoke_base_url(revocations.base_url());
    let mypos = Mypos::new(&settings, &payauth_core::http::default_client().unwrap()).unwrap();
    mypos.revoke(&Secret::new("t")).await.unwrap();
    mock.assert_async().await;
}

#[tokio::test]
async fn resource_headers_carry_bearer_api_key_and_a_fresh_request_id() {
    let server = MockServer::start_async().await;
    token_answer(
        &server,
        200,
        "application/json",
        r#"{"access_token":"tok","expires_in":60}"#,
    )
    .await;
    let mypos = mypos(&server, "s");
    let token = mypos.fetch_token().await.unwrap();
    let first = mypos.resource_headers(&token).unwrap();
    let second = mypos.resource_headers(&token).unwrap();
    assert_eq!(first["authorization"], "Bearer tok");
    assert!(first["authorization"].is_sensitive());
    assert_eq!(first["api-key"], "client-1");
    assert_ne!(first["x-request-id"], second["x-request-id"]);
}

#[tokio::test]
async fn the_token_request_on_the_wire_is_exactly_this() {
    let server = MockServer::start_async().await;
    let (seen, record) = payauth_testkit::wire_recorder();
    server
        .mock_async(move |when, then| {
            when.method(POST).path("/oauth/token").is_true(record);
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"access_token":"t","expires_in":60}"#);
        })
        .await;
    let settings = MyposSettings::new(
        "client id",
        Secret::new("s3:cr%t+ü"),
        Environment::Custom(server.base_url()),
    )
    .scopes(["webhooks"]);
    Mypos::new(&settings, &payauth_core::http::default_client().unwrap())
        .unwrap()
        .fetch_token()
        .await
        .unwrap();
    insta::assert_snapshot!(payauth_testkit::nth(&seen, 0));
}
