//! The cache's store logic, writing side: what becomes of a fetched token.
//!
//! - A token fit to serve (at least [`MIN_LIFETIME`] left) is saved
//!   before it is published. A failed save is the fetch's error; the token
//!   is served from memory and saved again by a later call, at most once
//!   per failure backoff (a fleet holder also tries again at once, under
//!   its lease).
//! - A token too short-lived to serve is refused (`Malformed`), but its
//!   refresh token is kept: the provider may have rotated the one it was
//!   refreshed with, so the next fetch starts from it and the store holds
//!   it (expired, never served).
//! - Every write is a compare-and-set
//!   ([`TokenStore::save_if`](crate::TokenStore::save_if), or a fleet
//!   lease's fenced save): it goes only over what the cache last saw in
//!   the store, itself or nothing, so it never replaces a token another
//!   writer stored since, whatever the wall clocks say. A write refused so
//!   leaves the other writer's token standing, and the next flight starts
//!   from it.
//! - Every token fetched or seeded here that no store holds yet is
//!   tracked in one place (`Saves::pending`), wherever its access token
//!   goes (published, rejected by an API, too short-lived): the background
//!   retry and [`flush`](super::TokenCache::flush) save it, so its refresh
//!   token is never lost where `flush` said `Ok`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::persist::Known;
use super::{Inner, Outcome};
use crate::error::{Error, ErrorKind};
use crate::store::{Lease, SaveIf, StoredToken, unix_ms};
use crate::token::{AccessToken, MIN_LIFETIME};

/// What became of a fetched token.
pub(super) struct Landed {
    pub(super) outcome: Outcome,
    /// Whether the fleet may move on: the token is in the store, or it
    /// carries no refresh token to lose.
    pub(super) settled: bool,
    /// The outcome is a refusal of the token itself, to share with the
    /// fleet.
    pub(super) refused: bool,
}

impl Inner {
    /// Saves (through `lease` when one is held, trying `resaves` more
    /// times at once, `pause` apart) and publishes a fetched token; see the
    /// [module docs](self).
    pub(super) async fn store_fetched(
        &self,
        token: Arc<AccessToken>,
        lease: Option<&dyn Lease>,
        resaves: usize,
        pause: Duration,
    ) -> Landed {
        let fit = self.fit_to_serve(&token);
        if fit.is_err() && token.refresh_token().is_none() {
            return Landed {
                outcome: fit.map(|()| token),
                settled: true,
                refused: true,
            };
        }
        let stored = match &fit {
            Ok(()) => StoredToken::from_token(&token),
            Err(_) => self.expired(&token),
        };
        let mut saved = self.write_token(&stored, lease).await;
        if saved.is_err() {
            // Behind from here on: a re-save only goes over what the store
            // held when this began, never over what another writer stored
            // meanwhile (after the store lost its state, say).
            self.fell_behind();
            if self.resave(&stored, resaves, pause).await {
                saved = Ok(true);
            }
        }
        if saved.is_err() {
            self.lock().saves.pending = Some(stored.clone());
        }
        let settled = saved.is_ok() || token.refresh_token().is_none();
        match fit {
            Ok(()) => {
                self.publish(&token, saved.is_err());
                // A failed save never costs callers a valid token: it is
                // served from memory and saved again later (or by
                // `TokenCache::flush` before a process exits).
                if let Err(error) = &saved {
                    self.save_failed();
                    tracing::warn!(source = self.source.name(), %error, "token fetched but not saved; kept in memory");
                }
                let outcome = Ok(token);
                Landed {
                    outcome,
                    settled,
                    refused: false,
                }
            }
            Err(error) => {
                self.lock().last = Some(token);
                if let Err(store_error) = saved {
                    self.save_failed();
                    tracing::warn!(source = self.source.name(), error = %store_error, "refresh token of a refused token not saved");
                }
                Landed {
                    outcome: Err(error),
                    settled,
                    refused: true,
                }
            }
        }
    }

    /// Whether `token`, just fetched, has at least [`MIN_LIFETIME`] left
    /// to be served (`expires_in: 0`, or a slow source, leave it less).
    pub(super) fn fit_to_serve(&self, token: &AccessToken) -> Result<(), Error> {
        let left = token.expires_at().saturating_duration_since(self.now());
        if left >= MIN_LIFETIME {
            return Ok(());
        }
        Err(Error::new(ErrorKind::Malformed).with_description(format!(
            "the token arrived with {} ms left, less than the {} s a token must live to be used (expires_in too small?)",
            left.as_millis(),
            MIN_LIFETIME.as_secs()
        )))
    }

