//! [`PostgresStore`]: the [`TokenStore`] and [`SharedStore`] on PostgreSQL.

use std::fmt;
use std::future::Future;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use payauth_core::encryption::{self, EncryptionKey, MAX_VALUE_BYTES};
use payauth_core::{
    BoxFuture, Error, ErrorKind, Lease, SaveIf, Secret, SharedStore, StoredFailure, StoredToken,
    TokenStore,
};
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::ToSql;

pub use payauth_core::store::{
    CONVERGE_WAIT_LIMITS, DEFAULT_CONVERGE_WAIT, DEFAULT_LEASE_TTL, DEFAULT_MAX_WAIT,
    DEFAULT_POLL_INTERVAL, LEASE_TTL_LIMITS, MAX_WAIT_LIMITS, POLL_INTERVAL_LIMITS,
};

/// The default prefix: rows of stores with other prefixes are apart.
pub const DEFAULT_PREFIX: &str = "payauth";
/// The default number of connections the pool keeps at most.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// How long one statement (or connecting) may take before it counts as
/// failed. Waiting for a free pooled connection is not bounded here: a
/// busy pool is not a failing database (see [`PostgresStore::open`]).
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a token without refresh token is kept at most (a year and a
/// day) and at least (a second, so what a save wrote reads back).
const MAX_KEEP: Duration = Duration::from_secs(366 * 86_400);
const MIN_KEEP: Duration = Duration::from_secs(1);
/// A shared failure's JSON, at most.
const MAX_FAILURE_BYTES: i32 = 4096;
/// Attempts of a compare-and-set against other writers.
const CAS_ATTEMPTS: usize = 3;
/// Connections of the pool kept for lease holders (renewal, fenced save,
/// release): other statements use the rest, so a holder's heartbeat never
/// queues behind thousands of reads and polls and lets its lease run out.
const LEASE_RESERVE: usize = 2;

/// Milliseconds on the database's clock, which every replica shares.
macro_rules! now_ms {
    () => {
        "(extract(epoch from clock_timestamp()) * 1000)::bigint"
    };
}

/// When a token written now may be dropped: never (NULL) for a keep of
/// 0 ms, else that many ms from now on the database's clock.
macro_rules! keep {
    ($param:literal) => {
        concat!(
            "CASE WHEN ",
            $param,
            "::bigint = 0 THEN NULL ELSE ",
            now_ms!(),
            " + ",
            $param,
            "::bigint END"
        )
    };
}

/// Every statement the store runs; each is atomic on its row.
mod sql {
    /// The forget mark of prefix `$1`, written as `$2` if missing.
    pub(super) const FORGET_MARK: &str =
        "WITH written AS (INSERT INTO payauth_forget_marks (prefix, mark) VALUES ($1, $2)
             ON CONFLICT (prefix) DO NOTHING RETURNING mark, xmin::text AS xmin)
         SELECT mark, xmin, pg_postmaster_start_time()::text FROM written
         UNION ALL
         SELECT mark, xmin::text, pg_postmaster_start_time()::text FROM payauth_forget_marks
             WHERE prefix = $1
         LIMIT 1";
    /// Drops the forget mark of prefix `$1`.
    pub(super) const DROP_FORGET_MARK: &str = "DELETE FROM payauth_forget_marks WHERE prefix = $1";

    /// The row's version, whatever it holds (a compare-and-set needs it
    /// even when no live token is there, so it is read in the same round
    /// trip), and its live token's size and bytes (bytes only within
    /// `$3`).
    pub(super) const LOAD: &str = concat!(
        "SELECT version, live.size, CASE WHEN live.size <= $3 THEN token END
         FROM payauth_tokens, LATERAL (SELECT CASE WHEN token IS NOT NULL
         AND (expires_at_ms IS NULL OR expires_at_ms > ",
        now_ms!(),
        ") THEN octet_length(token) END AS size) AS live
         WHERE prefix = $1 AND key = $2"
    );
    pub(super) const SAVE: &str = concat!(
        "INSERT INTO payauth_tokens (prefix, key, version, token, expires_at_ms) VALUES ($1, $2, 1, $3, ",
        keep!("$4"),
        ") ON CONFLICT (prefix, key) DO UPDATE SET version = payauth_tokens.version + 1,
         token = EXCLUDED.token, expires_at_ms = EXCLUDED.expires_at_ms"
    );
    /// `$5`: the version the writer read (0: none).
    pub(super) const SAVE_IF_VERSION: &str = concat!(
        "INSERT INTO payauth_tokens (prefix, key, version, token, expires_at_ms) VALUES ($1, $2, 1, $3, ",
        keep!("$4"),
        ") ON CONFLICT (prefix, key) DO UPDATE SET version = payauth_tokens.version + 1,
         token = EXCLUDED.token, expires_at_ms = EXCLUDED.expires_at_ms
         WHERE payauth_tokens.version = $5"
    );
    pub(super) const CLEAR: &str = "UPDATE payauth_tokens SET token = NULL, expires_at_ms = NULL,
         version = version + 1 WHERE prefix = $1 AND key = $2 AND token IS NOT NULL";
    pub(super) const CLEAR_IF_VERSION: &str = "UPDATE payauth_tokens SET token = NULL,
         expires_at_ms = NULL, version = version + 1
         WHERE prefix = $1 AND key = $2 AND version = $3";
    /// A lease is free when none is held, it ran out, or it claims to
    /// last longer than any replica sets (it then lasts one TTL at most).
    pub(super) const ACQUIRE: &str = concat!(
        "INSERT INTO payauth_tokens (prefix, key, version, lease_owner, lease_until_ms)
         VALUES ($1, $2, 0, $3, ",
        now_ms!(),
        " + $4::bigint) ON CONFLICT (prefix, key) DO UPDATE SET
         lease_owner = EXCLUDED.lease_owner, lease_until_ms = EXCLUDED.lease_until_ms
         WHERE payauth_tokens.lease_until_ms IS NULL OR payauth_tokens.lease_until_ms <= ",
        now_ms!(),
        " OR payauth_tokens.lease_until_ms > ",
        now_ms!(),
        " + 600000 RETURNING version"
    );
    pub(super) const RENEW: &str = concat!(
        "UPDATE payauth_tokens SET lease_until_ms = ",
        now_ms!(),
        " + $4::bigint WHERE prefix = $1 AND key = $2 AND lease_owner = $3 AND lease_until_ms > ",
        now_ms!()
    );
    /// `$3` owner, `$4` seen version, `$5` bytes, `$6` keep.
    pub(super) const SAVE_LEASED: &str = concat!(
        "UPDATE payauth_tokens SET version = version + 1, token = $5, expires_at_ms = ",
        keep!("$6"),
        " WHERE prefix = $1 AND key = $2 AND lease_owner = $3 AND version = $4 AND lease_until_ms > ",
        now_ms!()
    );
    pub(super) const LEASE_HELD: &str = concat!(
        "SELECT COALESCE(lease_owner = $3 AND lease_until_ms > ",
        now_ms!(),
        ", false) FROM payauth_tokens WHERE prefix = $1 AND key = $2"
    );
    pub(super) const RELEASE: &str = "UPDATE payauth_tokens SET lease_owner = NULL,
         lease_until_ms = NULL WHERE prefix = $1 AND key = $2 AND lease_owner = $3";
    pub(super) const SHARE_FAILURE: &str = concat!(
        "INSERT INTO payauth_tokens (prefix, key, version, failure, failure_until_ms)
         VALUES ($1, $2, 0, $3, ",
        now_ms!(),
        " + $4::bigint) ON CONFLICT (prefix, key) DO UPDATE SET
         failure = EXCLUDED.failure, failure_until_ms = EXCLUDED.failure_until_ms"
    );
    pub(super) const SHARED_FAILURE: &str = concat!(
        "SELECT CASE WHEN octet_length(failure) <= $3 THEN failure END FROM payauth_tokens
         WHERE prefix = $1 AND key = $2 AND failure IS NOT NULL AND failure_until_ms > ",
        now_ms!()
    );
    pub(super) const PURGE: &str = concat!(
        "DELETE FROM payauth_tokens WHERE expires_at_ms <= ",
        now_ms!(),
        " AND (lease_until_ms IS NULL OR lease_until_ms <= ",
        now_ms!(),
        ") AND (failure_until_ms IS NULL OR failure_until_ms <= ",
        now_ms!(),
        ")"
    );
}

/// Tokens in PostgreSQL, shared by every replica that uses the same
/// database and prefix; see the [crate docs](crate) for the protocol.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    prefix: String,
    lease_ttl: Duration,
    poll_interval: Duration,
    max_wait: Duration,
    converge_wait: Duration,
    encryption: Option<EncryptionKey>,
    /// Set once the migrations ran (by this store or a clone).
    migrated: Arc<tokio::sync::OnceCell<()>>,
    /// Connections statements other than a lease holder's may hold: the
    /// pool's size less [`LEASE_RESERVE`] (at least one).
    ordinary: Arc<tokio::sync::Semaphore>,
}

/// Whose statement: a lease holder's may use the reserved connections.
#[derive(Clone, Copy)]
enum Lane {
    Ordinary,
    Lease,
}

/// The pool's manager over TLS: rustls with ring, the platform's verifier
/// plus `roots`.
#[cfg(feature = "tls")]
fn tls_manager(
    config: tokio_postgres::Config,
    manager_config: ManagerConfig,
    roots: &[Vec<u8>],
) -> Result<Manager, Error> {
    // rustls 0.23.48 deprecates ring's provider for want of post-quantum
    // key exchange; it is what the other TLS of payauth uses by default
    // (quick to build).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config_error = |e: rustls::Error| {
        Error::new(ErrorKind::Config)
            .with_description("cannot set up TLS to PostgreSQL")
            .with_source(e)
    };
    let roots = roots
        .iter()
        .map(|der| rustls::pki_types::CertificateDer::from(der.clone()));
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider.clone())
            .map_err(config_error)?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Manager::from_config(
        config,
        tokio_postgres_rustls::MakeRustlsConnect::new(tls),
        manager_config,
    ))
}

