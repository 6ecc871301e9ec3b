//! The VakıfBank gateway flows: the authorization-code dance (authorize
//! URL, callback, exchange) and the refresh, client-credentials and B2B
//! grants as [`TokenSource`]s.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use payauth_core::http;
use payauth_core::oauth2::{TokenFields, join_scopes, token_from_response};
use payauth_core::{
    AccessToken, BoxFuture, Clock, Error, ErrorKind, Issued, Secret, SystemClock, TokenSource,
};
use sha2::{Digest, Sha256};

use crate::auth::{ClientAuth, ClientAuthStyle};
use crate::generated::gateway::{Client, types};

pub use crate::generated::gateway::types::Resource;

/// The gateway host, for sandbox and production alike (`resource` picks
/// the API plan).
pub const BASE_URL: &str = "https://apigw.vakifbank.com.tr:8443";
/// Lifetime assumed when a token response has no `expires_in`.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// The header in which the Layer7 gateway sends its numeric error code.
pub const ERROR_CODE_HEADER: &str = "x-ca-err";

/// Which customers log in on the authorize page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Retail customers: `/auth/oauth/v2/authorize`.
    Retail,
    /// Corporate customers: `/auth/oauth/v2/commercial/authorize`.
    Corporate,
}

impl Channel {
    fn path(self) -> &'static str {
        match self {
            Self::Retail => "/auth/oauth/v2/authorize",
            Self::Corporate => "/auth/oauth/v2/commercial/authorize",
        }
    }
}

/// Everything the VakıfBank flows need.
#[derive(Debug, Clone)]
pub struct VakifBankConfig {
    /// The API key from the application page.
    pub client_id: String,
    /// The API secret from the application page.
    pub client_secret: Secret,
    /// `sandbox` or `production` (the API plan; same host).
    pub resource: Resource,
    /// Client credentials in the body (default, as documented) or HTTP
    /// Basic (unverified).
    pub client_auth: ClientAuthStyle,
    /// The gateway's base URL (tests and the sandbox change it).
    pub base_url: String,
    /// Allow plain `http://` to a non-loopback host (never in production).
    pub allow_insecure_http: bool,
}

impl VakifBankConfig {
    /// A configuration for the real gateway, credentials in the body.
    pub fn new(client_id: impl Into<String>, client_secret: Secret, resource: Resource) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret,
            resource,
            client_auth: ClientAuthStyle::Body,
            base_url: BASE_URL.to_owned(),
            allow_insecure_http: false,
        }
    }
}

/// The VakıfBank gateway: builds authorize URLs, exchanges codes, and
/// hands out token sources for each grant. Cheap to clone.
#[derive(Clone)]
pub struct VakifBank {
    client: Client,
    base_url: String,
    client_id: String,
    client_secret: Secret,
    resource: Resource,
    style: ClientAuthStyle,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for VakifBank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VakifBank")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("resource", &self.resource)
            .field("client_auth", &self.style)
            .finish_non_exhaustive()
    }
}

/// An authorization in progress: what the callback must be checked
/// against. Keep it server-side (a session), never in the browser.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    /// The URL to send the customer's browser to.
    pub url: reqwest::Url,
    /// The CSPRNG `state` sent with it.
    pub state: Secret,
    /// The redirect URI, repeated in the exchange.
    pub redirect_uri: String,
    /// The PKCE verifier, when PKCE is on.
    pub code_verifier: Option<Secret>,
}

impl PendingAuthorization {
    /// Reads the redirect back to `redirect_uri` (a full URL or its query
    /// string): checks `state` in constant time and returns the code.
    ///
    /// # Errors
    /// The kind of the OAuth `error` when the customer or bank refused
    /// (`access_denied` is [`ErrorKind::AccessDenied`]) and
    /// [`ErrorKind::Provider`] for a code payauth does not know (no verdict,
    /// as everywhere), both with the code kept;
    /// [`ErrorKind::InvalidRequest`] when the state is missing or does not
    /// match (a forged or stale callback); [`ErrorKind::Malformed`] when
    /// there is no code.
    pub fn callback(&self, redirect: &str) -> Result<Secret, Error> {
        let query = redirect.split_once('?').map_or(redirect, |(_, q)| q);
        let query = query.split('#').next().unwrap_or_default();
        let mut code = None;
        let mut state = None;
        let mut error = None;
        let mut description = None;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "code" => code = Some(Secret::new(value.into_owned())),
                "state" => state = Some(Secret::new(value.into_owned())),
                "error" => error = Some(value.into_owned()),
                "error_description" => description = Some(value.into_owned()),
                _ => {}
            }
        }
        if state.as_ref() != Some(&self.state) {
            return Err(Error::new(ErrorKind::InvalidRequest).with_description(
                "the callback's state does not match the authorization (forged or stale redirect)",
            ));
        }
        if let Some(error) = error {
            let kind = ErrorKind::from_oauth_code(&error).unwrap_or(ErrorKind::Provider);
            let mut out = Error::new(kind)
                .with_provider_code(error)
                .with_description("the bank's redirect carries an error instead of a code");
            if let Some(description) = description {
                out = out.with_description(description);
            }
            return Err(out);
        }
        code.filter(|c| !c.is_empty()).ok_or_else(|| {
            Error::new(ErrorKind::Malformed).with_description("the callback carries no code")
        })
    }
}

