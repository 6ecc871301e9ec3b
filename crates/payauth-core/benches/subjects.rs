//! Many customers in one process: memory per idle subject, the cost of a
//! get on a random subject, and of creating and fetching them all, for
//! `Subjects` against the hand-made ways: a `HashMap<String, TokenCache>`
//! (one cache per subject by hand) and a plain
//! `HashMap<String, Arc<AccessToken>>` filled by calling the source
//! directly (the floor: no single flight, no refresh, no store). 64-byte
//! tokens, a trivial source; the caches are built from clones of one
//! builder (what the `Subjects` docs show); ratios in one run. Memory is
//! the growth of resident memory while filling each, each in a process of
//! its own (this bench run again), so one never reuses memory another
//! freed; the fill times are medians of 5 more fills of each. The last
//! line, `BENCH [json]`, is what `cargo xtask bench` collects (`subjects`).
//!
//! `cargo bench -p payauth-core --bench subjects`

// Byte and nanosecond counts far below 2^52: exact as f64.
#![allow(clippy::cast_precision_loss)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use payauth_core::subjects::Subjects;
use payauth_core::{
    AccessToken, BoxFuture, Error, Issued, Secret, SystemClock, TokenCache, TokenSource,
};

/// The process's resident memory in bytes (Linux; 0 elsewhere). The
/// workspace forbids `unsafe`, so no counting allocator: at 100,000
/// subjects, page granularity is noise.
fn resident() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

const SUBJECTS: usize = 100_000;
const GETS: usize = 2_000_000;
const PASSES: usize = 5;

struct Local;

impl TokenSource for Local {
    fn fetch<'a>(
        &'a self,
        _: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async { token() })
    }
}

fn token() -> Result<AccessToken, Error> {
    AccessToken::new(
        Secret::new("t".repeat(64)),
        "Bearer",
        Issued::now(&SystemClock),
        Duration::from_secs(3600),
    )
}

fn keys() -> Vec<String> {
    (0..SUBJECTS).map(|i| format!("customer-{i:08}")).collect()
}

/// A fixed pseudo-random walk over the subjects (xorshift).
fn walk() -> Vec<usize> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..GETS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            usize::try_from(x % SUBJECTS as u64).unwrap()
        })
        .collect()
}

/// The variable that makes this bench a child measuring one way's memory.
const CHILD: &str = "PAYAUTH_SUBJECTS_BENCH_MEMORY";

