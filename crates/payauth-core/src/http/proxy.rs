//! The connector under [`HttpClient`](super::HttpClient)'s TLS: `https://`
//! token requests go through the proxy the settings or the environment
//! name, so TLS still runs end to end with the provider inside the tunnel.
//! Plain `http://` (the sandbox, loopback tests) always goes direct:
//! credentials in clear text are not handed to a proxy.
//!
//! Proxy settings are read and checked once, when the client is built;
//! what is read and which schemes are spoken is documented on the
//! [`http`](super) module (# Proxies).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::rt::{Read, Write};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use tower_service::Service;

use crate::error::{Error, ErrorKind};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A TCP stream, as [`HttpConnector`] gives it.
pub(super) type Tcp = <HttpConnector as Service<http::Uri>>::Response;

/// Where proxies come from.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum Proxies {
    /// `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY` (the default).
    FromEnv,
    /// This proxy for every `https://` request.
    Https(String),
    /// None.
    Off,
}

/// The URL only as [`redact::url`](crate::redact::url) shows it: it may
/// carry the proxy's password.
impl fmt::Debug for Proxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FromEnv => f.write_str("FromEnv"),
            Self::Https(url) => f
                .debug_tuple("Https")
                .field(&crate::redact::url(url))
                .finish(),
            Self::Off => f.write_str("Off"),
        }
    }
}

/// What the TLS backend can do for a proxy.
#[derive(Debug, Clone, Copy)]
pub(super) struct Capabilities {
    /// TLS to an `https://` proxy.
    pub(super) tls: bool,
}

impl Proxies {
    /// The proxies to use, every setting checked; `None` for none.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming the variable (or the builder) whose
    /// value cannot be honoured; never quoting the value.
    pub(super) fn matcher(&self, can: Capabilities) -> Result<Option<Routes>, Error> {
        self.matcher_in(&|name| std::env::var_os(name), can)
    }

    /// [`matcher`](Self::matcher) with the environment read by `read`.
    fn matcher_in(&self, read: &Env<'_>, can: Capabilities) -> Result<Option<Routes>, Error> {
        let (origin, url, no) = match self {
            Self::Off => return Ok(None),
            Self::Https(url) => (
                "the proxy given to HttpClientBuilder::proxy",
                url.clone(),
                None,
            ),
            Self::FromEnv => {
                if read("REQUEST_METHOD").is_some() {
                    return Ok(None);
                }
                let https = first(read, &["HTTPS_PROXY", "https_proxy"])?;
                let Some((name, url)) = https.or(first(read, &["ALL_PROXY", "all_proxy"])?) else {
                    return Ok(None);
                };
                let no = first(read, &["NO_PROXY", "no_proxy"])?.map(|(_, no)| no);
                (name, url, no)
            }
        };
        let url = normalize(origin, &url, can)?;
        let mut builder = Matcher::builder().https(url);
        if let Some(no) = no {
            builder = builder.no(no);
        }
        let origin = if origin.contains(' ') {
            origin.to_owned()
        } else {
            format!("the proxy in {origin}")
        };
        Ok(Some(Routes {
            matcher: builder.build(),
            origin,
        }))
    }
}

/// The proxies to route through, and where they were set ("the proxy in
/// `HTTPS_PROXY`", "the proxy given to `HttpClientBuilder::proxy`"), for
/// the errors that name it (never its URL).
pub(super) struct Routes {
    matcher: Matcher,
    origin: String,
}

/// The origin only: the matcher holds the proxy's credentials.
impl fmt::Debug for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routes")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Routes {
    /// The proxy for `destination`, if one.
    pub(super) fn intercept(&self, destination: &http::Uri) -> Option<Intercept> {
        self.matcher.intercept(destination)
    }
}

/// Reads an environment variable.
type Env<'a> = dyn Fn(&str) -> Option<std::ffi::OsString> + 'a;

