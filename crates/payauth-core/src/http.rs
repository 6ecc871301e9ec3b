//! HTTP for token endpoints: one shared client that never follows
//! redirects, response bodies read under a size cap, and provider answers
//! turned into typed [`Error`]s.
//!
//! # Proxies
//!
//! `https://` token requests go through a proxy, read as curl reads it;
//! TLS runs end to end with the provider inside the tunnel. Plain
//! `http://` (the sandbox, loopback) always goes direct.
//!
//! Proxy settings are read and checked once, when the client is built: a
//! setting payauth cannot honour (not a URL, a scheme it does not speak, a
//! SOCKS proxy without the `socks` feature) is [`ErrorKind::Config`]
//! naming where it came from, never dropped for a direct connection.
//!
//! | setting | used for |
//! |---|---|
//! | [`HttpClientBuilder::proxy`] | every `https://` request, in place of the environment |
//! | `HTTPS_PROXY` (or `https_proxy`) | `https://` requests |
//! | `ALL_PROXY` (or `all_proxy`) | `https://` requests, when `HTTPS_PROXY` is unset or empty |
//! | `NO_PROXY` (or `no_proxy`) | hosts, domains (`.example.com`, `example.com`), IPs and CIDRs that go direct; `*` for all |
//!
//! The upper-case name wins when both are set; an empty value is unset.
//! `HTTP_PROXY` is never read (payauth sends nothing in clear through a
//! proxy), nor is anything in a CGI process (`REQUEST_METHOD` set: a
//! request's `Proxy` header becomes `HTTP_PROXY` there).
//!
//! | scheme | how | default port |
//! |---|---|---|
//! | `http://` (or no scheme) | `CONNECT` over TCP; `user:password@` as `Proxy-Authorization: Basic`, readable on the way to the proxy (prefer `https://` for a proxy with a password) | 1080 |
//! | `https://` | `CONNECT` over TLS to the proxy (its certificate checked as a provider's); needs a TLS feature | 443 |
//! | `socks5h://` | SOCKS5, the proxy resolves the host name; `user:password@` as RFC 1929; feature `socks` | 1080 |
//! | `socks5://` | SOCKS5, the host name resolved here; feature `socks` | 1080 |
//!
//! Any other scheme (`socks4://`, `ftp://`) is a configuration error.
//!
//! A proxy that refuses, as it will again, is [`ErrorKind::Proxy`], not
//! transient (the CLI exits 1, not 75), its description naming the
//! setting ("the proxy in `HTTPS_PROXY`"), never its URL or credentials.
//! One that may do better later is a transient [`ErrorKind::Transport`]:
//!
//! | the proxy | kind |
//! |---|---|
//! | refuses the credentials, or wants some (HTTP 407; SOCKS5: user/password refused, no method acceptable, a method not offered) | `Proxy` |
//! | refuses the destination (a 4xx but 407 to `CONNECT`; SOCKS5: not allowed by its ruleset, command or address type not supported) | `Proxy` |
//! | answers as no proxy of its scheme does (no HTTP status line, headers over 8 KiB, no SOCKS5 reply) | `Proxy` |
//! | cannot reach the provider (a 5xx to `CONNECT`; SOCKS5: general failure, network or host unreachable, connection refused, TTL expired) | `Transport` |
//! | is down, or closes the connection unanswered | `Transport` |
//!
//! hyper-util's `CONNECT` and SOCKS5 clients report these only in their
//! error's `Display` (their error types are private), so that is what is
//! read, as hyper-util 0.1 words it; the status of a refused `CONNECT` is
//! read from the first line of the proxy's answer. A sweep over a scripted
//! proxy (`tests/it/proxies.rs`) pins every row. An application's own
//! `reqwest::Client` (`HttpClientBuilder::build_on_reqwest`) reports
//! its proxies' failures as reqwest does: `Transport`.

mod answer;
mod client;
mod date;
mod proxy;

pub use client::{
    ClientIdentity, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, HttpClient, HttpClientBuilder,
};

use std::borrow::Cow;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorKind};

/// The largest token-endpoint response body read (64 KiB); a larger one is
/// [`ErrorKind::Malformed`], and never buffered past the cap.
pub const MAX_BODY: usize = 64 * 1024;

/// Settings for the [`HttpClient`] token requests go over: no redirects,
/// [`DEFAULT_CONNECT_TIMEOUT`], [`DEFAULT_TIMEOUT`] for the whole
/// exchange, TLS from the crate features (`rustls-ring` by default). The
/// same as [`HttpClient::builder`].
pub fn client_builder() -> HttpClientBuilder {
    HttpClient::builder()
}

/// A client from [`client_builder`]; build one and share it.
///
/// It leaves reqwest alone: payauth turns on no TLS feature of reqwest, so
/// an application's own `reqwest::Client::new()` works as its own
/// features say.
///
/// ```
/// let http = payauth_core::http::default_client()?;
/// # let _ = http;
/// # Ok::<(), payauth_core::Error>(())
/// ```
///
/// # Errors
/// [`ErrorKind::Config`] when the TLS backend cannot be set up.
pub fn default_client() -> Result<HttpClient, Error> {
    client_builder().build()
}

/// Which of a provider's hosts to talk to: the same rule for every
/// provider and flow.
///
/// In settings files it is one string: `"sandbox"`, `"production"`, or any
/// other base URL (the payauth sandbox, a proxy, a mock server). The
/// default is [`Sandbox`](Self::Sandbox) everywhere: nothing reaches a
/// provider's production host unless a setting says `production`.
///
/// ```
/// use payauth_core::{Environment, http::Hosts};
///
/// const HOSTS: Hosts = Hosts { production: "https://api.example", sandbox: "https://sandbox.example" };
/// let parse = |s: &str| serde_json::from_value::<Environment>(serde_json::json!(s)).unwrap();
/// assert_eq!(parse("production"), Environment::Production);
/// assert_eq!(parse("http://127.0.0.1:8787"), Environment::Custom("http://127.0.0.1:8787".into()));
/// assert_eq!(Environment::default().base_url(&HOSTS, false).unwrap(), "https://sandbox.example");
/// assert!(serde_json::from_value::<Environment>(serde_json::json!("prod")).is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub enum Environment {
    /// The provider's production host.
    Production,
    /// The provider's sandbox host (the default).
    #[default]
    Sandbox,
    /// Any other base URL: the payauth sandbox, a proxy, a mock server.
    Custom(String),
}