#[cfg(not(feature = "tls"))]
fn tls_manager(
    _: tokio_postgres::Config,
    _: ManagerConfig,
    _: &[Vec<u8>],
) -> Result<Manager, Error> {
    Err(Error::new(ErrorKind::Config).with_description(
        "the PostgreSQL URL asks for TLS (sslmode=require): turn on payauth-postgres's feature `tls`",
    ))
}

/// A configuration error for a URL that does not parse; never quoted.
fn bad_url() -> Error {
    Error::new(ErrorKind::Config).with_description("the PostgreSQL URL does not parse")
}

/// A typed store error; PostgreSQL's own message and code, never a
/// statement's parameters (a token) nor the URL.
pub(crate) fn pg_error(action: &str, error: &tokio_postgres::Error) -> Error {
    let why = error.as_db_error().map_or_else(
        || error.to_string(),
        |db| format!("{} (SQLSTATE {})", db.message(), db.code().code()),
    );
    Error::new(ErrorKind::Store).with_description(format!("cannot {action} PostgreSQL: {why}"))
}

fn pool_error(error: &deadpool_postgres::PoolError) -> Error {
    match error {
        deadpool_postgres::PoolError::Backend(error) => pg_error("connect to", error),
        deadpool_postgres::PoolError::Timeout(_) => {
            Error::new(ErrorKind::Store).with_description("cannot connect to PostgreSQL: timed out")
        }
        other => Error::new(ErrorKind::Store)
            .with_description(format!("cannot connect to PostgreSQL: {other}")),
    }
}