/// The first of `names` set to a non-empty value, with its name.
fn first(read: &Env<'_>, names: &[&'static str]) -> Result<Option<(&'static str, String)>, Error> {
    for name in names {
        let Some(value) = read(name) else { continue };
        let value = value
            .into_string()
            .map_err(|_| config(format!("{name} is not valid UTF-8")))?;
        if !value.trim().is_empty() {
            return Ok(Some((name, value.trim().to_owned())));
        }
    }
    Ok(None)
}

fn config(description: String) -> Error {
    Error::new(ErrorKind::Config).with_description(description)
}

/// `url` checked and with its port made explicit (curl's defaults), or
/// why it cannot be used. The errors name `origin`, never the value.
fn normalize(origin: &str, url: &str, can: Capabilities) -> Result<String, Error> {
    let not_a_url = || {
        config(format!(
            "{origin} is not a proxy URL (scheme://[user:password@]host[:port])"
        ))
    };
    let with_scheme = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    if with_scheme
        .split_once("://")
        .is_some_and(|(_, rest)| rest.starts_with('/'))
    {
        return Err(not_a_url());
    }
    let parsed = url::Url::parse(&with_scheme).map_err(|_| not_a_url())?;
    let default_port = match parsed.scheme() {
        "http" => 1080,
        "https" if can.tls => 443,
        "https" => {
            return Err(config(format!(
                "{origin} is an https:// proxy, which needs a TLS backend: turn on \
                 payauth-core's `rustls-ring`, `rustls-aws-lc` or `native-tls` feature"
            )));
        }
        "socks5" | "socks5h" if cfg!(feature = "socks") => 1080,
        "socks5" | "socks5h" => {
            return Err(config(format!(
                "{origin} is a SOCKS proxy: turn on payauth-core's `socks` feature"
            )));
        }
        other => {
            return Err(config(format!(
                "{origin} has the proxy scheme {other:?}; payauth speaks http, https, socks5 \
                 and socks5h (with the `socks` feature)"
            )));
        }
    };
    let host = match parsed.host() {
        Some(url::Host::Domain(name)) if !name.is_empty() => name.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        _ => return Err(config(format!("{origin} names no proxy host"))),
    };
    if host.contains(['%', ' ']) {
        return Err(not_a_url());
    }
    // Userinfo stays percent-encoded, as the matcher decodes it.
    let userinfo = match (parsed.username(), parsed.password()) {
        ("", None) => String::new(),
        (user, None) => format!("{user}@"),
        (user, Some(password)) => format!("{user}:{password}@"),
    };
    let port = parsed.port().unwrap_or(default_port);
    let normalized = format!("{}://{userinfo}{host}:{port}", parsed.scheme());
    // What the matcher parses must be what was checked.
    normalized.parse::<http::Uri>().map_err(|_| not_a_url())?;
    Ok(normalized)
}

/// TCP to the destination, or a tunnel to it through the proxy that
/// matches it: `CONNECT` over `to_proxy` (plain TCP, or TLS for an
/// `https://` proxy), or SOCKS5 over TCP.
#[derive(Clone)]
pub(super) struct Connector<T> {
    direct: HttpConnector,
    to_proxy: T,
    proxies: Option<Arc<Routes>>,
}

impl<T> Connector<T> {
    pub(super) fn new(direct: HttpConnector, to_proxy: T, proxies: Option<Routes>) -> Self {
        Self {
            direct,
            to_proxy,
            proxies: proxies.map(Arc::new),
        }
    }
}

