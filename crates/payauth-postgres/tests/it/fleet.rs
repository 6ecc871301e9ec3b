//! The fleet suite, run on every backend there is (PostgreSQL and Redis):
//! replicas sharing a store make one upstream fetch per expiry, pass a
//! rotated refresh token on, share a refusal, survive a dead lease holder,
//! converge on the newest refresh token after the store forgets, and a
//! fleet holding many customers fetches once per customer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use payauth_core::subjects::Subjects;
use payauth_core::{
    AccessToken, BoxFuture, Clock, Error, ErrorKind, Issued, ManualClock, Secret, SharedStore,
    TokenCache, TokenSource,
};

use crate::support::Backend;

const LIFETIME: Duration = Duration::from_secs(600);

/// One upstream for the whole fleet: per subject, tokens `a-<subject>-<n>`
/// with rotating refresh tokens `r-<subject>-<n>`; it counts fetches and
/// records the refresh token each started from.
#[derive(Default)]
struct Upstream {
    fetches: Mutex<HashMap<String, usize>>,
    refreshed_with: Mutex<Vec<Option<String>>>,
    refuse: Mutex<Option<ErrorKind>>,
    calls: AtomicUsize,
}

impl Upstream {
    fn fetches(&self, subject: &str) -> usize {
        self.fetches
            .lock()
            .unwrap()
            .get(subject)
            .copied()
            .unwrap_or(0)
    }
}

struct Source {
    subject: String,
    upstream: Arc<Upstream>,
    clock: Arc<ManualClock>,
}

impl TokenSource for Source {
    fn fetch<'a>(
        &'a self,
        previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async move {
            self.upstream.calls.fetch_add(1, Ordering::SeqCst);
            // Other replicas' callers pile up meanwhile.
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Some(kind) = *self.upstream.refuse.lock().unwrap() {
                return Err(Error::new(kind).with_status(401));
            }
            self.upstream.refreshed_with.lock().unwrap().push(
                previous
                    .and_then(AccessToken::refresh_token)
                    .map(|r| r.expose_secret().to_owned()),
            );
            let n = {
                let mut fetches = self.upstream.fetches.lock().unwrap();
                let n = fetches.entry(self.subject.clone()).or_default();
                *n += 1;
                *n
            };
            Ok(AccessToken::new(
                Secret::new(format!("a-{}-{n}", self.subject)),
                "Bearer",
                Issued::now(self.clock.as_ref()),
                LIFETIME,
            )?
            .with_refresh_token(Some(Secret::new(format!("r-{}-{n}", self.subject)))))
        })
    }
}

fn replica(
    store: &Arc<dyn SharedStore>,
    upstream: &Arc<Upstream>,
    clock: &Arc<ManualClock>,
    subject: &str,
) -> TokenCache {
    TokenCache::builder(Source {
        subject: subject.to_owned(),
        upstream: Arc::clone(upstream),
        clock: Arc::clone(clock),
    })
    .clock(Arc::clone(clock) as Arc<dyn Clock>)
    .shared_store(Arc::clone(store), format!("fleet:{subject}"))
    .jitter(0.0)
    .build()
}

