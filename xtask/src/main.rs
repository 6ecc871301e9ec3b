//! Project automation for the payauth workspace.
//!
//! - `cargo xtask codegen` regenerates every provider crate's
//!   `src/generated.rs` from `specs/`.
//! - `cargo xtask codegen --check` regenerates in memory and fails, naming the
//!   file, when a checked-in file differs.
//! - `cargo xtask test` runs the whole test suite (the README's test command).
//! - `cargo xtask bench` runs the benchmarks, each a ratio to a baseline
//!   measured in the same run.
//! - `cargo xtask simulate` runs the deterministic simulation of the token
//!   cache and the fleet.

mod bench;
mod codegen;
mod simulate;
mod sources;
mod specs;
mod test;
mod validate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  codegen [--check]   regenerate crates/*/src/generated.rs from specs/
                      (--check: fail if a checked-in file differs)
  test                run the whole test suite
  bench [NAME…]       run the benchmarks (all, or the named ones: cached-get,
                      herd, file-store, fleet, cold-fetch, build-cost)
                      and write target/bench/summary.json and summary.md
  simulate [--seeds N] [--steps M] [--seed S] [--subjects] [--trace]
                      the deterministic simulation of the cache and the fleet
                      (N seeds from S, M steps with faults each, then calm;
                      --seed S alone replays one seed; --trace prints it all)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let root = workspace_root();
    let result = match args.as_slice() {
        ["codegen"] => codegen::run(&root, codegen::Mode::Write),
        ["codegen", "--check"] => codegen::run(&root, codegen::Mode::Check),
        ["test", rest @ ..] => test::run(&root, rest),
        ["bench", only @ ..] => bench::run(&root, only),
        ["simulate", rest @ ..] => simulate::run(&root, rest),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}