impl VakifBank {
    /// The gateway over a shared `http` client.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for missing credentials or a base URL that is
    /// not `https://` (plain `http://` only to loopback unless allowed).
    pub fn new(config: VakifBankConfig, http: reqwest::Client) -> Result<Self, Error> {
        if config.client_id.is_empty() || config.client_secret.is_empty() {
            return Err(Error::new(ErrorKind::Config)
                .with_description("VakıfBank needs a client id and a client secret"));
        }
        let base_url = http::check_base_url(&config.base_url, config.allow_insecure_http)?;
        let auth = ClientAuth {
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            style: config.client_auth,
        };
        Ok(Self {
            client: Client::new_with_client(&base_url, http, auth),
            base_url,
            client_id: config.client_id,
            client_secret: config.client_secret,
            resource: config.resource,
            style: config.client_auth,
            clock: Arc::new(SystemClock),
        })
    }

    /// Reads time from `clock` (for tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Starts an authorization: the URL for the customer's browser, with a
    /// fresh CSPRNG `state` and, when `pkce` is set, an S256 challenge (not
    /// in VakıfBank's docs: off unless you know your plan accepts it).
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when no randomness is available.
    pub fn authorize_url(
        &self,
        channel: Channel,
        scopes: &[&str],
        redirect_uri: &str,
        pkce: bool,
    ) -> Result<PendingAuthorization, Error> {
        let state = Secret::new(payauth_core::random::hex(16)?);
        let code_verifier = if pkce {
            // 32 random bytes as 64 hex digits: within RFC 7636's 43-128.
            Some(Secret::new(payauth_core::random::hex(32)?))
        } else {
            None
        };
        let mut url = reqwest::Url::parse(&format!("{}{}", self.base_url, channel.path()))
            .map_err(|e| {
                Error::new(ErrorKind::Config).with_description(format!("bad authorize URL: {e}"))
            })?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("client_id", &self.client_id)
                .append_pair("response_type", "code")
                .append_pair("scope", &join_scopes(scopes))
                .append_pair("state", state.expose_secret())
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("resource", &self.resource.to_string());
            if let Some(verifier) = &code_verifier {
                let challenge =
                    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose_secret().as_bytes()));
                query
                    .append_pair("code_challenge", &challenge)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        Ok(PendingAuthorization {
            url,
            state,
            redirect_uri: redirect_uri.to_owned(),
            code_verifier,
        })
    }

    /// Exchanges the code from [`PendingAuthorization::callback`] for a
    /// token pair (`redirect_uri` and the PKCE verifier repeated). Not
    /// retried: a code is single-use.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidGrant`] for an unknown, used or expired code;
    /// [`ErrorKind::InvalidClient`] for refused credentials (400 or 401);
    /// [`ErrorKind::Refused`] for a 401 or 403 that does not say why, with
    /// the Layer7 `x-ca-err` code kept when the gateway sent one.
    pub async fn exchange(
        &self,
        pending: &PendingAuthorization,
        code: &Secret,
    ) -> Result<AccessToken, Error> {
        let body = types::TokenRequest {
            grant_type: "authorization_code".to_owned(),
            code: Some(code.clone().into()),
            redirect_uri: Some(pending.redirect_uri.clone()),
            code_verifier: pending.code_verifier.clone().map(Into::into),
            ..self.request_base()
        };
        self.token(&body).await
    }

    /// A token source that renews with the refresh token it is handed (the
    /// cache hands it the last token's), keeping rotated ones; without one,
    /// or when the bank refuses it, [`ErrorKind::InvalidGrant`]: the
    /// customer must log in again.
    #[must_use]
    pub fn refresh_source(&self, scopes: &[&str]) -> RefreshGrant {
        RefreshGrant {
            bank: self.clone(),
            scope: join_scopes(scopes),
        }
    }

    /// A client-credentials token source for open and private APIs.
    #[must_use]
    pub fn client_credentials(&self, scopes: &[&str]) -> ClientCredentialsGrant {
        ClientCredentialsGrant {
            bank: self.clone(),
            scope: join_scopes(scopes),
        }
    }

    /// A B2B-credentials token source for one consent.
    #[must_use]
    pub fn b2b_credentials(
        &self,
        scopes: &[&str],
        consent_id: impl Into<String>,
    ) -> B2bCredentialsGrant {
        B2bCredentialsGrant {
            bank: self.clone(),
            scope: join_scopes(scopes),
            consent_id: consent_id.into(),
        }
    }

    /// The fields every grant shares: client credentials when they go in
    /// the body.
    fn request_base(&self) -> types::TokenRequest {
        let in_body = self.style == ClientAuthStyle::Body;
        types::TokenRequest {
            grant_type: String::new(),
            client_id: in_body.then(|| self.client_id.clone()),
            client_secret: in_body.then(|| self.client_secret.clone().into()),
            code: None,
            code_verifier: None,
            consent_id: None,
            redirect_uri: None,
            refresh_token: None,
            resource: None,
            scope: None,
        }
    }

    async fn token(&self, body: &types::TokenRequest) -> Result<AccessToken, Error> {
        let issued = Issued::now(self.clock.as_ref());
        let response = self
            .client
            .token(body)
            .await
            .map_err(|e| http::from_generated(e, Some(ERROR_CODE_HEADER)))?
            .into_inner();
        let fields = TokenFields {
            access_token: response.access_token.map(Into::into),
            token_type: response.token_type,
            expires_in: response
                .expires_in
                .and_then(|e| serde_json::to_value(e).ok()),
            scope: response.scope,
            refresh_token: response.refresh_token.map(Into::into),
        };
        token_from_response(fields, issued, DEFAULT_LIFETIME)
    }
}

