//! The connector under [`HttpClient`](super::HttpClient)'s TLS: `https://`
//! token requests go through the HTTP proxy the settings or the
//! environment name (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, read as curl
//! reads them, as reqwest did), tunnelled with `CONNECT`, so TLS still runs
//! end to end with the provider. Plain `http://` (the sandbox, loopback
//! tests) always goes direct: credentials in clear text are not handed to
//! a proxy.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Stream = <HttpConnector as Service<http::Uri>>::Response;

/// Where proxies come from. `Debug` shows a proxy URL as
/// [`redact::url`](crate::redact::url) does: never its password.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum Proxies {
    /// `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY` (the default).
    FromEnv,
    /// This proxy for every `https://` request.
    Https(String),
    /// None.
    Off,
}

impl std::fmt::Debug for Proxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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

impl Proxies {
    fn matcher(&self) -> Option<Matcher> {
        match self {
            Self::FromEnv => Some(Matcher::from_env()),
            Self::Https(url) => Some(Matcher::builder().https(url.clone()).build()),
            Self::Off => None,
        }
    }
}

/// TCP to the destination, or a `CONNECT` tunnel to it through the proxy
/// that matches it.
#[derive(Clone)]
pub(super) struct Connector {
    direct: HttpConnector,
    proxies: Option<Arc<Matcher>>,
}

impl Connector {
    pub(super) fn new(direct: HttpConnector, proxies: &Proxies) -> Self {
        Self {
            direct,
            proxies: proxies.matcher().map(Arc::new),
        }
    }
}

impl Service<http::Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.direct.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, destination: http::Uri) -> Self::Future {
        let proxy = self
            .proxies
            .as_deref()
            .filter(|_| destination.scheme_str() == Some("https"))
            .and_then(|matcher| matcher.intercept(&destination));
        let mut direct = self.direct.clone();
        let Some(proxy) = proxy else {
            return Box::pin(async move { direct.call(destination).await.map_err(Into::into) });
        };
        let mut tunnel = Tunnel::new(proxy.uri().clone(), direct);
        if let Some(auth) = proxy.basic_auth() {
            tunnel = tunnel.with_auth(auth.clone());
        }
        Box::pin(async move {
            std::future::poll_fn(|cx| tunnel.poll_ready(cx)).await?;
            Ok(tunnel.call(destination).await?)
        })
    }
}
