//! [`HttpClient`]: what payauth sends token requests with. hyper's client
//! over its own TLS (rustls with ring by default), never reqwest's: payauth
//! enables no TLS feature of reqwest, so depending on it changes nothing
//! about the application's own `reqwest::Client` (with reqwest's
//! `rustls-no-provider` turned on by a library, `reqwest::Client::new()`
//! panics for want of a crypto provider).
//!
//! The generated clients still build their requests with reqwest's types
//! (progenitor needs them); the reqwest client they build with has no TLS
//! and never sends: their exec hook hands every request to
//! [`execute_capped`](super::execute_capped), which sends it here.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use reqwest::header::{ACCEPT, HeaderValue, USER_AGENT};

use super::proxy::{
    Bounded, Capabilities, ConnectTimedOut, Connector, Proxies, ProxyFailed, Routes,
};
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;

/// The time to set up a connection (TCP and TLS), unless set otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The time for a whole exchange, from sending to the last byte of the
/// answer, unless set otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an idle connection is kept for reuse (as reqwest does).
const POOL_IDLE: Duration = Duration::from_secs(90);
/// TCP keepalive on every connection (as reqwest does).
const KEEPALIVE: Duration = Duration::from_secs(15);

/// The HTTP client for token endpoints: cheap to clone (one connection
/// pool shared by the clones), never follows redirects (a token endpoint
/// that redirects is misconfigured or hostile), a connect timeout (10 s by
/// default) and a timeout for the whole exchange including the answer's
/// body (30 s), user agent `payauth/<version>`, HTTP/1.1 with connections
/// reused, `https://` through the proxy the environment names
/// (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`; see
/// [`HttpClientBuilder::proxy`]), and TLS from payauth-core's features:
///
/// | feature | TLS |
/// |---|---|
/// | `rustls-ring` (default) | rustls with the ring provider; quick to build |
/// | `rustls-aws-lc` | rustls with aws-lc-rs (wins over ring when both are on) |
/// | `native-tls` | the platform's library: OpenSSL, Secure Transport, `SChannel` (wins over rustls) |
///
/// With rustls, certificates are checked by the platform's verifier
/// (`rustls-platform-verifier`: the system's roots), plus any root added
/// with [`HttpClientBuilder::add_root_certificate`]. The crypto provider
/// is given to rustls directly: no process default is installed or read.
///
/// Build one and share it: a client costs milliseconds to build (loading
/// the system roots), an exchange about a tenth of one.
///
/// ```
/// let http = payauth_core::http::default_client()?;
/// let shared = http.clone(); // the same connection pool
/// # let _ = shared;
/// # Ok::<(), payauth_core::Error>(())
/// ```
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// Builds requests (progenitor's `ClientInfo::client`); never sends.
    requests: reqwest::Client,
    transport: Box<dyn Transport>,
    timeout: Duration,
    user_agent: HeaderValue,
    /// What the last `Authorization` value sent masks in answers.
    credentials: crate::redact::CredentialsMemo,
}

/// The one door token requests leave by: payauth's own hyper client
/// ([`Backend`]) or, with feature `reqwest-client`, the application's
/// `reqwest::Client`. What payauth promises above it (its headers, the
/// timeout, the body cap, no redirect followed) holds for both, and
/// nothing above [`HttpClient`] knows which one it has.
trait Transport: Send + Sync {
    /// What sends, for `Debug`.
    fn name(&self) -> &'static str;

    /// Sends `request` and hands back the answer with its body streaming.
    fn send(&self, request: reqwest::Request) -> Sending<'_>;
}

/// An exchange under way.
type Sending<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<reqwest::Response, Error>> + Send + 'a>>;

type Body = reqwest::Body;

