//! [`TokenCacheBuilder`]: a cache's settings, each checked once, when the
//! cache is built, so that no later use of them can panic or misbehave.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::fleet::Fleet;
use super::persist::Persistence;
use super::telemetry::Telemetry;
use super::{Common, Inner, TokenCache};
use crate::clock::Clock;
use crate::source::TokenSource;
use crate::store::{SharedStore, TokenStore};
use crate::token::AccessToken;

/// The default refresh-ahead margin.
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(60);
/// The default first backoff after a failed fetch.
pub const DEFAULT_FAILURE_BACKOFF: Duration = Duration::from_secs(1);
/// The shortest first backoff a cache accepts: a smaller one (zero) would
/// let a storm of callers hammer a failing endpoint.
pub const MIN_FAILURE_BACKOFF: Duration = Duration::from_millis(10);
/// The longest backoff after repeated failures (and the longest first
/// backoff a cache accepts).
pub const MAX_FAILURE_BACKOFF: Duration = Duration::from_secs(30);
/// The longest a provider's `Retry-After` holds the failure backoff: a
/// 429 asking for 2 minutes is honoured, one asking for a day is not.
pub const MAX_RETRY_AFTER_BACKOFF: Duration = Duration::from_secs(300);
/// The longest wait between retries inside one fetch. A `Retry-After`
/// longer than this ends the fetch instead, and the failure backoff
/// honours it.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);
/// The most retries one fetch makes.
pub const MAX_RETRIES: u32 = 10;
/// The default bound on one fetch (a flight: reading the store, waiting
/// for the fleet, the fetch with its retries, the save): above the
/// 30 s request timeout of [`http::default_client`](crate::http::default_client),
/// so a slow request ends with its own error before the cache abandons it.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// The shortest fetch timeout a cache accepts.
pub const MIN_FETCH_TIMEOUT: Duration = Duration::from_millis(100);
/// The longest fetch timeout a cache accepts.
pub const MAX_FETCH_TIMEOUT: Duration = Duration::from_secs(600);

/// A cache's settings after [`TokenCacheBuilder::build`]'s checks: every
/// value finite and in range.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub(super) margin: Duration,
    /// This instance's fraction in `[0, 1]`.
    pub(super) jitter: f64,
    pub(super) failure_backoff: Duration,
    pub(super) retries: u32,
    pub(super) retry_wait: Duration,
    pub(super) fetch_timeout: Duration,
}

/// Builds a [`TokenCache`]; see [`TokenCache::builder`]. Every setting is
/// checked by [`build`](Self::build), which never fails: a value out of
/// range is clamped to the range each setter documents (NaN counts as 0).
///
/// **Many caches from one builder.** The caches built from one builder and
/// its clones share one copy of its source, clock, settings (the jitter
/// too: drawn once) and metric labels, built by the first `build`; each
/// cache holds only its own state. To keep one cache per customer, clone
/// a builder set up once, give each clone its [`store_key`](Self::store_key)
/// (and [`seed`](Self::seed)), and build it: an idle cache then costs about
/// 200 bytes besides its token. A setter of a shared setting (margin,
/// clock, backoff, jitter, retries, fetch timeout) gives the clone its own
/// copy.
///
/// ```
/// use std::sync::Arc;
/// # use std::time::Duration;
/// # use payauth_core::{AccessToken, BoxFuture, Error, Issued, Secret, SystemClock, TokenCache, TokenSource};
/// use payauth_core::{MemoryStore, TokenStore};
/// # struct Refresh;
/// # impl TokenSource for Refresh {
/// #     fn fetch<'a>(&'a self, _: Option<&'a AccessToken>) -> BoxFuture<'a, Result<AccessToken, Error>> {
/// #         Box::pin(async { AccessToken::new(Secret::new("t"), "Bearer", Issued::now(&SystemClock), Duration::from_secs(3600)) })
/// #     }
/// # }
///
/// let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
/// let customers = TokenCache::builder(Refresh).store(store, "bank:customer");
/// let alice = customers.clone().store_key("bank:customer:alice").build();
/// let bob = customers.clone().store_key("bank:customer:bob").build();
/// # drop((alice, bob));
/// ```
#[derive(Clone)]
pub struct TokenCacheBuilder {
    pub(super) source: Arc<dyn TokenSource>,
    clock: Option<Arc<dyn Clock>>,
    store: Option<(Arc<dyn TokenStore>, String)>,
    shared: Option<Arc<dyn SharedStore>>,
    margin: Duration,
    jitter: Option<f64>,
    failure_backoff: Duration,
    retries: u32,
    retry_wait: Duration,
    fetch_timeout: Duration,
    seed: Option<AccessToken>,
    /// What the caches built from this builder and its clones share, once
    /// the first of them is built; a setter of a shared setting starts a
    /// new one.
    common: Arc<OnceLock<Arc<Common>>>,
}

