//! [`Subjects`]: one [`TokenCache`] per subject (a customer, a consent, a
//! sub-merchant), built on first use, evicted when idle.
//!
//! A fintech acting for every customer who logged in holds one refresh
//! token per customer; a marketplace holds one credential per
//! sub-merchant. `Subjects` hands out the cache for a subject's key,
//! building it with your factory the first time (the factory captures
//! what every subject shares: one HTTP client, one store, one set of
//! settings), and bounds how many stay in memory.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use payauth_core::{AccessToken, BoxFuture, Error, Issued, MemoryStore, Secret, SystemClock, TokenCache, TokenSource, TokenStore};
//! use payauth_core::subjects::Subjects;
//!
//! /// A customer's flow; real ones refresh with the customer's token.
//! struct Customer(String);
//! impl TokenSource for Customer {
//!     fn fetch<'a>(&'a self, _: Option<&'a AccessToken>) -> BoxFuture<'a, Result<AccessToken, Error>> {
//!         Box::pin(async move {
//!             AccessToken::new(Secret::new(format!("token-of-{}", self.0)), "Bearer", Issued::now(&SystemClock), Duration::from_secs(3600))
//!         })
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new()); // PostgreSQL in production
//! let customers = Subjects::builder(move |id: &String| {
//!     TokenCache::builder(Customer(id.clone()))
//!         .store(Arc::clone(&store), format!("vakifbank:customer:{id}"))
//!         .build()
//! })
//! .capacity(100_000)
//! .time_to_idle(Duration::from_secs(1800))
//! .build();
//! let token = customers.token(&"c-42".to_owned()).await?;
//! assert_eq!(token.secret().expose_secret(), "token-of-c-42");
//! # Ok::<(), Error>(())
//! # }).unwrap();
//! ```
//!
//! ## What is guaranteed
//! - **Subjects never cross.** The cache handed out for a key is the one
//!   the factory built for that key ([`Subject::key`] says which).
//! - **One fetch per subject per expiry**, however many callers: every
//!   caller of one key shares one cache (a key's first callers wait for
//!   one factory call), and the cache runs one fetch at a time.
//! - **Bounded memory.** At most about [`capacity`](SubjectsBuilder::capacity)
//!   subjects stay (eviction by [`quick_cache`]'s CLOCK-Pro: subjects used
//!   again are kept over one-off ones), and a subject not asked for within
//!   the [time to idle](SubjectsBuilder::time_to_idle) is evicted.
//! - **No rotated refresh token lost to an eviction.** An evicted subject
//!   is saved ([`TokenCache::flush`]) before it is dropped: it waits,
//!   aside, until its store took its token (in a Tokio task, one subject
//!   at a time), nobody holds it any more and no refresh of its own (one
//!   ahead of expiry, which outlives its caller) is still running; asking for it meanwhile
//!   hands back that very cache, never a second one read from the store.
//!   A subject whose save fails stays aside and is saved again at the
//!   next eviction or [`flush`](Subjects::flush). Before exiting, call
//!   [`flush`](Subjects::flush).
//! - **Metrics stay labelled by provider and flow only.** The caches
//!   record what [`TokenCache`] records: no label ever holds a subject's
//!   key, so a hundred thousand customers are not a hundred thousand
//!   series.
//!
//! ## Why `quick_cache`
//! `moka` has time-to-idle built in but pulls in crossbeam, `parking_lot`,
//! tagptr, uuid and more (a long build on a 2-core CI); `quick_cache`
//! with its default features off needs `hashbrown` and `equivalent` only,
//! is maintained, sharded, and reports evictions through a hook, which is
//! what saving an evicted subject needs. Time to idle is a sweep over
//! last-use stamps (one atomic store per [`get`](Subjects::get), in the
//! cache itself), run at most twice per idle period from a call of
//! [`get`](Subjects::get), or by [`evict_idle`](Subjects::evict_idle).
//!
//! ## Memory
//! The set holds each subject's key once (in `quick_cache`) and its
//! [`TokenCache`], one allocation. When one source serves every subject
//! (a refresh flow: the refresh token comes from the cache and its
//! store, not from the source), let the factory build from clones of one
//! [`TokenCacheBuilder`](crate::TokenCacheBuilder) with a
//! [`store_key`](crate::TokenCacheBuilder::store_key) each: the caches
//! then share one copy of the source, settings and labels, and an idle
//! subject costs about 1.3x a map of its token (BENCHMARKS.md).
//! ```
//! # use std::sync::Arc;
//! # use std::time::Duration;
//! # use payauth_core::{AccessToken, BoxFuture, Error, Issued, MemoryStore, Secret, SystemClock, TokenCache, TokenSource, TokenStore};
//! # use payauth_core::subjects::Subjects;
//! # struct Refresh;
//! # impl TokenSource for Refresh {
//! #     fn fetch<'a>(&'a self, _: Option<&'a AccessToken>) -> BoxFuture<'a, Result<AccessToken, Error>> {
//! #         Box::pin(async { AccessToken::new(Secret::new("t"), "Bearer", Issued::now(&SystemClock), Duration::from_secs(3600)) })
//! #     }
//! # }
//! let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
//! let every_customer = TokenCache::builder(Refresh).store(store, "vakifbank:customer");
//! let customers = Subjects::builder(move |id: &String| {
//!     every_customer.clone().store_key(format!("vakifbank:customer:{id}")).build()
//! })
//! .build();
//! # drop(customers);
//! ```

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use quick_cache::sync::{Cache, GuardResult};
use quick_cache::{Lifecycle, UnitWeighter};

