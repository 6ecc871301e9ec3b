//! myPOS / iCard REST API OAuth: client credentials and RFC 7009 revocation.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::state::Shared;
use crate::util::{Basic, Form, basic_auth, expires_in, is_form, token_json};

/// `{"error": ...}`; a 401 says how to authenticate.
fn error(status: StatusCode, error: &str) -> Response {
    let mut response = token_json(status, &json!({ "error": error }));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"mypos\""),
        );
    }
    response
}

/// Checks the colon-joined Basic credentials, decoded as configured
/// (plain by default, as myPOS documents them).
fn authenticated(shared: &Shared, headers: &HeaderMap) -> bool {
    let Basic::Credentials { id, secret } = basic_auth(headers, shared.behaviour().mypos_basic)
    else {
        return false;
    };
    id == shared.credentials.mypos_client_id
        && secret == shared.credentials.mypos_client_secret.expose_secret()
}

/// Whether every space-separated scope in `scope` is one the sandbox
/// grants (RFC 6749 §3.3); an empty list grants any.
fn scopes_known(shared: &Shared, scope: &str) -> bool {
    let known = &shared.credentials.mypos_scopes;
    known.is_empty()
        || scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .all(|s| known.iter().any(|k| k == s))
}

/// `POST /oauth/token`: `client_credentials` only, with a scope the
/// sandbox knows (`webhooks`, the docs' only one) or none.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authenticated(&shared, &headers) {
        return error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if !is_form(&headers) {
        return error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let form = Form::parse(&body);
    if form.duplicate.is_some() {
        return error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    match form.get("grant_type") {
        None => return error(StatusCode::BAD_REQUEST, "invalid_request"),
        Some("client_credentials") => {}
        Some(_) => return error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
    let scope = form.get("scope");
    if scope.is_some_and(|scope| !scopes_known(&shared, scope)) {
        return error(StatusCode::BAD_REQUEST, "invalid_scope");
    }
    let behaviour = shared.behaviour();
    let access_token = shared.token("mypos-at-");
    shared.store().mypos_active.insert(access_token.clone());
    let mut body = Map::new();
    body.insert("access_token".into(), json!(access_token));
    body.insert("token_type".into(), json!("Bearer"));
    body.insert(
        "expires_in".into(),
        expires_in(
            behaviour.lifetimes.mypos.as_secs(),
            behaviour.expires_in_as_string,
        ),
    );
    // RFC 6749 §5.1: the scope may be left out when it is the one asked
    // for; the sandbox echoes an asked (known) scope and leaves it out
    // otherwise.
    if let Some(scope) = scope {
        body.insert("scope".into(), json!(scope));
    }
    token_json(StatusCode::OK, &Value::Object(body))
}

/// `POST /oauth/revoke`: 200 for any token, known or not (RFC 7009 §2.2).
pub(crate) async fn revoke(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authenticated(&shared, &headers) {
        return error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if !is_form(&headers) {
        return error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let form = Form::parse(&body);
    let Some(token) = form.get("token") else {
        return error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let mut store = shared.store();
    if store.mypos_active.remove(token) {
        store.mypos_revoked.insert(token.to_owned());
    }
    Response::new(Body::empty())
}
