//! [`Clock`]: where the cache and tokens read the time, so tests never sleep.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// A source of time: a monotonic instant for expiry, and wall-clock time for
/// what is persisted.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic now, for expiry decisions.
    fn now(&self) -> Instant;
    /// Wall-clock now, for persisted expiry.
    fn system_now(&self) -> SystemTime;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn system_now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to, for tests.
///
/// ```
/// use std::time::Duration;
/// use payauth_core::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(clock.now() - start, Duration::from_secs(60));
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<(Instant, SystemTime)>,
}

impl ManualClock {
    /// A clock standing at the real now.
    #[must_use]
    pub fn new() -> Self {
        Self {
            now: Mutex::new((Instant::now(), SystemTime::now())),
        }
    }

    /// Moves both readings forward by `by` (not at all where that is past
    /// what the platform's clocks can represent).
    pub fn advance(&self, by: Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let (Some(at), Some(system)) = (now.0.checked_add(by), now.1.checked_add(by)) {
            *now = (at, system);
        }
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.now.lock().map_or_else(|p| p.into_inner().0, |n| n.0)
    }

    fn system_now(&self) -> SystemTime {
        self.now.lock().map_or_else(|p| p.into_inner().1, |n| n.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_a_manual_clock_past_what_it_can_hold_is_no_panic() {
        let clock = ManualClock::new();
        let before = clock.now();
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), before, "left where it was");
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now() - before, Duration::from_secs(1));
    }
}
