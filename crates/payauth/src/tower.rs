//! Bearer tokens for tower and hyper services: [`BearerLayer`] wraps any
//! `Service<http::Request<B>>` so each request carries the cached token
//! (and provider extras); on a 401 it drops that token, fetches a fresh one
//! and sends the request once more. The replay needs `B: Clone` (`String`,
//! `Bytes`, `http_body_util::Full<Bytes>` all are).
//!
//! ```ignore
//! let service = tower::ServiceBuilder::new().layer(BearerLayer::new(cache)).service(client);
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{HeaderMap, Request, Response, StatusCode};
use payauth_core::{AccessToken, Error, TokenCache};

/// What a wrapped service can fail with: the token or the service's error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type Extras = Arc<dyn Fn(&AccessToken, &mut HeaderMap) -> Result<(), Error> + Send + Sync>;

/// The layer; see the [module docs](self).
#[derive(Clone)]
pub struct BearerLayer {
    cache: TokenCache,
    extras: Option<Extras>,
}

impl std::fmt::Debug for BearerLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerLayer")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl BearerLayer {
    /// A layer over `cache`.
    #[must_use]
    pub fn new(cache: TokenCache) -> Self {
        Self {
            cache,
            extras: None,
        }
    }

    /// Adds headers beside the token on every request (e.g. myPOS's
    /// `API-Key` and `X-Request-ID`).
    #[must_use]
    pub fn with_headers(
        mut self,
        extras: impl Fn(&AccessToken, &mut HeaderMap) -> Result<(), Error> + Send + Sync + 'static,
    ) -> Self {
        self.extras = Some(Arc::new(extras));
        self
    }
}

impl<S> tower_layer::Layer<S> for BearerLayer {
    type Service = BearerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerService {
            inner,
            cache: self.cache.clone(),
            extras: self.extras.clone(),
        }
    }
}

/// The service [`BearerLayer`] makes.
#[derive(Clone)]
pub struct BearerService<S> {
    inner: S,
    cache: TokenCache,
    extras: Option<Extras>,
}

impl<S> std::fmt::Debug for BearerService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerService")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

fn apply(
    extras: Option<&Extras>,
    token: &AccessToken,
    headers: &mut HeaderMap,
) -> Result<(), BoxError> {
    headers.insert(AUTHORIZATION, token.authorization().clone());
    if let Some(extras) = extras {
        extras(token, headers)?;
    }
    Ok(())
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
        let cache = self.cache.clone();
        let extras = self.extras.clone();
        Box::pin(async move {
            let token = cache.token().await?;
            let mut first = request.clone();
            apply(extras.as_ref(), &token, first.headers_mut())?;
            let response = inner.call(first).await.map_err(Into::into)?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            cache.invalidate(&token);
            let fresh = cache.token().await?;
            let mut replay = request;
            apply(extras.as_ref(), &fresh, replay.headers_mut())?;
            std::future::poll_fn(|cx| inner.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            inner.call(replay).await.map_err(Into::into)
        })
    }
}
