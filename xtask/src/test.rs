//! `cargo xtask test`: the whole test suite, the README's second command.
//!
//! Doctests first (`cargo test --doc`: nextest does not run them), then
//! every other test with cargo-nextest when it is installed (one process per
//! test, a summary line at the end), else `cargo test`; then the tests of
//! features no crate of the workspace turns on (payauth-core's `metrics`,
//! the TLS tests on `native-tls`).
//!
//! payauth-redis's tests need a Redis: `PAYAUTH_REDIS_URL` (`.ci/run` starts
//! one), else each test starts `redis-server` itself. Without either they
//! skip, and this says so up front, where the test runner would hide it.

use std::path::Path;
use std::process::Command;

pub(crate) fn run(root: &Path, extra: &[&str]) -> Result<(), String> {
    warn_if_no_redis();
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
        )?;
    } else {
        println!("cargo-nextest is not installed: running `cargo test`");
        cargo(root, &["test", "--workspace", "--no-fail-fast"], extra)?;
    }
    FEATURE_TESTS
        .iter()
        .try_for_each(|args| cargo(root, args, &[]))
}

/// Tests of features no workspace crate turns on, run once more with them.
const FEATURE_TESTS: &[&[&str]] = &[
    &[
        "test",
        "-p",
        "payauth-core",
        "--features",
        "metrics",
        "--test",
        "telemetry",
    ],
    &[
        "test",
        "-p",
        "payauth-core",
        "--features",
        "metrics",
        "--test",
        "it",
        "--",
        "shared::",
    ],
    // TLS to PostgreSQL (feature `tls`, off in the workspace).
    &[
        "test",
        "-p",
        "payauth-postgres",
        "--features",
        "tls",
        "--test",
        "it",
        "--",
        "tls::",
    ],
    // The workspace turns `socks` on (the TLS tests use it): the proxy
    // checks once more without it, where a SOCKS proxy must be refused.
    &["test", "-p", "payauth-core", "--lib", "--", "http::proxy::"],
    // The TLS tests (certificate checks, mutual TLS against the sandbox,
    // proxies) once more on the platform's TLS library.
    &[
        "test",
        "-p",
        "payauth-tests",
        "--features",
        "native-tls",
        "--test",
        "tls",
    ],
];

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

fn warn_if_no_redis() {
    if std::env::var_os("PAYAUTH_REDIS_URL").is_some() {
        return;
    }
    let installed = Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        println!(
            "NOTE: no redis-server and no PAYAUTH_REDIS_URL: payauth-redis's tests will SKIP \
             (install redis-server, or run .ci/run, which installs and starts one)"
        );
    }
}
