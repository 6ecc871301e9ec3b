//! [`RedisStore`]: the [`TokenStore`] and [`SharedStore`] on Redis.

mod fleet;

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use payauth_core::store::MAX_STORED_TOKEN_BYTES;
use payauth_core::{
    BoxFuture, Error, ErrorKind, Lease, SaveIf, Secret, SharedStore, StoredFailure, StoredToken,
    TokenStore,
};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};

use crate::encryption::{self, EncryptionKey, MAX_VALUE_BYTES};
use crate::keys::Keys;
use crate::scripts;

pub use payauth_core::store::{
    CONVERGE_WAIT_LIMITS, DEFAULT_CONVERGE_WAIT, DEFAULT_LEASE_TTL, DEFAULT_MAX_WAIT,
    DEFAULT_POLL_INTERVAL, LEASE_TTL_LIMITS, MAX_WAIT_LIMITS, POLL_INTERVAL_LIMITS,
};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "payauth";
/// How long Redis keeps a token without refresh token at most (a year and
/// a day): one claiming a longer life is dropped then and fetched anew.
pub(crate) const MAX_KEEP: Duration = Duration::from_secs(366 * 86_400);
/// How long Redis keeps a token without refresh token at least, even one
/// saved already expired, so that what a save wrote can be read back.
const MIN_KEEP: Duration = Duration::from_secs(1);

/// Tokens in Redis, shared by every replica that uses the same prefix and
/// key; see the [crate docs](crate) for the protocol.
///
/// `C` is any async Redis connection that can be cloned cheaply: the
/// reconnecting [`ConnectionManager`] (from [`RedisStore::connect`]) or,
/// with the `cluster` feature, a `ClusterConnection`.
#[derive(Clone)]
pub struct RedisStore<C = ConnectionManager> {
    conn: C,
    prefix: String,
    lease_ttl: Duration,
    poll_interval: Duration,
    max_wait: Duration,
    converge_wait: Duration,
    encryption: Option<EncryptionKey>,
}

/// A client for `url`; the URL is never quoted, it may hold a password.
fn client(url: &Secret) -> Result<redis::Client, Error> {
    redis::Client::open(url.expose_secret())
        .map_err(|_| Error::new(ErrorKind::Config).with_description("the Redis URL does not parse"))
}

impl RedisStore<ConnectionManager> {
    /// Connects to the Redis at `url` (`redis://[user:password@]host:port/db`,
    /// or `rediss://` with the `tls` feature) through a connection manager
    /// that reconnects by itself. The URL is a [`Secret`] since it may hold
    /// a password; errors never quote it.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a URL that does not parse;
    /// [`ErrorKind::Store`] when Redis cannot be reached.
    pub async fn connect(url: &Secret) -> Result<Self, Error> {
        let conn = ConnectionManager::new_with_config(client(url)?, manager_config())
            .await
            .map_err(|e| redis_error("connect to", &e))?;
        Ok(Self::new(conn))
    }
}

impl RedisStore<LazyConnection> {
    /// A store on the Redis at `url` that connects on first use (and
    /// again after a failed attempt), so it can be built without a runtime
    /// or a reachable Redis, e.g. from a config file at startup.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a URL that does not parse (never quoted).
    pub fn open(url: &Secret) -> Result<Self, Error> {
        let client = client(url)?;
        let db = client.get_connection_info().redis_settings().db();
        Ok(Self::new(LazyConnection {
            client,
            db,
            conn: Arc::new(tokio::sync::OnceCell::new()),
        }))
    }
}

/// A [`ConnectionManager`] made on first use; see [`RedisStore::open`].
#[derive(Clone)]
pub struct LazyConnection {
    client: redis::Client,
    db: i64,
    conn: Arc<tokio::sync::OnceCell<ConnectionManager>>,
}

impl LazyConnection {
    async fn get(&self) -> redis::RedisResult<ConnectionManager> {
        self.conn
            .get_or_try_init(|| {
                ConnectionManager::new_with_config(self.client.clone(), manager_config())
            })
            .await
            .cloned()
    }
}

impl fmt::Debug for LazyConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyConnection")
            .field("connected", &self.conn.initialized())
            .finish_non_exhaustive()
    }
}

