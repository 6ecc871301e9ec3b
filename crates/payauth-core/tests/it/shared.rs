//! `TokenCache` over a [`SharedStore`]: several caches (replicas) sharing
//! one store make one fetch per expiry and pass rotated refresh tokens on.
//! The store here is an in-memory stand-in; `payauth-redis` runs the same
//! protocol against a real Redis.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use payauth_core::{
    AccessToken, BoxFuture, Error, ErrorKind, Issued, Lease, ManualClock, MemoryStore, SaveIf,
    Secret, SharedStore, StoredFailure, StoredToken, TokenCache, TokenSource, TokenStore,
};
use tokio::sync::Semaphore;

const LIFETIME: Duration = Duration::from_secs(100);

/// An upstream shared by every replica: tokens `t<n>` with refresh tokens
/// `r<n>`; it records the refresh token each fetch started from.
struct Upstream {
    clock: Arc<ManualClock>,
    calls: AtomicUsize,
    gate: Option<Arc<Semaphore>>,
    seen: Mutex<Vec<Option<String>>>,
    /// Answer with this refusal instead of a token.
    refuse: Mutex<Option<ErrorKind>>,
    /// The lifetime of the tokens it issues.
    lifetime: Mutex<Duration>,
}

impl Upstream {
    fn new(clock: &Arc<ManualClock>, gate: Option<Arc<Semaphore>>) -> Arc<Self> {
        Arc::new(Self {
            clock: Arc::clone(clock),
            calls: AtomicUsize::new(0),
            gate,
            seen: Mutex::new(Vec::new()),
            refuse: Mutex::new(None),
            lifetime: Mutex::new(LIFETIME),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl TokenSource for Upstream {
    fn fetch<'a>(
        &'a self,
        previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            self.seen.lock().unwrap().push(
                previous
                    .and_then(|p| p.refresh_token())
                    .map(|r| r.expose_secret().to_owned()),
            );
            if let Some(gate) = &self.gate {
                gate.acquire().await.expect("gate open").forget();
            }
            if let Some(kind) = *self.refuse.lock().unwrap() {
                return Err(Error::new(kind).with_status(401));
            }
            Ok(AccessToken::new(
                Secret::new(format!("t{n}")),
                "Bearer",
                Issued::now(self.clock.as_ref()),
                *self.lifetime.lock().unwrap(),
            )?
            .with_refresh_token(Some(Secret::new(format!("r{n}")))))
        })
    }
}

/// An in-memory shared store: a lease with an owner and a version bumped by
/// every save.
#[derive(Default)]
struct Fleet {
    tokens: Arc<MemoryStore>,
    lease: Arc<Mutex<Option<u64>>>,
    version: Arc<AtomicU64>,
    next_owner: AtomicU64,
    lease_fails: AtomicBool,
    leases_taken: AtomicUsize,
    max_wait: Option<Duration>,
    /// The next leased save fails in transport (the write never lands).
    blip: Arc<AtomicBool>,
    /// Every write fails in transport.
    writes_fail: Arc<AtomicBool>,
    /// `try_lease` never answers.
    lease_hangs: AtomicBool,
    /// The next this many loads fail in transport.
    load_fails: AtomicUsize,
    /// The shared failure and when it expires.
    failure: Mutex<Option<(StoredFailure, tokio::time::Instant)>>,
    /// When a lease taken through `try_lease` expires if never released
    /// (one set by hand never does).
    lease_until: Mutex<Option<tokio::time::Instant>>,
    /// Leases taken report they are no longer known to be held (their
    /// store calls outlasted their TTL).
    leases_run_out: Arc<AtomicBool>,
    /// The store's forget mark; `None`: it has none.
    mark: Mutex<Option<u64>>,
    /// How often the forget mark was read.
    mark_reads: AtomicUsize,
    /// How often a token was loaded.
    loads: AtomicUsize,
}

impl Fleet {
    /// A store with a forget mark.
    fn marked() -> Self {
        Self {
            mark: Mutex::new(Some(0)),
            ..Self::default()
        }
    }

    /// Forgets every token of `keys`, as a restart without persistence
    /// does, and with it its forget mark.
    async fn forget(&self, keys: impl IntoIterator<Item = String>) {
        for key in keys {
            self.tokens.clear(&key, None).await.unwrap();
        }
        if let Some(mark) = self.mark.lock().unwrap().as_mut() {
            *mark += 1;
        }
    }
}

/// How long a lease lives unreleased.
const LEASE_TTL: Duration = Duration::from_secs(2);

struct FleetLease {
    owner: u64,
    seen_version: u64,
    lease: Arc<Mutex<Option<u64>>>,
    version: Arc<AtomicU64>,
    tokens: Arc<MemoryStore>,
    blip: Arc<AtomicBool>,
    writes_fail: Arc<AtomicBool>,
    run_out: Arc<AtomicBool>,
}

fn transport_error() -> Error {
    Error::new(ErrorKind::Store).with_description("connection reset")
}

impl TokenStore for Fleet {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        let failing = self
            .load_fails
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Box::pin(async { Err(transport_error()) });
        }
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.tokens.load(key)
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
    ) -> BoxFuture<'a, Result<(), Error>> {
        if self.writes_fail.load(Ordering::SeqCst) {
            return Box::pin(async { Err(transport_error()) });
        }
        self.version.fetch_add(1, Ordering::SeqCst);
        self.tokens.save(key, token)
    }

    fn clear<'a>(
        &'a self,
        key: &'a str,
        if_holds: Option<&'a Secret>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.tokens.clear(key, if_holds)
    }

    fn save_if<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
        condition: SaveIf<'a>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        if self.writes_fail.load(Ordering::SeqCst) {
            return Box::pin(async { Err(transport_error()) });
        }
        self.version.fetch_add(1, Ordering::SeqCst);
        self.tokens.save_if(key, token, condition)
    }
}

