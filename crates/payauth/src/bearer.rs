//! What both Bearer adapters put on a request (the cached token's
//! `Authorization` header and the provider's extra headers) and what they
//! do after a 401. The adapters ([`middleware`](crate::middleware),
//! [`tower`](crate::tower)) add only how a request is sent and replayed.

use std::sync::Arc;

use http::HeaderMap;
use http::header::AUTHORIZATION;
use payauth_core::{AccessToken, Error, TokenCache};

/// Extra headers a provider wants beside the token.
type Extras = Arc<dyn Fn(&AccessToken, &mut HeaderMap) -> Result<(), Error> + Send + Sync>;

/// A cache and the extras to add with its token.
#[derive(Clone)]
pub(crate) struct Bearer {
    pub(crate) cache: TokenCache,
    extras: Option<Extras>,
}

impl Bearer {
    pub(crate) fn new(cache: TokenCache) -> Self {
        Self {
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

    /// Puts `token` and the extras on `headers`.
    pub(crate) fn apply(&self, token: &AccessToken, headers: &mut HeaderMap) -> Result<(), Error> {
        headers.insert(AUTHORIZATION, token.authorization().clone());
        if let Some(extras) = &self.extras {
            extras(token, headers)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bearer")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}