impl ConnectionLike for LazyConnection {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        Box::pin(async move { self.get().await?.req_packed_command(cmd).await })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        Box::pin(async move {
            self.get()
                .await?
                .req_packed_commands(pipeline, offset, count)
                .await
        })
    }

    fn get_db(&self) -> i64 {
        self.db
    }
}

/// Short timeouts: a token store that hangs would hold up every caller.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2)
}

#[cfg(feature = "cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
impl RedisStore<redis::cluster_async::ClusterConnection> {
    /// Connects to a Redis Cluster through any of its `nodes` (URLs, as
    /// [`Secret`]s since they may hold a password). Every key of one token
    /// shares a hash tag, so each script runs on the one node owning it.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for URLs that do not parse;
    /// [`ErrorKind::Store`] when the cluster cannot be reached.
    pub async fn connect_cluster(nodes: &[Secret]) -> Result<Self, Error> {
        let client = redis::cluster::ClusterClient::builder(
            nodes.iter().map(|node| node.expose_secret().to_owned()),
        )
        .connection_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(2))
        .build()
        .map_err(|_| {
            Error::new(ErrorKind::Config).with_description("a Redis Cluster URL does not parse")
        })?;
        let conn = client
            .get_async_connection()
            .await
            .map_err(|e| redis_error("connect to", &e))?;
        Ok(Self::new(conn))
    }
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// A store over an existing connection, with the defaults: prefix
    /// `payauth`, a 5 s lease, a 50 ms poll, no encryption.
    pub fn new(conn: C) -> Self {
        Self {
            conn,
            prefix: DEFAULT_PREFIX.to_owned(),
            lease_ttl: DEFAULT_LEASE_TTL,
            poll_interval: DEFAULT_POLL_INTERVAL,
            max_wait: DEFAULT_MAX_WAIT,
            converge_wait: DEFAULT_CONVERGE_WAIT,
            encryption: None,
        }
    }

    /// Namespaces every Redis key (default `payauth`): replicas that share
    /// tokens use the same prefix; separate environments use different
    /// ones.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a lease lasts without renewal (default 5 s, clamped to
    /// [`LEASE_TTL_LIMITS`], 100 ms to 10 min). The holder renews it every
    /// third of that while its fetch runs, so this is how long a crashed
    /// holder blocks the fleet, not a limit on fetch time.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use payauth_redis::RedisStore;
    /// # let store = RedisStore::open(&payauth_core::Secret::new("redis://127.0.0.1/")).unwrap();
    /// let store = store.with_lease_ttl(Duration::from_secs(2));
    /// ```
    #[must_use]
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = clamp("lease TTL", ttl, &LEASE_TTL_LIMITS);
        self
    }

    /// The wait between looks at the store while another replica fetches
    /// (default 50 ms, clamped to [`POLL_INTERVAL_LIMITS`], 10 ms to 10 s).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use payauth_redis::RedisStore;
    /// # let store = RedisStore::open(&payauth_core::Secret::new("redis://127.0.0.1/")).unwrap();
    /// let store = store.with_poll_interval(Duration::from_millis(20));
    /// ```
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = clamp("poll interval", interval, &POLL_INTERVAL_LIMITS);
        self
    }

    /// The longest wait for another replica's fetch (default 60 s, clamped
    /// to [`MAX_WAIT_LIMITS`], 100 ms to 10 min) before callers get
    /// [`ErrorKind::Unavailable`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use payauth_redis::RedisStore;
    /// # let store = RedisStore::open(&payauth_core::Secret::new("redis://127.0.0.1/")).unwrap();
    /// let store = store.with_max_wait(Duration::from_secs(30));
    /// ```
    #[must_use]
    pub fn with_max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = clamp("longest wait", wait, &MAX_WAIT_LIMITS);
        self
    }

    /// How long a replica that finds Redis forgot its token (a restart
    /// without persistence, a `FLUSHALL`, a failover to a replica behind)
    /// waits under the lease before it refreshes, so that every replica
    /// holding a newer refresh token has written it back; each replica
    /// reads the store's forget mark every third of this, once per store
    /// (on a Cluster, each cache holding a refresh token reads its key
    /// that often instead; default 6 s, clamped to
    /// [`CONVERGE_WAIT_LIMITS`], zero to 60 s; zero turns both off). See [`SharedStore::converge_wait`](payauth_core::SharedStore::converge_wait).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use payauth_redis::RedisStore;
    /// # let store = RedisStore::open(&payauth_core::Secret::new("redis://127.0.0.1/")).unwrap();
    /// let store = store.with_converge_wait(Duration::from_secs(3));
    /// ```
    #[must_use]
    pub fn with_converge_wait(mut self, wait: Duration) -> Self {
        self.converge_wait = clamp("converge wait", wait, &CONVERGE_WAIT_LIMITS);
        self
    }

    /// Encrypts tokens at rest with `key` (off by default; see the crate
    /// docs for why). Every replica needs the same key; a token that does
    /// not open (another key, or written unencrypted) counts as none and is
    /// replaced by the next fetch.
    #[must_use]
    pub fn with_encryption(mut self, key: EncryptionKey) -> Self {
        self.encryption = Some(key);
        self
    }

    /// The Redis keys used for `key`: the token hash and the lease, which
    /// share one hash tag.
    #[must_use]
    pub fn redis_keys(&self, key: &str) -> (String, String) {
        let keys = self.keys(key);
        (keys.token, keys.lease)
    }

    fn keys(&self, key: &str) -> Keys {
        Keys::new(&self.prefix, key)
    }

    /// The stored token and its version; a value larger than
    /// [`MAX_VALUE_BYTES`] is refused by the script before it is sent.
    async fn load_versioned(&self, key: &str) -> Result<Option<(u64, StoredToken)>, Error> {
        let keys = self.keys(key);
        let (status, number, bytes): (i64, i64, Option<Vec<u8>>) =
            invoke(&scripts::LOAD, &[&keys.token], &[], &self.conn)
                .await
                .map_err(|e| redis_error("read from", &e))?;
        let bytes = match (status, bytes) {
            (0, _) => return Ok(None),
            (1, Some(bytes)) => bytes,
            (2, _) => {
                return Err(Error::new(ErrorKind::Store).with_description(format!(
                    "the stored value is {number} bytes, larger than the {MAX_VALUE_BYTES} bytes a stored token may take"
                )));
            }
            _ => {
                return Err(Error::new(ErrorKind::Store)
                    .with_description("the stored value is not a payauth token"));
            }
        };
        let json = encryption::open(self.encryption.as_ref(), &keys.token, &bytes)?;
        let token = serde_json::from_slice(&json).map_err(|_| {
            Error::new(ErrorKind::Store).with_description("the stored token is not payauth JSON")
        })?;
        // The script reads only versions within 0..2^53.
        Ok(Some((u64::try_from(number).unwrap_or(0), token)))
    }
}

