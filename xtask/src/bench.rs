//! `cargo xtask bench`: every benchmark, each figure a ratio to a baseline
//! measured in the same run, written to `target/bench/summary.json` and
//! `target/bench/summary.md`.
//!
//! Benchmarks:
//! - `cached-get` (`cargo bench -p payauth-core --bench cache`): a cached
//!   `TokenCache::token()` against `Mutex`, `RwLock` and a bare `ArcSwap`
//!   load, 1 and 2 threads.
//! - `herd` (`cargo bench -p payauth-core --bench herd`): 10,000 concurrent
//!   callers on an empty and on an expiring cache, upstream fetches and
//!   time until all hold a token, against a check-then-fetch `RwLock` cache
//!   and a `Mutex` held across the fetch.
//! - `subjects` (`cargo bench -p payauth-core --bench subjects`): 100,000
//!   subjects in `Subjects` and in a hand-made `HashMap<String, TokenCache>`
//!   against a plain map of `Arc<AccessToken>` filled by calling the source
//!   directly: memory per idle subject, a get on a random subject, creating
//!   and fetching one.
//! - `file-store` (`cargo bench -p payauth-core --bench file_store`):
//!   `FileStore`'s cost per operation holding 1,000 and 10,000 tokens
//!   against holding 100, and 10,000 seeded caches flushing at once.
//! - `fleet` (the ignored test `fleet::a_fleet_of_four_holding_10_000_customers…`
//!   of `payauth-postgres`, debug build): 4 replicas sharing 10,000
//!   customers on every store it finds (`eval "$(.ci/postgres start)"`,
//!   `eval "$(.ci/redis start)"` first), upstream fetches against customers
//!   × expiries.
//! - `cold-fetch` (`cargo bench -p payauth-mypos --bench cold_fetch`): a
//!   payauth token fetch against a bare reqwest POST of the same request
//!   and against the `oauth2` crate's client-credentials exchange (over the
//!   same reqwest client), on the loopback sandbox.
//! - `build-cost`: what depending on one provider crate costs, cold, against
//!   the `oauth2` crate with reqwest (its default rustls TLS) and tokio: crates
//!   compiled and wall time of `cargo build`, in scratch projects under
//!   `target/bench/build-cost/` with their own target dirs. Downloads happen
//!   in a `cargo fetch` before the clock starts.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

/// One measured row: a subject against its baseline.
struct Row {
    bench: String,
    subject: String,
    baseline: String,
    metric: String,
    subject_value: f64,
    baseline_value: f64,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.subject_value / self.baseline_value
    }

    fn to_json(&self) -> Value {
        json!({
            "bench": self.bench,
            "subject": self.subject,
            "baseline": self.baseline,
            "metric": self.metric,
            "subject_value": self.subject_value,
            "baseline_value": self.baseline_value,
            "ratio": self.ratio(),
        })
    }
}

pub(crate) fn run(root: &Path, only: &[&str]) -> Result<(), String> {
    let wanted = |name: &str| only.is_empty() || only.contains(&name);
    let out_dir = root.join("target/bench");
    fs::create_dir_all(&out_dir).map_err(|e| format!("cannot create target/bench: {e}"))?;
    let mut rows = Vec::new();
    if wanted("cached-get") {
        rows.extend(cargo_bench(root, "payauth-core", "cache")?);
    }
    if wanted("herd") {
        rows.extend(cargo_bench(root, "payauth-core", "herd")?);
    }
    if wanted("subjects") {
        rows.extend(cargo_bench(root, "payauth-core", "subjects")?);
    }
    if wanted("file-store") {
        rows.extend(cargo_bench(root, "payauth-core", "file_store")?);
    }
    if wanted("fleet") {
        rows.extend(fleet(root)?);
    }
    if wanted("cold-fetch") {
        rows.extend(cargo_bench(root, "payauth-mypos", "cold_fetch")?);
    }
    if wanted("build-cost") {
        rows.extend(build_cost(root, &out_dir)?);
    }
    if rows.is_empty() {
        return Err(format!(
            "no benchmark named {}; known: cached-get, herd, subjects, file-store, fleet, cold-fetch, build-cost",
            only.join(", ")
        ));
    }
    write_summary(&out_dir, &rows)
}

/// Runs one `harness = false` bench in release and reads the rows it
/// prints on its `BENCH [json]` line.
fn cargo_bench(root: &Path, package: &str, bench: &str) -> Result<Vec<Row>, String> {
    println!("running {package} --bench {bench}…");
    let output = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["bench", "--quiet", "--package", package, "--bench", bench])
        .output()
        .map_err(|e| format!("cannot run cargo bench: {e}"))?;
    bench_rows(&format!("{package} --bench {bench}"), &output)
}

