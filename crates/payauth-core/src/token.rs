//! [`AccessToken`]: a token with an absolute expiry and a ready header.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::HeaderValue;

use crate::clock::Clock;
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;

/// The longest lifetime a token is given, whatever the provider says: 30
/// days. Every [`AccessToken`] is clamped to it when built, so no
/// `expires_in`, JWT `exp` or stored expiry, however absurd
/// (`18446744073709551615`), can overflow an `Instant`; a token that
/// really lives longer is simply renewed after 30 days.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// The shortest life a token must have left when it reaches a
/// [`TokenCache`](crate::TokenCache) to be served: 10 s. The cache refuses
/// one that lives less (`expires_in: 0`, or a slow source that used up a
/// short one) with [`ErrorKind::Malformed`], remembered for its failure
/// backoff, rather than serve it: it would expire on the way to the API,
/// and a cache refreshing it would fetch on nearly every call. Half of it,
/// the most the refresh margin takes, still covers a request round trip;
/// the shortest-lived real token payauth knows (iyzico Pay with iyzico)
/// lives five minutes. The refused token's refresh token is kept (the
/// provider may have rotated the old one), and tokens read back from a
/// store are never held to it: they come back expired or not.
pub const MIN_LIFETIME: Duration = Duration::from_secs(10);

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

    /// When, on the wall clock (what decides which of two tokens is newer,
    /// across processes).
    #[must_use]
    pub fn system(&self) -> SystemTime {
        self.system
    }

    /// `by` later on both clocks.
    fn after(&self, by: Duration) -> Result<(Instant, SystemTime), Error> {
        match (self.at.checked_add(by), self.system.checked_add(by)) {
            (Some(at), Some(system)) => Ok((at, system)),
            _ => Err(Error::new(ErrorKind::Malformed)
                .with_description("the token's expiry is past what this clock can represent")),
        }
    }
}

/// An access token: the secret value, its type, an absolute expiry, the
/// granted scope, the refresh token that came with it, and the
/// `Authorization` header value (marked sensitive), built on first use and
/// kept (a token fetched ahead and never sent holds none).
///
/// `Debug` shows everything but the secrets.
#[derive(Clone)]
pub struct AccessToken {
    secret: Secret,
    /// `Bearer` (the usual case) borrowed, not allocated per token.
    token_type: Cow<'static, str>,
    issued: Issued,
    lifetime: Duration,
    expires_at: Instant,
    expires_at_system: SystemTime,
    scope: Option<String>,
    refresh_token: Option<Secret>,
    authorization: OnceLock<HeaderValue>,
}

