//! The invariants, checked as the run goes, and the ledger of what the
//! provider really issued, which they are checked against (never the
//! cache's own view).
//!
//! Each invariant is stated where it is checked. A run stops at its first
//! violation; excused cases (a refresh token the fleet could not have
//! known, because the fault model lost it) are counted apart.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::SimClock;

/// Which promise was broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Invariant {
    /// A caller received a token past the provider's own expiry of it.
    ExpiredToken,
    /// The provider received a refresh token it had rotated away (or a
    /// single-use code twice), and no fault explains it.
    RotatedRefreshToken,
    /// More upstream fetches than one per lease epoch (plus its retries),
    /// two at once in one replica, or one without the lease that the
    /// store did not excuse.
    SingleFlight,
    /// After faults stopped, a caller got an error past the bound.
    NoTokenWithinBound,
    /// A caller waited past the bound (chaos or calm).
    Wedge,
    /// A panic that was not the injected one, anywhere, or any panic
    /// escaping `token()` or `invalidate()`.
    Panic,
    /// A caller got an error while its replica held a token still valid.
    TransientDisplacedValid,
    /// After a genuine permanent refusal, a caller still got the old token.
    PermanentHidden,
    /// The provider received a refresh token it had rotated away, and the
    /// newer one was held, unsaved, by a replica whose `flush()` returned
    /// `Ok` before it exited: no rotated refresh token is lost where
    /// `flush()` returned `Ok`.
    LostAfterFlush,
    /// A token of an older lineage (a family of refresh tokens begun by an
    /// earlier grant) was stored over one of a newer lineage (a later
    /// login): a stored login is never overwritten by an older lineage.
    OlderLineage,
    /// Many-subjects mode: a cache handed out for one subject's key was
    /// another's, served a token issued for another subject, or refreshed
    /// with another subject's refresh token.
    SubjectCrossed,
    /// Many-subjects mode: a subject's latest rotated refresh token was
    /// neither in the store nor held by a live cache of that subject (an
    /// eviction dropped it unsaved).
    LostToEviction,
}

impl Invariant {
    /// Every invariant, in report order.
    pub const ALL: [Self; 12] = [
        Self::ExpiredToken,
        Self::RotatedRefreshToken,
        Self::SingleFlight,
        Self::NoTokenWithinBound,
        Self::Wedge,
        Self::Panic,
        Self::TransientDisplacedValid,
        Self::PermanentHidden,
        Self::LostAfterFlush,
        Self::OlderLineage,
        Self::SubjectCrossed,
        Self::LostToEviction,
    ];

    /// A short name for reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ExpiredToken => "expired-token",
            Self::RotatedRefreshToken => "rotated-refresh-token",
            Self::SingleFlight => "single-flight",
            Self::NoTokenWithinBound => "no-token-within-bound",
            Self::Wedge => "wedge",
            Self::Panic => "panic",
            Self::TransientDisplacedValid => "transient-displaced-valid",
            Self::PermanentHidden => "permanent-hidden",
            Self::LostAfterFlush => "lost-after-flush",
            Self::OlderLineage => "older-lineage",
            Self::SubjectCrossed => "subject-crossed",
            Self::LostToEviction => "lost-to-eviction",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which one.
    pub invariant: Invariant,
    /// When, on the simulated timeline.
    pub at: Duration,
    /// What happened, in one line.
    pub detail: String,
}

/// Counts kept apart from violations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Upstream fetch attempts that reached the provider model.
    pub attempts: u64,
    /// Of them, made without the fleet lease because the store could not
    /// grant one.
    pub leaseless_attempts: u64,
    /// Lease epochs (successful `try_lease`), and of them takeovers of a
    /// lease that expired unreleased.
    pub epochs: u64,
    /// See `epochs`.
    pub takeovers: u64,
    /// Store writes the fault model acknowledged and lost.
    pub lost_writes: u64,
    /// Rotated-away refresh tokens received, excused: a newer one was lost
    /// in the store (`lost`), in a spoiled answer (`spoiled`), or with a
    /// process or runtime that died holding it unsaved (`orphaned`), or in
    /// an answer still on its way when the cache's fetch timeout abandoned
    /// the request (`abandoned`: the cost of bounding a wait, documented
    /// on `fetch_timeout`), or issued to a holder whose lease expired
    /// because store faults stopped its heartbeat before it could save
    /// what the answer carried (`lease_lost`: a lease cannot fence the
    /// provider; a lease TTL longer than the store's outages avoids it).
    pub excused_lost: u64,
    /// See `excused_lost`.
    pub excused_spoiled: u64,
    /// See `excused_lost`.
    pub excused_orphaned: u64,
    /// See `excused_lost`.
    pub excused_abandoned: u64,
    /// See `excused_lost`.
    pub excused_lease_lost: u64,
    /// Restarts of the store without persistence. A rotated-away refresh
    /// token sent after one is not excused while the newer one lived in a
    /// replica's memory: the replicas must converge on it first (#24.9a).
    pub store_restarts: u64,
    /// Rotated-away refresh tokens received from a lineage the store had
    /// since replaced by another (a later login): the replica sending it
    /// could not know, and nothing the fleet uses is lost.
    pub excused_superseded: u64,
    /// Calls to `token()` that returned a token, and an error.
    pub calls_ok: u64,
    /// See `calls_ok`.
    pub calls_err: u64,
    /// Panics injected by the source model.
    pub injected_panics: u64,
    /// Many-subjects mode: caches the `Subjects` factory built (a first
    /// use, or a use after an eviction dropped the subject).
    pub caches_built: u64,
}