/// The 10,000-customer fleet: an ignored test of payauth-postgres's suite
/// (I/O-bound, so the debug build the tests already have).
fn fleet(root: &Path) -> Result<Vec<Row>, String> {
    let test =
        "fleet::a_fleet_of_four_holding_10_000_customers_makes_one_fetch_per_customer_per_expiry";
    println!("running payauth-postgres {test} (minutes)…");
    let output = Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "test",
            "--quiet",
            "--package",
            "payauth-postgres",
            "--test",
            "it",
            "--",
        ])
        .args([
            "--ignored",
            "--exact",
            test,
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    bench_rows("the fleet run", &output)
}

/// The rows of a run's `BENCH [json]` line; its other lines are shown.
fn bench_rows(what: &str, output: &std::process::Output) -> Result<Vec<Row>, String> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{what} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    for line in stdout.lines().filter(|l| !l.starts_with("BENCH ")) {
        println!("{line}");
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH "))
        .ok_or_else(|| format!("{what} printed no BENCH line"))?;
    let values: Vec<Value> =
        serde_json::from_str(line).map_err(|e| format!("bad BENCH line from {what}: {e}"))?;
    values
        .iter()
        .map(|v| {
            let text = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .map(ToOwned::to_owned)
                    .ok_or(format!("BENCH row without {k}"))
            };
            let number = |k: &str| {
                v.get(k)
                    .and_then(Value::as_f64)
                    .ok_or(format!("BENCH row without {k}"))
            };
            Ok(Row {
                bench: text("bench")?,
                subject: text("subject")?,
                baseline: text("baseline")?,
                metric: text("metric")?,
                subject_value: number("subject_value")?,
                baseline_value: number("baseline_value")?,
            })
        })
        .collect()
}

fn build_cost(root: &Path, out_dir: &Path) -> Result<Vec<Row>, String> {
    let mypos = root.join("crates/payauth-mypos");
    let subject = format!(
        "[dependencies]\npayauth-mypos = {{ path = {:?} }}\n",
        mypos.to_str().ok_or("the workspace path is not UTF-8")?
    );
    let baseline = "[dependencies]\noauth2 = \"5.0.0\"\ntokio = { version = \"1\", features = [\"rt\", \"macros\"] }\n";
    let (subject_crates, subject_secs) = cold_build(out_dir, "payauth-mypos", &subject)?;
    let (baseline_crates, baseline_secs) = cold_build(out_dir, "oauth2", baseline)?;
    let row = |metric: &str, s: f64, b: f64| Row {
        bench: "build-cost".to_owned(),
        subject: "payauth-mypos".to_owned(),
        baseline: "oauth2 5 + reqwest + tokio".to_owned(),
        metric: metric.to_owned(),
        subject_value: s,
        baseline_value: b,
    };
    Ok(vec![
        row(
            "crates compiled",
            f64::from(subject_crates),
            f64::from(baseline_crates),
        ),
        row("cold debug build, s", subject_secs, baseline_secs),
    ])
}

/// Builds a scratch project with `deps` from nothing; returns the number of
/// crates compiled and the seconds `cargo build` took.
fn cold_build(out_dir: &Path, name: &str, deps: &str) -> Result<(u32, f64), String> {
    let dir = out_dir.join("build-cost").join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("src"))
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let manifest = format!(
        "[package]\nname = \"bench-{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n[workspace]\n\n{deps}"
    );
    fs::write(dir.join("Cargo.toml"), manifest).map_err(|e| e.to_string())?;
    fs::write(dir.join("src/lib.rs"), "").map_err(|e| e.to_string())?;
    cargo_in(&dir, &["fetch", "--quiet"])?;
    println!("building {name} cold…");
    let started = Instant::now();
    let output = Command::new(env!("CARGO"))
        .current_dir(&dir)
        .args(["build", "--color", "never"])
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        return Err(format!(
            "cold build of {name} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let log = String::from_utf8_lossy(&output.stderr);
    let crates = u32::try_from(
        log.lines()
            .filter(|l| l.trim_start().starts_with("Compiling "))
            .count(),
    )
    .map_err(|e| e.to_string())?;
    Ok((crates, seconds))
}

fn cargo_in(dir: &Path, args: &[&str]) -> Result<(), String> {
    let status = Command::new(env!("CARGO"))
        .current_dir(dir)
        .args(args)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`cargo {}` failed in {}",
            args.join(" "),
            dir.display()
        ))
    }
}

fn write_summary(out_dir: &Path, rows: &[Row]) -> Result<(), String> {
    let machine = machine();
    let summary = json!({
        "machine": machine,
        "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    fs::write(out_dir.join("summary.json"), text).map_err(|e| e.to_string())?;

    let mut md = String::from(
        "| bench | subject | baseline | metric | subject | baseline | ratio |\n|---|---|---|---|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.3} |",
            r.bench,
            r.subject,
            r.baseline,
            r.metric,
            r.subject_value,
            r.baseline_value,
            r.ratio()
        );
    }
    let _ = writeln!(md, "\nMachine: {machine}");
    fs::write(out_dir.join("summary.md"), &md).map_err(|e| e.to_string())?;
    println!("{md}\nwritten to target/bench/summary.json and target/bench/summary.md");
    Ok(())
}

/// Cores, rustc version and OS, for the record beside the figures.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "{cores} cores, {rustc}, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}
