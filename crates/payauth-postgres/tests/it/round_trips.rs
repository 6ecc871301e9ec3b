//! Store round trips per refresh, PostgreSQL beside Redis, counted by one
//! method on both: each store sits behind a loopback TCP proxy that
//! counts the client's turns on the wire (a turn begins when the client
//! sends after the server last spoke: one request and its answer, however
//! many bytes or segments each takes), and behind a wrapper that counts
//! the calls the cache makes on the store traits. Counted in steady state:
//! a warm-up refresh first prepares the statements and loads the scripts,
//! which both stores do once per connection or server.
//!
//! `cargo nextest run -p payauth-postgres -E 'test(/round_trips/)' --no-capture`
//! prints the table recorded in BENCHMARKS.md.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use payauth_core::{
    AccessToken, BoxFuture, Clock, Error, ErrorKind, Issued, Lease, ManualClock, SaveIf, Secret,
    SharedStore, StoredFailure, StoredToken, TokenCache, TokenSource, TokenStore,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::support::Backend;

const LIFETIME: Duration = Duration::from_secs(600);

/// A loopback proxy to a server, counting round trips; it can stop
/// passing the server's answers on (a server that hangs).
pub(crate) struct Wire {
    pub(crate) addr: SocketAddr,
    trips: Arc<AtomicUsize>,
    stalled: Arc<AtomicBool>,
}

impl Wire {
    pub(crate) async fn to(server: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let trips = Arc::new(AtomicUsize::new(0));
        let stalled = Arc::new(AtomicBool::new(false));
        let (counted, stall) = (Arc::clone(&trips), Arc::clone(&stalled));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(server).await.unwrap();
                tokio::spawn(relay(
                    client,
                    server,
                    Arc::clone(&counted),
                    Arc::clone(&stall),
                ));
            }
        });
        Self {
            addr,
            trips,
            stalled,
        }
    }

    fn trips(&self) -> usize {
        self.trips.load(Ordering::SeqCst)
    }

    /// From now on the server's answers are dropped.
    pub(crate) fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }
}

/// Relays one connection both ways; each client turn counts one trip.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    trips: Arc<AtomicUsize>,
    stalled: Arc<AtomicBool>,
) {
    let (mut client_in, mut client_out) = client.into_split();
    let (mut server_in, mut server_out) = server.into_split();
    // Whether the server spoke last (a client turn starts a round trip).
    let server_spoke = Arc::new(AtomicBool::new(true));
    let spoke = Arc::clone(&server_spoke);
    let up = async move {
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = match client_in.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if server_spoke.swap(false, Ordering::SeqCst) {
                trips.fetch_add(1, Ordering::SeqCst);
            }
            if server_out.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = match server_in.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if stalled.load(Ordering::SeqCst) {
                continue;
            }
            spoke.store(true, Ordering::SeqCst);
            if client_out.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    tokio::join!(up, down);
}

/// `url` with its `127.0.0.1:<port>` pointed at `to`, and the address it
/// pointed at.
pub(crate) fn redirect(url: &str, to: SocketAddr) -> (String, SocketAddr) {
    let host = "127.0.0.1:";
    let start = url.find(host).expect("a loopback URL") + host.len();
    let end = start
        + url[start..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(url.len() - start);
    let server = format!("127.0.0.1:{}", &url[start..end]).parse().unwrap();
    (
        format!("{}{}{}", &url[..start - host.len()], to, &url[end..]),
        server,
    )
}

/// Calls the cache made on the store traits, by kind.
#[derive(Default)]
struct Calls {
    load: AtomicUsize,
    save: AtomicUsize,
    save_if: AtomicUsize,
    clear: AtomicUsize,
    try_lease: AtomicUsize,
    lease_save: AtomicUsize,
    release: AtomicUsize,
    share_failure: AtomicUsize,
    shared_failure: AtomicUsize,
}

impl Calls {
    fn snapshot(&self) -> [usize; 9] {
        [
            &self.load,
            &self.save,
            &self.save_if,
            &self.clear,
            &self.try_lease,
            &self.lease_save,
            &self.release,
            &self.share_failure,
            &self.shared_failure,
        ]
        .map(|n| n.load(Ordering::SeqCst))
    }
}

const CALL_NAMES: [&str; 9] = [
    "load",
    "save",
    "save_if",
    "clear",
    "try_lease",
    "lease save",
    "release",
    "share_failure",
    "shared_failure",
];

fn count(n: &AtomicUsize) {
    n.fetch_add(1, Ordering::SeqCst);
}

/// A store that counts the calls made on it.
struct Counting {
    inner: Arc<dyn SharedStore>,
    calls: Arc<Calls>,
}

impl TokenStore for Counting {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        count(&self.calls.load);
        self.inner.load(key)
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
    ) -> BoxFuture<'a, Result<(), Error>> {
        count(&self.calls.save);
        self.inner.save(key, token)
    }

    fn clear<'a>(
        &'a self,
        key: &'a str,
        if_holds: Option<&'a Secret>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        count(&self.calls.clear);
        self.inner.clear(key, if_holds)
    }

    fn save_if<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
        condition: SaveIf<'a>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        count(&self.calls.save_if);
        self.inner.save_if(key, token, condition)
    }
}