enum Backend {
    /// `http://` only: no TLS feature is on.
    #[cfg(not(any(
        feature = "rustls-ring",
        feature = "rustls-aws-lc",
        feature = "native-tls"
    )))]
    Plain(Pool<Bounded<Connector<HttpConnector>>, Body>),
    #[cfg(all(
        any(feature = "rustls-ring", feature = "rustls-aws-lc"),
        not(feature = "native-tls")
    ))]
    Rustls(Pool<Bounded<tls::Rustls<Connector<tls::Rustls<HttpConnector>>>>, Body>),
    #[cfg(feature = "native-tls")]
    NativeTls(Pool<Bounded<tls::Native<Connector<tls::Native<HttpConnector>>>>, Body>),
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("tls", &self.inner.transport.name())
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl Transport for Backend {
    fn name(&self) -> &'static str {
        match self {
            #[cfg(not(any(
                feature = "rustls-ring",
                feature = "rustls-aws-lc",
                feature = "native-tls"
            )))]
            Backend::Plain(_) => "none",
            #[cfg(all(
                any(feature = "rustls-ring", feature = "rustls-aws-lc"),
                not(feature = "native-tls")
            ))]
            Backend::Rustls(_) => "rustls",
            #[cfg(feature = "native-tls")]
            Backend::NativeTls(_) => "native-tls",
        }
    }

    fn send(&self, request: reqwest::Request) -> Sending<'_> {
        Box::pin(async move {
            let request = http::Request::<Body>::try_from(request)
                .map_err(|e| Error::new(ErrorKind::Config).with_source(e.without_url()))?;
            let sent = match self {
                #[cfg(not(any(
                    feature = "rustls-ring",
                    feature = "rustls-aws-lc",
                    feature = "native-tls"
                )))]
                Backend::Plain(pool) => {
                    if request.uri().scheme_str() == Some("https") {
                        return Err(tls::missing());
                    }
                    pool.request(request).await
                }
                #[cfg(all(
                    any(feature = "rustls-ring", feature = "rustls-aws-lc"),
                    not(feature = "native-tls")
                ))]
                Backend::Rustls(pool) => pool.request(request).await,
                #[cfg(feature = "native-tls")]
                Backend::NativeTls(pool) => pool.request(request).await,
            };
            let response = sent.map_err(send_error)?;
            Ok(reqwest::Response::from(response.map(reqwest::Body::wrap)))
        })
    }
}

/// Settings for an [`HttpClient`]; from [`HttpClient::builder`] or
/// [`client_builder`](super::client_builder).
///
/// ```
/// use std::time::Duration;
///
/// let http = payauth_core::http::HttpClient::builder()
///     .connect_timeout(Duration::from_secs(3))
///     .timeout(Duration::from_secs(10))
///     .build()?;
/// # let _ = http;
/// # Ok::<(), payauth_core::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct HttpClientBuilder {
    connect_timeout: Duration,
    timeout: Duration,
    roots: Vec<Vec<u8>>,
    identity: Option<ClientIdentity>,
    proxies: Proxies,
}

/// A client certificate and its private key, for mutual TLS: what a bank's
/// API gateway asks of a client before it talks. The certificate chain is
/// PEM (the client's certificate first, then any intermediates); the key is
/// PEM too, held as a [`Secret`] (read it with [`Secret::from_file`] or
/// [`Secret::from_env`]) and never shown. Checked when the client is built.
///
/// With rustls the key may be PKCS#8, PKCS#1 (RSA) or SEC1 (EC); with
/// `native-tls`, PKCS#8 only. The identity is shown to the provider, never
/// to a proxy.
///
/// ```no_run
/// use payauth_core::{Secret, http::{ClientIdentity, HttpClient}};
///
/// let identity = ClientIdentity::from_pem(
///     std::fs::read("client-chain.pem")?,
///     Secret::from_file("client-key.pem")?,
/// );
/// let http = HttpClient::builder().identity(identity).build()?;
/// # let _ = http;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[cfg_attr(
    not(any(
        feature = "rustls-ring",
        feature = "rustls-aws-lc",
        feature = "native-tls"
    )),
    allow(dead_code, reason = "without TLS an identity is refused at build")
)]
pub struct ClientIdentity {
    chain_pem: Vec<u8>,
    key_pem: Secret,
}

impl ClientIdentity {
    /// The identity of a PEM certificate chain and a PEM private key.
    #[must_use]
    pub fn from_pem(chain_pem: impl Into<Vec<u8>>, key_pem: Secret) -> Self {
        Self {
            chain_pem: chain_pem.into(),
            key_pem,
        }
    }
}

/// The key is never shown; nor is the chain (public, but long).
impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("key_pem", &self.key_pem)
            .finish_non_exhaustive()
    }
}

impl Default for HttpClientBuilder {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            roots: Vec::new(),
            identity: None,
            proxies: Proxies::FromEnv,
        }
    }
}

