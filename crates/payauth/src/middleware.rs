//! Tokens on your own API calls: [`BearerAuth`] is a `reqwest-middleware`
//! middleware over a [`TokenCache`].
//!
//! Each request gets the cached token the way its provider wants it: the
//! cache's [`TokenScheme`](payauth_core::TokenScheme) (`Authorization:
//! Bearer`; for myPOS also `API-Key` and a fresh `X-Request-ID`; for Pay
//! with iyzico an `access-token` header beside an IYZWSv2 signature of the
//! request's path and buffered body), then any extras of yours. When the
//! API answers 401, the middleware drops that token from the cache
//! (whatever the body), and if the request body can be replayed and the
//! cache renewed the token, retries once with the new one; otherwise, or
//! on a second 401, the 401 goes back to the caller. The cache renews at
//! most once per backoff window, so an API rejecting every token costs one
//! fetch per window, not one per request.
//!
//! ```no_run
//! use payauth::middleware::BearerAuth;
//! # fn run(cache: payauth::core::TokenCache) {
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(BearerAuth::new(cache))
//!     .build();
//! # let _ = client; }
//! ```

use payauth_core::{AccessToken, Error, TokenCache};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use reqwest_middleware::{Middleware, Next};

use crate::bearer::Bearer;

/// Attaches the cached token to every request; renews and retries once on
/// a 401. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct BearerAuth(Bearer);

impl BearerAuth {
    /// A middleware over `cache`.
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

    fn apply(
        &self,
        token: &AccessToken,
        request: &mut reqwest::Request,
    ) -> reqwest_middleware::Result<()> {
        self.0
            .apply_reqwest(token, request)
            .map_err(reqwest_middleware::Error::middleware)
    }
}

#[async_trait::async_trait]
impl Middleware for BearerAuth {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let token = self
            .0
            .cache
            .token()
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        let replay = request.try_clone();
        self.apply(&token, &mut request)?;
        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let fresh = self
            .0
            .after_401(&token, replay.is_some())
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        // A streaming body cannot be sent twice; an unrenewed token is not
        // worth a second try: the caller sees the 401.
        let (Some(mut replay), Some(fresh)) = (replay, fresh) else {
            return Ok(response);
        };
        self.apply(&fresh, &mut replay)?;
        next.run(replay, extensions).await
    }
}