/// `work`, or a store error once it outlived [`STATEMENT_TIMEOUT`].
async fn bounded<T>(
    action: &str,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(STATEMENT_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| {
            Err(Error::new(ErrorKind::Store)
                .with_description(format!("cannot {action} PostgreSQL: timed out")))
        })
}

impl PostgresStore {
    /// Connects to the PostgreSQL at `url`
    /// (`postgres://user:password@host:port/database`, or the
    /// `key=value` form), applies the migrations it lacks, and keeps a
    /// pool of up to [`DEFAULT_POOL_SIZE`] connections. The URL is a
    /// [`Secret`] since it may hold a password; errors never quote it.
    ///
    /// While every connection is busy, a call waits its turn for as long
    /// as its caller lets it (a cache bounds each store call by a quarter
    /// of its fetch timeout): a busy pool is not a failing database, so a
    /// fleet replica never takes it for an outage and fetches beside the
    /// lease holder. Connecting and each statement are bounded by
    /// [`STATEMENT_TIMEOUT`].
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a URL that does not parse;
    /// [`ErrorKind::Store`] when the database cannot be reached or
    /// migrated.
    pub async fn connect(url: &Secret) -> Result<Self, Error> {
        let store = Self::open(url)?;
        store.migrate().await?;
        Ok(store)
    }

    /// A store on the PostgreSQL at `url` that connects and migrates on
    /// first use, so it can be built without a runtime or a reachable
    /// database, e.g. from a config file at startup.
    ///
    /// # TLS
    /// `sslmode=require` in the URL (`?sslmode=require`, or
    /// `sslmode=require` in the `key=value` form) connects over TLS only,
    /// with feature `tls`: rustls, the server's certificate and name
    /// checked by the platform's verifier (what libpq calls
    /// `verify-full`; `open_with_roots` trusts a private CA too), never
    /// falling back to plain TCP. Any other `sslmode`
    /// (`prefer`, the default, or `disable`) connects over plain TCP: a
    /// connection payauth cannot check is never taken for a safe one.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a URL that does not parse (never quoted),
    /// or that asks for TLS without feature `tls`.
    pub fn open(url: &Secret) -> Result<Self, Error> {
        Self::open_trusting(url, &[])
    }

    /// As [`open`](Self::open), trusting `roots` (DER certificates) beside
    /// the platform's when the URL asks for TLS: a database whose
    /// certificate a private CA signed.
    ///
    /// # Errors
    /// As [`open`](Self::open); [`ErrorKind::Config`] for a root that is not
    /// a certificate.
    #[cfg(feature = "tls")]
    pub fn open_with_roots(url: &Secret, roots: &[Vec<u8>]) -> Result<Self, Error> {
        Self::open_trusting(url, roots)
    }

