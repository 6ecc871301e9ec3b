//! [`Error`] and [`ErrorKind`]: what went wrong, whether to retry, and the
//! provider's own words, never a secret.

use std::fmt;
use std::time::Duration;

use crate::text::{MAX_CODE, MAX_DESCRIPTION, printable};

/// What kind of failure an [`Error`] is. Match on it to decide what to do;
/// [`Error::is_transient`] says whether retrying later can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// RFC 6749 `invalid_request`: a parameter is missing or wrong.
    InvalidRequest,
    /// RFC 6749 `invalid_client`: the client credentials were refused.
    /// Check the client id and secret.
    InvalidClient,
    /// RFC 6749 `invalid_grant`: the code, refresh token or user
    /// credentials were refused. A refresh token here means: log in again.
    InvalidGrant,
    /// RFC 6749 `unauthorized_client`: this client may not use this grant.
    UnauthorizedClient,
    /// RFC 6749 `unsupported_grant_type`.
    UnsupportedGrantType,
    /// RFC 6749 `invalid_scope`.
    InvalidScope,
    /// The user or the provider refused (`access_denied`).
    AccessDenied,
    /// HTTP 401 or 403 with no error code that says why: a WAF, CDN or
    /// gateway page, a Basic-auth refusal with an empty body, a code
    /// payauth does not know. Not a verdict on the credentials or the
    /// grant, so neither permanent nor transient: a cache keeps serving a
    /// still-valid token and tries again after its failure backoff.
    Refused,
    /// HTTP 429: too many requests; see [`Error::retry_after`].
    RateLimited,
    /// The provider is failing or unavailable (HTTP 5xx).
    Unavailable,
    /// The request never got an HTTP answer: connection refused or reset,
    /// DNS, a TLS handshake that failed (a refused certificate is
    /// [`Certificate`](Self::Certificate)), a torn body.
    Transport,
    /// No answer in time, or no connection within the connect timeout.
    Timeout,
    /// A TLS certificate was refused: the server's failed verification (an
    /// unknown CA, expired, not valid for the host name), or the server
    /// refused this client's certificate or its absence (mutual TLS);
    /// [`Error::description`] says which check failed. A configuration
    /// problem (the roots trusted, the URL, a certificate, the client
    /// identity): not transient, so not retried at once, and not
    /// permanent either (like [`Refused`](Self::Refused)): it says nothing
    /// of the token, which a cache keeps serving while it is valid, trying
    /// again after its failure backoff (a certificate may be fixed).
    Certificate,
    /// The proxy refused to carry the request, as it will again: it
    /// refused the credentials in its URL or asked for some (HTTP 407, a
    /// SOCKS5 user/password refusal), its policy refused the destination
    /// (a 4xx to `CONNECT`, a SOCKS5 ruleset), or it answered as no proxy
    /// of its scheme does. [`Error::description`] names where the proxy
    /// was set (`HTTPS_PROXY`, `ALL_PROXY`, the builder), never its URL. A
    /// configuration problem, so not transient; and, like
    /// [`Certificate`](Self::Certificate), not permanent: it says nothing
    /// of the token, which a cache keeps serving while it is valid. A
    /// proxy that could not reach the provider (a 5xx to `CONNECT`, SOCKS5
    /// "host unreachable") or that closed the connection is a transient
    /// [`Transport`](Self::Transport) error.
    Proxy,
    /// The answer could not be understood: not JSON, wrong types, missing
    /// fields, too large.
    Malformed,
    /// The provider said no in its own terms; see [`Error::provider_code`].
    Provider,
    /// Saving or loading a token failed.
    Store,
    /// The configuration is wrong or incomplete.
    Config,
}

