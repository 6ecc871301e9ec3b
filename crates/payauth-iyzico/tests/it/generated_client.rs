//! The generated iyzico clients on the wire, against httpmock.

use httpmock::prelude::*;
use payauth_core::wire::NumberOrString;
use payauth_core::{Secret, SerializableSecret};
use payauth_iyzico::auth::{ApiKeys, TerminalCredentials};
use payauth_iyzico::generated::{pwi, terminal_login};
use payauth_iyzico::iyzwsv2;

const PWI_PATH: &str = "/v1/pay-with-iyzico/third-party-session/retrieve/access-token";

/// True when the request's `Authorization` is the IYZWSv2 signature of the
/// body and path the server actually received, with the random key sent in
/// `x-iyzi-rnd`.
fn signed_as_received(req: &httpmock::HttpMockRequest) -> bool {
    let headers = req.headers();
    let (Some(authorization), Some(random_key)) = (
        headers.get("authorization").and_then(|v| v.to_str().ok()),
        headers
            .get(iyzwsv2::RANDOM_KEY_HEADER)
            .and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let expected = iyzwsv2::authorization(
        "api-key",
        &Secret::new("secret-key"),
        random_key,
        req.uri().path(),
        req.body_ref(),
    );
    expected.to_str().ok() == Some(authorization)
}

fn pwi_client(server: &MockServer) -> pwi::Client {
    let keys = ApiKeys::new("api-key", Secret::new("secret-key"));
    pwi::Client::new_with_client(
        &server.base_url(),
        payauth_core::http::default_client().unwrap(),
        keys,
    )
}

fn request(member: &str) -> pwi::types::AccessTokenRequest {
    pwi::types::AccessTokenRequest {
        session_token: SerializableSecret::new("session-1"),
        member_identifier: member.to_owned(),
        locale: Some(pwi::types::Locale::Tr),
        conversation_id: Some("conv-1".to_owned()),
    }
}

#[tokio::test]
async fn pwi_request_is_signed_over_the_exact_bytes_the_server_received() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(PWI_PATH)
                .header("content-type", "application/json")
                .header_missing("api-version")
                .is_true(signed_as_received);
            then.status(200).header("content-type", "application/json").body(
                r#"{"status":"success","locale":"tr","systemTime":1749027862133,"conversationId":"conv-1","accessToken":"a.b.c"}"#,
            );
        })
        .await;

    let response = pwi_client(&server)
        .retrieve_access_token(&request("member-1"))
        .await
        .expect("token");
    mock.assert_async().await;
    assert_eq!(
        response
            .access_token
            .as_ref()
            .map(SerializableSecret::expose_secret),
        Some("a.b.c")
    );
}

#[tokio::test]
async fn pwi_signature_covers_turkish_characters_as_sent() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path(PWI_PATH)
                .body_includes("Şükrü Çağlar")
                .is_true(signed_as_received);
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"status":"success"}"#);
        })
        .await;
    pwi_client(&server)
        .retrieve_access_token(&request("Şükrü Çağlar"))
        .await
        .expect("token");
    mock.assert_async().await;
}

#[tokio::test]
async fn pwi_failure_envelope_with_a_numeric_status_still_parses() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path(PWI_PATH);
            then.status(401)
                .header("content-type", "application/json")
                .body(r#"{"status":401,"errorCode":"5","errorMessage":"unauthorized"}"#);
        })
        .await;
    let error = pwi_client(&server)
        .retrieve_access_token(&request("m"))
        .await
        .expect_err("401");
    let pwi::Error::ErrorResponse(envelope) = error else {
        panic!("expected the failure envelope, got {error:?}")
    };
    assert_eq!(envelope.status, Some(NumberOrString::Number(401)));
    assert_eq!(
        envelope.error_code,
        Some(NumberOrString::String("5".to_owned()))
    );
}

#[tokio::test]
async fn terminal_token_exchange_uses_basic_auth_and_the_code_form() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/in-store/oauth2/token")
                .header("authorization", "Basic Y2xpZW50OnNlY3JldA==")
                .header_missing("api-version")
                .body("code=auth-code-1&grant_type=authorization_code");
            then.status(200).header("content-type", "application/json").body(
                r#"{"access_token":"at","refresh_token":"rt","scope":"iyzipayApiGateway","token_type":"Bearer","expires_in":7199}"#,
            );
        })
        .await;
    let credentials = TerminalCredentials::new("client", Secret::new("secret"));
    let client = terminal_login::Client::new_with_client(
        &server.base_url(),
        payauth_core::http::default_client().unwrap(),
        credentials,
    );
    let body = terminal_login::types::TokenRequest {
        grant_type: "authorization_code".to_owned(),
        code: Some(SerializableSecret::new("auth-code-1")),
        refresh_token: None,
    };
    let response = client.token(&body).await.expect("token");
    mock.assert_async().await;
    assert_eq!(
        response
            .refresh_token
            .as_ref()
            .map(SerializableSecret::expose_secret),
        Some("rt")
    );
}

#[tokio::test]
async fn terminal_authorize_sends_credentials_in_the_form_without_basic_auth() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/in-store/oauth2/authorize")
                .header_missing("authorization")
                .body(
                    "client_id=client&client_secret=secret&password=p%40ss&request_timestamp=1749027862133\
                     &response_type=code&scope=iyzipayApiGateway&username=cashier",
                );
            then.status(200).header("content-type", "application/json").body(
                r#"{"code":"c1","issuedAt":"2025-06-04T10:00:00+03:00","expiredAt":"2025-06-04T10:10:00+03:00"}"#,
            );
        })
        .await;
    let credentials = TerminalCredentials::new("client", Secret::new("secret"));
    let client = terminal_login::Client::new_with_client(
        &server.base_url(),
        payauth_core::http::default_client().unwrap(),
        credentials,
    );
    let body = terminal_login::types::AuthorizeRequest {
        client_id: "client".to_owned(),
        client_secret: SerializableSecret::new("secret"),
        password: SerializableSecret::new("p@ss"),
        request_timestamp: "1749027862133".to_owned(),
        response_type: terminal_login::types::AuthorizeRequestResponseType::Code,
        scope: terminal_login::types::AuthorizeRequestScope::IyzipayApiGateway,
        username: "cashier".to_owned(),
    };
    let response = client.authorize(&body).await.expect("code");
    mock.assert_async().await;
    assert_eq!(
        response
            .code
            .as_ref()
            .map(SerializableSecret::expose_secret),
        Some("c1")
    );
}
