//! `PostgresStore` against a real PostgreSQL: the stored form, the lease,
//! fencing, compare-and-set, encryption, migrations, and what errors show.

use std::time::Duration;

use payauth_core::{
    AccessToken, ErrorKind, Issued, SaveIf, Secret, SharedStore, StoredToken, SystemClock,
    TokenStore,
};
use payauth_postgres::{EncryptionKey, PostgresStore};

use crate::support::{Postgres, new_store};

const SENTINEL: &str = "SENTINEL-5e2a91";

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
    let Some(postgres) = Postgres::get() else {
        return;
    };
    let store = new_store(&postgres).await;
    assert!(store.load("k").await.unwrap().is_none());
    let saved = token("a1", Some("r1"));
    store.save("k", &saved).await.unwrap();
    assert_eq!(store.load("k").await.unwrap(), Some(saved));
    let other = new_store(&postgres)
        .await
        .with_prefix("another-prefix-entirely");
    assert!(
        other.load("k").await.unwrap().is_none(),
        "prefixes are apart"
    );
}

#[tokio::test]
async fn only_one_replica_holds_the_lease_until_it_is_released() {
    let Some(postgres) = Postgres::get() else {
        return;
    };
    let (a, b) = (new_store(&postgres).await, new_store(&postgres).await);
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
    let Some(postgres) = Postgres::get() else {
        return;
    };
    let ttl = Duration::from_millis(300);
    let a = new_store(&postgres).await.with_lease_ttl(ttl);
    let b = new_store(&postgres).await.with_lease_ttl(ttl);
    let live = a.try_lease("live").await.unwrap().unwrap();
    tokio::time::sleep(ttl * 3).await;
    assert!(live.held(), "renewed by its heartbeat");
    assert!(b.try_lease("live").await.unwrap().is_none());
    let dead = a.try_lease("dead").await.unwrap().unwrap();
    drop(dead); // its heartbeat stops with it
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert!(b.try_lease("dead").await.unwrap().is_some());
}

/// A raw connection, to look at or tamper with what is stored.
async fn raw(postgres: &Postgres) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&postgres.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn a_holder_that_lost_its_lease_cannot_save_and_a_holder_never_overwrites_a_newer_token() {
    let Some(postgres) = Postgres::get() else {
        return;
    };
    let (a, b) = (new_store(&postgres).await, new_store(&postgres).await);
    // A token stored after the lease was taken: the holder's save is
    // refused.
    let fresh = a.try_lease("other").await.unwrap().unwrap();
    b.save("other", &token("newer", Some("rn"))).await.unwrap();
    let refused = fresh.save(&token("late", Some("rl"))).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Store);
    assert!(refused.to_string().contains("newer token"), "{refused}");
    assert_eq!(access(&a.load("other").await.unwrap().unwrap()), "newer");
    // A lease that ran out (a long pause) and passed to another holder:
    // the old holder's save is refused, the new one's lands.
    let old = a.try_lease("passed").await.unwrap().unwrap();
    raw(&postgres)
        .await
        .execute(
            "UPDATE payauth_tokens SET lease_until_ms = 0 WHERE prefix = $1 AND key = 'passed'",
            &[&postgres.prefix],
        )
        .await
        .unwrap();
    let new = b.try_lease("passed").await.unwrap().unwrap();
    let refused = old.save(&token("old", None)).await.unwrap_err();
    assert!(refused.to_string().contains("lease"), "{refused}");
    old.release().await.unwrap();
    new.save(&token("new", None)).await.unwrap();
    assert_eq!(access(&a.load("passed").await.unwrap().unwrap()), "new");
    assert!(
        a.try_lease("passed").await.unwrap().is_none(),
        "the new holder's release is its own"
    );
}