impl TokenCacheBuilder {
    pub(super) fn new(source: Arc<dyn TokenSource>) -> Self {
        Self {
            source,
            clock: None,
            store: None,
            shared: None,
            margin: DEFAULT_MARGIN,
            jitter: None,
            failure_backoff: DEFAULT_FAILURE_BACKOFF,
            retries: 0,
            retry_wait: Duration::from_millis(100),
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            seed: None,
            common: Arc::default(),
        }
    }

    /// A setting the caches share changes: the next `build` makes a new
    /// [`Common`], leaving the clones built before with theirs.
    fn unshare(mut self) -> Self {
        self.common = Arc::default();
        self
    }

    /// Refresh this long before expiry (default 60 s), capped at half the
    /// token's lifetime so short-lived tokens are not refreshed constantly.
    #[must_use]
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self.unshare()
    }

    /// Keep tokens in `store` under `key` (one key per credential and flow).
    #[must_use]
    pub fn store(mut self, store: Arc<dyn TokenStore>, key: impl Into<String>) -> Self {
        self.store = Some((store, key.into()));
        self.shared = None;
        self
    }

    /// Keep tokens in `store` under `key`, shared with the other replicas
    /// of a fleet: the store is read before every fetch, and a fetch runs
    /// only under the store's [`Lease`](crate::Lease), so the fleet makes
    /// one upstream fetch per expiry, every replica sees a rotated refresh
    /// token, and a failed fetch is shared for the failure backoff. If the
    /// lease cannot be taken because the store is down, this replica
    /// fetches on its own with a full grant rather than fail, but never
    /// refreshes without the lease (another replica may have rotated the
    /// refresh token meanwhile): then callers keep a still-valid token, or
    /// get the store's error.
    #[must_use]
    pub fn shared_store(mut self, store: Arc<dyn SharedStore>, key: impl Into<String>) -> Self {
        self.store = Some((Arc::clone(&store) as Arc<dyn TokenStore>, key.into()));
        self.shared = Some(store);
        self
    }

    /// Keep this cache's tokens under `key` in the store given to
    /// [`store`](Self::store) or [`shared_store`](Self::shared_store)
    /// (without one, there is nothing to key: ignored). With a clone of a
    /// builder set up once, the way to build one cache per subject that
    /// shares everything else; see the [type docs](Self).
    #[must_use]
    pub fn store_key(mut self, key: impl Into<String>) -> Self {
        if let Some((_, stored_key)) = &mut self.store {
            *stored_key = key.into();
        }
        self
    }

    /// Read time from `clock` (tests use [`ManualClock`](crate::ManualClock);
    /// a simulation may read tokio's paused time). Expiry and backoffs
    /// follow it; timeouts, retry waits and fleet polls sleep on tokio's
    /// timer.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self.unshare()
    }

    /// The first backoff after a failed fetch (default 1 s, kept within
    /// [`MIN_FAILURE_BACKOFF`]..=[`MAX_FAILURE_BACKOFF`]); it doubles with
    /// each failure in a row, up to [`MAX_FAILURE_BACKOFF`], and lasts at
    /// least as long as the provider's `Retry-After` (up to
    /// [`MAX_RETRY_AFTER_BACKOFF`]). The same window limits renewals after
    /// [`invalidate`](TokenCache::invalidate) and retries of a failed save.
    #[must_use]
    pub fn failure_backoff(mut self, backoff: Duration) -> Self {
        self.failure_backoff = backoff;
        self.unshare()
    }

    /// This instance's jitter, a fraction in `[0, 1]` (NaN: 0) of
    /// `min(10 % of lifetime, 30 s)` added to the margin and of a quarter
    /// of the backoff added to it (default: random per instance, so
    /// replicas do not refresh in lockstep).
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = Some(fraction);
        self.unshare()
    }

    /// Retry a transient failure (429, 5xx, transport, timeout) up to
    /// `retries` times (at most [`MAX_RETRIES`]) within one fetch, waiting
    /// `wait` doubling each time, or the provider's `Retry-After`, at most
    /// [`MAX_RETRY_WAIT`] (a longer `Retry-After` ends the fetch; the
    /// failure backoff honours it). Off by default: a failed fetch is then
    /// retried by the next caller after the failure backoff. Every payauth
    /// token source is safe to retry (a login starts over; a single-use
    /// code is never exchanged by a source).
    #[must_use]
    pub fn retries(mut self, retries: u32, wait: Duration) -> Self {
        self.retries = retries;
        self.retry_wait = wait;
        self.unshare()
    }

    /// Bounds one fetch (default 60 s, kept within
    /// [`MIN_FETCH_TIMEOUT`]..=[`MAX_FETCH_TIMEOUT`]): reading the store,
    /// waiting for another replica, the fetch with its retries and the
    /// save. A fetch still running then ends with a transient
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout), its fleet lease
    /// is released, and the next caller after the backoff fetches anew; a
    /// `TokenSource` that never returns cannot hold callers forever.
    /// (smithy-rs calls this the load timeout.)
    ///
    /// Keep it above your HTTP client's request timeout: a request the
    /// cache abandons may still have reached the provider, and a provider
    /// that rotates refresh tokens then holds a newer one this cache never
    /// received (the next refresh is refused with `invalid_grant`).
    #[must_use]
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self.unshare()
    }

    /// Starts the cache with `token` (and its refresh token), e.g. the
    /// answer of an authorization-code exchange, so no store is needed to
    /// hand it over. With a store, the first call saves it there unless the
    /// store holds a newer token.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use payauth_core::{AccessToken, BoxFuture, Error, ErrorKind, Issued, Secret, SystemClock, TokenCache, TokenSource};
    /// # struct Refresh;
    /// # impl TokenSource for Refresh {
    /// #     fn fetch<'a>(&'a self, _: Option<&'a AccessToken>) -> BoxFuture<'a, Result<AccessToken, Error>> {
    /// #         Box::pin(async { Err(Error::new(ErrorKind::InvalidGrant)) })
    /// #     }
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // What `exchange(&pending, &code)` answered:
    /// let exchanged = AccessToken::new(Secret::new("at-1"), "Bearer", Issued::now(&SystemClock), Duration::from_secs(3600))?
    ///     .with_refresh_token(Some(Secret::new("rt-1")));
    /// let cache = TokenCache::builder(Refresh).seed(exchanged).build();
    /// assert_eq!(cache.token().await?.secret().expose_secret(), "at-1");
    /// # Ok::<(), Error>(())
    /// # }).unwrap();
    /// ```
    #[must_use]
    pub fn seed(mut self, token: AccessToken) -> Self {
        self.seed = Some(token);
        self
    }

    /// The cache, with every setting checked and clamped as documented.
    #[must_use]
    pub fn build(self) -> TokenCache {
        let common = Arc::clone(self.common.get_or_init(|| self.common()));
        let persistence = self.store.map(|(store, key)| {
            Box::new(Persistence::new(store, key, self.shared.map(Fleet::new)))
        });
        let inner = Inner::new(common, persistence);
        if let Some(seed) = self.seed {
            inner.seed(&Arc::new(seed));
        }
        TokenCache::from_inner(inner)
    }

    /// What the caches of this builder share, checked and clamped.
    fn common(&self) -> Arc<Common> {
        let settings = Settings {
            margin: self.margin.min(crate::token::MAX_LIFETIME),
            jitter: fraction(self.jitter.unwrap_or_else(random_fraction)),
            failure_backoff: self
                .failure_backoff
                .clamp(MIN_FAILURE_BACKOFF, MAX_FAILURE_BACKOFF),
            retries: self.retries.min(MAX_RETRIES),
            retry_wait: self.retry_wait.min(MAX_RETRY_WAIT),
            fetch_timeout: self
                .fetch_timeout
                .clamp(MIN_FETCH_TIMEOUT, MAX_FETCH_TIMEOUT),
        };
        Arc::new(Common {
            telemetry: Telemetry::new(&*self.source),
            source: Arc::clone(&self.source),
            clock: self.clock.clone(),
            settings,
        })
    }
}

