//! The run's trace: every event, timestamped on the simulated timeline,
//! folded into a hash (two runs of one seed must agree byte for byte) and
//! kept in full or as its last lines, which are what a violation shows.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Duration;

/// How many of the last events a violation shows.
pub const TAIL: usize = 40;

/// The events of one run.
#[derive(Debug)]
pub(crate) struct Trace {
    tail: VecDeque<String>,
    full: Option<Vec<String>>,
    hash: u64,
    count: u64,
}

impl Trace {
    pub(crate) fn new(keep_full: bool) -> Self {
        Self {
            tail: VecDeque::with_capacity(TAIL + 1),
            full: keep_full.then(Vec::new),
            hash: 0xcbf2_9ce4_8422_2325,
            count: 0,
        }
    }

    /// Adds one event at `at`.
    pub(crate) fn add(&mut self, at: Duration, event: &str) {
        let line = self.record(at, event);
        if self.tail.len() == TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    /// Adds a routine event (a cached token served) at `at`: hashed and
    /// kept in the full trace, left out of the tail a violation shows.
    pub(crate) fn add_quiet(&mut self, at: Duration, event: &str) {
        self.record(at, event);
    }

    fn record(&mut self, at: Duration, event: &str) -> String {
        let mut line = String::with_capacity(event.len() + 12);
        let _ = write!(
            line,
            "{:>4}.{:03}s {event}",
            at.as_secs(),
            at.subsec_millis()
        );
        for byte in line.bytes().chain([b'\n']) {
            self.hash = (self.hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.count += 1;
        if let Some(full) = &mut self.full {
            full.push(line.clone());
        }
        line
    }

    pub(crate) fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }

    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    pub(crate) fn take_full(&mut self) -> Option<Vec<String>> {
        self.full.take()
    }
}
