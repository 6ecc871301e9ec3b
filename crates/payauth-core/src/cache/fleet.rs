//! The fleet path of a flight, over a [`SharedStore`]: take the stored
//! token if another replica renewed it, else fetch under the store's
//! lease, else wait and look again.
//!
//! - The store is read before every fetch and again once the lease is
//!   held (another replica may have stored a token in between); under the
//!   lease a failing read is tried again twice before it counts as
//!   "nothing stored", so a blip does not make the holder refresh with an
//!   older refresh token than the store's.
//! - The fetch starts from the newest token known, stored or in memory:
//!   a refresh token rotated here but not yet saved (a store blip) is never
//!   traded for the older one in the store.
//! - The holder shares a failed fetch with the others for its failure
//!   backoff ([`SharedStore::share_failure`]); waiting replicas answer with
//!   it instead of each trying in turn, as callers in one process would.
//!   An `invalid_grant` names the refresh token it refused (by digest): a
//!   replica holding another one (a newer one it has not saved yet) does
//!   not drop it for a refusal of someone else's, and a holder that had no
//!   refresh token at all (a fresh replica on an emptied store) shares no
//!   `invalid_grant`: the provider refused nothing the others hold.
//! - A holder whose save fails tries it again at once, a few times, under
//!   the lease (a blip). If it still fails and the token carries a refresh
//!   token, the lease is left to expire instead of released: the fleet
//!   waits for this replica's later save rather than refresh with the
//!   refresh token the provider just rotated away.
//! - Otherwise a lease is released however the flight ends: at its end,
//!   or in a task when the flight is cut short (fetch timeout,
//!   cancellation); a lease that cannot be released expires by itself.
//! - A lease request that does not answer in time is not taken for a
//!   store that is down: the lease may have been granted, so this replica
//!   does not fetch beside its holder.
//! - **After the store forgets** (a Redis without persistence restarts
//!   empty, a database fails over to a copy behind): the replicas'
//!   memories converge on the newest refresh token before anyone refreshes.
//!   A replica that finds the store holding nothing where it knew its own
//!   token was, or a token it saw there before its own (an older one
//!   written back by another replica), writes its own back with a
//!   compare-and-set on what it found; so does each replica holding a
//!   refresh token, looking at the store every third of the
//!   [converge wait](SharedStore::converge_wait): on a store with a
//!   [forget mark](SharedStore::forget_mark), one task per store instance
//!   reads the mark (one store call, however many caches) and the caches
//!   look at their own keys only when it changed; without one, a task per
//!   cache reads its key (see [`marked`]). A lease holder that found the
//!   store forgetful drops the mark ([`SharedStore::mark_forgotten`]) and
//!   waits that long (bounded by a quarter of the fetch
//!   timeout) before it refreshes, then reads again and refreshes from the
//!   newest token the store holds, or takes it up if it is still fresh.
//!   "Older" is what a replica saw the store hold before, never a
//!   comparison of issue times: those come from each machine's clock, and
//!   a new login from a machine whose clock is behind must win. So clocks
//!   cost nothing here; what it costs is that a replica recognises only
//!   the last 8 tokens it saw in the store: one that slept through more
//!   rotations than that (never looked while its token lived) cannot tell
//!   its own token from a login, and writes nothing back over it.
//!   A store that dropped a token because the provider refused its
//!   refresh token (a compare-on-clear after `invalid_grant`) did not
//!   forget it: while the fleet shares that refusal, no replica writes the
//!   token back. A replica that looks only after the refusal's backoff
//!   ended may still write it back (nothing tells it apart from a store
//!   that forgot): at most one more refused request, and never over a
//!   token stored since (the write lands only over nothing).
//!   A replica with no refresh token (started after the store forgot)
//!   writes nothing back and refreshes from nothing only as before: it
//!   shares no `invalid_grant`.
//! - When the lease cannot be taken because the store is down, this
//!   replica fetches on its own with a full grant (client credentials, a
//!   login) rather than fail, but never sends a refresh token without the
//!   lease: another replica may have rotated it meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::persist::{Known, forgets, own_stored};
use super::{Inner, Outcome};
use crate::error::{Error, ErrorKind};
use crate::store::{Lease, SaveIf, SharedStore, StoredFailure, StoredToken};
use crate::token::AccessToken;