impl SharedStore for Fleet {
    fn try_lease<'a>(
        &'a self,
        _key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Box<dyn Lease>>, Error>> {
        Box::pin(async move {
            if self.lease_hangs.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if self.lease_fails.load(Ordering::SeqCst) {
                return Err(Error::new(ErrorKind::Store).with_description("store down"));
            }
            let mut lease = self.lease.lock().unwrap();
            let mut until = self.lease_until.lock().unwrap();
            let now = tokio::time::Instant::now();
            if lease.is_some() && until.is_none_or(|until| now < until) {
                return Ok(None);
            }
            let owner = self.next_owner.fetch_add(1, Ordering::SeqCst);
            *lease = Some(owner);
            *until = Some(now + LEASE_TTL);
            self.leases_taken.fetch_add(1, Ordering::SeqCst);
            Ok(Some(Box::new(FleetLease {
                owner,
                seen_version: self.version.load(Ordering::SeqCst),
                lease: Arc::clone(&self.lease),
                version: Arc::clone(&self.version),
                tokens: Arc::clone(&self.tokens),
                blip: Arc::clone(&self.blip),
                writes_fail: Arc::clone(&self.writes_fail),
                run_out: Arc::clone(&self.leases_run_out),
            }) as Box<dyn Lease>))
        })
    }

    fn share_failure<'a>(
        &'a self,
        _key: &'a str,
        failure: &'a StoredFailure,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        *self.failure.lock().unwrap() = Some((failure.clone(), tokio::time::Instant::now() + ttl));
        Box::pin(async { Ok(()) })
    }

    fn shared_failure<'a>(
        &'a self,
        _key: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredFailure>, Error>> {
        let failure = self.failure.lock().unwrap().clone();
        Box::pin(async move {
            Ok(failure
                .filter(|(_, until)| tokio::time::Instant::now() < *until)
                .map(|(failure, _)| failure))
        })
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn max_wait(&self) -> Duration {
        self.max_wait.unwrap_or(Duration::from_secs(60))
    }

    fn forget_mark(&self) -> Option<BoxFuture<'_, Result<String, Error>>> {
        let mark = (*self.mark.lock().unwrap())?;
        Some(Box::pin(async move {
            self.mark_reads.fetch_add(1, Ordering::SeqCst);
            Ok(mark.to_string())
        }))
    }

    fn mark_forgotten(&self) -> BoxFuture<'_, Result<(), Error>> {
        if let Some(mark) = self.mark.lock().unwrap().as_mut() {
            *mark += 1;
        }
        Box::pin(async { Ok(()) })
    }
}

impl Lease for FleetLease {
    fn held(&self) -> bool {
        !self.run_out.load(Ordering::SeqCst)
    }

    fn save<'a>(&'a self, token: &'a StoredToken) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            if self.blip.swap(false, Ordering::SeqCst) || self.writes_fail.load(Ordering::SeqCst) {
                return Err(transport_error());
            }
            if *self.lease.lock().unwrap() != Some(self.owner)
                || self.version.load(Ordering::SeqCst) != self.seen_version
            {
                return Err(Error::new(ErrorKind::Store).with_description("lease lost"));
            }
            self.version.fetch_add(1, Ordering::SeqCst);
            self.tokens.save("k", token).await
        })
    }

    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>> {
        Box::pin(async move {
            let mut lease = self.lease.lock().unwrap();
            if *lease == Some(self.owner) {
                *lease = None;
            }
            Ok(())
        })
    }
}

fn replica(upstream: &Arc<Upstream>, fleet: &Arc<Fleet>, clock: &Arc<ManualClock>) -> TokenCache {
    replica_builder(upstream, fleet, clock).build()
}

fn replica_builder(
    upstream: &Arc<Upstream>,
    fleet: &Arc<Fleet>,
    clock: &Arc<ManualClock>,
) -> payauth_core::TokenCacheBuilder {
    TokenCache::builder(Arc::clone(upstream))
        .clock(Arc::clone(clock) as _)
        .shared_store(Arc::clone(fleet) as Arc<dyn SharedStore>, "k")
        .refresh_margin(Duration::from_secs(30))
        .failure_backoff(Duration::from_secs(1))
        .jitter(0.0)
}

fn value(token: &AccessToken) -> String {
    token.secret().expose_secret().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_a_store_make_one_fetch_per_expiry() {
    let clock = Arc::new(ManualClock::new());
    let gate = Arc::new(Semaphore::new(0));
    let upstream = Upstream::new(&clock, Some(Arc::clone(&gate)));
    let fleet = Arc::new(Fleet::default());
    let replicas: Vec<_> = (0..4).map(|_| replica(&upstream, &fleet, &clock)).collect();
    for round in 1..=3 {
        let callers: Vec<_> = replicas
            .iter()
            .flat_map(|cache| (0..50).map(move |_| cache.clone()))
            .map(|cache| tokio::spawn(async move { cache.token().await.map(|t| value(&t)) }))
            .collect();
        while upstream.calls() < round {
            tokio::task::yield_now().await;
        }
        // Every other replica is now waiting on the lease holder.
        tokio::time::sleep(Duration::from_millis(20)).await;
        gate.add_permits(1);
        for caller in callers {
            assert_eq!(caller.await.unwrap().unwrap(), format!("t{round}"));
        }
        assert_eq!(upstream.calls(), round, "one fetch in round {round}");
        clock.advance(LIFETIME);
    }
}

#[tokio::test]
async fn a_refresh_token_rotated_by_one_replica_feeds_the_next_fetch_of_another() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    let a = replica(&upstream, &fleet, &clock);
    let b = replica(&upstream, &fleet, &clock);
    assert_eq!(value(&a.token().await.unwrap()), "t1");
    clock.advance(LIFETIME);
    assert_eq!(value(&b.token().await.unwrap()), "t2");
    clock.advance(LIFETIME);
    assert_eq!(value(&a.token().await.unwrap()), "t3");
    assert_eq!(
        *upstream.seen.lock().unwrap(),
        [None, Some("r1".to_owned()), Some("r2".to_owned())]
    );
}

#[tokio::test]
async fn a_replica_adopts_a_fresh_token_another_stored_without_a_lease() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    replica(&upstream, &fleet, &clock).token().await.unwrap();
    let leases = fleet.leases_taken.load(Ordering::SeqCst);
    let late = replica(&upstream, &fleet, &clock);
    assert_eq!(value(&late.token().await.unwrap()), "t1");
    assert_eq!(fleet.leases_taken.load(Ordering::SeqCst), leases);
    assert_eq!(upstream.calls(), 1);
}

