//! iyzico Pay with iyzico: the IYZWSv2-signed access-token endpoint.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use payauth_iyzico::iyzwsv2;
use serde_json::{Map, Value, json};

use crate::config::PwiFailureStyle;
use crate::state::Shared;
use crate::util::{base64_standard_decode, json, now_epoch_millis, now_epoch_secs};

/// The parts of an `Authorization: IYZWSv2 base64(...)` header.
struct Iyzwsv2 {
    api_key: String,
    random_key: String,
    signature: String,
}

fn parse_authorization(headers: &HeaderMap) -> Option<Iyzwsv2> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("IYZWSv2 ")?;
    let decoded = String::from_utf8(base64_standard_decode(encoded.trim())?).ok()?;
    let (mut api_key, mut random_key, mut signature) = (None, None, None);
    for part in decoded.split('&') {
        let (name, value) = part.split_once(':')?;
        let slot = match name {
            "apiKey" => &mut api_key,
            "randomKey" => &mut random_key,
            "signature" => &mut signature,
            _ => return None,
        };
        *slot = Some(value.to_owned());
    }
    Some(Iyzwsv2 {
        api_key: api_key?,
        random_key: random_key?,
        signature: signature?,
    })
}

/// The request's `locale` and `conversationId`, read leniently so that even
/// failures can echo them.
struct Echo {
    english: bool,
    conversation_id: Option<Value>,
}

/// The failure envelope, in the configured style.
fn failure(
    shared: &Shared,
    echo: &Echo,
    http: StatusCode,
    code: &str,
    (turkish, english): (&str, &str),
) -> Response {
    let style = shared.behaviour().pwi_failure_style;
    let (status_code, status_field) = match style {
        PwiFailureStyle::HttpError => (http, json!("failure")),
        PwiFailureStyle::Http200 => (StatusCode::OK, json!("failure")),
        PwiFailureStyle::NumericStatus => (http, json!(http.as_u16())),
    };
    let mut body = Map::new();
    body.insert("status".into(), status_field);
    body.insert("errorCode".into(), json!(code));
    body.insert(
        "errorMessage".into(),
        json!(if echo.english { english } else { turkish }),
    );
    body.insert(
        "locale".into(),
        json!(if echo.english { "en" } else { "tr" }),
    );
    body.insert("systemTime".into(), json!(now_epoch_millis()));
    if let Some(id) = &echo.conversation_id {
        body.insert("conversationId".into(), id.clone());
    }
    json(status_code, &Value::Object(body))
}

const INVALID_SIGNATURE: (&str, &str) = ("Geçersiz imza", "Invalid signature");
const API_KEY_NOT_FOUND: (&str, &str) = ("api bilgileri bulunamadı", "API key not found");
const INVALID_REQUEST: (&str, &str) = ("Geçersiz istek", "Invalid request");
const SESSION_NOT_FOUND: (&str, &str) = ("Session token bulunamadı.", "Session token not found.");

/// `POST /v1/pay-with-iyzico/third-party-session/retrieve/access-token`.
///
/// The signature is checked against the exact body bytes and the request
/// path, with the signer the clients use.
pub(crate) async fn access_token(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Option<Map<String, Value>> = serde_json::from_slice(&body).ok();
    let echo = Echo {
        english: parsed
            .as_ref()
            .and_then(|p| p.get("locale"))
            .and_then(Value::as_str)
            == Some("en"),
        conversation_id: parsed
            .as_ref()
            .and_then(|p| p.get("conversationId"))
            .cloned(),
    };
    let unauthorized = StatusCode::UNAUTHORIZED;
    let Some(auth) = parse_authorization(&headers) else {
        return failure(&shared, &echo, unauthorized, "1000", INVALID_SIGNATURE);
    };
    let credentials = &shared.credentials;
    if auth.api_key != credentials.iyzico_api_key {
        return failure(&shared, &echo, unauthorized, "1001", API_KEY_NOT_FOUND);
    }
    if let Some(rnd) = headers.get(iyzwsv2::RANDOM_KEY_HEADER)
        && rnd.as_bytes() != auth.random_key.as_bytes()
    {
        return failure(&shared, &echo, unauthorized, "1000", INVALID_SIGNATURE);
    }
    let expected = iyzwsv2::signature(
        &credentials.iyzico_secret_key,
        &auth.random_key,
        uri.path(),
        &body,
    );
    if expected != auth.signature {
        return failure(&shared, &echo, unauthorized, "1000", INVALID_SIGNATURE);
    }
    let bad_request = StatusCode::BAD_REQUEST;
    let Some(request) = parsed else {
        return failure(&shared, &echo, bad_request, "11", INVALID_REQUEST);
    };
    let field = |name: &str| {
        request
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let (Some(session_token), Some(member)) = (field("sessionToken"), field("memberIdentifier"))
    else {
        return failure(&shared, &echo, bad_request, "11", INVALID_REQUEST);
    };
    let known = shared
        .store()
        .pwi_sessions
        .get(session_token)
        .is_some_and(|m| m == member);
    if !known {
        return failure(&shared, &echo, bad_request, "260016", SESSION_NOT_FOUND);
    }
    let now = now_epoch_secs();
    let lifetime = shared.behaviour().lifetimes.pwi.as_secs();
    let access_token = shared.jwt(
        "HS256",
        &json!({
            "sub": member,
            "iat": now,
            "exp": now + lifetime,
            "jti": shared.token(""),
        }),
    );
    let mut body = Map::new();
    body.insert("status".into(), json!("success"));
    body.insert(
        "locale".into(),
        json!(if echo.english { "en" } else { "tr" }),
    );
    body.insert("systemTime".into(), json!(now_epoch_millis()));
    if let Some(id) = echo.conversation_id {
        body.insert("conversationId".into(), id);
    }
    body.insert("accessToken".into(), json!(access_token));
    json(StatusCode::OK, &Value::Object(body))
}
