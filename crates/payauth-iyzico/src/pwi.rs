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
use payauth_core::http;
use payauth_core::scheme::{ApiRequest, TokenScheme};
use payauth_core::{
    AccessToken, BoxFuture, Clock, Environment, Error, ErrorKind, FlowSettings, Issued, Secret,
    SecretConfig, StoreKey, SystemClock, TokenSource,
};
use progenitor_client::ClientInfo as _;
use reqwest::header::HeaderValue;
use serde::Deserialize;

use crate::HOSTS;
use crate::auth::ApiKeys;
use crate::envelope::Enveloped as _;
use crate::generated::pwi::{Client, types};
use crate::iyzwsv2;

pub use crate::generated::pwi::types::Locale;

/// The documented lifetime, used when the token's JWT has no readable `exp`.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// The merchant side of Pay with iyzico: keys, host and locale, shared by
/// every member session ([`Pwi::new`]). Unknown keys are refused.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PwiSettings {
    /// The merchant API key.
    pub api_key: String,
    /// The merchant secret key (the HMAC key).
    pub secret_key: SecretConfig,
    /// `sandbox` (default), `production`, or a base URL.
    #[serde(default)]
    pub environment: Environment,
    /// Language of iyzico's messages, sent only when set. Unset leaves it
    /// to iyzico, whose default is `tr` on its Turkish docs page and `en`
    /// on its English one (unverified): set it when the language matters.
    #[serde(default)]
    pub locale: Option<Locale>,
    /// Allow plain `http://` to a non-loopback host (never in production).
    #[serde(default)]
    pub allow_insecure_http: bool,
}

impl PwiSettings {
    /// Settings that send no locale (iyzico's default, see the `locale` field).
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
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// `conversationId` sent with each request (your order number, say);
    /// the answer must echo it. None sent when unset.
    #[serde(default)]
    pub conversation_id: Option<String>,
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
            conversation_id: None,
        }
    }
}

impl FlowSettings for PwiSessionSettings {
    type Source = PwiSession;

    fn build(&self, http: &payauth_core::http::HttpClient) -> Result<PwiSession, Error> {
        let pwi = Pwi::new(&self.merchant, http)?;
        let session = pwi.access_token(self.session_token.load()?, self.member_identifier.clone());
        Ok(match &self.conversation_id {
            Some(id) => session.with_conversation_id(id.clone()),
            None => session,
        })
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
    pub fn new(
        settings: &PwiSettings,
        http: &payauth_core::http::HttpClient,
    ) -> Result<Self, Error> {
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
        let keys = ApiKeys::new(settings.api_key.clone(), secret_key).behind(&base)?;
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

    /// How later Pay-with-iyzico calls carry a member's token, signed
    /// with these keys.
    #[must_use]
    pub fn scheme(&self) -> PwiScheme {
        PwiScheme {
            keys: self.client.inner().clone(),
        }
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
            conversation_id: None,
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
    conversation_id: Option<String>,
}

impl std::fmt::Debug for PwiSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PwiSession")
            .field("member_identifier", &self.member_identifier)
            .field("conversation_id", &self.conversation_id)
            .finish_non_exhaustive()
    }
}

impl PwiSession {
    /// Sends `conversation_id` with each request; an answer that does not
    /// echo it is refused ([`ErrorKind::Malformed`]).
    #[must_use]
    pub fn with_conversation_id(mut self, conversation_id: impl Into<String>) -> Self {
        self.conversation_id = Some(conversation_id.into());
        self
    }