impl HttpClientBuilder {
    /// The most time to set up a connection: DNS, TCP, the proxy's
    /// handshake and TLS, together. Past it, [`ErrorKind::Timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The most time for a whole exchange, from sending the request to the
    /// last byte of the answer; past it, [`ErrorKind::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Trusts `der` (a DER-encoded X.509 certificate) as a root, beside
    /// the system's: a company CA, a test CA.
    pub fn add_root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.roots.push(der.into());
        self
    }

    /// Presents `identity` (a client certificate and key) to servers that
    /// ask for one: mutual TLS. Needs a TLS feature.
    pub fn identity(mut self, identity: ClientIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Sends every `https://` request through the proxy at `url`, in
    /// place of the one the environment names: `http://` or `https://`
    /// (`CONNECT`, over TLS to an `https://` proxy), `socks5://` or
    /// `socks5h://` (feature `socks`), with `user:password@` if it needs
    /// them. It is checked by [`build`](Self::build); the schemes, default
    /// ports and environment variables are in the [module docs](super#proxies).
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxies = Proxies::Https(url.into());
        self
    }

    /// Connects directly, whatever the environment says.
    pub fn no_proxy(mut self) -> Self {
        self.proxies = Proxies::Off;
        self
    }

    /// The client.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the TLS backend cannot be set up (a root
    /// that is no certificate, no system roots), reqwest's request
    /// builder cannot be built, or a proxy setting cannot be honoured (not
    /// a URL, a scheme payauth does not speak, a feature it needs is off):
    /// the error names the variable (`HTTPS_PROXY`, `ALL_PROXY`, ...),
    /// never its value.
    pub fn build(self) -> Result<HttpClient, Error> {
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_nodelay(true);
        connector.set_keepalive(Some(KEEPALIVE));
        connector.set_connect_timeout(Some(self.connect_timeout));
        let proxies = self.proxies.matcher(tls::CAPABILITIES)?;
        let settings = tls::Settings {
            roots: &self.roots,
            identity: self.identity.as_ref(),
        };
        let backend = tls::backend(connector, proxies, &settings, self.connect_timeout)?;
        Ok(HttpClient::over(
            request_builder()?,
            Box::new(backend),
            self.timeout,
        ))
    }

    /// A client that sends through the application's own `client` (its
    /// proxies, roots, identity, TLS backend), with this builder's
    /// [`timeout`](Self::timeout); feature `reqwest-client`. What payauth
    /// promises still holds: the timeout and the body cap are applied
    /// above it, and a redirect is never followed for a token request. Build
    /// `client` with `redirect(reqwest::redirect::Policy::none())`: an
    /// answer your client reached by following one is refused
    /// ([`ErrorKind::Config`]), and payauth sends its request bodies so
    /// that no client can re-send them on a 307 or 308 (such a redirect
    /// comes back as the answer, an error).
    ///
    /// ```
    /// let own = reqwest::Client::builder()
    ///     .redirect(reqwest::redirect::Policy::none())
    ///     .build()?;
    /// let http = payauth_core::http::HttpClient::builder().build_on_reqwest(own)?;
    /// # let _ = http;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when this builder was given settings that
    /// belong to `client` (a proxy other than the environment's, roots, an
    /// identity, a connect timeout).
    #[cfg(feature = "reqwest-client")]
    pub fn build_on_reqwest(self, client: reqwest::Client) -> Result<HttpClient, Error> {
        let defaults = Self::default();
        let own = [
            (self.proxies != defaults.proxies, "proxy"),
            (!self.roots.is_empty(), "add_root_certificate"),
            (self.identity.is_some(), "identity"),
            (
                self.connect_timeout != defaults.connect_timeout,
                "connect_timeout",
            ),
        ];
        if let Some((_, setting)) = own.into_iter().find(|(set, _)| *set) {
            return Err(Error::new(ErrorKind::Config).with_description(format!(
                "`{setting}` is a setting of your own reqwest client: set it there"
            )));
        }
        Ok(HttpClient::over(
            client.clone(),
            Box::new(own::Reqwest(client)),
            self.timeout,
        ))
    }
}

/// The reqwest client that only builds requests. payauth enables no TLS
/// feature of reqwest; if the application's own tree does, building one
/// still must not take the process down (reqwest panics when its
/// `rustls-no-provider` is on and no provider is installed): that is
/// reported as [`ErrorKind::Config`].
fn request_builder() -> Result<reqwest::Client, Error> {
    let build = || reqwest::Client::builder().build();
    match std::panic::catch_unwind(build) {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(error)) => Err(Error::new(ErrorKind::Config).with_source(error.without_url())),
        Err(_) => Err(Error::new(ErrorKind::Config).with_description(
            "reqwest cannot build a client in this process (another crate turned on its \
             `rustls-no-provider` feature and no rustls crypto provider is installed)",
        )),
    }
}

