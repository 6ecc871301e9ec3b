//! iyzico Pay with iyzico: the IYZWSv2-signed access-token endpoint, and
//! one later call that takes the token in its `access-token` header (the
//! member's last payment, as iyzico's "Last Payment Detail Info" page
//! documents it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::config::PwiFailureStyle;
use crate::iyzwsv2;
use crate::state::{PwiAccess, Shared};
use crate::util::{json, now_epoch_millis, now_epoch_secs};

/// The header the SDKs send the random key in, beside `Authorization`.
const RANDOM_KEY_HEADER: &str = "x-iyzi-rnd";
/// The header later calls carry the access token in, beside the signed
/// `Authorization` (iyzico's "Last Payment Detail Info" page).
const ACCESS_TOKEN_HEADER: &str = "access-token";
/// Live access tokens remembered at most: past it the expired go, and if
/// none has expired all go (a later call with one of them is refused).
const MAX_ACCESS_TOKENS: usize = 65_536;
/// The locales iyzico answers in. With none sent the sandbox answers in
/// `tr`, as iyzico's Turkish docs page says (its English page says `en`).
const LOCALES: [&str; 2] = ["tr", "en"];

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
/// iyzico documents no code for a missing, unknown or expired
/// `access-token`: `1005` is the sandbox's own.
const ACCESS_TOKEN_INVALID_CODE: &str = "1005";
const ACCESS_TOKEN_INVALID: (&str, &str) = ("Geçersiz access token", "Invalid access token");

/// `POST /v1/pay-with-iyzico/third-party-session/retrieve/access-token`.
///
/// Checked as iyzico would, in this order: the IYZWSv2 signature over the
/// endpoint path and the exact body bytes ([`iyzwsv2`], independent of
/// the client's signer), then `Content-Type: application/json`, a JSON
/// object body, a `locale` of `tr` or `en` when one is sent, and a known
/// session. Which error iyzico gives for a wrong content type or locale is
/// not documented: the sandbox answers its invalid-request envelope.
pub(crate) async fn access_token(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (echo, request) = match signed_request(&shared, &uri, &headers, &body) {
        Ok(signed) => signed,
        Err(failure) => return *failure,
    };
    let bad_request = StatusCode::BAD_REQUEST;
    if request
        .get("locale")
        .is_some_and(|l| !l.as_str().is_some_and(|l| LOCALES.contains(&l)))
    {
        return failure(&shared, &echo, bad_request, "11", INVALID_REQUEST);
    }
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
    issue(&shared, &echo, session_token, member)
}

/// The signed request's JSON object, or the failure to send: the
/// signature first, then `Content-Type: application/json` and a JSON
/// object body.
fn signed_request(
    shared: &Shared,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Echo, Map<String, Value>), Box<Response>> {
    let parsed: Option<Map<String, Value>> = serde_json::from_slice(body).ok();
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
    if let Err((status, code, text)) = verify(shared, uri.path(), headers, body) {
        return Err(Box::new(failure(shared, &echo, status, code, text)));
    }
    match parsed.filter(|_| is_json(headers)) {
        Some(request) => Ok((echo, request)),
        None => Err(Box::new(failure(
            shared,
            &echo,
            StatusCode::BAD_REQUEST,
            "11",
            INVALID_REQUEST,
        ))),
    }
}

