//! The cache's store logic, reading side: what is read back, which token
//! a fetch starts from, what is cleared. (`save.rs` holds the writes.)
//!
//! - The store is read at the start of every flight: a login saved after
//!   this process started (by `payauth login` or another process) is
//!   picked up without a restart, never refreshed over. Reads happen only
//!   in flights, which the failure backoff already spaces out.
//! - Which token a fetch starts from, memory's or the store's: the cache
//!   remembers which token it last saw in the store. If the store still
//!   holds it, memory is ahead (a token fetched here and not saved yet)
//!   and wins; if the store moved on, another writer stored something
//!   newer since and the store wins. Wall clocks, which jump and differ
//!   between writers, decide only before the cache has looked at all.
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

use super::Inner;
use super::entry::refresh_at;
use super::fleet::Fleet;
use crate::error::{Error, ErrorKind};
use crate::secret::Secret;
use crate::store::{SaveIf, StoredToken, TokenStore};
use crate::token::AccessToken;

/// How long the store may stay unreadable under the lease before the
/// holder refreshes with the token in its memory after all (a record
/// nobody can decode must not lock the fleet out for good).
const BLIND_AFTER: Duration = Duration::from_secs(60);

/// Where a cache keeps its tokens.
pub(super) struct Persistence {
    pub(super) store: Arc<dyn TokenStore>,
    pub(super) key: String,
    pub(super) fleet: Option<Fleet>,
    /// Held by each write, so this cache's writes never interleave.
    pub(super) writes: tokio::sync::Mutex<()>,
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
    pub(super) next_at: Option<Instant>,
    /// A save retry is running.
    pub(super) running: bool,
    /// A rejected token to clear from the store at the start of the next
    /// flight (it was rejected where no runtime could clear it at once).
    pending_clear: Option<Arc<AccessToken>>,
    /// What the store holds, as far as this cache knows (its last read or
    /// write).
    pub(super) known: Known,
    /// Set while the token in memory (`last`) was fetched or seeded here
    /// and is not in the store yet: what the store held when that began.
    pub(super) ahead_of: Option<Known>,
    /// The one record of what this cache must still get into the store:
    /// the newest token fetched or seeded here that no store holds yet,
    /// wherever its access token went since (published, rejected by an
    /// API, too short-lived to serve): its refresh token, which the
    /// provider may have rotated, exists nowhere else. Stored expired once
    /// its access token must no longer be served. What
    /// [`flush`](super::TokenCache::flush) saves.
    pub(super) pending: Option<StoredToken>,
    /// Since when every read of the store failed.
    unreadable_since: Option<Instant>,
    /// Fleet only: the token this cache held, and knew the store held,
    /// that a read found forgotten (the store held nothing, or a token it
    /// held before: it restarted empty, or failed over to a copy without
    /// the last writes), and what the read found; to write back
    /// ([`fleet`](super::fleet)).
    pub(super) forgotten: Option<(Arc<AccessToken>, Known)>,
    /// The access tokens the store held before what it holds now, as far
    /// as this cache saw, the latest last ([`HISTORY`] of them): a store
    /// found holding one of them again went back, it did not move on.
    history: Vec<Secret>,
    /// Fleet only: this flight found the store had forgotten; its holder
    /// waits for the replicas to write their tokens back before it
    /// refreshes.
    pub(super) recovering: bool,
}

/// What a store holds, as far as a cache knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) enum Known {
    /// It has not looked (or a conditional clear left it unsure).
    #[default]
    Unknown,
    /// Nothing.
    Nothing,
    /// The token with this access token.
    Token(Secret),
    /// A token another writer stored, which a write of this cache was
    /// refused over: this cache writes only over its own token or nothing
    /// until it reads the store again.
    Other,
}

/// How many of the store's earlier tokens a cache remembers.
const HISTORY: usize = 8;

impl Saves {
    /// Records what the store now holds, remembering what it held before
    /// when `remember` (a fleet cache: no other cache pays for it).
    pub(super) fn set_known(&mut self, known: Known, remember: bool) {
        if remember
            && let Known::Token(before) = &self.known
            && self.known != known
        {
            if self.history.len() == HISTORY {
                self.history.remove(0);
            }
            self.history.push(before.clone());
        }
        self.known = known;
    }

