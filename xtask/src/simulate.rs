//! `cargo xtask simulate [--seeds N] [--steps M] [--seed S] [--subjects] [--trace]`: the
//! deterministic simulation of the token cache and the fleet
//! (`crates/payauth-sim`), built in release. It prints one line,
//! `simulated <steps> steps over <seeds> seeds: <V> invariant violations`,
//! then each violation with its seed, the last events and the command that
//! replays it; it fails when it found one.

use std::path::Path;
use std::process::Command;

pub(crate) fn run(root: &Path, args: &[&str]) -> Result<(), String> {
    let status = Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "run",
            "--release",
            "--quiet",
            "--package",
            "payauth-sim",
            "--",
        ])
        .args(args)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("the simulation found invariant violations (or could not run)".to_owned())
    }
}
