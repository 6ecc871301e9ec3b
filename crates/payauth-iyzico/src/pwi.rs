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
use payauth_core::wire::NumberOrString;
use payauth_core::{
    AccessToken, BoxFuture, Clock, Environment, Error, ErrorKind, FlowSettings, Issued, Secret,
    SecretConfig, StoreKey, SystemClock, TokenSource,
};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::HOSTS;
use crate::auth::ApiKeys;
use crate::generated::pwi::{Client, types};
use crate::iyzwsv2;

pub use crate::generated::pwi::types::Locale;

/// The documented lifetime, used when the token's JWT has no readable `exp`.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// The merchant side of Pay with iyzico: keys, host and locale, shared by
/// every member session ([`Pwi::new`]). Unknown keys are refused.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PwiSettings {
    /// The merchant API key.
    pub api_key: String,
    /// The merchant secret key (the HMAC key).
    pub secret_key: SecretConfig,
    /// `sandbox` (default), `production`, or a base URL.
    #[serde(default)]
    pub environment: Environment,
    /// Language of iyzico's messages (`tr` when unset).
    #[serde(default)]
    pub locale: Option<Locale>,
    /// Allow plain `http://` to a non-loopback host (never in production).
    #[serde(default)]
    pub allow_insecure_http: bool,
}

impl PwiSettings {
    /// Settings with iyzico's default locale.
    pub fn new(
        api_key: impl Into<String>,
        secret_key: impl Into<SecretConfig>,
        environment: Environment,
    ) -> Self {
        Self {
            api_key: api_key.into(),
            secret_key: secret_key.into(),
            environment,
            locale: None,
            allow_insecure_http: false,
        }
    }
}

/// One member session's access token: the merchant's [`PwiSettings`] and
/// the session; in a config file, the `[source]` table with
/// `provider = "iyzico-pwi"`. Unknown keys are refused.
///
/// ```
/// use payauth_core::{Environment, FlowSettings, Secret};
/// use payauth_iyzico::{PwiSessionSettings, PwiSettings};
///
/// let merchant = PwiSettings::new("api-key", Secret::new("secret-key"), Environment::Sandbox);
/// let one = PwiSessionSettings::new(merchant.clone(), Secret::new("session-1"), "member-1");
/// let two = PwiSessionSettings::new(merchant, Secret::new("session-2"), "member-1");
/// let key = one.store_key().unwrap();
/// assert!(key.starts_with("iyzico/sandbox/api-key/pwi/member-1/"));
/// assert!(!key.contains("session-1"));
/// assert_ne!(key, two.store_key().unwrap());
/// ```
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PwiSessionSettings {
    /// The merchant's keys and host.
    // Flattened keys stay checked: this struct refuses every key that
    // neither it nor `PwiSettings` knows.
    #[serde(flatten)]
    pub merchant: PwiSettings,
    /// The member's session token.
    pub session_token: SecretConfig,
    /// The member's identifier.
    pub member_identifier: String,
}

impl PwiSessionSettings {
    /// The settings of one member's session.
    pub fn new(
        merchant: PwiSettings,
        session_token: impl Into<SecretConfig>,
        member_identifier: impl Into<String>,
    ) -> Self {
        Self {
            merchant,
            session_token: session_token.into(),
            member_identifier: member_identifier.into(),
        }
    }
}

impl FlowSettings for PwiSessionSettings {
    type Source = PwiSession;

    fn build(&self, http: &reqwest::Client) -> Result<PwiSession, Error> {
        let pwi = Pwi::new(&self.merchant, http)?;
        Ok(pwi.access_token(self.session_token.load()?, self.member_identifier.clone()))
    }

