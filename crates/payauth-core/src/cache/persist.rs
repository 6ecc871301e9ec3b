//! The cache's store logic: what is saved when, what is read back, and
//! what is cleared.
//!
//! - A new token is saved before it is published; a failed save is the
//!   fetch's error, and the token is served from memory and saved again by
//!   a later call (at most once per failure backoff) with
//!   [`TokenStore::save_if`]: only over the token it was fetched from,
//!   itself or nothing, so a retried save never replaces a newer token,
//!   whatever the wall clocks say.
//! - The store is read whenever memory holds no usable token nor refresh
//!   token: a login saved after this process started (by `payauth login`
//!   or another process) is picked up without a restart. Reads happen only
//!   in flights, which the failure backoff already spaces out.
//! - A token rejected ([`TokenCache::invalidate`](super::TokenCache::invalidate))
//!   or revoked ([`forget`](super::TokenCache::forget)) is cleared from the
//!   store if the store still holds it: removed outright when it has no
//!   refresh token, else stored expired with its refresh token, which the
//!   next process still needs. After `invalid_grant` the store is cleared
//!   only if it still holds the refused refresh token.
//! - This cache's writes to the store run one at a time, so a clear and a
//!   save of the same cache never interleave.
//! - Every store call is bounded by a quarter of the fetch timeout: a store
//!   that does not answer (a hung mount) counts as failing, so a flight
//!   still fetches, and the fetched token is kept in memory rather than
//!   lost with a save cut short by the fetch timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::entry::{Entry, refresh_at};
use super::fleet::Fleet;
use super::{Inner, Outcome};
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;
use crate::store::{Lease, SaveIf, StoredToken, TokenStore, unix_ms};
use crate::token::{AccessToken, MIN_LIFETIME};

/// How often a holder saves a token again at once after its save failed.
const RESAVES: usize = 3;

/// Where a cache keeps its tokens.
pub(super) struct Persistence {
    store: Arc<dyn TokenStore>,
    key: String,
    fleet: Option<Fleet>,
    /// Held by each write, so this cache's writes never interleave.
    writes: tokio::sync::Mutex<()>,
}

impl Persistence {
    pub(super) fn new(store: Arc<dyn TokenStore>, key: String, fleet: Option<Fleet>) -> Self {
        Self {
            store,
            key,
            fleet,
            writes: tokio::sync::Mutex::new(()),
        }
    }

    pub(super) fn key(&self) -> &str {
        &self.key
    }
}

/// The store bookkeeping in the cache's state.
#[derive(Default)]
pub(super) struct Saves {
    /// No save retry before this instant (a save failed).
    next_at: Option<Instant>,
    /// A save retry is running.
    running: bool,
    /// A rejected token to clear from the store at the start of the next
    /// flight (it was rejected where no runtime could clear it at once).
    pending_clear: Option<Arc<AccessToken>>,
}

impl Inner {
    pub(super) fn fleet(&self) -> Option<(&Fleet, &str)> {
        let persistence = self.persistence.as_ref()?;
        Some((persistence.fleet.as_ref()?, persistence.key.as_str()))
    }

    /// Where a fetch starts: `Ok` with a fresh stored token (published),
    /// else `Err` with the token to refresh from, if any. Memory wins while
    /// it holds a usable token or a refresh token; otherwise the store is
    /// read, and the newer of the two is used.
    pub(super) async fn starting_point(
        &self,
    ) -> Result<Arc<AccessToken>, Option<Arc<AccessToken>>> {
        let last = self.lock().last.clone();
        let now = self.now();
        let usable = last
            .as_ref()
            .is_some_and(|t| t.refresh_token().is_some() || t.is_valid_at(now));
        if usable || self.persistence.is_none() {
            return Err(last);
        }
        match self.load_stored().await {
            Some(stored) if self.is_fresh(&stored) => {
                self.publish(&stored, false);
                Ok(stored)
            }
            stored => Err(newest(last, stored)),
        }
    }

