//! A Redis without persistence restarts empty under a fleet of replicas,
//! each its own process (this test binary run again as a child, driven
//! over its stdin), refreshing a VakıfBank customer's login on the sandbox
//! (whose refresh tokens work once).
//!
//! These tests start their own `redis-server` (they must restart it), on a
//! free loopback port, whatever `PAYAUTH_REDIS_URL` says; without
//! `redis-server` they are skipped visibly, and CI (`CI` set) fails them.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use payauth_core::{AccessToken, Clock, ManualClock, Secret, StoredToken, TokenCache, TokenStore};
use payauth_redis::RedisStore;
use payauth_sandbox::{Endpoint, RunningSandbox, Sandbox};

use crate::fleet::login;

const KEY: &str = "vakifbank:login";
/// Set in a child: `<redis url>|<sandbox base url>|<converge wait in ms>`;
/// the child is a replica.
const REPLICA: &str = "PAYAUTH_TEST_REDIS_RESTART_REPLICA";
/// The longest a replica may take to answer one command.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// The replicas' converge wait: short, for a quick test (the default is
/// 6 s); each replica holding a refresh token reads Redis every third of it.
const CONVERGE_WAIT: Duration = Duration::from_millis(900);

/// A `redis-server` of this test's own, with no persistence, that can be
/// restarted empty on the same port.
struct PrivateRedis {
    port: u16,
    server: Child,
}

impl PrivateRedis {
    /// Started, or `None` after a visible skip; in CI, a panic.
    fn start() -> Option<Self> {
        let started = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())
            .and_then(|addr| Ok((addr.port(), spawn_server(addr.port())?)));
        match started {
            Ok((port, server)) => Some(Self { port, server }),
            Err(why) if std::env::var_os("CI").is_some() => {
                panic!(
                    "CI must run the Redis restart tests, but: {why} (.ci/run installs redis-server)"
                )
            }
            Err(why) => {
                eprintln!("SKIPPED: no private redis-server ({why}); install redis-server");
                None
            }
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server and starts a new one on the same port: every key
    /// is gone, as after a restart without persistence.
    fn restart_empty(&mut self) {
        self.server.kill().unwrap();
        self.server.wait().unwrap();
        self.server = spawn_server(self.port).expect("redis-server restarts");
    }

    async fn store(&self) -> RedisStore {
        RedisStore::connect(&Secret::new(self.url()))
            .await
            .expect("connect to the private Redis")
    }

    /// Whether a shared fetch failure is stored for [`KEY`].
    async fn holds_a_shared_failure(&self) -> bool {
        let failure_key = self
            .store()
            .await
            .redis_keys(KEY)
            .0
            .replace(":token", ":failure");
        let mut conn = redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        redis::cmd("EXISTS")
            .arg(&failure_key)
            .query_async::<i64>(&mut conn)
            .await
            .unwrap()
            == 1
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn spawn_server(port: u16) -> Result<Child, String> {
    let mut server = Command::new("redis-server")
        .current_dir(std::env::temp_dir())
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start redis-server: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = server.kill();
    let _ = server.wait();
    Err(format!("redis-server did not listen on {port} within 10 s"))
}

/// A replica in its own process: this test binary, run again with
/// [`REPLICA`] set, executing one command per line.
struct Replica {
    child: Child,
    stdin: ChildStdin,
    answers: Receiver<String>,
}

impl Replica {
    /// A replica with [`CONVERGE_WAIT`].
    fn spawn(test: &str, redis: &PrivateRedis, sandbox: &RunningSandbox) -> Self {
        Self::spawn_waiting(test, redis, sandbox, CONVERGE_WAIT)
    }

    /// A replica with its converge wait (zero: off).
    fn spawn_waiting(
        test: &str,
        redis: &PrivateRedis,
        sandbox: &RunningSandbox,
        converge_wait: Duration,
    ) -> Self {
        let settings = format!(
            "{}|{}|{}",
            redis.url(),
            sandbox.base_url(),
            converge_wait.as_millis()
        );
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--test-threads", "1"])
            .arg("--include-ignored") // the replica of an ignored test too
            .env(REPLICA, settings)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (send, answers) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                // Its own line, but libtest's "test … " may precede it.
                if let Some((_, answer)) = line.split_once("REPLICA: ") {
                    let _ = send.send(answer.to_owned());
                }
            }
        });
        Self {
            child,
            stdin,
            answers,
        }
    }