    fn open_trusting(url: &Secret, roots: &[Vec<u8>]) -> Result<Self, Error> {
        let mut config =
            tokio_postgres::Config::from_str(url.expose_secret()).map_err(|_| bad_url())?;
        config.connect_timeout(STATEMENT_TIMEOUT);
        if config.get_application_name().is_none() {
            config.application_name("payauth");
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = if matches!(config.get_ssl_mode(), SslMode::Require) {
            tls_manager(config, manager_config, roots)?
        } else {
            config.ssl_mode(SslMode::Disable);
            Manager::from_config(config, NoTls, manager_config)
        };
        let pool = Pool::builder(manager)
            .max_size(DEFAULT_POOL_SIZE)
            .runtime(Runtime::Tokio1)
            // A call waits its turn for a connection however long its
            // caller lets it (the cache bounds every store call).
            .wait_timeout(None)
            .create_timeout(Some(STATEMENT_TIMEOUT))
            .recycle_timeout(Some(STATEMENT_TIMEOUT))
            .build()
            .map_err(|_| {
                Error::new(ErrorKind::Config).with_description("cannot build the PostgreSQL pool")
            })?;
        Ok(Self::new(pool))
    }

    /// A store over your own pool, with the defaults: prefix `payauth`, a
    /// 5 s lease, a 50 ms poll, no encryption. The migrations run on first
    /// use (or call [`migrate`](Self::migrate)).
    #[must_use]
    pub fn new(pool: Pool) -> Self {
        let ordinary = pool.status().max_size.saturating_sub(LEASE_RESERVE).max(1);
        Self {
            ordinary: Arc::new(tokio::sync::Semaphore::new(ordinary)),
            pool,
            prefix: DEFAULT_PREFIX.to_owned(),
            lease_ttl: DEFAULT_LEASE_TTL,
            poll_interval: DEFAULT_POLL_INTERVAL,
            max_wait: DEFAULT_MAX_WAIT,
            converge_wait: DEFAULT_CONVERGE_WAIT,
            encryption: None,
            migrated: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// Applies the migrations ([`MIGRATIONS`](crate::MIGRATIONS)) the
    /// database lacks; a no-op once done by this store.
    ///
    /// # Errors
    /// [`ErrorKind::Store`] when the database cannot be reached, refuses
    /// a migration, or holds a newer schema than this crate knows.
    pub async fn migrate(&self) -> Result<(), Error> {
        self.migrated
            .get_or_try_init(|| async {
                let mut client = self.pool.get().await.map_err(|e| pool_error(&e))?;
                crate::migrations::apply(&mut client).await.map(|_| ())
            })
            .await
            .copied()
    }

    /// Namespaces every row (default `payauth`): replicas that share
    /// tokens use the same prefix; separate environments use different
    /// ones.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a lease lasts without renewal (default 5 s, clamped to
    /// [`LEASE_TTL_LIMITS`], 100 ms to 10 min). The holder renews it every
    /// third of that while its fetch runs.
    #[must_use]
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = clamp("lease TTL", ttl, &LEASE_TTL_LIMITS);
        self
    }

    /// The wait between looks at the store while another replica fetches
    /// (default 50 ms, clamped to [`POLL_INTERVAL_LIMITS`]).
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = clamp("poll interval", interval, &POLL_INTERVAL_LIMITS);
        self
    }

    /// The longest wait for another replica's fetch (default 60 s, clamped
    /// to [`MAX_WAIT_LIMITS`]) before callers get
    /// [`ErrorKind::Unavailable`].
    #[must_use]
    pub fn with_max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = clamp("longest wait", wait, &MAX_WAIT_LIMITS);
        self
    }

    /// How long a replica that finds the table forgot its token (a restore
    /// from a backup, a failover to a standby behind, a `TRUNCATE`) waits
    /// under the lease before it refreshes, so that every replica holding
    /// a newer refresh token has written it back; each replica reads the
    /// store's forget mark every third of this, once per store instance,
    /// and its caches read their rows only after it changed (default 6 s,
    /// clamped to [`CONVERGE_WAIT_LIMITS`], zero to 60 s; zero turns both
    /// off).
    #[must_use]
    pub fn with_converge_wait(mut self, wait: Duration) -> Self {
        self.converge_wait = clamp("converge wait", wait, &CONVERGE_WAIT_LIMITS);
        self
    }

    /// Encrypts tokens at rest with `key` (off by default; see the crate
    /// docs). Every replica needs the same key.
    #[must_use]
    pub fn with_encryption(mut self, key: EncryptionKey) -> Self {
        self.encryption = Some(key);
        self
    }

    /// Deletes the rows of tokens without refresh token that expired (and
    /// hold no live lease or failure); how many. Reads already skip them:
    /// this only reclaims space, e.g. from a periodic job.
    ///
    /// # Errors
    /// [`ErrorKind::Store`] when the database cannot be reached.
    pub async fn purge_expired(&self) -> Result<u64, Error> {
        let (_turn, client) = self.client(Lane::Ordinary).await?;
        bounded("delete from", async {
            client
                .execute(sql::PURGE, &[])
                .await
                .map_err(|e| pg_error("delete from", &e))
        })
        .await
    }

