//! The simulation as CI runs it: reproducible, able to fail, and clean on
//! a fixed cache.

use payauth_sim::{Invariant, Summary, describe, run_seed};

#[test]
fn the_same_seed_gives_the_same_trace_byte_for_byte() {
    for seed in [1, 2, 13] {
        let first = run_seed(seed, 300, true);
        let second = run_seed(seed, 300, true);
        let (a, b) = (first.full_trace.unwrap(), second.full_trace.unwrap());
        assert!(a.len() > 100, "seed {seed}: a trace of {} events", a.len());
        assert_eq!(a, b, "seed {seed}");
        assert_eq!(first.trace_hash, second.trace_hash);
        assert_eq!(first.violation, second.violation);
        assert_eq!(first.steps, second.steps);
    }
}

#[test]
fn different_seeds_give_different_runs() {
    assert_ne!(
        run_seed(1, 200, false).trace_hash,
        run_seed(2, 200, false).trace_hash
    );
}

fn summary(seeds: std::ops::Range<u64>, steps: u64) -> Summary {
    let mut summary = Summary::default();
    for seed in seeds {
        summary.add(run_seed(seed, steps, false));
    }
    summary
}

/// The proof that the simulation can fail: on the cache as it is on `main`
/// (defects #15 and #19 open), a small budget finds every class it can
/// reach. Compiled out once `cache-fixes` is on.
#[cfg(not(feature = "cache-fixes"))]
#[test]
fn on_the_unfixed_cache_the_simulation_finds_each_defect_class() {
    let summary = summary(0..40, 1000);
    let found: std::collections::BTreeSet<Invariant> = summary
        .violations
        .iter()
        .filter_map(|r| r.violation.as_ref().map(|v| v.invariant))
        .collect();
    for expected in [
        Invariant::ExpiredToken,
        Invariant::Panic,
        Invariant::RotatedRefreshToken,
        // TransientDisplacedValid is gone since a bare 401/403 is
        // `Refused`, no verdict (#15.4): seeds 23 and 146 caught it before.
        Invariant::NoTokenWithinBound,
    ] {
        assert!(
            found.contains(&expected),
            "{expected} not found; found {found:?}"
        );
    }
}

/// CI's short budget. Ignored until the cache fixes (#15, #19) land: then
/// turn on the `cache-fixes` feature of payauth-sim (make it a default
/// feature in `crates/payauth-sim/Cargo.toml`), which also switches
/// `src/cache_api.rs` to the fixed API.
#[test]
#[cfg_attr(
    not(feature = "cache-fixes"),
    ignore = "the cache fixes of #15 and #19 have not landed; turn on payauth-sim's cache-fixes feature"
)]
fn a_short_simulation_of_many_seeds_finds_no_violations() {
    let summary = summary(0..32, 800);
    let shown: String = summary.violations.iter().map(describe).collect();
    assert!(summary.violations.is_empty(), "{}\n{shown}", summary.line());
}
