//! The CLI as scripts use it: exit statuses that say what happened, JSON
//! for failures as well as successes, the bare token, absolute expiry.

use std::time::{SystemTime, UNIX_EPOCH};

use payauth_sandbox::{Endpoint, Fault, Schedule, defaults};
use payauth_testkit::gateway::{self, RawGateway};
use predicates::prelude::*;

use crate::common::{closed_port, json, mypos, payauth, sandbox};

/// Seconds since the epoch of an RFC 3339 UTC time `YYYY-MM-DDTHH:MM:SSZ`,
/// computed here independently of the CLI (days by counting years and
/// months).
fn epoch_of(rfc3339: &str) -> u64 {
    let b = rfc3339.as_bytes();
    assert_eq!(rfc3339.len(), 20, "{rfc3339}");
    assert_eq!(
        (b[4], b[7], b[10], b[13], b[16], b[19]),
        (b'-', b'-', b'T', b':', b':', b'Z'),
        "{rfc3339}"
    );
    let n = |r: std::ops::Range<usize>| rfc3339[r].parse::<u64>().unwrap();
    let (year, month, day) = (n(0..4), n(5..7), n(8..10));
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let mut days: u64 = (1970..year).map(|y| if leap(y) { 366 } else { 365 }).sum();
    let lengths = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    days += lengths[..usize::try_from(month - 1).unwrap()]
        .iter()
        .sum::<u64>();
    days += day - 1;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

#[test]
fn token_json_gives_an_absolute_rfc3339_utc_expiry() {
    let (_runtime, sandbox) = sandbox();
    let output = mypos(&sandbox.base_url())
        .args(["--json", "token", "mypos"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let value = json(&output.stdout);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = epoch_of(value["expires_at"].as_str().unwrap());
    // The sandbox's myPOS tokens live 86 400 s.
    assert!(at.abs_diff(now + 86_400) <= 5, "{value}");
    let expires_in = value["expires_in_s"].as_u64().unwrap();
    assert!(at.abs_diff(now + expires_in) <= 2, "{value}");
}

#[test]
fn print_puts_the_token_alone_on_stdout_and_it_is_the_real_token() {
    let (_runtime, sandbox) = sandbox();
    let output = mypos(&sandbox.base_url())
        .args(["token", "mypos", "--print"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.strip_suffix('\n').expect("one line");
    assert!(
        !token.is_empty() && !token.contains(char::is_whitespace),
        "{stdout:?}"
    );
    assert!(!token.starts_with("Bearer"));
    assert!(output.stderr.is_empty(), "nothing on stderr either");
    // It is the token the sandbox issued: revoking it marks it revoked.
    mypos(&sandbox.base_url())
        .env("PAYAUTH_MYPOS_TOKEN", token)
        .args(["revoke", "mypos"])
        .assert()
        .success();
    assert!(sandbox.is_revoked(token));
}

#[test]
fn print_on_failure_leaves_stdout_empty() {
    let port = closed_port();
    let output = mypos(&format!("http://127.0.0.1:{port}"))
        .args(["token", "mypos", "--print"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(75));
    assert!(output.stdout.is_empty());
}

#[test]
fn print_with_json_is_a_usage_error() {
    mypos("http://127.0.0.1:1")
        .args(["--json", "token", "mypos", "--print"])
        .assert()
        .code(2);
}

#[test]
fn token_with_no_provider_is_a_usage_error_with_status_2() {
    payauth("http://127.0.0.1:1")
        .arg("token")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("give a provider"));
}

#[test]
fn a_missing_credential_is_a_usage_error_that_names_the_file_flag() {
    payauth("http://127.0.0.1:1")
        .env("PAYAUTH_MYPOS_CLIENT_ID", "id")
        .args(["token", "mypos"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--client-secret-file"));
    payauth("http://127.0.0.1:1")
        .args(["token", "mypos"])
        .assert()
        .code(2);
}

#[test]
fn an_unknown_flag_with_json_prints_a_usage_report_on_stdout() {
    let output = payauth("http://127.0.0.1:1")
        .args(["--json", "token", "mypos", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let value = json(&output.stdout);
    assert_eq!(value["error"]["kind"], "usage");
    assert!(
        value["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--no-such-flag"),
        "{value}"
    );
}

#[test]
fn a_wrong_secret_exits_1_and_json_says_invalid_client() {
    const SENTINEL: &str = "SENTINEL-cli-wrong-secret";
    let (_runtime, sandbox) = sandbox();
    let output = payauth(&sandbox.base_url())
        .env("PAYAUTH_MYPOS_CLIENT_ID", defaults::MYPOS_CLIENT_ID)
        .env("PAYAUTH_MYPOS_CLIENT_SECRET", SENTINEL)
        .args(["--json", "token", "mypos"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let value = json(&output.stdout);
    assert_eq!(value["error"]["kind"], "invalid_client");
    assert_eq!(value["error"]["status"], 401);
    assert_eq!(value["error"]["permanent"], true);
    assert_eq!(value["error"]["transient"], false);
    assert_eq!(value["flow"], "mypos client credentials");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!all.contains(SENTINEL));
    assert!(all.contains("mypos client credentials failed: client credentials refused"));
}

#[test]
fn a_503_with_retry_after_exits_75_and_json_carries_the_wait() {
    let (_runtime, sandbox) = sandbox();
    sandbox.faults().set(
        Endpoint::MyposToken,
        Fault::Status {
            status: 503,
            retry_after: Some(7),
        },
        Schedule::Always,
    );
    let output = mypos(&sandbox.base_url())
        .args(["--json", "token", "mypos"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(75), "{output:?}");
    let value = json(&output.stdout);
    assert_eq!(value["error"]["status"], 503);
    assert_eq!(value["error"]["retry_after_s"], 7);
    assert_eq!(value["error"]["transient"], true);
    assert_eq!(value["error"]["provider_code"], "temporarily_unavailable");
    assert_eq!(value["error"]["kind"], "unavailable");
}

#[test]
fn a_429_exits_75_with_its_retry_after() {
    let server = RawGateway::answering(gateway::answer(
        "429 Too Many Requests",
        &[
            ("retry-after", b"30"),
            ("content-type", b"application/json"),
            ("content-length", b"2"),
        ],
        b"{}",
    ));
    let output = mypos(&server.base_url())
        .args(["--json", "token", "mypos"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(75));
    let value = json(&output.stdout);
    assert_eq!(value["error"]["kind"], "rate_limited");
    assert_eq!(value["error"]["retry_after_s"], 30);
}

#[test]
fn no_connection_exits_75_as_a_transport_failure() {
    let port = closed_port();
    let output = mypos(&format!("http://127.0.0.1:{port}"))
        .args(["--json", "token", "mypos"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(75));
    let value = json(&output.stdout);
    assert_eq!(value["error"]["kind"], "transport");
    assert_eq!(value["error"]["status"], serde_json::Value::Null);
}

#[test]
fn help_documents_the_exit_statuses() {
    payauth("http://127.0.0.1:1")
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit status:"))
        .stdout(predicate::str::contains(
            "75   transient failure (EX_TEMPFAIL)",
        ))
        .stdout(predicate::str::contains("2    usage error"))
        .stdout(predicate::str::contains("1    permanent failure"));
}

#[test]
fn a_bad_config_file_is_permanent_and_json_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[source]\nprovider = \"paypal\"\n").unwrap();
    let output = payauth("http://127.0.0.1:1")
        .arg("--json")
        .arg("token")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let value = json(&output.stdout);
    assert_eq!(value["error"]["kind"], "config");
    assert!(value["flow"].as_str().unwrap().contains("bad.toml"));
    assert!(
        value["error"]["message"]
            .as_str()
            .unwrap()
            .contains("paypal")
    );
}

#[test]
fn the_readme_and_help_document_the_same_exit_statuses() {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
    let section = readme.split("### Exit status").nth(1).unwrap();
    let section = section.split("\n#").next().unwrap();
    let mut documented: Vec<u32> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(" |").next())
        .flat_map(|cell| cell.split(", ").map(str::parse::<u32>).collect::<Vec<_>>())
        .filter_map(Result::ok)
        .collect();
    documented.sort_unstable();
    let output = payauth("http://127.0.0.1:1")
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    let section = help.split("Exit status:").nth(1).unwrap();
    let mut helped: Vec<u32> = section
        .lines()
        .take_while(|l| !l.starts_with("With --json"))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|w| w.parse().ok())
        .collect();
    helped.sort_unstable();
    assert_eq!(documented, vec![0, 1, 2, 74, 75, 130, 141, 143]);
    assert_eq!(helped, documented);
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly_not_with_a_panic() {
    for args in [&["config", "schema"][..], &["completions", "bash"][..]] {
        // `payauth … | head -c0`: the reader is gone before the output. It
        // is closed before the child starts: closed after, a child quicker
        // than this thread wrote into the pipe and exited 0.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("payauth"));
        let child = command
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(141), "{args:?}: {output:?}");
        assert!(output.stderr.is_empty(), "{args:?}: {output:?}");
    }
}
