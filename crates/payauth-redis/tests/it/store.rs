//! `RedisStore` against a real Redis: the stored form, the lease, fencing,
//! compare-and-set, encryption, and what errors show.

use std::time::Duration;

use payauth_core::{
    AccessToken, ErrorKind, Issued, Secret, SharedStore, StoredToken, SystemClock, TokenStore,
};
use payauth_redis::{
    EncryptionKey, LEASE_TTL_LIMITS, MAX_WAIT_LIMITS, POLL_INTERVAL_LIMITS, RedisStore,
};
use redis::AsyncCommands;

use crate::support::{Redis, new_store, raw_conn};

const SENTINEL: &str = "SENTINEL-7d1f0c";

fn token(access: &str, refresh: Option<&str>) -> StoredToken {
    let token = AccessToken::new(
        Secret::new(access),
        "Bearer",
        Issued::now(&SystemClock),
        Duration::from_secs(3600),
    )
    .unwrap()
    .with_refresh_token(refresh.map(Secret::new));
    StoredToken::from_token(&token)
}

fn access(stored: &StoredToken) -> &str {
    stored.access_token.as_secret().expose_secret()
}

#[tokio::test]
async fn a_saved_token_loads_back_with_its_refresh_token() {
    let Some(redis) = Redis::get() else { return };
    let store = new_store(&redis).await;
    assert!(store.load("k").await.unwrap().is_none());
    let saved = token("a1", Some("r1"));
    store.save("k", &saved).await.unwrap();
    assert_eq!(store.load("k").await.unwrap(), Some(saved));
}

#[tokio::test]
async fn only_one_replica_holds_the_lease_until_it_is_released() {
    let Some(redis) = Redis::get() else { return };
    let (a, b) = (new_store(&redis).await, new_store(&redis).await);
    let lease = a.try_lease("k").await.unwrap().expect("free lease taken");
    assert!(b.try_lease("k").await.unwrap().is_none());
    assert!(
        a.try_lease("k").await.unwrap().is_none(),
        "not even twice by one store"
    );
    lease.release().await.unwrap();
    assert!(b.try_lease("k").await.unwrap().is_some());
}

#[tokio::test]
async fn a_live_holder_keeps_its_lease_and_a_dead_one_loses_it_after_the_ttl() {
    let Some(redis) = Redis::get() else { return };
    let ttl = Duration::from_millis(300);
    let a = new_store(&redis).await.with_lease_ttl(ttl);
    let b = new_store(&redis).await.with_lease_ttl(ttl);
    let lease = a.try_lease("k").await.unwrap().unwrap();
    // Three TTLs later the heartbeat has kept it.
    tokio::time::sleep(ttl * 3).await;
    assert!(b.try_lease("k").await.unwrap().is_none());
    // The holder dies without releasing: the lease expires by itself.
    drop(lease);
    let mut taken = None;
    for _ in 0..40 {
        tokio::time::sleep(ttl / 4).await;
        taken = b.try_lease("k").await.unwrap();
        if taken.is_some() {
            break;
        }
    }
    assert!(taken.is_some(), "another replica takes over");
}

#[tokio::test]
async fn a_holder_that_lost_its_lease_cannot_save_nor_release_the_new_holders() {
    let Some(redis) = Redis::get() else { return };
    let (a, b) = (new_store(&redis).await, new_store(&redis).await);
    let stale = a.try_lease("k").await.unwrap().unwrap();
    // The lease expires during a long pause of its holder...
    let (token_key, lease_key) = a.redis_keys("k");
    let _: () = raw_conn(&redis).await.del(&lease_key).await.unwrap();
    // ...and another replica takes it and saves.
    let current = b.try_lease("k").await.unwrap().unwrap();
    current.save(&token("new", None)).await.unwrap();
    let error = stale.save(&token("stale", None)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store);
    assert!(error.to_string().contains("lease"), "{error}");
    stale.release().await.unwrap();
    assert!(a.try_lease("k").await.unwrap().is_none(), "still b's");
    assert_eq!(access(&a.load("k").await.unwrap().unwrap()), "new");
    let version: u64 = raw_conn(&redis).await.hget(&token_key, "v").await.unwrap();
    assert_eq!(version, 1);
}