impl HttpClient {
    /// The client sending through `transport`.
    fn over(requests: reqwest::Client, transport: Box<dyn Transport>, timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                requests,
                transport,
                timeout,
                user_agent: HeaderValue::from_static(concat!(
                    "payauth/",
                    env!("CARGO_PKG_VERSION")
                )),
                credentials: crate::redact::CredentialsMemo::default(),
            }),
        }
    }

    /// Settings for a client; [`build`](HttpClientBuilder::build) it.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder::default()
    }

    /// The reqwest client generated clients build their requests with
    /// (progenitor's `ClientInfo::client`). It has no TLS and sends
    /// nothing itself: send through [`execute_capped`](super::execute_capped).
    #[must_use]
    pub fn requests(&self) -> &reqwest::Client {
        &self.inner.requests
    }

    /// The redactor of the `Authorization` value this client sent last.
    pub(crate) fn credentials(&self) -> &crate::redact::CredentialsMemo {
        &self.inner.credentials
    }

    /// The timeout for a whole exchange.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Sends `request` (built with [`requests`](Self::requests)) and
    /// returns the answer with its body unread, within the timeout (the
    /// request's own or the client's) for the answer's head. Redirects are
    /// returned, not followed. Token requests go through
    /// [`execute_capped`](super::execute_capped), which reads the body
    /// under a cap and in time.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), payauth_core::Error> {
    /// let http = payauth_core::http::default_client()?;
    /// let request = http.requests().get("https://example.com/").build()?;
    /// let answer = http.execute(request).await?;
    /// println!("{}", answer.status());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::Transport`] when there is no answer,
    /// [`ErrorKind::Timeout`] when it comes too late, [`ErrorKind::Config`]
    /// for a request that cannot be sent (a URL hyper refuses).
    pub async fn execute(&self, request: reqwest::Request) -> Result<reqwest::Response, Error> {
        let timeout = request.timeout().copied().unwrap_or(self.inner.timeout);
        tokio::time::timeout(timeout, self.send(request))
            .await
            .unwrap_or_else(|_| Err(timed_out(timeout)))
    }

    /// Sends `request` and waits for the answer's head; the body streams.
    pub(super) async fn send(
        &self,
        mut request: reqwest::Request,
    ) -> Result<reqwest::Response, Error> {
        let headers = request.headers_mut();
        if !headers.contains_key(USER_AGENT) {
            headers.insert(USER_AGENT, self.inner.user_agent.clone());
        }
        if !headers.contains_key(ACCEPT) {
            headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        }
        self.inner.transport.send(request).await
    }
}

/// The application's own reqwest client as a [`Transport`].
#[cfg(feature = "reqwest-client")]
mod own;

/// The error of an exchange that took longer than `timeout`.
pub(super) fn timed_out(timeout: Duration) -> Error {
    Error::new(ErrorKind::Timeout).with_description(format!("no whole answer within {timeout:?}"))
}

/// The error of a request that got no answer, of the kind its cause says:
/// [`ErrorKind::Timeout`] for a connection not set up within the connect
/// timeout, [`ErrorKind::Certificate`] (with the check that failed) for a
/// certificate the TLS backend refused, [`ErrorKind::Proxy`] (or a
/// described `Transport`) for a proxy's failure, else
/// [`ErrorKind::Transport`].
fn send_error(error: hyper_util::client::legacy::Error) -> Error {
    let (kind, description) = send_error_kind(&error);
    let error = Error::new(kind).with_source(SendError(error));
    match description {
        Some(description) => error.with_description(description),
        None => error,
    }
}

/// The kind of a failed exchange, by its causes, and which certificate
/// check failed if one did.
fn send_error_kind(error: &(dyn std::error::Error + 'static)) -> (ErrorKind, Option<String>) {
    if find::<ConnectTimedOut>(error).is_some() {
        (ErrorKind::Timeout, None)
    } else if let Some(check) = tls::failed_check(error) {
        // Before a proxy's failure: a certificate the proxy showed that
        // failed verification is a certificate error too.
        (ErrorKind::Certificate, Some(check))
    } else if let Some(proxy) = find::<ProxyFailed>(error) {
        (proxy.kind, Some(proxy.description.clone()))
    } else if tls::failed_handshake(error) {
        // Said in words: OpenSSL's own text ("wrong version number") does
        // not say TLS.
        (
            ErrorKind::Transport,
            Some("the TLS handshake failed".to_owned()),
        )
    } else {
        (ErrorKind::Transport, None)
    }
}

/// The first error of type `T` among `root`'s causes, looking inside
/// `io::Error`s too (whose `source` skips the error they wrap).
pub(super) fn find<'a, T: std::error::Error + 'static>(
    root: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut next = Some(root);
    let mut depth = 0;
    while let Some(error) = next
        && depth < 16
    {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        next = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as _),
            None => error.source(),
        };
        depth += 1;
    }
    None
}

/// A request that got no answer: "error sending request", then hyper's
/// causes (connect, DNS, TLS, reset). Neither carries the URL.
#[derive(Debug)]
struct SendError(hyper_util::client::legacy::Error);

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("error sending request")
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// A connection pool over `connector`, reqwest's defaults: idle
/// connections kept 90 s, as many per host as were needed.
/// Obsolete line folding in an answer's header is accepted and each fold
/// replaced with a space (RFC 9112 §5.2: a client MUST).
fn pool<C>(connector: C) -> Pool<C, Body>
where
    C: hyper_util::client::legacy::connect::Connect + Clone,
{
    Pool::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE)
        .http1_allow_obsolete_multiline_headers_in_responses(true)
        .build(connector)
}

mod tls;