impl Stats {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Self) {
        self.attempts += other.attempts;
        self.leaseless_attempts += other.leaseless_attempts;
        self.caches_built += other.caches_built;
        self.epochs += other.epochs;
        self.takeovers += other.takeovers;
        self.lost_writes += other.lost_writes;
        self.excused_lost += other.excused_lost;
        self.excused_spoiled += other.excused_spoiled;
        self.excused_orphaned += other.excused_orphaned;
        self.excused_abandoned += other.excused_abandoned;
        self.excused_lease_lost += other.excused_lease_lost;
        self.store_restarts += other.store_restarts;
        self.excused_superseded += other.excused_superseded;
        self.calls_ok += other.calls_ok;
        self.calls_err += other.calls_err;
        self.injected_panics += other.injected_panics;
    }
}

/// What the provider knows of one access token.
#[derive(Debug, Clone)]
pub(crate) struct TokenTruth {
    /// When the source read its clock before sending the request: the
    /// start of the cache's own view of the token's life.
    pub(crate) view_issued: Duration,
    /// The lifetime the answer gave (what the cache was told).
    pub(crate) lifetime: Duration,
    /// The provider's expiry; `None`: never (a lifetime past the timeline).
    pub(crate) expiry: Option<Duration>,
    /// The wall clock's offset when the source read it.
    pub(crate) wall_at_issue: i64,
    /// Seq when it was issued.
    pub(crate) seq: u64,
}

/// What became of one refresh token the provider issued.
#[derive(Debug, Clone, Default)]
#[allow(clippy::struct_excessive_bools)] // independent facts, each checked on its own
struct RefreshFate {
    saved: bool,
    lost: bool,
    spoiled: bool,
    /// Its answer was on the way when the request was dropped.
    abandoned: bool,
    /// The lease epoch it was issued under, and whether the store still
    /// held that lease when the request was sent.
    epoch: Option<u64>,
    sent_under_live_lease: bool,
    /// The runtime whose fetch holds it, until its save returns.
    in_flight_on: Option<u32>,
    /// The replica that holds it in memory once its save returned.
    in_replica: Option<usize>,
    /// The replica it was issued to, and whether that replica fetched
    /// without the fleet lease.
    issued_to: Option<(usize, bool)>,
    orphaned: bool,
    /// Held unsaved by a replica whose `flush()` then returned `Ok`.
    flushed: bool,
    /// Saved, then the store forgot everything (a restart without
    /// persistence).
    forgotten: bool,
    /// The lineage (the provider's family of refresh tokens) it belongs to.
    family: Option<usize>,
}

/// Why a rotated-away refresh token was excused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Excuse {
    Lost,
    Spoiled,
    Orphaned,
    Abandoned,
    LeaseLost,
    /// Not an excuse: the newer one was lost after `flush()` said `Ok`.
    Flushed,
}

#[derive(Debug, Clone, Default)]
struct ReplicaView {
    held: Option<u64>,
    /// Tokens its callers invalidated (the cache dropped them).
    rejected: std::collections::BTreeSet<u64>,
    /// A genuine permanent refusal: its seq, and until when callers must
    /// get an error.
    refused: Option<(u64, Duration)>,
    attempts_in_progress: u32,
    lease: Option<u64>,
    lease_unavailable: bool,
    max_attempts_per_epoch: u32,
    /// Whether its latest upstream attempt started while the store still
    /// held its lease.
    attempt_under_live_lease: bool,
}

/// The invariants' state for one run.
#[derive(Debug)]
pub(crate) struct Checker {
    clock: Arc<SimClock>,
    replicas: Vec<ReplicaView>,
    tokens: BTreeMap<u64, TokenTruth>,
    refresh: BTreeMap<u64, RefreshFate>,
    epoch_attempts: BTreeMap<u64, u32>,
    fleet: bool,
    /// Until when the store keeps each lease epoch (as last set).
    lease_until: BTreeMap<u64, Duration>,
    /// Lease epochs their holder released (the others expired).
    released_epochs: std::collections::BTreeSet<u64>,
    /// The lineage of the refresh token last written to the store.
    store_family: Option<usize>,
    first: Option<Violation>,
    pub(crate) stats: Stats,
}

/// Slack on validity checks: one fine step plus the millisecond the wall
/// form of a stored expiry drops.
const SLACK: Duration = Duration::from_millis(20);

impl Checker {
    pub(crate) fn new(clock: Arc<SimClock>, fleet: bool) -> Self {
        Self {
            clock,
            replicas: Vec::new(),
            tokens: BTreeMap::new(),
            refresh: BTreeMap::new(),
            epoch_attempts: BTreeMap::new(),
            fleet,
            lease_until: BTreeMap::new(),
            released_epochs: std::collections::BTreeSet::new(),
            store_family: None,
            first: None,
            stats: Stats::default(),
        }
    }

    /// Adds a replica whose fetch makes at most `attempts` upstream calls.
    pub(crate) fn add_replica(&mut self, attempts: u32) {
        self.replicas.push(ReplicaView {
            max_attempts_per_epoch: attempts,
            ..ReplicaView::default()
        });
    }

    pub(crate) fn violation(&self) -> Option<&Violation> {
        self.first.as_ref()
    }

    /// Records a violation (the first one is kept).
    pub(crate) fn violate(&mut self, invariant: Invariant, detail: String) {
        if self.first.is_none() {
            self.first = Some(Violation {
                invariant,
                at: self.clock.sim_now(),
                detail,
            });
        }
    }

    fn replica(&mut self, r: usize) -> &mut ReplicaView {
        &mut self.replicas[r]
    }

    // The ledger.

