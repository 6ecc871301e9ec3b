//! # payauth-redis
//!
//! One token for a whole fleet. When a service runs on many machines,
//! every replica fetching its own token multiplies the load on the
//! provider's token endpoint (which providers rate-limit), and with
//! rotating refresh tokens replicas invalidate each other's. A
//! [`RedisStore`] shared by the replicas' [`TokenCache`]s fixes both:
//!
//! ```no_run
//! use std::sync::Arc;
//! use payauth_core::{Secret, TokenCache};
//! use payauth_redis::RedisStore;
//! # async fn run(source: impl payauth_core::TokenSource) -> Result<(), payauth_core::Error> {
//! let store = RedisStore::connect(&Secret::from_env("REDIS_URL")?).await?;
//! let cache = TokenCache::builder(source)
//!     .shared_store(Arc::new(store), "mypos:client-1")
//!     .build();
//! let token = cache.token().await?; // one fetch per expiry, fleet-wide
//! # Ok(()) }
//! ```
//!
//! ## How it works
//! - **Read first.** Before fetching, a replica reads the stored token; if
//!   another replica already renewed it, it takes that one.
//! - **One fetcher.** Otherwise it takes the key's lease (`SET NX PX` with
//!   a random owner id). The holder fetches; the others poll the store
//!   every 50 ms (by default) and take its token when it lands. While its fetch runs,
//!   the holder renews the lease every third of its TTL (5 s by default).
//! - **Crash.** A holder that dies stops renewing; its lease expires after
//!   the TTL and another replica takes over. Callers wait meanwhile (a
//!   still-valid token keeps being served); none gets an error for it.
//! - **Fenced writes.** The holder saves with a script that checks, in one
//!   atomic step, that it still owns the lease and that the stored version
//!   is the one it saw when it took the lease; then bumps the version. A
//!   replica that lost its lease (a long pause, say) never overwrites a
//!   newer token: its save is refused with [`ErrorKind::Store`] and its
//!   token is kept in its own memory only.
//! - **Rotation.** The stored token carries the refresh token, so a
//!   refresh token rotated by one replica is the one the next replica
//!   refreshes with. A refused refresh token is cleared only if it is still
//!   the stored one (compare on clear).
//! - **Failures shared.** A holder whose fetch fails writes the failure
//!   (kind, status, provider code, description, `Retry-After`; never a
//!   secret) to `{payauth:<key>}:failure` with its failure backoff as the
//!   `PX` TTL; replicas waiting for the lease answer with it instead of
//!   each trying in turn, so a refused client is asked once per backoff
//!   fleet-wide.
//! - **Blips.** A save that fails (a dropped connection, a timeout, or a
//!   refused fence) leaves the token in the replica's memory, and the
//!   replica saves it again (at once, then after the backoff) with a
//!   compare-and-set on the version, only over the token it was fetched
//!   from: never over a token another replica or a login stored since. Whichever
//!   replica refreshes next starts from the newest refresh token it knows,
//!   stored or in memory, so a rotated refresh token survives a blip.
//! - **Redis down.** A Redis that refuses, drops or times out a
//!   connection is an outage: [`ErrorKind::Store`] with
//!   [`is_transient`](payauth_core::Error::is_transient) true (the CLI
//!   exits 75, "try again later"). A replica that cannot take the lease
//!   fetches on its
//!   own with a full grant (client credentials) rather than fail; it
//!   reports [`ErrorKind::Store`] for the save and serves the token from
//!   memory. It never refreshes without the lease (another replica may
//!   have rotated the refresh token): its callers keep a still-valid token
//!   or get the store's error until Redis is back.
//! - **Expiry in Redis.** A token without a refresh token expires from
//!   Redis with itself (a TTL from the writer's clock, at least 1 s and at
//!   most a year and a day whatever expiry it claims); one with a refresh
//!   token is kept.
//!
//! ## Limits, and a Redis holding absurd values
//! - Settings are clamped to documented ranges, with a warning:
//!   [`LEASE_TTL_LIMITS`] (100 ms to 10 min), [`POLL_INTERVAL_LIMITS`]
//!   (10 ms to 10 s), [`MAX_WAIT_LIMITS`] (100 ms to 10 min). Values from
//!   a config file go through the same setters.
//! - A stored token's JSON may take at most
//!   [`MAX_STORED_TOKEN_BYTES`](payauth_core::store::MAX_STORED_TOKEN_BYTES)
//!   (64 KiB): a larger token is not saved, and a larger value in Redis is
//!   refused by a script before it is sent ([`ErrorKind::Store`]).
//! - Every script checks all its arguments before it writes, so a refused
//!   save writes nothing.
//! - What the scripts find is read defensively: a version that is not an
//!   integer below 2^53 counts as 0, a token key of another type is
//!   reported as no payauth token and replaced by the next save, and a
//!   lease key without a TTL (or with one longer than any replica sets)
//!   is given one TTL, so it cannot lock the fleet out for good.
//!
//! ## Redis Cluster
//! The keys of a token (`{payauth:<key>}:token`, a hash of version and
//! bytes, `{payauth:<key>}:lease` and `{payauth:<key>}:failure`) share one
//! hash tag, so they live in one slot and every script touches one slot
//! only. Braces in your key or
//! prefix are escaped so they cannot break the tag. With the `cluster`
//! feature, `RedisStore::connect_cluster(&nodes)` (or `RedisStore::new`
//! over your own `ClusterConnection`) works as on one node; the tests run
//! the fleet protocol on a real three-node cluster.
//!
//! ## Atomicity
//! Every write is one Lua script, atomic in Redis: the fenced save under a
//! lease (owner and version checked, version bumped); the compare-and-set
//! [`save_if`](payauth_core::TokenStore::save_if) and the compare-on-clear
//! read the token with its version, check the condition, and write (or
//! delete) in a script that lands only if the version is unchanged, so a
//! token stored in between is never overwritten nor deleted. A plain
//! [`save`](payauth_core::TokenStore::save) replaces what is stored. A shared `invalid_grant` names (by SHA-256) the
//! refresh token it refused, so a replica holding another one does not
//! drop it.
//!
//! ## A restart without persistence
//! Redis's default of many deployments keeps nothing across a restart.
//! What that costs, honestly:
//! - every stored token and refresh token, leases and shared failures are
//!   gone; replicas keep serving the valid tokens in their memory, and a
//!   replica that had not saved its newest token saves it again (over
//!   nothing, so it lands);
//! - the replicas converge on the newest refresh token before anyone
//!   refreshes ([`RedisStore::with_converge_wait`], default 6 s): a
//!   replica that finds its token forgotten writes it back with a
//!   compare-and-set on what it found (nothing, or an older token it saw
//!   the key hold before), idle replicas do the same once Redis's forget
//!   mark changed (a random value under the prefix, `{<prefix>}:forget-mark`,
//!   written with `SET NX`, read with the server's `run_id`: a restart, a
//!   `FLUSHALL` or a failover to another server changes it; a lease holder
//!   that finds its key forgotten drops it, so a loss the mark misses
//!   makes every replica look too), and a lease holder that found the key
//!   forgotten waits that long before it refreshes, then refreshes from
//!   (or takes up) the newest token the fleet wrote back. The cost: one
//!   `SET NX` + `GET` and one `INFO server` every 2 s per store instance
//!   (however many keys its caches hold), one `GET` per key held only
//!   after the mark changed, and, right after a restart, a refresh
//!   delayed by up to the wait (callers keep the still-valid token
//!   meanwhile). On Redis Cluster (one node may restart while the mark
//!   lives on another) there is no mark: each cache holding a refresh
//!   token reads its key every 2 s instead. Clocks play no part: "older" is what a replica saw the key
//!   hold before, never an issue-time comparison;
//! - what it cannot recover: a newest refresh token held only by a
//!   replica that is down (or cut off from Redis) for longer than the
//!   wait; a replica that slept through more than 8 rotations without
//!   looking cannot tell its token from a new login and writes nothing
//!   back over one;
//! - a replica that starts fresh on the emptied store has no refresh token:
//!   its source's `invalid_grant` ("log in again") is not shared (the
//!   provider refused nothing the others hold), so the others keep theirs;
//!   once they write theirs back, it takes it from Redis.
//!
//! With a rotating refresh token (VakıfBank's authorization code), still
//! prefer Redis with persistence (AOF or RDB): the convergence needs a
//! live replica holding the newest token.
//!
//! ## Failover
//! Redis replicates asynchronously. If a primary fails right after a lease
//! was taken or a token saved, the promoted replica may not have it:
//! - a lost lease lets a second replica fetch too: at worst one extra
//!   upstream fetch, and the first holder's save is then refused;
//! - a lost token save makes the fleet fetch again; with a rotating
//!   refresh token, the lost one may have been the only valid one and the
//!   stored (older) refresh token is refused: that cache reports
//!   `invalid_grant` and, for client credentials, simply fetches anew; an
//!   authorization-code grant needs a new login.
//!
//! If that matters, run Redis with `min-replicas-to-write` or follow saves
//! with `WAIT` in your own deployment; payauth does not issue `WAIT`.
//!
//! ## Encryption at rest (off by default)
//! [`RedisStore::with_encryption`] seals each stored token with
//! XChaCha20-Poly1305 under a key you supply ([`EncryptionKey`]), with the
//! Redis key as associated data. It is off by default because it only
//! helps when Redis itself (its snapshots, replicas, or a shared instance)
//! is less trusted than the replicas, and it costs a key to distribute to
//! every replica and rotate: a replica with another key cannot read the
//! token and the fleet fetches anew. Tokens expire within hours, and Redis
//! with TLS, ACLs and no persistence is the usual boundary. Turn it on when
//! the Redis is shared or its snapshots leave your control.
//!
//! Secrets never appear in `Debug`, errors or logs: the Redis URL is a
//! [`Secret`](payauth_core::Secret), and errors name the failure only.
//!
//! [`TokenCache`]: payauth_core::TokenCache
//! [`ErrorKind::Store`]: payauth_core::ErrorKind::Store

#![cfg_attr(docsrs, feature(doc_cfg))]

mod encryption;
mod keys;
mod scripts;
mod store;

pub use encryption::EncryptionKey;
pub use store::{
    CONVERGE_WAIT_LIMITS, DEFAULT_CONVERGE_WAIT, DEFAULT_LEASE_TTL, DEFAULT_MAX_WAIT,
    DEFAULT_POLL_INTERVAL, DEFAULT_PREFIX, LEASE_TTL_LIMITS, LazyConnection, MAX_WAIT_LIMITS,
    POLL_INTERVAL_LIMITS, RedisStore,
};
