//! The fleet store model: the protocol of `payauth-redis` (a versioned token
//! hash, a lease with an owner and a TTL renewed by a heartbeat on the
//! holder's runtime, fenced compare-and-set saves, compare-on-clear, Redis
//! expiry of tokens without a refresh token) on in-process state, with a
//! fault on any call: transport errors, slow and timed-out calls, replies
//! lost after the write, acknowledged writes lost (counted apart), and a
//! replica cut off from the store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use payauth_core::{
    BoxFuture, Error, ErrorKind, Lease, SaveIf, Secret, SharedStore, StoredToken, TokenStore,
};

use crate::ctx::{Ctx, lock};
use crate::provider::number;

/// The store client's response timeout (`payauth-redis`'s 2 s).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
struct Entry {
    version: u64,
    token: StoredToken,
    /// Redis `PEXPIREAT`, wall milliseconds; 0: kept.
    expire_at_ms: u64,
}

#[derive(Debug, Clone, Copy)]
struct LeaseEntry {
    owner: u64,
    expires: Duration,
}

#[derive(Debug, Default)]
struct State {
    entry: Option<Entry>,
    lease: Option<LeaseEntry>,
    next_owner: u64,
    /// The forget mark, if written since the store last forgot, and the
    /// last one written (kept across a restart, as random ones would not
    /// repeat).
    mark: Option<u64>,
    last_mark: u64,
    /// Writes since the checker last looked: the refresh token replaced
    /// (if any), the one written, and whether a cache wrote it (the
    /// operator's own writes are logins; the invariant is that no cache
    /// writes an older lineage over one).
    replaced: Vec<(Option<u64>, u64, bool)>,
}

fn refresh_number(token: &StoredToken) -> Option<u64> {
    token
        .refresh_token
        .as_ref()
        .and_then(|s| number(s.as_secret(), "rt-"))
}

impl State {
    /// The entry, once Redis would have expired it, gone.
    fn entry(&mut self, wall_ms: u64) -> Option<&mut Entry> {
        if self
            .entry
            .as_ref()
            .is_some_and(|e| e.expire_at_ms != 0 && wall_ms >= e.expire_at_ms)
        {
            self.entry = None;
        }
        self.entry.as_mut()
    }

    fn version(&mut self, wall_ms: u64) -> u64 {
        self.entry(wall_ms).map_or(0, |e| e.version)
    }

    /// Writes `token`, by replica `by` (`None`: the operator's login).
    fn write(&mut self, wall_ms: u64, token: &StoredToken, by: Option<usize>) {
        let old = self.entry(wall_ms).and_then(|e| refresh_number(&e.token));
        if let Some(new) = refresh_number(token) {
            self.replaced.push((old, new, by.is_some()));
        }
        let version = self.version(wall_ms) + 1;
        let expire_at_ms = if token.refresh_token.is_some() {
            0
        } else {
            token.expires_at_unix_ms.max(1)
        };
        self.entry = Some(Entry {
            version,
            token: token.clone(),
            expire_at_ms,
        });
    }

    fn live_lease(&self, now: Duration) -> Option<LeaseEntry> {
        self.lease.filter(|l| now < l.expires)
    }
}

/// What befalls one store call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Apply,
    Fail,
    TimedOut,
    /// The write happened; its reply was lost.
    LostReply,
    /// Acknowledged, never written (a failover that lost it).
    LostWrite,
}

/// Whether a store call writes, and whether the fault model may lose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    No,
    /// A write whose reply may be lost, never the write itself.
    Kept,
    /// A write that may also be acknowledged and lost.
    Lossy,
}

/// The store all replicas share.
pub(crate) struct StoreModel {
    ctx: Arc<Ctx>,
    state: Mutex<State>,
    lease_ttl: Duration,
    max_wait: Duration,
    /// Whether the store has a forget mark.
    marked: bool,
}

/// The wait between looks at the store while another replica holds the
/// lease (`payauth-redis`'s default).
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(50);

