//! [`TokenCache`]: what an application holds to always have a valid token.
//!
//! - The fast path is one lock-free `ArcSwap` load and a clock read: no
//!   lock, no allocation.
//! - A token is refreshed ahead of expiry (default 60 s, at most half its
//!   lifetime, plus a fixed per-instance jitter); while it is still valid,
//!   callers keep getting it and never wait for the refresh.
//! - One fetch is in flight at a time, however many callers wait; it runs
//!   in its own task, so a caller that gives up does not cancel it, and
//!   every waiter gets its outcome, success or failure.
//! - A failure is remembered for a backoff (1 s, doubling to 30 s, with
//!   jitter) so a storm of callers does not hammer a failing endpoint.
//! - A transient failure never displaces a still-valid token; once the
//!   token is past its expiry, callers get the error, never a stale token.
//! - A permanent failure (`invalid_client`, `invalid_grant`, …) drops the
//!   token at once and reaches the next caller.
//! - With a [`TokenStore`], a new token (and its rotated refresh token) is
//!   saved before it is published. A failed save is the fetch's error, and
//!   the token is kept in memory and saved again on a later call (after
//!   the failure backoff) until it is stored.
//! - With a [`SharedStore`] (a fleet of replicas), the store is read before
//!   every fetch and one replica at a time fetches, under a lease; the
//!   others wait for its token in the store.
//! - No task outlives its fetch: refresh is driven by requests.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio::sync::watch;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, ErrorKind};
use crate::source::TokenSource;
use crate::store::{Lease, SharedStore, StoredToken, TokenStore};
use crate::token::AccessToken;

/// The default refresh-ahead margin.
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(60);
/// The default first backoff after a failed fetch.
pub const DEFAULT_FAILURE_BACKOFF: Duration = Duration::from_secs(1);
/// The longest backoff after repeated failures.
pub const MAX_FAILURE_BACKOFF: Duration = Duration::from_secs(30);
/// The longest wait between retries inside one fetch, whatever
/// `Retry-After` asks.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

type Outcome = Result<Arc<AccessToken>, Error>;

/// A cached, self-renewing token from one [`TokenSource`]. Cheap to clone
/// (clones share the cache), `Send + Sync`.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use payauth_core::{AccessToken, BoxFuture, Error, Issued, Secret, SystemClock, TokenCache, TokenSource};
///
/// struct Fixed;
/// impl TokenSource for Fixed {
///     fn fetch<'a>(&'a self, _: Option<&'a AccessToken>) -> BoxFuture<'a, Result<AccessToken, Error>> {
///         Box::pin(async {
///             AccessToken::new(Secret::new("t"), "Bearer", Issued::now(&SystemClock), Duration::from_secs(3600))
///         })
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let cache = TokenCache::builder(Fixed).refresh_margin(Duration::from_secs(120)).build();
/// let token = cache.token().await?;
/// assert_eq!(token.authorization().to_str().unwrap(), "Bearer t");
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<Inner>,
}

struct Inner {
    source: Arc<dyn TokenSource>,
    clock: Arc<dyn Clock>,
    store: Option<(Arc<dyn TokenStore>, String)>,
    shared: Option<Arc<dyn SharedStore>>,
    current: ArcSwapOption<AccessToken>,
    /// The published token is not in the store yet (a failed save).
    unsaved: AtomicBool,
    state: Mutex<State>,
    margin: Duration,
    jitter: f64,
    failure_backoff: Duration,
    retries: u32,
    retry_wait: Duration,
}

#[derive(Default)]
struct State {
    /// The fetch in flight, if any; every waiter watches it.
    flight: Option<watch::Receiver<Option<Outcome>>>,
    /// The last token held (even expired or rejected): its refresh token
    /// feeds the next fetch.
    last: Option<Arc<AccessToken>>,
    /// When the last fetch failed, with what, and how many in a row.
    failure: Option<(Instant, Error)>,
    failures: u32,
    /// Whether the store has been read on first use.
    store_read: bool,
    /// The token last dropped by [`TokenCache::invalidate`]: never taken
    /// back from a shared store.
    rejected: Option<Arc<AccessToken>>,
    /// When a save last failed, and whether a retry is running.
    save_failed_at: Option<Instant>,
    saving: bool,
}