#[tokio::test]
async fn a_lease_holder_never_overwrites_a_token_stored_after_it_took_the_lease() {
    let Some(redis) = Redis::get() else { return };
    let store = new_store(&redis).await;
    store.save("k", &token("first", None)).await.unwrap();
    let lease = store.try_lease("k").await.unwrap().unwrap();
    // An operator's login writes meanwhile (the unconditional path).
    new_store(&redis)
        .await
        .save("k", &token("login", Some("r")))
        .await
        .unwrap();
    let error = lease.save(&token("late", None)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store);
    assert!(error.to_string().contains("newer"), "{error}");
    assert_eq!(access(&store.load("k").await.unwrap().unwrap()), "login");
}

#[tokio::test]
async fn clear_removes_the_token_only_while_it_holds_the_refused_refresh_token() {
    let Some(redis) = Redis::get() else { return };
    let store = new_store(&redis).await;
    store.save("k", &token("a2", Some("r2"))).await.unwrap();
    store.clear("k", Some(&Secret::new("r1"))).await.unwrap();
    assert!(
        store.load("k").await.unwrap().is_some(),
        "a newer token survives"
    );
    store.clear("k", Some(&Secret::new("r2"))).await.unwrap();
    assert!(store.load("k").await.unwrap().is_none());
}

#[tokio::test]
async fn a_token_without_refresh_token_expires_from_redis_with_itself() {
    let Some(redis) = Redis::get() else { return };
    let store = new_store(&redis).await;
    store.save("plain", &token("a", None)).await.unwrap();
    store
        .save("refreshable", &token("a", Some("r")))
        .await
        .unwrap();
    let mut raw = raw_conn(&redis).await;
    let plain: i64 = raw.pttl(store.redis_keys("plain").0).await.unwrap();
    let kept: i64 = raw.pttl(store.redis_keys("refreshable").0).await.unwrap();
    assert!((3_500_000..=3_600_000).contains(&plain), "{plain}");
    assert_eq!(kept, -1);
}

#[tokio::test]
async fn both_redis_keys_of_a_token_share_one_cluster_hash_tag() {
    let Some(redis) = Redis::get() else { return };
    let store = new_store(&redis).await.with_prefix("app");
    let (token_key, lease_key) = store.redis_keys("mypos:{client}");
    assert_eq!(token_key, "{app:mypos:%7Bclient%7D}:token");
    assert_eq!(lease_key, "{app:mypos:%7Bclient%7D}:lease");
}

#[tokio::test]
async fn an_encrypted_token_is_stored_sealed_and_opens_only_with_its_key() {
    let Some(redis) = Redis::get() else { return };
    let key = EncryptionKey::from_bytes([7; 32]);
    let sealed = new_store(&redis).await.with_encryption(key.clone());
    sealed
        .save("k", &token(SENTINEL, Some(SENTINEL)))
        .await
        .unwrap();
    let raw: Vec<u8> = raw_conn(&redis)
        .await
        .hget(sealed.redis_keys("k").0, "t")
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains(SENTINEL));
    assert_eq!(access(&sealed.load("k").await.unwrap().unwrap()), SENTINEL);

    let other_key = new_store(&redis)
        .await
        .with_encryption(EncryptionKey::from_bytes([8; 32]));
    let plain = new_store(&redis).await;
    for store in [other_key, plain] {
        let error = store.load("k").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Store);
        assert!(!format!("{error} {error:?}").contains(SENTINEL));
    }
}

