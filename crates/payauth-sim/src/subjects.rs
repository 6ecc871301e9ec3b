//! The many-subjects mode: one process holding a token per customer in a
//! [`Subjects`] set much smaller than its customers, so eviction (by
//! capacity and by time to idle, on the paused clock) happens all the
//! time, while the store fails now and then (an evicted subject's save
//! included) and callers keep the caches they were handed across awaits.
//!
//! The provider keeps one rotating refresh-token lineage per subject: a
//! refresh with anything but the subject's latest refresh token is
//! refused. Checked at every step, against the provider's own record:
//! - **no token served for another subject** ([`Invariant::SubjectCrossed`]):
//!   the cache handed out for key K says K, the token it serves was issued
//!   for K, and a refresh for K presents K's refresh token;
//! - **no rotated refresh token lost to an eviction**
//!   ([`Invariant::LostToEviction`]): a subject's latest refresh token is
//!   in the store, or a cache of that subject is still alive to hold it
//!   (every cache the factory built is counted until it drops);
//! - **no stale refresh token presented** ([`Invariant::RotatedRefreshToken`]);
//! - at the end, faults off, `flush()` returns `Ok` and then, every cache
//!   dropped, the store holds every subject's latest refresh token
//!   ([`Invariant::LostAfterFlush`]).
//!
//! **Replay is not byte for byte here.** A seed fixes the setup, the
//! faults' odds and the callers' schedule, but `Subjects` hashes keys with
//! a random `RandomState` (its eviction order within a shard, and the
//! order it saves evicted subjects in, follow the hash), so two runs of a
//! seed may interleave saves differently; a failing seed fails again
//! within a few replays, not always at the first.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use payauth_core::subjects::Subjects;
use payauth_core::{
    AccessToken, BoxFuture, Clock, Error, ErrorKind, Issued, SaveIf, Secret, StoredToken,
    TokenCache, TokenSource, TokenStore,
};

use crate::check::{Invariant, Stats, Violation};
use crate::clock::SimClock;
use crate::ctx::lock;
use crate::driver::Host;
use crate::provider::number;
use crate::rng::Rng;
use crate::trace::Trace;
use crate::world::SeedReport;

/// One step of simulated time.
const STEP: Duration = Duration::from_millis(200);
/// How long the end runs callers out, faults off, before the flush.
const DRAIN: Duration = Duration::from_secs(30);

/// What one seed of this mode decides before the run.
#[derive(Debug, Clone)]
struct Setup {
    subjects: u32,
    capacity: usize,
    time_to_idle: Option<Duration>,
    lifetime: Duration,
    callers: usize,
    store_faults: f64,
    provider_faults: f64,
    /// Whether a customer without a refresh token (its cache could not
    /// read the store) logs in again (a new lineage), or is refused.
    logins: bool,
}

impl Setup {
    fn draw(rng: &mut Rng) -> Self {
        let subjects = u32::try_from(rng.range(4, 12)).unwrap_or(4);
        Self {
            subjects,
            capacity: usize::try_from(rng.range(1, 4)).unwrap_or(1),
            time_to_idle: [
                None,
                Some(Duration::from_secs(2)),
                Some(Duration::from_secs(10)),
                Some(Duration::from_secs(60)),
            ][rng.index(4)],
            lifetime: Duration::from_secs([30, 60, 300][rng.index(3)]),
            callers: usize::try_from(rng.range(2, 6)).unwrap_or(2),
            store_faults: [0.0, 0.1, 0.3, 0.6][rng.index(4)],
            provider_faults: [0.0, 0.1, 0.3][rng.index(3)],
            logins: rng.chance(0.5),
        }
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "subjects: {} subjects, capacity {}, time to idle {:?}, lifetime {} s, {} callers, faults {}/{}, {}",
            self.subjects,
            self.capacity,
            self.time_to_idle.map(|d| d.as_secs()),
            self.lifetime.as_secs(),
            self.callers,
            self.provider_faults,
            self.store_faults,
            if self.logins {
                "logins"
            } else {
                "refresh only"
            }
        )
    }
}

/// The provider's record: per subject, its latest refresh token; per
/// token, the subject it was issued for.
#[derive(Debug, Default)]
struct Ledger {
    latest: BTreeMap<u32, u64>,
    refresh_of: BTreeMap<u64, u32>,
    access_of: BTreeMap<u64, u32>,
    next: u64,
}

/// What the run shares: clock, randomness, trace, the provider's ledger,
/// the store, the live caches and the first violation.
struct Model {
    clock: Arc<SimClock>,
    rng: Mutex<Rng>,
    trace: Mutex<Trace>,
    ledger: Mutex<Ledger>,
    store: Mutex<BTreeMap<String, StoredToken>>,
    store_faults: Mutex<f64>,
    provider_faults: Mutex<f64>,
    /// Caches the factory built and not yet dropped, per subject.
    live: Mutex<BTreeMap<u32, u32>>,
    violation: Mutex<Option<Violation>>,
    stats: Mutex<Stats>,
    lifetime: Duration,
    logins: bool,
}