    pub(crate) fn issued(&mut self, id: u64, truth: TokenTruth) {
        self.tokens.insert(id, truth);
    }

    /// The provider issued `rt` to replica `to` (`None`: the operator).
    pub(crate) fn refresh_issued(&mut self, rt: u64, to: Option<usize>) {
        let issued_to = to.map(|r| {
            let view = &self.replicas[r];
            (r, self.fleet && view.lease.is_none())
        });
        let epoch = to.and_then(|r| self.replicas[r].lease);
        let sent_under_live_lease = to.is_some_and(|r| self.replicas[r].attempt_under_live_lease);
        let family = self.refresh.get(&rt).and_then(|f| f.family);
        self.refresh.insert(
            rt,
            RefreshFate {
                epoch,
                sent_under_live_lease,
                issued_to,
                family,
                ..RefreshFate::default()
            },
        );
    }

    /// The answer carrying `rt` reached the source, on runtime `host`.
    pub(crate) fn refresh_delivered(&mut self, rt: u64, host: Option<u32>) {
        if let Some(fate) = self.refresh.get_mut(&rt) {
            fate.in_flight_on = host;
        }
    }

    pub(crate) fn refresh_spoiled(&mut self, rt: u64) {
        if let Some(fate) = self.refresh.get_mut(&rt) {
            fate.spoiled = true;
        }
    }

    /// The request whose answer carries `rt` was dropped (the cache's
    /// fetch timeout) before the answer arrived.
    pub(crate) fn refresh_abandoned(&mut self, rt: u64) {
        if let Some(fate) = self.refresh.get_mut(&rt) {
            fate.abandoned = true;
        }
    }

    /// A save holding `rt` returned to `replica`: `applied` if the store
    /// now holds it, `lost` if the fault model acknowledged and dropped it.
    pub(crate) fn refresh_save_returned(
        &mut self,
        rt: u64,
        replica: Option<usize>,
        applied: bool,
        lost: bool,
    ) {
        if let Some(fate) = self.refresh.get_mut(&rt) {
            fate.saved |= applied;
            fate.lost |= lost;
            fate.in_flight_on = None;
            fate.in_replica = fate.in_replica.or(replica);
        }
    }

    /// The process holding `rt` gave up saving it (the operator's login).
    pub(crate) fn refresh_orphaned(&mut self, rt: u64) {
        if let Some(fate) = self.refresh.get_mut(&rt)
            && !fate.saved
        {
            fate.orphaned = true;
        }
    }

    /// Runtime `host` died: fetches on it die with what they held unsaved.
    pub(crate) fn host_died(&mut self, host: u32) {
        for fate in self.refresh.values_mut() {
            if fate.in_flight_on == Some(host) && !fate.saved {
                fate.orphaned = true;
            }
        }
    }

    /// `rt` belongs to the provider's lineage `family` (families are
    /// numbered in the order their first grant was made).
    pub(crate) fn refresh_family(&mut self, rt: u64, family: usize) {
        self.refresh.entry(rt).or_default().family = Some(family);
    }

    /// Replica `r`'s `flush()` returned `Ok`: what it holds unsaved now
    /// must not be lost (see [`Invariant::LostAfterFlush`]).
    pub(crate) fn flushed(&mut self, r: usize) {
        for fate in self.refresh.values_mut() {
            // An orphan died with an earlier process of this replica.
            if fate.in_replica == Some(r) && !fate.saved && !fate.orphaned {
                fate.flushed = true;
            }
        }
    }

    /// Invariant: a write that replaced the token holding refresh token
    /// `old` with one holding `new` never puts an older lineage over a
    /// newer one.
    /// The store restarted empty: what it held is gone.
    pub(crate) fn store_forgot(&mut self) {
        self.stats.store_restarts += 1;
        for fate in self.refresh.values_mut() {
            if fate.saved {
                fate.saved = false;
                fate.forgotten = true;
            }
        }
        self.store_family = None;
    }

    /// The store now holds refresh token `rt` (written by anyone).
    pub(crate) fn stored(&mut self, rt: u64) {
        if let Some(family) = self.refresh.get(&rt).and_then(|f| f.family) {
            self.store_family = Some(family);
        }
    }

    pub(crate) fn stored_over(&mut self, old: u64, new: u64) {
        let family = |rt| self.refresh.get(&rt).and_then(|f| f.family);
        if let (Some(old_family), Some(new_family)) = (family(old), family(new))
            && new_family < old_family
        {
            self.violate(
                Invariant::OlderLineage,
                format!(
                    "r{new} (lineage {new_family}) was stored over r{old} of the newer lineage {old_family}"
                ),
            );
        }
    }

    /// Replica `r`'s process died (or was restarted) with its memory.
    pub(crate) fn replica_died(&mut self, r: usize) {
        for fate in self.refresh.values_mut() {
            if fate.in_replica == Some(r) && !fate.saved && !fate.flushed {
                fate.orphaned = true;
            }
        }
        self.replicas[r] = ReplicaView {
            max_attempts_per_epoch: self.replicas[r].max_attempts_per_epoch,
            attempts_in_progress: self.replicas[r].attempts_in_progress,
            ..ReplicaView::default()
        };
    }