#[tokio::test]
async fn a_foreign_value_under_the_key_is_a_store_error_not_a_panic() {
    let Some(redis) = Redis::get() else { return };
    let store = new_store(&redis).await;
    let (token_key, _) = store.redis_keys("k");
    let mut raw = raw_conn(&redis).await;
    for junk in [&b"<html>"[..], b"j{not json", b"", b"x\x00\x01"] {
        let _: () = raw.hset(&token_key, "t", junk).await.unwrap();
        let error = store.load("k").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Store);
    }
    // An unconditional clear removes even an unreadable value.
    store.clear("k", None).await.unwrap();
    assert!(store.load("k").await.unwrap().is_none());
}

#[tokio::test]
async fn errors_and_debug_never_show_the_url_password_or_a_token() {
    let Some(redis) = Redis::get() else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = format!("redis://user:{SENTINEL}@127.0.0.1:{port}/");
    let error = RedisStore::connect(&Secret::new(closed)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store);
    let malformed = format!("redis://user:{SENTINEL}@[bad/");
    let bad = RedisStore::connect(&Secret::new(malformed))
        .await
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::Config);
    let store = new_store(&redis)
        .await
        .with_encryption(EncryptionKey::from_bytes([1; 32]));
    store
        .save("k", &token(SENTINEL, Some(SENTINEL)))
        .await
        .unwrap();
    let loaded = store.load("k").await.unwrap().unwrap();
    let shown = format!("{error} {error:?} {bad} {bad:?} {store:?} {loaded:?}");
    assert!(!shown.contains(SENTINEL), "{shown}");
}

#[tokio::test]
async fn a_lazily_opened_store_connects_on_first_use_and_reports_an_unreachable_redis() {
    let Some(redis) = Redis::get() else { return };
    let store = RedisStore::open(&Secret::new(redis.url.clone()))
        .unwrap()
        .with_prefix(redis.prefix.clone());
    assert!(format!("{store:?}").contains("RedisStore"));
    store.save("k", &token("lazy", None)).await.unwrap();
    assert_eq!(access(&store.load("k").await.unwrap().unwrap()), "lazy");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = RedisStore::open(&Secret::new(format!("redis://127.0.0.1:{port}/"))).unwrap();
    let error = unreachable.load("k").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store);
    // Retried on the next use, not stuck on the first failure.
    assert_eq!(
        unreachable.load("k").await.unwrap_err().kind(),
        ErrorKind::Store
    );
    let bad = RedisStore::open(&Secret::new("not a url")).unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::Config);
}

/// A token without refresh token expiring at `expires_at_unix_ms`.
fn expiring_at(expires_at_unix_ms: u64) -> StoredToken {
    StoredToken {
        expires_at_unix_ms,
        ..token("a", None)
    }
}

#[tokio::test]
async fn settings_out_of_their_documented_limits_are_clamped_into_them() {
    // No Redis needed: the store connects on first use.
    let store = RedisStore::open(&Secret::new("redis://127.0.0.1:1/")).unwrap();
    let low = store
        .clone()
        .with_lease_ttl(Duration::ZERO)
        .with_poll_interval(Duration::ZERO)
        .with_max_wait(Duration::ZERO);
    assert!(format!("{low:?}").contains("lease_ttl: 100ms"), "{low:?}");
    assert_eq!(low.poll_interval(), *POLL_INTERVAL_LIMITS.start());
    assert_eq!(low.max_wait(), *MAX_WAIT_LIMITS.start());
    let high = store
        .with_lease_ttl(Duration::MAX)
        .with_poll_interval(Duration::MAX)
        .with_max_wait(Duration::MAX);
    assert_eq!(high.poll_interval(), *POLL_INTERVAL_LIMITS.end());
    assert_eq!(high.max_wait(), *MAX_WAIT_LIMITS.end());
    assert!(format!("{high:?}").contains("lease_ttl: 600s"), "{high:?}");
}