    /// The subject is the member and their session: the session token as
    /// a keyed digest (HMAC-SHA256 with the secret key, 16 hex digits), so
    /// two sessions never share a token and the key never shows one.
    fn store_key(&self) -> Result<String, Error> {
        let secret_key = self.merchant.secret_key.load()?;
        let session_token = self.session_token.load()?;
        let digest = iyzwsv2::signature(
            &secret_key,
            "",
            "payauth store key",
            session_token.expose_secret().as_bytes(),
        );
        let merchant = &self.merchant;
        Ok(
            StoreKey::new("iyzico", &merchant.environment, &merchant.api_key, "pwi")
                .subject(&self.member_identifier)
                .subject(&digest[..16])
                .build::<&str>(&[]),
        )
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
    /// The merchant over a shared `http` client.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for missing keys or a base URL that is not
    /// `https://` (plain `http://` only to loopback unless allowed).
    pub fn new(settings: &PwiSettings, http: &reqwest::Client) -> Result<Self, Error> {
        let secret_key = settings.secret_key.load()?;
        payauth_core::settings::require(
            "Pay with iyzico",
            &[
                ("an API key", settings.api_key.is_empty()),
                ("a secret key", secret_key.is_empty()),
            ],
        )?;
        let base = settings
            .environment
            .base_url(&HOSTS, settings.allow_insecure_http)?;
        let keys = ApiKeys {
            api_key: settings.api_key.clone(),
            secret_key,
        };
        Ok(Self {
            client: Client::new_with_client(&base, http.clone(), keys),
            locale: settings.locale,
            clock: Arc::new(SystemClock),
        })
    }

    /// Reads time from `clock` (for tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The access-token source of one member's session.
    #[must_use]
    pub fn access_token(
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
/// use payauth_iyzico::{Pwi, PwiSettings};
///
/// # async fn run() -> Result<(), payauth_core::Error> {
/// let settings = PwiSettings::new("api-key", Secret::from_env("IYZICO_SECRET_KEY")?, Environment::Sandbox);
/// let pwi = Pwi::new(&settings, &payauth_core::http::default_client()?)?;
/// let cache = TokenCache::builder(pwi.access_token(Secret::new("session-token"), "member-1")).build();
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
        self.status.as_ref().and_then(NumberOrString::as_str) == Some("success")
    }

    /// The envelope's failure as a typed error.
    fn failure(&self, status: u16) -> Error {
        let status = self
            .status
            .as_ref()
            .and_then(NumberOrString::as_number)
            .and_then(|n| u16::try_from(n).ok())
            .unwrap_or(status);
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
    /// iyzico's known codes in RFC 6749 terms (see `oauth_meaning`).
    fn oauth_code(&self) -> Option<&str> {
        crate::oauth_meaning(self.error_code.as_ref()?)
    }

    fn description(&self) -> Option<&str> {
        self.error_message.as_deref()
    }

    fn provider_code(&self) -> Option<String> {
        self.error_code.as_ref().map(ToString::to_string)
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

    fn provider(&self) -> &'static str {
        "iyzico"
    }

    fn flow(&self) -> &'static str {
        "pwi"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret_key: &str, session: &str, member: &str) -> String {
        let merchant = PwiSettings::new("api", Secret::new(secret_key), Environment::Sandbox);
        PwiSessionSettings::new(merchant, Secret::new(session), member)
            .store_key()
            .unwrap()
    }

    #[test]
    fn each_member_session_has_its_own_key_which_never_shows_the_session_token() {
        let one = key("k", "SENTINEL-session-1", "m");
        assert!(one.starts_with("iyzico/sandbox/api/pwi/m/"), "{one}");
        assert!(!one.contains("SENTINEL"), "{one}");
        let digest = one.trim_end_matches('/').rsplit('/').next().unwrap();
        assert_eq!(digest.len(), 16, "{one}");
        assert_eq!(one, key("k", "SENTINEL-session-1", "m"));
        assert_ne!(one, key("k", "SENTINEL-session-2", "m"));
        assert_ne!(one, key("k", "SENTINEL-session-1", "n"));
        // Keyed: the same session under another merchant key differs.
        assert_ne!(one, key("k2", "SENTINEL-session-1", "m"));
    }
}