    /// Invariant: the provider never receives a refresh token it rotated
    /// away, unless one of the `newer` ones of its family was lost to a
    /// fault before the fleet could know it (lost write, spoiled answer, a
    /// process or runtime that died holding it unsaved): counted apart.
    pub(crate) fn stale_refresh(&mut self, presented: u64, newer: &[u64], by: Option<usize>) {
        let family = self.refresh.get(&presented).and_then(|f| f.family);
        if family.is_some() && self.store_family.is_some() && family != self.store_family {
            self.stats.excused_superseded += 1;
            return;
        }
        let excuse = newer.iter().find_map(|rt| {
            let fate = self.refresh.get(rt)?;
            if fate.saved {
                return None;
            }
            if fate.lost {
                Some(Excuse::Lost)
            } else if fate.spoiled {
                Some(Excuse::Spoiled)
            } else if fate.abandoned {
                Some(Excuse::Abandoned)
            } else if fate.flushed {
                Some(Excuse::Flushed)
            } else if fate.sent_under_live_lease
                && fate
                    .epoch
                    .is_some_and(|e| !self.released_epochs.contains(&e))
                && by.is_some_and(|b| {
                    let lease = self.replicas[b].lease;
                    lease.is_some() && lease != fate.epoch
                })
            {
                Some(Excuse::LeaseLost)
            } else {
                fate.orphaned.then_some(Excuse::Orphaned)
            }
        });
        match excuse {
            Some(Excuse::Lost) => self.stats.excused_lost += 1,
            Some(Excuse::Spoiled) => self.stats.excused_spoiled += 1,
            Some(Excuse::Orphaned) => self.stats.excused_orphaned += 1,
            Some(Excuse::Abandoned) => self.stats.excused_abandoned += 1,
            Some(Excuse::LeaseLost) => self.stats.excused_lease_lost += 1,
            Some(Excuse::Flushed) => {
                let fates: Vec<String> = newer
                    .iter()
                    .map(|rt| {
                        describe_fate(*rt, &self.refresh.get(rt).cloned().unwrap_or_default())
                    })
                    .collect();
                self.violate(
                    Invariant::LostAfterFlush,
                    format!(
                        "r{presented} was sent, rotated away by {}, held by a replica whose flush() returned Ok",
                        fates.join(", ")
                    ),
                );
            }
            None => {
                let fates: Vec<String> = newer
                    .iter()
                    .map(|rt| {
                        describe_fate(*rt, &self.refresh.get(rt).cloned().unwrap_or_default())
                    })
                    .collect();
                let how = match by {
                    Some(r)
                        if self.replicas[r].lease.is_none()
                            && self.replicas[r].lease_unavailable =>
                    {
                        format!(
                            "r{r} (fetching without the lease, which the store could not grant)"
                        )
                    }
                    Some(r) => format!("r{r}"),
                    None => "the operator".to_owned(),
                };
                self.violate(
                    Invariant::RotatedRefreshToken,
                    format!(
                        "{how} sent r{presented}, rotated away by {}",
                        fates.join(", ")
                    ),
                );
            }
        }
    }

    // Leases and attempts.

    pub(crate) fn lease_taken(&mut self, r: usize, epoch: u64, takeover: bool) {
        self.stats.epochs += 1;
        self.stats.takeovers += u64::from(takeover);
        let view = self.replica(r);
        view.lease = Some(epoch);
        view.lease_unavailable = false;
    }

    /// The holder of lease `epoch` released it.
    pub(crate) fn lease_released(&mut self, epoch: u64) {
        self.released_epochs.insert(epoch);
    }

    /// The store now keeps lease `epoch` until `until` (taken or renewed).
    pub(crate) fn lease_until(&mut self, epoch: u64, until: Duration) {
        self.lease_until.insert(epoch, until);
    }

    pub(crate) fn lease_refused(&mut self, r: usize) {
        self.replica(r).lease_unavailable = false;
    }

    pub(crate) fn lease_unavailable(&mut self, r: usize) {
        self.replica(r).lease_unavailable = true;
    }

    pub(crate) fn lease_dropped(&mut self, r: usize, epoch: u64) {
        let view = self.replica(r);
        if view.lease == Some(epoch) {
            view.lease = None;
        }
    }

    /// Invariant (single flight): every upstream attempt is charged to the
    /// lease epoch its replica holds (an epoch is one successful
    /// `try_lease`; a takeover of an expired lease starts a new one), and
    /// an epoch is charged at most `1 + retries` attempts; an attempt with
    /// no lease is allowed only right after that replica's `try_lease`
    /// failed (the cache then fetches on its own, by design; counted
    /// apart); and no replica has two attempts in progress at once. So the
    /// fleet makes at most one fetch per lease epoch, and epochs overlap
    /// only on a takeover.
    pub(crate) fn attempt_started(&mut self, r: usize) {
        self.stats.attempts += 1;
        let fleet = self.fleet;
        let view = self.replica(r).clone();
        let now = self.clock.sim_now();
        let live = view
            .lease
            .and_then(|e| self.lease_until.get(&e))
            .is_some_and(|until| now < *until);
        self.replica(r).attempts_in_progress += 1;
        self.replica(r).attempt_under_live_lease = live;
        if view.attempts_in_progress > 0 {
            self.violate(
                Invariant::SingleFlight,
                format!("r{r} started an upstream fetch while another of its own was in progress"),
            );
        }
        if !fleet {
            return;
        }
        match view.lease {
            Some(epoch) => {
                let charged = self.epoch_attempts.entry(epoch).or_insert(0);
                *charged += 1;
                if *charged > view.max_attempts_per_epoch {
                    let charged = *charged;
                    self.violate(
                        Invariant::SingleFlight,
                        format!(
                            "lease epoch {epoch} (r{r}) made {charged} upstream attempts, at most {} allowed",
                            view.max_attempts_per_epoch
                        ),
                    );
                }
            }
            None if view.lease_unavailable => self.stats.leaseless_attempts += 1,
            None => self.violate(
                Invariant::SingleFlight,
                format!(
                    "r{r} fetched upstream without the fleet lease, though the store could grant it"
                ),
            ),
        }
    }

