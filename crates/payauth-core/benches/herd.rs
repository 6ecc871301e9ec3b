//! The thundering herd: 10,000 callers at once want a token from a cache
//! that is empty, or whose token is inside its refresh margin (still
//! valid). Counted: upstream fetches, and the wall time until every caller
//! holds a token. Compared in the same run with the two caches people write
//! by hand:
//!
//! - check-then-fetch over an `RwLock<Option<Arc<_>>>`: every caller that
//!   sees no fresh token fetches one;
//! - a `tokio::sync::Mutex` held across the fetch: one fetch, but every
//!   caller queues behind it, even while a valid token is cached.
//!
//! The upstream is in-process (a counter and a 5 ms sleep standing for the
//! round trip), so 10,000 callers need no sockets. Medians of 5 runs. The
//! last line, `BENCH {json}`, is what `cargo xtask bench` collects.
//!
//! `cargo bench -p payauth-core --bench herd`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use payauth_core::{
    AccessToken, BoxFuture, Clock, Error, Issued, ManualClock, Secret, TokenCache, TokenSource,
};
use tokio::sync::{Mutex, RwLock};

const CALLERS: usize = 10_000;
const RUNS: usize = 5;
const ROUND_TRIP: Duration = Duration::from_millis(5);
const LIFETIME: Duration = Duration::from_secs(3600);
const MARGIN: Duration = Duration::from_secs(60);

struct Upstream {
    clock: Arc<ManualClock>,
    fetches: AtomicUsize,
}

impl Upstream {
    async fn fetch_token(&self) -> AccessToken {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(ROUND_TRIP).await;
        AccessToken::new(
            Secret::new("herd"),
            "Bearer",
            Issued::now(self.clock.as_ref()),
            LIFETIME,
        )
        .expect("token")
    }
}

impl TokenSource for Upstream {
    fn fetch<'a>(
        &'a self,
        _: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async move { Ok(self.fetch_token().await) })
    }
}

/// A cache under test: its `token()`, on a shared upstream and clock.
trait Herdable: Send + Sync + 'static {
    fn token(self: Arc<Self>) -> BoxFuture<'static, ()>;
}

struct Payauth(TokenCache);

impl Herdable for Payauth {
    fn token(self: Arc<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            self.0.token().await.expect("token");
        })
    }
}

fn fresh(clock: &ManualClock, token: &AccessToken) -> bool {
    clock.now() + MARGIN < token.expires_at()
}

struct CheckThenFetch {
    upstream: Arc<Upstream>,
    token: RwLock<Option<Arc<AccessToken>>>,
}

impl Herdable for CheckThenFetch {
    fn token(self: Arc<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            if let Some(token) = &*self.token.read().await
                && fresh(&self.upstream.clock, token)
            {
                return;
            }
            let token = Arc::new(self.upstream.fetch_token().await);
            *self.token.write().await = Some(token);
        })
    }
}

struct MutexAcrossFetch {
    upstream: Arc<Upstream>,
    token: Mutex<Option<Arc<AccessToken>>>,
}

impl Herdable for MutexAcrossFetch {
    fn token(self: Arc<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut guard = self.token.lock().await;
            if let Some(token) = &*guard
                && fresh(&self.upstream.clock, token)
            {
                return;
            }
            *guard = Some(Arc::new(self.upstream.fetch_token().await));
        })
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Start {
    Empty,
    Expiring,
}

#[derive(Clone, Copy)]
enum Kind {
    Payauth,
    CheckThenFetch,
    MutexAcrossFetch,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Payauth => "payauth TokenCache",
            Self::CheckThenFetch => "RwLock check-then-fetch",
            Self::MutexAcrossFetch => "Mutex held across fetch",
        }
    }
}

/// One run: fetches made and ms until every caller had a token.
async fn run(kind: Kind, start: Start) -> (usize, f64) {
    let clock = Arc::new(ManualClock::new());
    let upstream = Arc::new(Upstream {
        clock: Arc::clone(&clock),
        fetches: AtomicUsize::new(0),
    });
    let cache: Arc<dyn Herdable> = match kind {
        Kind::Payauth => Arc::new(Payauth(
            TokenCache::builder(Arc::clone(&upstream) as Arc<dyn TokenSource>)
                .clock(Arc::clone(&clock) as Arc<dyn Clock>)
                .refresh_margin(MARGIN)
                .jitter(0.0)
                .build(),
        )),
        Kind::CheckThenFetch => Arc::new(CheckThenFetch {
            upstream: Arc::clone(&upstream),
            token: RwLock::new(None),
        }),
        Kind::MutexAcrossFetch => Arc::new(MutexAcrossFetch {
            upstream: Arc::clone(&upstream),
            token: Mutex::new(None),
        }),
    };
    if start == Start::Expiring {
        Arc::clone(&cache).token().await;
        // Inside the refresh margin, still valid.
        clock.advance(LIFETIME.saturating_sub(MARGIN / 2));
        upstream.fetches.store(0, Ordering::SeqCst);
    }
    let began = Instant::now();
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| tokio::spawn(Arc::clone(&cache).token()))
        .collect();
    for caller in callers {
        caller.await.expect("caller");
    }
    let elapsed = began.elapsed().as_secs_f64() * 1e3;
    // Let a background refresh finish before counting.
    tokio::time::sleep(ROUND_TRIP * 4).await;
    (upstream.fetches.load(Ordering::SeqCst), elapsed)
}

async fn median(kind: Kind, start: Start) -> (f64, f64) {
    let mut fetches = Vec::new();
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let (f, t) = run(kind, start).await;
        fetches.push(f64::from(u32::try_from(f).unwrap_or(u32::MAX)));
        times.push(t);
    }
    fetches.sort_by(f64::total_cmp);
    times.sort_by(f64::total_cmp);
    (fetches[RUNS / 2], times[RUNS / 2])
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = Vec::new();
    runtime.block_on(async {
        println!(
            "{:<10} {:<26} {:>16} {:>16}",
            "cache", "", "upstream fetches", "ms, all callers"
        );
        for (start, label) in [(Start::Empty, "empty"), (Start::Expiring, "expiring")] {
            let mut results = Vec::new();
            for kind in [Kind::Payauth, Kind::CheckThenFetch, Kind::MutexAcrossFetch] {
                let (fetches, ms) = median(kind, start).await;
                println!("{label:<10} {:<26} {fetches:>16} {ms:>16.2}", kind.name());
                results.push((kind, fetches, ms));
            }
            let (_, ours_fetches, ours_ms) = results[0];
            for &(kind, fetches, ms) in &results[1..] {
                let baseline = kind.name();
                rows.push(format!(
                    r#"{{"bench":"herd ({label}, {CALLERS} callers)","subject":"payauth TokenCache","baseline":"{baseline}","metric":"upstream fetches","subject_value":{ours_fetches},"baseline_value":{fetches}}}"#
                ));
                rows.push(format!(
                    r#"{{"bench":"herd ({label}, {CALLERS} callers)","subject":"payauth TokenCache","baseline":"{baseline}","metric":"ms until all callers hold a token","subject_value":{ours_ms:.3},"baseline_value":{ms:.3}}}"#
                ));
            }
        }
    });
    println!("BENCH [{}]", rows.join(","));
}