    /// Sends `command`; the replica's answer, within [`ANSWER_WITHIN`].
    fn ask(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        // The sandbox runs on this test's runtime: let it work meanwhile.
        tokio::task::block_in_place(|| match self.answers.recv_timeout(ANSWER_WITHIN) {
            Ok(answer) => answer,
            Err(RecvTimeoutError::Timeout) => panic!("no answer to {command:?} in time"),
            Err(RecvTimeoutError::Disconnected) => panic!("the replica died on {command:?}"),
        })
    }

    /// The replica's `token()`: `Ok(access token)` or `Err(error kind)`.
    fn token(&mut self) -> Result<String, String> {
        let answer = self.ask("token");
        match answer.split_once(' ') {
            Some(("ok", token)) => Ok(token.to_owned()),
            Some(("err", kind)) => Err(kind.to_owned()),
            _ => panic!("unexpected answer {answer:?}"),
        }
    }

    /// Moves the replica's clock `by` forward.
    fn advance(&mut self, by: Duration) {
        assert_eq!(self.ask(&format!("advance {}", by.as_millis())), "advanced");
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In a child process (`REPLICA` set): a replica of the customer's login on
/// its own Redis connection, HTTP client and clock, executing the commands
/// on its stdin until it closes. `true` when this process is such a child.
async fn replica_role() -> bool {
    let Ok(settings) = std::env::var(REPLICA) else {
        return false;
    };
    let mut settings = settings.split('|');
    let (redis_url, sandbox_url, converge_ms) = (
        settings.next().unwrap(),
        settings.next().unwrap(),
        settings.next().unwrap().parse().unwrap(),
    );
    let clock = Arc::new(ManualClock::new());
    let store = RedisStore::connect(&Secret::new(redis_url.to_owned()))
        .await
        .unwrap()
        .with_lease_ttl(Duration::from_secs(2))
        .with_poll_interval(Duration::from_millis(20))
        .with_converge_wait(Duration::from_millis(converge_ms));
    let bank = payauth_vakifbank::VakifBank::new(
        &payauth_vakifbank::VakifBankSettings::new(
            payauth_sandbox::defaults::VAKIFBANK_CLIENT_ID,
            Secret::new(payauth_sandbox::defaults::VAKIFBANK_CLIENT_SECRET),
            payauth_core::Environment::Custom(sandbox_url.to_owned()),
        ),
        &payauth_core::http::default_client().unwrap(),
    )
    .unwrap()
    .with_clock(Arc::clone(&clock) as Arc<dyn Clock>);
    let cache = TokenCache::builder(bank.refresh_token(&["account"]))
        .clock(Arc::clone(&clock) as Arc<dyn Clock>)
        .shared_store(Arc::new(store), KEY)
        .failure_backoff(Duration::from_secs(5))
        .jitter(0.0)
        .build();
    let mut commands = std::io::stdin().lock().lines();
    while let Some(Ok(command)) = commands.next() {
        let answer = match command.split_once(' ') {
            Some(("advance", ms)) => {
                clock.advance(Duration::from_millis(ms.parse().unwrap()));
                "advanced".to_owned()
            }
            _ => match cache.token().await {
                Ok(token) => format!("ok {}", token.secret().expose_secret()),
                Err(error) => format!("err {:?}", error.kind()),
            },
        };
        println!("\nREPLICA: {answer}");
    }
    true
}

/// The customer logs in; the login is stored where the replicas find it.
async fn logged_in(
    sandbox: &RunningSandbox,
    redis: &PrivateRedis,
) -> (AccessToken, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let first = login(sandbox, &clock).await;
    redis
        .store()
        .await
        .save(KEY, &StoredToken::from_token(&first))
        .await
        .unwrap();
    (first, clock)
}

fn secret(token: &AccessToken) -> String {
    token.secret().expose_secret().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_replica_on_a_redis_restarted_empty_shares_no_invalid_grant_and_the_live_login_survives()
 {
    const NAME: &str = "restart::a_fresh_replica_on_a_redis_restarted_empty_shares_no_invalid_grant_and_the_live_login_survives";
    if replica_role().await {
        return;
    }
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let sandbox = Sandbox::builder().start().await.unwrap();
    let (first, _) = logged_in(&sandbox, &redis).await;
    // The converge wait off: no replica writes its token back before its
    // own next fetch, so the fresh replica finds Redis empty.
    let (mut a, mut b) = (
        Replica::spawn_waiting(NAME, &redis, &sandbox, Duration::ZERO),
        Replica::spawn_waiting(NAME, &redis, &sandbox, Duration::ZERO),
    );
    assert_eq!(a.token(), Ok(secret(&first)), "taken from Redis");
    assert_eq!(b.token(), Ok(secret(&first)), "taken from Redis");
    // A rotates the refresh token; B takes the result from Redis.
    a.advance(first.lifetime());
    let second = a.token().expect("refreshed");
    assert_ne!(second, secret(&first));
    b.advance(first.lifetime());
    assert_eq!(b.token(), Ok(second.clone()), "taken from Redis");
    assert_eq!(
        sandbox.requests(Endpoint::VakifbankToken),
        2,
        "login, one refresh"
    );

    redis.restart_empty();
    assert_eq!(
        redis.store().await.load(KEY).await.unwrap(),
        None,
        "Redis forgot"
    );

    // A replica starting now has no refresh token: it fails, but the
    // provider refused nothing, and nothing is shared with the fleet.
    let mut fresh = Replica::spawn_waiting(NAME, &redis, &sandbox, Duration::ZERO);
    assert_eq!(fresh.token(), Err("InvalidGrant".to_owned()));
    assert_eq!(
        sandbox.requests(Endpoint::VakifbankToken),
        2,
        "nothing was sent to the provider"
    );
    assert!(
        !redis.holds_a_shared_failure().await,
        "no invalid_grant shared"
    );

    // A and B keep serving the valid token, and A refreshes with the live
    // refresh token at once (within the fresh replica's backoff), which
    // B then takes from Redis: the login survived the restart.
    assert_eq!(a.token(), Ok(second.clone()));
    assert_eq!(b.token(), Ok(second.clone()));
    a.advance(first.lifetime());
    let third = a.token().expect("refreshed with the live refresh token");
    assert_ne!(third, second);
    b.advance(first.lifetime());
    assert_eq!(b.token(), Ok(third.clone()), "taken from Redis");
    // The fresh replica, once its own failure backoff (5 s) is over, takes
    // it from Redis too.
    fresh.advance(Duration::from_secs(6));
    assert_eq!(fresh.token(), Ok(third), "taken from Redis");
    assert_eq!(
        sandbox.requests(Endpoint::VakifbankToken),
        3,
        "one more refresh"
    );
    sandbox.shutdown().await;
}

/// The customer logged in, replicas A and B (with `converge_wait`) took
/// the login from Redis, A rotated its refresh token (saved in Redis), and
/// Redis restarted empty while B still holds the first token, whose
/// refresh token the provider has rotated away. The first and second
/// access tokens.
async fn restarted_under_two_lineages(
    name: &str,
    redis: &mut PrivateRedis,
    sandbox: &RunningSandbox,
    converge_wait: Duration,
) -> (Replica, Replica, AccessToken, String) {
    let (first, _) = logged_in(sandbox, redis).await;
    let (mut a, mut b) = (
        Replica::spawn_waiting(name, redis, sandbox, converge_wait),
        Replica::spawn_waiting(name, redis, sandbox, converge_wait),
    );
    assert_eq!(a.token(), Ok(secret(&first)), "taken from Redis");
    assert_eq!(b.token(), Ok(secret(&first)), "taken from Redis");
    a.advance(first.lifetime());
    let second = a.token().expect("refreshed");
    assert_ne!(second, secret(&first));
    // B's first token is still valid: B does not look at Redis.
    assert_eq!(b.token(), Ok(secret(&first)));
    // The watches have settled (each has read Redis at least once): what
    // finds the restart is their next look, not their first.
    tokio::time::sleep(converge_wait * 2).await;
    redis.restart_empty();
    (a, b, first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_converge_wait_off_a_replica_refused_for_a_rotated_away_refresh_token_after_a_restart_takes_no_login_from_the_replica_holding_the_live_one()
 {
    const NAME: &str = "restart::with_the_converge_wait_off_a_replica_refused_for_a_rotated_away_refresh_token_after_a_restart_takes_no_login_from_the_replica_holding_the_live_one";
    if replica_role().await {
        return;
    }
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let sandbox = Sandbox::builder().start().await.unwrap();
    let (mut a, mut b, first, second) =
        restarted_under_two_lineages(NAME, &mut redis, &sandbox, Duration::ZERO).await;

    // What happens with the converge wait off (as before it existed): B's
    // token is due, Redis is empty, A is idle and writes nothing back, and
    // B refreshes with the refresh token A rotated away; the provider
    // refuses it and B's callers get `invalid_grant`.
    b.advance(first.lifetime());
    assert_eq!(b.token(), Err("InvalidGrant".to_owned()));
    assert_eq!(
        sandbox.requests(Endpoint::VakifbankToken),
        3,
        "login, A's refresh, B's refused one"
    );
    // The refusal names B's refresh token, not A's: A keeps serving and
    // refreshes with the live refresh token (within B's backoff), and B
    // takes A's new token from Redis once its backoff is over.
    assert_eq!(a.token(), Ok(second.clone()));
    a.advance(first.lifetime());
    let third = a.token().expect("refreshed with the live refresh token");
    assert_ne!(third, second);
    b.advance(Duration::from_secs(6));
    assert_eq!(b.token(), Ok(third), "taken from Redis");
    assert_eq!(
        sandbox.requests(Endpoint::VakifbankToken),
        4,
        "one more refresh"
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_empty_no_replica_refreshes_with_a_refresh_token_the_fleet_rotated_away() {
    const NAME: &str = "restart::after_a_restart_empty_no_replica_refreshes_with_a_refresh_token_the_fleet_rotated_away";
    if replica_role().await {
        return;
    }
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let sandbox = Sandbox::builder().start().await.unwrap();
    let (mut a, mut b, first, second) =
        restarted_under_two_lineages(NAME, &mut redis, &sandbox, CONVERGE_WAIT).await;
    // B's token is due and Redis is empty: B writes its first token back
    // and waits; A, idle, finds the older token over its own and writes
    // the second back; B takes it up (still fresh) and sends nothing. A
    // provider that revokes a whole lineage when a rotated-away refresh
    // token comes back (as OAuth 2.0 security advice suggests) would have
    // ended the login had B refreshed.
    b.advance(first.lifetime());
    assert_eq!(b.token(), Ok(second.clone()), "B converged on A's token");
    assert_eq!(
        sandbox.requests(Endpoint::VakifbankToken),
        2,
        "login and A's refresh: the rotated-away refresh token was never sent"
    );
    assert_eq!(a.token(), Ok(second.clone()), "A unaffected");
    // A replica started now finds the newest token in Redis.
    let mut fresh = Replica::spawn(NAME, &redis, &sandbox);
    assert_eq!(fresh.token(), Ok(second.clone()), "taken from Redis");
    // The next refresh starts from the live refresh token.
    a.advance(first.lifetime());
    let third = a.token().expect("refreshed with the live refresh token");
    assert_ne!(third, second);
    b.advance(first.lifetime());
    assert_eq!(b.token(), Ok(third), "taken from Redis");
    assert_eq!(sandbox.requests(Endpoint::VakifbankToken), 3);
    sandbox.shutdown().await;
}
