//! What the CLI's tests share: the binary with a clean environment, a
//! sandbox on its own runtime, a raw TCP server that answers whatever a
//! test wants (or nothing at all), and the environment of each provider's
//! sandbox credentials.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use payauth_sandbox::{RunningSandbox, SandboxBuilder, defaults};

/// A sandbox on its own runtime, serving while the binary runs.
pub fn sandbox_from(builder: SandboxBuilder) -> (tokio::runtime::Runtime, RunningSandbox) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sandbox = runtime.block_on(builder.start()).unwrap();
    (runtime, sandbox)
}

/// A default sandbox.
pub fn sandbox() -> (tokio::runtime::Runtime, RunningSandbox) {
    sandbox_from(payauth_sandbox::Sandbox::builder())
}

/// Removes every `PAYAUTH_*` variable the caller's environment holds.
pub fn scrub(command: &mut std::process::Command) {
    for (name, _) in std::env::vars() {
        if name.starts_with("PAYAUTH_") {
            command.env_remove(name);
        }
    }
}

/// The binary (`assert_cmd`) with no `PAYAUTH_*` variables leaking in and
/// the environment pointed at `base_url`.
pub fn payauth(base_url: &str) -> assert_cmd::Command {
    let mut std = std::process::Command::new(assert_cmd::cargo::cargo_bin("payauth"));
    scrub(&mut std);
    std.env("PAYAUTH_ENVIRONMENT", base_url);
    assert_cmd::Command::from_std(std)
}

/// The same, as a plain process to spawn and signal.
pub fn spawn(base_url: &str, args: &[&str]) -> std::process::Child {
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
pub type Flow = (Vec<&'static str>, Vec<(&'static str, &'static str)>);

/// The sandbox credentials of one `payauth token` subcommand, as the
/// variables it reads, for every subcommand.
pub fn flows() -> Vec<Flow> {
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

/// What a [`RawServer`] does with each connection.
#[derive(Clone)]
pub enum Answer {
    /// Reads the request, writes these bytes, closes.
    Bytes(Vec<u8>),
    /// Reads the request and never answers.
    Hang,
}

/// A raw TCP server on loopback: a gateway that behaves as a test says.
pub struct RawServer {
    pub port: u16,
    connections: Arc<AtomicUsize>,
}

impl RawServer {
    pub fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let answer = answer.clone();
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || serve(stream, &answer, &counter));
            }
        });
        Self { port, connections }
    }

    /// An HTTP/1.1 answer with a JSON body.
    pub fn json(status: &str, headers: &str, body: &str) -> Answer {
        Answer::Bytes(
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests read so far.
    pub fn requests(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests have been read.
    pub fn wait_for_requests(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.requests() < n {
            assert!(Instant::now() < deadline, "no request reached the server");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn serve(mut stream: TcpStream, answer: &Answer, counter: &AtomicUsize) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    // The head, then as much body as it declares.
    loop {
        let Ok(n) = stream.read(&mut buffer) else {
            return;
        };
        if n == 0 {
            return;
        }
        request.extend_from_slice(&buffer[..n]);
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if request.len() >= end + 4 + length {
                break;
            }
        }
    }
    counter.fetch_add(1, Ordering::SeqCst);
    match answer {
        Answer::Bytes(bytes) => {
            let _ = stream.write_all(bytes);
        }
        Answer::Hang => std::thread::sleep(Duration::from_secs(600)),
    }
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits at most `limit` for `child` to exit.
pub fn wait_at_most(
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
pub fn signal(child: &std::process::Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Everything a finished child printed.
pub fn drain(child: &mut std::process::Child) -> (String, String) {
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
pub fn json(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let line = lines.next().unwrap_or_else(|| panic!("no JSON on stdout"));
    assert!(lines.next().is_none(), "one JSON line, got:\n{text}");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// A child's stdout, line by line, each line awaited at most 20 s (so a
/// binary that never prints what a test waits for fails it, not hangs it).
pub struct Lines(std::sync::mpsc::Receiver<String>);

impl Lines {
    pub fn new(stdout: std::process::ChildStdout) -> Self {
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
    pub fn next(&self) -> Option<String> {
        match self.0.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => Some(line),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("no line within 20 s"),
        }
    }

    /// Lines up to and including the first that starts with `until`.
    pub fn until(&self, until: &str) -> Vec<String> {
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
    pub fn rest(&self) -> String {
        let mut rest = String::new();
        while let Some(line) = self.next() {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    }
}