    pub(crate) fn attempt_ended(&mut self, r: usize) {
        let view = self.replica(r);
        view.attempts_in_progress = view.attempts_in_progress.saturating_sub(1);
    }

    /// Replica `r`'s source was refused for good (a genuine permanent
    /// error) at `seq`: by design it drops its token, and callers until
    /// `until` (its first failure backoff) must get the error.
    pub(crate) fn refused(&mut self, r: usize, seq: u64, until: Duration) {
        let view = self.replica(r);
        view.held = None;
        view.refused = Some((seq, until));
    }
}

/// How one call of `token()` ended.
#[derive(Debug, Clone)]
pub(crate) enum CallOutcome {
    /// A token (by id), and whether the downstream API's 401 made the
    /// caller invalidate it and the cache dropped it.
    Token { id: u64, invalidated: bool },
    /// An error, as displayed.
    Error(String),
    /// A panic out of `token()` or `invalidate()`.
    Panicked(String),
}

/// One finished call of `token()`.
#[derive(Debug, Clone)]
pub(crate) struct CallEnd {
    pub(crate) replica: usize,
    pub(crate) started: Duration,
    pub(crate) start_seq: u64,
    pub(crate) end_seq: u64,
    pub(crate) ended: Duration,
    pub(crate) outcome: CallOutcome,
}

impl Checker {
    /// Replica `r`'s cache dropped token `id` (an API rejected it).
    pub(crate) fn invalidated(&mut self, r: usize, id: u64) {
        let view = self.replica(r);
        view.rejected.insert(id);
        if view.held == Some(id) {
            view.held = None;
        }
    }

    /// Checks one finished call; `calm_from` is when, faults having
    /// stopped, every call must succeed (faults stopped plus the bound).
    pub(crate) fn call_ended(&mut self, call: &CallEnd, calm_from: Option<Duration>) {
        let r = call.replica;
        match &call.outcome {
            CallOutcome::Token { id, invalidated } => {
                self.stats.calls_ok += 1;
                self.check_token(call, *id);
                let view = self.replica(r);
                if *invalidated {
                    view.rejected.insert(*id);
                }
                // A call that ended before a refusal in this step is handled
                // after it: it cannot hand the dropped token back.
                let before_refusal = view.refused.is_some_and(|(seq, _)| call.end_seq < seq);
                if !before_refusal {
                    view.held = (!view.rejected.contains(id)).then_some(*id);
                }
            }
            CallOutcome::Error(error) => {
                self.stats.calls_err += 1;
                if calm_from.is_some_and(|from| call.started >= from) {
                    self.violate(
                        Invariant::NoTokenWithinBound,
                        format!(
                            "r{r}: a call {} s past the bound after faults stopped got: {error}",
                            fmt_secs(call.started.saturating_sub(calm_from.unwrap_or_default()))
                        ),
                    );
                }
                if let Some(held) = self.replicas[r].held
                    && self.still_valid(held, call.ended)
                {
                    self.violate(
                        Invariant::TransientDisplacedValid,
                        format!("r{r} held t{held}, still valid, but a caller got: {error}"),
                    );
                }
            }
            CallOutcome::Panicked(message) => {
                self.violate(
                    Invariant::Panic,
                    format!("r{r}: a panic escaped the cache: {message}"),
                );
            }
        }
    }

    /// Invariant: no caller receives a token past the provider's expiry of
    /// it. Wall-clock jumps backwards make a token read back from the store
    /// look younger by exactly the jump (its expiry is stored as wall time),
    /// which no cache can see: that much is allowed.
    ///
    /// Invariant: a caller that starts after a genuine permanent refusal,
    /// within the replica's first failure backoff, gets the error, never a
    /// token issued before the refusal.
    fn check_token(&mut self, call: &CallEnd, id: u64) {
        let r = call.replica;
        let Some(truth) = self.tokens.get(&id).cloned() else {
            self.violate(
                Invariant::ExpiredToken,
                format!("r{r} served t{id}, which the provider never issued"),
            );
            return;
        };
        if let Some(expiry) = truth.expiry {
            let (lowest, _) = self.clock.offsets_since(truth.view_issued);
            let allowed = Duration::from_millis(
                truth
                    .wall_at_issue
                    .saturating_sub(lowest)
                    .max(0)
                    .unsigned_abs(),
            );
            if call.ended >= expiry.saturating_add(allowed) {
                self.violate(
                    Invariant::ExpiredToken,
                    format!(
                        "r{r} served t{id} {} s past its expiry (lifetime {} s)",
                        fmt_secs(call.ended.saturating_sub(expiry)),
                        fmt_secs(truth.lifetime)
                    ),
                );
            }
        }
        if let Some((seq, until)) = self.replicas[r].refused
            && call.start_seq > seq
            && call.started < until
            && truth.seq < seq
        {
            self.violate(
                Invariant::PermanentHidden,
                format!("r{r} served t{id} after the provider refused it for good"),
            );
        }
    }

    /// Whether token `id` is valid at `at` in the cache's own view, with
    /// slack, and allowing for wall-clock jumps forwards (which make a
    /// stored token look older).
    fn still_valid(&self, id: u64, at: Duration) -> bool {
        let Some(truth) = self.tokens.get(&id) else {
            return false;
        };
        let Some(view_expiry) = truth.view_issued.checked_add(truth.lifetime) else {
            return true;
        };
        let (_, highest) = self.clock.offsets_since(truth.view_issued);
        let forward = Duration::from_millis(
            highest
                .saturating_sub(truth.wall_at_issue)
                .max(0)
                .unsigned_abs(),
        );
        at + SLACK + forward < view_expiry
    }

