//! `payauth login vakifbank`, with the sandbox's browser helper playing the
//! browser: it opens the printed URL on the sandbox, follows the redirect
//! to the CLI's loopback listener, and checks the tokens landed in the file
//! store under the key `payauth token` and a config file read. Stray
//! requests, idle connections and many at once must neither hold nor
//! abort the login.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use payauth_sandbox::{Endpoint, RunningSandbox, Sandbox, defaults};

use crate::common::{Lines, json, payauth, sandbox_from, scrub, wait_at_most};

/// A login in progress: the child, its stdout, and what it announced.
struct Login {
    child: Child,
    stdout: Lines,
    url: String,
    redirect_uri: String,
}

/// Starts a login, `--json` or in text (the text form is what a person
/// reads: the URL alone on a line).
fn start_login_as(sandbox: &RunningSandbox, store: &Path, json_mode: bool) -> Login {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("payauth"));
    scrub(&mut command);
    if json_mode {
        command.arg("--json");
    }
    let mut child = command
        .args(["login", "vakifbank", "--scope", "account"])
        .env("PAYAUTH_ENVIRONMENT", sandbox.base_url())
        .env("PAYAUTH_VAKIFBANK_CLIENT_ID", defaults::VAKIFBANK_CLIENT_ID)
        .env(
            "PAYAUTH_VAKIFBANK_CLIENT_SECRET",
            defaults::VAKIFBANK_CLIENT_SECRET,
        )
        // A directory of its own: the store refuses one open to other users.
        .env("PAYAUTH_STORE_DIR", store)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = Lines::new(child.stdout.take().unwrap());
    let mut login = Login {
        child,
        stdout,
        url: String::new(),
        redirect_uri: String::new(),
    };
    if json_mode {
        let line = login.stdout.next().expect("the CLI printed nothing");
        let announced = json(line.as_bytes());
        announced["authorize_url"]
            .as_str()
            .unwrap()
            .clone_into(&mut login.url);
        announced["redirect_uri"]
            .as_str()
            .unwrap()
            .clone_into(&mut login.redirect_uri);
    } else {
        login.url = login.stdout.until("http").pop().unwrap();
        login.redirect_uri = reqwest::Url::parse(&login.url)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .unwrap()
            .1
            .into_owned();
    }
    login
}

fn start_login(sandbox: &RunningSandbox, store: &Path) -> Login {
    start_login_as(sandbox, store, true)
}

/// A login a failed test left running is stopped.
impl Drop for Login {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Login {
    fn port(&self) -> u16 {
        self.redirect_uri
            .trim_start_matches("http://127.0.0.1:")
            .trim_end_matches("/callback")
            .parse()
            .unwrap()
    }

    /// The browser: the bank's page redirects back to the CLI's listener;
    /// returns how long the listener took to answer the redirect.
    fn browse(&self, runtime: &tokio::runtime::Runtime) -> Duration {
        let back = runtime.block_on(async {
            let http = payauth_core::http::default_client().unwrap();
            payauth_sandbox::browser::authorize(&http, &self.url)
                .await
                .unwrap()
        });
        let target = back
            .strip_prefix(&self.redirect_uri.replace("/callback", ""))
            .unwrap_or_else(|| panic!("{back} is not for {}", self.redirect_uri));
        let started = Instant::now();
        let answer = request(self.port(), &format!("GET {target} HTTP/1.1"));
        assert!(answer.contains("200"), "{answer}");
        started.elapsed()
    }

    /// The final JSON line (`null` in text), after the child exited
    /// successfully.
    fn finish(self) -> serde_json::Value {
        self.finish_noting().0
    }

