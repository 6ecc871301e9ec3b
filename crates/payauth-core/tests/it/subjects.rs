//! [`Subjects`]: one cache per customer, one fetch per customer per
//! expiry, bounded memory, and no rotated refresh token lost to an
//! eviction.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use payauth_core::subjects::Subjects;
use payauth_core::{
    AccessToken, BoxFuture, Clock, Error, ErrorKind, Issued, ManualClock, MemoryStore, Secret,
    StoredToken, TokenCache, TokenSource, TokenStore,
};
use proptest::prelude::*;

const LIFETIME: Duration = Duration::from_secs(600);

/// Every customer's upstream: tokens `a-<customer>-<n>` with rotating
/// refresh tokens `r-<customer>-<n>`; it counts fetches per customer and
/// records the refresh token each fetch started from.
#[derive(Default)]
struct Upstream {
    fetches: Mutex<HashMap<String, usize>>,
    refreshed_with: Mutex<Vec<Option<String>>>,
}

impl Upstream {
    fn fetches(&self, customer: &str) -> usize {
        self.fetches
            .lock()
            .unwrap()
            .get(customer)
            .copied()
            .unwrap_or(0)
    }
}

struct Customer {
    id: String,
    upstream: Arc<Upstream>,
    clock: Arc<ManualClock>,
}

impl TokenSource for Customer {
    fn fetch<'a>(
        &'a self,
        previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async move {
            self.upstream.refreshed_with.lock().unwrap().push(
                previous
                    .and_then(AccessToken::refresh_token)
                    .map(|r| r.expose_secret().to_owned()),
            );
            let n = {
                let mut fetches = self.upstream.fetches.lock().unwrap();
                let n = fetches.entry(self.id.clone()).or_default();
                *n += 1;
                *n
            };
            // Callers pile up behind the flight meanwhile.
            tokio::task::yield_now().await;
            Ok(AccessToken::new(
                Secret::new(format!("a-{}-{n}", self.id)),
                "Bearer",
                Issued::now(self.clock.as_ref()),
                LIFETIME,
            )?
            .with_refresh_token(Some(Secret::new(format!("r-{}-{n}", self.id)))))
        })
    }

    fn provider(&self) -> &'static str {
        "fakepay"
    }

    fn flow(&self) -> &'static str {
        "authorization_code"
    }
}

/// A store that refuses every write while `down`, and holds every write
/// back while `slow` (until `opened`).
#[derive(Default)]
struct Flaky {
    inner: MemoryStore,
    down: AtomicBool,
    slow: AtomicBool,
    opened: tokio::sync::Notify,
}

impl Flaky {
    fn check(&self) -> Result<(), Error> {
        if self.down.load(Ordering::SeqCst) {
            Err(Error::new(ErrorKind::Store).with_description("down"))
        } else {
            Ok(())
        }
    }
}

impl TokenStore for Flaky {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        self.inner.load(key)
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            while self.slow.load(Ordering::SeqCst) {
                let opened = self.opened.notified();
                if !self.slow.load(Ordering::SeqCst) {
                    break;
                }
                opened.await;
            }
            self.check()?;
            self.inner.save(key, token).await
        })
    }

    fn clear<'a>(
        &'a self,
        key: &'a str,
        if_holds: Option<&'a Secret>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.inner.clear(key, if_holds)
    }
}

struct World {
    clock: Arc<ManualClock>,
    upstream: Arc<Upstream>,
    store: Arc<Flaky>,
}

impl World {
    fn new() -> Self {
        Self {
            clock: Arc::new(ManualClock::new()),
            upstream: Arc::default(),
            store: Arc::default(),
        }
    }

    fn subjects(&self, capacity: usize, idle: Option<Duration>) -> Subjects<String> {
        let (clock, upstream, store) = (
            Arc::clone(&self.clock),
            Arc::clone(&self.upstream),
            Arc::clone(&self.store),
        );
        Subjects::builder(move |id: &String| {
            TokenCache::builder(Customer {
                id: id.clone(),
                upstream: Arc::clone(&upstream),
                clock: Arc::clone(&clock),
            })
            .clock(Arc::clone(&clock) as Arc<dyn Clock>)
            .store(Arc::clone(&store) as _, format!("fakepay:customer:{id}"))
            .jitter(0.0)
            .build()
        })
        .capacity(capacity)
        .time_to_idle(idle)
        .clock(Arc::clone(&self.clock) as _)
        .build()
    }
}

fn value(token: &AccessToken) -> String {
    token.secret().expose_secret().to_owned()
}