    /// A fresh access token for this session, living `min(5 minutes,
    /// exp − systemTime)`: the JWT's `exp` counted from iyzico's own
    /// `systemTime` in the same answer, never from the local clock (which
    /// is used only when the answer has no `systemTime`).
    ///
    /// # Errors
    /// [`ErrorKind::Malformed`] for a token that expires before the
    /// answer's `systemTime`, or an answer that does not echo the
    /// `conversationId` sent.
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
            conversation_id: self.conversation_id.clone(),
        };
        let answer = self
            .pwi
            .client
            .retrieve_access_token(&body)
            .await
            .map_err(|e| http::from_generated(e, None))?
            .into_inner();
        if !answer.envelope().says_success() {
            return Err(answer.envelope().error(200));
        }
        if let Some(sent) = &self.conversation_id
            && answer.conversation_id.as_ref() != Some(sent)
        {
            return Err(Error::new(ErrorKind::Malformed).with_description(
                "iyzico's answer does not echo the conversationId sent: not the answer to this request",
            ));
        }
        let token = answer
            .access_token
            .map(Secret::from)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::new(ErrorKind::Malformed)
                    .with_description("iyzico answered success without an accessToken")
            })?;
        let now = match answer.system_time {
            Some(millis) => i128::from(millis),
            None => epoch_millis(self.pwi.clock.as_ref()),
        };
        let lifetime = lifetime(jwt_exp_millis(&token), now)?;
        AccessToken::new(token, "Bearer", issued, lifetime)
    }
}

/// The token's lifetime: `min(300 s, exp − now)`, both in epoch
/// milliseconds, `now` being iyzico's `systemTime` from the same answer
/// (so a local clock that runs slow or fast does not stretch it); the
/// documented five minutes for a token that is no JWT with an `exp`.
/// Absurd values cannot overflow: the arithmetic is on `i128` and the
/// result is capped.
///
/// # Errors
/// [`ErrorKind::Malformed`] when `exp` is not after `now`: iyzico sent a
/// token that is already expired.
fn lifetime(exp_millis: Option<i128>, now_millis: i128) -> Result<Duration, Error> {
    let Some(exp) = exp_millis else {
        return Ok(DEFAULT_LIFETIME);
    };
    let left = exp.saturating_sub(now_millis);
    if left <= 0 {
        return Err(Error::new(ErrorKind::Malformed).with_description(
            "iyzico's access token expires before the answer's systemTime: already expired",
        ));
    }
    let cap = i128::try_from(DEFAULT_LIFETIME.as_millis()).unwrap_or(i128::MAX);
    let millis = u64::try_from(left.min(cap)).unwrap_or(u64::MAX);
    Ok(Duration::from_millis(millis))
}

/// The JWT's `exp` (RFC 7519 `NumericDate` seconds, whole or not) in epoch
/// milliseconds, if the token is a JWT with one.
fn jwt_exp_millis(token: &Secret) -> Option<i128> {
    let payload = token.expose_secret().split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let exp = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("exp")?
        .clone();
    if let Some(seconds) = exp.as_i64() {
        return Some(i128::from(seconds).saturating_mul(1000));
    }
    if let Some(seconds) = exp.as_u64() {
        return Some(i128::from(seconds).saturating_mul(1000));
    }
    // A fractional NumericDate; `as` saturates (JSON has no NaN).
    #[allow(clippy::cast_possible_truncation)]
    let millis = exp
        .as_f64()
        .filter(|f| f.is_finite())
        .map(|seconds| (seconds * 1000.0) as i128);
    millis
}

/// The local wall clock in epoch milliseconds (before the epoch: 0).
fn epoch_millis(clock: &dyn Clock) -> i128 {
    clock
        .system_now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_millis()).unwrap_or(i128::MAX))
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

    /// [`PwiScheme`] with the merchant's keys.
    fn scheme(&self) -> Arc<dyn TokenScheme> {
        Arc::new(self.pwi.scheme())
    }
}

/// The header Pay-with-iyzico calls carry the member's access token in.
pub const ACCESS_TOKEN_HEADER: &str = "access-token";

