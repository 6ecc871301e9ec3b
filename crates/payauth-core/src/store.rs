//! [`TokenStore`]: where tokens and rotated refresh tokens live between
//! fetches and across restarts: [`MemoryStore`], [`FileStore`], or Redis
//! (`payauth-redis`).

mod file;
mod memory;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::{Error, ErrorKind};
use crate::secret::{Secret, SerializableSecret};
use crate::source::BoxFuture;
use crate::token::{AccessToken, MAX_LIFETIME};

pub use file::FileStore;
pub use memory::MemoryStore;

/// A token as persisted: wall-clock expiry, since monotonic instants mean
/// nothing to another process. Its `Debug` shows no secret; its JSON form
/// holds them, so stores keep it private (the file store writes 0600).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredToken {
    /// The access token.
    pub access_token: SerializableSecret,
    /// Its type, `Bearer`.
    pub token_type: String,
    /// Expiry, milliseconds since the Unix epoch.
    pub expires_at_unix_ms: u64,
    /// Lifetime in milliseconds when issued (for refresh-ahead margins).
    pub lifetime_ms: u64,
    /// When it was requested, milliseconds since the Unix epoch: of two
    /// tokens for one key, the later issued is the newer (its refresh token
    /// is the one the provider still honours). 0 (or missing) in records
    /// written before payauth stored it, or tampered with: such a record
    /// counts as older than any that has one, and its access token as
    /// expired (nothing bounds the expiry it claims), its refresh token
    /// kept.
    #[serde(default)]
    pub issued_at_unix_ms: u64,
    /// Granted scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The refresh token, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<SerializableSecret>,
}

impl StoredToken {
    /// The persisted form of `token`.
    #[must_use]
    pub fn from_token(token: &AccessToken) -> Self {
        Self {
            access_token: token.secret().clone().into(),
            token_type: token.token_type().to_owned(),
            expires_at_unix_ms: unix_ms(token.expires_at_system()),
            lifetime_ms: millis(token.lifetime()),
            issued_at_unix_ms: unix_ms(token.issued().system()),
            scope: token.scope().map(ToOwned::to_owned),
            refresh_token: token.refresh_token().cloned().map(Into::into),
        }
    }

    /// Back to a token, its expiry placed on `clock`'s monotonic time. It is
    /// never given more than its own lifetime from its issue time, whatever
    /// expiry it claims (a skewed or tampered writer), nor more than its
    /// lifetime from now; a record without an issue time comes back
    /// expired (its claimed expiry cannot be checked against anything); an
    /// expired token comes back expired, still carrying its refresh token,
    /// however short its lifetime.
    ///
    /// # Errors
    /// [`ErrorKind::Malformed`] when the stored token cannot be a header.
    pub fn to_token(&self, clock: &dyn Clock) -> Result<AccessToken, Error> {
        let lifetime = Duration::from_millis(self.lifetime_ms).min(MAX_LIFETIME);
        let issued_ms = self.issued_ms();
        let expires_ms = if issued_ms == 0 {
            // No issue time: the cache can vouch for no lifetime at all.
            0
        } else {
            self.expires_at_unix_ms
                .min(issued_ms.saturating_add(millis(lifetime)))
        };
        let remaining =
            Duration::from_millis(expires_ms.saturating_sub(unix_ms(clock.system_now())));
        let issued_system = UNIX_EPOCH
            .checked_add(Duration::from_millis(issued_ms))
            .unwrap_or(UNIX_EPOCH);
        let token = AccessToken::restored(
            self.access_token.as_secret().clone(),
            &self.token_type,
            lifetime,
            remaining,
            issued_system,
            clock,
        )?;
        Ok(token
            .with_scope(self.scope.clone())
            .with_refresh_token(self.refresh_token.clone().map(Into::into)))
    }

    /// When it was issued, milliseconds since the Unix epoch; 0 for a
    /// record that did not store it (never derived from the expiry it
    /// claims, which is what the issue time must check).
    #[must_use]
    pub fn issued_ms(&self) -> u64 {
        self.issued_at_unix_ms
    }

    /// Whether this token was issued after `other` (so it, and its refresh
    /// token, supersede `other`'s).
    #[must_use]
    pub fn is_newer_than(&self, other: &Self) -> bool {
        self.issued_ms() > other.issued_ms()
    }