#[tokio::test]
async fn the_lease_is_released_before_the_fetch_returns() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    replica(&upstream, &fleet, &clock).token().await.unwrap();
    assert!(
        fleet.lease.lock().unwrap().is_none(),
        "released at once, not left to a task or to expiry"
    );
}

#[tokio::test]
async fn when_the_lease_cannot_be_taken_a_replica_fetches_on_its_own() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    fleet.lease_fails.store(true, Ordering::SeqCst);
    let cache = replica(&upstream, &fleet, &clock);
    assert_eq!(value(&cache.token().await.unwrap()), "t1");
    // Saved through the plain store path instead.
    assert!(fleet.tokens.load("k").await.unwrap().is_some());
}

#[tokio::test]
async fn a_token_rejected_by_the_api_is_not_taken_back_from_the_store() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    let cache = replica(&upstream, &fleet, &clock);
    let first = cache.token().await.unwrap();
    assert!(cache.invalidate(&first));
    assert_eq!(value(&cache.token().await.unwrap()), "t2");
    assert_eq!(upstream.calls(), 2);
}

#[tokio::test]
async fn a_lease_held_past_the_longest_wait_ends_in_unavailable() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet {
        max_wait: Some(Duration::from_millis(30)),
        ..Fleet::default()
    });
    *fleet.lease.lock().unwrap() = Some(u64::MAX); // held by a stuck replica
    let error = replica(&upstream, &fleet, &clock)
        .token()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(upstream.calls(), 0);
}

#[tokio::test]
async fn a_save_refused_by_a_lost_lease_is_saved_unless_the_store_holds_a_newer_token() {
    let clock = Arc::new(ManualClock::new());
    let gate = Arc::new(Semaphore::new(0));
    let upstream = Upstream::new(&clock, Some(Arc::clone(&gate)));
    let fleet = Arc::new(Fleet::default());
    let cache = replica(&upstream, &fleet, &clock);
    let fetch = || {
        let cache = cache.clone();
        tokio::spawn(async move { cache.token().await })
    };
    let waiting = fetch();
    while upstream.calls() < 1 {
        tokio::task::yield_now().await;
    }
    // The lease expires and another replica takes it over meanwhile; it
    // has stored nothing yet, so this token is the newest.
    *fleet.lease.lock().unwrap() = Some(u64::MAX);
    gate.add_permits(1);
    assert_eq!(value(&waiting.await.unwrap().unwrap()), "t1");
    let stored = fleet.tokens.load("k").await.unwrap().unwrap();
    assert_eq!(stored.access_token.as_secret().expose_secret(), "t1");

    // Once the store holds a newer token, a refused save stays refused.
    clock.advance(LIFETIME);
    *fleet.lease.lock().unwrap() = None;
    let waiting = fetch();
    while upstream.calls() < 2 {
        tokio::task::yield_now().await;
    }
    *fleet.lease.lock().unwrap() = Some(u64::MAX);
    // The other holder's token, issued after this one.
    let mut newer = StoredToken::from_token(&minted(&clock, "newer", Some("r-newer")));
    newer.issued_at_unix_ms += 60_000;
    fleet.tokens.save("k", &newer).await.unwrap();
    gate.add_permits(1);
    assert_eq!(
        value(&waiting.await.unwrap().unwrap()),
        "t2",
        "served from memory"
    );
    let stored = fleet.tokens.load("k").await.unwrap().unwrap();
    assert_eq!(stored.access_token.as_secret().expose_secret(), "newer");
}

#[tokio::test]
async fn a_refusal_seen_by_the_lease_holder_reaches_the_other_replicas_without_a_fetch() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    *upstream.refuse.lock().unwrap() = Some(ErrorKind::InvalidClient);
    let fleet = Arc::new(Fleet::default());
    let (a, b) = (
        replica(&upstream, &fleet, &clock),
        replica(&upstream, &fleet, &clock),
    );
    assert_eq!(
        a.token().await.unwrap_err().kind(),
        ErrorKind::InvalidClient
    );
    let error = b.token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidClient);
    assert_eq!(error.status(), Some(401));
    assert_eq!(
        upstream.calls(),
        1,
        "one replica tried; the fleet shared its answer"
    );
}

#[tokio::test(start_paused = true)]
async fn a_shared_failure_lasts_the_holders_backoff_then_the_fleet_tries_again() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    *upstream.refuse.lock().unwrap() = Some(ErrorKind::Unavailable);
    let fleet = Arc::new(Fleet::default());
    let (a, b) = (
        replica(&upstream, &fleet, &clock),
        replica(&upstream, &fleet, &clock),
    );
    assert!(a.token().await.is_err());
    assert!(b.token().await.is_err());
    assert_eq!(upstream.calls(), 1);
    *upstream.refuse.lock().unwrap() = None;
    tokio::time::sleep(Duration::from_millis(1001)).await;
    clock.advance(Duration::from_millis(1001));
    assert_eq!(value(&b.token().await.unwrap()), "t2");
    assert_eq!(
        value(&a.token().await.unwrap()),
        "t2",
        "taken from the store"
    );
}

/// A token `value` living `LIFETIME` from now on `clock`.
fn minted(clock: &ManualClock, value: &str, refresh: Option<&str>) -> AccessToken {
    AccessToken::new(Secret::new(value), "Bearer", Issued::now(clock), LIFETIME)
        .unwrap()
        .with_refresh_token(refresh.map(Secret::new))
}

/// A login `t0`/`r0` stored by a clock an hour ahead: its issue time is
/// later than anything issued here.
async fn stored_login_from_a_clock_ahead(fleet: &Fleet, clock: &ManualClock) {
    let mut login = StoredToken::from_token(&minted(clock, "t0", Some("r0")));
    login.issued_at_unix_ms += 3_600_000;
    fleet.save("k", &login).await.unwrap();
}

