//! Runtimes in lockstep: each simulated process (a replica's main runtime,
//! a second runtime sharing its cache, the operator) is a paused
//! current-thread tokio runtime, and one step runs each in turn for the
//! same stretch of simulated time, on this one thread.
//!
//! This is turmoil's host model (a paused runtime per host, each ticked by
//! `block_on(sleep(tick))`, a crash is dropping the runtime) without its
//! simulated network: the provider and the store are in-process models
//! here, which turmoil's network cannot carry.

use std::future::Future;
use std::time::Duration;

use tokio::runtime::{Builder, Runtime};

use crate::clock;

/// One simulated runtime.
pub(crate) struct Host {
    id: u32,
    rt: Runtime,
    /// The paused clock's reading when the host was made, and the
    /// simulated time then.
    origin: tokio::time::Instant,
    at: Duration,
}

impl Host {
    /// A runtime made at simulated time `now`.
    ///
    /// # Panics
    /// If tokio cannot build a current-thread runtime (out of resources).
    pub(crate) fn new(id: u32, now: Duration) -> Self {
        let rt = Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime");
        let origin = rt.block_on(async { tokio::time::Instant::now() });
        Self {
            id,
            rt,
            origin,
            at: now,
        }
    }

    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// Starts `future` on this runtime; it runs in the next step.
    pub(crate) fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        drop(self.rt.spawn(future));
    }

    /// Runs every task of this runtime for `span` of simulated time: its
    /// paused clock jumps from timer to timer and ends exactly `span` on.
    pub(crate) fn run_for(&self, span: Duration) {
        clock::within(self.id, self.origin, self.at, || {
            self.rt
                .block_on(async move { tokio::time::sleep(span).await });
        });
    }

    /// Shuts the runtime down: every task on it (a fetch, a lease
    /// heartbeat, a waiting caller) is dropped where it stands.
    pub(crate) fn shut_down(self) {
        let Self { id, rt, origin, at } = self;
        clock::within(id, origin, at, move || drop(rt));
    }
}
