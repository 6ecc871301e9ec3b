//! Many customers in one process: memory per idle subject and the cost of
//! a get on a random subject, for `Subjects` against the hand-made ways:
//! a `HashMap<String, TokenCache>` (one cache per subject by hand) and a
//! plain `HashMap<String, Arc<AccessToken>>` (the floor: no single flight,
//! no refresh, no store). 64-byte tokens, a trivial source; ratios in one
//! run. Memory is the growth of resident memory while filling each (each
//! kept alive to the end, so one never reuses another's freed pages).
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

fn per_subject(before: usize) -> f64 {
    resident().saturating_sub(before) as f64 / SUBJECTS as f64
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys = keys();
    let walk = walk();

    let before = resident();
    let plain: HashMap<String, Arc<AccessToken>> = keys
        .iter()
        .map(|k| (k.clone(), Arc::new(token().unwrap())))
        .collect();
    let plain_bytes = per_subject(before);

    let before = resident();
    let by_hand: HashMap<String, TokenCache> = runtime.block_on(async {
        let mut map = HashMap::new();
        for k in &keys {
            let cache = TokenCache::builder(Local).build();
            cache.token().await.unwrap();
            map.insert(k.clone(), cache);
        }
        map
    });
    let by_hand_bytes = per_subject(before);

    let before = resident();
    let subjects = runtime.block_on(async {
        let subjects = Subjects::builder(|_: &String| TokenCache::builder(Local).build())
            .capacity(SUBJECTS * 2)
            .build();
        for k in &keys {
            subjects.token(k).await.unwrap();
        }
        subjects
    });
    let subjects_bytes = per_subject(before);

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
    for _ in 0..5 {
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
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (plain_ns, by_hand_ns, subjects_ns) = (
        median(&mut plain_ns),
        median(&mut by_hand_ns),
        median(&mut subjects_ns),
    );
    println!("{SUBJECTS} subjects, 64-byte tokens; {GETS} gets on random subjects, median of 5");
    println!("| | bytes per idle subject | ratio | ns per get | ratio |");
    println!("|---|---|---|---|---|");
    println!(
        "| `HashMap<String, Arc<AccessToken>>` + clock check | {plain_bytes:.0} | 1.00x | {plain_ns:.1} | 1.00x |"
    );
    println!(
        "| `HashMap<String, TokenCache>` (peek) | {by_hand_bytes:.0} | {:.2}x | {by_hand_ns:.1} | {:.2}x |",
        by_hand_bytes / plain_bytes,
        by_hand_ns / plain_ns
    );
    println!(
        "| `Subjects::get` (peek) | {subjects_bytes:.0} | {:.2}x | {subjects_ns:.1} | {:.2}x |",
        subjects_bytes / plain_bytes,
        subjects_ns / plain_ns
    );
}