impl ErrorKind {
    /// The RFC 6749 §5.2 kind of an OAuth `error` code, if it is one.
    #[must_use]
    pub fn from_oauth_code(code: &str) -> Option<Self> {
        Some(match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            "access_denied" => Self::AccessDenied,
            "temporarily_unavailable" | "server_error" => Self::Unavailable,
            _ => return None,
        })
    }

    fn describe(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid request",
            Self::InvalidClient => "client credentials refused",
            Self::InvalidGrant => "grant refused",
            Self::UnauthorizedClient => "client not allowed to use this grant",
            Self::UnsupportedGrantType => "grant type not supported",
            Self::InvalidScope => "scope refused",
            Self::AccessDenied => "access denied",
            Self::Refused => "refused without a reason",
            Self::RateLimited => "rate limited",
            Self::Unavailable => "provider unavailable",
            Self::Transport => "transport error",
            Self::Timeout => "timed out",
            Self::Certificate => "TLS certificate refused",
            Self::Proxy => "proxy refused",
            Self::Malformed => "malformed response",
            Self::Provider => "provider error",
            Self::Store => "token store error",
            Self::Config => "configuration error",
        }
    }
}

/// The longest `Retry-After` an error keeps; a longer wait is cut to it, so
/// adding it to an `Instant` cannot overflow.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
/// The most causes of the source chain shown, and the most characters.
const MAX_CAUSES: usize = 8;
const MAX_CHAIN: usize = 600;

/// A failure getting, storing or using a token.
///
/// Messages carry the kind, the HTTP status, the provider's code (e.g.
/// iyzico `errorCode` or Layer7 `x-ca-err`), the provider's description
/// and the chain of underlying causes (connection refused, DNS, TLS). Every
/// provider string is stripped of control and format characters and cut
/// (codes to 64 characters, descriptions to 300), so a provider can neither
/// forge a log line nor flood one. They never carry a secret: no request
/// body, header, URL or credential is ever put in one.
///
/// `Display` shows the whole source chain, as logs want it;
/// [`source`](std::error::Error::source) still hands out the cause for
/// code that inspects it.
///
/// ```
/// use payauth_core::{Error, ErrorKind};
///
/// let error = Error::new(ErrorKind::InvalidGrant)
///     .with_status(400)
///     .with_provider_code("invalid_grant\n2025-01-01 INFO forged")
///     .with_description("Refresh token expired\u{202e}");
/// assert_eq!(
///     error.to_string(),
///     "grant refused: Refresh token expired (HTTP 400, provider code invalid_grant 2025-01-01 INFO forged)"
/// );
/// assert!(error.is_permanent());
/// ```
pub struct Error {
    kind: ErrorKind,
    status: Option<u16>,
    provider_code: Option<String>,
    description: Option<String>,
    retry_after: Option<Duration>,
    /// Transient whatever its kind ([`Error::with_transient`]).
    transient: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// An error of `kind` with nothing else known.
    #[must_use]
    pub fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            status: None,
            provider_code: None,
            description: None,
            retry_after: None,
            transient: false,
            source: None,
        }
    }

    /// Adds the HTTP status of the answer.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Adds the provider's own error code, stripped of control and format
    /// characters and cut to 64 characters; an empty code is none.
    #[must_use]
    pub fn with_provider_code(mut self, code: impl AsRef<str>) -> Self {
        self.provider_code = Some(printable(code.as_ref(), MAX_CODE)).filter(|c| !c.is_empty());
        self
    }

    /// Adds a description (the provider's or ours), stripped of control and
    /// format characters and cut to 300 characters; an empty one is none.
    #[must_use]
    pub fn with_description(mut self, description: impl AsRef<str>) -> Self {
        self.description =
            Some(printable(description.as_ref(), MAX_DESCRIPTION)).filter(|d| !d.is_empty());
        self
    }

    /// Marks the error transient whatever its kind: the service behind it
    /// (a token store, say) is down or unreachable, so trying again later
    /// can succeed.
    #[must_use]
    pub fn with_transient(mut self) -> Self {
        self.transient = true;
        self
    }

    /// Adds how long the provider asked us to wait, at most a day.
    #[must_use]
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait.min(MAX_RETRY_AFTER));
        self
    }

    /// Adds the underlying error. Only errors whose messages carry no
    /// secret belong here (I/O, JSON position errors, reqwest errors, whose
    /// messages name the URL but never the body or headers).
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of failure this is.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status, when there was an answer.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The provider's own error code (printable, at most 64 characters).
    #[must_use]
    pub fn provider_code(&self) -> Option<&str> {
        self.provider_code.as_deref()
    }

    /// The provider's description (or ours).
    #[must_use]
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// How long the provider asked us to wait (`Retry-After`), at most a
    /// day.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether trying again later can succeed: rate limits, 5xx, transport
    /// failures and timeouts, and errors marked
    /// [`with_transient`](Self::with_transient) (a store that is down). An
    /// OAuth-looking body on a 429 or 5xx is not a verdict on the
    /// credentials, so those stay transient.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        self.transient
            || matches!(
                self.kind,
                ErrorKind::RateLimited
                    | ErrorKind::Unavailable
                    | ErrorKind::Transport
                    | ErrorKind::Timeout
            )
            || self.status.is_some_and(|s| s == 429 || s >= 500)
    }

    /// Whether the credentials or grant were refused for good: retrying the
    /// same request cannot succeed.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        !self.is_transient()
            && matches!(
                self.kind,
                ErrorKind::InvalidRequest
                    | ErrorKind::InvalidClient
                    | ErrorKind::InvalidGrant
                    | ErrorKind::UnauthorizedClient
                    | ErrorKind::UnsupportedGrantType
                    | ErrorKind::InvalidScope
                    | ErrorKind::AccessDenied
                    | ErrorKind::Config
            )
    }

    /// A copy for sharing one outcome with many waiters; the source chain
    /// becomes its message, so the copy reads the same.
    #[must_use]
    pub(crate) fn share(&self) -> Self {
        Self {
            kind: self.kind,
            status: self.status,
            provider_code: self.provider_code.clone(),
            description: self.description.clone(),
            retry_after: self.retry_after,
            transient: self.transient,
            source: self
                .source
                .as_deref()
                .map(|s| Box::new(Shared(causes(s))) as Box<_>),
        }
    }
}

