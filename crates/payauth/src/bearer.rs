//! What both token adapters put on a request: the cached token, the way
//! its provider wants it (the cache's [`TokenScheme`]: Bearer, myPOS's
//! `API-Key` and `X-Request-ID`, Pay with iyzico's `access-token` and
//! IYZWSv2 signature), then any extra headers of yours; and what they do
//! after a 401. The adapters ([`middleware`](crate::middleware),
//! [`tower`](crate::tower)) add only how a request is sent and replayed.

use std::sync::Arc;

use http::{HeaderMap, Method};
use payauth_core::scheme::{ApiRequest, RequestBody};
use payauth_core::{AccessToken, Error, TokenCache, TokenScheme};

/// Extra headers a caller wants beside the token.
type Extras = Arc<dyn Fn(&AccessToken, &mut HeaderMap) -> Result<(), Error> + Send + Sync>;

/// A cache, its scheme and the extras to add with its token.
#[derive(Clone)]
pub(crate) struct Bearer {
    pub(crate) cache: TokenCache,
    scheme: Arc<dyn TokenScheme>,
    extras: Option<Extras>,
}

impl Bearer {
    pub(crate) fn new(cache: TokenCache) -> Self {
        Self {
            scheme: cache.scheme(),
            cache,
            extras: None,
        }
    }

    pub(crate) fn with_headers(
        mut self,
        extras: impl Fn(&AccessToken, &mut HeaderMap) -> Result<(), Error> + Send + Sync + 'static,
    ) -> Self {
        self.extras = Some(Arc::new(extras));
        self
    }

    /// After the API answered 401 to `rejected`: drops it from the cache
    /// first, whatever the body, then the token to replay with, if the
    /// request can be replayed and the cache renewed the token (it renews
    /// at most once per backoff window, so an API that rejects every token
    /// gets its 401 back, not a fetch per request).
    pub(crate) async fn after_401(
        &self,
        rejected: &AccessToken,
        replayable: bool,
    ) -> Result<Option<Arc<AccessToken>>, Error> {
        self.cache.invalidate(rejected);
        if !replayable {
            return Ok(None);
        }
        let fresh = self.cache.token().await?;
        Ok((fresh.secret() != rejected.secret()).then_some(fresh))
    }

    fn extras(&self, token: &AccessToken, headers: &mut HeaderMap) -> Result<(), Error> {
        match &self.extras {
            Some(extras) => extras(token, headers),
            None => Ok(()),
        }
    }

    /// Puts `token` and the extras on a reqwest request, whose buffered
    /// body the scheme may read.
    #[cfg(feature = "reqwest-middleware")]
    pub(crate) fn apply_reqwest(
        &self,
        token: &AccessToken,
        request: &mut reqwest::Request,
    ) -> Result<(), Error> {
        payauth_core::scheme::apply(self.scheme.as_ref(), token, request)?;
        self.extras(token, request.headers_mut())
    }

    /// Puts `token` and the extras on a request whose body cannot be read
    /// (a tower service's generic body).
    #[cfg(feature = "tower")]
    pub(crate) fn apply_unread(
        &self,
        token: &AccessToken,
        method: &Method,
        path: &str,
        headers: &mut HeaderMap,
    ) -> Result<(), Error> {
        let request = ApiRequest {
            method,
            path,
            body: RequestBody::Unreadable,
            headers,
        };
        self.scheme.apply(token, request)?;
        self.extras(token, headers)
    }
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bearer")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}