    /// Whether [`TokenStore::clear`] with `if_holds` removes this token:
    /// always when `None`, else only if it still holds that secret as its
    /// access token or its refresh token (compared in constant time).
    #[must_use]
    pub fn is_cleared_by(&self, if_holds: Option<&Secret>) -> bool {
        if_holds.is_none_or(|expected| {
            self.access_token.as_secret() == expected
                || self
                    .refresh_token
                    .as_ref()
                    .map(SerializableSecret::as_secret)
                    == Some(expected)
        })
    }
}

impl fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredToken")
            .field("token_type", &self.token_type)
            .field("expires_at_unix_ms", &self.expires_at_unix_ms)
            .field("issued_at_unix_ms", &self.issued_at_unix_ms)
            .field("scope", &self.scope)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// Where tokens are kept, by key (one key per credential and flow).
///
/// Object-safe, async. `clear` takes the secret the caller saw refused (a
/// refresh token after `invalid_grant`, an access token after a 401 or a
/// revocation), so a late refusal cannot wipe a newer token that another
/// process stored meanwhile.
pub trait TokenStore: Send + Sync + 'static {
    /// The token stored under `key`, if any.
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>>;
    /// Replaces what is stored under `key`.
    fn save<'a>(&'a self, key: &'a str, token: &'a StoredToken)
    -> BoxFuture<'a, Result<(), Error>>;
    /// Removes what is stored under `key`, but only if it still holds
    /// `if_holds` as its access token or its refresh token (see
    /// [`StoredToken::is_cleared_by`]), or unconditionally when `None`.
    fn clear<'a>(
        &'a self,
        key: &'a str,
        if_holds: Option<&'a Secret>,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// Saves `token` under `key` only if what is stored allows it (see
    /// [`SaveIf`]); whether it was written. The cache saves through it
    /// whenever another write may have landed since it fetched: a save
    /// retried after a failure, a seeded token, a rejected token stored
    /// expired, so a late write never replaces a newer token or a rotated
    /// refresh token.
    ///
    /// The default loads, checks ([`SaveIf::allows`]) and saves, which is
    /// not atomic at all: a store overrides it with a real compare-and-set
    /// ([`MemoryStore`] under its mutex, [`FileStore`] under an OS file
    /// lock, `payauth-redis` in a script). The cache writes through
    /// `save_if` only (or a fleet lease's fenced save).
    fn save_if<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
        condition: SaveIf<'a>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let stored = self.load(key).await?;
            if !condition.allows(stored.as_ref(), token) {
                return Ok(false);
            }
            self.save(key, token).await?;
            Ok(true)
        })
    }
}

/// When [`TokenStore::save_if`] may replace what is stored.
///
/// ```
/// use std::time::Duration;
/// use payauth_core::{AccessToken, Issued, Secret, StoredToken, SystemClock, store::SaveIf};
///
/// let token = |value: &str| {
///     StoredToken::from_token(&AccessToken::new(Secret::new(value), "Bearer", Issued::now(&SystemClock), Duration::from_secs(60)).unwrap())
/// };
/// let (old, new) = (token("old"), token("new"));
/// let holds_old = SaveIf::Holds { access_tokens: &[old.access_token.as_secret()], or_nothing: false };
/// assert!(holds_old.allows(Some(&old), &new));
/// assert!(!holds_old.allows(Some(&new), &token("other")));
/// assert!(!holds_old.allows(None, &new));
/// ```
#[derive(Debug, Clone, Copy)]
pub enum SaveIf<'a> {
    /// Unless the store holds a token issued later
    /// ([`StoredToken::is_newer_than`]).
    NotNewer,
    /// Only if the store holds a token whose access token is one of these
    /// (or holds nothing, with `or_nothing`): a compare-and-set on what the
    /// writer last knew was there.
    Holds {
        /// The access tokens the store may hold (compared in constant
        /// time).
        access_tokens: &'a [&'a Secret],
        /// Whether an empty store allows the write too.
        or_nothing: bool,
    },
}

impl SaveIf<'_> {
    /// Whether a store holding `stored` may have `token` written over it.
    #[must_use]
    pub fn allows(&self, stored: Option<&StoredToken>, token: &StoredToken) -> bool {
        match (self, stored) {
            (Self::NotNewer, stored) => stored.is_none_or(|stored| !stored.is_newer_than(token)),
            (Self::Holds { or_nothing, .. }, None) => *or_nothing,
            (Self::Holds { access_tokens, .. }, Some(stored)) => access_tokens
                .iter()
                .any(|expected| stored.access_token.as_secret() == *expected),
        }
    }
}