    /// The fleet's step before and under a lease: `Ok` with a fresh stored
    /// token (published), else `Err` with the newest token to refresh
    /// from, the stored one or the one in memory. A read that fails is
    /// tried up to `reads` times, `pause` apart: under the lease, a blip
    /// must not make the holder refresh with the refresh token in its
    /// memory when the store holds a newer one.
    pub(super) async fn adopt_stored(
        &self,
        reads: usize,
        pause: Duration,
    ) -> Result<Arc<AccessToken>, Option<Arc<AccessToken>>> {
        let mut stored = self.read_stored().await;
        for _ in 1..reads {
            if stored.is_ok() {
                break;
            }
            tokio::time::sleep(pause).await;
            stored = self.read_stored().await;
        }
        match self.readable(stored) {
            Some(token) if self.is_fresh(&token) => {
                self.publish(&token, false);
                Ok(token)
            }
            stored => Err(newest(self.lock().last.clone(), stored)),
        }
    }

    /// Whether `token` may be served without a refresh (and was not
    /// rejected by the API it was sent to).
    fn is_fresh(&self, token: &AccessToken) -> bool {
        self.now() < refresh_at(token, &self.settings)
            && !self
                .lock()
                .rejected
                .as_ref()
                .is_some_and(|rejected| rejected.secret() == token.secret())
    }

    /// What the store holds, as a token; an unreadable store or token is
    /// logged and counts as none (the next fetch replaces it).
    async fn load_stored(&self) -> Option<Arc<AccessToken>> {
        let stored = self.read_stored().await;
        self.readable(stored)
    }

    /// One read of the store: `Err` when it could not be read.
    async fn read_stored(&self) -> Result<Option<StoredToken>, Error> {
        let Some(persistence) = self.persistence.as_ref() else {
            return Ok(None);
        };
        self.bounded(persistence.store.load(&persistence.key)).await
    }