impl AccessToken {
    /// A token of `token_type` (usually `Bearer`) living `lifetime` from
    /// `issued`, at most [`MAX_LIFETIME`]. (A cache serves it only if it
    /// has [`MIN_LIFETIME`] left.)
    ///
    /// ```
    /// use std::time::Duration;
    /// use payauth_core::{AccessToken, Issued, MAX_LIFETIME, Secret, SystemClock};
    ///
    /// let issued = Issued::now(&SystemClock);
    /// // expires_in 18446744073709551615: clamped, never an overflow.
    /// let forever = AccessToken::new(Secret::new("t"), "Bearer", issued, Duration::MAX).unwrap();
    /// assert_eq!(forever.lifetime(), MAX_LIFETIME);
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::Malformed`] when the token is empty or not an RFC 6750
    /// `b64token` ([`is_b64token`]: `tökén`, a space, a bidi override
    /// cannot be sent as a bearer token), the token type cannot be sent in
    /// an HTTP header, or its expiry is past what the clock can represent.
    pub fn new(
        secret: Secret,
        token_type: &str,
        issued: Issued,
        lifetime: Duration,
    ) -> Result<Self, Error> {
        let lifetime = lifetime.min(MAX_LIFETIME);
        let expiry = issued.after(lifetime)?;
        Self::assemble(secret, token_type, issued, lifetime, expiry)
    }

    /// A token read back from a store: `remaining` of its `lifetime` left
    /// on `clock` (none: expired, still carrying its refresh token), issued
    /// at `issued_system` on the wall clock.
    pub(crate) fn restored(
        secret: Secret,
        token_type: &str,
        lifetime: Duration,
        remaining: Duration,
        issued_system: SystemTime,
        clock: &dyn Clock,
    ) -> Result<Self, Error> {
        let lifetime = lifetime.min(MAX_LIFETIME);
        let remaining = remaining.min(lifetime);
        let now = Issued::now(clock);
        let expiry = now.after(remaining)?;
        let elapsed = lifetime.saturating_sub(remaining);
        let issued = Issued {
            // Only the wall-clock issue time is compared; where the
            // monotonic clock cannot go that far back, now will do.
            at: now.at.checked_sub(elapsed).unwrap_or(now.at),
            system: issued_system,
        };
        Self::assemble(secret, token_type, issued, lifetime, expiry)
    }

    fn assemble(
        secret: Secret,
        token_type: &str,
        issued: Issued,
        lifetime: Duration,
        (expires_at, expires_at_system): (Instant, SystemTime),
    ) -> Result<Self, Error> {
        if secret.is_empty() {
            return Err(Error::new(ErrorKind::Malformed)
                .with_description("the provider sent an empty access token"));
        }
        if !is_b64token(secret.expose_secret()) {
            return Err(Error::new(ErrorKind::Malformed).with_description(
                "the access token is not an RFC 6750 b64token (letters, digits, -._~+/ and trailing =), so it cannot be sent",
            ));
        }
        // The scheme is always sent as `Bearer` for bearer tokens, whatever
        // case the provider used (RFC 6750 §2.1).
        let scheme = if token_type.eq_ignore_ascii_case("bearer") || token_type.is_empty() {
            Cow::Borrowed("Bearer")
        } else {
            Cow::Owned(token_type.to_owned())
        };
        // A b64token is header-safe: checking the scheme makes the header
        // built later infallible.
        if HeaderValue::from_str(&scheme).is_err() {
            return Err(Error::new(ErrorKind::Malformed)
                .with_description("the access token holds characters not allowed in a header"));
        }
        Ok(Self {
            secret,
            token_type: scheme,
            issued,
            lifetime,
            expires_at,
            expires_at_system,
            scope: None,
            refresh_token: None,
            authorization: OnceLock::new(),
        })
    }

    /// This token as the successor of `earlier`, the token it was fetched
    /// from: counted as issued (on the wall clock) at least 1 ms after it,
    /// since a wall clock that jumped back must not make a successor look
    /// older than its predecessor.
    #[must_use]
    pub(crate) fn succeeding(mut self, earlier: &AccessToken) -> Self {
        if let Some(after) = earlier
            .issued
            .system
            .checked_add(Duration::from_millis(1))
            .filter(|after| *after > self.issued.system)
        {
            self.issued.system = after;
        }
        self
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
        self.expires_at
    }

    /// When it expires, on the wall clock (for persistence and display).
    #[must_use]
    pub fn expires_at_system(&self) -> SystemTime {
        self.expires_at_system
    }

    /// How long it lives from issue to expiry, at most [`MAX_LIFETIME`].
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
    /// header (built on the first call, then kept).
    #[must_use]
    pub fn authorization(&self) -> &HeaderValue {
        self.authorization.get_or_init(|| {
            let header = format!("{} {}", self.token_type, self.secret.expose_secret());
            // `assemble` checked both parts; never the fallback.
            let mut value =
                HeaderValue::try_from(header).unwrap_or_else(|_| HeaderValue::from_static(""));
            value.set_sensitive(true);
            value
        })
    }

    /// Whether it is still valid at `now`.
    #[must_use]
    pub fn is_valid_at(&self, now: Instant) -> bool {
        now < self.expires_at
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

/// Whether `token` is an RFC 6750 §2.1 `b64token`, the only form a bearer
/// token can take in an `Authorization` header:
/// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
/// Every token payauth hands out is one: [`AccessToken::new`] (and so
/// every flow, and every token read back from a store) refuses others.
///
/// ```
/// use payauth_core::token::is_b64token;
///
/// assert!(is_b64token("eyJhbGciOi.J9-_~+/x=="));
/// assert!(!is_b64token("tökén") && !is_b64token("a b") && !is_b64token("a=b") && !is_b64token(""));
/// ```
#[must_use]
pub fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
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
            Duration::from_secs(60),
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
            Duration::from_secs(60),
        )
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Malformed);
        let error = AccessToken::new(
            Secret::new(""),
            "Bearer",
            Issued::now(&clock),
            Duration::from_secs(60),
        )
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Malformed);
    }

    #[test]
    fn every_token_that_is_not_a_b64token_is_malformed_and_every_one_that_is_can_be_sent() {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~+/".contains(c);
        let specials = ['\u{202e}', '\u{feff}', '\u{200b}', '\u{2028}', 'ö', '😀'];
        let clock = ManualClock::new();
        for c in (0..=0x2ff_u32).filter_map(char::from_u32).chain(specials) {
            for token in [format!("{c}"), format!("ab{c}cd"), format!("tok{c}")] {
                let result = AccessToken::new(
                    Secret::new(token.clone()),
                    "Bearer",
                    Issued::now(&clock),
                    Duration::from_secs(60),
                );
                let expected =
                    allowed(c) || (c == '=' && !token.starts_with('=') && token.ends_with('='));
                match result {
                    Ok(sent) => {
                        assert!(expected, "{token:?} accepted");
                        let header = sent.authorization().to_str().unwrap();
                        assert_eq!(header, format!("Bearer {token}"));
                    }
                    Err(error) => {
                        assert!(!expected, "{token:?} refused");
                        assert_eq!(error.kind(), ErrorKind::Malformed);
                        assert!(!error.to_string().contains(&token) || token.len() < 2);
                    }
                }
            }
        }
    }

    #[test]
    fn debug_never_shows_the_token_or_refresh_token() {
        let clock = ManualClock::new();
        let token = AccessToken::new(
            Secret::new(SENTINEL),
            "Bearer",
            Issued::now(&clock),
            Duration::from_secs(60),
        )
        .unwrap()
        .with_refresh_token(Some(Secret::new(SENTINEL)));
        let shown = format!("{token:?} {:?}", token.authorization());
        assert!(!shown.contains(SENTINEL), "{shown}");
    }

    #[test]
    fn absurd_provider_lifetimes_are_clamped_and_never_panic() {
        let clock = ManualClock::new();
        // expires_in 9223372036854775807, "18446744073709551615", a JWT exp
        // of u64::MAX: all far past what an Instant can hold.
        for seconds in [i64::MAX.unsigned_abs(), u64::MAX] {
            let lifetime = parse_expires_in(&serde_json::json!(seconds.to_string())).unwrap();
            let token = AccessToken::new(Secret::new("t"), "Bearer", Issued::now(&clock), lifetime)
                .unwrap();
            assert_eq!(token.lifetime(), MAX_LIFETIME);
            assert_eq!(token.expires_at() - clock.now(), MAX_LIFETIME);
            assert!(token.expires_at_system() > clock.system_now());
        }
        let token = AccessToken::new(
            Secret::new("t"),
            "Bearer",
            Issued::now(&clock),
            Duration::MAX,
        )
        .unwrap();
        assert_eq!(token.lifetime(), MAX_LIFETIME);
    }

    #[test]
    fn the_documented_bounds_are_thirty_days_and_ten_seconds() {
        assert_eq!(MAX_LIFETIME, Duration::from_secs(30 * 86_400));
        assert_eq!(MIN_LIFETIME, Duration::from_secs(10));
    }

    #[test]
    fn a_restored_token_keeps_its_remaining_life_however_short() {
        let clock = ManualClock::new();
        let token = AccessToken::restored(
            Secret::new("t"),
            "Bearer",
            Duration::from_secs(3600),
            Duration::from_secs(3),
            clock.system_now(),
            &clock,
        )
        .unwrap();
        assert_eq!(token.expires_at() - clock.now(), Duration::from_secs(3));
        assert_eq!(token.lifetime(), Duration::from_secs(3600));
        let expired = AccessToken::restored(
            Secret::new("t"),
            "Bearer",
            Duration::ZERO,
            Duration::ZERO,
            clock.system_now(),
            &clock,
        )
        .unwrap();
        assert!(!expired.is_valid_at(clock.now()));
    }

    #[test]
    fn a_successor_counts_as_issued_after_its_predecessor_whatever_the_wall_clock() {
        let clock = ManualClock::new();
        let token = |clock: &ManualClock| {
            AccessToken::new(
                Secret::new("t"),
                "Bearer",
                Issued::now(clock),
                Duration::from_secs(60),
            )
            .unwrap()
        };
        let earlier = token(&clock);
        // The wall clock jumped back: the successor's own reading is older.
        let jumped = Issued {
            at: clock.now(),
            system: clock.system_now() - Duration::from_secs(3600),
        };
        let successor =
            AccessToken::new(Secret::new("s"), "Bearer", jumped, Duration::from_secs(60))
                .unwrap()
                .succeeding(&earlier);
        assert_eq!(
            successor.issued().system(),
            earlier.issued().system() + Duration::from_millis(1)
        );
        clock.advance(Duration::from_secs(5));
        let later = token(&clock);
        let kept = later.clone().succeeding(&earlier);
        assert_eq!(
            kept.issued().system(),
            later.issued().system(),
            "a later reading stands"
        );
    }
}