/// The shortest and longest wait between looks at the store.
const POLL_RANGE: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(1));
/// The longest wait for another replica's fetch a store may ask for.
const MAX_WAIT: Duration = Duration::from_secs(600);
/// How often the holder reads the store under the lease before it gives
/// up on it.
const LEASED_READS: usize = 3;
/// How often a holder saves a token again at once after its save failed.
const RESAVES: usize = 3;
/// How long a lease release may take before the lease is left to expire.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest converge wait a store may ask for.
const MAX_CONVERGE_WAIT: Duration = Duration::from_secs(60);

/// A shared store with its timings, read and clamped once.
pub(super) struct Fleet {
    store: Arc<dyn SharedStore>,
    poll_interval: Duration,
    max_wait: Duration,
    /// How long a holder that found the store forgetful waits before it
    /// refreshes; zero: no wait and no watch.
    converge_wait: Duration,
    /// Whether the watch task runs (without a forget mark), or this cache
    /// is registered with its store's watch (with one).
    watching: AtomicBool,
    /// Whether the store has a [forget mark](SharedStore::forget_mark):
    /// one watch per store instead of one per cache.
    marked: bool,
}

impl Fleet {
    pub(super) fn new(store: Arc<dyn SharedStore>) -> Self {
        let marked = store.forget_mark().is_some();
        Self {
            poll_interval: store.poll_interval().clamp(POLL_RANGE.0, POLL_RANGE.1),
            max_wait: store.max_wait().min(MAX_WAIT),
            converge_wait: store.converge_wait().min(MAX_CONVERGE_WAIT),
            watching: AtomicBool::new(false),
            marked,
            store,
        }
    }
}

impl Inner {
    pub(super) async fn fetch_shared(&self, fleet: &Fleet, key: &str) -> Outcome {
        let started = tokio::time::Instant::now();
        let mut waited = false;
        self.lock().saves.recovering = false;
        loop {
            let previous = match self.adopt_stored(1, fleet.poll_interval).await {
                Ok(fresh) => return Ok(fresh),
                Err(start) => {
                    self.write_back_forgotten().await;
                    start.previous
                }
            };
            let Ok(lease) =
                tokio::time::timeout(self.store_bound(), fleet.store.try_lease(key)).await
            else {
                // No answer is not "down": the lease may have been granted,
                // so do not fetch beside its holder.
                return Err(self.no_answer());
            };
            match lease {
                Ok(Some(lease)) => {
                    if waited {
                        self.telemetry.lease_taken_over();
                    }
                    return self.fetch_leased(fleet, key, LeaseGuard(Some(lease))).await;
                }
                Ok(None) => {
                    if let Some(error) = self.shared_failure(fleet, key).await {
                        return Err(error);
                    }
                    if started.elapsed() >= fleet.max_wait {
                        return Err(Error::new(ErrorKind::Unavailable).with_description(format!(
                            "another replica held the fetch lease for {} s",
                            fleet.max_wait.as_secs()
                        )));
                    }
                    self.telemetry.lease_waited();
                    waited = true;
                    tokio::time::sleep(fleet.poll_interval).await;
                }
                Err(error) => return self.fetch_unleased(previous, error).await,
            }
        }
    }

    /// When the store cannot grant the lease (it is down): fetch on our
    /// own with a full grant, but never send a refresh token without the
    /// lease, since another replica may have rotated it meanwhile and a
    /// rotated-away refresh token can cost the customer their login; then
    /// the store's error is the answer, under the backoff, and a still
    /// valid token keeps being served.
    async fn fetch_unleased(&self, previous: Option<Arc<AccessToken>>, error: Error) -> Outcome {
        if previous
            .as_ref()
            .is_some_and(|p| p.refresh_token().is_some())
        {
            tracing::warn!(source = self.source.name(), %error, "fleet lease unavailable; not refreshing without it");
            return Err(error);
        }
        tracing::warn!(source = self.source.name(), %error, "fleet lease unavailable; fetching without it");
        let token = self.fetch(previous).await?;
        self.store_fetched(token, None, 0, Duration::ZERO)
            .await
            .outcome
    }