/// A login stored for the fleet: `t0` with refresh token `r0`.
async fn stored_login(fleet: &Fleet, clock: &ManualClock) {
    let login = minted(clock, "t0", Some("r0"));
    fleet
        .save("k", &StoredToken::from_token(&login))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_leased_save_lost_to_a_store_blip_is_saved_again_at_once_and_its_refresh_token_is_never_lost()
 {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    stored_login(&fleet, &clock).await;
    let (a, b) = (
        replica(&upstream, &fleet, &clock),
        replica(&upstream, &fleet, &clock),
    );
    clock.advance(LIFETIME);
    fleet.blip.store(true, Ordering::SeqCst);
    assert_eq!(
        value(&a.token().await.unwrap()),
        "t1",
        "saved on the second try"
    );
    let stored = fleet.tokens.load("k").await.unwrap().unwrap();
    assert_eq!(stored.access_token.as_secret().expose_secret(), "t1");
    clock.advance(LIFETIME);
    assert_eq!(value(&b.token().await.unwrap()), "t2");
    assert_eq!(
        *upstream.seen.lock().unwrap(),
        [Some("r0".to_owned()), Some("r1".to_owned())],
        "the other replica refreshed with the rotated r1, not the stale r0"
    );
}

#[tokio::test(start_paused = true)]
async fn a_holder_that_cannot_save_leaves_the_lease_to_expire_and_saves_after_the_outage() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    stored_login(&fleet, &clock).await;
    let (a, b) = (
        replica(&upstream, &fleet, &clock),
        replica(&upstream, &fleet, &clock),
    );
    clock.advance(LIFETIME);
    fleet.writes_fail.store(true, Ordering::SeqCst);
    // Served though not saved; the store's failure is what flush reports.
    assert_eq!(value(&a.token().await.unwrap()), "t1");
    assert_eq!(a.flush().await.unwrap_err().kind(), ErrorKind::Store);
    assert!(
        fleet.lease.lock().unwrap().is_some(),
        "not released: the fleet waits for this replica's save"
    );
    // The outage ends; after the backoff, a's next call saves its token.
    fleet.writes_fail.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_millis(1001));
    assert_eq!(value(&a.token().await.unwrap()), "t1", "served from memory");
    for _ in 0..1000 {
        if fleet
            .tokens
            .load("k")
            .await
            .unwrap()
            .is_some_and(|s| s.access_token.as_secret().expose_secret() == "t1")
        {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        value(&b.token().await.unwrap()),
        "t1",
        "taken from the store"
    );
    tokio::time::sleep(LEASE_TTL).await;
    clock.advance(LIFETIME);
    assert_eq!(value(&b.token().await.unwrap()), "t2");
    assert_eq!(
        *upstream.seen.lock().unwrap(),
        [Some("r0".to_owned()), Some("r1".to_owned())]
    );
}

#[tokio::test(start_paused = true)]
async fn while_the_store_cannot_be_written_the_next_refresh_starts_from_the_newer_token_in_memory()
{
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    stored_login(&fleet, &clock).await;
    let a = replica(&upstream, &fleet, &clock);
    clock.advance(LIFETIME);
    fleet.writes_fail.store(true, Ordering::SeqCst);
    // Served though not saved; the store's failure is what flush reports.
    assert_eq!(value(&a.token().await.unwrap()), "t1");
    assert_eq!(a.flush().await.unwrap_err().kind(), ErrorKind::Store);
    tokio::time::sleep(LEASE_TTL).await; // the lease it left expires
    clock.advance(LIFETIME);
    let _ = a.token().await;
    assert_eq!(
        *upstream.seen.lock().unwrap(),
        [Some("r0".to_owned()), Some("r1".to_owned())],
        "r1, rotated here and unsaved, wins over the stored r0"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lease_holder_whose_source_never_returns_times_out_and_releases_the_lease() {
    let clock = Arc::new(ManualClock::new());
    let gate = Arc::new(Semaphore::new(0)); // never opened
    let upstream = Upstream::new(&clock, Some(gate));
    let fleet = Arc::new(Fleet::default());
    let cache = replica_builder(&upstream, &fleet, &clock)
        .fetch_timeout(Duration::from_secs(2))
        .build();
    let error = tokio::time::timeout(Duration::from_secs(60), cache.token())
        .await
        .expect("the fetch timeout ends the flight")
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    for _ in 0..100 {
        if fleet.lease.lock().unwrap().is_none() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the lease was never released");
}

#[tokio::test]
async fn a_seeded_replica_hands_its_token_to_the_fleet() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    let exchanged = minted(&clock, "exchanged", Some("r-exchanged"));
    let seeded = replica_builder(&upstream, &fleet, &clock)
        .seed(exchanged)
        .build();
    assert_eq!(value(&seeded.token().await.unwrap()), "exchanged");
    for _ in 0..1000 {
        if fleet.tokens.load("k").await.unwrap().is_some() {
            break;
        }
        tokio::task::yield_now().await;
    }
    let other = replica(&upstream, &fleet, &clock);
    assert_eq!(value(&other.token().await.unwrap()), "exchanged");
    assert_eq!(upstream.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_short_lived_answer_refused_by_the_holder_still_hands_its_rotated_refresh_token_to_the_fleet()
 {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    stored_login(&fleet, &clock).await;
    let (a, b) = (
        replica(&upstream, &fleet, &clock),
        replica(&upstream, &fleet, &clock),
    );
    clock.advance(LIFETIME);
    *upstream.lifetime.lock().unwrap() = Duration::from_secs(2);
    assert_eq!(a.token().await.unwrap_err().kind(), ErrorKind::Malformed);
    *upstream.lifetime.lock().unwrap() = LIFETIME;
    // After the shared failure's backoff:
    tokio::time::sleep(Duration::from_millis(1001)).await;
    clock.advance(Duration::from_millis(1001));
    assert_eq!(value(&b.token().await.unwrap()), "t2");
    assert_eq!(
        *upstream.seen.lock().unwrap(),
        [Some("r0".to_owned()), Some("r1".to_owned())],
        "the other replica refreshed with r1, rotated by the refused answer"
    );
}

#[tokio::test]
async fn a_replica_that_cannot_take_the_lease_never_refreshes_without_it() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    stored_login(&fleet, &clock).await;
    let cache = replica(&upstream, &fleet, &clock);
    assert_eq!(value(&cache.token().await.unwrap()), "t0");
    fleet.lease_fails.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_secs(75)); // inside the margin, still valid
    assert_eq!(value(&cache.token().await.unwrap()), "t0");
    clock.advance(LIFETIME);
    let error = cache.token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store, "{error}");
    assert_eq!(
        upstream.calls(),
        0,
        "r0 may have been rotated by a replica this one cannot see"
    );
    fleet.lease_fails.store(false, Ordering::SeqCst);
    // Two failures in a row (the refresh ahead at 75 s, run as it starts,
    // and the one at expiry): the backoff is 2 s.
    clock.advance(Duration::from_millis(2001));
    assert_eq!(value(&cache.token().await.unwrap()), "t1");
}

#[tokio::test(start_paused = true)]
async fn a_lease_request_that_never_answers_is_no_licence_to_fetch_beside_the_holder() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    fleet.lease_hangs.store(true, Ordering::SeqCst);
    let cache = replica_builder(&upstream, &fleet, &clock)
        .fetch_timeout(Duration::from_secs(4))
        .build();
    let error = cache.token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store);
    assert!(
        error.to_string().contains("did not answer within 1000 ms"),
        "{error}"
    );
    assert_eq!(
        upstream.calls(),
        0,
        "the lease may have been granted to this very call"
    );
}

