//! [`TokenCache`]: what an application holds to always have a valid token.
//!
//! # Promises
//! - **Fast.** A fresh token costs one lock-free `ArcSwap` load, a clock
//!   read and an `Arc` clone: the instant to refresh at is computed once,
//!   when a token is published (`entry.rs`).
//! - **Refresh ahead.** A token is refreshed before expiry (default 60 s,
//!   at most half its lifetime, plus a fixed per-instance jitter); while it
//!   is still valid, callers keep getting it and never wait.
//! - **One flight.** One fetch runs at a time, however many callers wait,
//!   in a task of its own: a caller that gives up does not cancel it, and
//!   every waiter gets its outcome, success or failure. A flight always
//!   ends: a drop guard gives its waiters a transient error and clears it
//!   if its task panics, is cancelled or its runtime shuts down; a
//!   [fetch timeout](TokenCacheBuilder::fetch_timeout) (default 60 s)
//!   bounds it; dropping the last handle of the cache cancels it.
//! - **Backoff.** A failure is remembered for a backoff (1 s, doubling to
//!   30 s, with jitter, at least the provider's `Retry-After` up to
//!   5 minutes) so a storm of callers does not hammer a failing endpoint.
//! - **Serve-stale, bounded.** A transient failure never displaces a
//!   still-valid token; once the token is past its expiry, callers get
//!   the error, never a stale token. A permanent failure (`invalid_client`,
//!   `invalid_grant`, …) drops the token at once and reaches the next
//!   caller.
//! - **Usable tokens only.** A token living less than
//!   [`MIN_LIFETIME`](crate::MIN_LIFETIME) (or arriving with less left) is
//!   a `Malformed` failure, under the backoff; lifetimes are clamped to
//!   [`MAX_LIFETIME`](crate::MAX_LIFETIME), so no provider number can
//!   overflow a clock.
//! - **401s.** [`TokenCache::invalidate`] drops a rejected token so the
//!   next call renews it, at most once per backoff window (which doubles
//!   while the renewed tokens are rejected too): an API that rejects every
//!   token cannot make the cache fetch per request.
//!
//! # Modules
//! - `mod.rs`: the fast path, the single flight, backoff and retries;
//!   `builder.rs` checks the settings once;
//! - `persist.rs` (reads) and `save.rs` (writes): the
//!   [`TokenStore`](crate::TokenStore) logic: the store is read before
//!   every fetch; a new token (and its rotated refresh token) is saved
//!   before it is published, by a compare-and-set against what the cache
//!   last saw; a failed save is served from memory and tracked until a
//!   store holds it (`flush` reports it), never saved over a newer one; a
//!   rejected or revoked token is cleared from the store (compare-on-clear,
//!   keeping a refresh token);
//! - `fleet.rs`: the [`SharedStore`](crate::SharedStore) lease loop: the
//!   store is read before every fetch, one replica at a time fetches under
//!   a lease, the others wait for its token (or its shared failure) in the
//!   store; the newest refresh token always wins over an older one;
//! - `telemetry.rs`: what operators see, the `payauth.fetch` span of each
//!   flight and the metrics of the `metrics` feature ([crate
//!   docs](crate#observability)).
//!
//! No task outlives its purpose: refresh is driven by requests; the only
//! tasks are the flight and short, time-bounded store writes.

mod builder;
mod entry;
mod fleet;
mod persist;
mod save;
mod telemetry;

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tracing::Instrument as _;

use builder::Settings;
pub use builder::{
    DEFAULT_FAILURE_BACKOFF, DEFAULT_FETCH_TIMEOUT, DEFAULT_MARGIN, MAX_FAILURE_BACKOFF,
    MAX_FETCH_TIMEOUT, MAX_RETRIES, MAX_RETRY_AFTER_BACKOFF, MAX_RETRY_WAIT, MIN_FAILURE_BACKOFF,
    MIN_FETCH_TIMEOUT, TokenCacheBuilder,
};
use entry::refresh_at;
use persist::Persistence;
use telemetry::{Served, Telemetry};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, ErrorKind};
use crate::source::TokenSource;
use crate::token::AccessToken;