impl StoreModel {
    pub(crate) fn new(
        ctx: &Arc<Ctx>,
        lease_ttl: Duration,
        max_wait: Duration,
        marked: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            ctx: Arc::clone(ctx),
            state: Mutex::new(State::default()),
            lease_ttl,
            max_wait,
            marked,
        })
    }

    /// The store restarts without persistence: every token, lease and
    /// shared failure is gone (owner ids keep counting, as random ones
    /// would not repeat).
    pub(crate) fn forget(&self) {
        let mut state = lock(&self.state);
        let (next_owner, last_mark) = (state.next_owner, state.last_mark);
        *state = State {
            next_owner,
            last_mark,
            ..State::default()
        };
        drop(state);
        self.ctx.check().store_forgot();
    }

    /// Whether a lease is held and not expired.
    pub(crate) fn lease_live(&self) -> bool {
        let now = self.ctx.now();
        lock(&self.state).live_lease(now).is_some()
    }

    fn wall_ms(&self) -> u64 {
        let now = payauth_core::Clock::system_now(self.ctx.clock.as_ref());
        u64::try_from(
            now.duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(u64::MAX)
    }

    fn draw(&self, replica: Option<usize>, write: Write) -> (Fate, Duration) {
        let now = self.ctx.now();
        let (rate, cut_off) = {
            let faults = self.ctx.faults();
            let cut =
                replica.is_some_and(|r| faults.partitioned_until.get(r).is_some_and(|t| now < *t));
            (faults.store, cut)
        };
        if cut_off {
            return (Fate::Fail, Duration::ZERO);
        }
        let mut rng = self.ctx.rng();
        if !rng.chance(rate) {
            return (Fate::Apply, Duration::ZERO);
        }
        let (reply, lose) = match write {
            Write::No => (0, 0),
            Write::Kept => (2, 0),
            Write::Lossy => (2, 1),
        };
        match rng.weighted(&[(10, 0u8), (5, 1), (2, 2), (reply, 3), (lose, 4)]) {
            0 => (Fate::Fail, Duration::ZERO),
            1 => (Fate::Apply, rng.millis(100, 3_000)),
            2 => (Fate::TimedOut, Duration::ZERO),
            3 => (Fate::LostReply, Duration::ZERO),
            _ => (Fate::LostWrite, Duration::ZERO),
        }
    }

    /// One store call from `replica` (`None`: the operator) through the
    /// fault model: `Ok(None)` is an acknowledged write that was lost.
    async fn call<T>(
        &self,
        replica: Option<usize>,
        what: &str,
        write: Write,
        apply: impl FnOnce(&mut State, Duration, u64) -> T,
    ) -> Result<Option<T>, Error> {
        let _busy = self.ctx.busy();
        let (fate, slow) = self.draw(replica, write);
        tokio::time::sleep(Duration::from_millis(1) + slow).await;
        let failed = |why: &str| {
            Error::new(ErrorKind::Store).with_description(format!("cannot {what} Redis: {why}"))
        };
        let run = || {
            let (now, wall) = (self.ctx.now(), self.wall_ms());
            apply(&mut lock(&self.state), now, wall)
        };
        match fate {
            Fate::Apply => Ok(Some(run())),
            Fate::Fail => Err(failed("connection refused")),
            Fate::TimedOut => {
                tokio::time::sleep(RESPONSE_TIMEOUT).await;
                Err(failed("response timed out"))
            }
            Fate::LostReply => {
                run();
                Err(failed("connection reset"))
            }
            Fate::LostWrite => {
                self.ctx.check().stats.lost_writes += 1;
                self.ctx.log(&format!(
                    "  store: a write by {} was acknowledged and lost",
                    who(replica)
                ));
                Ok(None)
            }
        }
    }

    /// A save of `token` returned: tells the ledger what became of its
    /// refresh token.
    fn saved(&self, replica: Option<usize>, token: &StoredToken, applied: bool, lost: bool) {
        let replaced = std::mem::take(&mut lock(&self.state).replaced);
        let mut check = self.ctx.check();
        for (old, new, by_cache) in replaced {
            if let Some(old) = old.filter(|_| by_cache) {
                check.stored_over(old, new);
            }
            check.stored(new);
        }
        drop(check);
        if let Some(rt) = token
            .refresh_token
            .as_ref()
            .and_then(|s| number(s.as_secret(), "rt-"))
        {
            self.ctx
                .check()
                .refresh_save_returned(rt, replica, applied, lost);
        }
    }

    async fn save(&self, replica: Option<usize>, token: &StoredToken) -> Result<(), Error> {
        let out = self
            .call(replica, "write to", Write::Lossy, |s, _, wall| {
                s.write(wall, token, replica);
            })
            .await;
        self.wrote(replica, token, &out, "");
        out.map(|_| ())
    }

    /// Records what became of a write of `token`, for the checker and the
    /// trace: applied (its reply lost or not), or acknowledged and lost.
    fn wrote(
        &self,
        replica: Option<usize>,
        token: &StoredToken,
        out: &Result<Option<()>, Error>,
        how: &str,
    ) {
        let applied = matches!(out, Ok(Some(()))) || out.as_ref().is_err_and(|_| self.holds(token));
        self.saved(replica, token, applied, matches!(out, Ok(None)));
        self.ctx.log(&format!(
            "{} saved {}{how}: {}",
            who(replica),
            describe(token),
            result(out)
        ));
    }

    /// `payauth-redis`'s conditional save: read the token and its version,
    /// check the condition, write only if the version is unchanged (a few
    /// tries), as a compare-and-set across processes.
    async fn save_if(
        &self,
        replica: Option<usize>,
        token: &StoredToken,
        condition: SaveIf<'_>,
    ) -> Result<bool, Error> {
        for _ in 0..3 {
            let read = self
                .call(replica, "read from", Write::No, |s, _, wall| {
                    let version = s.version(wall);
                    (version, s.entry(wall).map(|e| e.token.clone()))
                })
                .await;
            let (version, stored) = match read {
                Ok(read) => read.unwrap_or_default(),
                Err(error) => {
                    // The save returned, failed: the replica holds it.
                    self.saved(replica, token, false, false);
                    return Err(error);
                }
            };
            if !condition.allows(stored.as_ref(), token) {
                return Ok(false);
            }
            let out = self
                .call(replica, "write to", Write::Lossy, |s, _, wall| {
                    let moved = s.version(wall) != version;
                    if !moved {
                        s.write(wall, token, replica);
                    }
                    !moved
                })
                .await;
            if matches!(out, Ok(Some(false))) {
                continue;
            }
            let out = out.map(|written| written.map(|_| ()));
            self.wrote(replica, token, &out, " if unchanged");
            return out.map(|_| true);
        }
        Err(Error::new(ErrorKind::Store)
            .with_description("the stored token kept changing under a save; not saved"))
    }

    fn holds(&self, token: &StoredToken) -> bool {
        lock(&self.state)
            .entry
            .as_ref()
            .is_some_and(|e| e.token == *token)
    }
}