/// A failed fetch as shared through a [`SharedStore`], so that the other
/// replicas of a fleet answer with it for the backoff instead of each
/// trying in turn. It holds what an [`Error`] shows (never a secret) and
/// is JSON-serializable for the store.
///
/// ```
/// use std::time::Duration;
/// use payauth_core::{Error, ErrorKind, store::StoredFailure};
///
/// let error = Error::new(ErrorKind::RateLimited).with_status(429).with_retry_after(Duration::from_secs(120));
/// let shared = StoredFailure::from_error(&error);
/// let back = shared.to_error().unwrap();
/// assert_eq!((back.kind(), back.status(), back.retry_after()), (ErrorKind::RateLimited, Some(429), Some(Duration::from_secs(120))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFailure {
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
    /// For `invalid_grant`: the SHA-256 (hex) of the refresh token the
    /// provider refused, so a replica holding another one does not take
    /// the refusal for a verdict on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refused_refresh_token_sha256: Option<String>,
}

fn digest(secret: &Secret) -> String {
    use sha2::Digest as _;
    crate::internal::hex::encode_lower(&sha2::Sha256::digest(secret.expose_secret().as_bytes()))
}

/// Every kind a shared failure can name; a name not listed (written by a
/// newer payauth) is not taken up.
const SHARED_KINDS: [ErrorKind; 15] = [
    ErrorKind::InvalidRequest,
    ErrorKind::InvalidClient,
    ErrorKind::InvalidGrant,
    ErrorKind::UnauthorizedClient,
    ErrorKind::UnsupportedGrantType,
    ErrorKind::InvalidScope,
    ErrorKind::AccessDenied,
    ErrorKind::RateLimited,
    ErrorKind::Unavailable,
    ErrorKind::Transport,
    ErrorKind::Timeout,
    ErrorKind::Malformed,
    ErrorKind::Provider,
    ErrorKind::Store,
    ErrorKind::Config,
];

impl StoredFailure {
    /// What is shared of `error`: its kind, status, provider code,
    /// description and `Retry-After`.
    #[must_use]
    pub fn from_error(error: &Error) -> Self {
        Self {
            kind: format!("{:?}", error.kind()),
            status: error.status(),
            provider_code: error.provider_code().map(ToOwned::to_owned),
            description: error.description().map(ToOwned::to_owned),
            retry_after_ms: error.retry_after().map(millis),
            refused_refresh_token_sha256: None,
        }
    }

    /// Names `refused`, the refresh token the provider's `invalid_grant`
    /// was about (by its SHA-256, never the token).
    #[must_use]
    pub fn refusing(mut self, refused: &Secret) -> Self {
        self.refused_refresh_token_sha256 = Some(digest(refused));
        self
    }

    /// Whether this failure is the provider's refusal of `refresh_token`:
    /// only a failure that names it is. An `invalid_grant` for another
    /// refresh token (an older one, or none at all) is no verdict on it.
    #[must_use]
    pub fn refuses(&self, refresh_token: &Secret) -> bool {
        self.refused_refresh_token_sha256
            .as_deref()
            .is_some_and(|named| named == digest(refresh_token))
    }

    /// The error again; `None` for a kind this version does not know.
    #[must_use]
    pub fn to_error(&self) -> Option<Error> {
        let kind = SHARED_KINDS
            .into_iter()
            .find(|kind| format!("{kind:?}") == self.kind)?;
        let mut error = Error::new(kind);
        if let Some(status) = self.status {
            error = error.with_status(status);
        }
        if let Some(code) = &self.provider_code {
            error = error.with_provider_code(code.clone());
        }
        if let Some(description) = &self.description {
            error = error.with_description(description);
        }
        if let Some(wait) = self.retry_after_ms {
            error = error.with_retry_after(Duration::from_millis(wait));
        }
        Some(error)
    }
}

/// The default lease lifetime of a [`SharedStore`]: how long a crashed
/// holder blocks the fleet.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(5);
/// The default wait between looks at a [`SharedStore`] while another
/// replica fetches.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The default longest wait for another replica's fetch.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);
/// The lease lifetimes a [`SharedStore`] accepts: 100 ms to 10 minutes.
pub const LEASE_TTL_LIMITS: std::ops::RangeInclusive<Duration> =
    std::ops::RangeInclusive::new(Duration::from_millis(100), Duration::from_secs(600));