impl<C> fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("lease_ttl", &self.lease_ttl)
            .field("encrypted", &self.encryption.is_some())
            .finish_non_exhaustive()
    }
}

/// A typed store error; Redis errors name the failure, never a secret. A
/// Redis that cannot be reached (refused, dropped, timed out, any I/O
/// failure) is an outage, transient: trying again later can succeed.
fn redis_error(action: &str, error: &RedisError) -> Error {
    let error_out =
        Error::new(ErrorKind::Store).with_description(format!("cannot {action} Redis: {error}"));
    if is_outage(error) {
        error_out.with_transient()
    } else {
        error_out
    }
}

fn is_outage(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || error.is_timeout()
}

/// The bytes to write for `token` and how long Redis keeps them, in ms
/// (see [`keep_ms`]).
fn encode(
    encryption: Option<&EncryptionKey>,
    redis_key: &str,
    token: &StoredToken,
) -> Result<(Vec<u8>, u64), Error> {
    let json = zeroize::Zeroizing::new(
        serde_json::to_vec(token).map_err(|e| Error::new(ErrorKind::Store).with_source(e))?,
    );
    if json.len() > MAX_STORED_TOKEN_BYTES {
        return Err(Error::new(ErrorKind::Store).with_description(format!(
            "the token is larger than the {MAX_STORED_TOKEN_BYTES} bytes a stored token may take; it was not saved"
        )));
    }
    let bytes = encryption::seal(encryption, redis_key, &json)?;
    Ok((bytes, keep_ms(token, SystemTime::now())))
}

