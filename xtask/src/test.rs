//! `cargo xtask test`: the whole test suite, the README's second command.
//!
//! Doctests first (`cargo test --doc`: nextest does not run them), then
//! every other test with cargo-nextest when it is installed (one process per
//! test, a summary line at the end), else `cargo test`.

use std::path::Path;
use std::process::Command;

pub(crate) fn run(root: &Path, extra: &[&str]) -> Result<(), String> {
    cargo(root, &["test", "--workspace", "--doc"], &[])?;
    let nextest = Command::new(env!("CARGO"))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if nextest {
        cargo(
            root,
            &["nextest", "run", "--workspace", "--no-fail-fast"],
            extra,
        )
    } else {
        println!("cargo-nextest is not installed: running `cargo test`");
        cargo(root, &["test", "--workspace", "--no-fail-fast"], extra)
    }
}

fn cargo(root: &Path, args: &[&str], extra: &[&str]) -> Result<(), String> {
    let shown = [args, extra].concat().join(" ");
    println!("$ cargo {shown}");
    let status = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(args)
        .args(extra)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {shown}` failed"))
    }
}
