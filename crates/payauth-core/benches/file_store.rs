//! `FileStore` at scale: what one operation costs as the number of tokens
//! it holds grows, and many caches saving at once.
//!
//! - Cost per operation (a load, a save, a compare-and-set save of a held
//!   key picked across all of them, one caller at a time; the median of 5
//!   passes) in a store holding 1,000 and 10,000
//!   tokens, each as a ratio to the same operations on a store holding
//!   100, measured in the same run. Also the time to fill each store,
//!   per token (filling stays linear when no save lists the folder).
//! - 10,000 caches, each seeded with a token (a login just exchanged),
//!   all flushing at once to one store with the default fetch timeout:
//!   how many flushes failed (timed out), out of all, and the wall time
//!   against the bound one store call may take (a quarter of the fetch
//!   timeout).
//!
//! The stores live in a temporary directory on the machine's disk (every
//! save is flushed to disk, so the disk sets the absolute figures; the
//! ratios are what counts). The last line, `BENCH [json]`, is what
//! `cargo xtask bench` collects.
//!
//! `cargo bench -p payauth-core --bench file_store`

use std::sync::Arc;
use std::time::{Duration, Instant};

use payauth_core::{
    AccessToken, BoxFuture, Error, ErrorKind, FileStore, Issued, SaveIf, Secret, StoredToken,
    SystemClock, TokenCache, TokenSource, TokenStore,
};

const HELD: [usize; 3] = [100, 1_000, 10_000];
/// Loads, and saves of each kind, per pass; passes per store size (the
/// median pass counts).
const LOADS: usize = 1_000;
const SAVES: usize = 100;
const PASSES: usize = 5;
const CACHES: usize = 10_000;
const LIFETIME: Duration = Duration::from_secs(3600);
/// The caches' fetch timeout: the default.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

fn token(i: usize) -> AccessToken {
    AccessToken::new(
        Secret::new(format!("access-token-{i:0>48}")),
        "Bearer",
        Issued::now(&SystemClock),
        LIFETIME,
    )
    .expect("token")
    .with_refresh_token(Some(Secret::new(format!("refresh-token-{i:0>48}"))))
}

fn key(i: usize) -> String {
    format!("vakifbank/customer-{i}")
}

/// A deterministic spread of held keys (no `rand` needed).
fn pick(n: usize, step: usize) -> usize {
    step.wrapping_mul(2_654_435_761) % n
}

fn count(n: usize) -> f64 {
    f64::from(u32::try_from(n).expect("a small count"))
}

/// Fills `store` with `n` tokens, saved concurrently: seconds per token.
async fn fill(store: &FileStore, n: usize) -> f64 {
    let began = Instant::now();
    let saves: Vec<_> = (0..n)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let stored = StoredToken::from_token(&token(i));
                store.save(&key(i), &stored).await.expect("fill");
            })
        })
        .collect();
    for save in saves {
        save.await.expect("fill task");
    }
    began.elapsed().as_secs_f64() / count(n)
}

/// Microseconds per load, save and compare-and-set save on each store
/// (holding `n` tokens): the median of [`PASSES`], each pass measuring
/// every store in turn, so a busy moment of the disk does not fall on one
/// size only.
async fn per_operation(stores: &[(FileStore, usize)]) -> Vec<[f64; 3]> {
    let mut passes = vec![Vec::new(); stores.len()];
    for pass in 0..PASSES {
        for ((store, n), passes) in stores.iter().zip(&mut passes) {
            passes.push(one_pass(store, *n, pass * (LOADS + 2 * SAVES)).await);
        }
    }
    passes
        .iter()
        .map(|passes| {
            std::array::from_fn(|m| {
                let mut values: Vec<f64> = passes.iter().map(|p| p[m]).collect();
                values.sort_by(f64::total_cmp);
                values[PASSES / 2]
            })
        })
        .collect()
}

