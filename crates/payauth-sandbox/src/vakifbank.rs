//! VakıfBank API Gateway (a Layer7 OAuth Toolkit): authorize and token.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::config::{ClientAuthCheck, ResourceCheck};
use crate::state::{Shared, VakifbankCode, VakifbankRefresh};
use crate::util::{Basic, Form, base64url, basic_auth, expires_in, is_form, token_json};

/// The numeric `x-ca-err` codes the sandbox sends. Only `3003201` (invalid
/// client credentials) is one seen from the real gateway; the others are
/// the sandbox's own, so that every error carries a number as the gateway's
/// do. Clients should show the number, not interpret it.
mod ca_err {
    pub(super) const INVALID_REQUEST: u32 = 3_000_102;
    pub(super) const UNSUPPORTED_GRANT_TYPE: u32 = 3_000_104;
    pub(super) const INVALID_SCOPE: u32 = 3_000_105;
    pub(super) const INVALID_REDIRECT_URI: u32 = 3_000_106;
    pub(super) const INVALID_CLIENT: u32 = 3_003_201;
    pub(super) const INVALID_GRANT: u32 = 3_003_202;
    pub(super) const INVALID_TARGET: u32 = 3_000_107;
}

/// An RFC 6749 error body with the gateway's `x-ca-err` header.
fn error(status: StatusCode, error: &str, description: &str, ca_err: u32) -> Response {
    let mut response = token_json(
        status,
        &json!({ "error": error, "error_description": description }),
    );
    response
        .headers_mut()
        .insert("x-ca-err", HeaderValue::from(ca_err));
    response
}

/// Whether every space-separated scope in `scope` is one the sandbox knows.
fn scopes_known(shared: &Shared, scope: &str) -> bool {
    let known = &shared.credentials.vakifbank_scopes;
    known.is_empty()
        || scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .all(|s| known.iter().any(|k| k == s))
}

fn redirect_uri_allowed(shared: &Shared, uri: &str) -> bool {
    let registered = &shared.credentials.vakifbank_redirect_uris;
    if registered.is_empty() {
        (uri.starts_with("http://") || uri.starts_with("https://")) && !uri.contains('#')
    } else {
        registered.iter().any(|r| r == uri)
    }
}

