//! The Pay-with-iyzico access token: a 5-minute token per member session,
//! requested with an IYZWSv2 signature. No refresh: a new one is fetched.
//!
//! iyzico answers failures in the same envelope as successes, with HTTP
//! 200 **or** 4xx, and `status` as `"failure"` or as a number: the body's
//! `status` decides, never the HTTP status alone.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use payauth_core::http::{self, ProviderErrorBody};
use payauth_core::{
    AccessToken, BoxFuture, Clock, Environment, Error, ErrorKind, Issued, Secret, SystemClock,
    TokenSource,
};

use crate::auth::ApiKeys;
use crate::generated::pwi::{Client, types};

pub use crate::generated::pwi::types::Locale;

/// Production host.
pub const PRODUCTION_BASE_URL: &str = "https://api.iyzipay.com";
/// Sandbox host (sandbox keys work only here).
pub const SANDBOX_BASE_URL: &str = "https://sandbox-api.iyzipay.com";
/// The documented lifetime, used when the token's JWT has no readable `exp`.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// Everything the Pay-with-iyzico access token needs.
#[derive(Debug, Clone)]
pub struct PwiConfig {
    /// The merchant API key.
    pub api_key: String,
    /// The merchant secret key (the HMAC key).
    pub secret_key: Secret,
    /// Production, sandbox, or a custom base URL.
    pub environment: Environment,
    /// Language of iyzico's messages (`tr` when unset).
    pub locale: Option<Locale>,
    /// Allow plain `http://` to a non-loopback host (never in production).
    pub allow_insecure_http: bool,
}

impl PwiConfig {
    /// A configuration with iyzico's default locale.
    pub fn new(api_key: impl Into<String>, secret_key: Secret, environment: Environment) -> Self {
        Self {
            api_key: api_key.into(),
            secret_key,
            environment,
            locale: None,
            allow_insecure_http: false,
        }
    }
}

/// The merchant side of Pay with iyzico: hands out one [`PwiSession`]
/// token source per member session.
#[derive(Clone)]
pub struct Pwi {
    client: Client,
    locale: Option<Locale>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Pwi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pwi")
            .field("locale", &self.locale)
            .finish_non_exhaustive()
    }
}

impl Pwi {
    /// The flow over a shared `http` client.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for missing keys or a base URL that is not
    /// `https://` (plain `http://` only to loopback unless allowed).
    pub fn new(config: PwiConfig, http: reqwest::Client) -> Result<Self, Error> {
        if config.api_key.is_empty() || config.secret_key.is_empty() {
            return Err(Error::new(ErrorKind::Config)
                .with_description("Pay with iyzico needs an API key and a secret key"));
        }
        let base = http::check_base_url(
            config
                .environment
                .base_url(PRODUCTION_BASE_URL, SANDBOX_BASE_URL),
            config.allow_insecure_http,
        )?;
        let keys = ApiKeys {
            api_key: config.api_key,
            secret_key: config.secret_key,
        };
        Ok(Self {
            client: Client::new_with_client(&base, http, keys),
            locale: config.locale,
            clock: Arc::new(SystemClock),
        })
    }

    /// Reads time from `clock` (for tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The token source for one member's session.
    #[must_use]
    pub fn session(
        &self,
        session_token: Secret,
        member_identifier: impl Into<String>,
    ) -> PwiSession {
        PwiSession {
            pwi: self.clone(),
            session_token,
            member_identifier: member_identifier.into(),
        }
    }
}

/// The access token of one member session, as a [`TokenSource`].
///
/// ```no_run
/// use payauth_core::{Environment, Secret, TokenCache};
/// use payauth_iyzico::pwi::{Pwi, PwiConfig};
///
/// # async fn run() -> Result<(), payauth_core::Error> {
/// let config = PwiConfig::new("api-key", Secret::from_env("IYZICO_SECRET_KEY")?, Environment::Sandbox);
/// let pwi = Pwi::new(config, payauth_core::http::default_client()?)?;
/// let cache = TokenCache::builder(pwi.session(Secret::new("session-token"), "member-1")).build();
/// let token = cache.token().await?; // send as the `access-token` header
/// # let _ = token; Ok(()) }
/// ```
#[derive(Clone)]
pub struct PwiSession {
    pwi: Pwi,
    session_token: Secret,
    member_identifier: String,
}