/// A provider's two hosts. Each provider crate has one `HOSTS` constant;
/// [`Environment::base_url`] is the only place that chooses between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hosts {
    /// The production base URL.
    pub production: &'static str,
    /// The sandbox base URL.
    pub sandbox: &'static str,
}

impl Environment {
    /// The base URL this environment means for a provider with `hosts`,
    /// checked by [`check_base_url`].
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a custom URL that is not a URL, or plain
    /// `http://` to a remote host without `allow_insecure`.
    pub fn base_url(&self, hosts: &Hosts, allow_insecure: bool) -> Result<String, Error> {
        let url = match self {
            Self::Production => hosts.production,
            Self::Sandbox => hosts.sandbox,
            Self::Custom(url) => url,
        };
        check_base_url(url, allow_insecure)
    }

    /// `production`, `sandbox`, or the custom URL as
    /// [`redact::url`](crate::redact::url) shows it (never its userinfo or
    /// query), without a trailing `/`: the environment part of store keys
    /// and of what payauth shows.
    #[must_use]
    pub fn label(&self) -> Cow<'_, str> {
        match self {
            Self::Production => Cow::Borrowed("production"),
            Self::Sandbox => Cow::Borrowed("sandbox"),
            Self::Custom(url) => {
                let shown = crate::redact::url(url);
                Cow::Owned(shown.trim_end_matches('/').to_owned())
            }
        }
    }
}

/// A custom URL is shown as [`Environment::label`] shows it.
impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Production => f.write_str("Production"),
            Self::Sandbox => f.write_str("Sandbox"),
            Self::Custom(url) => f
                .debug_tuple("Custom")
                .field(&crate::redact::url(url))
                .finish(),
        }
    }
}

impl std::str::FromStr for Environment {
    type Err = Error;

    /// `sandbox`, `production`, or an `http(s)://` base URL without
    /// userinfo. A refused text is shown as [`redact::url`](crate::redact::url)
    /// shows it: never its userinfo or query.
    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "production" => Ok(Self::Production),
            "sandbox" => Ok(Self::Sandbox),
            url if crate::redact::has_userinfo(url) => Err(userinfo_refused(url)),
            url if has_query_or_fragment(url) => Err(query_refused(url)),
            url if url.starts_with("https://") || url.starts_with("http://") => {
                Ok(Self::Custom(url.to_owned()))
            }
            other => Err(Error::new(ErrorKind::Config).with_description(format!(
                "environment {:?} is not `sandbox`, `production` or an http(s):// base URL",
                crate::redact::url(other)
            ))),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Environment {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = zeroize::Zeroizing::new(String::deserialize(deserializer)?);
        text.parse().map_err(|_| {
            let shown = format!("{:?}", crate::redact::url(&text));
            serde::de::Error::invalid_value(
                serde::de::Unexpected::Other(&shown),
                &"`sandbox`, `production` or an http(s):// base URL without user:password@",
            )
        })
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Environment {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Environment".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`sandbox` (the default), `production`, or any other base URL (the payauth sandbox, a proxy).",
            "anyOf": [
                { "type": "string", "enum": ["sandbox", "production"] },
                { "type": "string", "pattern": "^https?://" }
            ],
            "default": "sandbox",
        })
    }
}

/// `base_url` without its trailing `/`, as the generated clients join
/// paths to it, refused if it carries userinfo (`user:password@`: a
/// secret in a URL shows wherever the URL does) or would send credentials
/// in clear text:
/// `http://` is allowed only for loopback hosts (the sandbox, tests) or
/// when `allow_insecure` says so.
///
/// # Errors
/// [`ErrorKind::Config`] naming the URL as [`redact::url`](crate::redact::url)
/// shows it.
pub fn check_base_url(base_url: &str, allow_insecure: bool) -> Result<String, Error> {
    let base_url = base_url.trim_end_matches('/');
    if crate::redact::has_userinfo(base_url) {
        return Err(userinfo_refused(base_url));
    }
    if has_query_or_fragment(base_url) {
        return Err(query_refused(base_url));
    }
    let url = reqwest::Url::parse(base_url).map_err(|e| {
        Error::new(ErrorKind::Config).with_description(format!(
            "base URL {:?} is not a URL: {e}",
            crate::redact::url(base_url)
        ))
    })?;
    let loopback = match url.host() {
        Some(url::Host::Domain(host)) => host == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(base_url.to_owned()),
        "http" if allow_insecure || loopback => Ok(base_url.to_owned()),
        "http" => Err(Error::new(ErrorKind::Config).with_description(format!(
            "refusing plain http:// to {}: credentials would travel in clear text (allow_insecure_http to override)",
            url.host_str().unwrap_or("?")
        ))),
        other => Err(Error::new(ErrorKind::Config)
            .with_description(format!("base URL scheme {other:?} is not http(s)"))),
    }
}

/// The error for a base URL with `user:password@`: refused, never shown
/// but as [`redact::url`](crate::redact::url) shows it.
/// Whether `url` has a `?query` or `#fragment`. A base URL has neither:
/// paths are joined after it, and the environment label (store keys, what
/// payauth shows) drops them, so two base URLs differing only there would
/// share stored tokens.
fn has_query_or_fragment(url: &str) -> bool {
    url.contains(['?', '#'])
}

fn query_refused(url: &str) -> Error {
    Error::new(ErrorKind::Config).with_description(format!(
        "base URL {:?} carries a ?query or #fragment; a base URL is scheme://host[:port][/path]",
        crate::redact::url(url)
    ))
}