/// A 302 to `redirect_uri` with `params` added to its query.
fn redirect(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    let location = format!("{redirect_uri}{separator}{}", query.finish());
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::FOUND;
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /auth/oauth/v2/authorize` (retail customers).
pub(crate) async fn authorize_retail(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    authorize(&shared, &uri)
}

/// `GET /auth/oauth/v2/commercial/authorize` (corporate customers).
pub(crate) async fn authorize_corporate(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    authorize(&shared, &uri)
}

/// Validates the request, plays the customer's login and consent, and
/// redirects. Errors about the client or the redirect URI are shown to the
/// "browser" (HTTP 400) instead of redirected, as RFC 6749 §4.1.2.1 demands.
fn authorize(shared: &Shared, uri: &Uri) -> Response {
    let query = Form::parse(uri.query().unwrap_or_default().as_bytes());
    let bad = StatusCode::BAD_REQUEST;
    if let Some(duplicate) = &query.duplicate {
        return error(
            bad,
            "invalid_request",
            &format!("{duplicate} is repeated"),
            ca_err::INVALID_REQUEST,
        );
    }
    let Some(client_id) = query.get("client_id") else {
        return error(
            bad,
            "invalid_request",
            "client_id is required",
            ca_err::INVALID_REQUEST,
        );
    };
    if client_id != shared.credentials.vakifbank_client_id {
        return error(
            bad,
            "invalid_client",
            "client_id is unknown",
            ca_err::INVALID_CLIENT,
        );
    }
    let Some(redirect_uri) = query.get("redirect_uri") else {
        return error(
            bad,
            "invalid_request",
            "redirect_uri is required",
            ca_err::INVALID_REDIRECT_URI,
        );
    };
    if !redirect_uri_allowed(shared, redirect_uri) {
        return error(
            bad,
            "invalid_request",
            "redirect_uri is not registered for this client",
            ca_err::INVALID_REDIRECT_URI,
        );
    }
    // From here on errors go back to the client through the redirect.
    let state = query.get("state");
    let fail = |error: &str| {
        let mut params = vec![("error", error)];
        if let Some(state) = state {
            params.push(("state", state));
        }
        redirect(redirect_uri, &params)
    };
    match query.get("response_type") {
        Some("code") => {}
        Some(_) => return fail("unsupported_response_type"),
        None => return fail("invalid_request"),
    }
    if !matches!(query.get("resource"), Some("sandbox" | "production")) {
        return fail("invalid_request");
    }
    let Some(scope) = query.get("scope") else {
        return fail("invalid_request");
    };
    if !scopes_known(shared, scope) {
        return fail("invalid_scope");
    }
    let pkce = match (
        query.get("code_challenge"),
        query.get("code_challenge_method"),
    ) {
        (None, None) => None,
        // RFC 7636 §4.3: no method means `plain`.
        (Some(challenge), method @ (None | Some("S256" | "plain"))) => {
            Some((challenge.to_owned(), method.unwrap_or("plain").to_owned()))
        }
        // A method without a challenge, or a method nobody knows.
        (_, Some(_)) => return fail("invalid_request"),
    };
    let behaviour = shared.behaviour();
    if behaviour.vakifbank_customer_refuses {
        return fail("access_denied");
    }
    let code = shared.token("vb-code-");
    shared.store().vakifbank_codes.insert(
        code.clone(),
        VakifbankCode {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            scope: scope.to_owned(),
            pkce,
            expires: Instant::now() + behaviour.lifetimes.auth_code,
        },
    );
    let mut params = vec![("code", code.as_str())];
    if let Some(state) = state {
        params.push(("state", state));
    }
    redirect(redirect_uri, &params)
}

/// The grants `/token` knows.
const GRANTS: [&str; 4] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "b2b_credentials",
];

/// Scope given when a client-credentials grant asks for none.
const DEFAULT_CLIENT_SCOPE: &str = "oob";
/// Scope given when a B2B grant asks for none.
const DEFAULT_B2B_SCOPE: &str = "account";

/// A refused token request, turned into a [`Response`] at the end.
struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: String,
    ca_err: u32,
    /// Add `WWW-Authenticate` (a 401 to a client that used HTTP Basic).
    challenge: bool,
}

impl Refusal {
    fn new(error: &'static str, description: impl Into<String>, ca_err: u32) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
            ca_err,
            challenge: false,
        }
    }

    fn response(self) -> Response {
        let mut response = error(self.status, self.error, &self.description, self.ca_err);
        if self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"vakifbank\""),
            );
        }
        response
    }
}

fn invalid_request(description: impl Into<String>) -> Refusal {
    Refusal::new("invalid_request", description, ca_err::INVALID_REQUEST)
}

fn invalid_grant(description: &str) -> Refusal {
    Refusal::new("invalid_grant", description, ca_err::INVALID_GRANT)
}

fn invalid_scope() -> Refusal {
    Refusal::new(
        "invalid_scope",
        "scope is not allowed",
        ca_err::INVALID_SCOPE,
    )
}

/// `POST /auth/oauth/v2/token`: every grant.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match grant(&shared, &headers, &body) {
        Ok((scope, with_refresh)) => issue(&shared, scope, with_refresh),
        Err(refusal) => refusal.response(),
    }
}

/// Checks the request and applies its grant.
fn grant(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Granted {
    if !is_form(headers) {
        return Err(invalid_request(
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    let form = Form::parse(body);
    if let Some(duplicate) = &form.duplicate {
        return Err(invalid_request(format!("{duplicate} is repeated")));
    }
    let Some(grant_type) = form.get("grant_type") else {
        return Err(invalid_request("grant_type is required"));
    };
    if !GRANTS.contains(&grant_type) {
        return Err(Refusal::new(
            "unsupported_grant_type",
            "grant_type is not supported",
            ca_err::UNSUPPORTED_GRANT_TYPE,
        ));
    }
    if !(grant_type == "authorization_code" && public_exchange(shared, headers, &form)) {
        authenticate(shared, headers, &form)?;
    }
    resource(shared, &form)?;
    match grant_type {
        "authorization_code" => authorization_code(shared, &form),
        "refresh_token" => refresh_token(shared, &form),
        "client_credentials" => client_credentials(shared, &form),
        _ => b2b_credentials(shared, &form),
    }
}

/// The token response.
fn issue(shared: &Shared, scope: String, with_refresh: bool) -> Response {
    let behaviour = shared.behaviour();
    let lifetime = behaviour.lifetimes.vakifbank.as_secs();
    let mut body = Map::new();
    body.insert("access_token".into(), json!(shared.token("vb-at-")));
    body.insert("token_type".into(), json!("Bearer"));
    body.insert(
        "expires_in".into(),
        expires_in(lifetime, behaviour.expires_in_as_string),
    );
    if with_refresh {
        let refresh_token = shared.token("vb-rt-");
        shared.store().vakifbank_refresh.insert(
            refresh_token.clone(),
            VakifbankRefresh {
                client_id: shared.credentials.vakifbank_client_id.clone(),
                scope: scope.clone(),
            },
        );
        body.insert("refresh_token".into(), json!(refresh_token));
    }
    body.insert("scope".into(), Value::String(scope));
    token_json(StatusCode::OK, &Value::Object(body))
}

/// Client authentication: the body or HTTP Basic, never both (RFC 6749
/// §2.3), or only the one [`ClientAuthCheck`] allows.
fn authenticate(shared: &Shared, headers: &HeaderMap, form: &Form) -> Result<(), Refusal> {
    let behaviour = shared.behaviour();
    let basic = basic_auth(headers, behaviour.vakifbank_basic);
    let in_body = form.has("client_secret");
    match (behaviour.vakifbank_client_auth, &basic) {
        (ClientAuthCheck::BodyOnly, Basic::Credentials { .. } | Basic::Malformed) => {
            return Err(invalid_client(shared, false));
        }
        (ClientAuthCheck::BasicOnly, Basic::Missing) => return Err(invalid_client(shared, true)),
        _ => {}
    }
    let (client_id, client_secret, used_basic) = match basic {
        Basic::Credentials { id, secret } => {
            if in_body {
                return Err(invalid_request(
                    "more than one client authentication method",
                ));
            }
            if form.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(invalid_request(
                    "client_id differs from the Authorization header",
                ));
            }
            (Some(id), Some(secret), true)
        }
        Basic::Malformed => (None, None, true),
        Basic::Missing => (
            form.get("client_id").map(str::to_owned),
            form.get("client_secret").map(str::to_owned),
            false,
        ),
    };
    let credentials = &shared.credentials;
    if client_id.as_deref() == Some(credentials.vakifbank_client_id.as_str())
        && client_secret.as_deref() == Some(credentials.vakifbank_client_secret.expose_secret())
    {
        return Ok(());
    }
    Err(invalid_client(shared, used_basic))
}

/// `invalid_client`, with the configured status; a 401 to a client that
/// used (or must use) HTTP Basic says how to authenticate.
fn invalid_client(shared: &Shared, challenge: bool) -> Refusal {
    let status = StatusCode::from_u16(shared.behaviour().vakifbank_invalid_client_status)
        .unwrap_or(StatusCode::UNAUTHORIZED);
    Refusal {
        status,
        challenge: challenge && status == StatusCode::UNAUTHORIZED,
        ..Refusal::new(
            "invalid_client",
            "Client authentication failed",
            ca_err::INVALID_CLIENT,
        )
    }
}

/// Whether a code exchange goes without client authentication, as the
/// docs list it, and the sandbox is told to take that: no HTTP Basic and
/// no `client_id` or `client_secret` in the body.
fn public_exchange(shared: &Shared, headers: &HeaderMap, form: &Form) -> bool {
    shared.behaviour().vakifbank_public_exchange
        && !headers.contains_key(header::AUTHORIZATION)
        && !form.has("client_id")
        && !form.has("client_secret")
}

/// `resource` on a token request, as [`ResourceCheck`] says: the API plan
/// (optional or required), or an RFC 8707 §2 indicator (an absolute URI
/// without a fragment).
fn resource(shared: &Shared, form: &Form) -> Result<(), Refusal> {
    let check = shared.behaviour().vakifbank_resource;
    let Some(resource) = form.get("resource") else {
        return if check == ResourceCheck::Required {
            Err(invalid_request("resource (the API plan) is required"))
        } else {
            Ok(())
        };
    };
    if check != ResourceCheck::Rfc8707 {
        return if matches!(resource, "sandbox" | "production") {
            Ok(())
        } else {
            Err(invalid_request("resource must be sandbox or production"))
        };
    }
    let absolute = resource
        .split_once("://")
        .is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty())
        && !resource.contains('#');
    if absolute {
        return Ok(());
    }
    Err(Refusal::new(
        "invalid_target",
        "resource is not an absolute URI (RFC 8707)",
        ca_err::INVALID_TARGET,
    ))
}

/// What a grant gives: the scope and whether a refresh token comes with it.
type Granted = Result<(String, bool), Refusal>;

fn authorization_code(shared: &Shared, form: &Form) -> Granted {
    let (Some(code), Some(redirect_uri)) = (form.get("code"), form.get("redirect_uri")) else {
        return Err(invalid_request("code and redirect_uri are required"));
    };
    // Single use: the code is gone whatever happens next.
    let Some(issued) = shared.store().vakifbank_codes.remove(code) else {
        return Err(invalid_grant("code is unknown or already used"));
    };
    if issued.client_id != shared.credentials.vakifbank_client_id
        || Instant::now() >= issued.expires
    {
        return Err(invalid_grant("code is expired"));
    }
    if issued.redirect_uri != redirect_uri {
        return Err(invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    if let Some((challenge, method)) = &issued.pkce {
        let Some(verifier) = form.get("code_verifier") else {
            return Err(invalid_grant("code_verifier is required"));
        };
        let derived = if method == "S256" {
            base64url(Sha256::digest(verifier.as_bytes()))
        } else {
            verifier.to_owned()
        };
        if &derived != challenge {
            return Err(invalid_grant(
                "code_verifier does not match the code_challenge",
            ));
        }
    }
    Ok((issued.scope, true))
}

fn refresh_token(shared: &Shared, form: &Form) -> Granted {
    let Some(refresh_token) = form.get("refresh_token") else {
        return Err(invalid_request("refresh_token is required"));
    };
    // Rotation: a refresh token works once.
    let Some(issued) = shared.store().vakifbank_refresh.remove(refresh_token) else {
        return Err(invalid_grant("refresh_token is unknown or already used"));
    };
    if issued.client_id != shared.credentials.vakifbank_client_id {
        return Err(invalid_grant("refresh_token was issued to another client"));
    }
    let scope = match form.get("scope") {
        None => issued.scope,
        Some(asked) => {
            let granted: Vec<&str> = issued.scope.split(' ').collect();
            if !asked
                .split(' ')
                .all(|s| s.is_empty() || granted.contains(&s))
            {
                return Err(invalid_scope());
            }
            asked.to_owned()
        }
    };
    Ok((scope, true))
}

fn client_credentials(shared: &Shared, form: &Form) -> Granted {
    let scope = form.get("scope").unwrap_or(DEFAULT_CLIENT_SCOPE);
    if !scopes_known(shared, scope) {
        return Err(invalid_scope());
    }
    Ok((scope.to_owned(), false))
}

fn b2b_credentials(shared: &Shared, form: &Form) -> Granted {
    let Some(consent_id) = form.get("consentId") else {
        return Err(invalid_request("consentId is required"));
    };
    if consent_id != shared.credentials.vakifbank_consent_id {
        return Err(invalid_grant("consentId is unknown"));
    }
    let scope = form.get("scope").unwrap_or(DEFAULT_B2B_SCOPE);
    if !scopes_known(shared, scope) {
        return Err(invalid_scope());
    }
    Ok((scope.to_owned(), false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_example_verifier_matches_its_challenge() {
        // RFC 7636 appendix B.
        assert_eq!(
            base64url(Sha256::digest(
                b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
            )),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn a_redirect_keeps_an_existing_query() {
        let response = redirect("http://localhost/cb?x=1", &[("code", "a b")]);
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(
            response.headers()[header::LOCATION],
            "http://localhost/cb?x=1&code=a+b"
        );
    }
}
