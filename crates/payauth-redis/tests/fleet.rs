//! A fleet: independent `TokenCache`s (each with its own HTTP client and
//! its own Redis connection, as separate replicas would have) sharing one
//! Redis, against the sandbox.

mod support;

use std::sync::Arc;
use std::time::Duration;

use payauth_core::{Clock, ManualClock, Secret, TokenCache, TokenSource, TokenStore};
use payauth_redis::RedisStore;
use payauth_sandbox::{Endpoint, Fault, RunningSandbox, Sandbox, Schedule, defaults};
use payauth_vakifbank::{Channel, Resource, VakifBank, VakifBankConfig};
use support::{Redis, herd, mypos, new_store};

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

#[tokio::test]
async fn a_refresh_token_rotated_by_one_replica_is_the_one_the_next_replica_uses() {
    let Some(redis) = Redis::get() else { return };
    let sandbox = Sandbox::builder().start().await.unwrap();
    let clock = Arc::new(ManualClock::new());
    let bank = |sandbox: &RunningSandbox| {
        let mut config = VakifBankConfig::new(
            defaults::VAKIFBANK_CLIENT_ID,
            Secret::new(defaults::VAKIFBANK_CLIENT_SECRET),
            Resource::Sandbox,
        );
        config.base_url = sandbox.base_url();
        VakifBank::new(config, payauth_core::http::default_client().unwrap())
            .unwrap()
            .with_clock(Arc::clone(&clock) as Arc<dyn Clock>)
    };

    // A login, stored for the fleet.
    let login = bank(&sandbox);
    let pending = login
        .authorize_url(
            Channel::Retail,
            &["account"],
            "https://app.example/cb",
            false,
        )
        .unwrap();
    let redirect = payauth_core::http::default_client()
        .unwrap()
        .get(pending.url.clone())
        .send()
        .await
        .unwrap();
    let code = pending
        .callback(redirect.headers()["location"].to_str().unwrap())
        .unwrap();
    let first = login.exchange(&pending, &code).await.unwrap();
    let shared = new_store(&redis).await;
    shared
        .save(
            "vakifbank:login",
            &payauth_core::StoredToken::from_token(&first),
        )
        .await
        .unwrap();

    // Two replicas take turns refreshing: each must use the refresh token
    // the other rotated (the sandbox refuses a used one).
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let source: Arc<dyn TokenSource> = Arc::new(bank(&sandbox).refresh_source(&["account"]));
        replicas.push(
            TokenCache::builder(source)
                .clock(Arc::clone(&clock) as Arc<dyn Clock>)
                .shared_store(Arc::new(new_store(&redis).await), "vakifbank:login")
                .build(),
        );
    }
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