    /// Under the lease: look at the store once more, then fetch, save
    /// through the lease and release it.
    async fn fetch_leased(&self, fleet: &Fleet, key: &str, lease: LeaseGuard) -> Outcome {
        let mut read = self.adopt_stored(LEASED_READS, fleet.poll_interval).await;
        if read.is_err() {
            self.write_back_forgotten().await;
            if std::mem::take(&mut self.lock().saves.recovering) {
                read = self.converge(fleet).await;
            }
        }
        let (outcome, settled) = match read {
            Ok(fresh) => (Ok(fresh), true),
            Err(start) => match (start.unread, self.shared_failure(fleet, key).await) {
                (_, Some(error)) => (Err(error), true),
                // The store cannot be read: never refresh blind with the
                // refresh token in memory (the store may hold a newer one).
                (Some(error), None)
                    if start
                        .previous
                        .as_ref()
                        .is_some_and(|p| p.refresh_token().is_some()) =>
                {
                    (Err(error), true)
                }
                (_, None) => {
                    self.fetch_as_holder(fleet, key, start.previous, &lease)
                        .await
                }
            },
        };
        if settled {
            lease.release(self.source.name()).await;
        } else {
            lease.abandon();
        }
        outcome
    }

    /// The holder's fetch and save, and whether the fleet may move on. A
    /// save that failed is tried again at once, a few times, with the lease
    /// still held (a blip); if it still fails and the token carries a
    /// refresh token, the lease is left to expire rather than released, so
    /// the fleet waits for this replica's later save instead of refreshing
    /// with the refresh token the provider just rotated away.
    async fn fetch_as_holder(
        &self,
        fleet: &Fleet,
        key: &str,
        previous: Option<Arc<AccessToken>>,
        lease: &LeaseGuard,
    ) -> (Outcome, bool) {
        if lease.get().is_some_and(|lease| !lease.held()) {
            tracing::warn!(
                source = self.source.name(),
                "fleet lease ran out before the fetch began; not fetching"
            );
            return (
                Err(Error::new(ErrorKind::Unavailable).with_description(
                    "the fleet lease ran out before the fetch began (the token store was slow); another replica may be fetching",
                )),
                true,
            );
        }
        let refreshed_with = previous.as_ref().and_then(|p| p.refresh_token()).cloned();
        let token = match self.fetch(previous).await {
            Ok(token) => token,
            Err(error) => {
                if error.kind() == ErrorKind::InvalidGrant && refreshed_with.is_none() {
                    // Nothing was refused that another replica holds (this
                    // one had no refresh token): no verdict on theirs.
                    tracing::debug!(
                        source = self.source.name(),
                        "invalid_grant without a refresh token; not shared"
                    );
                } else {
                    self.share_failure(fleet, key, &error, refreshed_with.as_ref())
                        .await;
                }
                return (Err(error), true);
            }
        };
        let landed = self
            .store_fetched(token, lease.get(), RESAVES, fleet.poll_interval)
            .await;
        if landed.refused
            && let Err(error) = &landed.outcome
        {
            self.share_failure(fleet, key, error, None).await;
        }
        (landed.outcome, landed.settled)
    }

    /// Under the lease, after this flight found the store forgetful: waits
    /// the converge wait (bounded by a quarter of the fetch timeout), so
    /// that every replica holding a newer token has written it back, then
    /// reads again: the newest token the store holds, taken up if fresh.
    async fn converge(&self, fleet: &Fleet) -> Result<Arc<AccessToken>, super::persist::Start> {
        let wait = fleet.converge_wait.min(self.settings.fetch_timeout / 4);
        tracing::info!(
            source = self.source.name(),
            wait_ms = wait.as_millis(),
            "the token store forgot the token; waiting for the fleet's newest before refreshing"
        );
        if fleet.marked
            && let Err(error) = self.bounded(fleet.store.mark_forgotten()).await
        {
            tracing::warn!(source = self.source.name(), %error, "the store's forget mark not changed");
        }
        tokio::time::sleep(wait).await;
        let read = self.adopt_stored(LEASED_READS, fleet.poll_interval).await;
        if read.is_err() {
            self.write_back_forgotten().await;
        }
        self.lock().saves.recovering = false;
        read
    }