use crate::cache::TokenCache;
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::token::AccessToken;

/// The default number of subjects kept in memory.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// The default time to idle: a subject not asked for within an hour is
/// evicted (saved first).
pub const DEFAULT_TIME_TO_IDLE: Duration = Duration::from_secs(3600);

type Factory<K> = dyn Fn(&K) -> TokenCache + Send + Sync;
type Pending<K> = Mutex<HashMap<K, TokenCache>>;

/// Caches by subject key; see the [module docs](self). Cloning shares the
/// set.
pub struct Subjects<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for Subjects<K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

struct Shared<K> {
    caches: Cache<K, TokenCache, UnitWeighter, RandomState, Aside<K>>,
    /// Evicted subjects waiting for their save; see [`Subjects::flush`].
    aside: Arc<Pending<K>>,
    factory: Box<Factory<K>>,
    clock: Arc<dyn Clock>,
    epoch: Instant,
    time_to_idle: Option<Duration>,
    capacity: usize,
    /// When idle subjects were last swept, ms since `epoch`.
    swept_ms: AtomicU64,
    /// Evictions so far: a flush pass that saw fewer runs again.
    evictions: Arc<AtomicU64>,
    flushing: AtomicBool,
}

/// The cache for one subject, as handed out by [`Subjects::get`]; derefs
/// to its [`TokenCache`]. Holding it (or a clone of its cache) keeps the
/// subject's cache alive (an eviction meanwhile saves it, and keeps it
/// aside until it is let go).
pub struct Subject<K> {
    key: K,
    cache: TokenCache,
}

impl<K> Subject<K> {
    /// The key this cache was built for: always the key it was asked for.
    #[must_use]
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The subject's cache.
    #[must_use]
    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }
}

impl<K: Clone> Clone for Subject<K> {
    fn clone(&self) -> Self {
        Self {
            key: self.key.clone(),
            cache: self.cache.clone(),
        }
    }
}

impl<K> std::ops::Deref for Subject<K> {
    type Target = TokenCache;

    fn deref(&self) -> &TokenCache {
        &self.cache
    }
}

impl<K> fmt::Debug for Subject<K> {
    /// The cache only: a key may be a customer's identifier, kept out of
    /// logs like the store key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Subject").field(&self.cache).finish()
    }
}

/// `quick_cache`'s eviction hook: an evicted subject goes aside (under the
/// shard's lock, so no caller can miss it there) to be saved.
struct Aside<K> {
    aside: Arc<Pending<K>>,
    evictions: Arc<AtomicU64>,
}

impl<K> Clone for Aside<K> {
    fn clone(&self) -> Self {
        Self {
            aside: Arc::clone(&self.aside),
            evictions: Arc::clone(&self.evictions),
        }
    }
}

impl<K: Eq + Hash> Lifecycle<K, TokenCache> for Aside<K> {
    type RequestState = ();

    fn on_evict(&self, (): &mut (), key: K, cache: TokenCache) {
        lock(&self.aside).insert(key, cache);
        self.evictions.fetch_add(1, Ordering::Relaxed);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How a [`Subjects`] is set up; from [`Subjects::builder`].
pub struct SubjectsBuilder<K> {
    factory: Box<Factory<K>>,
    capacity: usize,
    time_to_idle: Option<Duration>,
    clock: Arc<dyn Clock>,
}

impl<K> fmt::Debug for SubjectsBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubjectsBuilder")
            .field("capacity", &self.capacity)
            .field("time_to_idle", &self.time_to_idle)
            .finish_non_exhaustive()
    }
}

impl<K> SubjectsBuilder<K>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
{
    /// How many subjects stay in memory, about (at least 1;
    /// [`DEFAULT_CAPACITY`] by default). The set is sharded, so a shard
    /// may evict a little before the whole set is full.
    #[must_use]
    pub fn capacity(mut self, subjects: usize) -> Self {
        self.capacity = subjects.max(1);
        self
    }