type Outcome = Result<Arc<AccessToken>, Error>;

/// A cached, self-renewing token from one [`TokenSource`]. Cheap to clone
/// (clones share the cache), `Send + Sync`. See the [module docs](self)
/// for what it promises.
///
/// Fetches run on the caller's Tokio runtime, with its timer (what
/// `#[tokio::main]` or `enable_all()` give); without a runtime,
/// [`token`](Self::token) answers [`ErrorKind::Config`] instead of
/// fetching.
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
pub struct TokenCache {
    inner: Arc<Inner>,
}

/// A handle more: counted apart from the `Arc` (which the flight's task
/// holds too), so that the last handle going cancels the flight.
impl Clone for TokenCache {
    fn clone(&self) -> Self {
        self.inner.handles.fetch_add(1, Ordering::Relaxed);
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl Drop for TokenCache {
    /// When the last handle goes, the flight in progress is cancelled.
    fn drop(&mut self) {
        if self.inner.handles.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let task = self
            .inner
            .lock()
            .flight
            .as_mut()
            .and_then(|f| f.task.take());
        if let Some(task) = task {
            task.abort();
        }
    }
}

/// One cache's own state: what differs between caches. Everything the
/// caches of one builder share (source, clock, settings, labels) is one
/// [`Common`], which `Inner` reads as its own fields through `Deref`, so
/// an idle cache costs one allocation of this size and its token.
struct Inner {
    common: Arc<Common>,
    /// The published token: all the fast path reads, with the instant to
    /// refresh at computed from it and the shared settings
    /// ([`refresh_at`]), so that a get follows no pointer but this one.
    current: ArcSwapOption<AccessToken>,
    /// The published token is not in the store yet (a failed save, or a
    /// seed); written under the state lock, with `current`.
    unsaved: AtomicBool,
    /// Handles ([`TokenCache`]s) alive; the flight's task is not one.
    handles: AtomicU32,
    /// When a [`Subjects`](crate::subjects::Subjects) last handed it out
    /// (its clock, in its units); beside `handles`, in what would be
    /// padding.
    #[cfg_attr(not(feature = "subjects"), allow(dead_code))]
    used: AtomicU32,
    state: Mutex<State>,
    /// Boxed: a cache without a store holds a null pointer.
    persistence: Option<Box<Persistence>>,
}

/// What every cache built from one [`TokenCacheBuilder`] (and its clones)
/// shares: built once, by the first `build`.
struct Common {
    source: Arc<dyn TokenSource>,
    /// `None`: the system clock, read without a virtual call.
    clock: Option<Arc<dyn Clock>>,
    settings: Settings,
    telemetry: Telemetry,
}

impl Deref for Inner {
    type Target = Common;

    fn deref(&self) -> &Common {
        &self.common
    }
}

#[derive(Default)]
struct State {
    /// The fetch in flight, if any; every waiter watches it. Boxed, as
    /// are the other rarely held parts: an idle cache holds null pointers.
    flight: Option<Box<Flight>>,
    /// The id of the last flight (wrapping: an id only tells the flight in
    /// progress from the one before it).
    flights: u32,
    /// The last token held (even expired or rejected): its refresh token
    /// feeds the next fetch.
    last: Option<Arc<AccessToken>>,
    /// The last failure and until when it is the answer; how many in a row.
    failure: Option<Box<Failure>>,
    failures: u32,
    /// The token last dropped by [`TokenCache::invalidate`] (never taken
    /// back from a store), when, and how many in a row.
    rejected: Option<Box<Rejected>>,
    /// Store bookkeeping; see [`persist`]. Allocated on first write: a
    /// cache without a store never writes it.
    saves: LazySaves,
}

/// [`persist::Saves`], read as its default until first written.
#[derive(Default)]
struct LazySaves(Option<Box<persist::Saves>>);

impl Deref for LazySaves {
    type Target = persist::Saves;

    fn deref(&self) -> &persist::Saves {
        static EMPTY: OnceLock<persist::Saves> = OnceLock::new();
        self.0
            .as_deref()
            .unwrap_or_else(|| EMPTY.get_or_init(persist::Saves::default))
    }
}

impl DerefMut for LazySaves {
    fn deref_mut(&mut self) -> &mut persist::Saves {
        self.0.get_or_insert_with(Box::default)
    }
}

/// The token last dropped after a 401 or a revocation; reads as it.
struct Rejected {
    token: Arc<AccessToken>,
    /// When the last renewal after a 401 was allowed.
    at: Option<Instant>,
    /// Renewals after a 401 in a row.
    rejections: u32,
}

impl Deref for Rejected {
    type Target = AccessToken;

    fn deref(&self) -> &AccessToken {
        &self.token
    }
}

struct Flight {
    id: u32,
    outcome: watch::Receiver<Option<Outcome>>,
    task: Option<AbortHandle>,
}

struct Failure {
    until: Instant,
    error: Error,
}

/// What a caller that found no fresh token does.
enum Next {
    Serve(Outcome),
    Wait(watch::Receiver<Option<Outcome>>, Option<Arc<AccessToken>>),
    Launch(FlightGuard, Option<Arc<AccessToken>>),
}

impl TokenCache {
    /// A builder for a cache over `source`: a flow, or an `Arc` of one
    /// (`Arc<Mypos>`, `Arc<dyn TokenSource>`) shared with other code.
    pub fn builder(source: impl TokenSource) -> TokenCacheBuilder {
        TokenCacheBuilder::new(Arc::new(source))
    }

    fn from_inner(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
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
    /// [`ErrorKind::Timeout`] when the fetch outlived the fetch timeout.
    pub async fn token(&self) -> Result<Arc<AccessToken>, Error> {
        let now = self.inner.now();
        let inner = &*self.inner;
        if let Some(token) = &*inner.current.load()
            && now < refresh_at(token, &inner.settings)
        {
            if inner.unsaved.load(Ordering::Relaxed) {
                self.inner.save_again(token, now);
            }
            inner.telemetry.served(Served::Cache);
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
    /// so the next [`token`](Self::token) fetches anew, and clears it from
    /// the store (in a task; without a Tokio runtime, at the start of the
    /// next fetch) if the store still holds it; a refresh token stored with
    /// it is kept. Returns whether it was dropped.
    ///
    /// A token other than the cached one is ignored, so a late 401 cannot
    /// throw away a newer token. Renewals are limited: within the failure
    /// backoff of the last renewal it caused (a window doubling while the
    /// renewed tokens are rejected too), the token is kept and `false`
    /// returned, so an API that rejects every token gets one renewal per
    /// window, not one per request; the caller then returns the 401 as
    /// is.
    ///
    /// ```
    /// # use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    /// # use std::time::Duration;
    /// # use payauth_core::{AccessToken, BoxFuture, Error, Issued, Secret, SystemClock, TokenCache, TokenSource};
    /// # struct Counter(AtomicU32);
    /// # impl TokenSource for Counter {
    /// #     fn fetch<'a>(&'a self, _: Option<&'a AccessToken>) -> BoxFuture<'a, Result<AccessToken, Error>> {
    /// #         let n = self.0.fetch_add(1, Ordering::SeqCst);
    /// #         Box::pin(async move {
    /// #             AccessToken::new(Secret::new(format!("t{n}")), "Bearer", Issued::now(&SystemClock), Duration::from_secs(3600))
    /// #         })
    /// #     }
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let cache = TokenCache::builder(Counter(AtomicU32::new(1))).build();
    /// let rejected = cache.token().await?; // your API answered 401 to it
    /// assert!(cache.invalidate(&rejected)); // dropped: the next call renews
    /// let renewed = cache.token().await?;
    /// assert!(!cache.invalidate(&renewed)); // rejected again at once: kept
    /// assert!(cache.forget(&renewed).await?); // revoked: dropped anyway
    /// assert_eq!(cache.token().await?.secret().expose_secret(), "t3");
    /// # Ok::<(), Error>(())
    /// # }).unwrap();
    /// ```
    pub fn invalidate(&self, rejected: &AccessToken) -> bool {
        let now = self.inner.now();
        let Some(dropped) = self.inner.drop_cached(rejected, Some(now)) else {
            return false;
        };
        self.inner.clear_soon(dropped);
        true
    }

    /// Drops `token` from the cache whatever the renewal limit (it was
    /// revoked: it must never be served again) and clears it from the
    /// store if the store still holds it, waiting for the store; a refresh
    /// token stored with it is kept. Returns whether the cache held it.
    ///
    /// # Errors
    /// [`ErrorKind::Store`] when the store could not be cleared (the token
    /// is dropped from memory all the same).
    pub async fn forget(&self, token: &AccessToken) -> Result<bool, Error> {
        let dropped = self.inner.drop_cached(token, None);
        let held = dropped.is_some();
        let token = dropped.unwrap_or_else(|| Arc::new(token.clone()));
        self.inner.clear_stored(&token).await?;
        Ok(held)
    }

    /// Saves now, whatever the failure backoff, the token this cache
    /// fetched or was seeded with and could not save yet, wherever its
    /// access token went since: published, dropped after a 401
    /// ([`invalidate`](Self::invalidate)) or a revocation, or refused as
    /// too short-lived to serve (then stored expired, for its refresh
    /// token). `Ok` means no refresh token this cache received is held by
    /// its memory alone (it is stored, or another writer stored a token
    /// since, which stands).
    ///
    /// A failed save never costs a caller its token: [`token`](Self::token)
    /// serves it from memory and the cache saves it again later. A process
    /// about to exit (a CLI, a job) calls `flush` first, so a refresh token
    /// the provider just rotated is not lost with its memory.
    ///
    /// ```no_run
    /// # async fn run(cache: payauth_core::TokenCache) -> Result<(), payauth_core::Error> {
    /// let token = cache.token().await?;
    /// // ... use it, then before exiting:
    /// cache.flush().await?;
    /// # let _ = token; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::Store`] when the store still cannot take it (or did
    /// not answer within the store bound).
    pub async fn flush(&self) -> Result<(), Error> {
        self.inner.save_pending().await.map(drop)
    }

    /// How many handles of this cache are alive.
    #[cfg(feature = "subjects")]
    pub(crate) fn handles(&self) -> u32 {
        self.inner.handles.load(Ordering::Acquire)
    }

    /// Stamps when a [`Subjects`](crate::subjects::Subjects) last handed
    /// it out.
    #[cfg(feature = "subjects")]
    pub(crate) fn touch(&self, stamp: u32) {
        self.inner.used.store(stamp, Ordering::Relaxed);
    }

    /// Whether `other` is a handle of this very cache.
    #[cfg(feature = "subjects")]
    pub(crate) fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The stamp [`touch`](Self::touch) left.
    #[cfg(feature = "subjects")]
    pub(crate) fn touched(&self) -> u32 {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// Whether a fetch is in flight: a refresh ahead of expiry runs on
    /// after its caller was served the still-valid token, and dropping the
    /// cache cancels it, with the save of the refresh token it rotated.
    #[cfg(feature = "subjects")]
    pub(crate) fn fetching(&self) -> bool {
        self.inner.lock().flight.is_some()
    }

    /// Waits for the fetch in flight, if any, to end: what it fetched is
    /// then saved, or recorded unsaved for [`flush`](Self::flush).
    #[cfg(feature = "subjects")]
    pub(crate) async fn settled(&self) {
        let flight = self.inner.lock().flight.as_ref().map(|f| f.outcome.clone());
        if let Some(mut outcome) = flight {
            let _ = outcome.wait_for(Option::is_some).await;
        }
    }

    async fn refresh(&self, now: Instant) -> Result<Arc<AccessToken>, Error> {
        let telemetry = &self.inner.telemetry;
        let (mut outcome, valid) = match self.inner.next(now) {
            Next::Serve(outcome) => {
                telemetry.served(match outcome {
                    Ok(_) => Served::Cache,
                    Err(_) => Served::Backoff,
                });
                return outcome;
            }
            Next::Wait(outcome, valid) => (outcome, valid),
            Next::Launch(guard, valid) => (guard.launch().await, valid),
        };
        if let Some(token) = valid {
            telemetry.served(Served::Cache);
            return Ok(token);
        }
        telemetry.served(Served::Wait);
        match outcome.wait_for(Option::is_some).await {
            Ok(outcome) => outcome
                .clone()
                .unwrap_or_else(|| Err(ended_without_outcome())),
            Err(_) => Err(ended_without_outcome()),
        }
    }
}

/// What waiters of a flight that ended without an outcome get.
fn ended_without_outcome() -> Error {
    Error::new(ErrorKind::Transport).with_description(
        "the token fetch ended without an outcome (it panicked, was cancelled, or its runtime shut down)",
    )
}

impl Inner {
    fn new(common: Arc<Common>, persistence: Option<Box<Persistence>>) -> Self {
        Self {
            common,
            current: ArcSwapOption::empty(),
            unsaved: AtomicBool::new(false),
            handles: AtomicU32::new(1),
            used: AtomicU32::new(0),
            state: Mutex::new(State::default()),
            persistence,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> Instant {
        match &self.clock {
            None => Instant::now(),
            Some(clock) => clock.now(),
        }
    }

    fn clock(&self) -> &dyn Clock {
        self.clock.as_deref().unwrap_or(&SystemClock)
    }

    /// Publishes `token`, the one the next fetch starts from too.
    fn publish(&self, token: &Arc<AccessToken>, unsaved: bool) {
        let mut state = self.lock();
        self.unsaved.store(unsaved, Ordering::Relaxed);
        self.current.store(Some(Arc::clone(token)));
        state.last = Some(Arc::clone(token));
        drop(state);
        self.telemetry.cached(Some(token), || self.now());
    }

    /// `saved` is in the store: if it is the published token, the fast
    /// path no longer saves it again.
    fn mark_saved(&self, saved: &crate::secret::Secret) {
        let _state = self.lock();
        if self
            .current
            .load()
            .as_ref()
            .is_some_and(|token| token.secret() == saved)
        {
            self.unsaved.store(false, Ordering::Relaxed);
        }
    }

    /// A token handed over at build time.
    fn seed(&self, token: &Arc<AccessToken>) {
        self.publish(token, self.persistence.is_some());
        if self.persistence.is_some() {
            self.seeded(token);
        }
    }

    /// Under the lock: serve, wait for the flight in progress, or start
    /// one (the caller launches it once the lock is released).
    fn next(self: &Arc<Self>, now: Instant) -> Next {
        let mut state = self.lock();
        let current = self.current.load_full();
        if let Some(token) = &current
            && now < refresh_at(token, &self.settings)
        {
            return Next::Serve(Ok(Arc::clone(token)));
        }
        let valid = current
            .as_ref()
            .filter(|token| token.is_valid_at(now))
            .cloned();
        if let Some(flight) = &state.flight {
            return Next::Wait(flight.outcome.clone(), valid);
        }
        if let Some(failure) = &state.failure
            && now < failure.until
        {
            return Next::Serve(valid.ok_or_else(|| failure.error.clone()));
        }
        if current.is_some() {
            // The last token lived to its refresh: renewals after a 401
            // start over.
            if let Some(rejected) = &mut state.rejected {
                rejected.rejections = 0;
            }
        }
        let (sender, outcome) = watch::channel(None);
        state.flights = state.flights.wrapping_add(1);
        let id = state.flights;
        state.flight = Some(Box::new(Flight {
            id,
            outcome,
            task: None,
        }));
        Next::Launch(
            FlightGuard {
                inner: Arc::clone(self),
                id,
                sender,
                done: false,
            },
            valid,
        )
    }

    /// How long a failure (the `failures`-th in a row) is the answer.
    fn backoff(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let doubled = self
            .settings
            .failure_backoff
            .saturating_mul(1 << failures.saturating_sub(1).min(16))
            .min(MAX_FAILURE_BACKOFF);
        let jittered = doubled + doubled.mul_f64(self.settings.jitter / 4.0);
        jittered.max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER_BACKOFF))
    }

    /// Records how flight `id` ended and clears it.
    fn land(&self, id: u32, outcome: &Outcome) {
        let now = self.now();
        let mut state = self.lock();
        if state.flight.as_ref().is_some_and(|f| f.id == id) {
            state.flight = None;
        }
        match outcome {
            Ok(_) => {
                state.failure = None;
                state.failures = 0;
            }
            Err(error) => {
                state.failures = state.failures.saturating_add(1);
                let backoff = self.backoff(state.failures, error.retry_after());
                state.failure = Some(Box::new(Failure {
                    until: now.checked_add(backoff).unwrap_or(now),
                    error: error.clone(),
                }));
            }
        }
    }

    /// One flight: everything it does, within the fetch timeout.
    async fn fly(&self) -> Outcome {
        let timeout = self.settings.fetch_timeout;
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        let mut fetch = std::pin::pin!(self.fetch_and_publish());
        // A fetch that ends in its first poll (a quick source) needs no
        // timer: the timeout is set up only if it goes on, counted from
        // the start all the same.
        if let Poll::Ready(outcome) =
            std::future::poll_fn(|cx| Poll::Ready(fetch.as_mut().poll(cx))).await
        {
            return outcome;
        }
        let Some(deadline) = deadline else {
            return fetch.await;
        };
        tokio::time::timeout_at(deadline, fetch)
            .await
            .unwrap_or_else(|_| {
                self.telemetry.timed_out();
                tracing::warn!(
                    source = self.source.name(),
                    timeout_ms = timeout.as_millis(),
                    "token fetch timed out"
                );
                Err(Error::new(ErrorKind::Timeout).with_description(format!(
                    "the token fetch took longer than the cache's fetch timeout ({} ms)",
                    timeout.as_millis()
                )))
            })
    }

    async fn fetch_and_publish(&self) -> Outcome {
        if self.persistence.is_none() {
            let previous = self.lock().last.clone();
            let token = self.fetch(previous).await?;
            return self.land_fetched(token);
        }
        // The store's paths are boxed: without a store, a flight's task
        // stays small (a large short-lived allocation per first fetch,
        // interleaved with the caches' own, fragments the heap).
        Box::pin(self.fetch_and_store()).await
    }

    /// [`fetch_and_publish`](Self::fetch_and_publish) with a store.
    async fn fetch_and_store(&self) -> Outcome {
        self.clear_pending().await;
        if let Some((fleet, key)) = self.fleet() {
            return self.fetch_shared(fleet, key).await;
        }
        let previous = match self.starting_point().await {
            Ok(adopted) => return Ok(adopted),
            Err(previous) => previous,
        };
        let token = self.fetch(previous).await?;
        self.store_fetched(token, None, 0, Duration::ZERO)
            .await
            .outcome
    }

    /// What [`store_fetched`](Self::store_fetched) does without a store:
    /// a token fit to serve is published; one too short-lived is refused,
    /// its refresh token kept for the next fetch.
    fn land_fetched(&self, token: Arc<AccessToken>) -> Outcome {
        match self.fit_to_serve(&token) {
            Ok(()) => {
                self.publish(&token, false);
                Ok(token)
            }
            Err(error) => {
                if token.refresh_token().is_some() {
                    self.lock().last = Some(token);
                }
                Err(error)
            }
        }
    }

    /// One fetch from the source, with its retries. The new token counts
    /// as issued after the one it was fetched from, whatever the wall clock
    /// says (it may have jumped back), so "newest" follows cause and effect.
    async fn fetch(&self, previous: Option<Arc<AccessToken>>) -> Outcome {
        match self.fetch_with_retries(previous.as_deref()).await {
            Ok(token) => {
                tracing::debug!(
                    source = self.source.name(),
                    lifetime_s = token.lifetime().as_secs(),
                    "token fetched"
                );
                Ok(Arc::new(match &previous {
                    Some(previous) => token.succeeding(previous),
                    None => token,
                }))
            }
            Err(error) => {
                tracing::warn!(source = self.source.name(), %error, transient = error.is_transient(), "token fetch failed");
                self.refused(&error);
                if error.kind() == ErrorKind::InvalidGrant
                    && let Some(refused) = previous.as_ref().and_then(|p| p.refresh_token())
                {
                    self.refused_pending(refused);
                    Box::pin(self.clear_refused(refused)).await;
                }
                Err(error)
            }
        }
    }

    /// Drops what a permanent `error` refuses: the token, and after
    /// `invalid_grant` the refresh token the next fetch would start from.
    fn refused(&self, error: &Error) {
        if !error.is_permanent() {
            return;
        }
        self.current.store(None);
        self.telemetry.cached(None, || self.now());
        if error.kind() == ErrorKind::InvalidGrant {
            self.lock().last = None;
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
            let call = self.telemetry.attempt();
            let outcome = self.source.fetch(previous).await;
            call.ended(&outcome);
            match outcome {
                Err(error) if error.is_transient() && attempt < self.settings.retries => {
                    let wait = match error.retry_after() {
                        // The failure backoff honours a long Retry-After.
                        Some(asked) if asked > MAX_RETRY_WAIT => return Err(error),
                        Some(asked) => asked,
                        None => self
                            .settings
                            .retry_wait
                            .saturating_mul(1 << attempt.min(16))
                            .min(MAX_RETRY_WAIT),
                    };
                    attempt += 1;
                    tracing::debug!(source = self.source.name(), %error, attempt, wait_ms = wait.as_millis(), "retrying");
                    drop(error);
                    // Boxed: the flight's task holds no timer until it retries.
                    Box::pin(tokio::time::sleep(wait)).await;
                }
                outcome => return outcome,
            }
        }
    }

    /// Takes `token` out of the cache if it is the cached one: with `now`,
    /// only outside the renewal window of the last rejection. The dropped
    /// token, if it was.
    fn drop_cached(&self, token: &AccessToken, now: Option<Instant>) -> Option<Arc<AccessToken>> {
        let current = self.current.load();
        let entry = current.as_ref()?;
        if entry.secret() != token.secret() {
            return None;
        }
        let mut state = self.lock();
        let (at, rejections) = state
            .rejected
            .as_ref()
            .map_or((None, 0), |r| (r.at, r.rejections));
        if let Some(now) = now
            && let Some(at) = at
            && at
                .checked_add(self.backoff(rejections, None))
                .is_none_or(|until| now < until)
        {
            tracing::debug!(
                source = self.source.name(),
                "token rejected again within the renewal window; kept"
            );
            return None;
        }
        let previous = self.current.compare_and_swap(&*current, None);
        if !previous.as_ref().is_some_and(|p| Arc::ptr_eq(p, entry)) {
            return None;
        }
        self.telemetry.cached(None, || self.now());
        let (at, rejections) = match now {
            Some(now) => (Some(now), rejections.saturating_add(1)),
            None => (at, rejections),
        };
        state.rejected = Some(Box::new(Rejected {
            token: Arc::clone(entry),
            at,
            rejections,
        }));
        drop(state);
        self.unserved(entry);
        Some(Arc::clone(entry))
    }
}

/// A flight's ending: whatever happens to its task, it clears the flight
/// and gives every waiter an outcome.
struct FlightGuard {
    inner: Arc<Inner>,
    id: u32,
    sender: watch::Sender<Option<Outcome>>,
    done: bool,
}

impl FlightGuard {
    /// Runs the flight: polled once here, by the caller that started it
    /// (a flight that ends at once, a quick source, costs no task), then,
    /// if it is still running, spawned on the caller's runtime, before
    /// this caller can give up (with no runtime, it ends at once with an
    /// error); the outcome to wait on. A panic in that first poll ends the
    /// flight as a panic in its task does: its waiters get an error.
    async fn launch(self) -> watch::Receiver<Option<Outcome>> {
        let outcome = self.sender.subscribe();
        let (inner, id) = (Arc::clone(&self.inner), self.id);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.end(Err(Error::new(ErrorKind::Config).with_description(
                "a TokenCache fetches on a Tokio runtime, and none is running",
            )));
            return outcome;
        };
        inner.watch(&runtime);
        let span = inner.telemetry.span();
        let mut flight = Box::pin(self.fly().instrument(span));
        let first = std::future::poll_fn(|cx| {
            let polled =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| flight.as_mut().poll(cx)));
            Poll::Ready(polled)
        })
        .await;
        // A panic unwound the flight, whose guard gave its waiters an error.
        if let Ok(Poll::Pending) = first {
            let task = runtime.spawn(flight);
            if let Some(flight) = inner.lock().flight.as_mut().filter(|f| f.id == id) {
                flight.task = Some(task.abort_handle());
            }
        }
        outcome
    }

    async fn fly(self) {
        let outcome = self.inner.fly().await;
        self.end(outcome);
    }

    fn end(mut self, outcome: Outcome) {
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: Outcome) {
        self.done = true;
        self.inner.land(self.id, &outcome);
        self.sender.send_replace(Some(outcome));
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        if !self.done {
            tracing::warn!(
                source = self.inner.source.name(),
                "token fetch ended without an outcome"
            );
            self.finish(Err(ended_without_outcome()));
        }
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("source", &self.inner.source.name())
            .field("token", &self.peek().as_deref())
            .field("margin", &self.inner.settings.margin)
            .field(
                "store_key",
                &self.inner.persistence.as_ref().map(|p| p.key()),
            )
            .finish_non_exhaustive()
    }
}

/// The memory an idle cache costs, pinned: `size_of` is deterministic, so
/// a field added inline (an `Error`, settings, a second `Arc`) fails here
/// rather than quietly costing every one of 100,000 subjects. Before the
/// slimming (#28), `Inner` was 688 bytes and a cache two allocations.
#[cfg(all(test, target_pointer_width = "64"))]
mod layout {
    use std::mem::size_of;
    use std::sync::Arc;

    use super::{Inner, State, TokenCache};

    #[test]
    fn an_idle_cache_is_one_allocation_of_at_most_96_bytes_besides_its_token() {
        assert_eq!(size_of::<TokenCache>(), size_of::<Arc<Inner>>());
        // 96 + the Arc's two counts: a 128-byte heap chunk.
        assert!(
            size_of::<Inner>() <= 96,
            "Inner: {} bytes",
            size_of::<Inner>()
        );
        assert!(
            size_of::<State>() <= 48,
            "State: {} bytes",
            size_of::<State>()
        );
    }

    struct Never;
    impl crate::TokenSource for Never {
        fn fetch<'a>(
            &'a self,
            _: Option<&'a crate::AccessToken>,
        ) -> crate::BoxFuture<'a, Result<crate::AccessToken, crate::Error>> {
            Box::pin(async { Err(crate::Error::new(crate::ErrorKind::Config)) })
        }
    }

    #[test]
    fn caches_built_from_clones_of_one_builder_share_one_common_part_until_a_setter_changes_it() {
        let store: Arc<dyn crate::TokenStore> = Arc::new(crate::MemoryStore::new());
        let builder = TokenCache::builder(Never).store(store, "k");
        let caches: Vec<TokenCache> = (0..3)
            .map(|i| builder.clone().store_key(format!("k:{i}")).build())
            .collect();
        for cache in &caches[1..] {
            assert!(Arc::ptr_eq(&cache.inner.common, &caches[0].inner.common));
        }
        let keys: Vec<&str> = caches
            .iter()
            .map(|c| c.inner.persistence.as_ref().unwrap().key())
            .collect();
        assert_eq!(keys, ["k:0", "k:1", "k:2"]);
        let other = builder.clone().jitter(0.5).build();
        assert!(!Arc::ptr_eq(&other.inner.common, &caches[0].inner.common));
        assert!((other.inner.settings.jitter - 0.5).abs() < f64::EPSILON);
        let again = builder.build();
        assert!(Arc::ptr_eq(&again.inner.common, &caches[0].inner.common));
    }

    #[test]
    fn a_flight_without_a_store_is_a_future_of_at_most_1_kib() {
        let cache = TokenCache::builder(Never).build();
        // A short-lived allocation above the allocator's small sizes, made
        // by every first fetch between the caches' own, fragments the heap
        // (about 2 KB per subject, measured).
        let flight = std::mem::size_of_val(&cache.inner.fly());
        assert!(flight <= 1024, "flight: {flight} bytes");
    }
}