    /// A pooled connection, the migrations applied, with the turn that
    /// lets an ordinary statement hold it: a new connection is bounded by
    /// [`STATEMENT_TIMEOUT`], waiting for a busy one is not.
    async fn client(
        &self,
        lane: Lane,
    ) -> Result<(Option<tokio::sync::OwnedSemaphorePermit>, Object), Error> {
        self.migrate().await?;
        let turn = match lane {
            Lane::Lease => None,
            Lane::Ordinary => Some(
                Arc::clone(&self.ordinary)
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::new(ErrorKind::Store))?,
            ),
        };
        let client = self.pool.get().await.map_err(|e| pool_error(&e))?;
        Ok((turn, client))
    }

    /// The store's forget mark: the prefix's row of `payauth_forget_marks`
    /// (written at first use with a random value), its `xmin` and the
    /// server's start time, in one statement.
    async fn read_forget_mark(&self) -> Result<String, Error> {
        const ACTION: &str = "read the forget mark from";
        let fresh = payauth_core::internal::random::hex(16).unwrap_or_else(|_| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            format!("{}-{nanos}", std::process::id())
        });
        let (_turn, client) = self.client(Lane::Ordinary).await?;
        let row = bounded(ACTION, async {
            let statement = prepare(&client, ACTION, sql::FORGET_MARK).await?;
            client
                .query_opt(&statement, &[&self.prefix, &fresh])
                .await
                .map_err(|e| pg_error(ACTION, &e))
        })
        .await?;
        let row = row.ok_or_else(|| {
            Error::new(ErrorKind::Store)
                .with_description("the forget mark was being written by another replica")
                .with_transient()
        })?;
        let (mark, xmin, started): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        Ok(format!("{mark}/{xmin}/{started}"))
    }

    /// The name a record is sealed under: its prefix and key, length
    /// first so no pair reads as another.
    fn name(&self, key: &str) -> String {
        format!("payauth_tokens:{}:{}:{key}", self.prefix.len(), self.prefix)
    }

    /// The row's prefix and `key` first, then `rest`: the parameters of
    /// every statement on one row.
    fn params<'a>(
        &'a self,
        key: &'a &'a str,
        rest: &[&'a (dyn ToSql + Sync)],
    ) -> Vec<&'a (dyn ToSql + Sync)> {
        [&self.prefix as &(dyn ToSql + Sync), key]
            .into_iter()
            .chain(rest.iter().copied())
            .collect()
    }

    /// Runs `statement` with the row's prefix and key first, then `rest`;
    /// the rows it touched.
    async fn execute(
        &self,
        action: &str,
        statement: &str,
        key: &str,
        rest: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error> {
        self.execute_in(Lane::Ordinary, action, statement, key, rest)
            .await
    }

    /// As [`execute`](Self::execute), in `lane`.
    async fn execute_in(
        &self,
        lane: Lane,
        action: &str,
        statement: &str,
        key: &str,
        rest: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error> {
        let (_turn, client) = self.client(lane).await?;
        bounded(action, async {
            let statement = prepare(&client, action, statement).await?;
            client
                .execute(&statement, &self.params(&key, rest))
                .await
                .map_err(|e| pg_error(action, &e))
        })
        .await
    }

    /// As [`execute`](Self::execute), returning the first row if any.
    async fn query_opt(
        &self,
        action: &str,
        statement: &str,
        key: &str,
        rest: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<tokio_postgres::Row>, Error> {
        self.query_opt_in(Lane::Ordinary, action, statement, key, rest)
            .await
    }

    /// As [`query_opt`](Self::query_opt), in `lane`.
    async fn query_opt_in(
        &self,
        lane: Lane,
        action: &str,
        statement: &str,
        key: &str,
        rest: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<tokio_postgres::Row>, Error> {
        let (_turn, client) = self.client(lane).await?;
        bounded(action, async {
            let statement = prepare(&client, action, statement).await?;
            client
                .query_opt(&statement, &self.params(&key, rest))
                .await
                .map_err(|e| pg_error(action, &e))
        })
        .await
    }

    /// Asks for the lease: the row's version when granted. No answer
    /// within [`STATEMENT_TIMEOUT`] is `None`, as if another replica held
    /// it: the lease may have been granted all the same (it then runs out
    /// unrenewed), and a replica that took no answer for an outage would
    /// fetch beside its holder.
    async fn acquire(
        &self,
        key: &str,
        owner: &String,
        ttl: i64,
    ) -> Result<Option<tokio_postgres::Row>, Error> {
        let action = "take a lease in";
        let (_turn, client) = self.client(Lane::Ordinary).await?;
        let asked = async {
            let statement = prepare(&client, action, sql::ACQUIRE).await?;
            client
                .query_opt(&statement, &self.params(&key, &[owner, &ttl]))
                .await
                .map_err(|e| pg_error(action, &e))
        };
        if let Ok(answer) = tokio::time::timeout(STATEMENT_TIMEOUT, asked).await {
            return answer;
        }
        tracing::warn!(
            "no answer to a fetch lease request in time; waiting as if another replica held it"
        );
        Ok(None)
    }

    /// In one statement: the row's version (0 without a row) and its live
    /// token, if any, or why that token cannot be read (a value larger
    /// than [`MAX_VALUE_BYTES`] is refused by its size, before it is
    /// sent). The outer error is the database's.
    async fn load_versioned(&self, key: &str) -> Result<(i64, Loaded), Error> {
        let max = i32::try_from(MAX_VALUE_BYTES).unwrap_or(i32::MAX);
        let Some(row) = self.query_opt("read from", sql::LOAD, key, &[&max]).await? else {
            return Ok((0, Ok(None)));
        };
        let version: i64 = row.try_get(0).map_err(|e| pg_error("read from", &e))?;
        let size: Option<i32> = row.try_get(1).map_err(|e| pg_error("read from", &e))?;
        let bytes: Option<Vec<u8>> = row.try_get(2).map_err(|e| pg_error("read from", &e))?;
        let token = match (size, bytes) {
            (None, _) => Ok(None),
            (Some(_), Some(bytes)) => {
                encryption::decode(self.encryption.as_ref(), &self.name(key), &bytes).map(Some)
            }
            (Some(size), None) => Err(Error::new(ErrorKind::Store).with_description(format!(
                "the stored value is {size} bytes, larger than the {MAX_VALUE_BYTES} bytes a stored token may take"
            ))),
        };
        Ok((version, token))
    }

    async fn save_if_cas(
        &self,
        key: &str,
        token: &StoredToken,
        condition: SaveIf<'_>,
    ) -> Result<bool, Error> {
        let bytes = encryption::encode(self.encryption.as_ref(), &self.name(key), token)?;
        let keep = keep_ms(token, SystemTime::now());
        for _ in 0..CAS_ATTEMPTS {
            // Unreadable (another key, corrupt): as good as nothing.
            let (version, stored) = self.load_versioned(key).await?;
            let stored = stored.unwrap_or(None);
            if !condition.allows(stored.as_ref(), token) {
                return Ok(false);
            }
            let written = self
                .execute(
                    "write to",
                    sql::SAVE_IF_VERSION,
                    key,
                    &[&bytes, &keep, &version],
                )
                .await?;
            if written == 1 {
                return Ok(true);
            }
        }
        Err(Error::new(ErrorKind::Store)
            .with_description("the stored token kept changing under a save; not saved"))
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("prefix", &self.prefix)
            .field("lease_ttl", &self.lease_ttl)
            .field("encrypted", &self.encryption.is_some())
            .finish_non_exhaustive()
    }
}

/// How long `token` is kept, in ms, as of `now`: 0 (for good) for a
/// token with a refresh token; else until it expires, within
/// [`MIN_KEEP`]..=[`MAX_KEEP`], whatever expiry it claims (relative, so
/// the writer's and the database's clocks need not agree).
fn keep_ms(token: &StoredToken, now: SystemTime) -> i64 {
    if token.refresh_token.is_some() {
        return 0;
    }
    let now_ms = millis(now.duration_since(UNIX_EPOCH).unwrap_or_default());
    let kept = token
        .expires_at_unix_ms
        .saturating_sub(now_ms)
        .clamp(millis(MIN_KEEP), millis(MAX_KEEP));
    i64::try_from(kept).unwrap_or(i64::MAX)
}

/// A row's token: none live, live, or unreadable.
type Loaded = Result<Option<StoredToken>, Error>;

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// `statement` prepared on `client` (cached per connection).
async fn prepare(
    client: &Object,
    action: &str,
    statement: &str,
) -> Result<tokio_postgres::Statement, Error> {
    client
        .prepare_cached(statement)
        .await
        .map_err(|e| pg_error(action, &e))
}

fn millis_i64(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// `value` within `limits`, with a warning naming this store when it was not.
fn clamp(setting: &str, value: Duration, limits: &RangeInclusive<Duration>) -> Duration {
    payauth_core::internal::store::clamp_setting("PostgreSQL", setting, value, limits)
}

impl TokenStore for PostgresStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        Box::pin(async move { self.load_versioned(key).await?.1 })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let bytes = encryption::encode(self.encryption.as_ref(), &self.name(key), token)?;
            let keep = keep_ms(token, SystemTime::now());
            self.execute("write to", sql::SAVE, key, &[&bytes, &keep])
                .await?;
            Ok(())
        })
    }

    fn clear<'a>(
        &'a self,
        key: &'a str,
        if_holds: Option<&'a Secret>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let version = match self.load_versioned(key).await? {
                (_, Ok(None)) => return Ok(()),
                (version, Ok(Some(token))) => {
                    if !token.is_cleared_by(if_holds) {
                        return Ok(());
                    }
                    version
                }
                // An unreadable token can only be cleared unconditionally.
                (_, Err(_)) if if_holds.is_none() => {
                    self.execute("delete from", sql::CLEAR, key, &[]).await?;
                    return Ok(());
                }
                (_, Err(error)) => return Err(error),
            };
            // Compare-and-delete: a token stored meanwhile survives.
            self.execute("delete from", sql::CLEAR_IF_VERSION, key, &[&version])
                .await?;
            Ok(())
        })
    }

    fn save_if<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
        condition: SaveIf<'a>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(self.save_if_cas(key, token, condition))
    }
}

