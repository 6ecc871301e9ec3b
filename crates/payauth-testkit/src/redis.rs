//! A real Redis for tests: the one `.ci/run` started (`PAYAUTH_REDIS_URL`),
//! else a `redis-server` started here on a free loopback port, else a
//! visible skip — which CI (`CI` set) refuses.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A Redis to test against; a server started here stops when this drops.
#[derive(Debug)]
pub struct Redis {
    /// `redis://127.0.0.1:<port>/`.
    pub url: String,
    /// A key prefix no other test uses, so tests can share one server.
    pub prefix: String,
    child: Option<Child>,
}

impl Redis {
    /// The Redis to use, or `None` (after printing why) when there is none
    /// outside CI.
    ///
    /// # Panics
    /// In CI, when no Redis can be had.
    #[must_use]
    pub fn get() -> Option<Self> {
        let prefix = unique_prefix();
        if let Ok(url) = std::env::var("PAYAUTH_REDIS_URL") {
            return Some(Self {
                url,
                prefix,
                child: None,
            });
        }
        match start_server() {
            Ok((url, child)) => Some(Self {
                url,
                prefix,
                child: Some(child),
            }),
            Err(why) if std::env::var_os("CI").is_some() => {
                panic!("CI must run the Redis tests, but no Redis: {why} (.ci/run starts one)")
            }
            Err(why) => {
                eprintln!(
                    "SKIPPED: no Redis ({why}); install redis-server or set PAYAUTH_REDIS_URL"
                );
                None
            }
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn unique_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "test-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn start_server() -> Result<(String, Child), String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let mut child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start redis-server: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((format!("redis://127.0.0.1:{port}/"), child));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("redis-server exited: {status}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    Err("redis-server did not listen within 10 s".to_owned())
}