#[tokio::test]
async fn a_huge_lease_ttl_keeps_fleet_single_flight_on() {
    let Some(redis) = Redis::get() else { return };
    let a = new_store(&redis).await.with_lease_ttl(Duration::MAX);
    let b = new_store(&redis)
        .await
        .with_lease_ttl(Duration::from_secs(u64::MAX / 1000));
    let lease = a.try_lease("k").await.unwrap().expect("the lease is taken");
    assert!(b.try_lease("k").await.unwrap().is_none(), "and held");
    let ttl: i64 = raw_conn(&redis)
        .await
        .pttl(a.redis_keys("k").1)
        .await
        .unwrap();
    let max = i64::try_from(LEASE_TTL_LIMITS.end().as_millis()).unwrap();
    assert!(0 < ttl && ttl <= max, "{ttl}");
    lease.release().await.unwrap();
}

#[tokio::test]
async fn a_save_with_an_absurd_expiry_is_written_whole_with_a_valid_ttl() {
    let Some(redis) = Redis::get() else { return };
    let store = new_store(&redis).await;
    let (token_key, _) = store.redis_keys("k");
    let mut raw = raw_conn(&redis).await;
    for expires_at in [u64::MAX, i64::MAX as u64, 253_402_300_800_000] {
        store.save("k", &expiring_at(expires_at)).await.unwrap();
        let ttl: i64 = raw.pttl(&token_key).await.unwrap();
        assert!(ttl > 0, "{expires_at}: {ttl}");
        let lease = store.try_lease("k").await.unwrap().unwrap();
        lease.save(&expiring_at(expires_at)).await.unwrap();
        lease.release().await.unwrap();
        assert!(raw.pttl::<_, i64>(&token_key).await.unwrap() > 0);
    }
    let version: u64 = raw.hget(&token_key, "v").await.unwrap();
    assert_eq!(version, 6, "every save wrote once, none failed half way");
}

#[tokio::test]
async fn a_token_saved_already_expired_is_still_written_and_read_back() {
    let Some(redis) = Redis::get() else { return };
    let store = new_store(&redis).await;
    for expires_at in [0, 1, 1_000_000_000_000] {
        store.save("k", &expiring_at(expires_at)).await.unwrap();
        let loaded = store.load("k").await.unwrap().expect("written");
        assert_eq!(loaded.expires_at_unix_ms, expires_at);
    }
}

#[tokio::test]
async fn a_token_too_large_to_read_back_is_refused_before_it_is_written() {
    let Some(redis) = Redis::get() else { return };
    let store = new_store(&redis).await;
    let huge = "h".repeat(payauth_core::store::MAX_STORED_TOKEN_BYTES);
    let error = store.save("k", &token(&huge, None)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store);
    assert!(error.to_string().contains("larger than"), "{error}");
    let lease = store.try_lease("k").await.unwrap().unwrap();
    assert!(lease.save(&token(&huge, None)).await.is_err());
    assert!(store.load("k").await.unwrap().is_none());
}

#[tokio::test]
async fn a_value_of_megabytes_is_refused_by_its_size_as_redis_reports_it() {
    let Some(redis) = Redis::get() else { return };
    let store = new_store(&redis).await;
    let (token_key, _) = store.redis_keys("k");
    // 4 MiB, 64 times the cap: large enough to prove the size is read from
    // Redis (HSTRLEN) rather than the value, small enough not to stall the
    // Redis the other tests share.
    let size: usize = 4 << 20;
    let mut raw = raw_conn(&redis).await;
    let _: () = redis::cmd("EVAL")
        .arg("redis.call('HSET', KEYS[1], 'v', '1', 't', string.rep('j', ARGV[1]))")
        .arg(1)
        .arg(&token_key)
        .arg(size)
        .query_async(&mut raw)
        .await
        .unwrap();
    let error = store.load("k").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store);
    assert!(
        error
            .to_string()
            .contains(&format!("{size} bytes, larger than")),
        "{error}"
    );
    // The fleet can still replace it.
    store.save("k", &token("fresh", None)).await.unwrap();
    assert_eq!(access(&store.load("k").await.unwrap().unwrap()), "fresh");
}