impl SharedStore for PostgresStore {
    fn try_lease<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Box<dyn Lease>>, Error>> {
        Box::pin(async move {
            let owner = owner_id();
            let ttl = millis_i64(self.lease_ttl);
            // Counted from before the request: the lease lives at most
            // this long from when the database set it.
            let asked = tokio::time::Instant::now();
            let Some(row) = self.acquire(key, &owner, ttl).await? else {
                return Ok(None);
            };
            let seen_version: i64 = row
                .try_get(0)
                .map_err(|e| pg_error("take a lease in", &e))?;
            tracing::debug!("fetch lease taken");
            let held_until = Arc::new(std::sync::Mutex::new(asked + self.lease_ttl));
            let heartbeat = tokio::spawn(renew(
                self.clone(),
                key.to_owned(),
                owner.clone(),
                Arc::clone(&held_until),
            ));
            Ok(Some(Box::new(PostgresLease {
                store: self.clone(),
                key: key.to_owned(),
                owner,
                seen_version,
                heartbeat,
                held_until,
            }) as Box<dyn Lease>))
        })
    }

    fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    fn max_wait(&self) -> Duration {
        self.max_wait
    }

    fn converge_wait(&self) -> Duration {
        self.converge_wait
    }

    fn forget_mark(&self) -> Option<BoxFuture<'_, Result<String, Error>>> {
        Some(Box::pin(self.read_forget_mark()))
    }

    fn mark_forgotten(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            const ACTION: &str = "drop the forget mark in";
            let (_turn, client) = self.client(Lane::Ordinary).await?;
            bounded(ACTION, async {
                let statement = prepare(&client, ACTION, sql::DROP_FORGET_MARK).await?;
                client
                    .execute(&statement, &[&self.prefix])
                    .await
                    .map(drop)
                    .map_err(|e| pg_error(ACTION, &e))
            })
            .await
        })
    }

    fn share_failure<'a>(
        &'a self,
        key: &'a str,
        failure: &'a StoredFailure,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let json = serde_json::to_vec(failure)
                .map_err(|e| Error::new(ErrorKind::Store).with_source(e))?;
            let ttl = millis_i64(ttl).max(1);
            self.execute("write to", sql::SHARE_FAILURE, key, &[&json, &ttl])
                .await?;
            Ok(())
        })
    }

    fn shared_failure<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredFailure>, Error>> {
        Box::pin(async move {
            let Some(row) = self
                .query_opt("read from", sql::SHARED_FAILURE, key, &[&MAX_FAILURE_BYTES])
                .await?
            else {
                return Ok(None);
            };
            let bytes: Option<Vec<u8>> = row.try_get(0).map_err(|e| pg_error("read from", &e))?;
            let bytes = bytes.ok_or_else(|| {
                Error::new(ErrorKind::Store).with_description("the shared failure is too large")
            })?;
            serde_json::from_slice(&bytes).map(Some).map_err(|_| {
                Error::new(ErrorKind::Store)
                    .with_description("the shared failure is not payauth JSON")
            })
        })
    }
}