    /// Whether the store held `access_token` before what it holds now.
    pub(super) fn held_before(&self, access_token: &Secret) -> bool {
        self.history.iter().any(|before| before == access_token)
    }
}

impl Known {
    pub(super) fn of(stored: Option<&StoredToken>) -> Self {
        stored.map_or(Self::Nothing, |s| {
            Self::Token(s.access_token.as_secret().clone())
        })
    }
}

/// Where a flight starts, when the store holds nothing fresh: the token to
/// refresh from, and whether the store could not be read.
pub(super) struct Start {
    pub(super) previous: Option<Arc<AccessToken>>,
    /// The read error, while the store has been unreadable for less than
    /// [`BLIND_AFTER`].
    pub(super) unread: Option<Error>,
}

impl Inner {
    pub(super) fn fleet(&self) -> Option<(&Fleet, &str)> {
        let persistence = self.persistence.as_ref()?;
        Some((persistence.fleet.as_ref()?, persistence.key.as_str()))
    }

    /// Where a fetch starts: `Ok` with a fresh stored token (published),
    /// else `Err` with the token to refresh from, if any. The store is read
    /// first (a login another process stored since is taken up, never
    /// refreshed over); memory's token wins only while it is ahead of the
    /// store ([`newest`]) or the store cannot be read.
    pub(super) async fn starting_point(
        &self,
    ) -> Result<Arc<AccessToken>, Option<Arc<AccessToken>>> {
        if self.persistence.is_none() {
            return Err(self.lock().last.clone());
        }
        self.adopt_stored(1, Duration::ZERO)
            .await
            .map_err(|start| start.previous)
    }

    /// The fleet's step before and under a lease: `Ok` with a fresh stored
    /// token (published), else where to start from. A read that fails is
    /// tried up to `reads` times, `pause` apart: under the lease, a blip
    /// must not make the holder refresh with the refresh token in its
    /// memory when the store holds a newer one.
    pub(super) async fn adopt_stored(
        &self,
        reads: usize,
        pause: Duration,
    ) -> Result<Arc<AccessToken>, Start> {
        let mut read = self.read_stored().await;
        for _ in 1..reads {
            if read.is_ok() {
                break;
            }
            tokio::time::sleep(pause).await;
            read = self.read_stored().await;
        }
        let unread = read
            .as_ref()
            .err()
            .filter(|_| self.unreadable_briefly())
            .cloned();
        let stored = self.readable(read);
        let (last, ahead_of) = {
            let state = self.lock();
            (state.last.clone(), state.saves.ahead_of.clone())
        };
        // The store forgot this cache's token: memory's is the newest this
        // cache knows of (the store's, older, is never taken up over it).
        let forgot = self.lock().saves.forgotten.is_some();
        let previous = if forgot {
            last
        } else {
            newest(last, stored.clone(), ahead_of.as_ref())
        };
        // A fresh stored token is taken up only when it is the newest:
        // never over a newer one in memory (fetched here, not saved yet),
        // whose refresh token would be lost with it.
        if let Some(token) = &stored
            && previous.as_ref().is_some_and(|p| Arc::ptr_eq(p, token))
            && self.is_fresh(token)
        {
            self.publish(token, false);
            return Ok(Arc::clone(token));
        }
        Err(Start { previous, unread })
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

    /// One read of the store: `Err` when it could not be read.
    async fn read_stored(&self) -> Result<Option<StoredToken>, Error> {
        let Some(persistence) = self.persistence.as_ref() else {
            return Ok(None);
        };
        let read = self.bounded(persistence.store.load(&persistence.key)).await;
        let now = self.now();
        let mut state = self.lock();
        match &read {
            Ok(stored) => {
                state.saves.unreadable_since = None;
                let fleet = self.fleet().is_some();
                if fleet {
                    if let Some(last) = own_stored(&state)
                        && forgets(&state.saves, stored.as_ref(), &last)
                    {
                        state.saves.forgotten = Some((last, Known::of(stored.as_ref())));
                        state.saves.recovering = true;
                    }
                    // The store went back to a token it held before the
                    // one this cache last saw there (another replica wrote
                    // an older one back after the store forgot): never
                    // taken up or refreshed from, and not what the store
                    // "holds now" for this cache's writes or history.
                    if stored
                        .as_ref()
                        .is_some_and(|s| state.saves.held_before(s.access_token.as_secret()))
                    {
                        state.saves.recovering = true;
                        return Ok(None);
                    }
                }
                state.saves.set_known(Known::of(stored.as_ref()), fleet);
            }
            Err(_) => {
                state.saves.unreadable_since.get_or_insert(now);
            }
        }
        read
    }

    /// Whether the store has been unreadable for less than [`BLIND_AFTER`].
    fn unreadable_briefly(&self) -> bool {
        let now = self.now();
        self.lock()
            .saves
            .unreadable_since
            .is_none_or(|since| now.saturating_duration_since(since) < BLIND_AFTER)
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
                tracing::warn!(source = self.source.name(), %error, "token store unreadable");
                None
            }
        }
    }

    /// Records what the store now holds, after a write of this cache.
    pub(super) fn now_stored(&self, known: Known) {
        let fleet = self.fleet().is_some();
        self.lock().saves.set_known(known, fleet);
    }

    /// A `call` to the store, bounded by [`store_bound`](Self::store_bound):
    /// a store that does not answer counts as failing.
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
        match cleared.await {
            Ok(()) => self.now_stored(Known::Unknown),
            Err(error) => {
                tracing::warn!(source = self.source.name(), %error, "could not clear a refused token");
            }
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
        let cleared = self.bounded(async {
            let _writing = persistence.writes.lock().await;
            persistence
                .store
                .clear(&persistence.key, Some(token.secret()))
                .await
        });
        cleared.await?;
        // Removed, or the store held another token: no longer known.
        self.now_stored(Known::Unknown);
        Ok(())
    }
}