pub(crate) fn who(replica: Option<usize>) -> String {
    replica.map_or_else(|| "operator".to_owned(), |r| format!("r{r}"))
}

pub(crate) fn describe(token: &StoredToken) -> String {
    let id = number(token.access_token.as_secret(), "at-").unwrap_or(0);
    match token
        .refresh_token
        .as_ref()
        .and_then(|s| number(s.as_secret(), "rt-"))
    {
        Some(rt) => format!("t{id}/r{rt}"),
        None => format!("t{id}"),
    }
}

pub(crate) fn result<T>(out: &Result<T, Error>) -> String {
    match out {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.to_string(),
    }
}

/// One process's client of the shared store.
pub(crate) struct StoreHandle {
    model: Arc<StoreModel>,
    replica: Option<usize>,
}

impl StoreHandle {
    pub(crate) fn new(model: &Arc<StoreModel>, replica: Option<usize>) -> Self {
        Self {
            model: Arc::clone(model),
            replica,
        }
    }
}

impl TokenStore for StoreHandle {
    fn load<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        Box::pin(async move {
            let out = self
                .model
                .call(self.replica, "read from", Write::No, |s, _, wall| {
                    s.entry(wall).map(|e| e.token.clone())
                })
                .await
                .map(Option::flatten);
            if let Err(error) = &out {
                self.model
                    .ctx
                    .log(&format!("{} store read failed: {error}", who(self.replica)));
            }
            out
        })
    }

    fn save<'a>(
        &'a self,
        _key: &'a str,
        token: &'a StoredToken,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.model.save(self.replica, token))
    }

    fn save_if<'a>(
        &'a self,
        _key: &'a str,
        token: &'a StoredToken,
        condition: SaveIf<'a>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(self.model.save_if(self.replica, token, condition))
    }

    fn clear<'a>(
        &'a self,
        _key: &'a str,
        if_refresh_token: Option<&'a Secret>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let model = &self.model;
            let seen = model
                .call(self.replica, "read from", Write::No, |s, _, wall| {
                    s.entry(wall).map(|e| (e.version, e.token.clone()))
                })
                .await?
                .flatten();
            let Some((version, token)) = seen else {
                return Ok(());
            };
            if !token.is_cleared_by(if_refresh_token) {
                return Ok(());
            }
            let out = model
                .call(self.replica, "delete from", Write::Kept, |s, _, wall| {
                    if s.version(wall) == version {
                        s.entry = None;
                    }
                })
                .await;
            model.ctx.log(&format!(
                "{} cleared {}: {}",
                who(self.replica),
                describe(&token),
                result(&out)
            ));
            out.map(|_| ())
        })
    }
}