/// A unique id for one lease holder: random, or without randomness the
/// process id, the time and a counter, which only need to be unique.
fn owner_id() -> String {
    payauth_core::internal::random::hex(16).unwrap_or_else(|_| {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}-{nanos}-{n}", std::process::id())
    })
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Keeps the lease alive while its holder runs: every third of the TTL,
/// until it is released, lost, or the holder's runtime dies.
async fn renew(
    store: PostgresStore,
    key: String,
    owner: String,
    held_until: Arc<std::sync::Mutex<tokio::time::Instant>>,
) {
    let ttl = store.lease_ttl;
    let ttl_ms = millis_i64(ttl);
    loop {
        tokio::time::sleep(ttl / 3).await;
        let asked = tokio::time::Instant::now();
        match store
            .execute_in(
                Lane::Lease,
                "renew a lease in",
                sql::RENEW,
                &key,
                &[&owner, &ttl_ms],
            )
            .await
        {
            Ok(1) => *lock(&held_until) = asked + ttl,
            Ok(_) => {
                *lock(&held_until) = asked;
                tracing::warn!("fetch lease lost before the fetch ended");
                return;
            }
            Err(error) => tracing::debug!(%error, "fetch lease not renewed; retrying"),
        }
    }
}

/// A held lease: saves are fenced by its owner id and the version seen when
/// it was taken.
struct PostgresLease {
    store: PostgresStore,
    key: String,
    owner: String,
    seen_version: i64,
    heartbeat: tokio::task::JoinHandle<()>,
    /// Until when the database keeps the lease, as last confirmed.
    held_until: Arc<std::sync::Mutex<tokio::time::Instant>>,
}