/// How long Redis keeps `token`, in ms, as of `now`: 0 (for good) for a
/// token with a refresh token; else until it expires, within
/// [`MIN_KEEP`]..=[`MAX_KEEP`], whatever expiry it claims (a relative TTL,
/// so the writer's and Redis's clocks need not agree).
fn keep_ms(token: &StoredToken, now: SystemTime) -> u64 {
    if token.refresh_token.is_some() {
        return 0;
    }
    let now_ms = millis(now.duration_since(UNIX_EPOCH).unwrap_or_default());
    token
        .expires_at_unix_ms
        .saturating_sub(now_ms)
        .clamp(millis(MIN_KEEP), millis(MAX_KEEP))
}

/// `value` within `limits`, with a warning naming this store when it was not.
fn clamp(setting: &str, value: Duration, limits: &RangeInclusive<Duration>) -> Duration {
    payauth_core::internal::store::clamp_setting("Redis", setting, value, limits)
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// The store's forget mark: a random value written under the prefix at
    /// first use (`SET NX`, so every replica reads the same one), with the
    /// server's `run_id` (a restart or a failover to another server
    /// changes it, even when that server still holds the value). An
    /// `INFO` refused (an ACL without it) leaves the value alone.
    async fn read_forget_mark(&self) -> Result<String, Error> {
        let key = crate::keys::forget_mark(&self.prefix);
        let fresh = owner_id();
        let (_, value): (Option<String>, Option<String>) = redis::pipe()
            .cmd("SET")
            .arg(&key)
            .arg(&fresh)
            .arg("NX")
            .cmd("GET")
            .arg(&key)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| redis_error("read from", &e))?;
        let info: Result<String, RedisError> = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut self.conn.clone())
            .await;
        let run_id = info
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|line| line.strip_prefix("run_id:"))
                    .map(|id| id.trim().to_owned())
            })
            .unwrap_or_default();
        Ok(format!("{}/{run_id}", value.unwrap_or_default()))
    }
}

/// Whether `C` is a Redis Cluster connection (never, without feature
/// `cluster`).
#[cfg_attr(not(feature = "cluster"), allow(clippy::extra_unused_type_parameters))]
fn is_cluster<C: 'static>() -> bool {
    #[cfg(feature = "cluster")]
    {
        std::any::TypeId::of::<C>()
            == std::any::TypeId::of::<redis::cluster_async::ClusterConnection>()
    }
    #[cfg(not(feature = "cluster"))]
    {
        false
    }
}

async fn invoke<C, T>(
    script: &Script,
    keys: &[&str],
    args: &[&[u8]],
    conn: &C,
) -> Result<T, RedisError>
where
    C: ConnectionLike + Clone + Send + Sync,
    T: redis::FromRedisValue,
{
    let mut invocation = script.prepare_invoke();
    for key in keys {
        invocation.key(*key);
    }
    for arg in args {
        invocation.arg(*arg);
    }
    invocation.invoke_async(&mut conn.clone()).await
}

impl<C> TokenStore for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        Box::pin(async move { Ok(self.load_versioned(key).await?.map(|(_, token)| token)) })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let keys = self.keys(key);
            let (bytes, keep_ms) = encode(self.encryption.as_ref(), &keys.token, token)?;
            let _: i64 = invoke(
                &scripts::SAVE,
                &[&keys.token],
                &[&bytes, keep_ms.to_string().as_bytes()],
                &self.conn,
            )
            .await
            .map_err(|e| redis_error("write to", &e))?;
            Ok(())
        })
    }

    fn clear<'a>(
        &'a self,
        key: &'a str,
        if_refresh_token: Option<&'a Secret>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let keys = self.keys(key);
            let version = match self.load_versioned(key).await {
                Ok(None) => return Ok(()),
                Ok(Some((version, token))) => {
                    if !token.is_cleared_by(if_refresh_token) {
                        return Ok(());
                    }
                    version
                }
                // An unreadable token can only be cleared unconditionally.
                Err(_) if if_refresh_token.is_none() => {
                    let mut conn = self.conn.clone();
                    let _: i64 = redis::cmd("DEL")
                        .arg(&keys.token)
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| redis_error("delete from", &e))?;
                    return Ok(());
                }
                Err(error) => return Err(error),
            };
            // Compare-and-delete: a token stored meanwhile survives.
            let _: i64 = invoke(
                &scripts::CLEAR_IF_VERSION,
                &[&keys.token],
                &[version.to_string().as_bytes()],
                &self.conn,
            )
            .await
            .map_err(|e| redis_error("delete from", &e))?;
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