fn value(token: &AccessToken) -> String {
    token.secret().expose_secret().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_replicas_with_100_callers_each_make_one_upstream_fetch_per_expiry_on_every_store() {
    for backend in Backend::all() {
        let (upstream, clock) = (Arc::<Upstream>::default(), Arc::new(ManualClock::new()));
        let mut replicas = Vec::new();
        for _ in 0..4 {
            replicas.push(replica(&backend.replica().await, &upstream, &clock, "c"));
        }
        for round in 1..=2 {
            let mut calls = tokio::task::JoinSet::new();
            for cache in replicas.iter().flat_map(|r| std::iter::repeat_n(r, 100)) {
                let cache = cache.clone();
                calls.spawn(async move { value(&cache.token().await.unwrap()) });
            }
            while let Some(token) = calls.join_next().await {
                assert_eq!(token.unwrap(), format!("a-c-{round}"), "{}", backend.name());
            }
            assert_eq!(upstream.fetches("c"), round, "{}", backend.name());
            clock.advance(LIFETIME);
        }
        // The second fetch refreshed with the first's refresh token.
        assert_eq!(
            upstream
                .refreshed_with
                .lock()
                .unwrap()
                .last()
                .unwrap()
                .as_deref(),
            Some("r-c-1"),
            "{}",
            backend.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_rotated_by_one_replica_is_the_one_the_next_replica_uses_on_every_store() {
    for backend in Backend::all() {
        let (upstream, clock) = (Arc::<Upstream>::default(), Arc::new(ManualClock::new()));
        let first = replica(&backend.replica().await, &upstream, &clock, "rot");
        let second = replica(&backend.replica().await, &upstream, &clock, "rot");
        assert_eq!(value(&first.token().await.unwrap()), "a-rot-1");
        clock.advance(LIFETIME);
        assert_eq!(value(&first.token().await.unwrap()), "a-rot-2");
        clock.advance(LIFETIME);
        // The second replica never fetched: it refreshes with the token
        // the first rotated, read from the store.
        assert_eq!(value(&second.token().await.unwrap()), "a-rot-3");
        let seen = upstream.refreshed_with.lock().unwrap().clone();
        assert_eq!(
            seen,
            [None, Some("r-rot-1".to_owned()), Some("r-rot-2".to_owned())],
            "{}",
            backend.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_seen_by_the_lease_holder_reaches_the_other_replicas_on_every_store() {
    for backend in Backend::all() {
        let (upstream, clock) = (Arc::<Upstream>::default(), Arc::new(ManualClock::new()));
        *upstream.refuse.lock().unwrap() = Some(ErrorKind::InvalidClient);
        let mut replicas = Vec::new();
        for _ in 0..4 {
            replicas.push(replica(
                &backend.replica().await,
                &upstream,
                &clock,
                "refused",
            ));
        }
        let mut calls = tokio::task::JoinSet::new();
        for cache in replicas.iter().flat_map(|r| std::iter::repeat_n(r, 10)) {
            let cache = cache.clone();
            calls.spawn(async move { cache.token().await.unwrap_err().kind() });
        }
        while let Some(kind) = calls.join_next().await {
            assert_eq!(
                kind.unwrap(),
                ErrorKind::InvalidClient,
                "{}",
                backend.name()
            );
        }
        assert_eq!(
            upstream.calls.load(Ordering::SeqCst),
            1,
            "asked once for the fleet ({})",
            backend.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_whose_holder_died_expires_and_another_replica_fetches_on_every_store() {
    for backend in Backend::all() {
        let (upstream, clock) = (Arc::<Upstream>::default(), Arc::new(ManualClock::new()));
        let store = backend.replica().await;
        // A holder that dies: its lease is dropped without release (its
        // heartbeat stops), so it runs out after its TTL (5 s).
        let dead = store
            .try_lease("fleet:orphan")
            .await
            .unwrap()
            .expect("free");
        drop(dead);
        let cache = replica(&backend.replica().await, &upstream, &clock, "orphan");
        let started = std::time::Instant::now();
        assert_eq!(
            value(&cache.token().await.unwrap()),
            "a-orphan-1",
            "{}",
            backend.name()
        );
        assert!(
            started.elapsed() >= Duration::from_secs(4),
            "{}",
            backend.name()
        );
    }
}

/// A replica whose lease request goes unanswered (a store that hangs, or
/// one so loaded that its answer comes too late) must not take that for
/// an outage and fetch beside the holder: the lease may have been granted.
/// It answers `None`, as if another replica held the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_request_left_unanswered_is_taken_as_held_elsewhere_not_as_an_outage_on_every_store()
 {
    for backend in Backend::all() {
        let (url, prefix) = backend.url_and_prefix();
        let (_, server) = crate::round_trips::redirect(url, "127.0.0.1:1".parse().unwrap());
        let wire = crate::round_trips::Wire::to(server).await;
        let (url, _) = crate::round_trips::redirect(url, wire.addr);
        let store = backend.replica_at(&url, prefix).await;
        // Connected (PostgreSQL's pool connects on first use).
        store.load("fleet:unanswered").await.unwrap();
        wire.stall();
        let lease = store.try_lease("fleet:unanswered").await;
        assert!(
            matches!(lease, Ok(None)),
            "{}: {:?}",
            backend.name(),
            lease.map(|l| l.is_some())
        );
    }
}

/// How a fleet of [`REPLICAS`] sharing many customers did.
struct ManyCustomers {
    /// Customers whose upstream fetches were not one per expiry, and how
    /// many they had (the first 10).
    off: Vec<(String, usize)>,
    /// Upstream fetches in all, and the most any customer had in one
    /// expiry.
    fetches: usize,
    most: usize,
    /// Calls that failed, by kind; calls answered with another customer's
    /// token; calls answered with an earlier expiry's token.
    errors: Vec<(ErrorKind, String)>,
    crossed: usize,
    stale: usize,
    /// Seconds per expiry (every replica asked for every customer).
    seconds: Vec<f64>,
}

const REPLICAS: usize = 4;
const EXPIRIES: usize = 2;

/// [`REPLICAS`] replicas, each holding at most half of `customers`
/// (idle ones are evicted, saving first), are each asked for every
/// customer, all in the same order, with at most `in_flight` calls
/// at once per replica (`None`: all at once), then again after each of
/// [`EXPIRIES`] - 1 expiries.
async fn many_customers(
    backend: &Backend,
    customers: usize,
    in_flight: Option<usize>,
) -> ManyCustomers {
    // Customers of their own: runs share the backend's prefix.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let name = move |customer: usize| format!("f{run}-m{customer}");
    let (upstream, clock) = (Arc::<Upstream>::default(), Arc::new(ManualClock::new()));
    let mut fleet = Vec::new();
    for _ in 0..REPLICAS {
        let store = backend.replica().await;
        let (upstream, clock) = (Arc::clone(&upstream), Arc::clone(&clock));
        let subjects = Subjects::builder(move |customer: &String| {
            replica(&store, &upstream, &clock, customer)
        })
        .capacity(customers / 2)
        .build();
        let turns = Arc::new(tokio::sync::Semaphore::new(
            in_flight.unwrap_or(tokio::sync::Semaphore::MAX_PERMITS),
        ));
        fleet.push((subjects, turns));
    }
    let mut seconds = Vec::new();
    let (mut errors, mut crossed, mut stale, mut most) = (Vec::new(), 0, 0, 0);
    let mut before = HashMap::new();
    for expiry in 1..=EXPIRIES {
        let began = std::time::Instant::now();
        let mut calls = tokio::task::JoinSet::new();
        // Every replica in the same order, each customer asked of all four
        // at the same moment (the order: a stride coprime with any count
        // that is not a multiple of 7919).
        for step in 0..customers {
            let customer = (step * 7919) % customers;
            for (replica, turns) in &fleet {
                let (replica, turns) = (replica.clone(), Arc::clone(turns));
                calls.spawn(async move {
                    let _turn = turns.acquire_owned().await.unwrap();
                    let customer = name(customer);
                    replica.token(&customer).await.map(|token| {
                        let token = value(&token);
                        if token == format!("a-{customer}-{expiry}") {
                            Served::Expirys
                        } else if token.starts_with(&format!("a-{customer}-")) {
                            Served::Earlier
                        } else {
                            Served::Crossed
                        }
                    })
                });
            }
        }
        while let Some(call) = calls.join_next().await {
            match call.unwrap() {
                Ok(Served::Expirys) => {}
                Ok(Served::Earlier) => stale += 1,
                Ok(Served::Crossed) => crossed += 1,
                Err(error) => errors.push((error.kind(), error.to_string())),
            }
        }
        seconds.push(began.elapsed().as_secs_f64());
        let now = upstream.fetches.lock().unwrap().clone();
        for (customer, n) in &now {
            most = most.max(n - before.get(customer).copied().unwrap_or(0));
        }
        before = now;
        clock.advance(LIFETIME);
    }
    let fetches = upstream.fetches.lock().unwrap();
    let mut off: Vec<_> = (0..customers)
        .map(name)
        .map(|customer| {
            let n = fetches.get(&customer).copied().unwrap_or(0);
            (customer, n)
        })
        .filter(|&(_, n)| n != EXPIRIES)
        .collect();
    off.truncate(10);
    ManyCustomers {
        off,
        fetches: fetches.values().sum(),
        most,
        errors,
        crossed,
        stale,
        seconds,
    }
}

/// Whose token a call was served.
enum Served {
    /// The customer's, fetched in this expiry.
    Expirys,
    /// The customer's, from an earlier expiry.
    Earlier,
    /// Another customer's.
    Crossed,
}

impl ManyCustomers {
    /// Every call served the expiry's token, one fetch per customer per
    /// expiry.
    fn assert_one_fetch_per_customer_per_expiry(&self, customers: usize, backend: &str) {
        assert_eq!(
            self.errors.first(),
            None,
            "{backend}: {} calls failed",
            self.errors.len()
        );
        assert_eq!((self.crossed, self.stale), (0, 0), "{backend}");
        assert_eq!(self.off, [], "{backend}");
        assert_eq!(self.fetches, customers * EXPIRIES, "{backend}");
    }
}

/// CI-sized: 1,000 customers asked at once on every replica (about 20 s
/// on 2 cores for both stores), enough that every replica's pool is busy
/// for seconds (a busy pool taken for an outage made replicas fetch beside
/// the lease holder here; 200 customers did not show it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_four_holding_many_customers_makes_one_fetch_per_customer_per_expiry() {
    const CUSTOMERS: usize = 1_000;
    for backend in Backend::all() {
        many_customers(&backend, CUSTOMERS, None)
            .await
            .assert_one_fetch_per_customer_per_expiry(CUSTOMERS, backend.name());
    }
}

/// The full-sized run (minutes on 2 cores; run by `cargo xtask bench
/// fleet`, which records its `BENCH` line): 10,000 customers, each replica
/// serving at most 1,000 calls at once, with the time per customer against
/// a 1,000-customer fleet asked the same way in the same run. Then the
/// 10,000 asked all at once on every replica (40,000 calls): more than a
/// store serves within a store call's bound (15 s), so calls fail; the
/// most fetches of one customer in one expiry is recorded (PostgreSQL: 1;
/// Redis: more, see BENCHMARKS.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "10,000 customers take minutes; run by `cargo xtask bench fleet`"]
async fn a_fleet_of_four_holding_10_000_customers_makes_one_fetch_per_customer_per_expiry() {
    const CUSTOMERS: usize = 10_000;
    const SMALL: usize = 1_000;
    const IN_FLIGHT: usize = 1_000;
    let per_customer = |run: &ManyCustomers, customers: usize| {
        run.seconds.iter().sum::<f64>() * 1e3
            / f64::from(u32::try_from(run.seconds.len() * customers).unwrap())
    };
    let mut rows = Vec::new();
    for backend in Backend::all() {
        let name = backend.name();
        let small = many_customers(&backend, SMALL, Some(IN_FLIGHT)).await;
        let run = many_customers(&backend, CUSTOMERS, Some(IN_FLIGHT)).await;
        let herd = many_customers(&backend, CUSTOMERS, None).await;
        println!(
            "{name}: {CUSTOMERS} customers x {REPLICAS} replicas x {EXPIRIES} expiries, {IN_FLIGHT} calls in flight per replica: {} upstream fetches (most for one customer in one expiry: {}), {} calls failed, customers off one per expiry: {:?}, seconds per expiry {:?} ({SMALL} customers: {:?})",
            run.fetches,
            run.most,
            run.errors.len(),
            run.off,
            run.seconds,
            small.seconds,
        );
        println!(
            "{name}: {CUSTOMERS} customers asked at once on every replica: {} upstream fetches (most for one customer in one expiry: {}), {} calls failed (first: {:?}), {} served an earlier expiry's token, seconds per expiry {:?}",
            herd.fetches,
            herd.most,
            herd.errors.len(),
            herd.errors.first(),
            herd.stale,
            herd.seconds,
        );
        let bench = format!(
            "fleet of {REPLICAS} replicas, {CUSTOMERS} customers, {EXPIRIES} expiries ({name})"
        );
        rows.push(format!(
            r#"{{"bench":"{bench}","subject":"upstream fetches, {IN_FLIGHT} calls in flight per replica","baseline":"customers x expiries","metric":"count","subject_value":{},"baseline_value":{}}}"#,
            run.fetches,
            CUSTOMERS * EXPIRIES
        ));
        rows.push(format!(
            r#"{{"bench":"{bench}","subject":"{CUSTOMERS} customers","baseline":"{SMALL} customers","metric":"ms per customer per expiry, all replicas served","subject_value":{:.3},"baseline_value":{:.3}}}"#,
            per_customer(&run, CUSTOMERS),
            per_customer(&small, SMALL)
        ));
        rows.push(format!(
            r#"{{"bench":"{bench}","subject":"most upstream fetches of one customer in one expiry, all asked at once","baseline":"one","metric":"count","subject_value":{},"baseline_value":1}}"#,
            herd.most
        ));
        small.assert_one_fetch_per_customer_per_expiry(SMALL, name);
        run.assert_one_fetch_per_customer_per_expiry(CUSTOMERS, name);
        // Not asserted: so far past its bound, Redis's lease holders lose
        // their leases (their heartbeats queue on the one multiplexed
        // connection behind 40,000 commands) and up to 3 replicas fetched
        // one customer in one expiry (BENCHMARKS.md); PostgreSQL keeps
        // connections for lease holders and fetched once.
        assert_eq!(herd.crossed, 0, "{name}");
    }
    println!("BENCH [{}]", rows.join(","));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_store_forgets_a_replica_holding_a_rotated_away_refresh_token_converges_on_the_newest_on_every_store()
 {
    for backend in Backend::all() {
        let upstream = Arc::<Upstream>::default();
        let (a_clock, b_clock) = (Arc::new(ManualClock::new()), Arc::new(ManualClock::new()));
        let wait = Duration::from_millis(600);
        let a_store = backend.replica_converging(wait).await;
        let a = replica(&a_store, &upstream, &a_clock, "forgot");
        let b = replica(
            &backend.replica_converging(wait).await,
            &upstream,
            &b_clock,
            "forgot",
        );
        assert_eq!(value(&a.token().await.unwrap()), "a-forgot-1");
        assert_eq!(
            value(&b.token().await.unwrap()),
            "a-forgot-1",
            "from the store"
        );
        // A refreshes (the provider rotates r-forgot-1 away); B, its clock
        // behind, still serves the first token. Then the store forgets
        // everything (a restore from an older backup, a Redis restart).
        a_clock.advance(LIFETIME);
        assert_eq!(value(&a.token().await.unwrap()), "a-forgot-2");
        assert_eq!(value(&b.token().await.unwrap()), "a-forgot-1");
        // The watches have settled (each read the store at least once):
        // what finds the loss is B's flight and A's next look.
        tokio::time::sleep(wait * 2).await;
        a_store.clear("fleet:forgot", None).await.unwrap();
        // B's token is due: B waits for the fleet and takes up A's (A is
        // idle; its watch writes it back), sending nothing upstream.
        b_clock.advance(LIFETIME);
        assert_eq!(
            value(&b.token().await.unwrap()),
            "a-forgot-2",
            "{}",
            backend.name()
        );
        assert_eq!(
            *upstream.refreshed_with.lock().unwrap(),
            [None, Some("r-forgot-1".to_owned())],
            "{}: the rotated-away refresh token was never sent again",
            backend.name()
        );
        assert_eq!(value(&a.token().await.unwrap()), "a-forgot-2");
    }
}