async fn one_pass(store: &FileStore, n: usize, from: usize) -> [f64; 3] {
    let began = Instant::now();
    for step in from..from + LOADS {
        let found = store.load(&key(pick(n, step))).await.expect("load");
        assert!(found.is_some());
    }
    let load = began.elapsed().as_secs_f64() * 1e6 / count(LOADS);
    let from = from + LOADS;
    let began = Instant::now();
    for step in from..from + SAVES {
        let i = pick(n, step);
        store
            .save(&key(i), &StoredToken::from_token(&token(i)))
            .await
            .expect("save");
    }
    let save = began.elapsed().as_secs_f64() * 1e6 / count(SAVES);
    let from = from + SAVES;
    let began = Instant::now();
    for step in from..from + SAVES {
        let i = pick(n, step);
        store
            .save_if(
                &key(i),
                &StoredToken::from_token(&token(i)),
                SaveIf::NotNewer,
            )
            .await
            .expect("save_if");
    }
    let save_if = began.elapsed().as_secs_f64() * 1e6 / count(SAVES);
    [load, save, save_if]
}

/// A source the seeded caches never call.
struct Unused;

impl TokenSource for Unused {
    fn fetch<'a>(
        &'a self,
        _: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async { Err(Error::new(ErrorKind::Transport)) })
    }
}

/// `CACHES` seeded caches flushing at once: (failed, ms for all).
async fn seeded_caches(store: &FileStore) -> (usize, f64) {
    let store: Arc<dyn TokenStore> = Arc::new(store.clone());
    let caches: Vec<_> = (0..CACHES)
        .map(|i| {
            TokenCache::builder(Unused)
                .store(Arc::clone(&store), key(i))
                .fetch_timeout(FETCH_TIMEOUT)
                .seed(token(i))
                .build()
        })
        .collect();
    let began = Instant::now();
    let flushes: Vec<_> = caches
        .into_iter()
        .map(|cache| tokio::spawn(async move { cache.flush().await }))
        .collect();
    let mut failed = 0;
    for flush in flushes {
        if flush.await.expect("flush task").is_err() {
            failed += 1;
        }
    }
    (failed, began.elapsed().as_secs_f64() * 1e3)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = Vec::new();
    runtime.block_on(async {
        let mut dirs = Vec::new();
        let mut stores = Vec::new();
        let mut fills = Vec::new();
        for n in HELD {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = FileStore::new(dir.path().join("tokens"));
            fills.push(fill(&store, n).await * 1e6);
            stores.push((store, n));
            dirs.push(dir);
        }
        println!(
            "{:>8} {:>14} {:>10} {:>10} {:>12}",
            "tokens", "fill, µs/token", "load, µs", "save, µs", "save_if, µs"
        );
        let mut costs = Vec::new();
        for ((n, fill), [load, save, save_if]) in
            HELD.into_iter().zip(fills).zip(per_operation(&stores).await)
        {
            println!("{n:>8} {fill:>14.1} {load:>10.1} {save:>10.1} {save_if:>12.1}");
            costs.push((n, [fill, load, save, save_if]));
        }
        let (base_n, base) = costs[0];
        let metrics = ["fill, µs per token", "load, µs", "save, µs", "save_if, µs"];
        for &(n, cost) in &costs[1..] {
            for (m, metric) in metrics.iter().enumerate() {
                rows.push(format!(
                    r#"{{"bench":"FileStore cost per operation","subject":"{n} tokens held","baseline":"{base_n} tokens held","metric":"{metric}","subject_value":{:.3},"baseline_value":{:.3}}}"#,
                    cost[m], base[m]
                ));
            }
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(dir.path().join("tokens"));
        let (failed, ms) = seeded_caches(&store).await;
        let bound_ms = FETCH_TIMEOUT.as_secs_f64() * 1e3 / 4.0;
        println!(
            "{CACHES} seeded caches flushing at once: {failed} failed, all done in {ms:.0} ms (a store call may take {bound_ms:.0} ms)"
        );
        rows.push(format!(
            r#"{{"bench":"FileStore, {CACHES} seeded caches flushing at once","subject":"flushes failed (timed out)","baseline":"all flushes","metric":"count","subject_value":{failed},"baseline_value":{CACHES}}}"#
        ));
        rows.push(format!(
            r#"{{"bench":"FileStore, {CACHES} seeded caches flushing at once","subject":"all flushes done","baseline":"one store call's bound (fetch timeout / 4)","metric":"ms","subject_value":{ms:.1},"baseline_value":{bound_ms:.1}}}"#
        ));
    });
    println!("BENCH [{}]", rows.join(","));
}
