//! [`AccessToken`]: a token with an absolute expiry and a ready header.

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::HeaderValue;

use crate::clock::Clock;
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;

/// When a token request was sent, read from the clock *before* the request
/// went out, so network time and parsing never stretch a token's life.
#[derive(Debug, Clone, Copy)]
pub struct Issued {
    at: Instant,
    system: SystemTime,
}

impl Issued {
    /// Now, on `clock`.
    #[must_use]
    pub fn now(clock: &dyn Clock) -> Self {
        Self {
            at: clock.now(),
            system: clock.system_now(),
        }
    }

    /// `ago` before now on `clock` (or now, where the monotonic clock cannot
    /// go that far back).
    #[must_use]
    pub(crate) fn before_now(clock: &dyn Clock, ago: Duration) -> Self {
        let at = clock.now();
        let system = clock.system_now();
        Self {
            at: at.checked_sub(ago).unwrap_or(at),
            system: system.checked_sub(ago).unwrap_or(system),
        }
    }
}

/// An access token: the secret value, its type, an absolute expiry, the
/// granted scope, the refresh token that came with it, and the ready
/// `Authorization` header value (marked sensitive).
///
/// `Debug` shows everything but the secrets.
#[derive(Clone)]
pub struct AccessToken {
    secret: Secret,
    token_type: String,
    issued: Issued,
    lifetime: Duration,
    scope: Option<String>,
    refresh_token: Option<Secret>,
    authorization: HeaderValue,
}

impl AccessToken {
    /// A token of `token_type` (usually `Bearer`) living `lifetime` from
    /// `issued`.
    ///
    /// # Errors
    /// [`ErrorKind::Malformed`] when the token is empty or cannot be sent
    /// in an HTTP header.
    pub fn new(
        secret: Secret,
        token_type: &str,
        issued: Issued,
        lifetime: Duration,
    ) -> Result<Self, Error> {
        if secret.is_empty() {
            return Err(Error::new(ErrorKind::Malformed)
                .with_description("the provider sent an empty access token"));
        }
        // The scheme is always sent as `Bearer` for bearer tokens, whatever
        // case the provider used (RFC 6750 §2.1).
        let scheme = if token_type.eq_ignore_ascii_case("bearer") || token_type.is_empty() {
            "Bearer"
        } else {
            token_type
        };
        let mut authorization = HeaderValue::try_from(format!(
            "{scheme} {}",
            secret.expose_secret()
        ))
        .map_err(|_| {
            Error::new(ErrorKind::Malformed)
                .with_description("the access token holds characters not allowed in a header")
        })?;
        authorization.set_sensitive(true);
        Ok(Self {
            secret,
            token_type: scheme.to_owned(),
            issued,
            lifetime,
            scope: None,
            refresh_token: None,
            authorization,
        })
    }

    /// Adds the granted scope, as a provider sent it: stripped of control
    /// and format characters and cut to 1024 characters.
    #[must_use]
    pub fn with_scope(mut self, scope: Option<String>) -> Self {
        self.scope = scope
            .map(|s| crate::text::printable(&s, crate::text::MAX_SCOPE))
            .filter(|s| !s.is_empty());
        self
    }

    /// Adds the refresh token that came with it.
    #[must_use]
    pub fn with_refresh_token(mut self, refresh_token: Option<Secret>) -> Self {
        self.refresh_token = refresh_token.filter(|t| !t.is_empty());
        self
    }

    /// The token itself.
    #[must_use]
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The token type, `Bearer` for every provider payauth knows.
    #[must_use]
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// When it expires, on the monotonic clock.
    #[must_use]
    pub fn expires_at(&self) -> Instant {
        self.issued.at + self.lifetime
    }

    /// When it expires, on the wall clock (for persistence and display).
    #[must_use]
    pub fn expires_at_system(&self) -> SystemTime {
        self.issued.system + self.lifetime
    }

    /// How long it lives from issue to expiry.
    #[must_use]
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// When it was requested.
    #[must_use]
    pub fn issued(&self) -> Issued {
        self.issued
    }

    /// The granted scope, when the provider said.
    #[must_use]
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The refresh token that came with it, if any.
    #[must_use]
    pub fn refresh_token(&self) -> Option<&Secret> {
        self.refresh_token.as_ref()
    }

    /// `Bearer <token>`, marked sensitive, ready for an `Authorization`
    /// header.
    #[must_use]
    pub fn authorization(&self) -> &HeaderValue {
        &self.authorization
    }

    /// Whether it is still valid at `now`.
    #[must_use]
    pub fn is_valid_at(&self, now: Instant) -> bool {
        now < self.expires_at()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token_type", &self.token_type)
            .field("lifetime", &self.lifetime)
            .field("scope", &self.scope)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// Reads `expires_in` leniently: a JSON number or a numeric string (several
/// providers send `"3600"`), in whole seconds. `None` for anything else,
/// including negative numbers and non-numeric text.
///
/// ```
/// use std::time::Duration;
/// use payauth_core::token::parse_expires_in;
///
/// assert_eq!(parse_expires_in(&serde_json::json!(3600)), Some(Duration::from_secs(3600)));
/// assert_eq!(parse_expires_in(&serde_json::json!(" 7199 ")), Some(Duration::from_secs(7199)));
/// assert_eq!(parse_expires_in(&serde_json::json!(-1)), None);
/// assert_eq!(parse_expires_in(&serde_json::json!(true)), None);
/// ```
#[must_use]
pub fn parse_expires_in(value: &serde_json::Value) -> Option<Duration> {
    match value {
        serde_json::Value::Number(n) => n.as_u64().map(Duration::from_secs),
        serde_json::Value::String(s) => s.trim().parse::<u64>().ok().map(Duration::from_secs),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const SENTINEL: &str = "SENTINEL-tok-51";

    #[test]
    fn expiry_is_counted_from_the_moment_before_the_request() {
        let clock = ManualClock::new();
        let issued = Issued::now(&clock);
        clock.advance(Duration::from_secs(5)); // the request and parsing took 5 s
        let token =
            AccessToken::new(Secret::new("t"), "bearer", issued, Duration::from_secs(60)).unwrap();
        assert_eq!(token.expires_at() - clock.now(), Duration::from_secs(55));
        assert_eq!(token.token_type(), "Bearer");
    }

    #[test]
    fn the_authorization_header_is_ready_and_sensitive() {
        let clock = ManualClock::new();
        let token = AccessToken::new(
            Secret::new("abc"),
            "Bearer",
            Issued::now(&clock),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(token.authorization().to_str().unwrap(), "Bearer abc");
        assert!(token.authorization().is_sensitive());
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_malformed_not_a_panic() {
        let clock = ManualClock::new();
        let error = AccessToken::new(
            Secret::new("a\nb"),
            "Bearer",
            Issued::now(&clock),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Malformed);
        let error = AccessToken::new(
            Secret::new(""),
            "Bearer",
            Issued::now(&clock),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Malformed);
    }

    #[test]
    fn debug_never_shows_the_token_or_refresh_token() {
        let clock = ManualClock::new();
        let token = AccessToken::new(
            Secret::new(SENTINEL),
            "Bearer",
            Issued::now(&clock),
            Duration::from_secs(1),
        )
        .unwrap()
        .with_refresh_token(Some(Secret::new(SENTINEL)));
        let shown = format!("{token:?} {:?}", token.authorization());
        assert!(!shown.contains(SENTINEL), "{shown}");
    }
}