impl SharedStore for Counting {
    fn try_lease<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Box<dyn Lease>>, Error>> {
        count(&self.calls.try_lease);
        Box::pin(async move {
            Ok(self.inner.try_lease(key).await?.map(|inner| {
                Box::new(CountingLease {
                    inner,
                    calls: Arc::clone(&self.calls),
                }) as Box<dyn Lease>
            }))
        })
    }

    fn poll_interval(&self) -> Duration {
        self.inner.poll_interval()
    }

    fn max_wait(&self) -> Duration {
        self.inner.max_wait()
    }

    fn share_failure<'a>(
        &'a self,
        key: &'a str,
        failure: &'a StoredFailure,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Error>> {
        count(&self.calls.share_failure);
        self.inner.share_failure(key, failure, ttl)
    }

    fn shared_failure<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredFailure>, Error>> {
        count(&self.calls.shared_failure);
        self.inner.shared_failure(key)
    }
}

struct CountingLease {
    inner: Box<dyn Lease>,
    calls: Arc<Calls>,
}

impl Lease for CountingLease {
    fn save<'a>(&'a self, token: &'a StoredToken) -> BoxFuture<'a, Result<(), Error>> {
        count(&self.calls.lease_save);
        self.inner.save(token)
    }

    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>> {
        count(&self.calls.release);
        self.inner.release()
    }

    fn held(&self) -> bool {
        self.inner.held()
    }
}

/// Hands out tokens with rotating refresh tokens, or refuses.
struct Upstream {
    clock: Arc<ManualClock>,
    fetches: AtomicUsize,
    refuse: AtomicBool,
}

impl TokenSource for Upstream {
    fn fetch<'a>(
        &'a self,
        _: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async move {
            if self.refuse.load(Ordering::SeqCst) {
                return Err(Error::new(ErrorKind::InvalidClient).with_status(401));
            }
            let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(AccessToken::new(
                Secret::new(format!("a-{n}")),
                "Bearer",
                Issued::now(self.clock.as_ref()),
                LIFETIME,
            )?
            .with_refresh_token(Some(Secret::new(format!("r-{n}")))))
        })
    }
}

/// What one refresh cost on one backend.
struct Cost {
    trips: usize,
    calls: [usize; 9],
}

#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    /// A fleet replica refreshes an expired token under the lease.
    FleetRefresh,
    /// A fleet replica's refresh is refused, and the refusal shared.
    FleetRefused,
    /// A single cache on the store (no fleet) refreshes.
    PlainRefresh,
    /// A cache seeded with a new customer's first token (a login just
    /// exchanged) saves it: nothing stored under its key yet.
    FirstSave,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::FleetRefresh => "fleet replica, refresh under the lease",
            Self::FleetRefused => "fleet replica, refresh refused and shared",
            Self::PlainRefresh => "single cache (no fleet), refresh",
            Self::FirstSave => "a new customer's login saved (seeded cache, flush)",
        }
    }
}

