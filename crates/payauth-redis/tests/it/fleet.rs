//! A fleet: independent `TokenCache`s (each with its own HTTP client and
//! its own Redis connection, as separate replicas would have) sharing one
//! Redis, against the sandbox.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use payauth_core::{
    AccessToken, Clock, ErrorKind, ManualClock, SaveIf, Secret, SharedStore, StoredToken,
    TokenCache, TokenStore,
};
use payauth_mypos::{Mypos, MyposSettings};
use payauth_redis::RedisStore;
use payauth_sandbox::{Endpoint, Fault, RunningSandbox, Sandbox, Schedule, defaults};
use payauth_vakifbank::{Channel, VakifBank, VakifBankSettings};

use crate::support::{Redis, herd, mypos, new_store, raw_conn};

const REPLICAS: usize = 8;
const CALLERS: usize = 500;
const KEY: &str = "mypos:fleet";

async fn replica(
    redis: &Redis,
    sandbox: &RunningSandbox,
    clock: &Arc<ManualClock>,
    lease_ttl: Duration,
) -> TokenCache {
    let store = new_store(redis)
        .await
        .with_lease_ttl(lease_ttl)
        .with_poll_interval(Duration::from_millis(20));
    TokenCache::builder(mypos(sandbox, clock))
        .clock(Arc::clone(clock) as Arc<dyn Clock>)
        .shared_store(Arc::new(store), KEY)
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_replicas_with_500_callers_each_make_one_upstream_fetch_per_expiry() {
    let Some(redis) = Redis::get() else { return };
    let sandbox = Sandbox::builder().start().await.unwrap();
    // A slow token endpoint, so the replicas really overlap.
    sandbox.faults().set(
        Endpoint::MyposToken,
        Fault::Latency(Duration::from_millis(200)),
        Schedule::Always,
    );
    let clock = Arc::new(ManualClock::new());
    let mut replicas = Vec::new();
    for _ in 0..REPLICAS {
        replicas.push(replica(&redis, &sandbox, &clock, Duration::from_secs(5)).await);
    }
    let mut seen = Vec::new();
    for expiry in 1..=3 {
        let tokens = herd(&replicas, CALLERS).await;
        assert_eq!(tokens.len(), REPLICAS * CALLERS);
        assert!(
            tokens.iter().all(|t| *t == tokens[0]),
            "one token fleet-wide"
        );
        assert_eq!(
            sandbox.requests(Endpoint::MyposToken),
            expiry,
            "upstream fetches after expiry {expiry}"
        );
        seen.push(tokens[0].clone());
        // Past the token's lifetime (24 h) for every replica.
        clock.advance(Duration::from_secs(86_400));
    }
    seen.dedup();
    assert_eq!(seen.len(), 3, "a new token per expiry");
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_the_lease_holder_dies_mid_fetch_another_replica_completes_and_no_caller_errs() {
    let Some(redis) = Redis::get() else { return };
    let sandbox = Arc::new(Sandbox::builder().start().await.unwrap());
    // The first fetch hangs: its replica dies while waiting for it.
    sandbox.faults().set(
        Endpoint::MyposToken,
        Fault::Latency(Duration::from_secs(30)),
        Schedule::Times(1),
    );
    let clock = Arc::new(ManualClock::new());
    let lease_ttl = Duration::from_millis(500);

    // The doomed replica runs on its own runtime, like its own process.
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let holder = {
        let redis_url = redis.url.clone();
        let prefix = redis.prefix.clone();
        let (sandbox, clock) = (Arc::clone(&sandbox), Arc::clone(&clock));
        doomed.spawn(async move {
            let store = RedisStore::connect(&Secret::new(redis_url))
                .await
                .unwrap()
                .with_prefix(prefix)
                .with_lease_ttl(lease_ttl);
            let cache = TokenCache::builder(mypos(&sandbox, &clock))
                .clock(clock as Arc<dyn Clock>)
                .shared_store(Arc::new(store), KEY)
                .build();
            cache.token().await
        })
    };
    while sandbox.requests(Endpoint::MyposToken) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let mut replicas = Vec::new();
    for _ in 1..REPLICAS {
        replicas.push(replica(&redis, &sandbox, &clock, lease_ttl).await);
    }
    let survivors = tokio::spawn(async move { herd(&replicas, CALLERS).await });
    tokio::time::sleep(lease_ttl / 2).await;
    // Kill the lease holder mid-fetch: its tasks stop, its lease is never
    // released nor renewed.
    doomed.shutdown_background();
    assert!(holder.await.is_err(), "the holder never finished");

    let tokens = survivors.await.unwrap();
    assert_eq!(tokens.len(), (REPLICAS - 1) * CALLERS);
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "one token fleet-wide"
    );
    assert_eq!(
        sandbox.requests(Endpoint::MyposToken),
        2,
        "the dead holder's fetch and one takeover"
    );
    let stored = new_store(&redis).await.load(KEY).await.unwrap().unwrap();
    assert_eq!(stored.access_token.as_secret().expose_secret(), tokens[0]);
}

/// A VakıfBank client on the sandbox, reading `clock`.
fn bank(sandbox: &RunningSandbox, clock: &Arc<ManualClock>) -> VakifBank {
    let settings = VakifBankSettings::new(
        defaults::VAKIFBANK_CLIENT_ID,
        Secret::new(defaults::VAKIFBANK_CLIENT_SECRET),
        payauth_core::Environment::Custom(sandbox.base_url()),
    );
    VakifBank::new(&settings, &payauth_core::http::default_client().unwrap())
        .unwrap()
        .with_clock(Arc::clone(clock) as Arc<dyn Clock>)
}

/// A customer's login: authorization code, then `exchange()`.
pub(crate) async fn login(sandbox: &RunningSandbox, clock: &Arc<ManualClock>) -> AccessToken {
    let login = bank(sandbox, clock);
    let pending = login
        .authorize_url(
            Channel::Retail,
            &["account"],
            "https://app.example/cb",
            false,
        )
        .unwrap();
    let http = payauth_core::http::default_client().unwrap();
    let redirect = payauth_sandbox::browser::authorize(&http, pending.url.as_str())
        .await
        .unwrap();
    let code = pending.callback(&redirect).unwrap();
    login.exchange(&pending, &code).await.unwrap()
}

/// A replica refreshing the customer's login through `store`.
fn login_replica(
    sandbox: &RunningSandbox,
    clock: &Arc<ManualClock>,
    store: RedisStore,
    seed: Option<AccessToken>,
) -> TokenCache {
    let mut builder = TokenCache::builder(bank(sandbox, clock).refresh_token(&["account"]))
        .clock(Arc::clone(clock) as Arc<dyn Clock>)
        .shared_store(Arc::new(store), "vakifbank:login")
        .failure_backoff(Duration::from_secs(1))
        .jitter(0.0);
    if let Some(seed) = seed {
        builder = builder.seed(seed);
    }
    builder.build()
}

#[tokio::test]
async fn a_refresh_token_rotated_by_one_replica_is_the_one_the_next_replica_uses() {
    let Some(redis) = Redis::get() else { return };
    let sandbox = Sandbox::builder().start().await.unwrap();
    let clock = Arc::new(ManualClock::new());
    let first = login(&sandbox, &clock).await;

    // Two replicas take turns refreshing: each must use the refresh token
    // the other rotated (the sandbox refuses a used one). The login is
    // handed to the first one, in memory.
    let replicas = [
        login_replica(
            &sandbox,
            &clock,
            new_store(&redis).await,
            Some(first.clone()),
        ),
        login_replica(&sandbox, &clock, new_store(&redis).await, None),
    ];
    let mut tokens = vec![first.secret().expose_secret().to_owned()];
    for turn in 0..4 {
        clock.advance(first.lifetime());
        let token = replicas[turn % 2].token().await.expect("refreshed");
        tokens.push(token.secret().expose_secret().to_owned());
    }
    let refreshes = sandbox.requests(Endpoint::VakifbankToken) - 1;
    assert_eq!(refreshes, 4, "one refresh per turn, none refused");
    tokens.dedup();
    assert_eq!(tokens.len(), 5);
    sandbox.shutdown().await;
}

/// A TCP proxy in front of Redis that can cut every connection through it
/// and refuse new ones: a network blip, as a replica sees it.
struct Proxy {
    url: String,
    down: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(redis: &Redis) -> Self {
        let client = redis::Client::open(redis.url.as_str()).unwrap();
        let redis::ConnectionAddr::Tcp(host, port) = client.get_connection_info().addr().clone()
        else {
            panic!("the test Redis listens on TCP");
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = redis.url.replacen(
            &format!("{host}:{port}"),
            &listener.local_addr().unwrap().to_string(),
            1,
        );
        let (down, connections) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(Mutex::new(Vec::new())),
        );
        tokio::spawn({
            let (down, connections) = (Arc::clone(&down), Arc::clone(&connections));
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if down.load(Ordering::SeqCst) {
                        continue; // dropped: the connection closes at once
                    }
                    let Ok(mut outbound) =
                        tokio::net::TcpStream::connect((host.as_str(), port)).await
                    else {
                        continue;
                    };
                    let task = tokio::spawn(async move {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    });
                    connections.lock().unwrap().push(task.abort_handle());
                }
            }
        });
        Self {
            url,
            down,
            connections,
        }
    }

    async fn store(&self, redis: &Redis) -> RedisStore {
        RedisStore::connect(&Secret::new(self.url.clone()))
            .await
            .unwrap()
            .with_prefix(redis.prefix.clone())
            .with_lease_ttl(Duration::from_millis(500))
    }

    /// Cuts every connection and refuses new ones until `restore`.
    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

