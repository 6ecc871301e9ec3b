//! iyzico Terminal API login.

use std::time::Duration;

use payauth_sandbox::{
    Behaviour, Endpoint, RunningSandbox, Sandbox, TimestampCheck, TokenLifetimes, defaults,
};
use serde_json::Value;

use crate::common::{basic, jwt_claims, now, post_form, sandbox, status_json};

fn client_basic() -> String {
    basic(defaults::IYZICO_CLIENT_ID, defaults::IYZICO_CLIENT_SECRET)
}

fn authorize_fields(timestamp: &str) -> Vec<(&'static str, String)> {
    vec![
        ("scope", "iyzipayApiGateway".into()),
        ("client_id", defaults::IYZICO_CLIENT_ID.into()),
        ("client_secret", defaults::IYZICO_CLIENT_SECRET.into()),
        ("response_type", "code".into()),
        ("username", defaults::IYZICO_USERNAME.into()),
        ("password", defaults::IYZICO_PASSWORD.into()),
        ("request_timestamp", timestamp.into()),
    ]
}

async fn authorize_with(
    sandbox: &RunningSandbox,
    change: impl FnOnce(&mut Vec<(&'static str, String)>),
) -> (u16, Value) {
    let mut fields = authorize_fields(&(now() * 1000).to_string());
    change(&mut fields);
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    status_json(post_form(sandbox, Endpoint::IyzicoAuthorize, None, &pairs).await).await
}

async fn code(sandbox: &RunningSandbox) -> String {
    let (status, body) = authorize_with(sandbox, |_| {}).await;
    assert_eq!(status, 200, "{body}");
    body["code"].as_str().unwrap().to_owned()
}

async fn exchange(sandbox: &RunningSandbox, code: &str) -> (u16, Value) {
    status_json(
        post_form(
            sandbox,
            Endpoint::IyzicoToken,
            Some(&client_basic()),
            &[("grant_type", "authorization_code"), ("code", code)],
        )
        .await,
    )
    .await
}

async fn refresh(sandbox: &RunningSandbox, refresh_token: &str) -> (u16, Value) {
    status_json(
        post_form(
            sandbox,
            Endpoint::IyzicoRefresh,
            Some(&client_basic()),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await,
    )
    .await
}

#[tokio::test]
async fn the_login_issues_a_code_that_exchanges_for_a_token_pair() {
    let sandbox = sandbox().await;
    let (status, body) = authorize_with(&sandbox, |_| {}).await;
    assert_eq!(status, 200);
    let issued_at = body["issuedAt"].as_str().unwrap();
    let expired_at = body["expiredAt"].as_str().unwrap();
    for date in [issued_at, expired_at] {
        // e.g. 2025-06-01T15:04:05+03:00
        assert_eq!(date.len(), 25, "{date}");
        assert_eq!(&date[10..11], "T");
        assert!(date.ends_with("+03:00"), "{date}");
    }
    assert!(expired_at > issued_at);

    let (status, token) = exchange(&sandbox, body["code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["scope"], "iyzipayApiGateway");
    assert_eq!(token["expires_in"], 7199);
    assert!(
        token["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    let claims = jwt_claims(token["access_token"].as_str().unwrap());
    assert!((now() + 7190..=now() + 7200).contains(&claims["exp"].as_i64().unwrap()));
}

#[tokio::test]
async fn an_auth_code_works_only_once() {
    let sandbox = sandbox().await;
    let code = code(&sandbox).await;
    assert_eq!(exchange(&sandbox, &code).await.0, 200);
    let (status, body) = exchange(&sandbox, &code).await;
    assert_eq!(
        (status, body),
        (400, serde_json::json!({"error": "invalid_grant"}))
    );
    let (status, body) = exchange(&sandbox, "never-issued").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn an_expired_auth_code_is_refused() {
    let sandbox = Sandbox::builder()
        .lifetimes(TokenLifetimes {
            auth_code: Duration::ZERO,
            ..TokenLifetimes::default()
        })
        .start()
        .await
        .unwrap();
    let code = code(&sandbox).await;
    let (status, body) = exchange(&sandbox, &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn authorize_refuses_a_response_type_other_than_code() {
    let sandbox = sandbox().await;
    let (status, body) = authorize_with(&sandbox, |f| f[3].1 = "token".into()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        serde_json::json!({
            "errorCode": "unsupported_response_type",
            "description": "OAuth 2.0 Parameter: response_type",
            "uri": "",
        })
    );
}

#[tokio::test]
async fn authorize_names_a_missing_field_and_refuses_another_scope() {
    let sandbox = sandbox().await;
    for missing in 0..7 {
        let (status, body) = authorize_with(&sandbox, |f| {
            f.remove(missing);
        })
        .await;
        assert_eq!(status, 400);
        assert_eq!(body["errorCode"], "invalid_request");
        let name = authorize_fields("1")[missing].0;
        assert_eq!(body["description"], format!("OAuth 2.0 Parameter: {name}"));
    }
    let (status, body) = authorize_with(&sandbox, |f| f[0].1 = "other".into()).await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (400, Some("invalid_scope"))
    );
}

#[tokio::test]
async fn authorize_refuses_wrong_client_or_user_credentials_with_401() {
    let sandbox = sandbox().await;
    let (status, body) = authorize_with(&sandbox, |f| f[2].1 = "wrong".into()).await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = authorize_with(&sandbox, |f| f[5].1 = "wrong".into()).await;
    assert_eq!(status, 401);
    assert!(body["errorCode"].is_string());
}

#[tokio::test]
async fn the_token_endpoint_refuses_missing_or_wrong_basic_auth() {
    let sandbox = sandbox().await;
    let code = code(&sandbox).await;
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
    ];
    for authorization in [
        None,
        Some(basic(defaults::IYZICO_CLIENT_ID, "wrong")),
        Some("Basic not-base64!".to_owned()),
        Some(format!("Bearer {}", defaults::IYZICO_CLIENT_SECRET)),
    ] {
        let response = post_form(
            &sandbox,
            Endpoint::IyzicoToken,
            authorization.as_deref(),
            &grant,
        )
        .await;
        assert!(response.headers().contains_key("www-authenticate"));
        let (status, body) = status_json(response).await;
        assert_eq!(
            (status, body),
            (401, serde_json::json!({"error": "invalid_client"}))
        );
    }
    // The refused attempts did not use the code up.
    assert_eq!(exchange(&sandbox, &code).await.0, 200);
}

#[tokio::test]
async fn refresh_tokens_rotate() {
    let sandbox = sandbox().await;
    let code = code(&sandbox).await;
    let (_, first) = exchange(&sandbox, &code).await;
    let first_refresh = first["refresh_token"].as_str().unwrap();

    let (status, second) = refresh(&sandbox, first_refresh).await;
    assert_eq!(status, 200, "{second}");
    let second_refresh = second["refresh_token"].as_str().unwrap();
    assert_ne!(second_refresh, first_refresh);
    assert_ne!(second["access_token"], first["access_token"]);

    let (status, body) = refresh(&sandbox, first_refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(refresh(&sandbox, second_refresh).await.0, 200);
}

#[tokio::test]
async fn the_refresh_endpoint_takes_only_the_refresh_token_grant() {
    let sandbox = sandbox().await;
    let code = code(&sandbox).await;
    let (status, body) = status_json(
        post_form(
            &sandbox,
            Endpoint::IyzicoRefresh,
            Some(&client_basic()),
            &[("grant_type", "authorization_code"), ("code", &code)],
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn the_request_timestamp_must_be_the_time_of_the_request_and_its_unit_can_be_enforced() {
    let sandbox = sandbox().await;
    let seconds = now().to_string();
    let millis = (now() * 1000).to_string();
    // Default: the time of the request, in seconds or milliseconds, as
    // the docs say ("the Unix timestamp of the request"); a number that is
    // no such time is refused with the endpoint's error shape.
    for stamp in [&seconds, &millis] {
        assert_eq!(
            authorize_with(&sandbox, |f| f[6].1.clone_from(stamp))
                .await
                .0,
            200
        );
    }
    let an_hour_ago = (now() - 3600).to_string();
    let in_an_hour = ((now() + 3600) * 1000).to_string();
    for stamp in [
        "1",
        "soon",
        "",
        "99999999999999999999",
        &an_hour_ago,
        &in_an_hour,
    ] {
        let (status, body) = authorize_with(&sandbox, |f| f[6].1 = stamp.to_owned()).await;
        assert_eq!(status, 400, "{stamp:?}");
        assert_eq!(
            (body["errorCode"].as_str(), body["description"].as_str()),
            (
                Some("invalid_request"),
                Some("OAuth 2.0 Parameter: request_timestamp")
            ),
            "{stamp:?}"
        );
    }
    sandbox.update_behaviour(|b| b.iyzico_request_timestamp = TimestampCheck::Digits);
    assert_eq!(
        authorize_with(&sandbox, |f| f[6].1 = "1".into()).await.0,
        200
    );

    sandbox.set_behaviour(Behaviour {
        iyzico_request_timestamp: TimestampCheck::Seconds,
        ..Behaviour::default()
    });
    assert_eq!(
        authorize_with(&sandbox, |f| f[6].1.clone_from(&seconds))
            .await
            .0,
        200
    );
    let (status, body) = authorize_with(&sandbox, |f| f[6].1.clone_from(&millis)).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["description"],
        "OAuth 2.0 Parameter: request_timestamp"
    );

    sandbox.update_behaviour(|b| b.iyzico_request_timestamp = TimestampCheck::Milliseconds);
    assert_eq!(
        authorize_with(&sandbox, |f| f[6].1.clone_from(&millis))
            .await
            .0,
        200
    );
    assert_eq!(
        authorize_with(&sandbox, |f| f[6].1.clone_from(&seconds))
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn expires_in_can_be_sent_as_a_numeric_string() {
    let sandbox = sandbox().await;
    sandbox.update_behaviour(|b| b.expires_in_as_string = true);
    let code = code(&sandbox).await;
    let (_, token) = exchange(&sandbox, &code).await;
    assert_eq!(token["expires_in"], "7199");
}