    /// Writes back the token a read found the store had forgotten, if
    /// any: only over nothing or an older token.
    async fn write_back_forgotten(&self) {
        let forgotten = self.lock().saves.forgotten.take();
        if let Some((own, found)) = forgotten {
            self.write_back(&own, &found).await;
        }
    }

    /// Writes `own` (this replica's token, which the store forgot) back
    /// over what the store was `found` holding (nothing, or an older
    /// token), and only over that: as it is while it is served, else stored
    /// expired, for its refresh token.
    async fn write_back(&self, own: &Arc<AccessToken>, found: &Known) {
        if self.refused_by_the_fleet(own).await {
            tracing::debug!(
                source = self.source.name(),
                "the token store dropped a refresh token the provider refused; not written back"
            );
            return;
        }
        let served = self
            .current
            .load()
            .as_ref()
            .is_some_and(|token| Arc::ptr_eq(token, own));
        let record = if served {
            StoredToken::from_token(own)
        } else {
            self.expired(own)
        };
        let older = match found {
            Known::Token(older) => Some(older),
            _ => None,
        };
        let condition = SaveIf::Holds {
            access_tokens: older.as_slice(),
            or_nothing: true,
        };
        match self.save_if(&record, condition).await {
            Ok(true) => tracing::info!(
                source = self.source.name(),
                "the token store forgot this replica's token; written back"
            ),
            Ok(false) => tracing::debug!(
                source = self.source.name(),
                "the token store forgot this replica's token, and another was written since"
            ),
            Err(error) => {
                tracing::warn!(source = self.source.name(), %error, "forgotten token not written back");
            }
        }
    }

    /// Whether the fleet shares an `invalid_grant` of `own`'s refresh
    /// token: the store dropped it because the provider refused it (a
    /// compare-on-clear), not because it forgot.
    async fn refused_by_the_fleet(&self, own: &AccessToken) -> bool {
        let (Some((fleet, key)), Some(refresh)) = (self.fleet(), own.refresh_token()) else {
            return false;
        };
        self.bounded(fleet.store.shared_failure(key))
            .await
            .ok()
            .flatten()
            .is_some_and(|shared| {
                shared
                    .to_error()
                    .is_some_and(|e| e.kind() == ErrorKind::InvalidGrant)
                    && shared.refuses(refresh)
            })
    }

