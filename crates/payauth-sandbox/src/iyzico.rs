//! iyzico Terminal API login: `/in-store/oauth2/{authorize,token,token/refresh}`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use crate::config::TimestampCheck;
use crate::state::{IyzicoCode, Shared};
use crate::util::{
    Basic, Form, basic_auth, expires_in, is_form, iso8601_turkey, json, now_epoch_millis,
    now_epoch_secs, token_json,
};

/// The only scope the Terminal API login knows.
const SCOPE: &str = "iyzipayApiGateway";

/// `/authorize`'s error shape: `{errorCode, description, uri}`.
fn authorize_error(status: StatusCode, code: &str, description: &str) -> Response {
    json(
        status,
        &json!({ "errorCode": code, "description": description, "uri": "" }),
    )
}

fn parameter_error(status: StatusCode, code: &str, parameter: &str) -> Response {
    authorize_error(status, code, &format!("OAuth 2.0 Parameter: {parameter}"))
}

/// `POST /in-store/oauth2/authorize`: form body, every field required.
pub(crate) async fn authorize(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_form(&headers) {
        return authorize_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let form = Form::parse(&body);
    if let Some(duplicate) = &form.duplicate {
        return parameter_error(StatusCode::BAD_REQUEST, "invalid_request", duplicate);
    }
    let mut fields = [""; 7];
    for (slot, name) in fields.iter_mut().zip([
        "scope",
        "client_id",
        "client_secret",
        "response_type",
        "username",
        "password",
        "request_timestamp",
    ]) {
        match form.get(name) {
            Some(value) => *slot = value,
            None => return parameter_error(StatusCode::BAD_REQUEST, "invalid_request", name),
        }
    }
    let [
        scope,
        client_id,
        client_secret,
        response_type,
        username,
        password,
        request_timestamp,
    ] = fields;
    if response_type != "code" {
        return parameter_error(
            StatusCode::BAD_REQUEST,
            "unsupported_response_type",
            "response_type",
        );
    }
    if scope != SCOPE {
        return parameter_error(StatusCode::BAD_REQUEST, "invalid_scope", "scope");
    }
    let behaviour = shared.behaviour();
    if !timestamp_ok(request_timestamp, behaviour.iyzico_request_timestamp) {
        return parameter_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "request_timestamp",
        );
    }
    let credentials = &shared.credentials;
    if client_id != credentials.iyzico_client_id
        || client_secret != credentials.iyzico_client_secret.expose_secret()
    {
        return authorize_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    // [I] The error code for a wrong username or password is not documented.
    if username != credentials.iyzico_username
        || password != credentials.iyzico_password.expose_secret()
    {
        return authorize_error(StatusCode::UNAUTHORIZED, "access_denied", "Bad credentials");
    }
    let lifetime = behaviour.lifetimes.auth_code;
    let code = shared.token("iyz-code-");
    shared.store().iyzico_codes.insert(
        code.clone(),
        IyzicoCode {
            client_id: client_id.to_owned(),
            expires: Instant::now() + lifetime,
        },
    );
    let issued = now_epoch_secs();
    json(
        StatusCode::OK,
        &json!({
            "code": code,
            "issuedAt": iso8601_turkey(issued),
            "expiredAt": iso8601_turkey(issued + lifetime.as_secs()),
        }),
    )
}

fn timestamp_ok(value: &str, check: TimestampCheck) -> bool {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Ok(sent) = value.parse::<u64>() else {
        return false;
    };
    let seconds = || sent.abs_diff(now_epoch_secs()) <= 300;
    let milliseconds = || sent.abs_diff(now_epoch_millis()) <= 300_000;
    match check {
        TimestampCheck::Now => seconds() || milliseconds(),
        TimestampCheck::Digits => true,
        TimestampCheck::Seconds => seconds(),
        TimestampCheck::Milliseconds => milliseconds(),
    }
}

/// `{"error": code}`; a 401 also says how to authenticate (RFC 6749 §5.2).
fn oauth_error(status: StatusCode, error: &str) -> Response {
    let mut response = token_json(status, &json!({ "error": error }));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"iyzico\""),
        );
    }
    response
}

/// `POST /in-store/oauth2/token`: `authorization_code` (or `refresh_token`).
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token_grant(&shared, &headers, &body, true)
}

/// `POST /in-store/oauth2/token/refresh`: `refresh_token` only.
pub(crate) async fn refresh(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token_grant(&shared, &headers, &body, false)
}

fn token_grant(shared: &Shared, headers: &HeaderMap, body: &[u8], allow_code: bool) -> Response {
    let Basic::Credentials { id, secret } = basic_auth(headers, shared.behaviour().iyzico_basic)
    else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    };
    let credentials = &shared.credentials;
    if id != credentials.iyzico_client_id
        || secret != credentials.iyzico_client_secret.expose_secret()
    {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if !is_form(headers) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let form = Form::parse(body);
    if form.duplicate.is_some() {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let granted = match form.get("grant_type") {
        None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request"),
        Some("authorization_code") if allow_code => {
            let Some(code) = form.get("code") else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
            };
            // Single use: the code is gone whatever happens next.
            let issued = shared.store().iyzico_codes.remove(code);
            issued.is_some_and(|c| c.client_id == id && Instant::now() < c.expires)
        }
        Some("refresh_token") => {
            let Some(refresh_token) = form.get("refresh_token") else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
            };
            // Rotation: a refresh token works once.
            let owner = shared.store().iyzico_refresh.remove(refresh_token);
            owner.is_some_and(|owner| owner == id)
        }
        Some(_) => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    if !granted {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let behaviour = shared.behaviour();
    let lifetime = behaviour.lifetimes.iyzico_terminal.as_secs();
    let now = now_epoch_secs();
    let access_token = shared.jwt(
        "RS256",
        &json!({
            "sub": credentials.iyzico_username,
            "client_id": id,
            "scope": [SCOPE],
            "iat": now,
            "exp": now + lifetime,
            "jti": shared.token(""),
        }),
    );
    let refresh_token = shared.token("iyz-rt-");
    shared
        .store()
        .iyzico_refresh
        .insert(refresh_token.clone(), id);
    token_json(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "refresh_token": refresh_token,
            "scope": SCOPE,
            "token_type": "Bearer",
            "expires_in": expires_in(lifetime, behaviour.expires_in_as_string),
        }),
    )
}