/// One steady-state refresh in `scenario` on `backend`, counted.
async fn one_refresh(backend: &Backend, scenario: Scenario) -> Cost {
    let (url, prefix) = backend.url_and_prefix();
    let (_, server) = redirect(url, "127.0.0.1:1".parse().unwrap());
    let wire = Wire::to(server).await;
    let (url, _) = redirect(url, wire.addr);
    let inner = backend.replica_at(&url, prefix).await;
    let calls = Arc::new(Calls::default());
    let store: Arc<dyn SharedStore> = Arc::new(Counting {
        inner,
        calls: Arc::clone(&calls),
    });
    // Warm-up: the same scenario on another key, so every statement is
    // prepared, every script loaded and the connections open.
    // Keys of their own: the scenarios share the test's prefix.
    let key = format!("round-trips:{}", scenario.name());
    refresh(&store, scenario, &format!("{key}:warm-up"), || {}).await;
    let mut before = (0, [0; 9]);
    refresh(&store, scenario, &key, || {
        before = (wire.trips(), calls.snapshot());
    })
    .await;
    let after = calls.snapshot();
    Cost {
        trips: wire.trips() - before.0,
        calls: std::array::from_fn(|i| after[i] - before.1[i]),
    }
}

/// A cache on `key` refreshes twice, then `mark` is called and it makes
/// the refresh of `scenario`.
async fn refresh(store: &Arc<dyn SharedStore>, scenario: Scenario, key: &str, mark: impl FnOnce()) {
    let clock = Arc::new(ManualClock::new());
    let upstream = Arc::new(Upstream {
        clock: Arc::clone(&clock),
        fetches: AtomicUsize::new(0),
        refuse: AtomicBool::new(false),
    });
    let builder = TokenCache::builder(Arc::clone(&upstream) as Arc<dyn TokenSource>)
        .clock(Arc::clone(&clock) as Arc<dyn Clock>)
        .jitter(0.0);
    if scenario == Scenario::FirstSave {
        let login = upstream.fetch(None).await.unwrap();
        let cache = builder
            .store(Arc::clone(store) as Arc<dyn TokenStore>, key)
            .seed(login)
            .build();
        mark();
        cache.flush().await.unwrap();
        return;
    }
    let cache = if scenario == Scenario::PlainRefresh {
        builder.store(Arc::clone(store) as Arc<dyn TokenStore>, key)
    } else {
        builder.shared_store(Arc::clone(store), key)
    }
    .build();
    for _ in 0..2 {
        cache.token().await.unwrap();
        clock.advance(LIFETIME);
    }
    settle().await;
    mark();
    if scenario == Scenario::FleetRefused {
        upstream.refuse.store(true, Ordering::SeqCst);
        cache.token().await.unwrap_err();
    } else {
        cache.token().await.unwrap();
    }
    settle().await;
}

/// Lets a lease's release, sent after the caller was served, land.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

fn calls_text(calls: &[usize; 9]) -> String {
    let parts: Vec<String> = calls
        .iter()
        .zip(CALL_NAMES)
        .filter(|(n, _)| **n > 0)
        .map(|(n, name)| format!("{n} {name}"))
        .collect();
    parts.join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_needs_no_more_store_round_trips_per_refresh_than_redis() {
    let backends = Backend::all();
    if backends.len() < 2 {
        eprintln!("SKIPPED: round trips compare PostgreSQL with Redis; both are needed");
        return;
    }
    println!("| refresh | store calls | PostgreSQL round trips | Redis round trips |");
    println!("|---|---|---:|---:|");
    for scenario in [
        Scenario::FleetRefresh,
        Scenario::FleetRefused,
        Scenario::PlainRefresh,
        Scenario::FirstSave,
    ] {
        let mut costs = Vec::new();
        for backend in &backends {
            costs.push(one_refresh(backend, scenario).await);
        }
        let (postgres, redis) = (&costs[0], &costs[1]);
        println!(
            "| {} | {} | {} | {} |",
            scenario.name(),
            calls_text(&postgres.calls),
            postgres.trips,
            redis.trips
        );
        assert_eq!(
            postgres.calls,
            redis.calls,
            "the cache makes the same store calls on both ({})",
            scenario.name()
        );
        assert!(
            postgres.trips <= redis.trips,
            "{}: PostgreSQL {} round trips, Redis {}",
            scenario.name(),
            postgres.trips,
            redis.trips
        );
    }
}