impl<T, S> Service<http::Uri> for Connector<T>
where
    T: Service<http::Uri, Response = S> + Clone + Send + 'static,
    T::Future: Send + 'static,
    T::Error: Into<BoxError>,
    S: From<Tcp> + Read + Write + Unpin + Send + 'static,
{
    type Response = S;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.direct.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, destination: http::Uri) -> Self::Future {
        let routes = self
            .proxies
            .as_ref()
            .filter(|_| destination.scheme_str() == Some("https"));
        let proxy = routes.and_then(|routes| routes.intercept(&destination));
        let mut direct = self.direct.clone();
        let (Some(proxy), Some(routes)) = (proxy, routes) else {
            return Box::pin(async move { Ok(S::from(direct.call(destination).await?)) });
        };
        let routes = Arc::clone(routes);
        if matches!(proxy.uri().scheme_str(), Some("socks5" | "socks5h")) {
            let connecting = socks::connect::<S>(direct, &proxy, destination);
            return Box::pin(async move {
                connecting
                    .await
                    .map_err(|e| refusal::socks(&routes.origin, e))
            });
        }
        // The first line of the proxy's answer to CONNECT, which hyper-util
        // reads but does not report (its error says "unsuccessful" for any
        // status but 200 and 407).
        let head = Arc::new(std::sync::Mutex::new(Vec::new()));
        let to_proxy = refusal::Recorded {
            inner: self.to_proxy.clone(),
            head: Arc::clone(&head),
        };
        let mut tunnel = Tunnel::new(proxy.uri().clone(), to_proxy);
        let credentials = proxy.basic_auth().is_some();
        if let Some(auth) = proxy.basic_auth() {
            tunnel = tunnel.with_auth(auth.clone());
        }
        Box::pin(async move {
            std::future::poll_fn(|cx| tunnel.poll_ready(cx)).await?;
            match tunnel.call(destination).await {
                Ok(recording) => Ok(recording.into_inner()),
                Err(error) => {
                    let status = refusal::status(
                        &head
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner),
                    );
                    Err(refusal::tunnel(
                        &routes.origin,
                        status,
                        credentials,
                        error.into(),
                    ))
                }
            }
        })
    }
}

mod refusal;
pub(super) use refusal::ProxyFailed;

/// SOCKS5 through hyper-util's client (feature `socks`).
#[cfg(feature = "socks")]
mod socks {
    use hyper_util::client::legacy::connect::proxy::SocksV5;

    use super::{BoxError, Context, HttpConnector, Intercept, Pin, Poll, Service, Tcp};

    type Connecting<S> = Pin<Box<dyn std::future::Future<Output = Result<S, BoxError>> + Send>>;

    /// A SOCKS5 tunnel to `destination`; for `socks5://` its host name is
    /// resolved here first, for `socks5h://` by the proxy.
    pub(super) fn connect<S: From<Tcp> + Send + 'static>(
        mut direct: HttpConnector,
        proxy: &Intercept,
        destination: http::Uri,
    ) -> Connecting<S> {
        let resolve_here = proxy.uri().scheme_str() == Some("socks5");
        let proxy_uri = proxy.uri().clone();
        let auth = proxy
            .raw_auth()
            .map(|(user, password)| (user.to_owned(), password.to_owned()));
        Box::pin(async move {
            let destination = if resolve_here {
                resolved(destination).await?
            } else {
                destination
            };
            // TCP to the proxy here, so its failure keeps its cause.
            let tcp = direct
                .call(proxy_uri.clone())
                .await
                .map_err(|e| super::refusal::unreachable(e.into()))?;
            let mut socks = SocksV5::new(proxy_uri, Connected(Some(tcp)));
            if let Some((user, password)) = auth {
                socks = socks.with_auth(user, password);
            }
            Ok(S::from(socks.call(destination).await?))
        })
    }

    /// A connection already made, handed to the SOCKS handshake once.
    struct Connected(Option<Tcp>);

    impl Service<http::Uri> for Connected {
        type Response = Tcp;
        type Error = std::io::Error;
        type Future = std::future::Ready<Result<Tcp, std::io::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Uri) -> Self::Future {
            std::future::ready(
                self.0
                    .take()
                    .ok_or_else(|| std::io::Error::other("the connection to the proxy was used")),
            )
        }
    }

    /// `destination` with its host replaced by its first address.
    async fn resolved(destination: http::Uri) -> Result<http::Uri, BoxError> {
        let host = destination.host().unwrap_or_default();
        let port = destination.port_u16().unwrap_or(443);
        if host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok()
        {
            return Ok(destination);
        }
        let address = tokio::net::lookup_host((host, port))
            .await?
            .next()
            .ok_or("the destination's host name has no address")?;
        Ok(http::Uri::builder()
            .scheme("https")
            .authority(address.to_string())
            .path_and_query("/")
            .build()?)
    }
}

