//! # payauth-postgres
//!
//! Durable tokens for a fleet, in the database you already run. A
//! fintech acting for every customer who logged in keeps one rotating
//! refresh token per customer; losing the last write of one (a Redis
//! restarted from a snapshot) means that customer must log in again. A
//! [`PostgresStore`] keeps every token in a table, commits each write,
//! and runs the same fleet protocol as `payauth-redis`: a reader who knows
//! one knows the other.
//!
//! ```no_run
//! use std::sync::Arc;
//! use payauth_core::{Secret, TokenCache};
//! use payauth_postgres::PostgresStore;
//! # async fn run(source: impl payauth_core::TokenSource) -> Result<(), payauth_core::Error> {
//! let store = PostgresStore::connect(&Secret::from_env("DATABASE_URL")?).await?;
//! let cache = TokenCache::builder(source)
//!     .shared_store(Arc::new(store), "vakifbank:customer:42")
//!     .build();
//! let token = cache.token().await?; // one fetch per expiry, fleet-wide
//! # Ok(()) }
//! ```
//!
//! For many customers in one process, hand the store to
//! `payauth_core::subjects::Subjects`' factory.
//!
//! ## How it works
//! Every key is one row of `payauth_tokens` (see [`MIGRATIONS`]): the
//! token and its version, the fetch lease, and the last shared failure.
//! Every step is one statement, atomic on its row; times are on the
//! database's clock, which every replica shares.
//! - **Read first.** Before fetching, a replica reads the stored token; if
//!   another replica already renewed it, it takes that one.
//! - **One fetcher.** Otherwise it takes the row's lease (an upsert that
//!   only succeeds when no live lease is there, with a random owner id).
//!   The holder fetches; the others poll the row every 50 ms (by default)
//!   and take its token when it lands. While its fetch runs, the holder
//!   renews the lease every third of its TTL (5 s by default).
//! - **Crash.** A holder that dies stops renewing; its lease expires after
//!   the TTL and another replica takes over.
//! - **Fenced writes.** The holder saves with an `UPDATE` that checks, in
//!   one statement, that it still owns the lease and that the version is
//!   the one it saw when it took the lease; then bumps the version. A
//!   replica that lost its lease never overwrites a newer token: its save
//!   is refused with [`ErrorKind::Store`] and its token kept in memory.
//! - **Compare-and-set.** [`TokenStore::save_if`] writes only over the
//!   version it read ([`SaveIf`] decides on what that version holds), so
//!   a late save never replaces a newer token or a rotated refresh token.
//! - **Rotation.** The stored token carries the refresh token; a refused
//!   refresh token is cleared only if it is still the stored one.
//! - **Failures shared.** A holder whose fetch fails writes the failure
//!   (never a secret) with its backoff; replicas waiting for the lease
//!   answer with it instead of each trying in turn.
//! - **Durability.** A write returns once PostgreSQL committed it (with
//!   the server's `synchronous_commit`): a restart loses no acknowledged
//!   rotated refresh token. A token without refresh token is dropped from
//!   reads when it expires; [`PostgresStore::purge_expired`] deletes such
//!   rows.
//! - **When the table forgets anyway** (a restore from an older backup, a
//!   failover to a standby behind, a `TRUNCATE`): the replicas converge on
//!   the newest refresh token before anyone refreshes, as on a Redis
//!   restarted empty ([`PostgresStore::with_converge_wait`], default 6 s):
//!   a replica finding its token gone, or an older one it saw the row hold
//!   before, writes its own back with a compare-and-set; idle replicas do
//!   so once the store's forget mark changed (a row of
//!   `payauth_forget_marks` per prefix, read with its `xmin` and the
//!   server's start time: one statement every 2 s per store instance,
//!   however many customers its caches hold, then one read per row held;
//!   a lease holder that finds its row forgotten drops the mark, so a loss
//!   the mark misses makes every replica look too; zero turns this off,
//!   for a database that never loses a commit); a
//!   holder that found the row forgotten waits that long before it
//!   refreshes. A newest refresh token held only by a replica that is down
//!   meanwhile is still lost.
//!
//! ## Schema and migrations
//! The crate ships its migrations ([`MIGRATIONS`]) and applies those not
//! yet applied, in order, each in a transaction under an advisory lock (so
//! replicas starting together apply each once), recording them in
//! `payauth_schema_migrations`. [`PostgresStore::connect`] migrates at
//! once; [`PostgresStore::open`] on first use; [`PostgresStore::migrate`]
//! when you choose (e.g. from a deploy step, with a more privileged
//! role).
//!
//! ## Why tokio-postgres and deadpool-postgres, not sqlx
//! A token store runs a dozen fixed statements. `tokio-postgres` (the
//! rust-postgres project) speaks the protocol with few dependencies, and
//! `deadpool-postgres` adds a small, maintained pool over it (statement
//! caching included). `sqlx` brings its own runtime layer, drivers and
//! (with its macros) compile-time database access: several times the
//! build for nothing this crate uses.
//!
//! ## Limits
//! - Settings are clamped to the same documented ranges as
//!   `payauth-redis`: [`LEASE_TTL_LIMITS`], [`POLL_INTERVAL_LIMITS`],
//!   [`MAX_WAIT_LIMITS`], [`CONVERGE_WAIT_LIMITS`].
//! - A stored token's JSON may take at most
//!   [`MAX_STORED_TOKEN_BYTES`](payauth_core::store::MAX_STORED_TOKEN_BYTES);
//!   a larger value in the table is refused by its size, before it is
//!   read.
//! - Every statement is bounded by [`STATEMENT_TIMEOUT`] (and connecting
//!   by the same), so a database that hangs costs a caller a store error,
//!   not its token. Waiting for a free pooled connection is bounded by the
//!   caller only: a busy pool is not an outage (a fleet replica that took
//!   it for one would fetch beside the lease holder).
//! - TLS to the database: feature `tls` and `sslmode=require` in the URL
//!   (rustls, the certificate and name checked; see
//!   [`PostgresStore::open`]). Without them the connection is plain TCP:
//!   run it on a private network.
//!
//! ## Encryption at rest (off by default)
//! [`PostgresStore::with_encryption`] seals each stored token with
//! XChaCha20-Poly1305 under your [`EncryptionKey`] (the same type and
//! format as `payauth-redis`'s), with the row's prefix and key as
//! associated data: a value copied to another row does not open. Turn it on
//! when the database, its backups or its replicas are less trusted than
//! the replicas of your service.
//!
//! Secrets never appear in `Debug`, errors or logs: the database URL is a
//! [`Secret`](payauth_core::Secret), and errors name the failure only.
//!
//! [`ErrorKind::Store`]: payauth_core::ErrorKind::Store
//! [`TokenStore::save_if`]: payauth_core::TokenStore::save_if
//! [`SaveIf`]: payauth_core::SaveIf

#![cfg_attr(docsrs, feature(doc_cfg))]

mod migrations;
mod store;

pub use migrations::MIGRATIONS;
pub use payauth_core::encryption::EncryptionKey;
pub use store::{
    CONVERGE_WAIT_LIMITS, DEFAULT_CONVERGE_WAIT, DEFAULT_LEASE_TTL, DEFAULT_MAX_WAIT,
    DEFAULT_POLL_INTERVAL, DEFAULT_POOL_SIZE, DEFAULT_PREFIX, LEASE_TTL_LIMITS, MAX_WAIT_LIMITS,
    POLL_INTERVAL_LIMITS, PostgresStore, STATEMENT_TIMEOUT,
};