    /// Starts the watch of a fleet cache, once (again if its runtime shut
    /// down under it): every third of the converge wait, while no flight
    /// runs, it looks whether the store forgot the token this replica
    /// holds, and writes it back. It ends with the cache. On a store with
    /// a forget mark the cache only registers with the store's one watch
    /// (see [`marked::watch`]), which makes it look when the mark changed.
    pub(super) fn watch(self: &Arc<Self>, runtime: &tokio::runtime::Handle) {
        let Some((fleet, _)) = self.fleet() else {
            return;
        };
        if fleet.converge_wait.is_zero() {
            return;
        }
        let every = fleet.converge_wait / 3;
        if fleet.marked {
            let first = !fleet.watching.swap(true, Ordering::AcqRel);
            marked::watch(
                &fleet.store,
                first.then(|| Arc::downgrade(self)),
                every,
                runtime,
            );
            return;
        }
        if fleet.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        let watch = Watching(Arc::downgrade(self));
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = watch.0.upgrade() else {
                    return;
                };
                let _ = inner.look_for_forgetting().await;
            }
        });
    }

    /// One look of the watch: whether the store still holds this
    /// replica's token (or a newer one); if it forgot, writes it back. The
    /// read leaves what the cache knows of the store as it was: the writes
    /// of a flight compare against what the flight saw. `false` when the
    /// store could not be read (the look is to be made again).
    async fn look_for_forgetting(&self) -> bool {
        let Some(persistence) = self.persistence.as_ref() else {
            return true;
        };
        let own = {
            let state = self.lock();
            if state.flight.is_some() {
                return true;
            }
            own_stored(&state)
        };
        let Some(own) = own else {
            return true;
        };
        let Ok(stored) = self.bounded(persistence.store.load(&persistence.key)).await else {
            return false;
        };
        if forgets(&self.lock().saves, stored.as_ref(), &own) {
            self.write_back(&own, &Known::of(stored.as_ref())).await;
        }
        true
    }

    /// A failure another replica shared and whose time has not run out,
    /// taken up as this replica's own (a refusal drops what it refuses);
    /// an `invalid_grant` of a refresh token other than the one this
    /// replica holds is ignored: no verdict on it.
    async fn shared_failure(&self, fleet: &Fleet, key: &str) -> Option<Error> {
        match self.bounded(fleet.store.shared_failure(key)).await {
            Ok(shared) => {
                let shared = shared?;
                let error = shared.to_error()?;
                let mine = self
                    .lock()
                    .last
                    .as_ref()
                    .and_then(|t| t.refresh_token().cloned());
                if error.kind() == ErrorKind::InvalidGrant
                    && let Some(mine) = mine
                    && !shared.refuses(&mine)
                {
                    tracing::debug!(
                        source = self.source.name(),
                        "a shared invalid_grant for another refresh token; ignored"
                    );
                    return None;
                }
                tracing::debug!(source = self.source.name(), %error, "fetch failure shared by another replica");
                self.refused(&error);
                Some(error)
            }
            Err(error) => {
                tracing::debug!(source = self.source.name(), %error, "shared failure unreadable; ignored");
                None
            }
        }
    }

    /// Shares this holder's failed fetch for the backoff it is about to
    /// start, naming the refresh token an `invalid_grant` refused.
    async fn share_failure(
        &self,
        fleet: &Fleet,
        key: &str,
        error: &Error,
        refreshed_with: Option<&crate::secret::Secret>,
    ) {
        let failures = self.lock().failures.saturating_add(1);
        let ttl = self.backoff(failures, error.retry_after());
        let mut failure = StoredFailure::from_error(error);
        if error.kind() == ErrorKind::InvalidGrant
            && let Some(refused) = refreshed_with
        {
            failure = failure.refusing(refused);
        }
        if let Err(store_error) = self
            .bounded(fleet.store.share_failure(key, &failure, ttl))
            .await
        {
            tracing::warn!(source = self.source.name(), error = %store_error, "fetch failure not shared with the fleet");
        }
    }
}

/// The watch's hold on its cache; clears the flag however the task ends
/// (its runtime shut down), so the next flight starts it again.
struct Watching(Weak<Inner>);

impl Drop for Watching {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade()
            && let Some((fleet, _)) = inner.fleet()
        {
            fleet.watching.store(false, Ordering::Release);
        }
    }
}

/// A held lease, released however the flight ends.
struct LeaseGuard(Option<Box<dyn Lease>>);

impl LeaseGuard {
    fn get(&self) -> Option<&dyn Lease> {
        self.0.as_deref()
    }

    /// Leaves the lease to expire by itself (its heartbeat stops).
    fn abandon(mut self) {
        drop(self.0.take());
    }

    /// Gives the lease back, logging (not failing) when that is
    /// impossible: an unreleased lease expires by itself.
    async fn release(mut self, source: &str) {
        let Some(lease) = self.0.take() else {
            return;
        };
        match tokio::time::timeout(RELEASE_TIMEOUT, lease.release()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(source, %error, "fleet lease not released; it will expire");
            }
            Err(_) => tracing::warn!(source, "fleet lease release timed out; it will expire"),
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        // The flight was cut short: release in a task, so the fleet does
        // not wait for the lease to expire.
        if let Some(lease) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = tokio::time::timeout(RELEASE_TIMEOUT, lease.release()).await;
            });
        }
    }
}

/// The watch of a store with a [forget mark](SharedStore::forget_mark):
/// one task per store instance (one `Arc`), not one per cache. Every third
/// of the converge wait it reads the mark (one store call, however many
/// caches use the store); when the mark changed since its last read (and
/// once when the task starts: it knows no mark yet), every live cache
/// registered with it makes its look once ([`Inner::look_for_forgetting`]),
/// a few at a time; a look that could not read the store is made again the
/// next period. Caches register a [`Weak`] (the watch keeps none alive);
/// dead ones are dropped each period, and the task ends when none is left
/// or its runtime shuts down, and starts again with the next registration
/// or flight.
mod marked {
    use std::collections::HashMap;
    use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
    use std::time::Duration;

    use super::Inner;
    use crate::store::SharedStore;

