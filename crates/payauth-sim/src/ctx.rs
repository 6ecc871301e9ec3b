//! What every model of one run shares: the clock, the seeded generator, the
//! trace, the fault knobs, the checker and the activity the driver steps by.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::check::Checker;
use crate::clock::SimClock;
use crate::rng::Rng;
use crate::trace::Trace;

/// The fault knobs in force; the world turns them on and off.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults {
    /// Chance that one provider request meets a fault.
    pub(crate) provider: f64,
    /// Chance that one store call meets a fault.
    pub(crate) store: f64,
    /// Chance that the downstream API answers 401 to a valid token.
    pub(crate) downstream_401: f64,
    /// Until when the provider answers every request with a 503.
    pub(crate) outage_until: Duration,
    /// Until when the provider refuses the client (a genuine
    /// `invalid_client`: the credentials were revoked).
    pub(crate) revoked_until: Duration,
    /// Until when the downstream API answers 401 to every token.
    pub(crate) storm_until: Duration,
    /// Per replica: until when it cannot reach the store.
    pub(crate) partitioned_until: Vec<Duration>,
}

/// Calls in progress in the models, for the driver's choice of step.
#[derive(Debug, Default)]
struct Activity {
    /// Provider and store calls in progress that will end by themselves.
    busy: u64,
    /// Calls that ended, ever.
    ended: u64,
}

/// The shared context of one run.
pub(crate) struct Ctx {
    pub(crate) clock: Arc<SimClock>,
    rng: Mutex<Rng>,
    trace: Mutex<Trace>,
    faults: Mutex<Faults>,
    check: Mutex<Checker>,
    activity: Mutex<Activity>,
    seq: AtomicU64,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Ctx {
    pub(crate) fn new(seed: u64, keep_full_trace: bool, fleet: bool) -> Arc<Self> {
        let clock = Arc::new(SimClock::new());
        let checker = Checker::new(Arc::clone(&clock), fleet);
        Arc::new(Self {
            clock,
            rng: Mutex::new(Rng::new(seed)),
            trace: Mutex::new(Trace::new(keep_full_trace)),
            faults: Mutex::new(Faults::default()),
            check: Mutex::new(checker),
            activity: Mutex::new(Activity::default()),
            seq: AtomicU64::new(0),
        })
    }

    pub(crate) fn now(&self) -> Duration {
        self.clock.sim_now()
    }

    /// The next number in the order things happened.
    pub(crate) fn seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn rng(&self) -> MutexGuard<'_, Rng> {
        lock(&self.rng)
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    pub(crate) fn check(&self) -> MutexGuard<'_, Checker> {
        lock(&self.check)
    }

    pub(crate) fn trace(&self) -> MutexGuard<'_, Trace> {
        lock(&self.trace)
    }

    /// Adds `event` to the trace at the current simulated time.
    pub(crate) fn log(&self, event: &str) {
        let now = self.now();
        self.trace().add(now, event);
    }

    /// Marks a model call in progress until the guard drops.
    pub(crate) fn busy(self: &Arc<Self>) -> Busy {
        lock(&self.activity).busy += 1;
        Busy {
            ctx: Some(Arc::clone(self)),
        }
    }

    /// Model calls in progress, and how many ever ended.
    pub(crate) fn activity(&self) -> (u64, u64) {
        let activity = lock(&self.activity);
        (activity.busy, activity.ended)
    }
}

/// A model call in progress (see [`Ctx::busy`]).
pub(crate) struct Busy {
    ctx: Option<Arc<Ctx>>,
}

impl Busy {
    /// The call will never end by itself (a hung answer): it no longer
    /// keeps the driver stepping finely.
    pub(crate) fn hang(&mut self) {
        if let Some(ctx) = self.ctx.take() {
            lock(&ctx.activity).busy -= 1;
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(ctx) = self.ctx.take() {
            let mut activity = lock(&ctx.activity);
            activity.busy -= 1;
            activity.ended += 1;
        }
    }
}