#[tokio::test]
async fn conditional_saves_hold_against_other_writers() {
    let Some(postgres) = Postgres::get() else {
        return;
    };
    let store = new_store(&postgres).await;
    let (a, b, c) = (
        token("a", Some("ra")),
        token("b", Some("rb")),
        token("c", None),
    );
    let holds_a = SaveIf::Holds {
        access_tokens: &[a.access_token.as_secret()],
        or_nothing: false,
    };
    assert!(!store.save_if("k", &b, holds_a).await.unwrap(), "empty");
    store.save("k", &a).await.unwrap();
    assert!(store.save_if("k", &b, holds_a).await.unwrap());
    assert!(
        !store.save_if("k", &c, holds_a).await.unwrap(),
        "b moved on"
    );
    assert_eq!(access(&store.load("k").await.unwrap().unwrap()), "b");
    let older = StoredToken {
        issued_at_unix_ms: 1,
        ..token("older", None)
    };
    assert!(!store.save_if("k", &older, SaveIf::NotNewer).await.unwrap());
    let or_nothing = SaveIf::Holds {
        access_tokens: &[],
        or_nothing: true,
    };
    assert!(store.save_if("fresh", &c, or_nothing).await.unwrap());
}

#[tokio::test]
async fn clear_removes_the_token_only_while_it_holds_the_refused_refresh_token() {
    let Some(postgres) = Postgres::get() else {
        return;
    };
    let store = new_store(&postgres).await;
    store.save("k", &token("a2", Some("r2"))).await.unwrap();
    store.clear("k", Some(&Secret::new("r1"))).await.unwrap();
    assert!(
        store.load("k").await.unwrap().is_some(),
        "a stale refusal keeps it"
    );
    store.clear("k", Some(&Secret::new("r2"))).await.unwrap();
    assert!(store.load("k").await.unwrap().is_none());
}

#[tokio::test]
async fn a_token_without_refresh_token_is_not_read_once_expired_and_purge_deletes_it() {
    let Some(postgres) = Postgres::get() else {
        return;
    };
    let store = new_store(&postgres).await;
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let short = StoredToken {
        expires_at_unix_ms: now_ms,
        ..token("short", None)
    };
    store.save("short", &short).await.unwrap();
    assert!(
        store.load("short").await.unwrap().is_some(),
        "kept a second at least"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(store.load("short").await.unwrap().is_none());
    assert!(store.purge_expired().await.unwrap() >= 1);
}

#[tokio::test]
async fn an_encrypted_token_is_stored_sealed_and_opens_only_with_its_key() {
    let Some(postgres) = Postgres::get() else {
        return;
    };
    let key = EncryptionKey::from_bytes([7; 32]);
    let sealed = new_store(&postgres).await.with_encryption(key.clone());
    sealed
        .save("k", &token(SENTINEL, Some(SENTINEL)))
        .await
        .unwrap();
    assert_eq!(access(&sealed.load("k").await.unwrap().unwrap()), SENTINEL);
    let client = raw(&postgres).await;
    let row = client
        .query_one(
            "SELECT token FROM payauth_tokens WHERE prefix = $1 AND key = 'k'",
            &[&postgres.prefix],
        )
        .await
        .unwrap();
    let bytes: Vec<u8> = row.get(0);
    assert!(
        !bytes.windows(8).any(|w| w == b"SENTINEL"),
        "sealed at rest"
    );
    let other_key = new_store(&postgres)
        .await
        .with_encryption(EncryptionKey::from_bytes([8; 32]));
    assert_eq!(
        other_key.load("k").await.unwrap_err().kind(),
        ErrorKind::Store
    );
    let plain = new_store(&postgres).await;
    assert_eq!(plain.load("k").await.unwrap_err().kind(), ErrorKind::Store);
    // Copied to another row, it does not open.
    client
        .execute(
            "INSERT INTO payauth_tokens (prefix, key, version, token) VALUES ($1, 'copy', 1, $2)",
            &[&postgres.prefix, &bytes],
        )
        .await
        .unwrap();
    assert!(sealed.load("copy").await.is_err());
}

#[tokio::test]
async fn errors_and_debug_never_show_the_url_password_or_a_token() {
    let Some(postgres) = Postgres::get() else {
        return;
    };
    let store = new_store(&postgres).await;
    let shown = format!("{store:?}");
    assert!(!shown.contains(&postgres.url), "{shown}");
    // A wrong password on an unreachable port: the error names neither.
    let url = format!("postgres://payauth:{SENTINEL}@127.0.0.1:1/payauth");
    let unreachable = PostgresStore::open(&Secret::new(url)).unwrap();
    let error = unreachable.load("k").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store);
    assert!(!error.to_string().contains(SENTINEL), "{error}");
    assert!(!format!("{error:?}").contains(SENTINEL), "{error:?}");
}