fn non_empty(scope: &str) -> Option<String> {
    (!scope.is_empty()).then(|| scope.to_owned())
}

/// The refresh-token grant; see [`VakifBank::refresh_source`].
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    bank: VakifBank,
    scope: String,
}

impl TokenSource for RefreshGrant {
    fn fetch<'a>(
        &'a self,
        previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async move {
            let Some(refresh_token) = previous.and_then(AccessToken::refresh_token) else {
                return Err(Error::new(ErrorKind::InvalidGrant)
                    .with_description("no refresh token: the customer must log in again"));
            };
            // The refresh grant sends client_id and client_secret in the
            // body per the docs, unless Basic was chosen.
            let body = types::TokenRequest {
                grant_type: "refresh_token".to_owned(),
                refresh_token: Some(refresh_token.clone().into()),
                scope: non_empty(&self.scope),
                ..self.bank.request_base()
            };
            let token = self.bank.token(&body).await?;
            // Refresh tokens may be single-use: a new one replaces the old;
            // none in the answer keeps the one that worked.
            if token.refresh_token().is_none() {
                return Ok(token.with_refresh_token(Some(refresh_token.clone())));
            }
            Ok(token)
        })
    }

    fn name(&self) -> &'static str {
        "vakifbank refresh_token"
    }
}

/// The client-credentials grant; see [`VakifBank::client_credentials`].
#[derive(Debug, Clone)]
pub struct ClientCredentialsGrant {
    bank: VakifBank,
    scope: String,
}

impl TokenSource for ClientCredentialsGrant {
    fn fetch<'a>(
        &'a self,
        _previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async move {
            let body = types::TokenRequest {
                grant_type: "client_credentials".to_owned(),
                scope: non_empty(&self.scope),
                ..self.bank.request_base()
            };
            self.bank.token(&body).await
        })
    }

    fn name(&self) -> &'static str {
        "vakifbank client_credentials"
    }
}

/// The B2B-credentials grant; see [`VakifBank::b2b_credentials`].
#[derive(Debug, Clone)]
pub struct B2bCredentialsGrant {
    bank: VakifBank,
    scope: String,
    consent_id: String,
}

impl TokenSource for B2bCredentialsGrant {
    fn fetch<'a>(
        &'a self,
        _previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async move {
            let body = types::TokenRequest {
                grant_type: "b2b_credentials".to_owned(),
                scope: non_empty(&self.scope),
                consent_id: Some(self.consent_id.clone()),
                // Not in the docs' B2B list; public callers send it (unverified).
                resource: Some(self.bank.resource.to_string()),
                ..self.bank.request_base()
            };
            self.bank.token(&body).await
        })
    }

    fn name(&self) -> &'static str {
        "vakifbank b2b_credentials"
    }
}

payauth_core::oauth_error_body!(types::OAuthError);