    /// Invariant (no wedge): a caller still waiting at `now`, past its
    /// `deadline`, is a violation.
    pub(crate) fn waiting(
        &mut self,
        r: usize,
        c: usize,
        started: Duration,
        now: Duration,
        deadline: Duration,
    ) {
        if now > deadline {
            self.violate(
                Invariant::Wedge,
                format!(
                    "r{r} c{c} has waited {} s for a token (since {} s)",
                    fmt_secs(now.saturating_sub(started)),
                    fmt_secs(started)
                ),
            );
        }
    }

    /// A panic seen anywhere (recorded by the hook).
    pub(crate) fn panicked(&mut self, message: &str) {
        if message.starts_with(crate::panics::INJECTED) {
            self.stats.injected_panics += 1;
        } else {
            self.violate(
                Invariant::Panic,
                format!("a panic in the cache's tasks: {message}"),
            );
        }
    }
}

/// Where a newer refresh token was when an older one reached the provider.
fn describe_fate(rt: u64, fate: &RefreshFate) -> String {
    let to = match fate.issued_to {
        Some((r, true)) => format!("issued to r{r} fetching without the lease"),
        Some((r, false)) => format!("issued to r{r}"),
        None => "issued to the operator".to_owned(),
    };
    let state = if fate.saved {
        "saved in the store".to_owned()
    } else if let Some(r) = fate.in_replica
        && fate.forgotten
    {
        format!("saved, forgotten by the store, in r{r}'s memory")
    } else if let Some(r) = fate.in_replica {
        format!("unsaved, in r{r}'s memory")
    } else if fate.in_flight_on.is_some() {
        "answered, its save in progress".to_owned()
    } else if fate.abandoned {
        "its request abandoned".to_owned()
    } else {
        "its answer still on the way".to_owned()
    };
    format!("r{rt} ({to}, {state})")
}

