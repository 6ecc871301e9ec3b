//! The generated VakıfBank client on the wire, against httpmock.

use httpmock::prelude::*;
use payauth_core::{Secret, SerializableSecret};
use payauth_vakifbank::auth::{ClientAuth, ClientAuthStyle};
use payauth_vakifbank::generated::gateway::{Client, Error, types};

fn client(server: &MockServer, style: ClientAuthStyle) -> Client {
    let auth = ClientAuth::new("key", Secret::new("s:cret"), style);
    Client::new_with_client(
        &server.base_url(),
        payauth_core::http::default_client().unwrap(),
        auth,
    )
}

fn client_credentials(with_body_auth: bool) -> types::TokenRequest {
    types::TokenRequest {
        grant_type: "client_credentials".to_owned(),
        client_id: with_body_auth.then(|| "key".to_owned()),
        client_secret: with_body_auth.then(|| SerializableSecret::new("s:cret")),
        scope: Some("public oob".to_owned()),
        code: None,
        code_verifier: None,
        consent_id: None,
        redirect_uri: None,
        refresh_token: None,
        resource: None,
    }
}

#[tokio::test]
async fn body_style_sends_credentials_in_the_form_and_no_basic_header() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/auth/oauth/v2/token")
                .header_missing("authorization")
                .header_missing("api-version")
                .body("client_id=key&client_secret=s%3Acret&grant_type=client_credentials&scope=public+oob");
            then.status(200).header("content-type", "application/json").body(
                r#"{"access_token":"at","token_type":"Bearer","expires_in":3600,"scope":"public oob"}"#,
            );
        })
        .await;
    client(&server, ClientAuthStyle::Body)
        .token(&client_credentials(true))
        .await
        .expect("token");
    mock.assert_async().await;
}

#[tokio::test]
async fn basic_style_sends_a_form_encoded_basic_header_instead() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/auth/oauth/v2/token")
                // base64("key:s%3Acret")
                .header("authorization", "Basic a2V5OnMlM0FjcmV0")
                .body("grant_type=client_credentials&scope=public+oob");
            then.status(200)
                .header("content-type", "application/json")
                .body(r#"{"access_token":"at","token_type":"Bearer","expires_in":"3600"}"#);
        })
        .await;
    client(&server, ClientAuthStyle::Basic)
        .token(&client_credentials(false))
        .await
        .expect("token");
    mock.assert_async().await;
}

#[tokio::test]
async fn a_layer7_error_keeps_its_body_and_x_ca_err_header() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/auth/oauth/v2/token");
            then.status(400)
                .header("content-type", "application/json")
                .header("x-ca-err", "3003201")
                .body(r#"{"error":"invalid_client","error_description":"The given client credentials were not valid"}"#);
        })
        .await;
    let error = client(&server, ClientAuthStyle::Body)
        .token(&client_credentials(true))
        .await
        .expect_err("400");
    let Error::ErrorResponse(response) = error else {
        panic!("expected an error response, got {error:?}")
    };
    assert_eq!(response.error.as_deref(), Some("invalid_client"));
    assert_eq!(
        response
            .headers()
            .get("x-ca-err")
            .and_then(|v| v.to_str().ok()),
        Some("3003201")
    );
}