/// `POST /v1/pay-with-iyzico/third-party-session/retrieve/last-payment-info`:
/// the member's last payment, for a signed request that carries, in its
/// `access-token` header, a live access token issued for the
/// `sessionToken` and `memberIdentifier` it names.
pub(crate) async fn last_payment_info(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (echo, request) = match signed_request(&shared, &uri, &headers, &body) {
        Ok(signed) => signed,
        Err(failure) => return *failure,
    };
    let field = |name: &str| {
        request
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let (Some(session_token), Some(member)) = (field("sessionToken"), field("memberIdentifier"))
    else {
        return failure(
            &shared,
            &echo,
            StatusCode::BAD_REQUEST,
            "11",
            INVALID_REQUEST,
        );
    };
    let access_token = headers
        .get(ACCESS_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok());
    let opens = access_token.is_some_and(|token| {
        shared.store().pwi_access.get(token).is_some_and(|access| {
            access.session_token == session_token
                && access.member_identifier == member
                && Instant::now() < access.expires
        })
    });
    if !opens {
        return failure(
            &shared,
            &echo,
            StatusCode::UNAUTHORIZED,
            ACCESS_TOKEN_INVALID_CODE,
            ACCESS_TOKEN_INVALID,
        );
    }
    let mut body = envelope(&echo);
    body.insert(
        "card".into(),
        json!({
            "cardHolderName": "Sandbox Member",
            "cardAssociation": "MASTER_CARD",
            "cardFamily": "Sandbox",
            "binNumber": "55555555",
            "lastFourDigits": "0000",
            "cardBankName": "Sandbox Bank",
            "cardType": "CREDIT_CARD",
            "expireMonth": "12",
            "expireYear": "2099",
            "expired": false,
            "willExpireSoon": false,
        }),
    );
    body.insert("paymentType".into(), json!("CARD_PAYMENT"));
    body.insert("sessionToken".into(), json!(session_token));
    body.insert("token".into(), json!(shared.token("pwi-card-")));
    body.insert("paymentId".into(), json!(1));
    json(StatusCode::OK, &Value::Object(body))
}

/// The success envelope's common fields: `status`, `locale`,
/// `systemTime` and the echoed `conversationId`.
fn envelope(echo: &Echo) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("status".into(), json!("success"));
    body.insert(
        "locale".into(),
        json!(if echo.english { "en" } else { "tr" }),
    );
    body.insert("systemTime".into(), json!(now_epoch_millis()));
    if let Some(id) = &echo.conversation_id {
        body.insert("conversationId".into(), id.clone());
    }
    body
}

type Refusal = (StatusCode, &'static str, (&'static str, &'static str));

/// The IYZWSv2 check: the header parses, names the merchant's API key,
/// agrees with `x-iyzi-rnd` when that is sent, and signs `path` and
/// `body`.
fn verify(shared: &Shared, path: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
    let unauthorized = StatusCode::UNAUTHORIZED;
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(iyzwsv2::parse)
        .ok_or((unauthorized, "1000", INVALID_SIGNATURE))?;
    let credentials = &shared.credentials;
    if auth.api_key != credentials.iyzico_api_key {
        return Err((unauthorized, "1001", API_KEY_NOT_FOUND));
    }
    if let Some(rnd) = headers.get(RANDOM_KEY_HEADER)
        && rnd.as_bytes() != auth.random_key.as_bytes()
    {
        return Err((unauthorized, "1000", INVALID_SIGNATURE));
    }
    let expected = iyzwsv2::expected(
        credentials.iyzico_secret_key.expose_secret(),
        &auth.random_key,
        path,
        body,
    );
    if expected != auth.signature {
        return Err((unauthorized, "1000", INVALID_SIGNATURE));
    }
    Ok(())
}

/// Whether the request says its body is JSON.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// The success envelope with a fresh five-minute JWT, remembered for the
/// later calls that present it.
fn issue(shared: &Shared, echo: &Echo, session_token: &str, member: &str) -> Response {
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
    let mut store = shared.store();
    if store.pwi_access.len() >= MAX_ACCESS_TOKENS {
        let now = Instant::now();
        store.pwi_access.retain(|_, access| access.expires > now);
        if store.pwi_access.len() >= MAX_ACCESS_TOKENS {
            store.pwi_access.clear();
        }
    }
    store.pwi_access.insert(
        access_token.clone(),
        PwiAccess {
            session_token: session_token.to_owned(),
            member_identifier: member.to_owned(),
            expires: Instant::now() + Duration::from_secs(lifetime),
        },
    );
    drop(store);
    let mut body = envelope(echo);
    body.insert("accessToken".into(), json!(access_token));
    json(StatusCode::OK, &Value::Object(body))
}