impl Model {
    fn log(&self, event: &str) {
        let now = self.clock.sim_now();
        lock(&self.trace).add(now, event);
    }

    fn violate(&self, invariant: Invariant, detail: String) {
        self.log(&format!("VIOLATION {invariant}: {detail}"));
        let mut violation = lock(&self.violation);
        if violation.is_none() {
            *violation = Some(Violation {
                invariant,
                at: self.clock.sim_now(),
                detail,
            });
        }
    }

    fn chance(&self, p: &Mutex<f64>) -> bool {
        let p = *lock(p);
        p > 0.0 && lock(&self.rng).chance(p)
    }

    fn latency(&self) -> Duration {
        lock(&self.rng).millis(1, 1_500)
    }

    /// Issues a token for `subject` (a new lineage when `login`).
    fn issue(&self, subject: u32) -> Result<AccessToken, Error> {
        let (at, rt) = {
            let mut ledger = lock(&self.ledger);
            ledger.next += 1;
            let at = ledger.next;
            ledger.next += 1;
            let rt = ledger.next;
            ledger.access_of.insert(at, subject);
            ledger.refresh_of.insert(rt, subject);
            ledger.latest.insert(subject, rt);
            (at, rt)
        };
        Ok(AccessToken::new(
            Secret::new(format!("at-{at}")),
            "Bearer",
            Issued::now(&*self.clock),
            self.lifetime,
        )?
        .with_refresh_token(Some(Secret::new(format!("rt-{rt}")))))
    }

    /// Store key of `subject`.
    fn key(subject: u32) -> String {
        format!("sim:s{subject}")
    }

    /// The invariant of every step: each subject's latest refresh token is
    /// stored or held by a live cache of it.
    fn check_nothing_lost(&self, invariant: Invariant) {
        let latest = lock(&self.ledger).latest.clone();
        let live = lock(&self.live).clone();
        let store = lock(&self.store);
        for (subject, rt) in latest {
            let stored = store
                .get(&Self::key(subject))
                .and_then(|t| t.refresh_token.as_ref())
                .and_then(|s| number(s.as_secret(), "rt-"));
            if stored != Some(rt) && live.get(&subject).copied().unwrap_or(0) == 0 {
                drop(store);
                self.violate(
                    invariant,
                    format!(
                        "s{subject}'s latest refresh token r{rt} is neither stored (the store holds {}) nor held by a live cache",
                        stored.map_or("none".to_owned(), |s| format!("r{s}"))
                    ),
                );
                return;
            }
        }
    }
}

/// A store in memory whose every call may fail, after a while.
struct FaultyStore(Arc<Model>);

impl FaultyStore {
    async fn call(&self, what: &str, key: &str) -> Result<(), Error> {
        tokio::time::sleep(self.0.latency()).await;
        if self.0.chance(&self.0.store_faults) {
            self.0.log(&format!("store {what} {key} fails"));
            return Err(Error::new(ErrorKind::Store).with_description("injected store fault"));
        }
        Ok(())
    }

    fn record(&self, key: &str, token: &StoredToken) {
        let rt = token
            .refresh_token
            .as_ref()
            .and_then(|s| number(s.as_secret(), "rt-"));
        self.0
            .log(&format!("store holds {key}: r{}", rt.unwrap_or(0)));
    }
}

impl TokenStore for FaultyStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        Box::pin(async move {
            self.call("load", key).await?;
            Ok(lock(&self.0.store).get(key).cloned())
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.call("save", key).await?;
            lock(&self.0.store).insert(key.to_owned(), token.clone());
            self.record(key, token);
            Ok(())
        })
    }

    fn clear<'a>(
        &'a self,
        key: &'a str,
        if_holds: Option<&'a Secret>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.call("clear", key).await?;
            let mut store = lock(&self.0.store);
            if store.get(key).is_some_and(|t| t.is_cleared_by(if_holds)) {
                store.remove(key);
                drop(store);
                self.0.log(&format!("store clears {key}"));
            }
            Ok(())
        })
    }

    fn save_if<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
        condition: SaveIf<'a>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            self.call("save", key).await?;
            let mut store = lock(&self.0.store);
            if !condition.allows(store.get(key), token) {
                return Ok(false);
            }
            store.insert(key.to_owned(), token.clone());
            drop(store);
            self.record(key, token);
            Ok(true)
        })
    }
}

/// One subject's flow: refreshes with the subject's refresh token; counted
/// live until its cache drops it.
struct SubjectSource {
    model: Arc<Model>,
    subject: u32,
}