    /// [`finish`](Self::finish), and what the child wrote to stderr.
    fn finish_noting(mut self) -> (serde_json::Value, String) {
        let status = wait_at_most(&mut self.child, Duration::from_secs(20)).expect("it ended");
        let rest = self.stdout.rest();
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        assert!(status.success(), "{status:?}: {stderr}");
        if rest.trim_start().starts_with('{') {
            (json(rest.as_bytes()), stderr)
        } else {
            assert!(rest.contains("logged in"), "{rest}");
            (serde_json::Value::Null, stderr)
        }
    }
}

/// A raw request to the listener; its status line.
fn request(port: u16, head: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(format!("{head}\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

fn store_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") || p.is_file())
        .collect()
}

#[test]
fn login_completes_through_the_loopback_redirect_and_stores_the_tokens() {
    let (runtime, sandbox) = sandbox_from(Sandbox::builder());
    let store = tempfile::tempdir().unwrap();
    let dir = store.path().join("tokens");
    let login = start_login(&sandbox, &dir);
    login.browse(&runtime);
    let json = login.finish();
    assert_eq!(json["logged_in"], true);
    assert_eq!(json["has_refresh_token"], true);
    assert!(json["expires_at"].as_str().unwrap().ends_with('Z'));
    // The key a config file's `flow = "authorization_code"` source with
    // `customer = "default"` reads: the one scheme, environment included.
    assert_eq!(
        json["store_key"],
        format!(
            "vakifbank/{}/{}/authorization_code/retail/default/account",
            sandbox.base_url().replace('/', "%2F"),
            defaults::VAKIFBANK_CLIENT_ID
        )
    );
    let files = store_files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let stored = std::fs::read_to_string(&files[0]).unwrap();
    assert!(stored.contains("refresh_token"));
}

#[test]
fn idle_connections_and_stray_requests_neither_hold_nor_abort_the_login() {
    let (runtime, sandbox) = sandbox_from(Sandbox::builder());
    let store = tempfile::tempdir().unwrap();
    let login = start_login_as(&sandbox, &store.path().join("tokens"), false);
    let port = login.port();
    // A browser's idle pre-connections, opened first and never used.
    let idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    // Requests that are not the awaited callback: answered, ignored.
    assert!(request(port, "GET /favicon.ico HTTP/1.1").contains("404"));
    assert!(request(port, "GET /callback?state=x&code=forged HTTP/1.1").contains("400"));
    assert!(request(port, "GET /callback?code=forged HTTP/1.1").contains("400"));
    assert!(request(port, "GET /callback HTTP/1.1").contains("400"));
    assert!(request(port, "POST /callback?state=x HTTP/1.1").contains("405"));
    // Still waiting, and the real redirect is answered at once.
    let took = login.browse(&runtime);
    assert!(
        took < Duration::from_secs(2),
        "the redirect waited {took:?}"
    );
    login.finish();
    drop(idle);
}

#[test]
fn many_callback_connections_at_once_are_all_served() {
    let (runtime, sandbox) = sandbox_from(Sandbox::builder());
    let store = tempfile::tempdir().unwrap();
    let login = start_login_as(&sandbox, &store.path().join("tokens"), false);
    let port = login.port();
    let strays: Vec<_> = (0..32)
        .map(|i| {
            std::thread::spawn(move || {
                request(port, &format!("GET /callback?state=stray-{i} HTTP/1.1"))
            })
        })
        .collect();
    for stray in strays {
        assert!(stray.join().unwrap().contains("400"));
    }
    login.browse(&runtime);
    login.finish();
}

fn token_from_login_store(sandbox: &RunningSandbox, dir: &Path) -> std::process::Output {
    payauth(&sandbox.base_url())
        .env("PAYAUTH_VAKIFBANK_CLIENT_ID", defaults::VAKIFBANK_CLIENT_ID)
        .env(
            "PAYAUTH_VAKIFBANK_CLIENT_SECRET",
            defaults::VAKIFBANK_CLIENT_SECRET,
        )
        .env("PAYAUTH_STORE_DIR", dir)
        .args([
            "--json",
            "token",
            "vakifbank",
            "--flow",
            "authorization-code",
        ])
        .output()
        .unwrap()
}

#[test]
fn tokens_saved_by_login_are_served_by_token_without_a_request() {
    let (runtime, sandbox) = sandbox_from(Sandbox::builder());
    let store = tempfile::tempdir().unwrap();
    let dir = store.path().join("tokens");
    let login = start_login(&sandbox, &dir);
    login.browse(&runtime);
    login.finish();
    let before = sandbox.requests(Endpoint::VakifbankToken);
    let output = token_from_login_store(&sandbox, &dir);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        sandbox.requests(Endpoint::VakifbankToken),
        before,
        "from the store"
    );
    let value = json(&output.stdout);
    assert_eq!(value["flow"], "vakifbank authorization code");
    assert_eq!(value["has_refresh_token"], true);
}

/// Marks the token in a stored login file as expired a second ago (its
/// refresh token kept), as if its lifetime had run out; returns the
/// refresh token it holds.
fn expire_stored(file: &std::path::Path) -> serde_json::Value {
    let mut stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let now_ms = u64::try_from(now_ms).unwrap();
    stored["issued_at_unix_ms"] = (now_ms - 120_000).into();
    stored["expires_at_unix_ms"] = (now_ms - 1_000).into();
    std::fs::write(file, serde_json::to_vec(&stored).unwrap()).unwrap();
    stored["refresh_token"].clone()
}

#[test]
fn an_expired_login_is_refreshed_by_token_and_the_rotated_token_kept() {
    let (runtime, sandbox) = sandbox_from(Sandbox::builder());
    let store = tempfile::tempdir().unwrap();
    let dir = store.path().join("tokens");
    let login = start_login(&sandbox, &dir);
    login.browse(&runtime);
    login.finish();
    let file = store_files(&dir).pop().unwrap();

    for round in 1..=2 {
        let used = expire_stored(&file);
        assert!(used.is_string(), "round {round}: a refresh token is stored");
        let before = sandbox.requests(Endpoint::VakifbankToken);
        let output = token_from_login_store(&sandbox, &dir);
        assert!(output.status.success(), "round {round}: {output:?}");
        assert_eq!(
            sandbox.requests(Endpoint::VakifbankToken),
            before + 1,
            "round {round}: one refresh"
        );
        assert!(json(&output.stdout)["expires_in_s"].as_u64().unwrap() >= 10);
        // The refresh token rotates: the store holds the new one, so the
        // next round can refresh again (the sandbox refuses a used one).
        let stored: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert!(stored["refresh_token"].is_string());
        assert_ne!(stored["refresh_token"], used, "round {round}: rotated");
    }
}

#[test]
fn token_without_a_login_says_how_to_log_in() {
    let (_runtime, sandbox) = sandbox_from(Sandbox::builder());
    let store = tempfile::tempdir().unwrap();
    let output = token_from_login_store(&sandbox, &store.path().join("tokens"));
    assert_eq!(output.status.code(), Some(1));
    let value = json(&output.stdout);
    assert_eq!(value["error"]["kind"], "invalid_grant");
    let hint = value["error"]["hint"].as_str().unwrap();
    assert!(
        hint.contains("payauth login vakifbank --customer default --scope account"),
        "{hint}"
    );
}

#[test]
fn an_unusable_store_is_refused_before_the_browser_opens_so_the_bank_issues_nothing() {
    let (_runtime, sandbox) = sandbox_from(Sandbox::builder());
    let store = tempfile::tempdir().unwrap();
    // A file where the token directory should be.
    let file = store.path().join("not-a-directory");
    std::fs::write(&file, b"").unwrap();
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("payauth"));
    scrub(&mut command);
    let output = command
        // A short wait: without the check, the URL is announced and
        // the login waits for a browser that never comes.
        .args([
            "--json",
            "login",
            "vakifbank",
            "--scope",
            "account",
            "--wait",
            "2",
        ])
        .env("PAYAUTH_ENVIRONMENT", sandbox.base_url())
        .env("PAYAUTH_VAKIFBANK_CLIENT_ID", defaults::VAKIFBANK_CLIENT_ID)
        .env(
            "PAYAUTH_VAKIFBANK_CLIENT_SECRET",
            defaults::VAKIFBANK_CLIENT_SECRET,
        )
        .env("PAYAUTH_STORE_DIR", file.join("tokens"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("authorize_url"),
        "no authorize URL was announced: {stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("store"), "{stderr}");
}

/// The one stored login in `dir`, as its JSON record.
fn stored_login(dir: &Path) -> serde_json::Value {
    let files = store_files(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap()
}

/// Moves the stored login's issue time by `by_ms` (as if stored by a
/// machine whose clock is that far ahead); the record as written.
fn shift_issued(dir: &Path, by_ms: i64) -> serde_json::Value {
    let file = store_files(dir).pop().unwrap();
    let mut stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let issued = stored["issued_at_unix_ms"].as_u64().unwrap();
    stored["issued_at_unix_ms"] = issued.checked_add_signed(by_ms).unwrap().into();
    std::fs::write(&file, serde_json::to_vec(&stored).unwrap()).unwrap();
    stored
}

/// A record's issue time as the CLI shows it (RFC 3339, UTC, seconds).
fn shown_issued(stored: &serde_json::Value) -> String {
    let secs = i64::try_from(stored["issued_at_unix_ms"].as_u64().unwrap() / 1000).unwrap();
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = payauth_core::internal::time::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

#[test]
fn of_two_logins_racing_the_later_replaces_the_earlier_and_says_so() {
    let (runtime, sandbox) = sandbox_from(Sandbox::builder());
    let store = tempfile::tempdir().unwrap();
    let dir = store.path().join("tokens");
    // Both find the store empty; the second to start finishes first.
    let first = start_login(&sandbox, &dir);
    let second = start_login(&sandbox, &dir);
    second.browse(&runtime);
    let (json, noted) = second.finish_noting();
    assert_eq!(json["stored"], true);
    assert!(json.get("replaced").is_none(), "{json}");
    assert!(!noted.contains("while this login waited"), "{noted}");
    let earlier = stored_login(&dir);

    first.browse(&runtime);
    let (json, noted) = first.finish_noting();
    assert_eq!(json["stored"], true);
    assert_eq!(
        json["replaced"]["issued_at"],
        shown_issued(&earlier),
        "{json}"
    );
    assert!(
        noted.contains("another login or a service's refresh stored a token")
            && noted.contains("which replaced it"),
        "{noted}"
    );
    let now = stored_login(&dir);
    assert_ne!(now["access_token"], earlier["access_token"], "replaced");
    assert!(!noted.contains(earlier["access_token"].as_str().unwrap()));
    assert!(!noted.contains(now["refresh_token"].as_str().unwrap()));
}

#[test]
fn a_login_never_overwrites_a_newer_token_stored_while_it_waited_and_says_which_the_store_holds() {
    let (runtime, sandbox) = sandbox_from(Sandbox::builder());
    let store = tempfile::tempdir().unwrap();
    let dir = store.path().join("tokens");
    for json_mode in [true, false] {
        let late = start_login_as(&sandbox, &dir, json_mode);
        // Meanwhile another login lands, then a service refreshes it on a
        // machine whose clock is an hour ahead: newer than the late login.
        let other = start_login(&sandbox, &dir);
        other.browse(&runtime);
        other.finish();
        let newer = shift_issued(&dir, 3_600_000);

        late.browse(&runtime);
        let (json, noted) = late.finish_noting();
        assert!(
            noted.contains("stored a newer token for this key")
                && noted.contains("it was kept, and this login's tokens were not stored")
                && noted.contains(&shown_issued(&newer)),
            "{noted}"
        );
        if json_mode {
            assert_eq!(json["stored"], false, "{json}");
            assert_eq!(json["store_holds"]["issued_at"], shown_issued(&newer));
            assert_eq!(json["store_holds"]["has_refresh_token"], true);
        }
        assert_eq!(stored_login(&dir), newer, "the newer token stands");
        assert!(!noted.contains(newer["access_token"].as_str().unwrap()));
    }
}

#[test]
fn a_login_replaces_the_token_it_found_even_one_stamped_by_a_clock_ahead() {
    let (runtime, sandbox) = sandbox_from(Sandbox::builder());
    let store = tempfile::tempdir().unwrap();
    let dir = store.path().join("tokens");
    let first = start_login(&sandbox, &dir);
    first.browse(&runtime);
    first.finish();
    let found = shift_issued(&dir, 3_600_000);
    let again = start_login(&sandbox, &dir);
    again.browse(&runtime);
    let (json, noted) = again.finish_noting();
    assert_eq!(json["stored"], true);
    assert!(json.get("replaced").is_none(), "{json}");
    assert!(!noted.contains("while this login waited"), "{noted}");
    let now = stored_login(&dir);
    assert_ne!(now["access_token"], found["access_token"]);
    assert_eq!(
        now["issued_at_unix_ms"].as_u64().unwrap(),
        found["issued_at_unix_ms"].as_u64().unwrap() + 1,
        "counts as issued after the token it replaced, so no writer takes it for the older"
    );
}