#[tokio::test]
async fn an_unreadable_version_neither_blocks_the_lease_nor_the_saves() {
    let Some(redis) = Redis::get() else { return };
    let store = new_store(&redis).await;
    let (token_key, _) = store.redis_keys("k");
    let mut raw = raw_conn(&redis).await;
    let stored = serde_json::to_vec(&token("kept", None)).unwrap();
    let mut value = vec![b'j'];
    value.extend_from_slice(&stored);
    for version in [
        "abc",
        "-3",
        "1.5",
        "1e300",
        "99999999999999999999",
        "",
        " 7",
    ] {
        let _: () = raw
            .hset_multiple(&token_key, &[("v", version.as_bytes()), ("t", &value)])
            .await
            .unwrap();
        assert_eq!(
            access(&store.load("k").await.unwrap().unwrap()),
            "kept",
            "{version:?}"
        );
        let lease = store.try_lease("k").await.unwrap().expect(version);
        lease.save(&token("leased", None)).await.unwrap();
        lease.release().await.unwrap();
        let _: () = raw.hset(&token_key, "v", version).await.unwrap();
        store.save("k", &token("saved", None)).await.unwrap();
        assert_eq!(access(&store.load("k").await.unwrap().unwrap()), "saved");
    }
}

#[tokio::test]
async fn versions_stay_exact_integers_however_large() {
    let Some(redis) = Redis::get() else { return };
    let store = new_store(&redis).await;
    let (token_key, _) = store.redis_keys("k");
    let mut raw = raw_conn(&redis).await;
    store.save("k", &token("a", None)).await.unwrap();
    let _: () = raw.hset(&token_key, "v", "99999999999999").await.unwrap();
    let lease = store.try_lease("k").await.unwrap().unwrap();
    lease.save(&token("b", None)).await.unwrap();
    lease.release().await.unwrap();
    let version: String = raw.hget(&token_key, "v").await.unwrap();
    assert_eq!(version, "100000000000000");
    // And compare-and-set still tells the next version from this one.
    let stale = store.try_lease("k").await.unwrap().unwrap();
    store.save("k", &token("c", None)).await.unwrap();
    assert!(stale.save(&token("stale", None)).await.is_err());
    assert_eq!(access(&store.load("k").await.unwrap().unwrap()), "c");
}

#[tokio::test]
async fn a_lease_key_that_would_never_expire_expires_after_one_ttl() {
    let Some(redis) = Redis::get() else { return };
    let ttl = Duration::from_millis(200);
    let store = new_store(&redis).await.with_lease_ttl(ttl);
    let (_, lease_key) = store.redis_keys("k");
    let mut raw = raw_conn(&redis).await;
    // A string without TTL, one with an absurd TTL, a hash: none is a lease.
    for plant in 0..3 {
        let _: () = raw.del(&lease_key).await.unwrap();
        match plant {
            0 => raw.set::<_, _, ()>(&lease_key, "ghost").await.unwrap(),
            1 => raw
                .pset_ex::<_, _, ()>(&lease_key, "ghost", 100 * 86_400_000)
                .await
                .unwrap(),
            _ => raw.hset::<_, _, _, ()>(&lease_key, "f", "v").await.unwrap(),
        }
        assert!(store.try_lease("k").await.unwrap().is_none(), "{plant}");
        tokio::time::sleep(ttl * 2).await;
        let lease = store.try_lease("k").await.unwrap();
        assert!(lease.is_some(), "{plant}: the fleet is not locked out");
        lease.unwrap().release().await.unwrap();
    }
}

#[tokio::test]
async fn a_token_key_of_the_wrong_type_is_a_store_error_and_a_save_replaces_it() {
    let Some(redis) = Redis::get() else { return };
    let store = new_store(&redis).await;
    let (token_key, _) = store.redis_keys("k");
    let mut raw = raw_conn(&redis).await;
    for leased in [false, true] {
        let _: () = raw.del(&token_key).await.unwrap();
        let _: () = raw.rpush(&token_key, "junk").await.unwrap();
        let error = store.load("k").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Store);
        assert!(error.to_string().contains("not a payauth token"), "{error}");
        let lease = store
            .try_lease("k")
            .await
            .unwrap()
            .expect("the lease works");
        if leased {
            lease.save(&token("replaced", None)).await.unwrap();
        } else {
            store.save("k", &token("replaced", None)).await.unwrap();
        }
        lease.release().await.unwrap();
        assert_eq!(access(&store.load("k").await.unwrap().unwrap()), "replaced");
    }
}