#[tokio::test]
async fn a_holder_whose_read_under_the_lease_blips_still_refreshes_with_the_stored_refresh_token() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    stored_login(&fleet, &clock).await;
    let (a, b) = (
        replica(&upstream, &fleet, &clock),
        replica(&upstream, &fleet, &clock),
    );
    assert_eq!(value(&a.token().await.unwrap()), "t0"); // a holds r0
    clock.advance(LIFETIME);
    assert_eq!(value(&b.token().await.unwrap()), "t1"); // b rotates r0 -> r1
    clock.advance(LIFETIME);
    // a's read before the lease and its first read under it fail.
    fleet.load_fails.store(2, Ordering::SeqCst);
    assert_eq!(value(&a.token().await.unwrap()), "t2");
    assert_eq!(
        *upstream.seen.lock().unwrap(),
        [Some("r0".to_owned()), Some("r1".to_owned())],
        "a read the store again under the lease and refreshed with r1, not its own r0"
    );
}

#[tokio::test]
async fn a_successor_counts_as_newer_than_its_predecessor_even_when_the_wall_clock_ran_backwards() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    // A login written by a clock an hour ahead (or before the wall clock
    // here jumped back): its issue time is later than anything issued now.
    stored_login_from_a_clock_ahead(&fleet, &clock).await;
    let (a, b) = (
        replica(&upstream, &fleet, &clock),
        replica(&upstream, &fleet, &clock),
    );
    let t0 = a.token().await.unwrap();
    clock.advance(LIFETIME);
    assert_eq!(value(&b.token().await.unwrap()), "t1", "refreshed from r0");
    // A late 401 for t0 at a: its expired copy must not replace t1.
    assert!(a.invalidate(&t0));
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        value(&a.token().await.unwrap()),
        "t1",
        "taken from the store"
    );
    assert_eq!(*upstream.seen.lock().unwrap(), [Some("r0".to_owned())]);
}

#[tokio::test(start_paused = true)]
async fn a_late_save_never_replaces_a_login_stored_since_whatever_the_clocks_say() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    // The fleet's login, written by a clock an hour ahead.
    stored_login_from_a_clock_ahead(&fleet, &clock).await;
    let a = replica(&upstream, &fleet, &clock);
    clock.advance(LIFETIME);
    fleet.writes_fail.store(true, Ordering::SeqCst);
    // Served though not saved; the store's failure is what flush reports.
    assert_eq!(value(&a.token().await.unwrap()), "t1");
    assert_eq!(a.flush().await.unwrap_err().kind(), ErrorKind::Store);
    // Meanwhile the customer logs in again (`payauth login`), on a clock
    // that reads earlier than a's new token claims.
    let relogin = StoredToken::from_token(&minted(&clock, "relogin", Some("r-relogin")));
    fleet.tokens.save("k", &relogin).await.unwrap();
    fleet.writes_fail.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_millis(1001));
    assert_eq!(value(&a.token().await.unwrap()), "t1");
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        fleet.tokens.load("k").await.unwrap(),
        Some(relogin),
        "t1 was fetched from t0; the store moved on to a new login since"
    );
}

#[tokio::test]
async fn a_login_stored_since_wins_over_memory_whatever_the_clocks_say() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    // The fleet's token, written by a clock an hour ahead.
    stored_login_from_a_clock_ahead(&fleet, &clock).await;
    let a = replica(&upstream, &fleet, &clock);
    assert_eq!(value(&a.token().await.unwrap()), "t0");
    // The customer logs in again; that clock reads earlier.
    let relogin = StoredToken::from_token(&minted(&clock, "relogin", Some("r-relogin")));
    fleet.save("k", &relogin).await.unwrap();
    clock.advance(LIFETIME);
    assert_eq!(value(&a.token().await.unwrap()), "t1");
    assert_eq!(
        *upstream.seen.lock().unwrap(),
        [Some("r-relogin".to_owned())],
        "the store moved on since a read it: its token wins over a's older one"
    );
}

#[tokio::test]
async fn a_holder_that_cannot_read_the_store_does_not_refresh_blind_until_a_minute_has_passed() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    stored_login(&fleet, &clock).await;
    let a = replica(&upstream, &fleet, &clock);
    assert_eq!(value(&a.token().await.unwrap()), "t0");
    clock.advance(LIFETIME);
    fleet.load_fails.store(usize::MAX, Ordering::SeqCst);
    assert_eq!(a.token().await.unwrap_err().kind(), ErrorKind::Store);
    assert_eq!(
        upstream.calls(),
        0,
        "the store may hold a newer refresh token"
    );
    // A record nobody can read must not lock the fleet out for good.
    clock.advance(Duration::from_secs(61));
    assert_eq!(value(&a.token().await.unwrap()), "t1");
    assert_eq!(*upstream.seen.lock().unwrap(), [Some("r0".to_owned())]);
}