/// Seconds with milliseconds, for details.
pub(crate) fn fmt_secs(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn fresh(fleet: bool) -> (Arc<SimClock>, Checker) {
        let clock = Arc::new(SimClock::new());
        let mut checker = Checker::new(Arc::clone(&clock), fleet);
        checker.add_replica(1);
        (clock, checker)
    }

    fn truth(lifetime: Duration) -> TokenTruth {
        TokenTruth {
            view_issued: Duration::ZERO,
            lifetime,
            expiry: Some(lifetime),
            wall_at_issue: 0,
            seq: 0,
        }
    }

    fn served(id: u64, ended: Duration) -> CallEnd {
        CallEnd {
            replica: 0,
            started: ended,
            start_seq: 10,
            end_seq: 11,
            ended,
            outcome: CallOutcome::Token {
                id,
                invalidated: false,
            },
        }
    }

    fn failed(ended: Duration) -> CallEnd {
        CallEnd {
            outcome: CallOutcome::Error("provider unavailable".to_owned()),
            ..served(0, ended)
        }
    }

    fn broken(checker: &Checker) -> Option<Invariant> {
        checker.violation().map(|v| v.invariant)
    }

    #[test]
    fn a_token_served_at_or_past_the_providers_expiry_is_a_violation() {
        let (_, mut checker) = fresh(false);
        checker.issued(1, truth(10 * S));
        checker.call_ended(&served(1, Duration::from_millis(9_999)), None);
        assert_eq!(broken(&checker), None);
        checker.call_ended(&served(1, 10 * S), None);
        assert_eq!(broken(&checker), Some(Invariant::ExpiredToken));
    }

    #[test]
    fn a_backward_wall_jump_allows_exactly_its_size_past_expiry() {
        let (clock, mut checker) = fresh(false);
        checker.issued(1, truth(10 * S));
        clock.set_outside(S);
        clock.jump_wall(-5_000);
        checker.call_ended(&served(1, Duration::from_millis(14_999)), None);
        assert_eq!(broken(&checker), None);
        checker.call_ended(&served(1, 15 * S), None);
        assert_eq!(broken(&checker), Some(Invariant::ExpiredToken));
    }

    #[test]
    fn a_rotated_away_refresh_token_is_excused_only_when_a_fault_lost_the_newer_one() {
        let (_, mut checker) = fresh(true);
        checker.refresh_issued(2, None);
        checker.refresh_save_returned(2, None, false, true);
        checker.stale_refresh(1, &[2], Some(0));
        assert_eq!(broken(&checker), None);
        assert_eq!(checker.stats.excused_lost, 1);

        let (_, mut checker) = fresh(true);
        checker.refresh_issued(2, Some(0));
        checker.refresh_save_returned(2, Some(0), false, false);
        checker.stale_refresh(1, &[2], Some(0));
        assert_eq!(broken(&checker), Some(Invariant::RotatedRefreshToken));
        let detail = &checker.violation().unwrap().detail;
        assert!(detail.contains("unsaved, in r0's memory"), "{detail}");
    }

    #[test]
    fn a_refresh_token_the_store_forgot_excuses_its_predecessor_only_once_no_replica_holds_it() {
        let (_, mut checker) = fresh(true);
        checker.add_replica(1);
        checker.refresh_issued(2, Some(1));
        checker.refresh_save_returned(2, Some(1), true, false);
        checker.store_forgot();
        checker.stale_refresh(1, &[2], Some(0));
        assert_eq!(broken(&checker), Some(Invariant::RotatedRefreshToken));
        let detail = &checker.violation().unwrap().detail;
        assert!(
            detail.contains("forgotten by the store, in r1's memory"),
            "{detail}"
        );

        let (_, mut checker) = fresh(true);
        checker.add_replica(1);
        checker.refresh_issued(2, Some(1));
        checker.refresh_save_returned(2, Some(1), true, false);
        checker.store_forgot();
        checker.replica_died(1);
        checker.stale_refresh(1, &[2], Some(0));
        assert_eq!(broken(&checker), None);
        assert_eq!(
            (checker.stats.excused_orphaned, checker.stats.store_restarts),
            (1, 1)
        );
    }

    #[test]
    fn a_refresh_token_in_a_spoiled_answer_or_a_dead_runtime_excuses_its_predecessor() {
        let (_, mut checker) = fresh(true);
        checker.refresh_issued(2, Some(0));
        checker.refresh_spoiled(2);
        checker.refresh_issued(3, Some(0));
        checker.refresh_delivered(3, Some(4));
        checker.host_died(4);
        checker.stale_refresh(1, &[2], Some(0));
        checker.stale_refresh(2, &[3], Some(0));
        assert_eq!(broken(&checker), None);
        assert_eq!(
            (
                checker.stats.excused_spoiled,
                checker.stats.excused_orphaned
            ),
            (1, 1)
        );
    }

    #[test]
    fn a_second_attempt_in_one_lease_epoch_breaks_single_flight() {
        let (_, mut checker) = fresh(true);
        checker.lease_taken(0, 7, false);
        checker.attempt_started(0);
        checker.attempt_ended(0);
        assert_eq!(broken(&checker), None);
        checker.attempt_started(0);
        assert_eq!(broken(&checker), Some(Invariant::SingleFlight));
    }

    #[test]
    fn an_attempt_without_the_lease_is_allowed_only_after_the_store_refused_it() {
        let (_, mut checker) = fresh(true);
        checker.lease_unavailable(0);
        checker.attempt_started(0);
        checker.attempt_ended(0);
        assert_eq!(
            (broken(&checker), checker.stats.leaseless_attempts),
            (None, 1)
        );
        checker.lease_refused(0);
        checker.attempt_started(0);
        assert_eq!(broken(&checker), Some(Invariant::SingleFlight));
    }

    #[test]
    fn two_attempts_at_once_in_one_replica_break_single_flight() {
        let (_, mut checker) = fresh(false);
        checker.attempt_started(0);
        assert_eq!(broken(&checker), None);
        checker.attempt_started(0);
        assert_eq!(broken(&checker), Some(Invariant::SingleFlight));
    }

    #[test]
    fn an_error_while_a_valid_token_is_held_is_a_displacement_unless_refused_for_good() {
        let (_, mut checker) = fresh(false);
        checker.issued(1, truth(100 * S));
        checker.call_ended(&served(1, S), None);
        checker.refused(0, 12, 3 * S);
        checker.call_ended(&failed(2 * S), None);
        assert_eq!(broken(&checker), None);
        let mut before = served(1, 4 * S);
        checker.call_ended(&before, None);
        checker.call_ended(&failed(5 * S), None);
        assert_eq!(
            broken(&checker),
            None,
            "ended before the refusal: not held again"
        );
        (before.start_seq, before.end_seq) = (13, 14);
        checker.call_ended(&before, None);
        checker.call_ended(&failed(5 * S), None);
        assert_eq!(broken(&checker), Some(Invariant::TransientDisplacedValid));
    }

    #[test]
    fn a_token_issued_before_a_refusal_served_within_the_backoff_hides_it() {
        let (_, mut checker) = fresh(false);
        checker.issued(1, truth(100 * S));
        checker.refused(0, 5, 3 * S);
        let mut call = served(1, 2 * S);
        call.start_seq = 4;
        checker.call_ended(&call, None);
        assert_eq!(broken(&checker), None, "the call began before the refusal");
        checker.call_ended(&served(1, 2 * S), None);
        assert_eq!(broken(&checker), Some(Invariant::PermanentHidden));
    }

    #[test]
    fn after_the_bound_an_error_and_past_its_deadline_a_wait_are_violations() {
        let (_, mut checker) = fresh(false);
        checker.call_ended(&failed(9 * S), Some(10 * S));
        checker.waiting(0, 0, S, 5 * S, 5 * S);
        assert_eq!(broken(&checker), None);
        checker.call_ended(&failed(10 * S), Some(10 * S));
        assert_eq!(broken(&checker), Some(Invariant::NoTokenWithinBound));
        let (_, mut checker) = fresh(false);
        checker.waiting(0, 0, S, 5 * S + Duration::from_millis(1), 5 * S);
        assert_eq!(broken(&checker), Some(Invariant::Wedge));
    }

    #[test]
    fn a_replica_that_dies_orphans_only_what_it_held_unsaved() {
        let (_, mut checker) = fresh(true);
        checker.add_replica(1);
        for (rt, replica) in [(2, 0), (3, 0), (4, 1)] {
            checker.refresh_issued(rt, Some(replica));
            checker.refresh_save_returned(rt, Some(replica), false, false);
        }
        // r3 was saved once; a later failed save does not unsave it.
        checker.refresh_save_returned(3, Some(0), true, false);
        checker.refresh_save_returned(3, Some(0), false, false);
        checker.replica_died(0);
        checker.stale_refresh(1, &[2], Some(1));
        assert_eq!(
            (broken(&checker), checker.stats.excused_orphaned),
            (None, 1)
        );
        checker.stale_refresh(2, &[3], Some(1));
        assert_eq!(
            broken(&checker),
            Some(Invariant::RotatedRefreshToken),
            "r3 was saved"
        );
        let (_, mut checker) = fresh(true);
        checker.add_replica(1);
        checker.refresh_issued(4, Some(1));
        checker.refresh_save_returned(4, Some(1), false, false);
        checker.replica_died(0);
        checker.stale_refresh(3, &[4], Some(0));
        assert_eq!(
            broken(&checker),
            Some(Invariant::RotatedRefreshToken),
            "r1 is alive"
        );
    }

    #[test]
    fn only_the_runtime_a_fetch_ran_on_orphans_its_unsaved_refresh_token() {
        let (_, mut checker) = fresh(true);
        checker.refresh_issued(2, Some(0));
        checker.refresh_delivered(2, Some(4));
        checker.host_died(5);
        checker.stale_refresh(1, &[2], Some(0));
        assert_eq!(broken(&checker), Some(Invariant::RotatedRefreshToken));
        let (_, mut checker) = fresh(true);
        checker.refresh_issued(2, None);
        checker.refresh_orphaned(2);
        checker.stale_refresh(1, &[2], None);
        assert_eq!(
            (broken(&checker), checker.stats.excused_orphaned),
            (None, 1)
        );
    }

    #[test]
    fn a_replica_fetching_after_releasing_its_lease_breaks_single_flight() {
        let (_, mut checker) = fresh(true);
        checker.lease_taken(0, 7, false);
        checker.lease_dropped(0, 6);
        checker.attempt_started(0);
        checker.attempt_ended(0);
        assert_eq!(
            broken(&checker),
            None,
            "another epoch's drop leaves epoch 7 held"
        );
        checker.lease_dropped(0, 7);
        checker.lease_refused(0);
        checker.attempt_started(0);
        assert_eq!(broken(&checker), Some(Invariant::SingleFlight));
    }

    #[test]
    fn a_restarted_replica_holds_no_token() {
        let (_, mut checker) = fresh(false);
        checker.issued(1, truth(100 * S));
        checker.call_ended(&served(1, S), None);
        checker.replica_died(0);
        checker.call_ended(&failed(2 * S), None);
        assert_eq!(broken(&checker), None);
    }

    #[test]
    fn stats_add_every_count_and_invariants_have_distinct_names() {
        let one = Stats {
            attempts: 1,
            leaseless_attempts: 1,
            epochs: 1,
            takeovers: 1,
            lost_writes: 1,
            excused_lost: 1,
            excused_spoiled: 1,
            excused_orphaned: 1,
            excused_abandoned: 1,
            excused_lease_lost: 1,
            store_restarts: 1,
            excused_superseded: 1,
            calls_ok: 1,
            calls_err: 1,
            injected_panics: 1,
            caches_built: 1,
        };
        let mut sum = one.clone();
        sum.add(&one);
        sum.add(&one);
        let three = Stats {
            attempts: 3,
            leaseless_attempts: 3,
            epochs: 3,
            takeovers: 3,
            lost_writes: 3,
            excused_lost: 3,
            excused_spoiled: 3,
            excused_orphaned: 3,
            excused_abandoned: 3,
            excused_lease_lost: 3,
            store_restarts: 3,
            excused_superseded: 3,
            calls_ok: 3,
            calls_err: 3,
            injected_panics: 3,
            caches_built: 3,
        };
        assert_eq!(sum, three);
        let names: std::collections::BTreeSet<String> =
            Invariant::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(names.len(), Invariant::ALL.len());
        assert!(
            names.iter().all(|n| n.len() > 4 && !n.contains(' ')),
            "{names:?}"
        );
    }

    #[test]
    fn attempts_one_after_another_in_one_process_are_not_two_at_once() {
        let (_, mut checker) = fresh(false);
        for _ in 0..3 {
            checker.attempt_started(0);
            checker.attempt_ended(0);
        }
        assert_eq!((broken(&checker), checker.stats.attempts), (None, 3));
    }

    #[test]
    fn an_error_once_the_held_token_is_no_longer_valid_with_slack_is_no_displacement() {
        let ms = Duration::from_millis;
        let (_, mut checker) = fresh(false);
        checker.issued(1, truth(10 * S));
        checker.call_ended(&served(1, S), None);
        checker.call_ended(&failed(ms(9_980)), None);
        assert_eq!(broken(&checker), None, "within the slack of its expiry");
        checker.call_ended(&failed(ms(9_979)), None);
        assert_eq!(broken(&checker), Some(Invariant::TransientDisplacedValid));
    }

    #[test]
    fn a_forward_wall_jump_shortens_the_held_tokens_life_by_its_size() {
        let ms = Duration::from_millis;
        let (clock, mut checker) = fresh(false);
        checker.issued(1, truth(10 * S));
        checker.call_ended(&served(1, S), None);
        clock.set_outside(2 * S);
        clock.jump_wall(4_000);
        checker.call_ended(&failed(ms(5_980)), None);
        assert_eq!(broken(&checker), None);
        checker.call_ended(&failed(ms(5_979)), None);
        assert_eq!(broken(&checker), Some(Invariant::TransientDisplacedValid));
    }

    #[test]
    fn the_permanent_window_ends_at_its_backoff() {
        let (_, mut checker) = fresh(false);
        checker.issued(1, truth(100 * S));
        checker.refused(0, 5, 3 * S);
        checker.call_ended(&served(1, 3 * S), None);
        assert_eq!(broken(&checker), None);
    }

    #[test]
    fn only_the_injected_panic_is_not_a_violation() {
        let (_, mut checker) = fresh(false);
        checker.panicked(&format!("{} at src/provider.rs:1", crate::panics::INJECTED));
        assert_eq!((broken(&checker), checker.stats.injected_panics), (None, 1));
        checker.panicked("overflow when adding duration to instant");
        assert_eq!(broken(&checker), Some(Invariant::Panic));
    }
}