#[tokio::test]
async fn a_token_of_exactly_the_size_limit_round_trips_sealed_or_not() {
    let Some(redis) = Redis::get() else { return };
    let limit = payauth_core::store::MAX_STORED_TOKEN_BYTES;
    let overhead = serde_json::to_vec(&token("a", None)).unwrap().len() - 1;
    let fits = token(&"a".repeat(limit - overhead), None);
    assert_eq!(serde_json::to_vec(&fits).unwrap().len(), limit);
    let plain = new_store(&redis).await;
    let sealed = new_store(&redis)
        .await
        .with_encryption(EncryptionKey::from_bytes([3; 32]));
    for (key, store) in [("plain", plain), ("sealed", sealed)] {
        store.save(key, &fits).await.unwrap();
        assert_eq!(
            store.load(key).await.unwrap().as_ref(),
            Some(&fits),
            "{key}"
        );
    }
}

#[tokio::test]
async fn a_stored_value_one_byte_over_the_sealed_size_limit_is_refused() {
    let Some(redis) = Redis::get() else { return };
    let store = new_store(&redis).await;
    let (token_key, _) = store.redis_keys("k");
    // A format byte, a 24-byte nonce, the JSON, a 16-byte tag.
    let limit = 1 + 24 + payauth_core::store::MAX_STORED_TOKEN_BYTES + 16;
    let _: () = raw_conn(&redis)
        .await
        .hset(&token_key, "t", vec![b'x'; limit + 1])
        .await
        .unwrap();
    let error = store.load("k").await.unwrap_err();
    assert!(error.to_string().contains("larger than"), "{error}");
}

#[tokio::test]
async fn a_redis_that_refuses_connections_is_a_transient_store_outage() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = Secret::new(format!("redis://127.0.0.1:{port}"));
    let connect = RedisStore::connect(&url).await.unwrap_err();
    let lazy = RedisStore::open(&url).unwrap();
    let errors = [
        connect,
        lazy.load("k").await.unwrap_err(),
        lazy.save("k", &token("a", Some("r"))).await.unwrap_err(),
        lazy.try_lease("k").await.err().unwrap(),
    ];
    for error in errors {
        assert_eq!(error.kind(), ErrorKind::Store, "{error}");
        assert!(error.is_transient(), "an outage, not a verdict: {error}");
    }
}

#[tokio::test]
async fn the_forget_mark_is_one_value_for_every_replica_while_redis_keeps_it_and_another_once_redis_lost_it()
 {
    let Some(redis) = Redis::get() else { return };
    let (a, b) = (new_store(&redis).await, new_store(&redis).await);
    let first = a
        .forget_mark()
        .expect("Redis has a forget mark")
        .await
        .unwrap();
    assert_eq!(
        b.forget_mark().unwrap().await.unwrap(),
        first,
        "one mark for every replica"
    );
    assert_eq!(
        a.forget_mark().unwrap().await.unwrap(),
        first,
        "kept while Redis keeps it"
    );
    let other = new_store(&redis)
        .await
        .with_prefix(format!("{}-other", redis.prefix));
    assert_ne!(
        other.forget_mark().unwrap().await.unwrap(),
        first,
        "prefixes are apart"
    );
    // What a restart without persistence does to it (the test Redis is
    // shared, so only this prefix's mark is dropped).
    let mut conn = raw_conn(&redis).await;
    let _: () = conn
        .del(format!("{{{}}}:forget-mark", redis.prefix))
        .await
        .unwrap();
    let after = a.forget_mark().unwrap().await.unwrap();
    assert_ne!(after, first);
    assert_eq!(b.forget_mark().unwrap().await.unwrap(), after);
}
