//! Tokens for tower and hyper services: [`BearerLayer`] wraps any
//! `Service<http::Request<B>>` so each request carries the cached token
//! the way its provider wants it (the cache's
//! [`TokenScheme`](payauth_core::TokenScheme): Bearer, myPOS's `API-Key`
//! and `X-Request-ID`), then any extras of yours; on a 401 it drops that
//! token and, if the cache renewed it, sends the request once more with
//! the new one (at most one renewal per backoff window: an API rejecting
//! every token gets its 401 back). The replay needs `B: Clone` (`String`,
//! `Bytes`, `http_body_util::Full<Bytes>` all are).
//!
//! A generic body cannot be read here, so a scheme that signs the body
//! (Pay with iyzico's IYZWSv2) fails every request with
//! [`ErrorKind::Config`](payauth_core::ErrorKind::Config) saying so: send
//! those through [`middleware`](crate::middleware) or
//! `payauth_core::scheme::authorize`.
//!
//! ```ignore
//! let service = tower::ServiceBuilder::new().layer(BearerLayer::new(cache)).service(client);
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response, StatusCode};
use payauth_core::{AccessToken, Error, TokenCache};

use crate::bearer::Bearer;

/// What a wrapped service can fail with: the token or the service's error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The layer; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct BearerLayer(Bearer);

impl BearerLayer {
    /// A layer over `cache`.
    #[must_use]
    pub fn new(cache: TokenCache) -> Self {
        Self(Bearer::new(cache))
    }

    /// Adds headers of yours beside the token on every request, after the
    /// provider's scheme.
    #[must_use]
    pub fn with_headers(
        self,
        extras: impl Fn(&AccessToken, &mut HeaderMap) -> Result<(), Error> + Send + Sync + 'static,
    ) -> Self {
        Self(self.0.with_headers(extras))
    }
}

impl<S> tower_layer::Layer<S> for BearerLayer {
    type Service = BearerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerService {
            inner,
            bearer: self.0.clone(),
        }
    }
}

/// The service [`BearerLayer`] makes.
#[derive(Clone)]
pub struct BearerService<S> {
    inner: S,
    bearer: Bearer,
}

impl<S> std::fmt::Debug for BearerService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerService")
            .field("bearer", &self.bearer)
            .finish_non_exhaustive()
    }
}

impl<S, B, R> tower_service::Service<Request<B>> for BearerService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    B: Clone + Send + 'static,
    R: Send + 'static,
{
    type Response = Response<R>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The ready service serves this call; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let bearer = self.bearer.clone();
        Box::pin(async move {
            let token = bearer.cache.token().await?;
            let mut first = request.clone();
            apply(&bearer, &token, &mut first)?;
            let response = inner.call(first).await.map_err(Into::into)?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            let Some(fresh) = bearer.after_401(&token, true).await? else {
                return Ok(response);
            };
            let mut replay = request;
            apply(&bearer, &fresh, &mut replay)?;
            std::future::poll_fn(|cx| inner.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            inner.call(replay).await.map_err(Into::into)
        })
    }
}

fn apply<B>(bearer: &Bearer, token: &AccessToken, request: &mut Request<B>) -> Result<(), Error> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    bearer.apply_unread(token, &method, &path, request.headers_mut())
}