impl SubjectSource {
    fn new(model: &Arc<Model>, subject: u32) -> Self {
        *lock(&model.live).entry(subject).or_insert(0) += 1;
        Self {
            model: Arc::clone(model),
            subject,
        }
    }
}

impl Drop for SubjectSource {
    fn drop(&mut self) {
        if let Some(n) = lock(&self.model.live).get_mut(&self.subject) {
            *n = n.saturating_sub(1);
        }
    }
}

impl TokenSource for SubjectSource {
    fn fetch<'a>(
        &'a self,
        previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        let presented = previous
            .and_then(AccessToken::refresh_token)
            .and_then(|s| number(s, "rt-"));
        Box::pin(async move {
            let model = &self.model;
            let s = self.subject;
            tokio::time::sleep(model.latency()).await;
            lock(&model.stats).attempts += 1;
            if model.chance(&model.provider_faults) {
                model.log(&format!("s{s} fetch fails (provider 503)"));
                return Err(
                    Error::new(ErrorKind::Unavailable).with_description("injected provider fault")
                );
            }
            let Some(rt) = presented else {
                // A first use with the store down.
                if !model.logins {
                    model.log(&format!("s{s} has no refresh token: refused"));
                    return Err(Error::new(ErrorKind::InvalidGrant)
                        .with_description("no refresh token: the customer must log in again"));
                }
                model.log(&format!("s{s} logs in"));
                return model.issue(s);
            };
            let (owner, latest) = {
                let ledger = lock(&model.ledger);
                (
                    ledger.refresh_of.get(&rt).copied(),
                    ledger.latest.get(&s).copied(),
                )
            };
            if owner != Some(s) {
                model.violate(
                    Invariant::SubjectCrossed,
                    format!("s{s} refreshed with r{rt}, issued for {owner:?}"),
                );
                return Err(Error::new(ErrorKind::InvalidGrant));
            }
            if latest != Some(rt) {
                model.violate(
                    Invariant::RotatedRefreshToken,
                    format!("s{s} refreshed with r{rt}, rotated away for {latest:?}"),
                );
                return Err(Error::new(ErrorKind::InvalidGrant));
            }
            let token = model.issue(s)?;
            model.log(&format!(
                "s{s} refreshed r{rt}: {}",
                token.secret().expose_secret()
            ));
            Ok(token)
        })
    }

    fn name(&self) -> &'static str {
        "payauth-sim subject"
    }
}

/// One caller: asks for a random subject (a few of them hot), keeps the
/// cache it was handed a while, checks what it was served.
async fn caller(
    model: Arc<Model>,
    set: Subjects<u32>,
    stop: Arc<AtomicBool>,
    n: u32,
    subjects: u32,
) {
    let last = u64::from(subjects.max(1) - 1);
    while !stop.load(Ordering::Relaxed) {
        let (gap, subject, hold) = {
            let mut rng = lock(&model.rng);
            // Half the calls go to the two hot subjects.
            let subject = if rng.chance(0.5) {
                rng.range(0, last.min(1))
            } else {
                rng.range(0, last)
            };
            (
                rng.exp_millis(Duration::from_millis(800)),
                u32::try_from(subject).unwrap_or(0),
                rng.chance(0.3).then(|| rng.millis(100, 5_000)),
            )
        };
        tokio::time::sleep(gap).await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let handed = set.get(&subject);
        if *handed.key() != subject {
            model.violate(
                Invariant::SubjectCrossed,
                format!("c{n} asked for s{subject}, was handed s{}", handed.key()),
            );
            return;
        }
        match handed.token().await {
            Ok(token) => {
                let id = number(token.secret(), "at-");
                let owner = id.and_then(|id| lock(&model.ledger).access_of.get(&id).copied());
                lock(&model.stats).calls_ok += 1;
                lock(&model.trace).add_quiet(
                    model.clock.sim_now(),
                    &format!("c{n} got t{} for s{subject}", id.unwrap_or(0)),
                );
                if owner != Some(subject) {
                    model.violate(
                        Invariant::SubjectCrossed,
                        format!(
                            "c{n} asked for s{subject}, was served t{}, issued for {owner:?}",
                            id.unwrap_or(0)
                        ),
                    );
                    return;
                }
            }
            Err(error) => {
                lock(&model.stats).calls_err += 1;
                model.log(&format!("c{n} s{subject}: {error}"));
            }
        }
        if let Some(hold) = hold {
            tokio::time::sleep(hold).await;
        }
        drop(handed);
    }
}

