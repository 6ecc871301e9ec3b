//! Cost of a cached `TokenCache::token()` against the ways a hand-written
//! cache would hold a token: `Mutex<Option<Arc<_>>>`, `RwLock<Option<Arc<_>>>`,
//! and a bare `ArcSwapOption` load (the floor). Each does the same work: get
//! the token, check its expiry, return a clone of the `Arc`.
//!
//! A plain harness (`harness = false`): 11 samples, 1 and 2 threads, the
//! cases taking turns within each sample; medians, and ratios against the
//! baselines measured in the same run (against the floor, the median of
//! the per-sample ratios, which a busy machine disturbs least). The last
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

/// ns per call of `op`, run by `threads` threads at once, in one sample.
fn sample(threads: usize, op: &(dyn Fn() + Sync)) -> f64 {
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
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// For each case, the median ns per call, and the median over samples of
/// its ratio to the last case (the floor) in the same sample. The cases
/// take turns within each sample, so a change in the machine's load
/// (other processes) falls on all of them alike.
fn measure(threads: usize, cases: &[(&str, &(dyn Fn() + Sync))]) -> Vec<(f64, f64)> {
    let runs: Vec<Vec<f64>> = (0..SAMPLES)
        .map(|_| cases.iter().map(|(_, op)| sample(threads, *op)).collect())
        .collect();
    let floor = cases.len() - 1;
    (0..cases.len())
        .map(|case| {
            let times = runs.iter().map(|run| run[case]).collect();
            let ratios = runs.iter().map(|run| run[case] / run[floor]).collect();
            (median(times), median(ratios))
        })
        .collect()
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
    let (one, two) = (measure(1, &cases), measure(2, &cases));
    println!(
        "{:<28} {:>10} {:>10}",
        "ns per cached get", "1 thread", "2 threads"
    );
    for ((name, _), (a, b)) in cases.iter().zip(one.iter().zip(&two)) {
        println!("{name:<28} {:>10.1} {:>10.1}", a.0, b.0);
    }
    println!("\nratio of TokenCache::token to each baseline (below 1: faster)");
    println!("(vs the floor: the median of the ratios within each sample)");
    for (case, (name, _)) in cases.iter().enumerate().skip(1) {
        let ratio = |results: &[(f64, f64)]| {
            if case == cases.len() - 1 {
                results[0].1
            } else {
                results[0].0 / results[case].0
            }
        };
        let (r1, r2) = (ratio(&one), ratio(&two));
        println!("  vs {name:<26} {r1:>6.2} {r2:>6.2}");
        for (metric, subject, baseline) in [
            ("ns/op 1 thread", one[0].0, one[0].0 / r1),
            ("ns/op 2 threads", two[0].0, two[0].0 / r2),
        ] {
            json.push(format!(
                r#"{{"bench":"cached-get","subject":"TokenCache::token","baseline":"{name}","metric":"{metric}","subject_value":{subject:.2},"baseline_value":{baseline:.2}}}"#
            ));
        }
    }
    println!("BENCH [{}]", json.join(","));
}
