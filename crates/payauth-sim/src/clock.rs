//! Simulated time: the paused tokio clock of whichever runtime is running,
//! mapped onto one fleet timeline, and a wall clock that can jump.
//!
//! Every runtime of the simulation is paused and advanced in lockstep by
//! the driver ([`crate::driver`]), so "now" is the same timeline in all of
//! them at every step boundary; within a step each runtime's own paused
//! clock moves through its timers exactly (tokio's auto-advance). The wall
//! clock is that timeline plus an offset the simulation changes at will,
//! forwards and backwards, independently of the monotonic clock.

use std::cell::Cell;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use payauth_core::Clock;

thread_local! {
    /// The runtime being driven on this thread: its id, the tokio instant
    /// it was created at, and the simulated time of that instant.
    static CURRENT: Cell<Option<(u32, tokio::time::Instant, Duration)>> = const { Cell::new(None) };
}

/// Runs `f` as inside runtime `id`, whose paused clock read `origin` at
/// simulated time `at`.
pub(crate) fn within<R>(
    id: u32,
    origin: tokio::time::Instant,
    at: Duration,
    f: impl FnOnce() -> R,
) -> R {
    let previous = CURRENT.replace(Some((id, origin, at)));
    let out = f();
    CURRENT.set(previous);
    out
}

/// The id of the runtime being driven, if any.
pub(crate) fn current_runtime() -> Option<u32> {
    CURRENT.get().map(|(id, _, _)| id)
}

/// The wall clock's distance from the monotonic timeline, with its history
/// (every jump), in milliseconds.
#[derive(Debug, Default)]
struct Wall {
    offset_ms: i64,
    /// `(when, offset from then on)`, in order.
    history: Vec<(Duration, i64)>,
}

/// The simulation's [`Clock`], shared by every cache, model and check.
#[derive(Debug)]
pub(crate) struct SimClock {
    epoch: Instant,
    system_epoch: SystemTime,
    /// The timeline outside any runtime: the start of the current step.
    outside: Mutex<Duration>,
    wall: Mutex<Wall>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SimClock {
    pub(crate) fn new() -> Self {
        Self {
            // A day ahead, so that a token read back from the store can
            // place its issue time hours in the past on any platform.
            epoch: Instant::now() + Duration::from_secs(86_400),
            // A fixed wall epoch, so wall times are the same in every run.
            system_epoch: UNIX_EPOCH + Duration::from_secs(1_750_000_000),
            outside: Mutex::new(Duration::ZERO),
            wall: Mutex::new(Wall::default()),
        }
    }

    /// Simulated time since the start of the run, on the timeline.
    pub(crate) fn sim_now(&self) -> Duration {
        match CURRENT.get() {
            Some((_, origin, at)) => {
                at + tokio::time::Instant::now().saturating_duration_since(origin)
            }
            None => *lock(&self.outside),
        }
    }

    /// Moves the timeline outside runtimes to `to` (the driver, per step).
    pub(crate) fn set_outside(&self, to: Duration) {
        *lock(&self.outside) = to;
    }

    /// The wall clock's offset now, in milliseconds.
    pub(crate) fn wall_offset_ms(&self) -> i64 {
        lock(&self.wall).offset_ms
    }

    /// Jumps the wall clock by `by_ms` (negative: backwards).
    pub(crate) fn jump_wall(&self, by_ms: i64) {
        let now = self.sim_now();
        let mut wall = lock(&self.wall);
        wall.offset_ms = wall
            .offset_ms
            .saturating_add(by_ms)
            .clamp(-86_400_000, 86_400_000);
        let offset = wall.offset_ms;
        wall.history.push((now, offset));
    }

    /// The lowest and highest wall offsets in force at any time since
    /// `since`.
    pub(crate) fn offsets_since(&self, since: Duration) -> (i64, i64) {
        let wall = lock(&self.wall);
        let at_since = wall
            .history
            .iter()
            .rev()
            .find(|(when, _)| *when <= since)
            .map_or(0, |(_, offset)| *offset);
        wall.history
            .iter()
            .filter(|(when, _)| *when > since)
            .fold((at_since, at_since), |(lo, hi), (_, o)| {
                (lo.min(*o), hi.max(*o))
            })
    }
}

impl Clock for SimClock {
    fn now(&self) -> Instant {
        self.epoch + self.sim_now()
    }

    fn system_now(&self) -> SystemTime {
        let offset = self.wall_offset_ms();
        let base = self.system_epoch + self.sim_now();
        let by = Duration::from_millis(offset.unsigned_abs());
        if offset >= 0 { base + by } else { base - by }
    }
}
