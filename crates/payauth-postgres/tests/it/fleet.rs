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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_four_holding_many_customers_makes_one_fetch_per_customer_per_expiry() {
    const CUSTOMERS: usize = 200;
    for backend in Backend::all() {
        let (upstream, clock) = (Arc::<Upstream>::default(), Arc::new(ManualClock::new()));
        let mut fleet = Vec::new();
        for _ in 0..4 {
            let store = backend.replica().await;
            let (upstream, clock) = (Arc::clone(&upstream), Arc::clone(&clock));
            fleet.push(
                Subjects::builder(move |customer: &String| {
                    replica(&store, &upstream, &clock, customer)
                })
                .capacity(CUSTOMERS / 2)
                .build(),
            );
        }
        let mut calls = tokio::task::JoinSet::new();
        for customer in 0..CUSTOMERS {
            for replica in &fleet {
                let replica = replica.clone();
                calls.spawn(async move {
                    let customer = format!("m{customer}");
                    let token = replica.token(&customer).await.unwrap();
                    assert_eq!(value(&token), format!("a-{customer}-1"));
                });
            }
        }
        while let Some(call) = calls.join_next().await {
            call.unwrap();
        }
        for customer in 0..CUSTOMERS {
            assert_eq!(
                upstream.fetches(&format!("m{customer}")),
                1,
                "{}",
                backend.name()
            );
        }
    }
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
