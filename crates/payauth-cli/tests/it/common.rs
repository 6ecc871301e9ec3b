//! What the CLI's tests share: the binary with a clean environment, a
//! sandbox on its own runtime, a raw TCP server that answers whatever a
//! test wants (or nothing at all), and the environment of each provider's
//! sandbox credentials.

use std::io::Read as _;
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use payauth_sandbox::{RunningSandbox, SandboxBuilder, defaults};

/// A sandbox on its own runtime, serving while the binary runs.
pub(crate) fn sandbox_from(builder: SandboxBuilder) -> (tokio::runtime::Runtime, RunningSandbox) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sandbox = runtime.block_on(builder.start()).unwrap();
    (runtime, sandbox)
}

/// A default sandbox.
pub(crate) fn sandbox() -> (tokio::runtime::Runtime, RunningSandbox) {
    sandbox_from(payauth_sandbox::Sandbox::builder())
}

/// Removes every `PAYAUTH_*` variable the caller's environment holds.
pub(crate) fn scrub(command: &mut std::process::Command) {
    for (name, _) in std::env::vars() {
        if name.starts_with("PAYAUTH_") {
            command.env_remove(name);
        }
    }
}

/// The binary (`assert_cmd`) with no `PAYAUTH_*` variables leaking in and
/// the environment pointed at `base_url`.
pub(crate) fn payauth(base_url: &str) -> assert_cmd::Command {
    let mut std = std::process::Command::new(assert_cmd::cargo::cargo_bin("payauth"));
    scrub(&mut std);
    std.env("PAYAUTH_ENVIRONMENT", base_url);
    assert_cmd::Command::from_std(std)
}

/// The binary with the sandbox's myPOS credentials in the environment.
pub(crate) fn mypos(base_url: &str) -> assert_cmd::Command {
    let mut command = payauth(base_url);
    command
        .env("PAYAUTH_MYPOS_CLIENT_ID", defaults::MYPOS_CLIENT_ID)
        .env("PAYAUTH_MYPOS_CLIENT_SECRET", defaults::MYPOS_CLIENT_SECRET);
    command
}

/// The same, as a plain process to spawn and signal.
pub(crate) fn spawn(base_url: &str, args: &[&str]) -> std::process::Child {
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("payauth"));
    scrub(&mut command);
    command
        .env("PAYAUTH_ENVIRONMENT", base_url)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A `payauth token` subcommand and the variables that carry its
/// credentials.
pub(crate) type Flow = (Vec<&'static str>, Vec<(&'static str, &'static str)>);

/// The sandbox credentials of one `payauth token` subcommand, as the
/// variables it reads, for every subcommand.
pub(crate) fn flows() -> Vec<Flow> {
    let vakifbank = vec![
        ("PAYAUTH_VAKIFBANK_CLIENT_ID", defaults::VAKIFBANK_CLIENT_ID),
        (
            "PAYAUTH_VAKIFBANK_CLIENT_SECRET",
            defaults::VAKIFBANK_CLIENT_SECRET,
        ),
        (
            "PAYAUTH_VAKIFBANK_CONSENT_ID",
            defaults::VAKIFBANK_CONSENT_ID,
        ),
    ];
    vec![
        (
            vec!["mypos"],
            vec![
                ("PAYAUTH_MYPOS_CLIENT_ID", defaults::MYPOS_CLIENT_ID),
                ("PAYAUTH_MYPOS_CLIENT_SECRET", defaults::MYPOS_CLIENT_SECRET),
            ],
        ),
        (vec!["vakifbank"], vakifbank.clone()),
        (vec!["vakifbank", "--flow", "b2b-credentials"], vakifbank),
        (
            vec!["iyzico-terminal"],
            vec![
                ("PAYAUTH_IYZICO_CLIENT_ID", defaults::IYZICO_CLIENT_ID),
                (
                    "PAYAUTH_IYZICO_CLIENT_SECRET",
                    defaults::IYZICO_CLIENT_SECRET,
                ),
                ("PAYAUTH_IYZICO_USERNAME", defaults::IYZICO_USERNAME),
                ("PAYAUTH_IYZICO_PASSWORD", defaults::IYZICO_PASSWORD),
            ],
        ),
        (
            vec!["iyzico-pwi"],
            vec![
                ("PAYAUTH_IYZICO_API_KEY", defaults::IYZICO_API_KEY),
                ("PAYAUTH_IYZICO_SECRET_KEY", defaults::IYZICO_SECRET_KEY),
                (
                    "PAYAUTH_IYZICO_PWI_SESSION_TOKEN",
                    defaults::PWI_SESSION_TOKEN,
                ),
                ("PAYAUTH_IYZICO_PWI_MEMBER", defaults::PWI_MEMBER_IDENTIFIER),
            ],
        ),
    ]
}

/// A gateway that takes every connection and never answers (a raw
/// gateway that answers is `payauth_testkit::gateway::RawGateway`).
pub(crate) struct Hung {
    pub(crate) port: u16,
    connections: Arc<AtomicUsize>,
}

impl Hung {
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                held.push(stream);
            }
        });
        Self { port, connections }
    }

    pub(crate) fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Connections taken so far.
    pub(crate) fn requests(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Waits until a client has connected.
    pub(crate) fn wait_for_a_request(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.requests() == 0 {
            assert!(Instant::now() < deadline, "no request reached the server");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A loopback port nothing listens on.
pub(crate) fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits at most `limit` for `child` to exit.
pub(crate) fn wait_at_most(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `signal` (`TERM`, `INT`) to `child` with kill(1).
pub(crate) fn signal(child: &std::process::Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Everything a finished child printed.
pub(crate) fn drain(child: &mut std::process::Child) -> (String, String) {
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    (stdout, stderr)
}

/// The one JSON object a `--json` run printed on stdout.
pub(crate) fn json(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let line = lines.next().unwrap_or_else(|| panic!("no JSON on stdout"));
    assert!(lines.next().is_none(), "one JSON line, got:\n{text}");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// A child's stdout, line by line, each line awaited at most 20 s (so a
/// binary that never prints what a test waits for fails it, not hangs it).
pub(crate) struct Lines(std::sync::mpsc::Receiver<String>);

impl Lines {
    pub(crate) fn new(stdout: std::process::ChildStdout) -> Self {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Self(receiver)
    }

    /// The next line; `None` once stdout is closed.
    pub(crate) fn next(&self) -> Option<String> {
        match self.0.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => Some(line),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("no line within 20 s"),
        }
    }

    /// Lines up to and including the first that starts with `until`.
    pub(crate) fn until(&self, until: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self
                .next()
                .unwrap_or_else(|| panic!("stdout ended before {until:?}: {lines:?}"));
            let done = line.starts_with(until);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Every line left, once stdout closes.
    pub(crate) fn rest(&self) -> String {
        let mut rest = String::new();
        while let Some(line) = self.next() {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    }
}