    /// Writes `stored`, through `lease` when one is held, else only over
    /// what the cache last saw in the store: whether it was written
    /// (`false`: another writer stored a token since, which stands).
    async fn write_token(
        &self,
        stored: &StoredToken,
        lease: Option<&dyn Lease>,
    ) -> Result<bool, Error> {
        let Some(persistence) = &self.persistence else {
            return Ok(true);
        };
        let Some(lease) = lease else {
            return self.save_over(stored, None).await;
        };
        let written = self.bounded(async {
            let _writing = persistence.writes.lock().await;
            lease.save(stored).await
        });
        written.await?;
        self.stored_own(stored);
        Ok(true)
    }

    /// The token in memory is not in the store: it is ahead of what the
    /// store held when its chain of unsaved tokens began.
    fn fell_behind(&self) {
        let mut state = self.lock();
        if state.saves.ahead_of.is_none() {
            state.saves.ahead_of = Some(state.saves.known.clone());
        }
    }

    /// `stored` is what the store holds now (this cache wrote it): memory
    /// is no longer ahead of it, if it was that token.
    fn stored_own(&self, stored: &StoredToken) {
        let own = stored.access_token.as_secret();
        let fleet = self.fleet().is_some();
        let mut state = self.lock();
        state.saves.set_known(Known::Token(own.clone()), fleet);
        if covers_last(state.last.as_deref(), stored) {
            state.saves.ahead_of = None;
        }
        settle_pending(&mut state.saves.pending, stored);
    }

    /// `stored` was not written: the store holds a token another writer
    /// stored since, which stands (this cache's chain up to `stored` is
    /// superseded, and the next fetch starts from the store's token).
    fn superseded(&self, stored: &StoredToken) {
        let fleet = self.fleet().is_some();
        let mut state = self.lock();
        if covers_last(state.last.as_deref(), stored) {
            state.saves.ahead_of = None;
        }
        state.saves.set_known(Known::Other, fleet);
        settle_pending(&mut state.saves.pending, stored);
    }

    /// A token handed over at build time: ahead of whatever the store
    /// holds, and not in it yet.
    pub(super) fn seeded(&self, token: &AccessToken) {
        let mut state = self.lock();
        state.saves.ahead_of = Some(Known::Unknown);
        state.saves.pending = Some(StoredToken::from_token(token));
    }

    /// `token` must no longer be served (an API rejected it, or it was
    /// revoked): if it is the unsaved one, what must still reach the store
    /// is its refresh token, stored expired; without one, nothing.
    pub(super) fn unserved(&self, token: &AccessToken) {
        let expired = token.refresh_token().map(|_| self.expired(token));
        let mut state = self.lock();
        let pending = &mut state.saves.pending;
        if pending
            .as_ref()
            .is_some_and(|p| p.access_token.as_secret() == token.secret())
        {
            *pending = expired;
        }
    }

    /// After `invalid_grant` for `refused`: an unsaved token carrying that
    /// refresh token is dead, nothing to save.
    pub(super) fn refused_pending(&self, refused: &crate::secret::Secret) {
        let mut state = self.lock();
        let pending = &mut state.saves.pending;
        if pending.as_ref().is_some_and(|p| {
            p.refresh_token
                .as_ref()
                .is_some_and(|r| r.as_secret() == refused)
        }) {
            *pending = None;
        }
    }

    /// `token` as stored once it must no longer be served: expired now,
    /// with its refresh token.
    pub(super) fn expired(&self, token: &AccessToken) -> StoredToken {
        let mut expired = StoredToken::from_token(token);
        expired.expires_at_unix_ms =
            unix_ms(self.clock().system_now()).min(expired.expires_at_unix_ms);
        expired
    }

    fn save_failed(&self) {
        let now = self.now();
        self.lock().saves.next_at = now.checked_add(self.settings.failure_backoff);
    }

    /// Saves `stored` again at once, up to `times`, `pause` apart, after
    /// its save failed (a blip): whether it is now stored, or superseded
    /// by a token another writer stored.
    async fn resave(&self, stored: &StoredToken, times: usize, pause: Duration) -> bool {
        for _ in 0..times {
            tokio::time::sleep(pause).await;
            if self.save_late(stored).await.is_ok() {
                self.lock().saves.next_at = None;
                return true;
            }
        }
        false
    }