fn userinfo_refused(url: &str) -> Error {
    Error::new(ErrorKind::Config).with_description(format!(
        "base URL {:?} carries user:password@; credentials belong in the settings, never in a URL",
        crate::redact::url(url)
    ))
}

/// Sends `request` over `client` and reads its body, at most `limit`
/// bytes, all within the client's timeout (or the request's own). For a
/// generated client's `ClientHooks::exec`, so that [`from_generated`] sees
/// every answer whole:
///
/// - a non-2xx answer keeps its status and headers whatever its body: the
///   body is read under the cap and kept for [`from_generated`] (too large
///   or torn, it is marked so); the generated client is handed `{}` in
///   place of a body that is no JSON object, and a JSON object with one
///   member added that carries status and headers, so a body that is
///   empty, HTML or not the spec's shape cannot hide the status;
/// - a 2xx body over the cap is cut off and the answer replaced by one that
///   [`from_generated`] reports as [`ErrorKind::Malformed`] with the
///   original status;
/// - no answer (refused, DNS, TLS, reset, a 2xx body torn off, the
///   timeout) is an answer too, one that no spec declares, carrying the
///   typed [`Error`] that [`from_generated`] hands on
///   ([`ErrorKind::Transport`] or [`ErrorKind::Timeout`]): the hook's
///   `reqwest::Error` cannot be built outside reqwest;
/// - every secret the request carries (see
///   [`Redactor::from_request`](crate::redact::Redactor::from_request)) is
///   masked in the answer's headers and in its body (in a 2xx JSON body,
///   in every string but the answer's own tokens), in every form a server
///   echoes it, before the generated client or any error reads them: so
///   no provider text in an [`Error`] can carry the request's secrets,
///   whichever flow sent it.
///
/// # Errors
/// None: the `Result` is the shape `ClientHooks::exec` returns.
pub async fn execute_capped(
    client: &HttpClient,
    request: reqwest::Request,
    limit: usize,
) -> reqwest::Result<reqwest::Response> {
    let timeout = request.timeout().copied().unwrap_or(client.timeout());
    // What the request carries that is secret, masked in whatever the
    // answer echoes, before anything reads it.
    let redactor = crate::redact::Redactor::from_request_with(&request, Some(client.credentials()));
    let exchange = async {
        let mut response = client.send(request).await?;
        answer::strip_own_headers(response.headers_mut());
        if !response.status().is_success() {
            return Ok(answer::keep_error(response, limit, &redactor).await);
        }
        // Read here, whatever its length, so the timeout covers the body.
        let body = answer::read_capped(&mut response, limit)
            .await
            .map_err(Error::from)?;
        Ok(answer::success(response, body, &redactor))
    };
    Ok(match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => answer::failure(error),
        Err(_) => answer::failure(client::timed_out(timeout)),
    })
}

/// How a provider's credentials go on its requests: implemented once per
/// provider, in its `auth.rs`, for the type its generated client carries.
/// The generated `ClientHooks` call [`authenticate`] with each operation's
/// security alternatives (`generated::…::security::for_operation`), so that
/// file is the one place that decides how a client proves who it is.
pub trait ClientAuthentication<S: Copy + PartialEq + 'static> {
    /// The security schemes these credentials send (empty: none, e.g.
    /// credentials in the form body, which the flow writes from the same
    /// `auth.rs`).
    fn schemes(&self) -> &[S];

    /// Puts `scheme`'s credentials on `request`.
    ///
    /// # Errors
    /// When the credentials cannot be applied (say, no randomness for a
    /// signature nonce).
    fn apply(&self, scheme: S, request: &mut reqwest::Request) -> Result<(), Error>;
}

/// The one rule for reading a generated security table: an operation gets
/// the first of its `alternatives` that is non-empty and made only of
/// schemes `auth` sends; failing that, no credentials if the operation
/// allows none; failing that, an error: the settings cannot call it.
///
/// ```
/// use payauth_core::{Error, http::{ClientAuthentication, authenticate}};
///
/// #[derive(Clone, Copy, PartialEq)]
/// enum Scheme { Basic }
/// struct Body; // credentials in the form body: no scheme
/// impl ClientAuthentication<Scheme> for Body {
///     fn schemes(&self) -> &[Scheme] { &[] }
///     fn apply(&self, _: Scheme, _: &mut reqwest::Request) -> Result<(), Error> { unreachable!() }
/// }
/// let mut request = reqwest::Request::new(reqwest::Method::POST, "https://x.example/t".parse().unwrap());
/// // `security: [{}, {clientBasic: []}]`: none, or Basic.
/// assert!(authenticate(&Body, "token", &[&[], &[Scheme::Basic]], &mut request).is_ok());
/// // `security: [{clientBasic: []}]`: Basic only, which Body does not send.
/// assert!(authenticate(&Body, "token", &[&[Scheme::Basic]], &mut request).is_err());
/// ```
///
/// # Errors
/// [`ErrorKind::Config`] naming the operation when no alternative fits;
/// what [`ClientAuthentication::apply`] returns.
pub fn authenticate<S, A>(
    auth: &A,
    operation_id: &str,
    alternatives: &[&[S]],
    request: &mut reqwest::Request,
) -> Result<(), Error>
where
    S: Copy + PartialEq + 'static,
    A: ClientAuthentication<S> + ?Sized,
{
    let sent = auth.schemes();
    let chosen = alternatives
        .iter()
        .find(|schemes| !schemes.is_empty() && schemes.iter().all(|s| sent.contains(s)));
    match chosen {
        Some(schemes) => schemes.iter().try_for_each(|&s| auth.apply(s, request)),
        None if alternatives.iter().any(|schemes| schemes.is_empty()) => Ok(()),
        None => Err(Error::new(ErrorKind::Config).with_description(format!(
            "operation {operation_id} needs credentials these settings do not send"
        ))),
    }
}