    /// A read's token; what cannot be read or used is logged and counts as
    /// none.
    fn readable(&self, read: Result<Option<StoredToken>, Error>) -> Option<Arc<AccessToken>> {
        match read {
            Ok(Some(stored)) => match stored.to_token(self.clock()) {
                Ok(token) => Some(Arc::new(token)),
                Err(error) => {
                    tracing::warn!(source = self.source.name(), %error, "stored token unusable; fetching anew");
                    None
                }
            },
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(source = self.source.name(), %error, "token store unreadable; fetching anew");
                None
            }
        }
    }

    /// Saves a fetched token (through `lease` when one is held), then
    /// publishes it, saved or not.
    pub(super) async fn save_and_publish(
        &self,
        token: Arc<AccessToken>,
        lease: Option<&dyn Lease>,
    ) -> Outcome {
        let saved = self
            .write_token(&StoredToken::from_token(&token), lease)
            .await;
        self.publish(&token, saved.is_err());
        if let Err(error) = saved {
            self.save_failed();
            tracing::warn!(source = self.source.name(), %error, "token fetched but not saved; kept in memory");
            return Err(error);
        }
        tracing::debug!(
            source = self.source.name(),
            lifetime_s = token.lifetime().as_secs(),
            "token fetched"
        );
        Ok(token)
    }

    /// Writes `stored`, through `lease` when one is held.
    async fn write_token(
        &self,
        stored: &StoredToken,
        lease: Option<&dyn Lease>,
    ) -> Result<(), Error> {
        let Some(persistence) = &self.persistence else {
            return Ok(());
        };
        self.bounded(async {
            let _writing = persistence.writes.lock().await;
            match lease {
                Some(lease) => lease.save(stored).await,
                None => persistence.store.save(&persistence.key, stored).await,
            }
        })
        .await
    }

    /// `token`, just fetched, if it has at least [`MIN_LIFETIME`] left to
    /// be served. One that has not (`expires_in: 0`, a slow source) is
    /// refused with [`ErrorKind::Malformed`], but its refresh token is
    /// kept: the provider may have rotated the one it was refreshed with,
    /// so the next fetch starts from it and the store holds it (expired,
    /// never served).
    pub(super) async fn arrived(
        &self,
        token: Arc<AccessToken>,
        lease: Option<&dyn Lease>,
    ) -> Outcome {
        let left = token.expires_at().saturating_duration_since(self.now());
        if left >= MIN_LIFETIME {
            return Ok(token);
        }
        let error = Error::new(ErrorKind::Malformed).with_description(format!(
            "the token arrived with {} ms left, less than the {} s a token must live to be used (expires_in too small?)",
            left.as_millis(),
            MIN_LIFETIME.as_secs()
        ));
        if token.refresh_token().is_some() {
            self.lock().last = Some(Arc::clone(&token));
            if let Err(store_error) = self.write_token(&self.expired(&token), lease).await {
                tracing::warn!(source = self.source.name(), error = %store_error, "refresh token of a refused token not saved");
            }
        }
        Err(error)
    }

    /// `token` as stored once it must no longer be served: expired now,
    /// with its refresh token.
    fn expired(&self, token: &AccessToken) -> StoredToken {
        let mut expired = StoredToken::from_token(token);
        expired.expires_at_unix_ms =
            unix_ms(self.clock().system_now()).min(expired.expires_at_unix_ms);
        expired
    }

    fn save_failed(&self) {
        let now = self.now();
        self.lock().saves.next_at = now.checked_add(self.settings.failure_backoff);
    }

    /// Saves the published `entry` again after a failed save (or a seed),
    /// at most once per failure backoff, in a task of its own, unless the
    /// store holds a newer token by then.
    pub(super) fn save_again(self: &Arc<Self>, entry: &Arc<Entry>, now: Instant) {
        if self.persistence.is_none() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        {
            let mut state = self.lock();
            let saves = &mut state.saves;
            if saves.running || saves.next_at.is_some_and(|at| now < at) {
                return;
            }
            saves.running = true;
        }
        let running = Running(Arc::clone(self));
        let entry = Arc::clone(entry);
        runtime.spawn(async move {
            let inner = &running.0;
            match inner.save_late(&entry.token).await {
                Ok(written) => {
                    entry.mark_saved();
                    tracing::debug!(
                        source = inner.source.name(),
                        written,
                        "unsaved token saved again"
                    );
                }
                Err(error) => {
                    inner.save_failed();
                    tracing::warn!(source = inner.source.name(), %error, "token still not saved");
                }
            }
        });
    }

    /// A late save of `token` (a retry, a seed): over the token it was
    /// fetched from, itself or nothing when its predecessor is known (a
    /// compare-and-set that holds whatever the wall clocks say), else
    /// unless the store holds a newer token. Whether it was written.
    async fn save_late(&self, token: &AccessToken) -> Result<bool, Error> {
        let stored = StoredToken::from_token(token);
        match token.predecessor() {
            Some(predecessor) => {
                let known = [predecessor, token.secret()];
                let condition = SaveIf::Holds {
                    access_tokens: &known,
                    or_nothing: true,
                };
                self.save_if(&stored, condition).await
            }
            None => self.save_if(&stored, SaveIf::NotNewer).await,
        }
    }

    async fn save_if(&self, stored: &StoredToken, condition: SaveIf<'_>) -> Result<bool, Error> {
        let Some(persistence) = &self.persistence else {
            return Ok(true);
        };
        self.bounded(async {
            let _writing = persistence.writes.lock().await;
            persistence
                .store
                .save_if(&persistence.key, stored, condition)
                .await
        })
        .await
    }

    /// Saves `token` again at once, a few times, `pause` apart, after its
    /// save failed (a blip): whether it is now stored, or superseded by a
    /// newer stored token.
    pub(super) async fn resave(&self, token: &Arc<AccessToken>, pause: Duration) -> bool {
        for _ in 0..RESAVES {
            tokio::time::sleep(pause).await;
            if self.save_late(token).await.is_ok() {
                if let Some(entry) = &*self.current.load()
                    && Arc::ptr_eq(&entry.token, token)
                {
                    entry.mark_saved();
                }
                self.lock().saves.next_at = None;
                return true;
            }
        }
        false
    }

    /// A `call` to the store, bounded by [`store_bound`](Self::store_bound):
    /// a store that does not answer counts as failing, so a flight still
    /// fetches, and a fetched token is kept in memory, never lost to a
    /// hung save.
    pub(super) async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        tokio::time::timeout(self.store_bound(), call)
            .await
            .unwrap_or_else(|_| Err(self.no_answer()))
    }

    /// How long one store call may take: a quarter of the fetch timeout.
    pub(super) fn store_bound(&self) -> Duration {
        self.settings.fetch_timeout / 4
    }

    /// The error of a store call that outlived [`store_bound`](Self::store_bound).
    pub(super) fn no_answer(&self) -> Error {
        Error::new(ErrorKind::Store).with_description(format!(
            "the token store did not answer within {} ms",
            self.store_bound().as_millis()
        ))
    }

    /// After `invalid_grant`: clears the store if it still holds `refused`.
    pub(super) async fn clear_refused(&self, refused: &Secret) {
        let Some(persistence) = &self.persistence else {
            return;
        };
        let cleared = self.bounded(async {
            let _writing = persistence.writes.lock().await;
            persistence
                .store
                .clear(&persistence.key, Some(refused))
                .await
        });
        if let Err(error) = cleared.await {
            tracing::warn!(source = self.source.name(), %error, "could not clear a refused token");
        }
    }

    /// Clears a rejected token from the store in a task, or, without a
    /// runtime, at the start of the next flight.
    pub(super) fn clear_soon(self: &Arc<Self>, token: Arc<AccessToken>) {
        if self.persistence.is_none() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.lock().saves.pending_clear = Some(token);
            return;
        };
        let inner = Arc::clone(self);
        runtime.spawn(async move {
            if let Err(error) = inner.clear_stored(&token).await {
                tracing::warn!(source = inner.source.name(), %error, "rejected token not cleared from the store");
            }
        });
    }

    /// The clear a sync [`TokenCache::invalidate`](super::TokenCache::invalidate)
    /// could not start.
    pub(super) async fn clear_pending(&self) {
        let pending = self.lock().saves.pending_clear.take();
        if let Some(token) = pending
            && let Err(error) = self.clear_stored(&token).await
        {
            tracing::warn!(source = self.source.name(), %error, "rejected token not cleared from the store");
        }
    }

    /// Clears `token` from the store if the store still holds it: removed
    /// when it has no refresh token, else stored expired, with its refresh
    /// token.
    pub(super) async fn clear_stored(&self, token: &AccessToken) -> Result<(), Error> {
        let Some(persistence) = &self.persistence else {
            return Ok(());
        };
        if token.refresh_token().is_some() {
            let condition = SaveIf::Holds {
                access_tokens: &[token.secret()],
                or_nothing: false,
            };
            return self
                .save_if(&self.expired(token), condition)
                .await
                .map(drop);
        }
        self.bounded(async {
            let _writing = persistence.writes.lock().await;
            persistence
                .store
                .clear(&persistence.key, Some(token.secret()))
                .await
        })
        .await
    }
}

/// Marks the save retry done however its task ends.
struct Running(Arc<Inner>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.lock().saves.running = false;
    }
}

/// The later issued of two tokens (the stored one on a tie): its refresh
/// token is the one the provider still honours.
pub(super) fn newest(
    memory: Option<Arc<AccessToken>>,
    stored: Option<Arc<AccessToken>>,
) -> Option<Arc<AccessToken>> {
    match (memory, stored) {
        (Some(memory), Some(stored)) => {
            Some(if memory.issued().system() > stored.issued().system() {
                memory
            } else {
                stored
            })
        }
        (memory, stored) => stored.or(memory),
    }
}