impl SharedStore for StoreHandle {
    fn try_lease<'a>(
        &'a self,
        _key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Box<dyn Lease>>, Error>> {
        Box::pin(async move {
            let model = Arc::clone(&self.model);
            let ttl = model.lease_ttl;
            let asked = model.ctx.now();
            let out = model
                .call(
                    self.replica,
                    "take a lease in",
                    Write::Kept,
                    |s, now, wall| {
                        if s.live_lease(now).is_some() {
                            return None;
                        }
                        let takeover = s.lease.is_some();
                        s.next_owner += 1;
                        let owner = s.next_owner;
                        s.lease = Some(LeaseEntry {
                            owner,
                            expires: now + ttl,
                        });
                        model.ctx.check().lease_until(owner, now + ttl);
                        Some((owner, s.version(wall), takeover))
                    },
                )
                .await;
            self.leased(out.map(Option::flatten), asked + ttl)
        })
    }

    fn poll_interval(&self) -> Duration {
        POLL_INTERVAL
    }

    fn max_wait(&self) -> Duration {
        self.model.max_wait
    }

    fn forget_mark(&self) -> Option<BoxFuture<'_, Result<String, Error>>> {
        if !self.model.marked {
            return None;
        }
        Some(Box::pin(async move {
            let read = self
                .model
                .call(
                    self.replica,
                    "read the forget mark from",
                    Write::Kept,
                    |s, _, _| {
                        *s.mark.get_or_insert_with(|| {
                            s.last_mark += 1;
                            s.last_mark
                        })
                    },
                )
                .await?;
            read.map(|mark| mark.to_string()).ok_or_else(|| {
                Error::new(ErrorKind::Store).with_description("the forget mark was not read")
            })
        }))
    }

    fn mark_forgotten(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            if self.model.marked {
                self.model
                    .call(
                        self.replica,
                        "drop the forget mark in",
                        Write::Kept,
                        |s, _, _| {
                            s.mark = None;
                        },
                    )
                    .await?;
            }
            Ok(())
        })
    }
}

impl StoreHandle {
    /// Turns the outcome of an acquire into a lease (and its heartbeat).
    fn leased(
        &self,
        out: Result<Option<(u64, u64, bool)>, Error>,
        held_until: Duration,
    ) -> Result<Option<Box<dyn Lease>>, Error> {
        let model = &self.model;
        let r = self.replica.unwrap_or(usize::MAX);
        match out {
            Ok(Some((owner, seen_version, takeover))) => {
                model.ctx.check().lease_taken(r, owner, takeover);
                model.ctx.log(&format!(
                    "r{r} took lease epoch {owner}{}",
                    if takeover { " (a takeover)" } else { "" }
                ));
                let held_until = Arc::new(Mutex::new(held_until));
                let heartbeat = tokio::spawn(renew(
                    Arc::clone(model),
                    self.replica,
                    owner,
                    Arc::clone(&held_until),
                ));
                Ok(Some(Box::new(SimLease {
                    model: Arc::clone(model),
                    replica: r,
                    owner,
                    seen_version,
                    heartbeat,
                    held_until,
                })))
            }
            Ok(None) => {
                model.ctx.check().lease_refused(r);
                Ok(None)
            }
            Err(error) => {
                model.ctx.check().lease_unavailable(r);
                model
                    .ctx
                    .log(&format!("r{r} could not take the lease: {error}"));
                Err(error)
            }
        }
    }
}