impl Lease for PostgresLease {
    fn save<'a>(&'a self, token: &'a StoredToken) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let store = &self.store;
            let bytes =
                encryption::encode(store.encryption.as_ref(), &store.name(&self.key), token)?;
            let keep = keep_ms(token, SystemTime::now());
            let written = store
                .execute_in(
                    Lane::Lease,
                    "write to",
                    sql::SAVE_LEASED,
                    &self.key,
                    &[&self.owner, &self.seen_version, &bytes, &keep],
                )
                .await?;
            if written == 1 {
                return Ok(());
            }
            let held = store
                .query_opt_in(
                    Lane::Lease,
                    "read from",
                    sql::LEASE_HELD,
                    &self.key,
                    &[&self.owner],
                )
                .await?
                .map(|row| row.try_get::<_, bool>(0))
                .transpose()
                .map_err(|e| pg_error("read from", &e))?
                .unwrap_or(false);
            Err(Error::new(ErrorKind::Store).with_description(if held {
                "another replica stored a newer token; this one was not saved"
            } else {
                "the fetch lease expired or passed to another replica before the token was saved"
            }))
        })
    }

    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>> {
        Box::pin(async move {
            self.heartbeat.abort();
            self.store
                .execute_in(
                    Lane::Lease,
                    "release a lease in",
                    sql::RELEASE,
                    &self.key,
                    &[&self.owner],
                )
                .await?;
            Ok(())
        })
    }

    fn held(&self) -> bool {
        tokio::time::Instant::now() < *lock(&self.held_until)
    }
}

impl Drop for PostgresLease {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

#[cfg(test)]
mod tests {
    use payauth_core::{AccessToken, Issued, ManualClock};

    use super::*;

    fn expiring_at(expires_at_unix_ms: u64, refresh: Option<&str>) -> StoredToken {
        let clock = ManualClock::new();
        let token = AccessToken::new(
            Secret::new("a"),
            "Bearer",
            Issued::now(&clock),
            Duration::from_secs(60),
        )
        .unwrap()
        .with_refresh_token(refresh.map(Secret::new));
        StoredToken {
            expires_at_unix_ms,
            ..StoredToken::from_token(&token)
        }
    }

    #[test]
    fn a_token_is_kept_until_it_expires_within_a_second_and_a_year_and_a_day() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let now_ms = 1_700_000_000_000;
        let max = millis(MAX_KEEP);
        for (expires_at, kept) in [
            (now_ms + 5_000, 5_000),
            (now_ms + 999, 1_000),
            (0, 1_000),
            (now_ms + max + 1, max),
            (u64::MAX, max),
        ] {
            assert_eq!(
                keep_ms(&expiring_at(expires_at, None), now),
                i64::try_from(kept).unwrap(),
                "{expires_at}"
            );
        }
        assert_eq!(keep_ms(&expiring_at(now_ms + 5_000, Some("r")), now), 0);
    }

    #[test]
    fn a_url_that_does_not_parse_is_a_config_error_that_does_not_quote_it() {
        let error =
            PostgresStore::open(&Secret::new("postgres://u:SENTINEL@h:notaport/db")).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(!error.to_string().contains("SENTINEL"), "{error}");
    }

    #[test]
    fn a_url_asking_for_tls_is_refused_without_the_feature_and_taken_with_it() {
        for url in [
            "postgres://u@127.0.0.1/db?sslmode=require",
            "host=127.0.0.1 user=u sslmode=require",
        ] {
            let opened = PostgresStore::open(&Secret::new(url));
            if cfg!(feature = "tls") {
                assert!(opened.is_ok(), "{url}");
            } else {
                let error = opened.unwrap_err();
                assert_eq!(error.kind(), ErrorKind::Config, "{url}");
                assert!(error.to_string().contains("`tls`"), "{error}");
            }
        }
        for url in [
            "postgres://u@127.0.0.1/db",
            "postgres://u@127.0.0.1/db?sslmode=prefer",
            "postgres://u@127.0.0.1/db?sslmode=disable",
        ] {
            assert!(PostgresStore::open(&Secret::new(url)).is_ok(), "{url}");
        }
    }

    #[test]
    fn no_two_prefix_and_key_pairs_seal_under_the_same_name() {
        let store = |prefix: &str| {
            PostgresStore::open(&Secret::new("postgres://u@127.0.0.1/db"))
                .unwrap()
                .with_prefix(prefix)
        };
        assert_ne!(store("a:b").name("c"), store("a").name("b:c"));
        assert_ne!(store("a").name("b"), store("a").name("c"));
    }
}