/// Without the `socks` feature no SOCKS proxy gets past the settings check.
#[cfg(not(feature = "socks"))]
mod socks {
    use super::{BoxError, HttpConnector, Intercept, Pin, Tcp};

    pub(super) fn connect<S: From<Tcp> + Send + 'static>(
        _: HttpConnector,
        _: &Intercept,
        _: http::Uri,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<S, BoxError>> + Send>> {
        Box::pin(async { Err("SOCKS needs payauth-core's `socks` feature".into()) })
    }
}

/// Connection setup (DNS, TCP, the proxy's handshake, TLS) bounded as
/// one: past `timeout`, [`ConnectTimedOut`].
#[derive(Clone)]
pub(super) struct Bounded<C> {
    inner: C,
    timeout: Duration,
}

impl<C> Bounded<C> {
    pub(super) fn new(inner: C, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

impl<C> Service<http::Uri> for Bounded<C>
where
    C: Service<http::Uri>,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, destination: http::Uri) -> Self::Future {
        let connecting = self.inner.call(destination);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(connected) => connected.map_err(Into::into),
                Err(_) => Err(Box::new(ConnectTimedOut(timeout)) as BoxError),
            }
        })
    }
}

/// No connection (TCP, proxy handshake and TLS) within the connect
/// timeout.
#[derive(Debug)]
pub(super) struct ConnectTimedOut(pub(super) Duration);

impl fmt::Display for ConnectTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no connection set up (TCP, proxy, TLS) within {:?}",
            self.0
        )
    }
}

impl std::error::Error for ConnectTimedOut {}

#[cfg(test)]
mod tests {
    use super::{Capabilities, ErrorKind, Proxies, normalize};

    const TLS: Capabilities = Capabilities { tls: true };

    #[test]
    fn proxy_urls_get_curls_default_ports_and_keep_their_credentials() {
        let cases = [
            ("proxy.example", "http://proxy.example:1080"),
            ("http://u:p@proxy.example", "http://u:p@proxy.example:1080"),
            ("HTTP://proxy.example:3128/", "http://proxy.example:3128"),
            ("https://proxy.example", "https://proxy.example:443"),
            ("https://[::1]:8443", "https://[::1]:8443"),
            (
                "http://u:p%40ss@proxy.example:1",
                "http://u:p%40ss@proxy.example:1",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(normalize("X", url, TLS).unwrap(), expected, "{url}");
        }
    }

    #[test]
    fn a_proxy_setting_that_cannot_be_honoured_is_a_config_error_naming_its_origin_not_its_value() {
        let mut refused = vec![
            "http://u:SECRET@proxy.example:99999",
            "http://u:SECRET@proxy example",
            "ftp://u:SECRET@proxy.example",
            "socks4://u:SECRET@proxy.example",
            "socks4a://u:SECRET@proxy.example",
            "http://",
            "http:///SECRET",
            "://SECRET",
        ];
        if !cfg!(feature = "socks") {
            refused.extend(["socks5://u:SECRET@proxy.example", "socks5h://SECRET@p:1"]);
        }
        for url in refused {
            let error = normalize("HTTPS_PROXY", url, TLS).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Config, "{url}");
            let shown = error.to_string();
            assert!(shown.contains("HTTPS_PROXY"), "{url}: {shown}");
            assert!(!shown.contains("SECRET"), "{url}: {shown}");
        }
        let no_tls = normalize(
            "ALL_PROXY",
            "https://u:SECRET@p",
            Capabilities { tls: false },
        )
        .unwrap_err()
        .to_string();
        assert!(
            no_tls.contains("ALL_PROXY") && no_tls.contains("TLS"),
            "{no_tls}"
        );
        assert!(!no_tls.contains("SECRET"), "{no_tls}");
    }