/// The holder's heartbeat: renews every third of the TTL until the lease
/// is released or lost, or its runtime dies.
async fn renew(
    model: Arc<StoreModel>,
    replica: Option<usize>,
    owner: u64,
    held_until: Arc<Mutex<Duration>>,
) {
    let ttl = model.lease_ttl;
    loop {
        tokio::time::sleep(ttl / 3).await;
        let asked = model.ctx.now();
        let renewed = model
            .call(
                replica,
                "renew a lease in",
                Write::No,
                |s, now, _| match &mut s.lease {
                    Some(lease) if lease.owner == owner && now < lease.expires => {
                        lease.expires = now + ttl;
                        model.ctx.check().lease_until(owner, lease.expires);
                        true
                    }
                    _ => false,
                },
            )
            .await;
        match renewed {
            Ok(Some(true)) => *lock(&held_until) = asked + ttl,
            Ok(Some(false)) => *lock(&held_until) = asked,
            _ => {}
        }
        if let Ok(Some(false)) = renewed {
            model.ctx.log(&format!(
                "{}: lease epoch {owner} lost before the fetch ended",
                who(replica)
            ));
            return;
        }
    }
}

/// A held lease.
struct SimLease {
    model: Arc<StoreModel>,
    replica: usize,
    owner: u64,
    seen_version: u64,
    heartbeat: tokio::task::JoinHandle<()>,
    /// Until when the store keeps the lease, as last confirmed.
    held_until: Arc<Mutex<Duration>>,
}

impl Lease for SimLease {
    fn save<'a>(&'a self, token: &'a StoredToken) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let (owner, seen) = (self.owner, self.seen_version);
            let out = self
                .model
                .call(Some(self.replica), "write to", Write::Lossy, |s, now, wall| {
                    if s.live_lease(now).is_none_or(|l| l.owner != owner) {
                        return Err("the fetch lease expired or passed to another replica before the token was saved");
                    }
                    if s.version(wall) != seen {
                        return Err("another replica stored a newer token; this one was not saved");
                    }
                    s.write(wall, token, Some(self.replica));
                    Ok(())
                })
                .await;
            let lost = matches!(out, Ok(None));
            let out = match out {
                Ok(Some(Err(why))) => Err(Error::new(ErrorKind::Store).with_description(why)),
                Ok(_) => Ok(()),
                Err(error) => Err(error),
            };
            let applied = self.model.holds(token);
            self.model.saved(Some(self.replica), token, applied, lost);
            self.model.ctx.log(&format!(
                "r{} saved {} under lease epoch {owner}: {}",
                self.replica,
                describe(token),
                result(&out)
            ));
            out
        })
    }

    fn held(&self) -> bool {
        self.model.ctx.now() < *lock(&self.held_until)
    }

    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>> {
        Box::pin(async move {
            self.heartbeat.abort();
            let owner = self.owner;
            let out = self
                .model
                .call(
                    Some(self.replica),
                    "release a lease in",
                    Write::No,
                    |s, now, _| {
                        if s.live_lease(now).is_some_and(|l| l.owner == owner) {
                            s.lease = None;
                            self.model.ctx.check().lease_released(owner);
                        }
                    },
                )
                .await;
            self.model.ctx.log(&format!(
                "r{} released lease epoch {owner}: {}",
                self.replica,
                result(&out)
            ));
            out.map(|_| ())
        })
    }
}

impl Drop for SimLease {
    fn drop(&mut self) {
        self.heartbeat.abort();
        self.model
            .ctx
            .check()
            .lease_dropped(self.replica, self.owner);
    }
}
