//! The CLI against a hostile or broken gateway (a raw TCP server written
//! here): terminal escapes in what it sends, a server that never answers,
//! a signal in the middle of a fetch.

use std::time::{Duration, Instant};

use payauth_sandbox::defaults;
use payauth_testkit::gateway::{self, RawGateway};

use crate::common::{Hung, drain, json, mypos, signal, spawn, wait_at_most};

/// Escape sequences a hostile gateway might hide in a string: ANSI CSI
/// (clear screen), an OSC title set ended by BEL, a C1 CSI (U+009B, raw
/// UTF-8 in the JSON), a bidi override, a newline that forges a line.
const HOSTILE: &str = r"webhooks\u001b[2J\u001b]0;pwned\u0007 \u009b31m x";
const HOSTILE_RAW: &str = "\u{9b}2J\u{202e}evil";

/// No byte of `text` can start a terminal control sequence.
fn assert_inert(text: &[u8], what: &str) {
    let text = String::from_utf8_lossy(text);
    for c in text.chars() {
        assert!(
            c == '\n' || !(c.is_control() || ('\u{2028}'..='\u{206f}').contains(&c)),
            "{what} holds {c:?}: {text:?}"
        );
    }
    assert!(!text.contains("pwned\n"), "{what}: {text:?}");
}

#[test]
fn escapes_in_a_granted_scope_never_reach_the_terminal_in_text_or_json() {
    let body = format!(
        r#"{{"access_token":"tok-1","token_type":"Bearer","expires_in":3600,"scope":"{HOSTILE}{HOSTILE_RAW}\nINFO forged"}}"#
    );
    let server = RawGateway::answering(gateway::json("200 OK", &body));
    for json_mode in [false, true] {
        let mut command = mypos(&server.base_url());
        if json_mode {
            command.arg("--json");
        }
        let output = command.args(["token", "mypos"]).output().unwrap();
        assert!(output.status.success(), "{output:?}");
        assert_inert(&output.stdout, "stdout");
        assert_inert(&output.stderr, "stderr");
        let stdout = String::from_utf8_lossy(&output.stdout);
        if json_mode {
            let value = json(&output.stdout);
            let scope = value["scope"].as_str().unwrap();
            assert!(scope.starts_with("webhooks"), "{scope:?}");
            assert!(!scope.contains('\u{1b}') && !scope.contains('\u{9b}'));
        } else {
            // One line for the scope: the forged line stays inside it.
            let scope_lines = stdout.lines().filter(|l| l.contains("INFO forged")).count();
            assert_eq!(scope_lines, 1, "{stdout}");
            assert!(
                stdout
                    .lines()
                    .any(|l| l.starts_with("scope: webhooks") && l.contains("INFO forged")),
                "{stdout}"
            );
        }
    }
}

#[test]
fn escapes_in_a_provider_error_never_reach_the_terminal() {
    let body = format!(
        r#"{{"error":"invalid_client\u001b[31m","error_description":"bad {HOSTILE}{HOSTILE_RAW}"}}"#
    );
    let server = RawGateway::answering(gateway::json("401 Unauthorized", &body));
    for json_mode in [false, true] {
        let mut command = mypos(&server.base_url());
        if json_mode {
            command.arg("--json");
        }
        let output = command.args(["token", "mypos"]).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        assert_inert(&output.stdout, "stdout");
        assert_inert(&output.stderr, "stderr");
    }
}

#[test]
fn a_hung_server_with_timeout_1_exits_75_within_about_a_second() {
    let server = Hung::start();
    let started = Instant::now();
    let output = mypos(&server.base_url())
        .args(["--json", "--timeout", "1", "token", "mypos"])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(75), "{output:?}");
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    assert!(took >= Duration::from_secs(1), "took {took:?}");
    assert_eq!(server.requests(), 1, "the request did reach the server");
    let value = json(&output.stdout);
    assert_eq!(value["error"]["kind"], "timeout");
    assert_eq!(value["error"]["transient"], true);
}

#[test]
fn the_timeout_also_comes_from_the_environment() {
    let server = Hung::start();
    let started = Instant::now();
    mypos(&server.base_url())
        .env("PAYAUTH_TIMEOUT", "300ms")
        .args(["token", "mypos"])
        .timeout(Duration::from_secs(20))
        .assert()
        .code(75);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn sigterm_during_a_fetch_stops_at_once_with_143_and_a_json_report() {
    let server = Hung::start();
    let store = tempfile::tempdir().unwrap();
    let store_dir = store.path().join("tokens");
    let mut child = {
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("payauth"));
        crate::common::scrub(&mut command);
        command
            .env("PAYAUTH_ENVIRONMENT", server.base_url())
            .env("PAYAUTH_MYPOS_CLIENT_ID", defaults::MYPOS_CLIENT_ID)
            .env("PAYAUTH_MYPOS_CLIENT_SECRET", defaults::MYPOS_CLIENT_SECRET)
            .arg("--json")
            .args(["token", "mypos", "--store-dir"])
            .arg(&store_dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    server.wait_for_a_request();
    let sent = Instant::now();
    signal(&child, "TERM");
    let status = wait_at_most(&mut child, Duration::from_secs(5)).expect("it stopped");
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(143), "{status:?}");
    let (stdout, _) = drain(&mut child);
    let value = json(stdout.as_bytes());
    assert_eq!(value["error"]["kind"], "interrupted");
    assert_eq!(value["error"]["signal"], "SIGTERM");
    // Nothing half-written in the store.
    let left: Vec<_> = std::fs::read_dir(&store_dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn sigint_during_a_fetch_exits_130() {
    let server = Hung::start();
    let mut child = spawn(
        &server.base_url(),
        &[
            "token",
            "mypos",
            "--client-id",
            defaults::MYPOS_CLIENT_ID,
            "--client-secret",
            defaults::MYPOS_CLIENT_SECRET,
        ],
    );
    server.wait_for_a_request();
    signal(&child, "INT");
    let status = wait_at_most(&mut child, Duration::from_secs(5)).expect("it stopped");
    assert_eq!(status.code(), Some(130), "{status:?}");
    let (_, stderr) = drain(&mut child);
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
}

#[test]
fn a_token_that_is_not_a_b64token_is_refused_as_malformed_in_every_rfc_flow() {
    for token in ["tökén", "tok\u{202e}en", "tok en", "tok\\u0007en", "=tok"] {
        let body =
            format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#);
        let server = RawGateway::answering(gateway::json("200 OK", &body));
        for (args, env) in crate::common::flows().into_iter().take(3) {
            for reveal in [&["--json"][..], &[]] {
                let mut command = crate::common::payauth(&server.base_url());
                command.envs(env.iter().copied()).args(reveal).arg("token");
                let output = command.args(&args).arg("--reveal").output().unwrap();
                assert_eq!(
                    output.status.code(),
                    Some(1),
                    "{token:?} {args:?}: {output:?}"
                );
                let stdout = String::from_utf8_lossy(&output.stdout);
                assert!(
                    !stdout.contains("uthorization"),
                    "{token:?} {args:?}: {stdout}"
                );
                if !reveal.is_empty() {
                    let value = json(&output.stdout);
                    assert_eq!(value["error"]["kind"], "malformed", "{value}");
                    assert!(
                        value["error"]["message"]
                            .as_str()
                            .unwrap()
                            .contains("b64token"),
                        "{value}"
                    );
                }
                assert_inert(&output.stderr, "stderr");
            }
        }
    }
}
