//! Every use of the `TokenCache` API the simulation makes, in one place, so
//! that a change of that API is adapted here and nowhere else.
//!
//! Cache seeding is not used: a restarted replica reaches the store through the cache's own
//! store path, which is what the simulation tests.

use std::sync::Arc;
use std::time::Duration;

use payauth_core::{AccessToken, Clock, Error, SharedStore, TokenCache, TokenStore};

/// The cache-level fetch timeout the simulation configures; the bound
/// after faults stop counts it.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The most the cache's failure backoff waits for a `Retry-After`; the
/// bound after faults stop counts it.
pub(crate) const RETRY_AFTER_CAP: Duration = payauth_core::MAX_RETRY_AFTER_BACKOFF;

/// How one replica's cache is configured.
#[derive(Debug, Clone)]
pub(crate) struct CacheConfig {
    /// `None`: the default margin.
    pub(crate) margin: Option<Duration>,
    pub(crate) failure_backoff: Duration,
    pub(crate) retries: u32,
    pub(crate) retry_wait: Duration,
    pub(crate) jitter: f64,
}

/// The store a cache keeps its tokens in.
pub(crate) enum Store {
    /// A fleet's shared store (`shared_store`).
    Shared(Arc<dyn SharedStore>),
    /// One process's store (`store`).
    Plain(Arc<dyn TokenStore>),
}

/// The store key every replica uses.
const KEY: &str = "sim";

/// A cache over `source`.
pub(crate) fn build<S: payauth_core::TokenSource>(
    source: Arc<S>,
    clock: Arc<dyn Clock>,
    store: Store,
    config: &CacheConfig,
) -> TokenCache {
    let builder = TokenCache::builder(source)
        .fetch_timeout(FETCH_TIMEOUT)
        .clock(clock)
        .failure_backoff(config.failure_backoff)
        .retries(config.retries, config.retry_wait)
        .jitter(config.jitter);
    let builder = match config.margin {
        Some(margin) => builder.refresh_margin(margin),
        None => builder,
    };
    let builder = match store {
        Store::Shared(store) => builder.shared_store(store, KEY),
        Store::Plain(store) => builder.store(store, KEY),
    };
    builder.build()
}

/// A token, as a caller asks for one.
pub(crate) async fn token(cache: &TokenCache) -> Result<Arc<AccessToken>, Error> {
    cache.token().await
}

/// Drops `rejected` after the API answered 401 to it.
pub(crate) fn invalidate(cache: &TokenCache, rejected: &AccessToken) -> bool {
    cache.invalidate(rejected)
}

/// Saves what the cache could not save yet, as a process does before it
/// exits.
pub(crate) async fn flush(cache: &TokenCache) -> Result<(), Error> {
    cache.flush().await
}

/// The cached token, fresh or not.
pub(crate) fn peek(cache: &TokenCache) -> Option<Arc<AccessToken>> {
    cache.peek()
}