    /// Evicts a subject not asked for within `idle` ([`DEFAULT_TIME_TO_IDLE`]
    /// by default); `None` keeps subjects until capacity evicts them.
    #[must_use]
    pub fn time_to_idle(mut self, idle: impl Into<Option<Duration>>) -> Self {
        self.time_to_idle = idle.into();
        self
    }

    /// The clock idleness is measured on (tests use a
    /// [`ManualClock`](crate::ManualClock)); the system clock by default.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The set, empty.
    #[must_use]
    pub fn build(self) -> Subjects<K> {
        let aside = Arc::new(Mutex::new(HashMap::new()));
        let evictions = Arc::new(AtomicU64::new(0));
        let lifecycle = Aside {
            aside: Arc::clone(&aside),
            evictions: Arc::clone(&evictions),
        };
        let capacity = self.capacity;
        let caches = Cache::with(
            capacity,
            u64::try_from(capacity).unwrap_or(u64::MAX),
            UnitWeighter,
            RandomState::new(),
            lifecycle,
        );
        let epoch = self.clock.now();
        Subjects {
            shared: Arc::new(Shared {
                caches,
                aside,
                factory: self.factory,
                clock: self.clock,
                epoch,
                time_to_idle: self.time_to_idle,
                capacity,
                swept_ms: AtomicU64::new(0),
                evictions,
                flushing: AtomicBool::new(false),
            }),
        }
    }
}

impl<K> Subjects<K>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
{
    /// A set whose subjects' caches `factory` builds, given the key (it
    /// is called once per key while the subject stays in memory, again
    /// after an eviction).
    pub fn builder(
        factory: impl Fn(&K) -> TokenCache + Send + Sync + 'static,
    ) -> SubjectsBuilder<K> {
        SubjectsBuilder {
            factory: Box::new(factory),
            capacity: DEFAULT_CAPACITY,
            time_to_idle: Some(DEFAULT_TIME_TO_IDLE),
            clock: Arc::new(SystemClock),
        }
    }

    /// The cache for `key`: the one in memory, or the one evicted and not
    /// yet saved, or a new one from the factory (which may load the
    /// subject's token from the store).
    pub fn get<Q>(&self, key: &Q) -> Subject<K>
    where
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        K: Borrow<Q>,
    {
        let shared = &*self.shared;
        let now = shared.now_ms();
        let key = key.to_owned();
        let cache = match shared.caches.get_value_or_guard::<K>(&key, None) {
            GuardResult::Value(cache) => cache,
            GuardResult::Guard(guard) => {
                // The guard makes this caller the only one placing `key`.
                let revived = lock(&shared.aside).remove::<K>(&key);
                let cache = revived.unwrap_or_else(|| (shared.factory)(&key));
                let _ = guard.insert(cache.clone());
                self.flush_aside_soon();
                cache
            }
            // No timeout was given: quick_cache never answers this.
            GuardResult::Timeout => unreachable_timeout(),
        };
        cache.touch(stamp(now));
        self.sweep_if_due(now);
        Subject { key, cache }
    }

    /// A valid token for `key`: `self.get(key).token()`.
    ///
    /// # Errors
    /// As [`TokenCache::token`].
    pub async fn token<Q>(&self, key: &Q) -> Result<Arc<AccessToken>, Error>
    where
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        K: Borrow<Q>,
    {
        let subject = self.get(key);
        subject.cache().token().await
    }

    /// How many subjects are in memory (not counting evicted ones waiting
    /// for their save).
    #[must_use]
    pub fn len(&self) -> usize {
        self.shared.caches.len()
    }