    /// The caches registered with a watch, as it holds them.
    type Caches = Vec<Weak<Inner>>;

    /// How many caches look at the store at once after the mark changed.
    const LOOKS_AT_ONCE: usize = 32;

    /// The watches, by the address of their store.
    static WATCHES: LazyLock<Mutex<HashMap<usize, Watch>>> = LazyLock::new(Mutex::default);

    /// One store's watch: the caches registered with it, and whether its
    /// task runs.
    struct Watch {
        store: Weak<dyn SharedStore>,
        caches: Vec<Weak<Inner>>,
        running: bool,
    }

    fn id(store: &Arc<dyn SharedStore>) -> usize {
        Arc::as_ptr(store).cast::<()>() as usize
    }

    fn watches() -> std::sync::MutexGuard<'static, HashMap<usize, Watch>> {
        WATCHES.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `cache` (if given) with the watch of `store`, and starts
    /// its task on `runtime` unless it runs.
    pub(super) fn watch(
        store: &Arc<dyn SharedStore>,
        cache: Option<Weak<Inner>>,
        every: Duration,
        runtime: &tokio::runtime::Handle,
    ) {
        let id = id(store);
        let mut watches = watches();
        let watch = watches.entry(id).or_insert_with(|| Watch {
            store: Arc::downgrade(store),
            caches: Vec::new(),
            running: false,
        });
        if !watch.store.ptr_eq(&Arc::downgrade(store)) {
            // A dead store's watch at a reused address.
            *watch = Watch {
                store: Arc::downgrade(store),
                caches: Vec::new(),
                running: false,
            };
        }
        watch.caches.extend(cache);
        if watch.running {
            return;
        }
        watch.running = true;
        let running = Running {
            id,
            store: Arc::downgrade(store),
        };
        runtime.spawn(running.run(every));
    }

    /// The task of one watch; marks it stopped however it ends.
    struct Running {
        id: usize,
        store: Weak<dyn SharedStore>,
    }

    impl Running {
        async fn run(self, every: Duration) {
            let mut seen: Option<String> = None;
            let mut again: Vec<Weak<Inner>> = Vec::new();
            loop {
                tokio::time::sleep(every).await;
                let Some((store, caches)) = self.live() else {
                    return;
                };
                let Some(read) = store.forget_mark() else {
                    return;
                };
                let mark = tokio::time::timeout(every.max(Duration::from_secs(1)), read).await;
                drop(store);
                let looks = match mark {
                    Ok(Ok(mark)) if seen.as_ref() != Some(&mark) => {
                        seen = Some(mark);
                        caches
                    }
                    _ => std::mem::take(&mut again),
                };
                if !looks.is_empty() {
                    again = look(looks).await;
                }
            }
        }

        /// The store and its live caches; `None` (the watch removed) when
        /// either is gone.
        fn live(&self) -> Option<(Arc<dyn SharedStore>, Caches)> {
            let mut watches = watches();
            let watch = watches.get_mut(&self.id)?;
            if !watch.store.ptr_eq(&self.store) {
                return None;
            }
            watch.caches.retain(|cache| cache.strong_count() > 0);
            let store = self.store.upgrade();
            match store {
                Some(store) if !watch.caches.is_empty() => Some((store, watch.caches.clone())),
                _ => {
                    watches.remove(&self.id);
                    None
                }
            }
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            if let Some(watch) = watches().get_mut(&self.id)
                && watch.store.ptr_eq(&self.store)
            {
                watch.running = false;
            }
        }
    }

    /// Every cache of `caches` still alive looks once, a few at a time;
    /// those whose look could not read the store.
    async fn look(caches: Vec<Weak<Inner>>) -> Vec<Weak<Inner>> {
        let mut again = Vec::new();
        for chunk in caches.chunks(LOOKS_AT_ONCE) {
            let mut looks = tokio::task::JoinSet::new();
            for cache in chunk {
                let cache = cache.clone();
                looks.spawn(async move {
                    let looked = match cache.upgrade() {
                        Some(inner) => inner.look_for_forgetting().await,
                        None => true,
                    };
                    (!looked).then_some(cache)
                });
            }
            while let Some(looked) = looks.join_next().await {
                again.extend(looked.ok().flatten());
            }
        }
        again
    }
}
