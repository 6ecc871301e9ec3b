//! What one seed simulates: the fleet's shape, the source's flavour, each
//! cache's settings, the fault rates, and the bound after faults stop.

use std::fmt;
use std::time::Duration;

use payauth_core::MAX_FAILURE_BACKOFF;

use crate::cache_api::{CacheConfig, RETRY_AFTER_CAP};
use crate::provider::{Flavour, HTTP_TIMEOUT, RATE_WINDOW};
use crate::rng::Rng;

/// The longest a caller may wait while faults go on: the fleet's longest
/// wait for a lease (at most 60 s here), store calls, and a fetch of up to
/// three attempts of the HTTP timeout each, with their retry waits.
pub(crate) const CHAOS_WAIT: Duration = Duration::from_secs(300);

/// One replica: its cache, and how many callers run on its main runtime
/// and on a second runtime that shares the cache.
#[derive(Debug, Clone)]
pub(crate) struct ReplicaSetup {
    pub(crate) cache: CacheConfig,
    pub(crate) main_callers: usize,
    pub(crate) side_callers: usize,
}

/// Everything one seed decides before the run.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    /// A fleet on a shared store, or one process on a plain store.
    pub(crate) fleet: bool,
    /// The one process's plain store is a real `FileStore` in a directory
    /// of this seed's own, shared with the operator's `payauth login`
    /// (else the store model, as a fleet's).
    pub(crate) file_store: bool,
    /// The fleet's shared store has a forget mark (one watch per replica,
    /// as `payauth-redis` and `payauth-postgres`), else each cache watches
    /// its own key (a store without one).
    pub(crate) forget_mark: bool,
    pub(crate) flavour: Flavour,
    pub(crate) replicas: Vec<ReplicaSetup>,
    /// The provider's usual token lifetime.
    pub(crate) lifetime: Duration,
    pub(crate) lease_ttl: Duration,
    pub(crate) max_wait: Duration,
    pub(crate) provider_faults: f64,
    pub(crate) store_faults: f64,
}

impl Setup {
    pub(crate) fn draw(rng: &mut Rng) -> Self {
        let fleet = rng.chance(0.8);
        let flavour = rng.weighted(&[
            (3, Flavour::ClientCredentials),
            (3, Flavour::RefreshOrLogin),
            (4, Flavour::RefreshOnly),
        ]);
        let count = if fleet { rng.range(2, 4) } else { 1 };
        let replicas = (0..count).map(|_| replica(rng)).collect();
        Self {
            fleet,
            flavour,
            replicas,
            lifetime: Duration::from_secs([30, 120, 300, 900][rng.index(4)]),
            lease_ttl: rng.millis(1_000, 5_000),
            max_wait: Duration::from_secs([10, 30, 60][rng.index(3)]),
            provider_faults: [0.05, 0.15, 0.3][rng.index(3)],
            store_faults: [0.0, 0.03, 0.1][rng.index(3)],
            // Drawn last, and only for one process: a fleet seed replays
            // as before.
            file_store: !fleet && rng.chance(0.5),
            // Drawn by `World::new` from a stream of its own: every seed
            // replays as before but for the watch.
            forget_mark: false,
        }
    }

    /// The bound after faults stop: every call that starts this long after
    /// the last fault must get a token, and no call waits past it. It adds
    /// up the worst wait of each stage: a fetch already in flight when
    /// faults stop (the provider crates' HTTP timeout, 30 s, or the cache's
    /// fetch timeout, 10 s, whichever is longer) and its store calls (5 s);
    /// a dead holder's lease running out (the lease TTL); the failure
    /// backoff reached by then (30 s plus a quarter of jitter) or a
    /// `Retry-After` it honours (at most [`RETRY_AFTER_CAP`]); the
    /// provider's rate-limit window; and 5 s for polls and steps.
    pub(crate) fn bound(&self) -> Duration {
        let in_flight = HTTP_TIMEOUT.max(crate::cache_api::FETCH_TIMEOUT) + Duration::from_secs(5);
        let backoff = (MAX_FAILURE_BACKOFF + MAX_FAILURE_BACKOFF / 4).max(RETRY_AFTER_CAP);
        in_flight + self.lease_ttl + backoff + RATE_WINDOW + Duration::from_secs(5)
    }
}

fn replica(rng: &mut Rng) -> ReplicaSetup {
    let retries = if rng.chance(0.7) {
        0
    } else {
        u32::try_from(rng.range(1, 2)).unwrap_or(1)
    };
    ReplicaSetup {
        cache: CacheConfig {
            margin: rng
                .chance(0.5)
                .then(|| Duration::from_secs(rng.range(5, 120))),
            failure_backoff: if rng.chance(0.6) {
                payauth_core::DEFAULT_FAILURE_BACKOFF
            } else {
                rng.millis(200, 2_000)
            },
            retries,
            retry_wait: rng.millis(100, 500),
            jitter: rng.unit(),
        },
        main_callers: usize::try_from(rng.range(1, 4)).unwrap_or(1),
        side_callers: if rng.chance(0.5) {
            usize::try_from(rng.range(1, 2)).unwrap_or(1)
        } else {
            0
        },
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} on a {} store, {:?}, lifetime {} s, lease TTL {} ms, max wait {} s, faults {}/{}",
            if self.fleet { "fleet" } else { "process" },
            self.replicas.len(),
            match (self.fleet, self.file_store) {
                (true, _) if self.forget_mark => "shared (forget mark)",
                (true, _) => "shared",
                (false, true) => "file",
                (false, false) => "plain",
            },
            self.flavour,
            self.lifetime.as_secs(),
            self.lease_ttl.as_millis(),
            self.max_wait.as_secs(),
            self.provider_faults,
            self.store_faults,
        )?;
        for (r, replica) in self.replicas.iter().enumerate() {
            let c = &replica.cache;
            write!(
                f,
                "; r{r}: {}+{} callers, margin {:?}, backoff {} ms, retries {}",
                replica.main_callers,
                replica.side_callers,
                c.margin.map(|m| m.as_secs()),
                c.failure_backoff.as_millis(),
                c.retries
            )?;
        }
        Ok(())
    }
}