impl<C> SharedStore for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn try_lease<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Box<dyn Lease>>, Error>> {
        Box::pin(async move {
            let keys = self.keys(key);
            let owner = owner_id();
            let ttl_ms = millis(self.lease_ttl);
            // Counted from before the request: the lease lives at most
            // this long from when Redis set it.
            let asked = tokio::time::Instant::now();
            let version: i64 = match invoke(
                &scripts::ACQUIRE,
                &[&keys.lease, &keys.token],
                &[owner.as_bytes(), ttl_ms.to_string().as_bytes()],
                &self.conn,
            )
            .await
            {
                Ok(version) => version,
                // No answer in time is not "down": the lease may have been
                // granted all the same (it then runs out unrenewed), so
                // wait as if another replica held it rather than fetch
                // beside its holder.
                Err(error) if error.is_timeout() => {
                    tracing::warn!(lease = %keys.lease, "no answer to a fetch lease request in time; waiting as if another replica held it");
                    return Ok(None);
                }
                Err(error) => return Err(redis_error("take a lease in", &error)),
            };
            let Ok(seen_version) = u64::try_from(version) else {
                return Ok(None);
            };
            tracing::debug!(lease = %keys.lease, "fetch lease taken");
            let held_until = Arc::new(std::sync::Mutex::new(asked + self.lease_ttl));
            let heartbeat = tokio::spawn(renew(
                self.conn.clone(),
                keys.lease.clone(),
                owner.clone(),
                self.lease_ttl,
                Arc::clone(&held_until),
            ));
            Ok(Some(Box::new(RedisLease {
                conn: self.conn.clone(),
                keys,
                owner,
                seen_version,
                encryption: self.encryption.clone(),
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
        if is_cluster::<C>() {
            // One node may restart while the mark lives on another.
            return None;
        }
        Some(Box::pin(self.read_forget_mark()))
    }

    fn mark_forgotten(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            if is_cluster::<C>() {
                return Ok(());
            }
            redis::cmd("DEL")
                .arg(crate::keys::forget_mark(&self.prefix))
                .query_async::<i64>(&mut self.conn.clone())
                .await
                .map(drop)
                .map_err(|e| redis_error("write to", &e))
        })
    }

    fn share_failure<'a>(
        &'a self,
        key: &'a str,
        failure: &'a StoredFailure,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.share_failure_for(key, failure, ttl))
    }

    fn shared_failure<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredFailure>, Error>> {
        Box::pin(self.shared_failure_for(key))
    }
}

/// A unique id for one lease holder: random, or without randomness the
/// process id, the time and a counter, which only need to be unique, not
/// secret.
fn owner_id() -> String {
    payauth_core::internal::random::hex(16).unwrap_or_else(|_| {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}-{nanos}-{n}", std::process::id())
    })
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Keeps the lease alive while its holder runs: every third of the TTL,
/// until the lease is released, lost, or the holder's runtime dies (then
/// the lease expires and another replica takes over).
async fn renew<C>(
    conn: C,
    lease: String,
    owner: String,
    ttl: Duration,
    held_until: Arc<std::sync::Mutex<tokio::time::Instant>>,
) where
    C: ConnectionLike + Clone + Send + Sync,
{
    let ttl_ms = millis(ttl).to_string();
    loop {
        tokio::time::sleep(ttl / 3).await;
        let asked = tokio::time::Instant::now();
        match invoke::<C, i64>(
            &scripts::RENEW,
            &[&lease],
            &[owner.as_bytes(), ttl_ms.as_bytes()],
            &conn,
        )
        .await
        {
            Ok(1) => *lock(&held_until) = asked + ttl,
            Ok(_) => {
                *lock(&held_until) = asked;
                tracing::warn!(%lease, "fetch lease lost before the fetch ended");
                return;
            }
            Err(error) => tracing::debug!(%lease, %error, "fetch lease not renewed; retrying"),
        }
    }
}

/// A held lease: saves are fenced by its owner id and the version seen when
/// it was taken.
struct RedisLease<C> {
    conn: C,
    keys: Keys,
    owner: String,
    seen_version: u64,
    encryption: Option<EncryptionKey>,
    heartbeat: tokio::task::JoinHandle<()>,
    /// Until when Redis keeps the lease, as last confirmed.
    held_until: Arc<std::sync::Mutex<tokio::time::Instant>>,
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<C> Lease for RedisLease<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn save<'a>(&'a self, token: &'a StoredToken) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let (bytes, keep_ms) = encode(self.encryption.as_ref(), &self.keys.token, token)?;
            let written: i64 = invoke(
                &scripts::SAVE_LEASED,
                &[&self.keys.lease, &self.keys.token],
                &[
                    self.owner.as_bytes(),
                    self.seen_version.to_string().as_bytes(),
                    &bytes,
                    keep_ms.to_string().as_bytes(),
                ],
                &self.conn,
            )
            .await
            .map_err(|e| redis_error("write to", &e))?;
            match written {
                -1 => Err(Error::new(ErrorKind::Store).with_description(
                    "the fetch lease expired or passed to another replica before the token was saved",
                )),
                -2 => Err(Error::new(ErrorKind::Store)
                    .with_description("another replica stored a newer token; this one was not saved")),
                _ => Ok(()),
            }
        })
    }

    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>> {
        Box::pin(async move {
            self.heartbeat.abort();
            let _: i64 = invoke(
                &scripts::RELEASE,
                &[&self.keys.lease],
                &[self.owner.as_bytes()],
                &self.conn,
            )
            .await
            .map_err(|e| redis_error("release a lease in", &e))?;
            Ok(())
        })
    }

    fn held(&self) -> bool {
        tokio::time::Instant::now() < *lock(&self.held_until)
    }
}

