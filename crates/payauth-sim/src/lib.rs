//! # payauth-sim
//!
//! A deterministic simulation of payauth's [`TokenCache`] and its fleet
//! protocol, driving the real cache (not a model of it) against models of
//! a provider and a shared store, under every fault they can show. A seed
//! decides everything, and the same seed replays the same run, event for
//! event (`cargo xtask simulate --seed S`).
//!
//! ## Design
//! - **Time.** Every simulated process is a paused current-thread tokio
//!   runtime (`driver`); one step runs each for the same span of
//!   simulated time, on one thread, so their clocks agree at every step
//!   and interleavings are decided by the seed alone. The caches read a
//!   [`Clock`](payauth_core::Clock) on that paused time; the wall clock is
//!   the same timeline plus an offset that jumps both ways.
//! - **Fleet.** Replicas, each a real `TokenCache` on a shared store model
//!   (or one process on a plain store), with callers on its main runtime
//!   and on a second runtime sharing the cache; a replica crashes (its
//!   runtimes dropped mid-fetch) and restarts empty; a second runtime shuts
//!   down alone.
//! - **Models.** `provider`: rotation, single-use codes, rate limits,
//!   revoked credentials and every fault of the sandbox, as the provider
//!   crates' errors; `store`: `payauth-redis`'s protocol with faults on
//!   any call; `login`: `payauth login` writing mid-run, as the CLI saves
//!   (over what it read, keeping a newer token stored meanwhile); `file`:
//!   a real `FileStore` in a directory of the seed's own, shared by the one
//!   process and the operator's login (half the one-process seeds), with
//!   disk faults.
//! - **Invariants** ([`check`]), checked at every step against the
//!   provider's own record, never the cache's view.
//! - **Phases.** Faults for the given number of steps, then calm: faults
//!   stop, and every call must get a token within a stated bound.
//!
//! - **Many subjects** ([`run_subjects_seed`], `--subjects`): one process
//!   holding a cache per customer in a `Subjects` set with a capacity far
//!   below its customers and a time to idle on the paused clock, store
//!   faults during eviction saves; no token is served for another subject
//!   and no rotated refresh token is lost to an eviction.
//!
//! Every use of the cache API is in `cache_api`, so a change of that API
//! is adapted in one place.
//!
//! ```
//! let report = payauth_sim::run_seed(7, 50, false);
//! assert_eq!(report.seed, 7);
//! assert!(report.steps >= 50);
//! ```

mod cache_api;
pub mod check;
mod clock;
mod ctx;
mod driver;
mod file;
mod login;
mod panics;
mod provider;
mod rng;
mod setup;
mod store;
mod subjects;
mod trace;
mod world;

use std::fmt::Write as _;

pub use check::{Invariant, Stats, Violation};
pub use trace::TAIL;
pub use world::SeedReport;

#[cfg(doc)]
use payauth_core::TokenCache;

/// Runs `seed` for `steps` steps with faults and then its calm phase;
/// `keep_full_trace` keeps every event in the report.
#[must_use]
pub fn run_seed(seed: u64, steps: u64, keep_full_trace: bool) -> SeedReport {
    world::World::new(seed, keep_full_trace).run(seed, steps)
}

/// Runs `seed` of the many-subjects mode (a
/// [`Subjects`](payauth_core::subjects::Subjects) set far smaller than its
/// customers, evicting all the time under store faults; see the
/// `subjects` module) for `steps` steps, then flushes it.
#[must_use]
pub fn run_subjects_seed(seed: u64, steps: u64, keep_full_trace: bool) -> SeedReport {
    subjects::run(seed, steps, keep_full_trace)
}

/// The outcome of many seeds.
#[derive(Debug, Default)]
pub struct Summary {
    /// Steps run over all seeds.
    pub steps: u64,
    /// Seeds run.
    pub seeds: u64,
    /// The reports of the seeds that found a violation.
    pub violations: Vec<SeedReport>,
    /// Counts kept apart, over all seeds.
    pub stats: Stats,
}

impl Summary {
    /// Adds one seed's report.
    pub fn add(&mut self, report: SeedReport) {
        self.steps += report.steps;
        self.seeds += 1;
        self.stats.add(&report.stats);
        if report.violation.is_some() {
            self.violations.push(report);
        }
    }

    /// `simulated <steps> steps over <seeds> seeds: <V> invariant violations`.
    #[must_use]
    pub fn line(&self) -> String {
        format!(
            "simulated {} steps over {} seeds: {} invariant violations",
            self.steps,
            self.seeds,
            self.violations.len()
        )
    }

    /// The counts kept apart, in one line.
    #[must_use]
    pub fn stats_line(&self) -> String {
        let s = &self.stats;
        format!(
            "upstream attempts {} ({} without the lease, store down), lease epochs {} ({} takeovers), \
             calls {} ok / {} err, injected panics {}, lost writes {}, rotated refresh tokens excused: \
             {} lost write, {} spoiled answer, {} died unsaved, {} abandoned by the fetch timeout, {} under a lease a store fault let expire, {} of a lineage a later login replaced; store restarts without persistence {}; subject caches built {}",
            s.attempts,
            s.leaseless_attempts,
            s.epochs,
            s.takeovers,
            s.calls_ok,
            s.calls_err,
            s.injected_panics,
            s.lost_writes,
            s.excused_lost,
            s.excused_spoiled,
            s.excused_orphaned,
            s.excused_abandoned,
            s.excused_lease_lost,
            s.excused_superseded,
            s.store_restarts,
            s.caches_built
        )
    }
}

/// A violation as shown to a person: the seed, what broke, the setup, the
/// last events, and the command that replays it.
#[must_use]
pub fn describe(report: &SeedReport) -> String {
    let mut out = String::new();
    if let Some(v) = &report.violation {
        let _ = writeln!(
            out,
            "seed {}: {} at {}.{:03} s: {}",
            report.seed,
            v.invariant,
            v.at.as_secs(),
            v.at.subsec_millis(),
            v.detail
        );
    }
    let _ = writeln!(out, "  setup: {}", report.setup);
    for line in &report.trace_tail {
        let _ = writeln!(out, "  | {line}");
    }
    let _ = writeln!(
        out,
        "  replay: cargo xtask simulate --seed {} --steps {}{}",
        report.seed,
        report.chaos_steps,
        if report.setup.starts_with("subjects:") {
            " --subjects"
        } else {
            ""
        }
    );
    out
}