/// Builds a [`TokenCache`]; see [`TokenCache::builder`].
pub struct TokenCacheBuilder {
    source: Arc<dyn TokenSource>,
    clock: Arc<dyn Clock>,
    store: Option<(Arc<dyn TokenStore>, String)>,
    shared: Option<Arc<dyn SharedStore>>,
    margin: Duration,
    jitter: Option<f64>,
    failure_backoff: Duration,
    retries: u32,
    retry_wait: Duration,
}

impl TokenCacheBuilder {
    /// Refresh this long before expiry (default 60 s), capped at half the
    /// token's lifetime so short-lived tokens are not refreshed constantly.
    #[must_use]
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
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
    /// only under the store's [`Lease`], so the fleet makes one upstream
    /// fetch per expiry and every replica sees a rotated refresh token.
    /// If the lease cannot be taken because the store is down, this
    /// replica fetches on its own rather than fail.
    #[must_use]
    pub fn shared_store(mut self, store: Arc<dyn SharedStore>, key: impl Into<String>) -> Self {
        self.store = Some((Arc::clone(&store) as Arc<dyn TokenStore>, key.into()));
        self.shared = Some(store);
        self
    }

    /// Read time from `clock` (tests use [`ManualClock`](crate::ManualClock)).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The first backoff after a failed fetch (default 1 s); it doubles
    /// with each failure in a row, up to 30 s.
    #[must_use]
    pub fn failure_backoff(mut self, backoff: Duration) -> Self {
        self.failure_backoff = backoff;
        self
    }