/// The end of a run, faults off: `flush()` must return `Ok`, and then, every
/// cache dropped, the store must hold every subject's latest refresh token.
fn flush_and_check(model: &Model, host: &Host, set: Subjects<u32>, advance: &mut impl FnMut()) {
    let flushed: Arc<Mutex<Option<Result<(), Error>>>> = Arc::default();
    let out = Arc::clone(&flushed);
    let flushing = set.clone();
    host.spawn(async move {
        let result = flushing.flush().await;
        *lock(&out) = Some(result);
    });
    for _ in 0..10_000 {
        if lock(&flushed).is_some() {
            break;
        }
        advance();
    }
    drop(set);
    // Every cache drops with the runtime's tasks (the callers' and the
    // eviction saves'); the set's last clone goes with them.
    match lock(&flushed).take() {
        Some(Ok(())) => {
            model.log("flush: Ok");
            // Checked once the runtime is gone, below.
        }
        Some(Err(error)) => model.violate(
            Invariant::LostAfterFlush,
            format!("flush() failed with the store healthy: {error}"),
        ),
        None => model.violate(
            Invariant::LostAfterFlush,
            "flush() never returned".to_owned(),
        ),
    }
}

/// Runs one seed of the many-subjects mode: `steps` steps with faults,
/// then callers stop, faults stop, `flush()`, every cache dropped.
pub(crate) fn run(seed: u64, steps: u64, keep_full_trace: bool) -> SeedReport {
    let mut rng = Rng::new(seed ^ 0x5B_1EC7);
    let setup = Setup::draw(&mut rng);
    let clock = Arc::new(SimClock::new());
    let model = Arc::new(Model {
        clock: Arc::clone(&clock),
        rng: Mutex::new(rng),
        trace: Mutex::new(Trace::new(keep_full_trace)),
        ledger: Mutex::default(),
        store: Mutex::default(),
        store_faults: Mutex::new(setup.store_faults),
        provider_faults: Mutex::new(setup.provider_faults),
        live: Mutex::default(),
        violation: Mutex::default(),
        stats: Mutex::default(),
        lifetime: setup.lifetime,
        logins: setup.logins,
    });
    model.log(&format!("setup: {setup}"));
    // Every customer logged in once: their tokens are in the store.
    for s in 0..setup.subjects {
        let token = model.issue(s).expect("a token");
        lock(&model.store).insert(Model::key(s), StoredToken::from_token(&token));
    }
    let host = Host::new(1, Duration::ZERO);
    let store: Arc<dyn TokenStore> = Arc::new(FaultyStore(Arc::clone(&model)));
    let factory_model = Arc::clone(&model);
    let sim_clock = Arc::clone(&clock) as Arc<dyn Clock>;
    let cache_clock = Arc::clone(&sim_clock);
    let set = Subjects::builder(move |s: &u32| {
        factory_model.log(&format!("s{s} cache built"));
        lock(&factory_model.stats).caches_built += 1;
        TokenCache::builder(SubjectSource::new(&factory_model, *s))
            .clock(Arc::clone(&cache_clock))
            .store(Arc::clone(&store), Model::key(*s))
            .build()
    })
    .capacity(setup.capacity)
    .time_to_idle(setup.time_to_idle)
    .clock(sim_clock)
    .build();
    let stopping = Arc::new(AtomicBool::new(false));
    for n in 0..setup.callers {
        host.spawn(caller(
            Arc::clone(&model),
            set.clone(),
            Arc::clone(&stopping),
            u32::try_from(n).unwrap_or(0),
            setup.subjects,
        ));
    }
    let mut now = Duration::ZERO;
    let mut taken = 0;
    let mut advance = || {
        host.run_for(STEP);
        now += STEP;
        clock.set_outside(now);
        taken += 1;
    };
    for _ in 0..steps {
        if lock(&model.violation).is_some() {
            break;
        }
        advance();
        model.check_nothing_lost(Invariant::LostToEviction);
    }
    // The end: callers stop, faults stop, what is in flight finishes.
    stopping.store(true, Ordering::Relaxed);
    *lock(&model.store_faults) = 0.0;
    *lock(&model.provider_faults) = 0.0;
    for _ in 0..DRAIN.as_millis() / STEP.as_millis() {
        if lock(&model.violation).is_some() {
            break;
        }
        advance();
        model.check_nothing_lost(Invariant::LostToEviction);
    }
    if lock(&model.violation).is_none() {
        flush_and_check(&model, &host, set, &mut advance);
    } else {
        drop(set);
    }
    host.shut_down();
    if lock(&model.violation).is_none() {
        model.check_nothing_lost(Invariant::LostAfterFlush);
    }
    let violation = lock(&model.violation).clone();
    let stats = lock(&model.stats).clone();
    let mut trace = lock(&model.trace);
    SeedReport {
        seed,
        steps: taken,
        chaos_steps: steps,
        simulated: now,
        violation,
        trace_tail: trace.tail(),
        full_trace: trace.take_full(),
        trace_hash: trace.hash(),
        events: trace.count(),
        stats,
        setup: setup.to_string(),
    }
}