async fn settled(subjects: &Subjects<String>) {
    for _ in 0..200 {
        if subjects.aside() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{} evicted subjects were never saved", subjects.aside());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_callers_of_many_customers_make_one_fetch_per_customer_per_expiry() {
    let world = World::new();
    let subjects = world.subjects(1000, None);
    let customers: Vec<String> = (0..50).map(|i| format!("c{i}")).collect();
    for round in 1..=2 {
        let mut calls = tokio::task::JoinSet::new();
        for customer in customers.iter().cycle().take(50 * 20) {
            let (subjects, customer) = (subjects.clone(), customer.clone());
            calls.spawn(async move {
                let token = subjects.token(&customer).await.unwrap();
                assert_eq!(value(&token), format!("a-{customer}-{round}"));
            });
        }
        while let Some(call) = calls.join_next().await {
            call.unwrap();
        }
        for customer in &customers {
            assert_eq!(world.upstream.fetches(customer), round, "{customer}");
        }
        world.clock.advance(LIFETIME);
    }
}

#[tokio::test]
async fn capacity_bounds_the_customers_in_memory_and_an_evicted_one_comes_back_from_the_store() {
    let world = World::new();
    let subjects = world.subjects(64, None);
    for i in 0..1000 {
        subjects.token(&format!("c{i}")).await.unwrap();
    }
    assert!(subjects.len() <= 64, "{} in memory", subjects.len());
    settled(&subjects).await;
    // Every customer was fetched once; one evicted long ago is read back
    // from the store rather than fetched again.
    let token = subjects.token(&"c0".to_owned()).await.unwrap();
    assert_eq!(value(&token), "a-c0-1");
    assert_eq!(world.upstream.fetches("c0"), 1);
}

#[tokio::test]
async fn a_customer_idle_past_the_time_to_idle_is_evicted_and_one_in_use_is_kept() {
    let world = World::new();
    let subjects = world.subjects(1000, Some(Duration::from_secs(60)));
    subjects.token(&"idle".to_owned()).await.unwrap();
    subjects.token(&"busy".to_owned()).await.unwrap();
    world.clock.advance(Duration::from_secs(45));
    subjects.token(&"busy".to_owned()).await.unwrap();
    world.clock.advance(Duration::from_secs(20));
    assert_eq!(subjects.evict_idle(), 1);
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects.get("busy").key(), "busy");
    // `get` sweeps by itself once half the idle time has passed.
    world.clock.advance(Duration::from_secs(61));
    subjects.get("other");
    assert_eq!(subjects.len(), 1, "busy went idle and was swept");
}

#[tokio::test]
async fn a_customer_evicted_with_an_unsaved_rotated_refresh_token_is_saved_before_it_is_dropped() {
    let world = World::new();
    let subjects = world.subjects(1000, Some(Duration::from_secs(60)));
    let key = "c-rotated".to_owned();
    subjects.token(&key).await.unwrap();
    world.clock.advance(LIFETIME);
    // The store is down when the provider rotates the refresh token.
    world.store.down.store(true, Ordering::SeqCst);
    let rotated = subjects.token(&key).await.unwrap();
    assert_eq!(value(&rotated), "a-c-rotated-2");

    world.clock.advance(Duration::from_secs(61));
    assert_eq!(subjects.evict_idle(), 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(subjects.aside(), 1, "kept aside while its save fails");
    // Asked for meanwhile: the very cache, with the rotated token; no
    // second cache reads the stale token from the store.
    let back = subjects.get(&key);
    assert_eq!(value(&back.peek().unwrap()), "a-c-rotated-2");
    assert_eq!(subjects.aside(), 0);
    drop(back);

    world.clock.advance(Duration::from_secs(61));
    assert_eq!(subjects.evict_idle(), 1);
    world.store.down.store(false, Ordering::SeqCst);
    subjects.flush().await.unwrap();
    assert_eq!(subjects.aside(), 0, "saved, then dropped");
    let stored = world
        .store
        .load("fakepay:customer:c-rotated")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.refresh_token.unwrap().as_secret().expose_secret(),
        "r-c-rotated-2"
    );
    // The next refresh, by a new cache, starts from the rotated token.
    world.clock.advance(LIFETIME);
    subjects.token(&key).await.unwrap();
    assert_eq!(
        world
            .upstream
            .refreshed_with
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .as_deref(),
        Some("r-c-rotated-2")
    );
}