async fn stored_access_token(redis: &Redis, key: &str) -> Option<String> {
    new_store(redis)
        .await
        .load(key)
        .await
        .unwrap()
        .map(|s| s.access_token.as_secret().expose_secret().to_owned())
}

async fn until_stored(redis: &Redis, key: &str, token: &AccessToken) {
    let expected = Some(token.secret().expose_secret().to_owned());
    for _ in 0..500 {
        if stored_access_token(redis, key).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the token never reached Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_save_lost_to_a_dropped_connection_is_saved_again_and_the_rotated_refresh_token_survives()
 {
    let Some(redis) = Redis::get() else { return };
    let sandbox = Sandbox::builder().start().await.unwrap();
    let clock = Arc::new(ManualClock::new());
    let first = login(&sandbox, &clock).await;
    let proxy = Proxy::start(&redis).await;
    let a = login_replica(
        &sandbox,
        &clock,
        proxy.store(&redis).await,
        Some(first.clone()),
    );
    a.token().await.unwrap(); // saves the seeded login
    until_stored(&redis, "vakifbank:login", &first).await;

    // A refreshes; the connection to Redis drops while the bank answers,
    // so the leased save of the rotated token fails in transport.
    clock.advance(first.lifetime());
    sandbox.faults().set(
        Endpoint::VakifbankToken,
        Fault::Latency(Duration::from_millis(300)),
        Schedule::Times(1),
    );
    let refreshing = tokio::spawn({
        let a = a.clone();
        async move { a.token().await }
    });
    while sandbox.requests(Endpoint::VakifbankToken) < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    proxy.cut();
    // The caller gets the rotated token all the same; flush reports that
    // it is not in Redis.
    let rotated = refreshing.await.unwrap().unwrap();
    assert_ne!(rotated.secret(), first.secret());
    assert_eq!(
        a.peek().unwrap().secret(),
        rotated.secret(),
        "kept in memory"
    );
    let error = a.flush().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store, "{error}");

    // Redis is back: after the backoff, A's next call saves it again.
    proxy.restore();
    clock.advance(Duration::from_millis(1100));
    assert_eq!(a.token().await.unwrap().secret(), rotated.secret());
    until_stored(&redis, "vakifbank:login", &rotated).await;

    // Another replica refreshes with the rotated refresh token; the bank
    // would refuse the stale one.
    let b = login_replica(&sandbox, &clock, new_store(&redis).await, None);
    clock.advance(first.lifetime());
    b.token()
        .await
        .expect("refreshed with the rotated refresh token");
    sandbox.shutdown().await;
}

/// A myPOS client whose secret the sandbox refuses.
fn refused_mypos(sandbox: &RunningSandbox, clock: &Arc<ManualClock>) -> Mypos {
    let settings = MyposSettings::new(
        defaults::MYPOS_CLIENT_ID,
        Secret::new("not-the-secret"),
        payauth_core::Environment::Custom(sandbox.base_url()),
    );
    Mypos::new(&settings, &payauth_core::http::default_client().unwrap())
        .unwrap()
        .with_clock(Arc::clone(clock) as Arc<dyn Clock>)
}

#[tokio::test]
async fn a_refusal_seen_by_the_lease_holder_reaches_the_other_replicas_through_redis() {
    let Some(redis) = Redis::get() else { return };
    let sandbox = Sandbox::builder().start().await.unwrap();
    let clock = Arc::new(ManualClock::new());
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(
            TokenCache::builder(refused_mypos(&sandbox, &clock))
                .clock(Arc::clone(&clock) as Arc<dyn Clock>)
                .shared_store(Arc::new(new_store(&redis).await), KEY)
                .build(),
        );
    }
    for replica in &replicas {
        let error = replica.token().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidClient, "{error}");
    }
    assert_eq!(
        sandbox.requests(Endpoint::MyposToken),
        1,
        "one replica asked; the others took its answer from Redis"
    );
    let failure_key = new_store(&redis)
        .await
        .redis_keys(KEY)
        .0
        .replace(":token", ":failure");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&failure_key)
        .query_async(&mut raw_conn(&redis).await)
        .await
        .unwrap();
    assert!(
        (1..=1_250).contains(&ttl),
        "shared for the holder's first backoff (1 s plus jitter): {ttl} ms"
    );
    sandbox.shutdown().await;
}