#[tokio::test]
async fn migrations_run_once_however_many_replicas_start_together() {
    let Some(postgres) = Postgres::get() else {
        return;
    };
    let mut starting = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let url = postgres.url.clone();
        starting.spawn(async move { PostgresStore::connect(&Secret::new(url)).await.map(|_| ()) });
    }
    while let Some(started) = starting.join_next().await {
        started.unwrap().unwrap();
    }
    let client = raw(&postgres).await;
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM payauth_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let shipped: Vec<i32> = payauth_postgres::MIGRATIONS
        .iter()
        .map(|(v, _)| *v)
        .collect();
    assert_eq!(versions, shipped);
}

#[tokio::test]
async fn a_value_over_the_size_limit_in_the_table_is_refused_by_its_size() {
    let Some(postgres) = Postgres::get() else {
        return;
    };
    let store = new_store(&postgres).await;
    let client = raw(&postgres).await;
    let huge = vec![b'j'; 2 * 1024 * 1024];
    client
        .execute(
            "INSERT INTO payauth_tokens (prefix, key, version, token) VALUES ($1, 'huge', 1, $2)",
            &[&postgres.prefix, &huge],
        )
        .await
        .unwrap();
    let error = store.load("huge").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store);
    assert!(error.to_string().contains("larger than"), "{error}");
    // A save replaces it.
    store.save("huge", &token("ok", None)).await.unwrap();
    assert_eq!(access(&store.load("huge").await.unwrap().unwrap()), "ok");
}

#[tokio::test]
async fn the_forget_mark_is_one_value_for_every_replica_while_the_table_keeps_it_and_another_once_emptied_or_restored()
 {
    let Some(postgres) = Postgres::get() else {
        return;
    };
    let (a, b) = (new_store(&postgres).await, new_store(&postgres).await);
    let first = a
        .forget_mark()
        .expect("PostgreSQL has a forget mark")
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
        "kept while the table keeps it"
    );
    let raw = raw(&postgres).await;
    // Restored from a dump: the row as it was, written anew.
    let (mark,): (String,) = {
        let row = raw
            .query_one(
                "SELECT mark FROM payauth_forget_marks WHERE prefix = $1",
                &[&postgres.prefix],
            )
            .await
            .unwrap();
        (row.get(0),)
    };
    raw.execute(
        "DELETE FROM payauth_forget_marks WHERE prefix = $1",
        &[&postgres.prefix],
    )
    .await
    .unwrap();
    raw.execute(
        "INSERT INTO payauth_forget_marks (prefix, mark) VALUES ($1, $2)",
        &[&postgres.prefix, &mark],
    )
    .await
    .unwrap();
    let restored = a.forget_mark().unwrap().await.unwrap();
    assert_ne!(restored, first, "a restored row is another mark");
    // Emptied.
    raw.execute(
        "DELETE FROM payauth_forget_marks WHERE prefix = $1",
        &[&postgres.prefix],
    )
    .await
    .unwrap();
    let emptied = b.forget_mark().unwrap().await.unwrap();
    assert_ne!(emptied, restored);
    assert_eq!(a.forget_mark().unwrap().await.unwrap(), emptied);
}