/// What payauth reads from a provider's error body: implemented by each
/// provider crate for its generated error type, which must read `{}` and
/// ignore unknown members (all its fields optional, no
/// `additionalProperties: false`): [`execute_capped`] hands the generated
/// client `{}` for an error body that is no JSON object, and adds a member
/// to one that is.
pub trait ProviderErrorBody {
    /// The RFC 6749 `error` code, when the body has one.
    fn oauth_code(&self) -> Option<&str>;
    /// The provider's human-readable description.
    fn description(&self) -> Option<&str>;
    /// The provider's own error code (e.g. iyzico `errorCode`), verbatim.
    fn provider_code(&self) -> Option<String> {
        None
    }
}

/// Implements [`ProviderErrorBody`] for a generated RFC 6749 §5.2 error
/// type, one with `error` and `error_description` fields.
///
/// ```ignore
/// payauth_core::oauth_error_body!(crate::generated::oauth::types::OAuthError);
/// ```
#[macro_export]
macro_rules! oauth_error_body {
    ($body:ty) => {
        impl $crate::http::ProviderErrorBody for $body {
            fn oauth_code(&self) -> Option<&str> {
                self.error.as_deref()
            }

            fn description(&self) -> Option<&str> {
                self.error_description.as_deref()
            }
        }
    };
}

/// The error kind of an HTTP answer. 429, 408 and 5xx by status alone (an
/// OAuth body on them is no verdict on the credentials); else the RFC 6749
/// code, read on a 4xx or on a 2xx envelope that says failure (never on a
/// redirect); else, with no code payauth knows, 401 and 403 are
/// [`ErrorKind::Refused`] (a gateway, WAF or CDN may say that without
/// looking at the credentials), a 2xx is [`ErrorKind::Malformed`] and
/// anything else [`ErrorKind::Provider`].
///
/// ```
/// use payauth_core::ErrorKind;
/// use payauth_core::http::classify;
///
/// assert_eq!(classify(401, Some("invalid_client")), ErrorKind::InvalidClient);
/// assert_eq!(classify(401, None), ErrorKind::Refused);
/// assert_eq!(classify(403, Some("made_up")), ErrorKind::Refused);
/// assert_eq!(classify(503, Some("invalid_grant")), ErrorKind::Unavailable);
/// ```
#[must_use]
pub fn classify(status: u16, oauth_code: Option<&str>) -> ErrorKind {
    match status {
        429 => return ErrorKind::RateLimited,
        408 => return ErrorKind::Timeout,
        500.. => return ErrorKind::Unavailable,
        _ => {}
    }
    let verdict = oauth_code
        .filter(|_| matches!(status, 200..=299 | 400..=499))
        .and_then(ErrorKind::from_oauth_code);
    match verdict {
        Some(kind) => kind,
        None if status == 401 || status == 403 => ErrorKind::Refused,
        None if (200..300).contains(&status) => ErrorKind::Malformed,
        None => ErrorKind::Provider,
    }
}