    /// Whether no subject is in memory.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.shared.caches.is_empty()
    }

    /// How many evicted subjects wait for their save (or for their last
    /// holder to let them go).
    #[must_use]
    pub fn aside(&self) -> usize {
        lock(&self.shared.aside).len()
    }

    /// Evicts every subject not asked for within the time to idle now
    /// (saving them first, as any eviction); how many were evicted.
    /// [`get`](Self::get) runs it by itself at most twice per idle
    /// period.
    #[allow(clippy::must_use_candidate)] // run for its effect
    pub fn evict_idle(&self) -> usize {
        let shared = &*self.shared;
        let Some(idle) = shared.time_to_idle else {
            return 0;
        };
        let now = shared.now_ms();
        shared.swept_ms.store(now, Ordering::Relaxed);
        let idle = millis(idle);
        let evicted = AtomicU64::new(0);
        shared.caches.retain(|key, cache| {
            let keep = idle_ms(cache.touched(), now) < idle;
            if !keep {
                lock(&shared.aside).insert(key.clone(), cache.clone());
                evicted.fetch_add(1, Ordering::Relaxed);
            }
            keep
        });
        let evicted = evicted.into_inner();
        if evicted > 0 {
            shared.evictions.fetch_add(evicted, Ordering::Relaxed);
            self.flush_aside_soon();
        }
        usize::try_from(evicted).unwrap_or(usize::MAX)
    }

    /// Saves every subject with an unsaved token, once any refresh it has
    /// in flight ended: the evicted ones waiting aside (dropping those
    /// saved that nobody holds), then those in memory. Call it before the
    /// process exits.
    ///
    /// # Errors
    /// The first store error; every subject is tried all the same.
    pub async fn flush(&self) -> Result<(), Error> {
        let mut first = self.shared.flush_aside(false).await;
        let resident: Vec<TokenCache> = self.shared.caches.iter().map(|(_, cache)| cache).collect();
        for cache in resident {
            cache.settled().await;
            if let Err(error) = cache.flush().await {
                first = first.and(Err(error));
            }
        }
        first
    }

    fn sweep_if_due(&self, now: u64) {
        let Some(idle) = self.shared.time_to_idle else {
            return;
        };
        let last = self.shared.swept_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= millis(idle / 2).max(1)
            && self
                .shared
                .swept_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.evict_idle();
        }
    }

    /// Saves the subjects set aside in a Tokio task, one at a time (a
    /// store is never handed thousands of saves at once); without a
    /// runtime, at the next [`flush`](Self::flush).
    fn flush_aside_soon(&self) {
        if lock(&self.shared.aside).is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.shared.flushing.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = Arc::clone(&self.shared);
        runtime.spawn(async move {
            loop {
                let seen = shared.evictions.load(Ordering::Relaxed);
                let failed = shared.flush_aside(true).await.is_err();
                shared.flushing.store(false, Ordering::Release);
                // An eviction during the pass may have found the flag set;
                // after a failure, the next eviction tries again.
                if failed
                    || shared.evictions.load(Ordering::Relaxed) == seen
                    || shared.flushing.swap(true, Ordering::AcqRel)
                {
                    return;
                }
            }
        });
    }
}

impl<K> Shared<K>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
{
    fn now_ms(&self) -> u64 {
        millis(self.clock.now().saturating_duration_since(self.epoch))
    }

    /// One pass over the subjects aside: each is saved, and dropped once
    /// saved if nobody else holds it. With `give_up`, the pass ends at the
    /// first failure (a store that is down fails the rest too: they wait
    /// for the next pass rather than cost a call each).
    async fn flush_aside(&self, give_up: bool) -> Result<(), Error> {
        let batch: Vec<(K, TokenCache)> = lock(&self.aside)
            .iter()
            .map(|(key, cache)| (key.clone(), cache.clone()))
            .collect();
        let mut first = Ok(());
        for (key, cache) in batch {
            // A refresh ahead of expiry may still be saving what it
            // fetched: dropping the cache now would cancel that save.
            cache.settled().await;
            let saved = cache.flush().await;
            let mut aside = lock(&self.aside);
            // Held by the map and this pass only: no caller can use it,
            // and no fetch of its own runs on (one a former holder started
            // stays aside for the next pass).
            let unheld = cache.handles() == 2 && !cache.fetching();
            if saved.is_ok() && unheld && aside.get(&key).is_some_and(|held| held.same(&cache)) {
                aside.remove(&key);
            }
            drop(aside);
            if let Err(error) = saved {
                first = first.and(Err(error));
                if give_up {
                    break;
                }
            }
        }
        first
    }
}

impl<K: Eq + Hash> fmt::Debug for Subjects<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subjects")
            .field("len", &self.shared.caches.len())
            .field("capacity", &self.shared.capacity)
            .field("time_to_idle", &self.shared.time_to_idle)
            .finish_non_exhaustive()
    }
}

#[cold]
fn unreachable_timeout() -> ! {
    unreachable!("quick_cache times out only when given a timeout")
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A last-use stamp of `now_ms`: centiseconds, wrapping every 497 days (a
/// `u32` beside the cache's handle count, where it costs no memory).
#[allow(clippy::cast_possible_truncation)] // wrapping is the point
fn stamp(now_ms: u64) -> u32 {
    (now_ms / 10) as u32
}

/// How long ago, in ms, `stamp` was taken, at `now_ms` (read across one
/// wrap: a subject idle for more than 497 days between two sweeps may be
/// kept until a later one).
fn idle_ms(stamp_then: u32, now_ms: u64) -> u64 {
    u64::from(stamp(now_ms).wrapping_sub(stamp_then)) * 10
}