fn stored(access: &str, issued_ms: u64) -> StoredToken {
    StoredToken {
        access_token: Secret::new(access).into(),
        token_type: "Bearer".to_owned(),
        expires_at_unix_ms: issued_ms + 3_600_000,
        lifetime_ms: 3_600_000,
        issued_at_unix_ms: issued_ms,
        scope: None,
        refresh_token: Some(Secret::new(format!("r-{access}")).into()),
    }
}

#[tokio::test]
async fn conditional_saves_hold_against_other_writers_in_redis() {
    let Some(redis) = Redis::get() else { return };
    let store = new_store(&redis).await;
    let now = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let (older, newer) = (stored("older", now), stored("newer", now + 5));
    assert!(store.save_if("k", &newer, SaveIf::NotNewer).await.unwrap());
    assert!(!store.save_if("k", &older, SaveIf::NotNewer).await.unwrap());
    assert_eq!(store.load("k").await.unwrap(), Some(newer.clone()));
    let holds_older = SaveIf::Holds {
        access_tokens: &[older.access_token.as_secret()],
        or_nothing: false,
    };
    assert!(!store.save_if("k", &older, holds_older).await.unwrap());
    let holds_newer = SaveIf::Holds {
        access_tokens: &[newer.access_token.as_secret()],
        or_nothing: false,
    };
    assert!(store.save_if("k", &older, holds_newer).await.unwrap());
    assert_eq!(store.load("k").await.unwrap(), Some(older.clone()));
    // An unreadable stored token counts as nothing stored.
    let (token_key, _) = store.redis_keys("k");
    let _: () = redis::cmd("HSET")
        .arg(&token_key)
        .arg("t")
        .arg("not json")
        .query_async(&mut raw_conn(&redis).await)
        .await
        .unwrap();
    assert!(!store.save_if("k", &newer, holds_older).await.unwrap());
    let or_nothing = SaveIf::Holds {
        access_tokens: &[],
        or_nothing: true,
    };
    assert!(store.save_if("k", &newer, or_nothing).await.unwrap());
    assert_eq!(store.load("k").await.unwrap(), Some(newer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_whose_renewals_cannot_reach_redis_is_no_longer_held_after_its_ttl() {
    let Some(redis) = Redis::get() else { return };
    let proxy = Proxy::start(&redis).await;
    let store = proxy.store(&redis).await; // lease TTL 500 ms
    let lease = SharedStore::try_lease(&store, "held")
        .await
        .unwrap()
        .expect("a free lease");
    assert!(lease.held(), "confirmed when taken");
    // The heartbeat renews it every third of the TTL: held well past one.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(lease.held(), "renewed");
    // Redis is out of reach: no renewal lands, and once the TTL since the
    // last one has run out the holder knows it may have lost the lease.
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!lease.held(), "not confirmed within its TTL");
    proxy.restore();
}
