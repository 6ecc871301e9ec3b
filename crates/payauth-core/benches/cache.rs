//! Cost of a cached `TokenCache::token()` against the ways a hand-written
//! cache would hold a token: `Mutex<Option<Arc<_>>>`, `RwLock<Option<Arc<_>>>`,
//! and a bare `ArcSwapOption` load (the floor). Each does the same work: get
//! the token, check its expiry, return a clone of the `Arc`.
//!
//! A plain harness (`harness = false`): medians of 11 samples, 1 and 2
//! threads, ratios against the baselines measured in the same run. The last
//! line, `BENCH {json}`, is what `cargo xtask bench` collects.
//!
//! `cargo bench -p payauth-core --bench cache`

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::{Arc, Barrier, Mutex, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use payauth_core::{
    AccessToken, BoxFuture, Error, Issued, Secret, SystemClock, TokenCache, TokenSource,
};

const ITERATIONS: u32 = 2_000_000;
const SAMPLES: usize = 11;

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
        Secret::new("bench-token"),
        "Bearer",
        Issued::now(&SystemClock),
        Duration::from_secs(3600),
    )
}

/// Polls a future that is ready on its first poll (the cache's fast path).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the fast path must not wait"),
    }
}

/// Median ns per call of `op`, run by `threads` threads at once.
fn measure(threads: usize, op: &(dyn Fn() + Sync)) -> f64 {
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let barrier = Barrier::new(threads);
            let elapsed = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            let start = Instant::now();
                            for _ in 0..ITERATIONS {
                                op();
                            }
                            start.elapsed()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("bench thread"))
                    .max()
                    .unwrap_or_default()
            });
            elapsed.as_secs_f64() * 1e9 / f64::from(ITERATIONS)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[SAMPLES / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cache = TokenCache::builder(Local).build();
    runtime.block_on(cache.token()).expect("first fetch");

    let shared = Arc::new(token().expect("token"));
    let mutex = Mutex::new(Some(Arc::clone(&shared)));
    let rwlock = RwLock::new(Some(Arc::clone(&shared)));
    let swap = ArcSwapOption::from(Some(Arc::clone(&shared)));
    let fresh = |t: &Arc<AccessToken>| t.is_valid_at(Instant::now()).then(|| Arc::clone(t));

    let cases: [(&str, &(dyn Fn() + Sync)); 4] = [
        ("TokenCache::token", &|| {
            black_box(ready(cache.token()).ok());
        }),
        ("Mutex<Option<Arc>>", &|| {
            black_box(mutex.lock().expect("lock").as_ref().and_then(fresh));
        }),
        ("RwLock<Option<Arc>>", &|| {
            black_box(rwlock.read().expect("lock").as_ref().and_then(fresh));
        }),
        ("ArcSwapOption load (floor)", &|| {
            black_box(swap.load().as_ref().and_then(fresh));
        }),
    ];

    let mut json = Vec::new();
    println!(
        "{:<28} {:>10} {:>10}",
        "ns per cached get", "1 thread", "2 threads"
    );
    let mut results = Vec::new();
    for (name, op) in cases {
        let one = measure(1, op);
        let two = measure(2, op);
        println!("{name:<28} {one:>10.1} {two:>10.1}");
        results.push((name, one, two));
    }
    let (_, cache_1, cache_2) = results[0];
    println!("\nratio of TokenCache::token to each baseline (below 1: faster)");
    for (name, one, two) in &results[1..] {
        println!(
            "  vs {name:<26} {:>6.2} {:>6.2}",
            cache_1 / one,
            cache_2 / two
        );
        json.push(format!(
            r#"{{"bench":"cached-get","subject":"TokenCache::token","baseline":"{name}","metric":"ns/op 1 thread","subject_value":{cache_1:.2},"baseline_value":{one:.2}}}"#
        ));
        json.push(format!(
            r#"{{"bench":"cached-get","subject":"TokenCache::token","baseline":"{name}","metric":"ns/op 2 threads","subject_value":{cache_2:.2},"baseline_value":{two:.2}}}"#
        ));
    }
    println!("BENCH [{}]", json.join(","));
}