/// The poll intervals a [`SharedStore`] accepts: 10 ms to 10 s.
pub const POLL_INTERVAL_LIMITS: std::ops::RangeInclusive<Duration> =
    std::ops::RangeInclusive::new(Duration::from_millis(10), Duration::from_secs(10));
/// The default [`SharedStore::converge_wait`]: 6 s, so the store's
/// [forget mark](SharedStore::forget_mark) is read every 2 s (or, for a
/// store without one, each cache holding a refresh token reads its key
/// that often).
pub const DEFAULT_CONVERGE_WAIT: Duration = Duration::from_secs(6);
/// The converge waits a [`SharedStore`] accepts: zero (off) to 60 s.
pub const CONVERGE_WAIT_LIMITS: std::ops::RangeInclusive<Duration> =
    std::ops::RangeInclusive::new(Duration::ZERO, Duration::from_secs(60));
/// The longest waits a [`SharedStore`] accepts: 100 ms to 10 minutes.
pub const MAX_WAIT_LIMITS: std::ops::RangeInclusive<Duration> =
    std::ops::RangeInclusive::new(Duration::from_millis(100), Duration::from_secs(600));

/// A [`TokenStore`] that several processes share (a fleet of replicas),
/// able to elect the one process that fetches a new token while the
/// others wait and read its result from the store.
///
/// A [`TokenCache`](crate::TokenCache) built with
/// [`shared_store`](crate::TokenCacheBuilder::shared_store) reads the store
/// before every fetch, takes a [`Lease`] before calling the provider, and
/// saves through the lease, so that across the fleet one fetch runs per
/// expiry and a rotated refresh token is seen by every replica. A fetch
/// that fails is shared too ([`share_failure`](Self::share_failure)), for
/// the failure backoff, so the fleet backs off as one process would.
/// `payauth-redis` implements it on Redis.
pub trait SharedStore: TokenStore {
    /// Tries to take the right to fetch for `key`: `Ok(None)` while
    /// another process holds it. A lease whose holder dies expires by
    /// itself, so another process can take over.
    fn try_lease<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Box<dyn Lease>>, Error>>;

    /// How long to wait between looks at the store while another process
    /// holds the lease (read once, when the cache is built, and kept
    /// between 1 ms and 1 s).
    fn poll_interval(&self) -> Duration {
        Duration::from_millis(50)
    }

    /// How long to wait for other processes at most before giving up with
    /// [`ErrorKind::Unavailable`] (a live holder renews its lease while its
    /// fetch runs, so this bounds a stuck fetch, not a dead holder; read
    /// once, when the cache is built, and kept under 10 minutes).
    fn max_wait(&self) -> Duration {
        Duration::from_secs(60)
    }

    /// How long a replica that finds the store forgot its token (it holds
    /// nothing, or an older token: a restart without persistence, a
    /// failover to a copy behind) waits, holding the lease, before it
    /// refreshes, so that every replica holding a newer token has written
    /// it back; every replica holding a refresh token watches the store
    /// every third of this, from a task that ends with the last cache
    /// watching. Read once,
    /// when the cache is built, kept under a minute and, when used, under a
    /// quarter of the cache's fetch timeout. Zero turns the wait and the
    /// looks off (for a store that never loses a write). The default is
    /// [`DEFAULT_CONVERGE_WAIT`]. The looks cost one read per store
    /// instance every third of the wait when the store has a
    /// [forget mark](SharedStore::forget_mark) (each cache reads its own
    /// key only after the mark changed); without one, one read per cache
    /// that often: a process holding caches for many customers on one such
    /// store reads each customer's key that often (raise the wait, or turn
    /// it off for a durable store, if that is too many).
    fn converge_wait(&self) -> Duration {
        DEFAULT_CONVERGE_WAIT
    }