/// Bytes per subject of `way`, filled in a fresh process.
fn memory(way: &str) -> f64 {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .env(CHILD, way)
        .output()
        .unwrap();
    assert!(out.status.success(), "{way}: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// In a child: fills `way` and prints its growth of resident memory per
/// subject.
fn measure(way: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys = keys();
    let before = resident();
    let held: Box<dyn std::any::Any> = match way {
        "direct" => Box::new(runtime.block_on(direct(&keys))),
        "by_hand" => Box::new(runtime.block_on(by_hand(&keys))),
        _ => Box::new(runtime.block_on(subjects(&keys))),
    };
    let grown = resident().saturating_sub(before) as f64 / SUBJECTS as f64;
    println!("{grown}");
    drop(held);
}

/// The floor: each subject's token from the source, called directly, in a
/// map.
async fn direct(keys: &[String]) -> HashMap<String, Arc<AccessToken>> {
    let mut map = HashMap::new();
    for k in keys {
        map.insert(k.clone(), Arc::new(Local.fetch(None).await.unwrap()));
    }
    map
}

/// One cache per subject by hand, from clones of one builder.
async fn by_hand(keys: &[String]) -> HashMap<String, TokenCache> {
    let builder = TokenCache::builder(Local);
    let mut map = HashMap::new();
    for k in keys {
        let cache = builder.clone().build();
        cache.token().await.unwrap();
        map.insert(k.clone(), cache);
    }
    map
}

/// `Subjects`, its factory building from clones of one builder.
async fn subjects(keys: &[String]) -> Subjects<String> {
    let builder = TokenCache::builder(Local);
    let subjects = Subjects::builder(move |_: &String| builder.clone().build())
        .capacity(SUBJECTS * 2)
        .build();
    for k in keys {
        subjects.token(k).await.unwrap();
    }
    subjects
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Creating and fetching them all, ns per subject: each way filled
/// afresh, in turn, [`PASSES`] times; medians.
fn fills(runtime: &tokio::runtime::Runtime, keys: &[String]) -> [f64; 3] {
    let mut fill_ns = [Vec::new(), Vec::new(), Vec::new()];
    let per_fill = |started: Instant| started.elapsed().as_nanos() as f64 / SUBJECTS as f64;
    for _ in 0..PASSES {
        let started = Instant::now();
        drop(black_box(runtime.block_on(direct(keys))));
        fill_ns[0].push(per_fill(started));
        let started = Instant::now();
        drop(black_box(runtime.block_on(by_hand(keys))));
        fill_ns[1].push(per_fill(started));
        let started = Instant::now();
        drop(black_box(runtime.block_on(subjects(keys))));
        fill_ns[2].push(per_fill(started));
    }
    fill_ns.map(median)
}

fn main() {
    if let Ok(way) = std::env::var(CHILD) {
        return measure(&way);
    }
    let plain_bytes = memory("direct");
    let by_hand_bytes = memory("by_hand");
    let subjects_bytes = memory("subjects");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys = keys();
    let walk = walk();

    let plain = runtime.block_on(direct(&keys));
    let by_hand = runtime.block_on(by_hand(&keys));
    let subjects = runtime.block_on(subjects(&keys));

    let [plain_fill, by_hand_fill, subjects_fill] = fills(&runtime, &keys);

    let time = |work: &dyn Fn(&str)| {
        let started = Instant::now();
        for &i in &walk {
            work(&keys[i]);
        }
        started.elapsed().as_nanos() as f64 / GETS as f64
    };
    let mut plain_ns = Vec::new();
    let mut by_hand_ns = Vec::new();
    let mut subjects_ns = Vec::new();
    let _guard = runtime.enter();
    for _ in 0..PASSES {
        plain_ns.push(time(&|k| {
            let token = Arc::clone(plain.get(k).unwrap());
            black_box(token.expires_at() > Instant::now());
            black_box(token);
        }));
        by_hand_ns.push(time(&|k| {
            black_box(by_hand.get(k).unwrap().peek());
        }));
        subjects_ns.push(time(&|k| {
            black_box(subjects.get(k).peek());
        }));
    }
    let (plain_ns, by_hand_ns, subjects_ns) =
        (median(plain_ns), median(by_hand_ns), median(subjects_ns));
    println!(
        "{SUBJECTS} subjects, 64-byte tokens; {GETS} gets on random subjects; medians of {PASSES} passes"
    );
    println!(
        "| | bytes per idle subject | ratio | ns per get | ratio | ns to create and fetch one | ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| `HashMap<String, Arc<AccessToken>>` + clock check, source called directly | {plain_bytes:.0} | 1.00x | {plain_ns:.1} | 1.00x | {plain_fill:.0} | 1.00x |"
    );
    println!(
        "| `HashMap<String, TokenCache>` (peek) | {by_hand_bytes:.0} | {:.2}x | {by_hand_ns:.1} | {:.2}x | {by_hand_fill:.0} | {:.2}x |",
        by_hand_bytes / plain_bytes,
        by_hand_ns / plain_ns,
        by_hand_fill / plain_fill
    );
    println!(
        "| `Subjects::get` (peek) | {subjects_bytes:.0} | {:.2}x | {subjects_ns:.1} | {:.2}x | {subjects_fill:.0} | {:.2}x |",
        subjects_bytes / plain_bytes,
        subjects_ns / plain_ns,
        subjects_fill / plain_fill
    );
    let mut rows = Vec::new();
    let floor = "HashMap<String, Arc<AccessToken>>, source called directly";
    for (subject, bytes, ns, fill) in [
        ("Subjects", subjects_bytes, subjects_ns, subjects_fill),
        (
            "HashMap<String, TokenCache>",
            by_hand_bytes,
            by_hand_ns,
            by_hand_fill,
        ),
    ] {
        for (metric, value, baseline) in [
            ("bytes per idle subject", bytes, plain_bytes),
            (
                "ns per get on a random subject (+ clock check in the floor)",
                ns,
                plain_ns,
            ),
            ("ns to create and fetch one", fill, plain_fill),
        ] {
            rows.push(format!(
                r#"{{"bench":"many subjects ({SUBJECTS})","subject":"{subject}","baseline":"{floor}","metric":"{metric}","subject_value":{value:.1},"baseline_value":{baseline:.1}}}"#
            ));
        }
    }
    println!("BENCH [{}]", rows.join(","));
}