/// How Pay-with-iyzico calls take the member's access token: in the
/// `access-token` header (sensitive), beside the merchant's IYZWSv2
/// `Authorization` over the endpoint path and the exact body
/// (iyzico's "Last Payment Detail Info" page lists the headers
/// `Authorization` and `access-token: {{accessToken}}`), never as `Bearer`. It needs the body's
/// bytes: a request whose body cannot be read is a typed
/// [`ErrorKind::Config`] error.
///
/// ```
/// use payauth_core::scheme::{ApiRequest, RequestBody, TokenScheme};
/// use payauth_core::{AccessToken, Environment, Issued, Secret, SystemClock};
/// use payauth_iyzico::{Pwi, PwiSettings};
///
/// let settings = PwiSettings::new("api-key", Secret::new("secret-key"), Environment::Sandbox);
/// let scheme = Pwi::new(&settings, &payauth_core::http::default_client().unwrap()).unwrap().scheme();
/// let token = AccessToken::new(Secret::new("jwt"), "Bearer", Issued::now(&SystemClock), std::time::Duration::from_secs(60)).unwrap();
/// let mut headers = reqwest::header::HeaderMap::new();
/// let body = br#"{"locale":"tr"}"#;
/// let request = ApiRequest { method: &reqwest::Method::POST, path: "/v1/pay-with-iyzico/payment", body: RequestBody::Bytes(body), headers: &mut headers };
/// scheme.apply(&token, request).unwrap();
/// assert_eq!(headers["access-token"], "jwt");
/// assert!(headers["authorization"].to_str().unwrap().starts_with("IYZWSv2 "));
/// assert!(headers.contains_key("x-iyzi-rnd"));
/// ```
#[derive(Debug, Clone)]
pub struct PwiScheme {
    keys: ApiKeys,
}

impl TokenScheme for PwiScheme {
    fn apply(&self, token: &AccessToken, request: ApiRequest<'_>) -> Result<(), Error> {
        let body = request.body.bytes_for("IYZWSv2")?;
        let mut access_token =
            HeaderValue::from_str(token.secret().expose_secret()).map_err(|_| {
                Error::new(ErrorKind::Malformed)
                    .with_description("the access token holds characters not allowed in a header")
            })?;
        access_token.set_sensitive(true);
        self.keys.sign(request.path, body, request.headers)?;
        request.headers.insert(ACCESS_TOKEN_HEADER, access_token);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifetime_is_what_is_left_by_iyzicos_clock_capped_at_five_minutes() {
        let ms = Duration::from_millis;
        assert_eq!(lifetime(Some(1_001), 1_000).unwrap(), ms(1));
        assert_eq!(lifetime(Some(301_000), 1_000).unwrap(), ms(300_000));
        assert_eq!(lifetime(Some(301_001), 1_000).unwrap(), ms(300_000));
        assert_eq!(lifetime(Some(300_999), 1_000).unwrap(), ms(299_999));
        assert_eq!(lifetime(None, 1_000).unwrap(), DEFAULT_LIFETIME);
        for (exp, now) in [(1_000, 1_000), (999, 1_000), (i128::MIN, i128::MAX)] {
            let error = lifetime(Some(exp), now).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Malformed, "{exp} {now}");
        }
        assert_eq!(
            lifetime(Some(i128::MAX), i128::MIN).unwrap(),
            DEFAULT_LIFETIME
        );
    }

    #[test]
    fn a_jwt_exp_is_read_in_milliseconds_whole_or_fractional() {
        let jwt = |claims: &str| Secret::new(format!("h.{}.s", URL_SAFE_NO_PAD.encode(claims)));
        assert_eq!(
            jwt_exp_millis(&jwt(r#"{"exp":1749028222}"#)),
            Some(1_749_028_222_000)
        );
        assert_eq!(jwt_exp_millis(&jwt(r#"{"exp":1.5}"#)), Some(1_500));
        assert_eq!(jwt_exp_millis(&jwt(r#"{"exp":-2}"#)), Some(-2_000));
        assert_eq!(
            jwt_exp_millis(&jwt(r#"{"exp":18446744073709551615}"#)),
            Some(18_446_744_073_709_551_615_000)
        );
        assert_eq!(jwt_exp_millis(&jwt(r#"{"exp":1e400}"#)), None);
        assert_eq!(jwt_exp_millis(&jwt(r#"{"exp":"soon"}"#)), None);
        assert_eq!(jwt_exp_millis(&jwt("{}")), None);
        assert_eq!(jwt_exp_millis(&Secret::new("opaque")), None);
    }

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