impl<C> Drop for RedisLease<C> {
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
    fn redis_keeps_a_token_until_it_expires_within_a_second_and_a_year_and_a_day() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let now_ms = 1_700_000_000_000;
        let max = millis(MAX_KEEP);
        for (expires_at, kept) in [
            (now_ms + 30 * 86_400_000, 30 * 86_400_000),
            (now_ms + 5_000, 5_000),
            (now_ms + 1_000, 1_000),
            (now_ms + 999, 1_000),
            (now_ms, 1_000),
            (0, 1_000),
            (now_ms + max, max),
            (now_ms + max + 1, max),
            (u64::MAX, max),
        ] {
            assert_eq!(
                keep_ms(&expiring_at(expires_at, None), now),
                kept,
                "{expires_at}"
            );
        }
        assert_eq!(keep_ms(&expiring_at(now_ms + 5_000, Some("r")), now), 0);
        // A clock before the epoch reads as the epoch, not a panic.
        assert_eq!(
            keep_ms(
                &expiring_at(5_000, None),
                UNIX_EPOCH - Duration::from_secs(1)
            ),
            5_000
        );
    }

    /// The log lines `work` emits.
    fn logged(work: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Capture {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, work);
        String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned()
    }

    #[test]
    fn a_setting_out_of_its_limits_is_clamped_with_a_warning_and_one_within_silently_kept() {
        let limits = &LEASE_TTL_LIMITS;
        let mut clamped = Duration::ZERO;
        let warned = logged(|| clamped = clamp("lease TTL", Duration::MAX, limits));
        assert_eq!(clamped, *limits.end());
        assert!(
            warned.contains("WARN") && warned.contains("lease TTL"),
            "{warned}"
        );
        let mut kept = Duration::ZERO;
        let quiet = logged(|| kept = clamp("lease TTL", Duration::from_secs(2), limits));
        assert_eq!(kept, Duration::from_secs(2));
        assert_eq!(quiet, "");
    }
}