/// The token in memory when it carries a refresh token and this cache knows
/// the store holds it (it saved it, or took it from the store, and has
/// nothing newer unsaved): the one the store must not forget.
pub(super) fn own_stored(state: &super::State) -> Option<Arc<AccessToken>> {
    let last = state.last.as_ref()?;
    let stored_here = matches!(&state.saves.known, Known::Token(known) if known == last.secret());
    (last.refresh_token().is_some() && stored_here && state.saves.pending.is_none())
        .then(|| Arc::clone(last))
}

/// Whether a store holding `stored` forgot `own`, a token it was known to
/// hold: it holds nothing, or a token this cache saw it hold before `own`
/// (an older one another replica wrote back after the store lost its
/// state). Issue times are not compared: a new login from a machine whose
/// clock is behind is a store moving on, never a store going back.
pub(super) fn forgets(saves: &Saves, stored: Option<&StoredToken>, own: &AccessToken) -> bool {
    stored.is_none_or(|stored| {
        let held = stored.access_token.as_secret();
        held != own.secret() && saves.held_before(held)
    })
}

/// The token a fetch starts from, of the one in memory and the stored one:
/// memory's while it is ahead of the store (fetched or seeded here, not
/// saved yet) and the store still holds what it held when that began;
/// else the store's, which another writer stored since. Only a memory
/// token whose start the cache never saw (a seed) is weighed by issue time.
fn newest(
    memory: Option<Arc<AccessToken>>,
    stored: Option<Arc<AccessToken>>,
    ahead_of: Option<&Known>,
) -> Option<Arc<AccessToken>> {
    let (Some(memory), Some(stored)) = (memory.as_ref(), stored.as_ref()) else {
        return stored.or(memory);
    };
    let memory_ahead = match ahead_of {
        // A chain begun over nothing, or refused over another writer's
        // token: the store's token is the newer.
        None | Some(Known::Nothing | Known::Other) => false,
        Some(Known::Token(base)) => stored.secret() == base,
        Some(Known::Unknown) => memory.issued().system() > stored.issued().system(),
    };
    Some(Arc::clone(if memory_ahead { memory } else { stored }))
}