/// `value` as a fraction in `[0, 1]`; NaN is 0.
fn fraction(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

fn random_fraction() -> f64 {
    let mut bytes = [0u8; 4];
    // Jitter needs no cryptographic quality; without randomness, none.
    if getrandom::fill(&mut bytes).is_err() {
        return 0.0;
    }
    f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::{fraction, random_fraction};

    #[test]
    fn the_default_jitter_is_a_random_fraction_per_instance() {
        let draws: Vec<f64> = (0..16).map(|_| random_fraction()).collect();
        assert!(draws.iter().all(|d| (0.0..=1.0).contains(d)), "{draws:?}");
        assert!(
            draws.iter().any(|d| (d - draws[0]).abs() > f64::EPSILON),
            "not one value for every instance: {draws:?}"
        );
        assert!(draws.iter().any(|d| *d > 0.01 && *d < 0.99), "{draws:?}");
    }

    #[test]
    fn a_fraction_is_finite_and_within_zero_and_one() {
        for (input, expected) in [
            (f64::NAN, 0.0),
            (f64::INFINITY, 1.0),
            (f64::NEG_INFINITY, 0.0),
            (-0.5, 0.0),
            (0.25, 0.25),
            (7.0, 1.0),
        ] {
            assert!((fraction(input) - expected).abs() < f64::EPSILON, "{input}");
        }
    }
}
