//! iyzico Pay with iyzico access token (IYZWSv2).

use payauth_core::Secret;
use payauth_iyzico::iyzwsv2;
use payauth_sandbox::{Endpoint, PwiFailureStyle, RunningSandbox, SandboxPwiSession, defaults};
use serde_json::{Value, json};

use crate::common::{client, jwt_claims, now, sandbox, status_json};

struct Signed<'a> {
    api_key: &'a str,
    secret_key: &'a str,
    /// Sent as `x-iyzi-rnd` when given.
    rnd_header: Option<&'a str>,
    /// The path the signature covers.
    path: &'a str,
}

impl Default for Signed<'_> {
    fn default() -> Self {
        Self {
            api_key: defaults::IYZICO_API_KEY,
            secret_key: defaults::IYZICO_SECRET_KEY,
            rnd_header: Some("4f1c2a"),
            path: Endpoint::PwiAccessToken.path(),
        }
    }
}

async fn send(sandbox: &RunningSandbox, body: &Value, signed: Signed<'_>) -> (u16, Value) {
    let body = body.to_string();
    let authorization = iyzwsv2::authorization(
        signed.api_key,
        &Secret::new(signed.secret_key),
        "4f1c2a",
        signed.path,
        body.as_bytes(),
    );
    let mut request = client()
        .post(sandbox.url(Endpoint::PwiAccessToken))
        .header("authorization", authorization)
        .header("content-type", "application/json")
        .body(body);
    if let Some(rnd) = signed.rnd_header {
        request = request.header(iyzwsv2::RANDOM_KEY_HEADER, rnd);
    }
    status_json(request.send().await.unwrap()).await
}

fn request(session: &str) -> Value {
    json!({
        "sessionToken": session,
        "memberIdentifier": defaults::PWI_MEMBER_IDENTIFIER,
        "locale": "tr",
        "conversationId": "conv-42",
    })
}

#[tokio::test]
async fn a_signed_request_gets_a_jwt_that_expires_in_five_minutes() {
    let sandbox = sandbox().await;
    let (status, body) = send(
        &sandbox,
        &request(defaults::PWI_SESSION_TOKEN),
        Signed::default(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["locale"], "tr");
    assert_eq!(body["conversationId"], "conv-42");
    let system_time = body["systemTime"].as_i64().unwrap();
    assert!((system_time / 1000 - now()).abs() <= 2);
    let claims = jwt_claims(body["accessToken"].as_str().unwrap());
    assert!((now() + 295..=now() + 301).contains(&claims["exp"].as_i64().unwrap()));
}

#[tokio::test]
async fn the_random_key_header_is_optional() {
    let sandbox = sandbox().await;
    let signed = Signed {
        rnd_header: None,
        ..Signed::default()
    };
    let (status, _) = send(&sandbox, &request(defaults::PWI_SESSION_TOKEN), signed).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_bad_signature_is_answered_1000_with_http_401() {
    let sandbox = sandbox().await;
    for signed in [
        Signed {
            secret_key: "wrong",
            ..Signed::default()
        },
        Signed {
            path: "/v1/other",
            ..Signed::default()
        },
        Signed {
            rnd_header: Some("disagrees"),
            ..Signed::default()
        },
    ] {
        let (status, body) = send(&sandbox, &request(defaults::PWI_SESSION_TOKEN), signed).await;
        assert_eq!(status, 401);
        assert_eq!(body["status"], "failure");
        assert_eq!(body["errorCode"], "1000");
        assert_eq!(body["locale"], "tr");
        assert!(body["errorMessage"].is_string());
        assert!(body["systemTime"].is_i64());
        assert!(body.get("accessToken").is_none());
    }
}

#[tokio::test]
async fn a_body_changed_after_signing_is_answered_1000() {
    let sandbox = sandbox().await;
    let signed_body = request(defaults::PWI_SESSION_TOKEN).to_string();
    let sent_body = signed_body.replace("conv-42", "conv-43");
    let authorization = iyzwsv2::authorization(
        defaults::IYZICO_API_KEY,
        &Secret::new(defaults::IYZICO_SECRET_KEY),
        "r",
        Endpoint::PwiAccessToken.path(),
        signed_body.as_bytes(),
    );
    let response = client()
        .post(sandbox.url(Endpoint::PwiAccessToken))
        .header("authorization", authorization)
        .header("content-type", "application/json")
        .body(sent_body)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!((status, body["errorCode"].as_str()), (401, Some("1000")));
    // Even a failure echoes the conversation id.
    assert_eq!(body["conversationId"], "conv-43");
}

#[tokio::test]
async fn a_missing_authorization_header_is_answered_1000() {
    let sandbox = sandbox().await;
    let response = client()
        .post(sandbox.url(Endpoint::PwiAccessToken))
        .header("content-type", "application/json")
        .body(request(defaults::PWI_SESSION_TOKEN).to_string())
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!((status, body["errorCode"].as_str()), (401, Some("1000")));
}

#[tokio::test]
async fn an_unknown_api_key_is_answered_1001() {
    let sandbox = sandbox().await;
    let signed = Signed {
        api_key: "someone-else",
        ..Signed::default()
    };
    let (status, body) = send(&sandbox, &request(defaults::PWI_SESSION_TOKEN), signed).await;
    assert_eq!((status, body["errorCode"].as_str()), (401, Some("1001")));
}

#[tokio::test]
async fn an_unknown_session_is_answered_260016_with_http_400() {
    let sandbox = sandbox().await;
    let (status, body) = send(&sandbox, &request("no-such-session"), Signed::default()).await;
    assert_eq!(status, 400);
    assert_eq!(body["status"], "failure");
    assert_eq!(body["errorCode"], "260016");
    assert_eq!(body["errorMessage"], "Session token bulunamadı.");
    assert_eq!(body["conversationId"], "conv-42");

    // A known session for another member is not found either.
    let mut other_member = request(defaults::PWI_SESSION_TOKEN);
    other_member["memberIdentifier"] = json!("someone-else");
    other_member["locale"] = json!("en");
    let (status, body) = send(&sandbox, &other_member, Signed::default()).await;
    assert_eq!((status, body["errorCode"].as_str()), (400, Some("260016")));
    assert_eq!(body["errorMessage"], "Session token not found.");
    assert_eq!(body["locale"], "en");
}

#[tokio::test]
async fn sessions_can_be_added_at_run_time() {
    let sandbox = sandbox().await;
    sandbox.add_pwi_session(SandboxPwiSession::new(
        "late-session",
        defaults::PWI_MEMBER_IDENTIFIER,
    ));
    let (status, _) = send(&sandbox, &request("late-session"), Signed::default()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn failures_can_come_with_http_200_or_a_numeric_status() {
    let sandbox = sandbox().await;
    sandbox.update_behaviour(|b| b.pwi_failure_style = PwiFailureStyle::Http200);
    let (status, body) = send(&sandbox, &request("no-such-session"), Signed::default()).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "failure");
    assert_eq!(body["errorCode"], "260016");

    sandbox.update_behaviour(|b| b.pwi_failure_style = PwiFailureStyle::NumericStatus);
    let signed = Signed {
        secret_key: "wrong",
        ..Signed::default()
    };
    let (status, body) = send(&sandbox, &request(defaults::PWI_SESSION_TOKEN), signed).await;
    assert_eq!(status, 401);
    assert_eq!(body["status"], 401);
    assert_eq!(body["errorCode"], "1000");
}