    /// This instance's jitter, a fraction in `[0, 1]` of
    /// `min(10 % of lifetime, 30 s)` added to the margin and of the
    /// backoff added to it (default: random per instance, so replicas do
    /// not refresh in lockstep).
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = Some(fraction.clamp(0.0, 1.0));
        self
    }

    /// Retry a transient failure (429, 5xx, transport, timeout) up to
    /// `retries` times within one fetch, waiting `wait` doubling each time,
    /// or the provider's `Retry-After`, at most [`MAX_RETRY_WAIT`]. Off by
    /// default: a failed fetch is then retried by the next caller after the
    /// failure backoff. Every payauth token source is safe to retry (a
    /// login starts over; a single-use code is never exchanged by a
    /// source).
    #[must_use]
    pub fn retries(mut self, retries: u32, wait: Duration) -> Self {
        self.retries = retries;
        self.retry_wait = wait;
        self
    }

    /// The cache.
    #[must_use]
    pub fn build(self) -> TokenCache {
        let jitter = self.jitter.unwrap_or_else(random_fraction);
        TokenCache {
            inner: Arc::new(Inner {
                source: self.source,
                clock: self.clock,
                store: self.store,
                shared: self.shared,
                current: ArcSwapOption::empty(),
                unsaved: AtomicBool::new(false),
                state: Mutex::new(State::default()),
                margin: self.margin,
                jitter,
                failure_backoff: self.failure_backoff,
                retries: self.retries,
                retry_wait: self.retry_wait,
            }),
        }
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

impl TokenCache {
    /// A builder for a cache over `source`.
    pub fn builder(source: impl TokenSource) -> TokenCacheBuilder {
        Self::builder_arc(Arc::new(source))
    }

    /// A builder for a cache over a shared or dynamically chosen source.
    pub fn builder_arc(source: Arc<dyn TokenSource>) -> TokenCacheBuilder {
        TokenCacheBuilder {
            source,
            clock: Arc::new(SystemClock),
            store: None,
            shared: None,
            margin: DEFAULT_MARGIN,
            jitter: None,
            failure_backoff: DEFAULT_FAILURE_BACKOFF,
            retries: 0,
            retry_wait: Duration::from_millis(100),
        }
    }

    /// A valid token: the cached one while it is fresh, else one fresh
    /// fetch shared with every concurrent caller.
    ///
    /// # Errors
    /// The fetch's error when there is no valid token to serve: a permanent
    /// failure at once, a transient one only once the cached token has
    /// expired. [`ErrorKind::Store`] when a new token could not be saved
    /// (the token is kept in memory and served to the next caller).
    pub async fn token(&self) -> Result<Arc<AccessToken>, Error> {
        let now = self.inner.clock.now();
        if let Some(token) = &*self.inner.current.load()
            && now < self.inner.refresh_at(token)
        {
            if self.inner.unsaved.load(Ordering::Relaxed) {
                Inner::retry_save(&self.inner, now, token);
            }
            return Ok(Arc::clone(token));
        }
        self.refresh(now).await
    }

    /// How this cache's tokens go on API requests: its source's
    /// [`TokenSource::scheme`] (Bearer unless the provider wants more).
    #[must_use]
    pub fn scheme(&self) -> Arc<dyn crate::scheme::TokenScheme> {
        self.inner.source.scheme()
    }

    /// The cached token, fresh or not, without fetching.
    #[must_use]
    pub fn peek(&self) -> Option<Arc<AccessToken>> {
        self.inner.current.load_full()
    }

    /// Drops `rejected` from the cache (after your API answered 401 to it)
    /// so the next [`token`](Self::token) fetches anew. A token other than
    /// the cached one is ignored, so a late 401 cannot throw away a newer
    /// token. Returns whether it was dropped.
    pub fn invalidate(&self, rejected: &AccessToken) -> bool {
        let current = self.inner.current.load();
        let Some(cached) = &*current else {
            return false;
        };
        if cached.secret() != rejected.secret() {
            return false;
        }
        let previous = self.inner.current.compare_and_swap(&*current, None);
        let dropped = previous.as_ref().is_some_and(|p| Arc::ptr_eq(p, cached));
        if dropped {
            self.inner.lock().rejected = Some(Arc::clone(cached));
        }
        dropped
    }

    async fn refresh(&self, now: Instant) -> Result<Arc<AccessToken>, Error> {
        let (mut flight, valid) = {
            let mut state = self.inner.lock();
            let current = self.inner.current.load_full();
            if let Some(token) = &current
                && now < self.inner.refresh_at(token)
            {
                return Ok(Arc::clone(token));
            }
            let valid = current.filter(|t| t.is_valid_at(now));
            let flight = if let Some(flight) = &state.flight {
                flight.clone()
            } else {
                if let Some((failed_at, error)) = &state.failure
                    && now < *failed_at + self.inner.backoff(state.failures)
                {
                    return valid.ok_or_else(|| error.clone());
                }
                let (sender, receiver) = watch::channel(None);
                state.flight = Some(receiver.clone());
                tokio::spawn(Arc::clone(&self.inner).fly(sender));
                receiver
            };
            (flight, valid)
        };
        if let Some(token) = valid {
            return Ok(token);
        }
        match flight.wait_for(Option::is_some).await {
            Ok(outcome) => outcome
                .clone()
                .unwrap_or_else(|| Err(Error::new(ErrorKind::Transport))),
            Err(_) => Err(Error::new(ErrorKind::Transport)
                .with_description("the token fetch task ended without an outcome")),
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When `token` should be replaced.
    fn refresh_at(&self, token: &AccessToken) -> Instant {
        let lifetime = token.lifetime();
        let ahead = self.margin.min(lifetime / 2)
            + (lifetime / 10)
                .min(Duration::from_secs(30))
                .mul_f64(self.jitter);
        token
            .expires_at()
            .checked_sub(ahead)
            .unwrap_or_else(|| token.expires_at())
    }

    fn backoff(&self, failures: u32) -> Duration {
        let doubled = self
            .failure_backoff
            .saturating_mul(1 << failures.saturating_sub(1).min(16));
        let base = doubled.min(MAX_FAILURE_BACKOFF);
        base + base.mul_f64(self.jitter / 4.0)
    }

    /// Runs one fetch and hands its outcome to every waiter.
    async fn fly(self: Arc<Self>, sender: watch::Sender<Option<Outcome>>) {
        let outcome = self.fetch_and_publish().await;
        {
            let mut state = self.lock();
            state.flight = None;
            match &outcome {
                Ok(_) => {
                    state.failure = None;
                    state.failures = 0;
                }
                Err(error) => {
                    state.failure = Some((self.clock.now(), error.clone()));
                    state.failures = state.failures.saturating_add(1);
                }
            }
        }
        sender.send_replace(Some(outcome));
    }

    async fn fetch_and_publish(&self) -> Outcome {
        if let (Some(shared), Some((_, key))) = (&self.shared, &self.store) {
            return self.fetch_shared(shared.as_ref(), key).await;
        }
        let (previous, from_store) = self.previous().await;
        if let Some(token) = &previous
            && from_store
            && self.is_fresh(token)
        {
            // A fresh token from the store: a previous run fetched it.
            self.adopt(token);
            return Ok(Arc::clone(token));
        }
        self.fetch_and_save(previous, None).await
    }

    /// The fleet path: take the stored token if another replica renewed
    /// it, else fetch under the store's lease, else wait and look again.
    async fn fetch_shared(&self, shared: &dyn SharedStore, key: &str) -> Outcome {
        let started = tokio::time::Instant::now();
        loop {
            let stored = match self.adopt_stored(key).await {
                Ok(fresh) => return Ok(fresh),
                Err(stale) => stale,
            };
            let lease = match shared.try_lease(key).await {
                Ok(Some(lease)) => Some(lease),
                Ok(None) => {
                    if started.elapsed() >= shared.max_wait() {
                        return Err(Error::new(ErrorKind::Unavailable).with_description(format!(
                            "another replica held the fetch lease for {} s",
                            shared.max_wait().as_secs()
                        )));
                    }
                    tokio::time::sleep(shared.poll_interval()).await;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(source = self.source.name(), %error, "fleet lease unavailable; fetching without it");
                    None
                }
            };
            let previous = if lease.is_some() {
                // Another replica may have stored a token between the read
                // and the lease.
                match self.adopt_stored(key).await {
                    Ok(fresh) => {
                        release(self.source.name(), lease).await;
                        return Ok(fresh);
                    }
                    Err(stale) => stale,
                }
            } else {
                stored
            };
            // The stored token carries the fleet's latest refresh token.
            let previous = previous.or_else(|| self.lock().last.clone());
            let outcome = self.fetch_and_save(previous, lease.as_deref()).await;
            release(self.source.name(), lease).await;
            return outcome;
        }
    }

    /// Saves the published token again after a failed save, at most once
    /// per failure backoff, in its own task.
    fn retry_save(inner: &Arc<Self>, now: Instant, token: &Arc<AccessToken>) {
        let Some((store, key)) = inner.store.clone() else {
            return;
        };
        {
            let mut state = inner.lock();
            if state.saving
                || state
                    .save_failed_at
                    .is_some_and(|failed| now < failed + inner.failure_backoff)
            {
                return;
            }
            state.saving = true;
        }
        let (inner, token) = (Arc::clone(inner), Arc::clone(token));
        tokio::spawn(async move {
            let saved = store.save(&key, &StoredToken::from_token(&token)).await;
            let mut state = inner.lock();
            state.saving = false;
            match saved {
                Ok(()) => {
                    // A newer token published meanwhile may have been
                    // overwritten by this one: then save again next time.
                    let same = inner
                        .current
                        .load()
                        .as_ref()
                        .is_some_and(|current| Arc::ptr_eq(current, &token));
                    inner.unsaved.store(!same, Ordering::Relaxed);
                    state.save_failed_at = None;
                    tracing::debug!(source = inner.source.name(), "token saved on retry");
                }
                Err(error) => {
                    state.save_failed_at = Some(inner.clock.now());
                    tracing::warn!(source = inner.source.name(), %error, "token still not saved");
                }
            }
        });
    }

    /// Whether `token` may be served without a refresh (and was not
    /// rejected by the API it was sent to).
    fn is_fresh(&self, token: &AccessToken) -> bool {
        self.clock.now() < self.refresh_at(token)
            && !self
                .lock()
                .rejected
                .as_ref()
                .is_some_and(|rejected| rejected.secret() == token.secret())
    }

    /// Publishes the stored token if it is fresh (`Ok`), else hands back
    /// what is stored, stale or none (`Err`), for the fetch to start from.
    async fn adopt_stored(&self, key: &str) -> Result<Arc<AccessToken>, Option<Arc<AccessToken>>> {
        match self.load_stored(key).await {
            Some(token) if self.is_fresh(&token) => {
                self.adopt(&token);
                Ok(token)
            }
            stale => Err(stale),
        }
    }

    /// Publishes a token another run or replica stored.
    fn adopt(&self, token: &Arc<AccessToken>) {
        self.current.store(Some(Arc::clone(token)));
        self.lock().last = Some(Arc::clone(token));
    }

    /// Fetches from the source, saves (through `lease` when one is held),
    /// then publishes.
    async fn fetch_and_save(
        &self,
        previous: Option<Arc<AccessToken>>,
        lease: Option<&dyn Lease>,
    ) -> Outcome {
        match self.fetch_with_retries(previous.as_deref()).await {
            Ok(token) => {
                let token = Arc::new(token);
                let stored = StoredToken::from_token(&token);
                let saved = match (lease, &self.store) {
                    (Some(lease), _) => lease.save(&stored).await,
                    (None, Some((store, key))) => store.save(key, &stored).await,
                    (None, None) => Ok(()),
                };
                self.current.store(Some(Arc::clone(&token)));
                self.lock().last = Some(Arc::clone(&token));
                // Behind a lease, a refused save means another replica
                // moved on: nothing to retry. Otherwise save it again later.
                self.unsaved
                    .store(saved.is_err() && lease.is_none(), Ordering::Relaxed);
                if let Err(error) = saved {
                    self.lock().save_failed_at = Some(self.clock.now());
                    tracing::warn!(source = self.source.name(), %error, "token fetched but not saved; kept in memory");
                    return Err(error);
                }
                tracing::debug!(
                    source = self.source.name(),
                    lifetime_s = token.lifetime().as_secs(),
                    "token fetched"
                );
                Ok(token)
            }
            Err(error) => {
                tracing::warn!(source = self.source.name(), %error, transient = error.is_transient(), "token fetch failed");
                if error.is_permanent() {
                    self.current.store(None);
                    if error.kind() == ErrorKind::InvalidGrant {
                        self.lock().last = None;
                        if let (Some((store, key)), Some(refused)) = (
                            &self.store,
                            previous.as_ref().and_then(|p| p.refresh_token()),
                        ) && let Err(clear_error) = store.clear(key, Some(refused)).await
                        {
                            tracing::warn!(source = self.source.name(), error = %clear_error, "could not clear a refused token");
                        }
                    }
                }
                Err(error)
            }
        }
    }

    /// One fetch, with up to `retries` more attempts after transient
    /// failures.
    async fn fetch_with_retries(
        &self,
        previous: Option<&AccessToken>,
    ) -> Result<AccessToken, Error> {
        let mut attempt = 0;
        loop {
            match self.source.fetch(previous).await {
                Err(error) if error.is_transient() && attempt < self.retries => {
                    let doubled = self.retry_wait.saturating_mul(1 << attempt.min(16));
                    let wait = error.retry_after().unwrap_or(doubled).min(MAX_RETRY_WAIT);
                    attempt += 1;
                    tracing::debug!(source = self.source.name(), %error, attempt, wait_ms = wait.as_millis(), "retrying");
                    tokio::time::sleep(wait).await;
                }
                outcome => return outcome,
            }
        }
    }

    /// The token the next fetch starts from: the last one held, or on first
    /// use the stored one (then `true`).
    async fn previous(&self) -> (Option<Arc<AccessToken>>, bool) {
        let (last, read_store) = {
            let mut state = self.lock();
            let read = !state.store_read;
            state.store_read = true;
            (state.last.clone(), read)
        };
        if last.is_some() || !read_store {
            return (last, false);
        }
        let Some((_, key)) = self.store.as_ref() else {
            return (None, false);
        };
        match self.load_stored(key).await {
            Some(token) => {
                self.lock().last = Some(Arc::clone(&token));
                (Some(token), true)
            }
            None => (None, false),
        }
    }

    /// What the store holds under `key`, as a token; an unreadable store
    /// or token is logged and counts as none (the next fetch replaces it).
    async fn load_stored(&self, key: &str) -> Option<Arc<AccessToken>> {
        let (store, _) = self.store.as_ref()?;
        match store.load(key).await {
            Ok(Some(stored)) => match stored.to_token(self.clock.as_ref()) {
                Ok(token) => Some(Arc::new(token)),
                Err(error) => {
                    tracing::warn!(source = self.source.name(), %error, "stored token unusable; fetching anew");
                    None
                }
            },
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(source = self.source.name(), %error, "token store unreadable; fetching anew");
                None
            }
        }
    }
}

/// Gives a lease back, logging (not failing) when that is impossible: an
/// unreleased lease expires by itself.
async fn release(source: &str, lease: Option<Box<dyn Lease>>) {
    if let Some(lease) = lease
        && let Err(error) = lease.release().await
    {
        tracing::warn!(source, %error, "fleet lease not released; it will expire");
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("source", &self.inner.source.name())
            .field("token", &self.inner.current.load().as_deref())
            .field("margin", &self.inner.margin)
            .field("store_key", &self.inner.store.as_ref().map(|(_, key)| key))
            .finish_non_exhaustive()
    }
}
