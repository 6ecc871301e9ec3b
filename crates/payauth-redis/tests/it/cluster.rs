//! The fleet protocol on a real three-node Redis Cluster: every script
//! touches keys of one hash tag, so it runs on the node owning that slot
//! (a cross-slot script would fail with `CROSSSLOT`).

use std::sync::Arc;
use std::time::Duration;

use payauth_core::{
    Clock, ErrorKind, ManualClock, Secret, SharedStore, StoredToken, TokenCache, TokenStore,
};
use payauth_redis::RedisStore;
use payauth_sandbox::{Endpoint, Fault, Sandbox, Schedule};
use payauth_testkit::redis::RedisCluster;
use redis::cluster_async::ClusterConnection;

use crate::support::{herd, mypos};

async fn store(cluster: &RedisCluster) -> RedisStore<ClusterConnection> {
    let nodes: Vec<Secret> = cluster.urls.iter().cloned().map(Secret::new).collect();
    RedisStore::connect_cluster(&nodes)
        .await
        .expect("connect to the test cluster")
        .with_prefix(cluster.prefix.clone())
        .with_poll_interval(Duration::from_millis(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_a_cluster_make_one_fetch_per_key_and_expiry_whichever_node_owns_it() {
    let Some(cluster) = RedisCluster::get() else {
        return;
    };
    let sandbox = Sandbox::builder().start().await.unwrap();
    sandbox.faults().set(
        Endpoint::MyposToken,
        Fault::Latency(Duration::from_millis(100)),
        Schedule::Always,
    );
    let clock = Arc::new(ManualClock::new());
    // Keys chosen to land on different slots, so on different nodes.
    let keys = ["merchant-a", "merchant-b", "merchant-c", "merchant-d"];
    let mut replicas = Vec::new();
    for _ in 0..4 {
        let store = Arc::new(store(&cluster).await);
        for key in keys {
            let source = mypos(&sandbox, &clock);
            replicas.push(
                TokenCache::builder(source)
                    .clock(Arc::clone(&clock) as Arc<dyn Clock>)
                    .shared_store(Arc::clone(&store) as Arc<dyn SharedStore>, key)
                    .build(),
            );
        }
    }
    for expiry in 1..=2 {
        herd(&replicas, 50).await;
        assert_eq!(
            sandbox.requests(Endpoint::MyposToken),
            (keys.len() * expiry) as u64,
            "one fetch per key after expiry {expiry}"
        );
        clock.advance(Duration::from_secs(86_400));
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn fencing_and_compare_and_set_hold_on_a_cluster() {
    let Some(cluster) = RedisCluster::get() else {
        return;
    };
    let (a, b) = (store(&cluster).await, store(&cluster).await);
    let token = |value: &str| {
        StoredToken::from_token(
            &payauth_core::AccessToken::new(
                Secret::new(value),
                "Bearer",
                payauth_core::Issued::now(&payauth_core::SystemClock),
                Duration::from_secs(60),
            )
            .unwrap(),
        )
    };
    let first = a.try_lease("k").await.unwrap().expect("lease");
    assert!(b.try_lease("k").await.unwrap().is_none());
    b.save("k", &token("operator")).await.unwrap();
    let error = first.save(&token("late")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store);
    first.release().await.unwrap();
    let second = b.try_lease("k").await.unwrap().expect("released");
    second.save(&token("renewed")).await.unwrap();
    let stored = a.load("k").await.unwrap().unwrap();
    assert_eq!(stored.access_token.as_secret().expose_secret(), "renewed");
}

#[tokio::test]
async fn failure_sharing_and_the_newest_wins_save_run_on_a_cluster() {
    let Some(cluster) = RedisCluster::get() else {
        return;
    };
    let store = store(&cluster).await;
    let failure = payauth_core::StoredFailure::from_error(
        &payauth_core::Error::new(ErrorKind::InvalidClient).with_status(401),
    );
    for key in ["merchant-a", "merchant-b", "merchant-c"] {
        store
            .share_failure(key, &failure, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            store.shared_failure(key).await.unwrap(),
            Some(failure.clone())
        );
        let token = StoredToken::from_token(
            &payauth_core::AccessToken::new(
                Secret::new(key),
                "Bearer",
                payauth_core::Issued::now(&payauth_core::SystemClock),
                Duration::from_secs(60),
            )
            .unwrap(),
        );
        assert!(
            store
                .save_if(key, &token, payauth_core::SaveIf::NotNewer)
                .await
                .unwrap()
        );
        assert_eq!(store.load(key).await.unwrap(), Some(token));
    }
}