    /// A cheap mark of the store's memory: a value the store keeps while
    /// it keeps its writes, and that changes (or is written anew) once it
    /// may have forgotten some (a restart without persistence, a flush, a
    /// failover to another server). `None` (the default): the store has no
    /// such mark, and every cache on it looks at its own key every third of
    /// the [converge wait](SharedStore::converge_wait).
    ///
    /// With a mark, one task per store instance (the same `Arc`) reads it
    /// every third of the converge wait, and only when it changed does
    /// every cache on the store look at its own key, once. A mark that
    /// misses a loss (a single key deleted by hand, one node of several
    /// restarting while the mark lives on another) is found by the next
    /// fetch of a cache concerned, whose lease holder then changes the
    /// mark ([`mark_forgotten`](SharedStore::mark_forgotten)) before it
    /// waits; return `None` for a store whose mark would outlive the loss of
    /// most of its writes (one node of several).
    fn forget_mark(&self) -> Option<BoxFuture<'_, Result<String, Error>>> {
        None
    }

    /// Changes the [forget mark](SharedStore::forget_mark) (drops it, to be
    /// written anew): a lease holder that found the store forgot its token
    /// calls it before its converge wait, so that every replica looks at
    /// its own key even when the loss left the mark alone (a key deleted
    /// by hand). The default does nothing.
    fn mark_forgotten(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }

    /// Records that the fetch for `key` failed with `failure`, for `ttl`
    /// (the holder's failure backoff), so the other replicas answer with
    /// it meanwhile. The default shares nothing.
    fn share_failure<'a>(
        &'a self,
        key: &'a str,
        failure: &'a StoredFailure,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let _ = (key, failure, ttl);
        Box::pin(async { Ok(()) })
    }

    /// The failure shared for `key` whose time has not run out, if any. The
    /// default has none.
    fn shared_failure<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredFailure>, Error>> {
        let _ = key;
        Box::pin(async { Ok(None) })
    }
}

/// The right to fetch a token for one key, held by one process of a fleet;
/// see [`SharedStore`].
pub trait Lease: Send + Sync {
    /// Saves `token` under the leased key, but only if this lease is still
    /// held (fencing) and no one stored a token since it was taken
    /// (compare-and-set on the stored version).
    ///
    /// # Errors
    /// [`ErrorKind::Store`] when the lease was lost, the store moved on, or
    /// the store could not be reached: the token is then not written (or
    /// not known to be), and the cache keeps it in memory and saves it
    /// again later with [`TokenStore::save_if`], so a stale replica never
    /// overwrites a newer token and a rotated refresh token is never lost
    /// to a blip.
    fn save<'a>(&'a self, token: &'a StoredToken) -> BoxFuture<'a, Result<(), Error>>;

    /// Gives the lease back (a no-op if it already expired or passed to
    /// another holder).
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>>;

    /// Whether the lease is still known to be held: `false` once its TTL
    /// has run out since the store last confirmed it (taken, or renewed by
    /// its heartbeat), e.g. while the store is slow or unreachable. The
    /// cache asks right before it sends a request under the lease, so a
    /// holder whose store calls outlasted the lease never refreshes beside
    /// the replica that took it over. The default, `true`, suits a store
    /// whose leases cannot expire under a live holder.
    fn held(&self) -> bool {
        true
    }
}

/// The largest stored token, in bytes of its JSON form (64 KiB: a token,
/// a refresh token and a scope of a few KiB each fit many times over).
/// Stores refuse to write a larger one and to read one back (a typed
/// [`ErrorKind::Store`]), so a planted or corrupted value cannot exhaust
/// memory.
pub const MAX_STORED_TOKEN_BYTES: usize = 64 * 1024;

