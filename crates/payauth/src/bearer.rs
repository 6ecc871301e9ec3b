//! What both Bearer adapters put on a request: the cached token's
//! `Authorization` header and the provider's extra headers. The adapters
//! ([`middleware`](crate::middleware), [`tower`](crate::tower)) add only
//! how a request is sent and replayed after a 401.

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
