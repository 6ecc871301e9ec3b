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

/// HMAC-SHA256 from its definition (RFC 2104), so this test signs with
/// neither payauth-iyzico's signer nor the sandbox's verifier.
fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().fold(String::new(), |mut hex, b| {
        use std::fmt::Write as _;
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// An `Authorization` written by hand from the recipe, with `signature`.
fn by_hand(signature: &str) -> String {
    use base64::Engine as _;
    let params = format!(
        "apiKey:{}&randomKey:r1&signature:{signature}",
        defaults::IYZICO_API_KEY
    );
    format!(
        "IYZWSv2 {}",
        base64::engine::general_purpose::STANDARD.encode(params)
    )
}

async fn send_raw(
    sandbox: &RunningSandbox,
    authorization: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let response = client()
        .post(sandbox.url(Endpoint::PwiAccessToken))
        .header("authorization", authorization)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    status_json(response).await
}

#[test]
fn the_hand_written_hmac_gives_the_sdk_vectors() {
    assert_eq!(
        hmac_sha256_hex(b"test", b"123456789/v2/subscription/initialize"),
        "bc44b2f4dfb8df74147b1f527ff636444c3b3d3a1ff97dcb3366bc293facf298"
    );
}

#[tokio::test]
async fn a_signature_written_from_the_recipe_by_hand_is_accepted() {
    let sandbox = sandbox().await;
    let body = request(defaults::PWI_SESSION_TOKEN).to_string();
    let message = format!("r1{}{body}", Endpoint::PwiAccessToken.path());
    let signature = hmac_sha256_hex(defaults::IYZICO_SECRET_KEY.as_bytes(), message.as_bytes());
    let (status, answer) =
        send_raw(&sandbox, &by_hand(&signature), "application/json", &body).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn a_signature_with_a_signers_usual_bugs_is_answered_1000() {
    let sandbox = sandbox().await;
    let body = request(defaults::PWI_SESSION_TOKEN).to_string();
    let path = Endpoint::PwiAccessToken.path();
    let key = defaults::IYZICO_SECRET_KEY.as_bytes();
    let good = hmac_sha256_hex(key, format!("r1{path}{body}").as_bytes());
    let reserialised = serde_json::to_string_pretty(&request(defaults::PWI_SESSION_TOKEN)).unwrap();
    for (bug, signature) in [
        ("upper-case hex", good.to_uppercase()),
        (
            "the proxy's prefix signed",
            hmac_sha256_hex(key, format!("r1/egress{path}{body}").as_bytes()),
        ),
        (
            "the query string signed",
            hmac_sha256_hex(key, format!("r1{path}?x=1{body}").as_bytes()),
        ),
        (
            "no random key",
            hmac_sha256_hex(key, format!("{path}{body}").as_bytes()),
        ),
        (
            "another serialisation of the body",
            hmac_sha256_hex(key, format!("r1{path}{reserialised}").as_bytes()),
        ),
    ] {
        let (status, answer) =
            send_raw(&sandbox, &by_hand(&signature), "application/json", &body).await;
        assert_eq!(
            (status, answer["errorCode"].as_str()),
            (401, Some("1000")),
            "{bug}"
        );
    }
}

#[tokio::test]
async fn a_body_not_sent_as_json_is_refused_as_an_invalid_request() {
    let sandbox = sandbox().await;
    let body = request(defaults::PWI_SESSION_TOKEN).to_string();
    let message = format!("r1{}{body}", Endpoint::PwiAccessToken.path());
    let signature = hmac_sha256_hex(defaults::IYZICO_SECRET_KEY.as_bytes(), message.as_bytes());
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
    ] {
        let (status, answer) = send_raw(&sandbox, &by_hand(&signature), content_type, &body).await;
        assert_eq!(
            (status, answer["errorCode"].as_str()),
            (400, Some("11")),
            "{content_type}"
        );
    }
    let (status, _) = send_raw(
        &sandbox,
        &by_hand(&signature),
        "Application/JSON; charset=utf-8",
        &body,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn only_the_tr_and_en_locales_are_accepted() {
    let sandbox = sandbox().await;
    for (locale, expected) in [
        (json!("tr"), 200),
        (json!("en"), 200),
        (json!("de"), 400),
        (json!("TR"), 400),
        (json!(1), 400),
        (json!(null), 400),
    ] {
        let mut body = request(defaults::PWI_SESSION_TOKEN);
        body["locale"] = locale.clone();
        let (status, answer) = send(&sandbox, &body, Signed::default()).await;
        assert_eq!(status, expected, "{locale}: {answer}");
    }
    let mut no_locale = request(defaults::PWI_SESSION_TOKEN);
    no_locale.as_object_mut().unwrap().remove("locale");
    let (status, answer) = send(&sandbox, &no_locale, Signed::default()).await;
    assert_eq!((status, answer["locale"].as_str()), (200, Some("tr")));
}

/// POSTs a signed last-payment-info request for `session`, with
/// `access_token` in the `access-token` header when given.
async fn last_payment(
    sandbox: &RunningSandbox,
    session: &str,
    access_token: Option<&str>,
) -> (u16, Value) {
    let endpoint = Endpoint::PwiLastPaymentInfo;
    let body = request(session).to_string();
    let authorization = iyzwsv2::authorization(
        defaults::IYZICO_API_KEY,
        &Secret::new(defaults::IYZICO_SECRET_KEY),
        "9a1b",
        endpoint.path(),
        body.as_bytes(),
    );
    let mut request = client()
        .post(sandbox.url(endpoint))
        .header("authorization", authorization)
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = access_token {
        request = request.header("access-token", token);
    }
    status_json(request.send().await.unwrap()).await
}

#[tokio::test]
async fn a_later_call_needs_a_live_access_token_for_its_own_session_in_the_access_token_header() {
    let sandbox = sandbox().await;
    sandbox.add_pwi_session(SandboxPwiSession::new(
        "other-session",
        defaults::PWI_MEMBER_IDENTIFIER,
    ));
    let token = |session: &'static str| {
        let sandbox = &sandbox;
        async move {
            let (status, body) = send(sandbox, &request(session), Signed::default()).await;
            assert_eq!(status, 200, "{body}");
            body["accessToken"].as_str().unwrap().to_owned()
        }
    };
    let live = token(defaults::PWI_SESSION_TOKEN).await;
    let (status, body) = last_payment(&sandbox, defaults::PWI_SESSION_TOKEN, Some(&live)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["sessionToken"], defaults::PWI_SESSION_TOKEN);
    assert_eq!(body["conversationId"], "conv-42");

    let other = token("other-session").await;
    let forged = format!("{live}x");
    for (case, access_token) in [
        ("no header", None),
        ("a token never issued", Some(forged.as_str())),
        ("another session's token", Some(other.as_str())),
    ] {
        let (status, body) =
            last_payment(&sandbox, defaults::PWI_SESSION_TOKEN, access_token).await;
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(body["status"], "failure", "{case}");
        assert_eq!(body["errorCode"], "1005", "{case}");
        assert!(body["errorMessage"].is_string(), "{case}");
    }

    // An expired token is refused too.
    sandbox.update_behaviour(|b| b.lifetimes.pwi = std::time::Duration::ZERO);
    let expired = token(defaults::PWI_SESSION_TOKEN).await;
    let (status, _) = last_payment(&sandbox, defaults::PWI_SESSION_TOKEN, Some(&expired)).await;
    assert_eq!(status, 401);
}