    /// The matcher's answer for `https://provider.example` with `env`.
    fn proxy_for(env: &[(&str, &str)]) -> Result<Option<String>, String> {
        let read = |name: &str| {
            env.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| std::ffi::OsString::from(*v))
        };
        let matcher = Proxies::FromEnv
            .matcher_in(&read, TLS)
            .map_err(|e| e.to_string())?;
        let destination = http::Uri::from_static("https://provider.example/token");
        Ok(matcher
            .and_then(|m| m.intercept(&destination))
            .map(|proxy| proxy.uri().to_string()))
    }

    #[test]
    fn every_proxy_variable_with_a_value_payauth_cannot_honour_fails_the_build_naming_it() {
        for name in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
            for bad in [
                "ftp://u:SECRET@p.example",
                "http://u:SECRET@p.example:99999",
                "::",
            ] {
                let error = proxy_for(&[(name, bad)]).unwrap_err();
                assert!(
                    error.starts_with("configuration error"),
                    "{name}={bad}: {error}"
                );
                assert!(error.contains(name), "{name}={bad}: {error}");
                assert!(!error.contains("SECRET"), "{name}={bad}: {error}");
            }
        }
    }

    #[test]
    fn the_environment_is_read_as_curl_reads_it() {
        let https = ("HTTPS_PROXY", "http://h.example:1");
        let all = ("ALL_PROXY", "http://a.example:2");
        assert_eq!(proxy_for(&[]), Ok(None));
        assert_eq!(
            proxy_for(&[https, all]).unwrap().unwrap(),
            "http://h.example:1/"
        );
        assert_eq!(proxy_for(&[all]).unwrap().unwrap(), "http://a.example:2/");
        // An empty HTTPS_PROXY is unset: ALL_PROXY applies.
        let empty = ("HTTPS_PROXY", " ");
        assert_eq!(
            proxy_for(&[empty, all]).unwrap().unwrap(),
            "http://a.example:2/"
        );
        // The upper-case name wins.
        let lower = ("https_proxy", "http://l.example:3");
        assert_eq!(
            proxy_for(&[lower, https]).unwrap().unwrap(),
            "http://h.example:1/"
        );
        assert_eq!(proxy_for(&[lower]).unwrap().unwrap(), "http://l.example:3/");
        // NO_PROXY sends matching hosts direct.
        for no in [
            "provider.example",
            ".example",
            "*",
            "other.example,provider.example",
        ] {
            assert_eq!(proxy_for(&[https, ("NO_PROXY", no)]), Ok(None), "{no}");
            assert_eq!(proxy_for(&[https, ("no_proxy", no)]), Ok(None), "{no}");
        }
        assert!(
            proxy_for(&[https, ("NO_PROXY", "other.example")])
                .unwrap()
                .is_some()
        );
        // HTTP_PROXY is never read, nor anything in a CGI process.
        assert_eq!(proxy_for(&[("HTTP_PROXY", "http://x.example:1")]), Ok(None));
        assert_eq!(proxy_for(&[https, ("REQUEST_METHOD", "GET")]), Ok(None));
    }

    #[test]
    fn the_proxy_given_to_the_builder_is_checked_as_the_environment_is() {
        let error = Proxies::Https("gopher://u:SECRET@p".into())
            .matcher(TLS)
            .unwrap_err()
            .to_string();
        assert!(error.contains("HttpClientBuilder::proxy"), "{error}");
        assert!(!error.contains("SECRET"), "{error}");
        let shown = format!("{:?}", Proxies::Https("http://u:SECRET@p".into()));
        assert!(!shown.contains("SECRET"), "{shown}");
    }

    #[test]
    fn socks_proxies_need_the_socks_feature_and_say_so() {
        let result = normalize("ALL_PROXY", "socks5h://proxy.example", TLS);
        if cfg!(feature = "socks") {
            assert_eq!(result.unwrap(), "socks5h://proxy.example:1080");
        } else {
            let shown = result.unwrap_err().to_string();
            assert!(shown.contains("`socks` feature"), "{shown}");
        }
    }
}