/// The messages of `source` and its causes, joined by `: `, each cause
/// once (wrappers often repeat their inner error's words), printable and
/// cut.
fn causes(source: &(dyn std::error::Error + 'static)) -> String {
    let mut messages: Vec<String> = Vec::new();
    let mut next = Some(source);
    while let Some(error) = next
        && messages.len() < MAX_CAUSES
    {
        let message = error.to_string();
        if !messages.last().is_some_and(|last| last.contains(&message)) {
            messages.push(message);
        }
        next = error.source();
    }
    printable(&messages.join(": "), MAX_CHAIN)
}

impl Clone for Error {
    fn clone(&self) -> Self {
        self.share()
    }
}

/// The message of a shared error's source.
#[derive(Debug)]
struct Shared(String);

impl fmt::Display for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Shared {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.describe())?;
        if let Some(description) = &self.description {
            write!(f, ": {description}")?;
        }
        let mut details = Vec::new();
        if let Some(status) = self.status {
            details.push(format!("HTTP {status}"));
        }
        if let Some(code) = &self.provider_code {
            details.push(format!("provider code {code}"));
        }
        if let Some(wait) = self.retry_after {
            details.push(format!("retry after {}s", wait.as_secs()));
        }
        if !details.is_empty() {
            write!(f, " ({})", details.join(", "))?;
        }
        if let Some(source) = self.source.as_deref() {
            write!(f, ": {}", causes(source))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("status", &self.status)
            .field("provider_code", &self.provider_code)
            .field("description", &self.description)
            .field("retry_after", &self.retry_after)
            .field("transient", &self.is_transient())
            .field("source", &self.source.as_deref().map(|s| causes(s)))
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<reqwest::Error> for Error {
    /// Timeouts are [`ErrorKind::Timeout`]; a body that is not the JSON
    /// expected is [`ErrorKind::Malformed`]; every other failure without a
    /// complete answer (refused, reset, a body torn off mid-read, which
    /// reqwest also calls a decode error) is [`ErrorKind::Transport`], and
    /// transient.
    fn from(error: reqwest::Error) -> Self {
        let json = std::error::Error::source(&error)
            .is_some_and(<dyn std::error::Error>::is::<serde_json::Error>);
        let kind = if error.is_timeout() {
            ErrorKind::Timeout
        } else if json {
            ErrorKind::Malformed
        } else if error.is_builder() {
            ErrorKind::Config
        } else {
            ErrorKind::Transport
        };
        let status = error.status().map(|s| s.as_u16());
        let mut out = Self::new(kind).with_source(error.without_url());
        out.status = status;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_carries_kind_status_code_and_description() {
        let error = Error::new(ErrorKind::InvalidClient)
            .with_status(401)
            .with_provider_code("3003201")
            .with_description("The given client credentials were not valid");
        assert_eq!(
            error.to_string(),
            "client credentials refused: The given client credentials were not valid (HTTP 401, provider code 3003201)"
        );
    }

    #[test]
    fn rate_limits_and_server_errors_are_transient_even_with_an_oauth_body() {
        assert!(Error::new(ErrorKind::RateLimited).is_transient());
        assert!(
            Error::new(ErrorKind::InvalidGrant)
                .with_status(503)
                .is_transient()
        );
        assert!(
            !Error::new(ErrorKind::InvalidGrant)
                .with_status(503)
                .is_permanent()
        );
        assert!(
            Error::new(ErrorKind::InvalidGrant)
                .with_status(400)
                .is_permanent()
        );
        assert!(Error::new(ErrorKind::Transport).is_transient());
    }

    #[test]
    fn long_or_control_laden_descriptions_are_cut_and_cleaned() {
        let error =
            Error::new(ErrorKind::Provider).with_description(format!("a\nb{}", "x".repeat(1000)));
        let description = error.description().unwrap();
        assert!(description.starts_with("a b"));
        assert_eq!(description.chars().count(), MAX_DESCRIPTION);
    }

    /// An error caused by `depth` more, each saying its depth.
    #[derive(Debug)]
    struct Nested(usize);

    impl fmt::Display for Nested {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "cause {}", self.0)
        }
    }

    impl std::error::Error for Nested {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            // A chain as deep as asked: leaked, but only in this test.
            (self.0 > 0).then(|| &*Box::leak(Box::new(Nested(self.0 - 1))) as _)
        }
    }

    /// A wrapper whose message is its cause's.
    #[derive(Debug)]
    struct Echo(Nested);

    impl fmt::Display for Echo {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Display::fmt(&self.0, f)
        }
    }

    impl std::error::Error for Echo {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn the_source_chain_shows_at_most_eight_causes_each_once() {
        let error = Error::new(ErrorKind::Transport).with_source(Nested(20));
        let shown = error.to_string();
        assert!(
            shown.ends_with(
                ": cause 20: cause 19: cause 18: cause 17: cause 16: cause 15: cause 14: cause 13"
            ),
            "{shown}"
        );
        let short = Error::new(ErrorKind::Transport).with_source(Nested(1));
        assert_eq!(short.to_string(), "transport error: cause 1: cause 0");
        // A wrapper that repeats its cause's words is shown once.
        let repeated = Error::new(ErrorKind::Store).with_source(Echo(Nested(0)));
        assert_eq!(repeated.to_string(), "token store error: cause 0");
    }

    #[test]
    fn debug_shows_every_field_and_the_chain() {
        let error = Error::new(ErrorKind::Refused)
            .with_status(403)
            .with_provider_code("waf-1")
            .with_description("blocked")
            .with_retry_after(Duration::from_secs(3))
            .with_source(Nested(1));
        assert_eq!(
            format!("{error:?}"),
            "Error { kind: Refused, status: Some(403), provider_code: Some(\"waf-1\"), description: Some(\"blocked\"), retry_after: Some(3s), transient: false, source: Some(\"cause 1: cause 0\") }"
        );
    }

    #[test]
    fn a_retry_after_longer_than_a_day_is_cut_to_a_day() {
        let error = Error::new(ErrorKind::RateLimited).with_retry_after(Duration::MAX);
        assert_eq!(error.retry_after(), Some(MAX_RETRY_AFTER));
        assert_eq!(MAX_RETRY_AFTER, Duration::from_secs(86_400));
        let _no_overflow = std::time::Instant::now() + error.retry_after().unwrap();
        let error = Error::new(ErrorKind::RateLimited).with_retry_after(MAX_RETRY_AFTER);
        assert_eq!(error.retry_after(), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn shared_copies_keep_everything_but_the_source_type() {
        let error = Error::new(ErrorKind::Store)
            .with_source(std::io::Error::other("disk full"))
            .with_status(500);
        let copy = error.clone();
        assert_eq!(copy.to_string(), error.to_string());
        assert_eq!(copy.kind(), ErrorKind::Store);
    }
}