impl std::fmt::Debug for PwiSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PwiSession")
            .field("member_identifier", &self.member_identifier)
            .finish_non_exhaustive()
    }
}

impl PwiSession {
    /// A fresh access token for this session.
    ///
    /// # Errors
    /// iyzico's failure envelope, whatever the HTTP status, as a typed
    /// error with `errorCode` kept: `1000` (invalid signature) and `1001`
    /// (API key not found) as [`ErrorKind::InvalidClient`], `260016`
    /// (session token not found) as [`ErrorKind::InvalidGrant`]; others by
    /// the envelope's numeric `status` or the HTTP status, as
    /// [`http::classify`] reads them ([`ErrorKind::Refused`] for a 401 that
    /// does not say why, [`ErrorKind::Unavailable`] for a 5xx), else
    /// [`ErrorKind::Provider`].
    pub async fn fetch_token(&self) -> Result<AccessToken, Error> {
        let issued = Issued::now(self.pwi.clock.as_ref());
        let body = types::AccessTokenRequest {
            session_token: self.session_token.clone().into(),
            member_identifier: self.member_identifier.clone(),
            locale: self.pwi.locale,
            conversation_id: None,
        };
        let envelope = self
            .pwi
            .client
            .retrieve_access_token(&body)
            .await
            .map_err(|e| http::from_generated(e, None))?
            .into_inner();
        if !envelope.succeeded() {
            return Err(envelope.failure(200));
        }
        let token = envelope
            .access_token
            .map(Secret::from)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::new(ErrorKind::Malformed)
                    .with_description("iyzico answered success without an accessToken")
            })?;
        let lifetime = jwt_lifetime(&token, self.pwi.clock.as_ref()).unwrap_or(DEFAULT_LIFETIME);
        AccessToken::new(token, "Bearer", issued, lifetime)
    }
}

/// Time from now to the JWT's `exp`, if the token is a JWT with one in the
/// future.
fn jwt_lifetime(token: &Secret, clock: &dyn Clock) -> Option<Duration> {
    let payload = token.expose_secret().split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let exp = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_u64()?;
    let now = clock.system_now().duration_since(UNIX_EPOCH).ok()?;
    Duration::from_secs(exp)
        .checked_sub(now)
        .filter(|d| !d.is_zero())
}

impl types::AccessTokenResponse {
    /// Whether the envelope says success.
    fn succeeded(&self) -> bool {
        matches!(&self.status, Some(types::Status::String(s)) if s == "success")
    }

    /// The envelope's failure as a typed error.
    fn failure(&self, status: u16) -> Error {
        let status = match &self.status {
            Some(types::Status::Int64(n)) => u16::try_from(*n).unwrap_or(status),
            _ => status,
        };
        // The same rule as every HTTP answer: the status first, then a
        // code payauth knows; a failure envelope is never a malformed one.
        let kind = match http::classify(status, self.oauth_code()) {
            ErrorKind::Malformed => ErrorKind::Provider,
            kind => kind,
        };
        let mut error = Error::new(kind).with_status(status);
        if let Some(code) = self.provider_code() {
            error = error.with_provider_code(code);
        }
        if let Some(message) = self.description() {
            error = error.with_description(message);
        }
        error
    }
}

impl ProviderErrorBody for types::AccessTokenResponse {
    /// iyzico's known codes, in RFC 6749 terms: `1000` (invalid
    /// signature) and `1001` (API key not found) refuse the client;
    /// `260016` (session token not found) refuses the grant.
    fn oauth_code(&self) -> Option<&str> {
        match self.provider_code()?.as_str() {
            "1000" | "1001" => Some("invalid_client"),
            "260016" => Some("invalid_grant"),
            _ => None,
        }
    }

    fn description(&self) -> Option<&str> {
        self.error_message.as_deref()
    }

    fn provider_code(&self) -> Option<String> {
        match &self.error_code {
            Some(types::ErrorCode::String(code)) => Some(code.clone()),
            Some(types::ErrorCode::Int64(code)) => Some(code.to_string()),
            None => None,
        }
    }
}

impl TokenSource for PwiSession {
    fn fetch<'a>(
        &'a self,
        _previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(self.fetch_token())
    }

    fn name(&self) -> &'static str {
        "iyzico pay-with-iyzico access token"
    }
}
