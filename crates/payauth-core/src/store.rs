//! [`TokenStore`]: where tokens and rotated refresh tokens live between
//! fetches and across restarts: [`MemoryStore`], [`FileStore`], or Redis
//! (`payauth-redis`).

mod file;
mod memory;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::Error;
#[cfg(doc)]
use crate::error::ErrorKind;
use crate::secret::{Secret, SerializableSecret};
use crate::source::BoxFuture;
use crate::token::{AccessToken, Issued};

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
            lifetime_ms: u64::try_from(token.lifetime().as_millis()).unwrap_or(u64::MAX),
            scope: token.scope().map(ToOwned::to_owned),
            refresh_token: token.refresh_token().cloned().map(Into::into),
        }
    }

    /// Back to a token, its expiry placed on `clock`'s monotonic time (an
    /// already expired token comes back expired, still carrying its refresh
    /// token).
    ///
    /// # Errors
    /// [`ErrorKind::Malformed`] when the stored token cannot be a header.
    pub fn to_token(&self, clock: &dyn Clock) -> Result<AccessToken, Error> {
        let expires = UNIX_EPOCH + Duration::from_millis(self.expires_at_unix_ms);
        let remaining = expires
            .duration_since(clock.system_now())
            .unwrap_or_default();
        let lifetime = Duration::from_millis(self.lifetime_ms).max(remaining);
        // Place the issue time in the past so that issue + lifetime = now + remaining.
        let issued = Issued::before_now(clock, lifetime.saturating_sub(remaining));
        let token = AccessToken::new(
            self.access_token.as_secret().clone(),
            &self.token_type,
            issued,
            lifetime,
        )?;
        Ok(token
            .with_scope(self.scope.clone())
            .with_refresh_token(self.refresh_token.clone().map(Into::into)))
    }

    /// Whether [`TokenStore::clear`] with `if_refresh_token` removes this
    /// token: always when `None`, else only if it still holds that refresh
    /// token (compared in constant time).
    #[must_use]
    pub fn is_cleared_by(&self, if_refresh_token: Option<&Secret>) -> bool {
        if_refresh_token.is_none_or(|expected| {
            self.refresh_token
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
            .field("scope", &self.scope)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// Where tokens are kept, by key (one key per credential and flow).
///
/// Object-safe, async. `clear` takes the refresh token the caller saw
/// refused, so a late `invalid_grant` cannot wipe a newer token that
/// another process stored meanwhile.
pub trait TokenStore: Send + Sync + 'static {
    /// The token stored under `key`, if any.
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>>;
    /// Replaces what is stored under `key`.
    fn save<'a>(&'a self, key: &'a str, token: &'a StoredToken)
    -> BoxFuture<'a, Result<(), Error>>;
    /// Removes what is stored under `key`, but only if its refresh token is
    /// `if_refresh_token` (or unconditionally when `None`).
    fn clear<'a>(
        &'a self,
        key: &'a str,
        if_refresh_token: Option<&'a Secret>,
    ) -> BoxFuture<'a, Result<(), Error>>;
}

/// A [`TokenStore`] that several processes share (a fleet of replicas),
/// able to elect the one process that fetches a new token while the
/// others wait and read its result from the store.
///
/// A [`TokenCache`](crate::TokenCache) built with
/// [`shared_store`](crate::TokenCacheBuilder::shared_store) reads the store
/// before every fetch, takes a [`Lease`] before calling the provider, and
/// saves through the lease, so that across the fleet one fetch runs per
/// expiry and a rotated refresh token is seen by every replica.
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
    /// holds the lease.
    fn poll_interval(&self) -> Duration {
        Duration::from_millis(50)
    }

    /// How long to wait for other processes at most before giving up with
    /// [`ErrorKind::Unavailable`] (a live holder renews its lease while its
    /// fetch runs, so this bounds a stuck fetch, not a dead holder).
    fn max_wait(&self) -> Duration {
        Duration::from_secs(60)
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
    /// [`ErrorKind::Store`] when the lease was lost or the store moved on:
    /// the token is then not written, so a stale replica never overwrites
    /// a newer token.
    fn save<'a>(&'a self, token: &'a StoredToken) -> BoxFuture<'a, Result<(), Error>>;

    /// Gives the lease back (a no-op if it already expired or passed to
    /// another holder).
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>>;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

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
    }
}
