//! The test databases and stores on them.

use std::sync::Arc;

use payauth_core::{Secret, SharedStore};
use payauth_postgres::PostgresStore;
pub(crate) use payauth_testkit::postgres::Postgres;
use payauth_testkit::redis::Redis;

/// A store on its own pool, as a separate replica would have.
pub(crate) async fn new_store(postgres: &Postgres) -> PostgresStore {
    PostgresStore::connect(&Secret::new(postgres.url.clone()))
        .await
        .expect("connect to the test PostgreSQL")
        .with_prefix(postgres.prefix.clone())
}

/// A store shared by a fleet: PostgreSQL or Redis, for the suite both
/// pass.
pub(crate) enum Backend {
    Postgres(Postgres),
    Redis(Redis),
}

impl Backend {
    /// Every backend there is here (in CI, both).
    pub(crate) fn all() -> Vec<Self> {
        let mut all = Vec::new();
        if let Some(postgres) = Postgres::get() {
            all.push(Self::Postgres(postgres));
        }
        if let Some(redis) = Redis::get() {
            all.push(Self::Redis(redis));
        }
        all
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Redis(_) => "redis",
        }
    }

    /// A replica's own store (its own pool or connection).
    pub(crate) async fn replica(&self) -> Arc<dyn SharedStore> {
        self.replica_converging(payauth_core::store::DEFAULT_CONVERGE_WAIT)
            .await
    }

    /// [`replica`](Self::replica), with this converge wait.
    pub(crate) async fn replica_converging(
        &self,
        wait: std::time::Duration,
    ) -> Arc<dyn SharedStore> {
        let (url, prefix) = self.url_and_prefix();
        self.replica_at_converging(url, prefix, wait).await
    }

    /// The server's URL and this test's prefix.
    pub(crate) fn url_and_prefix(&self) -> (&str, &str) {
        match self {
            Self::Postgres(postgres) => (&postgres.url, &postgres.prefix),
            Self::Redis(redis) => (&redis.url, &redis.prefix),
        }
    }

    /// A replica's own store on this backend's kind of server at `url`.
    pub(crate) async fn replica_at(&self, url: &str, prefix: &str) -> Arc<dyn SharedStore> {
        self.replica_at_converging(url, prefix, payauth_core::store::DEFAULT_CONVERGE_WAIT)
            .await
    }

    /// [`replica_at`](Self::replica_at), with this converge wait.
    async fn replica_at_converging(
        &self,
        url: &str,
        prefix: &str,
        wait: std::time::Duration,
    ) -> Arc<dyn SharedStore> {
        let url = Secret::new(url.to_owned());
        match self {
            Self::Postgres(_) => Arc::new(
                PostgresStore::connect(&url)
                    .await
                    .expect("connect to the test PostgreSQL")
                    .with_prefix(prefix)
                    .with_converge_wait(wait),
            ),
            Self::Redis(_) => Arc::new(
                payauth_redis::RedisStore::connect(&url)
                    .await
                    .expect("connect to the test Redis")
                    .with_prefix(prefix)
                    .with_converge_wait(wait),
            ),
        }
    }
}