#[tokio::test]
async fn a_holder_with_no_refresh_token_to_lose_fetches_even_when_the_store_cannot_be_read() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    fleet.load_fails.store(usize::MAX, Ordering::SeqCst);
    let cache = replica(&upstream, &fleet, &clock);
    assert_eq!(value(&cache.token().await.unwrap()), "t1", "a full grant");
}

#[tokio::test]
async fn a_holder_whose_lease_ran_out_before_its_fetch_does_not_fetch() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    stored_login(&fleet, &clock).await;
    let a = replica(&upstream, &fleet, &clock);
    assert_eq!(value(&a.token().await.unwrap()), "t0");
    clock.advance(LIFETIME);
    fleet.leases_run_out.store(true, Ordering::SeqCst);
    let error = a.token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert!(error.is_transient());
    assert_eq!(upstream.calls(), 0, "no request beside the next holder");
    // Held again (the store answers in time): the refresh goes ahead.
    fleet.leases_run_out.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(2));
    assert_eq!(value(&a.token().await.unwrap()), "t1");
    assert_eq!(*upstream.seen.lock().unwrap(), [Some("r0".to_owned())]);
}

/// The fleet counters recorded since the last snapshot, by name.
#[cfg(feature = "metrics")]
fn fleet_counters(snapshotter: &metrics_util::debugging::Snapshotter) -> (u64, u64) {
    use metrics_util::debugging::DebugValue;
    let mut counts = (0, 0);
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let DebugValue::Counter(n) = value else {
            continue;
        };
        match key.key().name() {
            "payauth_fleet_lease_waits_total" => counts.0 += n,
            "payauth_fleet_lease_takeovers_total" => counts.1 += n,
            _ => {}
        }
    }
    counts
}

#[cfg(feature = "metrics")]
#[tokio::test(start_paused = true)]
async fn a_replica_counts_each_wait_on_another_replicas_lease_and_its_takeover_once_it_expired() {
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let free = Arc::new(Fleet::default());
    replica(&upstream, &free, &clock).token().await.unwrap();
    assert_eq!(
        fleet_counters(&snapshotter),
        (0, 0),
        "a free lease: no wait"
    );

    let fleet = Arc::new(Fleet::default());
    // A replica died holding the lease; it expires in 5 ms (polls: 1 ms).
    *fleet.lease.lock().unwrap() = Some(u64::MAX);
    *fleet.lease_until.lock().unwrap() =
        Some(tokio::time::Instant::now() + Duration::from_millis(5));
    let token = replica(&upstream, &fleet, &clock).token().await.unwrap();
    assert_eq!(value(&token), "t2");
    assert_eq!(fleet_counters(&snapshotter), (5, 1));
}

#[tokio::test(start_paused = true)]
async fn a_holder_whose_save_failed_keeps_its_newer_refresh_token_when_another_replica_is_refused_the_stale_one()
 {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    stored_login(&fleet, &clock).await;
    let (a, b) = (
        replica(&upstream, &fleet, &clock),
        replica(&upstream, &fleet, &clock),
    );
    clock.advance(LIFETIME);
    // a refreshes r0 into t1/r1 and cannot save it: it leaves its lease
    // to expire.
    fleet.writes_fail.store(true, Ordering::SeqCst);
    assert_eq!(value(&a.token().await.unwrap()), "t1");
    fleet.writes_fail.store(false, Ordering::SeqCst);
    tokio::time::sleep(LEASE_TTL).await;
    // b takes the expired lease and refreshes with the stale stored r0:
    // refused, and shared.
    *upstream.refuse.lock().unwrap() = Some(ErrorKind::InvalidGrant);
    assert_eq!(b.token().await.unwrap_err().kind(), ErrorKind::InvalidGrant);
    *upstream.refuse.lock().unwrap() = None;
    // a's refresh, within the shared failure's time, is no verdict on r1.
    clock.advance(Duration::from_secs(75));
    assert_eq!(value(&a.token().await.unwrap()), "t1", "still valid");
    for _ in 0..1000 {
        if upstream.calls() == 3 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        *upstream.seen.lock().unwrap(),
        [
            Some("r0".to_owned()),
            Some("r0".to_owned()),
            Some("r1".to_owned())
        ],
        "a refreshed with its newer r1, never dropped for b's refusal of r0"
    );
    a.flush().await.unwrap();
}

#[tokio::test]
async fn a_replica_with_no_refresh_token_never_shares_invalid_grant_with_the_fleet() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    let a = replica(&upstream, &fleet, &clock);
    assert_eq!(value(&a.token().await.unwrap()), "t1");
    // The store forgets everything (a restart without persistence); a
    // fresh replica has nothing to refresh with and its source says
    // invalid_grant ("log in again").
    fleet.tokens.clear("k", None).await.unwrap();
    let fresh = replica(&upstream, &fleet, &clock);
    *upstream.refuse.lock().unwrap() = Some(ErrorKind::InvalidGrant);
    assert_eq!(
        fresh.token().await.unwrap_err().kind(),
        ErrorKind::InvalidGrant
    );
    *upstream.refuse.lock().unwrap() = None;
    assert!(
        fleet.failure.lock().unwrap().is_none(),
        "the provider refused nothing the fleet holds"
    );
    clock.advance(Duration::from_secs(75));
    assert_eq!(value(&a.token().await.unwrap()), "t1", "a keeps serving");
    a.flush().await.unwrap();
}