    /// Saves the unsaved token again after a failed save (or a seed), at
    /// most once per failure backoff, in a task of its own (the published
    /// `token` is unsaved).
    pub(super) fn save_again(self: &Arc<Self>, token: &AccessToken, now: Instant) {
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
        let saved = token.secret().clone();
        runtime.spawn(async move {
            let inner = &running.0;
            match inner.save_pending().await {
                Ok(written) => {
                    inner.mark_saved(&saved);
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

    /// Saves the unsaved token, if any, late ([`save_late`](Self::save_late)):
    /// once written (or superseded), nothing is unsaved and no save waits
    /// out a backoff. Whether it was written.
    pub(super) async fn save_pending(&self) -> Result<bool, Error> {
        let Some(pending) = self.lock().saves.pending.clone() else {
            return Ok(false);
        };
        let written = self.save_late(&pending).await?;
        self.mark_saved(pending.access_token.as_secret());
        self.lock().saves.next_at = None;
        Ok(written)
    }

    /// A late write of `stored` (a retry, a seed): only over what the store
    /// held when the unsaved chain began, itself or nothing; when that is
    /// unknown (a seed), unless the store holds a token issued later.
    /// Whether it was written (`false`: another writer's token stands).
    async fn save_late(&self, stored: &StoredToken) -> Result<bool, Error> {
        let base = self.lock().saves.ahead_of.clone().unwrap_or_default();
        self.save_over(stored, Some(base)).await
    }

    /// Writes `stored` only over `base` (what this writer last saw in the
    /// store; `None`: read once this write holds the write lock, so that a
    /// write of this cache that landed while it waited, such as a retry
    /// of an older unsaved token, counts as seen rather than as another
    /// writer's), itself, or nothing; when `base` is unknown, unless the
    /// store holds a token issued later. Whether it was written (`false`:
    /// another writer's token stands, and this cache's is superseded).
    async fn save_over(&self, stored: &StoredToken, base: Option<Known>) -> Result<bool, Error> {
        let Some(persistence) = &self.persistence else {
            return Ok(true);
        };
        let own = stored.access_token.as_secret();
        let written = self
            .bounded(async {
                let _writing = persistence.writes.lock().await;
                let base = base.unwrap_or_else(|| self.lock().saves.known.clone());
                let key = &persistence.key;
                match &base {
                    Known::Token(base) => {
                        let known = [base, own];
                        let condition = SaveIf::Holds {
                            access_tokens: &known,
                            or_nothing: true,
                        };
                        persistence.store.save_if(key, stored, condition).await
                    }
                    Known::Nothing | Known::Other => {
                        let condition = SaveIf::Holds {
                            access_tokens: &[own],
                            or_nothing: true,
                        };
                        persistence.store.save_if(key, stored, condition).await
                    }
                    Known::Unknown => {
                        persistence
                            .store
                            .save_if(key, stored, SaveIf::NotNewer)
                            .await
                    }
                }
            })
            .await?;
        if written {
            self.stored_own(stored);
        } else {
            self.superseded(stored);
        }
        Ok(written)
    }

    /// [`TokenStore::save_if`](crate::TokenStore::save_if), bounded, one
    /// write at a time.
    pub(super) async fn save_if(
        &self,
        stored: &StoredToken,
        condition: SaveIf<'_>,
    ) -> Result<bool, Error> {
        let Some(persistence) = &self.persistence else {
            return Ok(true);
        };
        let written = self.bounded(async {
            let _writing = persistence.writes.lock().await;
            persistence
                .store
                .save_if(&persistence.key, stored, condition)
                .await
        });
        let written = written.await?;
        if written {
            self.stored_own(stored);
        }
        Ok(written)
    }
}

/// Whether `done` (written, or superseded) is the token in memory or a
/// later one (a fetched token is saved before it becomes `last`): memory
/// is then no longer ahead of the store.
fn covers_last(last: Option<&AccessToken>, done: &StoredToken) -> bool {
    last.is_none_or(|last| {
        last.secret() == done.access_token.as_secret()
            || unix_ms(last.issued().system()) <= done.issued_at_unix_ms
    })
}

/// Clears `pending` once `done` (written, or superseded by the store's)
/// covers it: the same token, or a later one of this cache's chain.
fn settle_pending(pending: &mut Option<StoredToken>, done: &StoredToken) {
    if pending.as_ref().is_some_and(|p| {
        p.access_token.as_secret() == done.access_token.as_secret() || !p.is_newer_than(done)
    }) {
        *pending = None;
    }
}

/// Marks the save retry done however its task ends.
struct Running(Arc<Inner>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.lock().saves.running = false;
    }
}
