//! The generated myPOS client on the wire, against httpmock: exact form
//! bodies, the plain (default) and RFC 6749 §2.3.1 Basic headers, no stray
//! headers, and every documented response shape.

use httpmock::prelude::*;
use payauth_core::oauth2::BasicEncoding;
use payauth_core::wire::NumberOrString;
use payauth_core::{Secret, SerializableSecret};
use payauth_mypos::auth::MyposCredentials;
use payauth_mypos::generated::oauth::{Client, Error, types};

fn client(server: &MockServer, client_id: &str, secret: &str) -> Client {
    client_encoding(
        server,
        client_id,
        secret,
        payauth_mypos::auth::BASIC_ENCODING,
    )
}

fn client_encoding(
    server: &MockServer,
    client_id: &str,
    secret: &str,
    encoding: BasicEncoding,
) -> Client {
    let credentials =
        MyposCredentials::with_basic_encoding(client_id, Secret::new(secret), encoding);
    Client::new_with_client(
        &server.base_url(),
        payauth_core::http::default_client().unwrap(),
        credentials,
    )
}

/// `base64(urlencode("client id") ":" urlencode("s3:cr%t+ü"))`, computed
/// independently (Python's `urllib.parse.quote_plus` and `base64`).
const TRICKY_BASIC: &str = "Basic Y2xpZW50K2lkOnMzJTNBY3IlMjV0JTJCJUMzJUJD";
/// `base64("client id:s3:cr%t+ü")`, as myPOS's docs write it (Python's
/// `base64`).
const TRICKY_PLAIN_BASIC: &str = "Basic Y2xpZW50IGlkOnMzOmNyJXQrw7w=";

#[tokio::test]
async fn token_request_sends_plain_basic_by_default_as_mypos_documents_it() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/oauth/token")
                .header("authorization", TRICKY_PLAIN_BASIC);
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"access_token":"t","token_type":"Bearer","expires_in":60}"#);
        })
        .await;
    let body = types::TokenRequest {
        grant_type: types::TokenRequestGrantType::ClientCredentials,
        scope: None,
    };
    client(&server, "client id", "s3:cr%t+ü")
        .token(&body)
        .await
        .expect("token");
    mock.assert_async().await;
}

#[tokio::test]
async fn token_request_sends_the_exact_form_body_and_a_form_encoded_basic_header() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/oauth/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", TRICKY_BASIC)
                .header_missing("api-version")
                .body("grant_type=client_credentials&scope=webhooks");
            then.status(200).header("content-type", "application/json").body(
                r#"{"access_token":"tok-1","token_type":"Bearer","expires_in":"86400","scope":"webhooks"}"#,
            );
        })
        .await;

    let body = types::TokenRequest {
        grant_type: types::TokenRequestGrantType::ClientCredentials,
        scope: Some("webhooks".to_owned()),
    };
    let response = client_encoding(&server, "client id", "s3:cr%t+ü", BasicEncoding::Rfc6749)
        .token(&body)
        .await
        .expect("token");

    mock.assert_async().await;
    assert_eq!(
        response
            .access_token
            .as_ref()
            .map(SerializableSecret::expose_secret),
        Some("tok-1")
    );
    assert_eq!(
        response.expires_in,
        Some(NumberOrString::String("86400".to_owned()))
    );
}

#[tokio::test]
async fn token_request_without_scope_sends_only_the_grant_type() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/oauth/token")
                .body("grant_type=client_credentials");
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"access_token":"t","token_type":"Bearer","expires_in":3600}"#);
        })
        .await;
    let body = types::TokenRequest {
        grant_type: types::TokenRequestGrantType::ClientCredentials,
        scope: None,
    };
    let response = client(&server, "id", "secret")
        .token(&body)
        .await
        .expect("token");
    mock.assert_async().await;
    assert_eq!(response.expires_in, Some(NumberOrString::Number(3600)));
}

#[tokio::test]
async fn refused_client_credentials_come_back_as_a_typed_oauth_error() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/oauth/token");
            then.status(401)
                .header("content-type", "application/json")
                .body(r#"{"error":"invalid_client"}"#);
        })
        .await;
    let body = types::TokenRequest {
        grant_type: types::TokenRequestGrantType::ClientCredentials,
        scope: None,
    };
    let error = client(&server, "id", "wrong")
        .token(&body)
        .await
        .expect_err("401");
    let Error::ErrorResponse(response) = error else {
        panic!("expected an error response, got {error:?}")
    };
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(response.error.as_deref(), Some("invalid_client"));
}

#[tokio::test]
async fn an_html_error_page_is_an_error_not_a_panic() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/oauth/token");
            then.status(502)
                .header("content-type", "text/html")
                .body("<html><body>Bad Gateway</body></html>");
        })
        .await;
    let body = types::TokenRequest {
        grant_type: types::TokenRequestGrantType::ClientCredentials,
        scope: None,
    };
    let error = client(&server, "id", "secret")
        .token(&body)
        .await
        .expect_err("502");
    assert_eq!(error.status().map(|s| s.as_u16()), Some(502));
}

#[tokio::test]
async fn revoke_posts_the_token_with_basic_auth_and_accepts_an_empty_200() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/oauth/revoke")
                .header("authorization", "Basic aWQ6c2VjcmV0")
                .header_missing("api-version")
                .body("token=vjqje92BWVesdh8TE6nBfepst0mf11wHA6VnR5RhN6");
            then.status(200);
        })
        .await;
    let body = types::RevokeRequest {
        token: SerializableSecret::new("vjqje92BWVesdh8TE6nBfepst0mf11wHA6VnR5RhN6"),
    };
    client(&server, "id", "secret")
        .revoke(&body)
        .await
        .expect("revoked");
    mock.assert_async().await;
}

#[test]
fn debug_of_generated_types_never_shows_a_credential() {
    const SENTINEL: &str = "SENTINEL-7f3a";
    let request = types::RevokeRequest {
        token: SerializableSecret::new(SENTINEL),
    };
    let response = types::TokenResponse {
        access_token: Some(SerializableSecret::new(SENTINEL)),
        expires_in: None,
        scope: None,
        token_type: None,
    };
    let credentials = MyposCredentials::new("id", Secret::new(SENTINEL));
    for shown in [
        format!("{request:?}"),
        format!("{response:?}"),
        format!("{credentials:?}"),
    ] {
        assert!(!shown.contains(SENTINEL), "leaked in {shown}");
    }
}
