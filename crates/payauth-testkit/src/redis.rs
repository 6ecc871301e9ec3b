//! A real Redis for tests: the one `.ci/run` started (`PAYAUTH_REDIS_URL`),
//! else a `redis-server` started here on a free loopback port, else a
//! visible skip — which CI (`CI` set) refuses. The same for a three-node
//! Redis Cluster (`PAYAUTH_REDIS_CLUSTER_URLS`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
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
    _servers: Servers,
}

impl Redis {
    /// The Redis to use, or `None` (after printing why) when there is none
    /// outside CI.
    ///
    /// # Panics
    /// In CI, when no Redis can be had.
    #[must_use]
    pub fn get() -> Option<Self> {
        let (url, servers) = match std::env::var("PAYAUTH_REDIS_URL") {
            Ok(url) => (url, Servers::default()),
            Err(_) => available("Redis", start_server())?,
        };
        Some(Self {
            url,
            prefix: unique_prefix(),
            _servers: servers,
        })
    }
}

/// A three-node Redis Cluster for tests: `PAYAUTH_REDIS_CLUSTER_URLS`
/// (comma-separated), else three `redis-server`s started here in cluster
/// mode and joined with `redis-cli --cluster create`, else a visible skip
/// — which CI (`CI` set) refuses. Nodes started here stop when this drops.
#[derive(Debug)]
pub struct RedisCluster {
    /// One URL per primary.
    pub urls: Vec<String>,
    /// A key prefix no other test uses.
    pub prefix: String,
    _servers: Servers,
}

impl RedisCluster {
    /// The cluster to use, or `None` (after printing why) outside CI.
    ///
    /// # Panics
    /// In CI, when no cluster can be had.
    #[must_use]
    pub fn get() -> Option<Self> {
        let (urls, servers) = match std::env::var("PAYAUTH_REDIS_CLUSTER_URLS") {
            Ok(urls) => (
                urls.split(',').map(str::to_owned).collect(),
                Servers::default(),
            ),
            Err(_) => available("Redis Cluster", start_cluster())?,
        };
        Some(Self {
            urls,
            prefix: unique_prefix(),
            _servers: servers,
        })
    }
}

/// The started servers, or `None` after a visible skip; in CI, a panic.
fn available<T>(what: &str, started: Result<T, String>) -> Option<T> {
    match started {
        Ok(started) => Some(started),
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!(
                "CI must run the {what} tests, but there is none: {why} (.ci/run installs redis-server)"
            )
        }
        Err(why) => {
            eprintln!("SKIPPED: no {what} ({why}); install redis-server or set PAYAUTH_REDIS_URL");
            None
        }
    }
}

/// Servers started here, and their scratch directory: stopped and removed
/// on drop, also when starting fails half way.
#[derive(Debug, Default)]
struct Servers {
    children: Vec<Child>,
    dir: Option<PathBuf>,
}

impl Servers {
    /// Starts `redis-server` on `port` with `extra` arguments, in `dir`,
    /// and waits until it listens.
    fn spawn(&mut self, port: u16, extra: &[&str], dir: &Path) -> Result<(), String> {
        let child = Command::new("redis-server")
            .current_dir(dir)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        self.children.push(child);
        wait_listening(port)
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
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

fn start_server() -> Result<(String, Servers), String> {
    let port = free_port()?;
    let mut servers = Servers::default();
    servers.spawn(port, &[], &std::env::temp_dir())?;
    Ok((format!("redis://127.0.0.1:{port}/"), servers))
}

fn start_cluster() -> Result<(Vec<String>, Servers), String> {
    let mut servers = Servers::default();
    let dir = std::env::temp_dir().join(unique_prefix());
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    servers.dir = Some(dir.clone());
    let mut ports = Vec::new();
    while ports.len() < 3 {
        let port = free_port()?;
        // The cluster bus listens on port + 10000.
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            ports.push(port);
        }
    }
    for port in &ports {
        let config_file = format!("nodes-{port}.conf");
        let extra = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            &config_file,
        ];
        servers.spawn(*port, &extra, &dir)?;
    }
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let created = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&nodes)
        .arg("--cluster-yes")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run redis-cli: {e}"))?;
    if !created.success() {
        return Err("redis-cli --cluster create failed".to_owned());
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for port in &ports {
        loop {
            let info = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "cluster", "info"])
                .output()
                .map_err(|e| e.to_string())?;
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                break;
            }
            if Instant::now() > deadline {
                return Err("the cluster did not become ok within 20 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let urls = ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}/"))
        .collect();
    Ok((urls, servers))
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn wait_listening(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("redis-server did not listen on {port} within 10 s"))
}