/// Found by the simulation's many-subjects mode: a refresh ahead of expiry
/// runs on after its caller got the still-valid token, so the subject
/// looked unheld and had nothing unsaved yet while the rotated refresh
/// token was on its way to the store; dropping it cancelled that save.
#[tokio::test]
async fn a_customer_evicted_while_a_refresh_ahead_of_expiry_is_saving_is_dropped_only_once_saved() {
    let world = World::new();
    let subjects = world.subjects(1000, Some(Duration::from_secs(60)));
    let key = "c-ahead".to_owned();
    subjects.token(&key).await.unwrap();
    // Within the refresh margin, still valid: the caller is served at once
    // and the refresh runs on; the store is slow to take its token.
    world.clock.advance(Duration::from_secs(580));
    world.store.slow.store(true, Ordering::SeqCst);
    let served = subjects.token(&key).await.unwrap();
    assert_eq!(value(&served), "a-c-ahead-1");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(world.upstream.fetches(&key), 2, "rotated, saving");

    world.clock.advance(Duration::from_secs(61));
    assert_eq!(subjects.evict_idle(), 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(subjects.aside(), 1, "kept while its refresh is saving");
    world.store.slow.store(false, Ordering::SeqCst);
    world.store.opened.notify_waiters();
    settled(&subjects).await;
    let stored = world
        .store
        .load("fakepay:customer:c-ahead")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.refresh_token.unwrap().as_secret().expose_secret(),
        "r-c-ahead-2"
    );
}

/// Found by the simulation's many-subjects mode (about one seed in 1,500):
/// a refresh whose save waited behind the retry of an older unsaved token
/// compared the store against what it had seen before that retry landed,
/// took the cache's own older token for another writer's, and gave up its
/// rotated refresh token as superseded.
#[tokio::test]
async fn a_refresh_saved_behind_the_retry_of_an_older_unsaved_token_is_written() {
    let world = World::new();
    let subjects = world.subjects(1000, None);
    let key = "c-behind".to_owned();
    subjects.token(&key).await.unwrap();
    // The store is down when the provider rotates: a-2 is unsaved.
    world.clock.advance(LIFETIME);
    world.store.down.store(true, Ordering::SeqCst);
    assert_eq!(value(&subjects.token(&key).await.unwrap()), "a-c-behind-2");
    // Back, but slow: a call starts the retry of a-2, which waits.
    world.store.down.store(false, Ordering::SeqCst);
    world.store.slow.store(true, Ordering::SeqCst);
    world.clock.advance(Duration::from_secs(120));
    subjects.token(&key).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Within the margin: a refresh ahead of expiry fetches a-3, whose save
    // waits behind the retry.
    world.clock.advance(Duration::from_secs(460));
    subjects.token(&key).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(world.upstream.fetches(&key), 3);
    world.store.slow.store(false, Ordering::SeqCst);
    world.store.opened.notify_waiters();
    subjects.flush().await.unwrap();
    let stored = world
        .store
        .load("fakepay:customer:c-behind")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.refresh_token.unwrap().as_secret().expose_secret(),
        "r-c-behind-3"
    );
}

#[tokio::test]
async fn a_customer_evicted_by_capacity_is_saved_by_a_task_of_its_own() {
    let world = World::new();
    let subjects = world.subjects(8, None);
    world.store.down.store(true, Ordering::SeqCst);
    for i in 0..200 {
        let _ = subjects.token(&format!("c{i}")).await;
    }
    assert!(subjects.aside() > 0, "evicted and unsaved, kept aside");
    world.store.down.store(false, Ordering::SeqCst);
    subjects.get("trigger"); // an eviction or placement starts the saves
    let _ = subjects.token(&"c-last".to_owned()).await;
    settled(&subjects).await;
    // Every customer evicted was saved; only those still in memory may
    // wait for their own retry.
    let mut stored = 0;
    for i in 0..200 {
        let key = format!("fakepay:customer:c{i}");
        stored += usize::from(world.store.load(&key).await.unwrap().is_some());
    }
    assert!(stored + subjects.len() >= 200, "{stored} stored");
    subjects.flush().await.unwrap();
    for i in 0..200 {
        let key = format!("fakepay:customer:c{i}");
        assert!(world.store.load(&key).await.unwrap().is_some(), "{key}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_cache_handed_out_is_always_the_one_built_for_the_key_asked_for(
        steps in proptest::collection::vec((0..12u8, 0..3u8), 1..80),
        capacity in 1..6usize,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let world = World::new();
            let subjects = world.subjects(capacity, Some(Duration::from_secs(60)));
            for (customer, action) in steps {
                let key = format!("c{customer}");
                match action {
                    0 => world.clock.advance(Duration::from_secs(40)),
                    1 => { subjects.evict_idle(); }
                    _ => {}
                }
                let subject = subjects.get(&key);
                prop_assert_eq!(subject.key(), &key);
                let token = subject.token().await.unwrap();
                prop_assert!(value(&token).starts_with(&format!("a-{key}-")), "{} for {}", value(&token), key);
            }
            Ok(())
        })?;
    }
}