#[tokio::test]
async fn a_resave_after_the_store_lost_its_state_never_overwrites_a_token_another_replica_stored() {
    let clock = Arc::new(ManualClock::new());
    let gate = Arc::new(Semaphore::new(0));
    let upstream = Upstream::new(&clock, Some(Arc::clone(&gate)));
    let fleet = Arc::new(Fleet::default());
    stored_login(&fleet, &clock).await;
    let a = replica(&upstream, &fleet, &clock);
    clock.advance(LIFETIME);
    let fetch = tokio::spawn({
        let a = a.clone();
        async move { a.token().await }
    });
    for _ in 0..1000 {
        if upstream.calls() == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    // FLUSHALL under a's lease; another replica then stores its token
    // (its clock a minute behind a's).
    fleet.tokens.clear("k", None).await.unwrap();
    *fleet.lease.lock().unwrap() = None;
    let mut other = StoredToken::from_token(&minted(&clock, "other", Some("r-other")));
    other.issued_at_unix_ms -= 60_000;
    fleet.save("k", &other).await.unwrap();
    gate.add_permits(1);
    assert_eq!(value(&fetch.await.unwrap().unwrap()), "t1");
    assert_eq!(
        fleet.tokens.load("k").await.unwrap(),
        Some(other),
        "the fenced save was refused, and its re-save did not land over the other replica's token"
    );
}

/// Replicas `a` and `b` took the login `t0`/`r0` from the store; `a`, its
/// clock ahead, refreshed it to `t1`/`r1` (the provider rotated `r0`
/// away) while `b` still serves `t0`; then the store forgot everything (a
/// Redis without persistence restarted). `a` stays idle.
async fn forgotten_under_two_lineages(
    marked: bool,
) -> (
    Arc<Upstream>,
    Arc<Fleet>,
    TokenCache,
    TokenCache,
    [Arc<ManualClock>; 2],
) {
    let (a_clock, b_clock) = (Arc::new(ManualClock::new()), Arc::new(ManualClock::new()));
    let upstream = Upstream::new(&a_clock, None);
    let fleet = Arc::new(if marked {
        Fleet::marked()
    } else {
        Fleet::default()
    });
    stored_login(&fleet, &b_clock).await;
    let a = replica(&upstream, &fleet, &a_clock);
    let b = replica(&upstream, &fleet, &b_clock);
    assert_eq!(value(&a.token().await.unwrap()), "t0");
    assert_eq!(value(&b.token().await.unwrap()), "t0");
    a_clock.advance(LIFETIME);
    assert_eq!(value(&a.token().await.unwrap()), "t1");
    assert_eq!(
        value(&b.token().await.unwrap()),
        "t0",
        "b's t0 is not due yet"
    );
    // The watches have settled; then the store loses the key (with a
    // forget mark, a loss the mark misses: b's flight finds it).
    tokio::time::sleep(payauth_core::store::DEFAULT_CONVERGE_WAIT).await;
    fleet.tokens.clear("k", None).await.unwrap();
    (upstream, fleet, a, b, [a_clock, b_clock])
}

#[tokio::test(start_paused = true)]
async fn after_the_store_forgets_a_replica_holding_a_rotated_away_refresh_token_takes_up_the_newest_instead_of_refreshing()
 {
    after_the_store_forgets_a_replica_holding_a_rotated_away_refresh_token_takes_up_the_newest_instead_of_refreshing_on(false).await;
    after_the_store_forgets_a_replica_holding_a_rotated_away_refresh_token_takes_up_the_newest_instead_of_refreshing_on(true).await;
}

/// With a per-cache watch (`marked` false) or the store's one watch.
async fn after_the_store_forgets_a_replica_holding_a_rotated_away_refresh_token_takes_up_the_newest_instead_of_refreshing_on(
    marked: bool,
) {
    let (upstream, fleet, a, b, [_, b_clock]) = forgotten_under_two_lineages(marked).await;
    b_clock.advance(LIFETIME);
    // b finds the store empty, writes t0 back and waits under the lease;
    // a's watch finds the older t0 over its t1 and writes t1 back; b takes
    // t1 up, still fresh, and refreshes nothing.
    assert_eq!(value(&b.token().await.unwrap()), "t1");
    assert_eq!(
        *upstream.seen.lock().unwrap(),
        [Some("r0".to_owned())],
        "r0 was sent once, by a: never again after it was rotated away"
    );
    assert_eq!(value(&a.token().await.unwrap()), "t1", "a unaffected");
    let stored = fleet.tokens.load("k").await.unwrap().unwrap();
    assert_eq!(stored.access_token.as_secret().expose_secret(), "t1");
}

#[tokio::test(start_paused = true)]
async fn after_the_store_forgets_the_next_refresh_starts_from_the_newest_refresh_token_any_replica_held()
 {
    after_the_store_forgets_the_next_refresh_starts_from_the_newest_refresh_token_any_replica_held_on(false).await;
    after_the_store_forgets_the_next_refresh_starts_from_the_newest_refresh_token_any_replica_held_on(true).await;
}

/// With a per-cache watch (`marked` false) or the store's one watch.
async fn after_the_store_forgets_the_next_refresh_starts_from_the_newest_refresh_token_any_replica_held_on(
    marked: bool,
) {
    let (upstream, _fleet, a, b, [a_clock, b_clock]) = forgotten_under_two_lineages(marked).await;
    // t1 is due by the time b looks (a stays idle): b waits, takes up t1
    // and refreshes from r1, a's.
    a_clock.advance(LIFETIME);
    b_clock.advance(LIFETIME * 2);
    assert_eq!(value(&b.token().await.unwrap()), "t2");
    assert_eq!(
        *upstream.seen.lock().unwrap(),
        [Some("r0".to_owned()), Some("r1".to_owned())]
    );
    assert_eq!(
        value(&a.token().await.unwrap()),
        "t2",
        "taken from the store"
    );
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_finds_the_store_forgot_its_token_writes_it_back_without_a_fetch() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    stored_login(&fleet, &clock).await;
    let a = replica(&upstream, &fleet, &clock);
    assert_eq!(value(&a.token().await.unwrap()), "t0");
    fleet.tokens.clear("k", None).await.unwrap();
    tokio::time::sleep(payauth_core::store::DEFAULT_CONVERGE_WAIT).await;
    let stored = fleet.tokens.load("k").await.unwrap().unwrap();
    assert_eq!(
        stored.access_token.as_secret().expose_secret(),
        "t0",
        "written back by the watch"
    );
    assert_eq!(upstream.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_replica_never_takes_up_or_refreshes_from_a_token_it_saw_the_store_replace() {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    stored_login(&fleet, &clock).await;
    let a = replica(&upstream, &fleet, &clock);
    assert_eq!(value(&a.token().await.unwrap()), "t0");
    // The customer logs in again (a grant without a refresh token, so a
    // has nothing of its own to write back); a takes it up.
    clock.advance(LIFETIME);
    let relogin = minted(&clock, "relogin", None);
    fleet
        .save("k", &StoredToken::from_token(&relogin))
        .await
        .unwrap();
    assert_eq!(value(&a.token().await.unwrap()), "relogin");
    // A stale replica writes its t0 back (fresh by its clock) after the
    // store lost the login: the store went back.
    let mut stale = StoredToken::from_token(&minted(&clock, "t0", Some("r0")));
    stale.issued_at_unix_ms += 3_600_000;
    fleet.tokens.clear("k", None).await.unwrap();
    fleet.save("k", &stale).await.unwrap();
    clock.advance(LIFETIME);
    assert_eq!(value(&a.token().await.unwrap()), "t1");
    assert_eq!(
        *upstream.seen.lock().unwrap(),
        [None],
        "fetched anew from the newest login it knew, never taking up t0 or sending r0"
    );
    let stored = fleet.tokens.load("k").await.unwrap().unwrap();
    assert_eq!(stored.access_token.as_secret().expose_secret(), "t1");
}

#[tokio::test(start_paused = true)]
async fn a_refresh_token_the_provider_refused_and_the_store_dropped_is_not_written_back_while_the_fleet_shares_the_refusal()
 {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(Fleet::default());
    stored_login(&fleet, &clock).await;
    // b's failure backoff (how long it shares a refusal) outlasts a's
    // next look at the store.
    let (a, b) = (
        replica(&upstream, &fleet, &clock),
        replica_builder(&upstream, &fleet, &clock)
            .failure_backoff(Duration::from_secs(10))
            .build(),
    );
    assert_eq!(value(&a.token().await.unwrap()), "t0");
    assert_eq!(value(&b.token().await.unwrap()), "t0");
    // b refreshes; the provider refuses r0; b shares that and clears the
    // store (a compare-on-clear, not the store forgetting).
    *upstream.refuse.lock().unwrap() = Some(ErrorKind::InvalidGrant);
    clock.advance(LIFETIME);
    assert_eq!(b.token().await.unwrap_err().kind(), ErrorKind::InvalidGrant);
    assert_eq!(fleet.tokens.load("k").await.unwrap(), None);
    // a, idle, still holds t0 and r0: its watch writes nothing back.
    tokio::time::sleep(payauth_core::store::DEFAULT_CONVERGE_WAIT).await;
    assert_eq!(
        fleet.tokens.load("k").await.unwrap(),
        None,
        "the refused refresh token stays out of the store"
    );
    drop(a);
}

/// `n` idle caches, one per customer, on one store (marked or not), each
/// holding its customer's stored login; the store calls they make while
/// idle for `periods` thirds of the converge wait (token loads, forget
/// mark reads); then the store forgets, and whether every cache wrote its
/// token back without a fetch.
async fn idle_caches_on_one_store(n: usize, marked: bool, periods: u32) -> (usize, usize, bool) {
    let clock = Arc::new(ManualClock::new());
    let upstream = Upstream::new(&clock, None);
    let fleet = Arc::new(if marked {
        Fleet::marked()
    } else {
        Fleet::default()
    });
    let keys: Vec<String> = (0..n).map(|i| format!("customer-{i}")).collect();
    let login = StoredToken::from_token(&minted(&clock, "t0", Some("r0")));
    let mut caches = Vec::new();
    for key in &keys {
        fleet.tokens.save(key, &login).await.unwrap();
        let cache = TokenCache::builder(Arc::clone(&upstream))
            .clock(Arc::clone(&clock) as _)
            .shared_store(Arc::clone(&fleet) as Arc<dyn SharedStore>, key.clone())
            .build();
        assert_eq!(value(&cache.token().await.unwrap()), "t0");
        caches.push(cache);
    }
    let period = payauth_core::store::DEFAULT_CONVERGE_WAIT / 3;
    // Past the watch's first look, then count.
    tokio::time::sleep(period * 2).await;
    let (loads, marks) = (
        fleet.loads.load(Ordering::SeqCst),
        fleet.mark_reads.load(Ordering::SeqCst),
    );
    tokio::time::sleep(period * periods).await;
    let idle = (
        fleet.loads.load(Ordering::SeqCst) - loads,
        fleet.mark_reads.load(Ordering::SeqCst) - marks,
    );
    fleet.forget(keys.iter().cloned()).await;
    tokio::time::sleep(period * 2).await;
    let mut all_back = upstream.calls() == 0;
    for key in &keys {
        let stored = fleet.tokens.load(key).await.unwrap();
        all_back &= stored.is_some_and(|s| s.access_token.as_secret().expose_secret() == "t0");
    }
    drop(caches);
    (idle.0, idle.1, all_back)
}

#[tokio::test(start_paused = true)]
async fn idle_caches_on_a_store_with_a_forget_mark_make_one_store_read_per_period_however_many_and_all_write_back_after_it_forgets()
 {
    const PERIODS: u32 = 3;
    for n in [1, 10, 1_000] {
        let (loads, mark_reads, all_back) = idle_caches_on_one_store(n, true, PERIODS).await;
        assert_eq!(
            loads, 0,
            "{n} idle caches read no token while the mark holds"
        );
        assert!(
            mark_reads <= PERIODS as usize + 1,
            "{n} idle caches: {mark_reads} mark reads in {PERIODS} periods"
        );
        assert!(
            all_back,
            "{n} caches: every token written back after the store forgot, none fetched"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn idle_caches_on_a_store_without_a_forget_mark_still_each_look_and_write_back_after_it_forgets()
 {
    for n in [1, 10, 1_000] {
        let (loads, mark_reads, all_back) = idle_caches_on_one_store(n, false, 3).await;
        assert!(
            loads >= n * 3,
            "{n} caches each look every period: {loads} loads"
        );
        assert_eq!(mark_reads, 0);
        assert!(
            all_back,
            "{n} caches: every token written back after the store forgot"
        );
    }
}