/// `Retry-After`, as seconds or as an HTTP date. A date counts from the
/// answer's own `Date` header, so a skewed local clock cannot stretch or
/// shrink the wait; without one it is ignored.
///
/// ```
/// use std::time::Duration;
/// use reqwest::header::{DATE, HeaderMap, RETRY_AFTER};
/// use payauth_core::http::retry_after;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(RETRY_AFTER, "Sun, 06 Nov 1994 08:50:07 GMT".parse().unwrap());
/// assert_eq!(retry_after(&headers), None);
/// headers.insert(DATE, "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap());
/// assert_eq!(retry_after(&headers), Some(Duration::from_secs(30)));
/// ```
#[must_use]
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = date::parse(value)?;
    let now = date::parse(headers.get(reqwest::header::DATE)?.to_str().ok()?)?;
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// A typed [`Error`] from a generated client's error. Any answer keeps its
/// HTTP status, `Retry-After` and provider code whatever its body, declared
/// in the spec or not (with [`execute_capped`] as the client's exec hook,
/// which keeps the body of every non-2xx answer). The provider's code comes
/// from the body or from `code_header` (e.g. Layer7's `x-ca-err`). No body,
/// header value or credential of the request ever reaches the message.
pub fn from_generated<E: ProviderErrorBody + DeserializeOwned>(
    error: progenitor_client::Error<E>,
    code_header: Option<&str>,
) -> Error {
    use progenitor_client::Error as Generated;
    match error {
        Generated::ErrorResponse(response) => {
            let (status, headers) = (response.status(), response.headers().clone());
            answer::to_error(status, &headers, Some(response.into_inner()), code_header)
        }
        Generated::UnexpectedResponse(mut response) => {
            if let Some(error) = answer::take_failure(&mut response) {
                return error;
            }
            answer::too_large(response.status(), response.headers()).unwrap_or_else(|| {
                answer::to_error::<E>(response.status(), response.headers(), None, code_header)
            })
        }
        Generated::InvalidResponsePayload(payload, error) => {
            answer::from_payload::<E>(&payload, code_header).unwrap_or_else(|| {
                Error::new(ErrorKind::Malformed).with_description(format!(
                    "the answer does not match the spec ({:?} error at line {}, column {})",
                    error.classify(),
                    error.line(),
                    error.column()
                ))
            })
        }
        Generated::CommunicationError(error)
        | Generated::ResponseBodyError(error)
        | Generated::InvalidUpgrade(error) => Error::from(error),
        Generated::InvalidRequest(message) => {
            Error::new(ErrorKind::Config).with_description(message)
        }
        Generated::Custom(message) => Error::new(ErrorKind::Provider).with_description(message),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn status_decides_before_the_body_for_rate_limits_and_server_errors() {
        assert_eq!(classify(429, Some("invalid_grant")), ErrorKind::RateLimited);
        assert_eq!(classify(503, Some("invalid_grant")), ErrorKind::Unavailable);
        assert_eq!(
            classify(400, Some("invalid_client")),
            ErrorKind::InvalidClient
        );
        assert_eq!(
            classify(401, Some("invalid_client")),
            ErrorKind::InvalidClient
        );
        assert_eq!(classify(401, None), ErrorKind::Refused);
        assert_eq!(classify(400, Some("something_else")), ErrorKind::Provider);
        assert_eq!(classify(200, None), ErrorKind::Malformed);
    }

    #[test]
    fn a_bare_refusal_is_no_verdict_and_a_code_counts_only_where_it_can_be_one() {
        assert_eq!(classify(403, None), ErrorKind::Refused);
        assert_eq!(classify(403, Some("made_up")), ErrorKind::Refused);
        assert_eq!(
            classify(403, Some("access_denied")),
            ErrorKind::AccessDenied
        );
        assert_eq!(classify(408, Some("invalid_grant")), ErrorKind::Timeout);
        assert_eq!(
            classify(499, Some("invalid_grant")),
            ErrorKind::InvalidGrant
        );
        assert_eq!(classify(500, None), ErrorKind::Unavailable);
        assert_eq!(classify(599, None), ErrorKind::Unavailable);
        assert_eq!(
            classify(200, Some("invalid_client")),
            ErrorKind::InvalidClient
        );
        assert_eq!(
            classify(299, Some("invalid_client")),
            ErrorKind::InvalidClient
        );
        // A redirect or an informational answer carries no verdict.
        assert_eq!(classify(302, Some("invalid_grant")), ErrorKind::Provider);
        assert_eq!(classify(399, Some("invalid_grant")), ErrorKind::Provider);
        assert_eq!(classify(199, Some("invalid_grant")), ErrorKind::Provider);
        assert_eq!(classify(404, None), ErrorKind::Provider);
    }

    #[tokio::test]
    async fn a_2xx_body_declared_over_the_cap_is_flagged_with_its_status() {
        use payauth_testkit::gateway::{RawGateway, answer};
        let body = [b'x'; 100];
        let gateway = RawGateway::answering(answer("200 OK", &[("content-length", b"100")], &body));
        let client = default_client().unwrap();
        for (limit, flagged) in [(99, true), (100, false)] {
            let request = client.requests().post(gateway.base_url()).build().unwrap();
            let response = execute_capped(&client, request, limit).await.unwrap();
            let error = answer::too_large(response.status(), response.headers());
            assert_eq!(error.is_some(), flagged, "limit {limit}");
            if let Some(error) = error {
                assert_eq!(error.status(), Some(200));
                assert_eq!(error.kind(), ErrorKind::Malformed);
            } else {
                assert_eq!(response.bytes().await.unwrap().len(), 100);
            }
        }
    }

    #[test]
    fn plain_http_is_refused_except_on_loopback_or_when_allowed() {
        assert!(check_base_url("https://auth-api.mypos.com", false).is_ok());
        assert!(check_base_url("http://127.0.0.1:8080", false).is_ok());
        assert!(check_base_url("http://[::1]:8080", false).is_ok());
        assert!(check_base_url("http://localhost:1", false).is_ok());
        let error = check_base_url("http://auth-api.mypos.com", false).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(error.to_string().contains("auth-api.mypos.com"));
        assert!(check_base_url("http://auth-api.mypos.com", true).is_ok());
        assert!(check_base_url("ftp://x", true).is_err());
        assert_eq!(
            check_base_url("https://api.example/v1//", false).unwrap(),
            "https://api.example/v1"
        );
    }

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Scheme {
        Basic,
        Signature,
    }

    /// Credentials that send `sent` and record what was applied.
    struct Recording {
        sent: Vec<Scheme>,
        applied: std::sync::Mutex<Vec<Scheme>>,
    }

    impl ClientAuthentication<Scheme> for Recording {
        fn schemes(&self) -> &[Scheme] {
            &self.sent
        }

        fn apply(&self, scheme: Scheme, _: &mut reqwest::Request) -> Result<(), Error> {
            self.applied.lock().unwrap().push(scheme);
            Ok(())
        }
    }

    fn applied(sent: &[Scheme], alternatives: &[&[Scheme]]) -> Result<Vec<Scheme>, ErrorKind> {
        let auth = Recording {
            sent: sent.to_vec(),
            applied: std::sync::Mutex::default(),
        };
        let mut request = reqwest::Request::new(
            reqwest::Method::POST,
            "https://x.example/t".parse().unwrap(),
        );
        authenticate(&auth, "op", alternatives, &mut request).map_err(|e| e.kind())?;
        Ok(auth.applied.into_inner().unwrap())
    }

    #[test]
    fn the_first_alternative_made_only_of_schemes_the_credentials_send_is_applied() {
        use Scheme::{Basic, Signature};
        // VakıfBank: none, or Basic; body credentials send nothing.
        assert_eq!(applied(&[], &[&[], &[Basic]]), Ok(vec![]));
        assert_eq!(applied(&[Basic], &[&[], &[Basic]]), Ok(vec![Basic]));
        // An alternative needing a scheme not sent is skipped, whole.
        assert_eq!(
            applied(&[Basic], &[&[Basic, Signature], &[Basic]]),
            Ok(vec![Basic])
        );
        assert_eq!(
            applied(&[Basic, Signature], &[&[Basic, Signature]]),
            Ok(vec![Basic, Signature])
        );
        // No credentials needed: nothing applied whatever is held.
        assert_eq!(applied(&[Basic], &[&[]]), Ok(vec![]));
    }

    #[test]
    fn an_operation_the_credentials_cannot_call_is_a_config_error() {
        assert_eq!(applied(&[], &[&[Scheme::Basic]]), Err(ErrorKind::Config));
        assert_eq!(
            applied(&[Scheme::Signature], &[&[Scheme::Basic]]),
            Err(ErrorKind::Config)
        );
        assert_eq!(applied(&[Scheme::Basic], &[]), Err(ErrorKind::Config));
    }

    const HOSTS: Hosts = Hosts {
        production: "https://api.example",
        sandbox: "https://sandbox.example/",
    };

    #[test]
    fn an_environment_is_sandbox_production_or_an_http_url_and_picks_its_host() {
        let parse = |s: &str| s.parse::<Environment>().map_err(|e| e.kind());
        assert_eq!(parse("sandbox"), Ok(Environment::Sandbox));
        assert_eq!(parse("production"), Ok(Environment::Production));
        assert_eq!(
            parse("https://proxy.example"),
            Ok(Environment::Custom("https://proxy.example".into()))
        );
        assert_eq!(
            parse("http://127.0.0.1:1"),
            Ok(Environment::Custom("http://127.0.0.1:1".into()))
        );
        for bad in ["prod", "Sandbox", "ftp://x", "", "api.example"] {
            assert_eq!(parse(bad), Err(ErrorKind::Config), "{bad}");
        }
        assert_eq!(
            Environment::Production.base_url(&HOSTS, false).unwrap(),
            "https://api.example"
        );
        assert_eq!(
            Environment::Sandbox.base_url(&HOSTS, false).unwrap(),
            "https://sandbox.example"
        );
        let custom = Environment::Custom("http://remote.example".into());
        assert!(custom.base_url(&HOSTS, false).is_err());
        assert_eq!(
            custom.base_url(&HOSTS, true).unwrap(),
            "http://remote.example"
        );
        assert_eq!(Environment::default(), Environment::Sandbox);
    }

    #[test]
    fn an_environment_deserializes_from_its_label_and_refuses_others_by_value() {
        let parse = |s: &str| serde_json::from_value::<Environment>(serde_json::json!(s));
        assert_eq!(parse("production").unwrap(), Environment::Production);
        let error = parse("prodution").unwrap_err().to_string();
        assert!(error.contains("prodution"), "{error}");
        assert_eq!(Environment::Custom("http://a/".into()).label(), "http://a");
        assert_eq!(Environment::Production.label(), "production");
    }

    #[test]
    fn a_url_with_userinfo_is_refused_and_no_url_is_shown_with_userinfo_or_query() {
        let parse = |s: &str| serde_json::from_value::<Environment>(serde_json::json!(s));
        for with_userinfo in [
            "https://id:SECRET@api.example:99999/",
            "https://id:SECRET@api.example/",
            "http://SECRET@127.0.0.1:1",
            "https://user:p/SECRET@host",
        ] {
            for error in [
                with_userinfo.parse::<Environment>().unwrap_err(),
                check_base_url(with_userinfo, true).unwrap_err(),
                Environment::Custom(with_userinfo.into())
                    .base_url(&HOSTS, true)
                    .unwrap_err(),
            ] {
                assert_eq!(error.kind(), ErrorKind::Config);
                let shown = format!("{error} {error:?}");
                assert!(!shown.contains("SECRET"), "{shown}");
                assert!(shown.contains("user:password@"), "{shown}");
            }
            let error = parse(with_userinfo).unwrap_err().to_string();
            assert!(!error.contains("SECRET"), "{error}");
            let custom = Environment::Custom(with_userinfo.into());
            let shown = format!("{custom:?} {}", custom.label());
            assert!(!shown.contains("SECRET"), "{shown}");
        }
        for not_a_url in [
            "htps://x.example/t?client_secret=SECRET",
            "https://api.example:99999/?client_secret=SECRET",
            "api.example/?SECRET",
        ] {
            let mut shown = Vec::new();
            if let Err(error) = not_a_url.parse::<Environment>() {
                shown.push(format!("{error} {error:?}"));
            }
            if let Err(error) = parse(not_a_url) {
                shown.push(error.to_string());
            }
            let error = check_base_url(not_a_url, true).unwrap_err();
            shown.push(format!("{error} {error:?}"));
            let custom = Environment::Custom(not_a_url.into());
            shown.push(format!("{custom:?} {}", custom.label()));
            for shown in shown {
                assert!(!shown.contains("SECRET"), "{shown}");
            }
        }
    }

    #[test]
    fn a_base_url_with_a_query_or_fragment_is_refused_so_no_two_accepted_urls_share_a_label() {
        for url in [
            "https://api.example/?tenant=a",
            "https://api.example/base?x",
            "https://api.example/#frag",
            "http://127.0.0.1:1/?client_secret=SECRET",
        ] {
            for error in [
                url.parse::<Environment>().unwrap_err(),
                check_base_url(url, true).unwrap_err(),
            ] {
                assert_eq!(error.kind(), ErrorKind::Config, "{url}");
                let shown = format!("{error} {error:?}");
                assert!(shown.contains("?query or #fragment"), "{shown}");
                assert!(!shown.contains("SECRET"), "{shown}");
            }
        }
        // What is accepted has a label that keeps every part of it.
        for url in [
            "https://api.example",
            "https://api.example/base",
            "http://127.0.0.1:8787/p",
        ] {
            let environment: Environment = url.parse().unwrap();
            assert_eq!(environment.label(), url);
            assert_eq!(check_base_url(url, false).unwrap(), url);
        }
    }

    #[test]
    fn retry_after_reads_seconds_or_a_date_counted_from_the_answers_own_date() {
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, " 7 ".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None, "no Date to count from");
        headers.insert(
            reqwest::header::DATE,
            "Wed, 21 Oct 2015 07:27:58 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(
            reqwest::header::DATE,
            "Wed, 21 Oct 2015 07:29:00 GMT".parse().unwrap(),
        );
        assert_eq!(
            retry_after(&headers),
            Some(Duration::ZERO),
            "a date in the past"
        );
        for junk in ["-1", "1.5", "soon"] {
            headers.insert(reqwest::header::RETRY_AFTER, junk.parse().unwrap());
            assert_eq!(retry_after(&headers), None, "{junk}");
        }
    }

    /// A one-shot loopback server answering with `chunks` as a chunked body
    /// (no Content-Length), as a streaming proxy would.
    fn chunked_server(chunks: usize, chunk_len: usize) -> String {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
            for _ in 0..chunks {
                out.extend_from_slice(format!("{chunk_len:x}\r\n").as_bytes());
                out.extend(std::iter::repeat_n(b'x', chunk_len));
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            let _ = stream.write_all(&out);
        });
        url
    }

    #[tokio::test]
    async fn a_chunked_body_over_the_cap_is_cut_off_and_flagged() {
        let url = chunked_server(10, 16 * 1024);
        let client = default_client().unwrap();
        let request = client.requests().get(&url).build().unwrap();
        let response = execute_capped(&client, request, MAX_BODY).await.unwrap();
        let error = answer::too_large(response.status(), response.headers()).unwrap();
        assert_eq!(error.kind(), ErrorKind::Malformed);
        assert_eq!(error.status(), Some(200));
    }

    #[tokio::test]
    async fn a_chunked_body_under_the_cap_arrives_whole() {
        let url = chunked_server(3, 100);
        let client = default_client().unwrap();
        let request = client.requests().get(&url).build().unwrap();
        let response = execute_capped(&client, request, MAX_BODY).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.bytes().await.unwrap().len(), 300);
    }

    /// A loopback server that answers every request on a connection with
    /// `answer`, keeping connections open; it records each request's head
    /// and counts the connections it accepted.
    fn keep_alive_server(
        answer: &'static [u8],
    ) -> (String, Arc<Mutex<Vec<String>>>, Arc<AtomicUsize>) {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (heads, accepted) = (
            Arc::<Mutex<Vec<String>>>::default(),
            Arc::<AtomicUsize>::default(),
        );
        let (seen, count) = (Arc::clone(&heads), Arc::clone(&accepted));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 4096];
                    while let Ok(n @ 1..) = stream.read(&mut buffer) {
                        seen.lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&buffer[..n]).into_owned());
                        if answer.is_empty() {
                            std::thread::sleep(Duration::from_secs(5));
                            return;
                        }
                        if stream.write_all(answer).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, heads, accepted)
    }

    #[tokio::test]
    async fn connections_are_reused_and_requests_carry_payauths_user_agent() {
        let (url, heads, accepted) =
            keep_alive_server(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
        let client = default_client().unwrap();
        for accept in [None, Some("application/json"), None] {
            let mut request = client.requests().post(&url).body("a=b");
            if let Some(accept) = accept {
                request = request.header("accept", accept);
            }
            let request = request.build().unwrap();
            let response = execute_capped(&client, request, MAX_BODY).await.unwrap();
            assert_eq!(response.bytes().await.unwrap().as_ref(), b"{}");
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection for three requests"
        );
        let heads = heads.lock().unwrap();
        assert_eq!(heads.len(), 3);
        let agent = concat!("user-agent: payauth/", env!("CARGO_PKG_VERSION"), "\r\n");
        assert!(heads[0].to_lowercase().contains(agent), "{}", heads[0]);
        assert!(heads[0].contains("content-length: 3"), "{}", heads[0]);
        // reqwest's default `accept: */*` when the request has none; the
        // request's own otherwise, alone.
        assert!(heads[0].contains("accept: */*\r\n"), "{}", heads[0]);
        assert!(
            heads[1].contains("accept: application/json\r\n"),
            "{}",
            heads[1]
        );
        assert!(!heads[1].contains("*/*"), "{}", heads[1]);
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_a_timeout_within_the_clients_timeout() {
        let (url, _, _) = keep_alive_server(b"");
        let client = client_builder()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let request = client.requests().post(&url).build().unwrap();
        let started = std::time::Instant::now();
        let mut response = execute_capped(&client, request, MAX_BODY).await.unwrap();
        let error = answer::take_failure(&mut response).expect("a synthesized failure");
        assert_eq!(error.kind(), ErrorKind::Timeout);
        assert!(error.is_transient());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_2xx_body_that_stalls_is_a_timeout_even_when_its_length_is_under_the_cap() {
        // The head arrives at once; 10 of the 100 declared bytes follow,
        // then nothing. The timeout covers the body, not only the head.
        let url = stalling_body_server();
        let client = client_builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let request = client.requests().get(&url).build().unwrap();
        let started = std::time::Instant::now();
        let mut response = execute_capped(&client, request, MAX_BODY).await.unwrap();
        let error = answer::take_failure(&mut response).expect("a synthesized failure");
        assert_eq!(error.kind(), ErrorKind::Timeout);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    /// A one-shot server that declares 100 bytes of body, sends 10, stalls.
    fn stalling_body_server() -> String {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let _ = stream.read(&mut [0u8; 4096]);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"access_");
            std::thread::sleep(Duration::from_secs(5));
        });
        url
    }

    #[tokio::test]
    async fn no_answer_comes_back_as_an_undeclared_answer_carrying_the_typed_error() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", closed.local_addr().unwrap());
        drop(closed);
        let client = default_client().unwrap();
        let request = client.requests().post(&url).build().unwrap();
        let response = execute_capped(&client, request, MAX_BODY).await.unwrap();
        assert!(!response.status().is_success());
        let error =
            from_generated::<Oauth>(progenitor_client::Error::UnexpectedResponse(response), None);
        assert_eq!(error.kind(), ErrorKind::Transport);
        assert_eq!(error.status(), None, "no answer, no status");
        assert!(
            error.to_string().contains("error sending request"),
            "{error}"
        );
    }

    #[derive(serde::Deserialize)]
    struct Oauth {
        error: Option<String>,
        error_description: Option<String>,
    }

    crate::oauth_error_body!(Oauth);

    #[tokio::test]
    async fn https_without_a_trusted_root_is_refused_and_an_added_root_must_be_a_certificate() {
        let result = client_builder()
            .add_root_certificate(b"not a certificate".to_vec())
            .build();
        // rustls' verifier refuses it at build time; native-tls too.
        assert_eq!(
            result.map(|_| ()).map_err(|e| e.kind()),
            Err(ErrorKind::Config)
        );
    }

    #[test]
    fn building_payauths_client_installs_no_process_wide_crypto_provider() {
        let _client = default_client().unwrap();
        #[cfg(any(feature = "rustls-ring", feature = "rustls-aws-lc"))]
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
        // And a bare reqwest client still builds: payauth gave reqwest no TLS.
        let _ = reqwest::Client::new();
    }

    #[test]
    fn the_default_client_builds_with_the_default_tls_backend() {
        let shown = format!("{:?}", default_client().unwrap());
        let tls = if cfg!(feature = "native-tls") {
            "native-tls"
        } else {
            "rustls"
        };
        assert!(shown.contains(&format!("tls: {tls:?}")), "{shown}");
        assert!(shown.contains("timeout: 30s"), "{shown}");
    }

    /// A loopback server that accepts connections, reads what comes and
    /// never answers: a TLS server that never finishes its handshake, or a
    /// proxy that never answers `CONNECT`. Returns its `host:port`.
    fn silent_server() -> String {
        use std::io::Read as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                std::thread::spawn(move || while let Ok(1..) = stream.read(&mut [0u8; 4096]) {});
            }
        });
        address
    }

    #[cfg(any(
        feature = "rustls-ring",
        feature = "rustls-aws-lc",
        feature = "native-tls"
    ))]
    #[tokio::test]
    async fn the_connect_timeout_bounds_the_tls_handshake_and_the_proxys_connect_together() {
        let silent = silent_server();
        let setups = [
            // TLS to a server that never answers the ClientHello.
            (format!("https://{silent}/token"), None),
            // CONNECT to a proxy that never answers it.
            (
                "https://provider.example/token".to_owned(),
                Some(format!("http://{silent}")),
            ),
        ];
        for (url, proxy) in setups {
            let mut builder = client_builder()
                .connect_timeout(Duration::from_millis(300))
                .timeout(Duration::from_secs(20));
            builder = match &proxy {
                Some(proxy) => builder.proxy(proxy),
                None => builder.no_proxy(),
            };
            let client = builder.build().unwrap();
            let request = client.requests().post(&url).build().unwrap();
            let started = std::time::Instant::now();
            let error = client.execute(request).await.unwrap_err();
            let took = started.elapsed();
            assert_eq!(error.kind(), ErrorKind::Timeout, "{url} {proxy:?}: {error}");
            assert!(error.is_transient());
            assert!(took < Duration::from_secs(3), "{url} {proxy:?}: {took:?}");
            assert!(error.to_string().contains("no connection"), "{error}");
        }
    }

    #[tokio::test]
    async fn a_folded_header_line_in_an_answer_is_accepted_with_the_fold_made_a_space() {
        let (url, _, _) = keep_alive_server(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-note: one\r\n two\r\n\tthree\r\ncontent-length: 2\r\n\r\n{}",
        );
        let client = default_client().unwrap();
        let request = client.requests().post(&url).build().unwrap();
        let response = execute_capped(&client, request, MAX_BODY).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-note"], "one two three");
        assert_eq!(response.bytes().await.unwrap().as_ref(), b"{}");
    }

    /// A loopback server answering each connection's first request with
    /// the answer `route` gives its request line, recording request heads
    /// and bodies.
    #[cfg(feature = "reqwest-client")]
    fn routed_server(route: fn(&str) -> String) -> (String, Arc<Mutex<Vec<String>>>) {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::<Mutex<Vec<String>>>::default();
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut buffer = [0u8; 8192];
                let Ok(n) = stream.read(&mut buffer) else {
                    continue;
                };
                let request = String::from_utf8_lossy(&buffer[..n]).into_owned();
                log.lock().unwrap().push(request.clone());
                let answer = route(request.lines().next().unwrap_or_default());
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        (url, seen)
    }

    #[cfg(feature = "reqwest-client")]
    #[tokio::test]
    async fn your_own_reqwest_client_sends_and_payauths_promises_still_hold() {
        fn route(line: &str) -> String {
            let answer = |status: &str, headers: &str, body: &str| {
                format!(
                    "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            match line.split(' ').nth(1).unwrap_or_default() {
                "/token" => answer("200 OK", "", "{}"),
                "/307" => answer("307 Temporary Redirect", "location: /token\r\n", ""),
                "/302" => answer("302 Found", "location: /token\r\n", ""),
                "/large" => answer("200 OK", "", &"x".repeat(MAX_BODY + 1)),
                _ => {
                    std::thread::sleep(Duration::from_secs(3));
                    String::new()
                }
            }
        }
        let (url, seen) = routed_server(route);
        let following = reqwest::Client::new(); // follows redirects
        let client = client_builder()
            .timeout(Duration::from_millis(500))
            .build_on_reqwest(following)
            .unwrap();
        assert!(format!("{client:?}").contains("your reqwest client"));
        let send = |path: &str| {
            let request = client
                .requests()
                .post(format!("{url}{path}"))
                .body("client_secret=SECRET")
                .build()
                .unwrap();
            let client = client.clone();
            async move {
                let mut response = execute_capped(&client, request, MAX_BODY).await.unwrap();
                match answer::take_failure(&mut response) {
                    Some(error) => Err(error),
                    None => Ok(response),
                }
            }
        };
        let ok = send("/token").await.unwrap();
        assert_eq!(ok.status(), 200);
        assert!(
            seen.lock().unwrap()[0].contains("user-agent: payauth/"),
            "payauth's headers on your client's request"
        );
        // A 307 is not followed: the form cannot be re-sent.
        seen.lock().unwrap().clear();
        let redirect = send("/307").await.unwrap();
        assert_eq!(redirect.status(), 307);
        assert_eq!(seen.lock().unwrap().len(), 1, "no second request");
        // A 302 your client followed is refused.
        let followed = send("/302").await.unwrap_err();
        assert_eq!(followed.kind(), ErrorKind::Config, "{followed}");
        assert!(followed.to_string().contains("redirect"), "{followed}");
        // The body cap and the timeout.
        let large = send("/large").await.unwrap();
        let error = answer::too_large(large.status(), large.headers()).unwrap();
        assert_eq!(error.kind(), ErrorKind::Malformed);
        let started = std::time::Instant::now();
        let slow = send("/slow").await.unwrap_err();
        assert_eq!(slow.kind(), ErrorKind::Timeout, "{slow}");
        assert!(started.elapsed() < Duration::from_secs(2));
        // Settings of your own client are not taken twice.
        let twice = client_builder()
            .proxy("http://proxy.example:1")
            .build_on_reqwest(reqwest::Client::new())
            .unwrap_err();
        assert!(twice.to_string().contains("`proxy`"), "{twice}");
    }
}