/// Milliseconds since the epoch of a wall-clock time (0 before it).
#[must_use]
pub(crate) fn unix_ms(time: SystemTime) -> u64 {
    u64::try_from(
        time.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// Whole milliseconds of `duration`, saturating.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Unfenced;

    impl Lease for Unfenced {
        fn save<'a>(&'a self, _: &'a StoredToken) -> BoxFuture<'a, Result<(), Error>> {
            Box::pin(async { Ok(()) })
        }

        fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>> {
            Box::pin(async { Ok(()) })
        }
    }

    #[test]
    fn a_lease_that_cannot_expire_under_its_holder_counts_as_held() {
        assert!(Unfenced.held());
    }
    use crate::clock::ManualClock;
    use crate::token::Issued;

    const SENTINEL: &str = "SENTINEL-store-77";

    fn token(clock: &ManualClock, value: &str, refresh: Option<&str>) -> AccessToken {
        AccessToken::new(
            Secret::new(value),
            "Bearer",
            Issued::now(clock),
            Duration::from_secs(3600),
        )
        .unwrap()
        .with_refresh_token(refresh.map(Secret::new))
    }

    #[tokio::test]
    async fn a_stored_token_comes_back_with_its_remaining_life() {
        let clock = ManualClock::new();
        let stored = StoredToken::from_token(&token(&clock, "a", Some("r")));
        clock.advance(Duration::from_secs(600));
        let back = stored.to_token(&clock).unwrap();
        let remaining = back.expires_at() - clock.now();
        assert!(
            remaining <= Duration::from_secs(3000) && remaining > Duration::from_secs(2999),
            "{remaining:?}"
        );
        assert_eq!(back.refresh_token(), Some(&Secret::new("r")));
        assert_eq!(
            unix_ms(back.expires_at_system()) / 1000,
            stored.expires_at_unix_ms / 1000
        );
    }

    #[tokio::test]
    async fn clear_only_removes_the_token_whose_refresh_token_was_refused() {
        let clock = ManualClock::new();
        for store in [
            Box::new(MemoryStore::new()) as Box<dyn TokenStore>,
            Box::new(FileStore::new(
                tempfile::tempdir().unwrap().keep().join("tokens"),
            )),
        ] {
            let newer = StoredToken::from_token(&token(&clock, "new", Some("r2")));
            store.save("k", &newer).await.unwrap();
            store.clear("k", Some(&Secret::new("r1"))).await.unwrap();
            assert_eq!(
                store.load("k").await.unwrap(),
                Some(newer.clone()),
                "a stale refusal keeps the newer token"
            );
            store.clear("k", Some(&Secret::new("r2"))).await.unwrap();
            assert_eq!(store.load("k").await.unwrap(), None);
        }
    }

    #[test]
    fn debug_of_stored_tokens_and_stores_shows_no_secret() {
        let clock = ManualClock::new();
        let stored = StoredToken::from_token(&token(&clock, SENTINEL, Some(SENTINEL)));
        let memory = MemoryStore::new();
        let shown = format!("{stored:?} {memory:?} {:?}", FileStore::new("/tmp"));
        assert!(!shown.contains(SENTINEL), "{shown}");
        assert!(
            shown.contains(&format!("issued_at_unix_ms: {}", stored.issued_at_unix_ms))
                && shown.contains("has_refresh_token: true"),
            "what is not secret is shown: {shown}"
        );
    }

    #[test]
    fn a_stored_token_is_never_served_past_its_own_lifetime() {
        let clock = ManualClock::new();
        let mut stored = StoredToken::from_token(&token(&clock, "a", Some("r")));
        // A skewed or tampered writer claims it lives for years.
        stored.expires_at_unix_ms = stored.issued_at_unix_ms + 10 * 365 * 86_400_000;
        let back = stored.to_token(&clock).unwrap();
        assert_eq!(back.expires_at() - clock.now(), Duration::from_secs(3600));
        clock.advance(Duration::from_secs(3601));
        let back = stored.to_token(&clock).unwrap();
        assert!(!back.is_valid_at(clock.now()), "expired with its lifetime");
        assert_eq!(back.refresh_token(), Some(&Secret::new("r")));
        // An issue time in the future (a fast clock) never stretches it
        // past its lifetime from now either.
        stored.issued_at_unix_ms += 86_400_000;
        let back = stored.to_token(&clock).unwrap();
        assert!(back.expires_at() - clock.now() <= Duration::from_secs(3600));
    }

    #[test]
    fn a_record_without_an_issue_time_loads_expired_with_its_refresh_token_whatever_expiry_it_claims()
     {
        let clock = ManualClock::new();
        let now_ms = unix_ms(clock.system_now());
        for (issued, expires, lifetime) in [
            (None, now_ms + 1000, 2000),
            (Some(0), now_ms + 10 * 365 * 86_400_000, 3_600_000),
            (None, u64::MAX, u64::MAX),
        ] {
            let issued = issued.map(|ms| format!(r#""issued_at_unix_ms":{ms},"#));
            let json = format!(
                r#"{{"access_token":"a","token_type":"Bearer",{}"expires_at_unix_ms":{expires},"lifetime_ms":{lifetime},"refresh_token":"r"}}"#,
                issued.unwrap_or_default()
            );
            let stored: StoredToken = serde_json::from_str(&json).unwrap();
            assert_eq!(stored.issued_ms(), 0, "older than any record with one");
            for _ in 0..3 {
                let back = stored.to_token(&clock).unwrap();
                assert!(!back.is_valid_at(clock.now()), "{json}: never vouched for");
                assert_eq!(back.refresh_token(), Some(&Secret::new("r")));
            }
        }
        let json = format!(
            r#"{{"access_token":"a","token_type":"Bearer","issued_at_unix_ms":{now_ms},"expires_at_unix_ms":{},"lifetime_ms":2000,"refresh_token":"r"}}"#,
            now_ms + 1000
        );
        let stored: StoredToken = serde_json::from_str(&json).unwrap();
        let back = stored.to_token(&clock).unwrap();
        assert!(
            back.is_valid_at(clock.now()),
            "a short lifetime still loads"
        );
        let absurd = StoredToken {
            expires_at_unix_ms: u64::MAX,
            lifetime_ms: u64::MAX,
            issued_at_unix_ms: u64::MAX,
            ..stored
        };
        let back = absurd.to_token(&clock).unwrap();
        assert!(back.expires_at() - clock.now() <= MAX_LIFETIME);
    }

    #[test]
    fn the_later_issued_token_is_the_newer() {
        let clock = ManualClock::new();
        let older = StoredToken::from_token(&token(&clock, "a", Some("r1")));
        clock.advance(Duration::from_millis(5));
        let newer = StoredToken::from_token(&token(&clock, "b", Some("r2")));
        assert!(newer.is_newer_than(&older));
        assert!(!older.is_newer_than(&newer));
        assert!(!older.is_newer_than(&older));
    }

    #[tokio::test]
    async fn clear_by_access_token_removes_only_the_token_that_holds_it() {
        let clock = ManualClock::new();
        for store in [
            Box::new(MemoryStore::new()) as Box<dyn TokenStore>,
            Box::new(FileStore::new(
                tempfile::tempdir().unwrap().keep().join("tokens"),
            )),
        ] {
            let newer = StoredToken::from_token(&token(&clock, "new", None));
            store.save("k", &newer).await.unwrap();
            store.clear("k", Some(&Secret::new("old"))).await.unwrap();
            assert_eq!(store.load("k").await.unwrap(), Some(newer.clone()));
            store.clear("k", Some(&Secret::new("new"))).await.unwrap();
            assert_eq!(store.load("k").await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn save_if_not_newer_never_replaces_a_newer_token() {
        let clock = ManualClock::new();
        let older = StoredToken::from_token(&token(&clock, "old", Some("r1")));
        clock.advance(Duration::from_millis(5));
        let newer = StoredToken::from_token(&token(&clock, "new", Some("r2")));
        for store in [
            Box::new(MemoryStore::new()) as Box<dyn TokenStore>,
            Box::new(FileStore::new(
                tempfile::tempdir().unwrap().keep().join("tokens"),
            )),
        ] {
            let save = |token| store.save_if("k", token, SaveIf::NotNewer);
            assert!(save(&older).await.unwrap());
            assert!(save(&newer).await.unwrap());
            assert!(!save(&older).await.unwrap());
            assert_eq!(store.load("k").await.unwrap(), Some(newer.clone()));
            assert!(save(&newer).await.unwrap(), "a tie writes");
        }
    }

    #[tokio::test]
    async fn save_if_holds_writes_only_over_what_the_writer_knew() {
        let clock = ManualClock::new();
        let (a, b, c) = (
            StoredToken::from_token(&token(&clock, "a", Some("ra"))),
            StoredToken::from_token(&token(&clock, "b", Some("rb"))),
            StoredToken::from_token(&token(&clock, "c", None)),
        );
        for store in [
            Box::new(MemoryStore::new()) as Box<dyn TokenStore>,
            Box::new(FileStore::new(
                tempfile::tempdir().unwrap().keep().join("tokens"),
            )),
        ] {
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
            assert_eq!(store.load("k").await.unwrap(), Some(b.clone()));
            store.clear("k", None).await.unwrap();
            let or_nothing = SaveIf::Holds {
                access_tokens: &[],
                or_nothing: true,
            };
            assert!(store.save_if("k", &c, or_nothing).await.unwrap());
        }
    }

    #[test]
    fn a_shared_failure_round_trips_and_an_unknown_kind_is_not_taken_up() {
        for kind in SHARED_KINDS {
            let error = Error::new(kind)
                .with_status(400)
                .with_provider_code("x-1")
                .with_description("why");
            let back = StoredFailure::from_error(&error).to_error().unwrap();
            assert_eq!(back.kind(), kind);
            assert_eq!(back.to_string(), error.to_string());
        }
        let unknown: StoredFailure = serde_json::from_str(r#"{"kind":"Martian"}"#).unwrap();
        assert!(unknown.to_error().is_none());
    }
}
