//! The CLI whose reader went away: every command with a closed pipe on
//! stdout, then on stderr, ends with the documented status (141 when it
//! had something to write there, its own status when it had not), never
//! a panic (101) or a death by signal.

use std::process::{Command, Stdio};
use std::time::Duration;

use payauth_sandbox::defaults;

use crate::common::{Lines, closed_port, sandbox, scrub, signal, wait_at_most};

/// Which stream is a pipe whose reader is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    Stdout,
    Stderr,
}

/// One command line, its environment and its status with each stream
/// closed.
struct Case {
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    stdout_closed: i32,
    stderr_closed: i32,
}

fn case(args: &[&str], stdout_closed: i32, stderr_closed: i32) -> Case {
    Case {
        args: args.iter().map(|&a| a.to_owned()).collect(),
        env: Vec::new(),
        stdout_closed,
        stderr_closed,
    }
}

/// The binary with `closed` a pipe already closed by its reader (closed
/// before the child starts: a reader closed after would race a quick
/// child), the other stream captured.
fn run_closed(case: &Case, closed: Closed) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("payauth"));
    scrub(&mut command);
    command.args(&case.args).stdin(Stdio::null());
    for (name, value) in &case.env {
        command.env(name, value);
    }
    match closed {
        Closed::Stdout => command.stdout(writer).stderr(Stdio::piped()),
        Closed::Stderr => command.stdout(Stdio::piped()).stderr(writer),
    };
    let child = command.spawn().unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn every_command_ends_with_its_documented_status_when_stdout_or_stderr_is_closed() {
    let (_runtime, sandbox) = sandbox();
    let url = sandbox.base_url();
    let refused = format!("http://127.0.0.1:{}", closed_port());
    let mypos = |args: &[&str], base: &str, stdout_closed, stderr_closed| {
        let mut case = case(args, stdout_closed, stderr_closed);
        case.env = vec![
            ("PAYAUTH_ENVIRONMENT", base.to_owned()),
            ("PAYAUTH_MYPOS_CLIENT_ID", defaults::MYPOS_CLIENT_ID.into()),
            (
                "PAYAUTH_MYPOS_CLIENT_SECRET",
                defaults::MYPOS_CLIENT_SECRET.into(),
            ),
        ];
        case
    };
    let sign = [
        "iyzico",
        "sign",
        "--api-key",
        "k",
        "--secret-key",
        "s",
        "--path",
        "/p",
    ];
    let cases = [
        case(&["--help"], 141, 0),
        case(&["--version"], 141, 0),
        case(&["config", "schema"], 141, 0),
        case(&["completions", "bash"], 141, 0),
        case(&["iyzico", "sign", "--no-such-flag"], 2, 141),
        case(&["--json", "revoke"], 141, 141),
        case(&["--json", "login"], 141, 141),
        case(&sign, 141, 0),
        case(&[&["--json"][..], &sign].concat(), 141, 0),
        mypos(&["token", "mypos"], &url, 141, 0),
        mypos(&["--json", "token", "mypos", "--reveal"], &url, 141, 0),
        mypos(&["-v", "token", "mypos"], &url, 141, 141),
        mypos(&["-vv", "token", "mypos"], &url, 141, 141),
        mypos(&["-vv", "--json", "token", "mypos"], &url, 141, 141),
        mypos(&["token", "mypos"], &refused, 75, 141),
        mypos(&["--json", "token", "mypos"], &refused, 141, 141),
        mypos(&["demo"], &url, 141, 141),
    ];
    for case in &cases {
        for (closed, expected) in [
            (Closed::Stdout, case.stdout_closed),
            (Closed::Stderr, case.stderr_closed),
        ] {
            let output = run_closed(case, closed);
            assert_eq!(
                output.status.code(),
                Some(expected),
                "{:?} with {closed:?} closed: {output:?}",
                case.args
            );
            let other = match closed {
                Closed::Stdout => &output.stderr,
                Closed::Stderr => &output.stdout,
            };
            let other = String::from_utf8_lossy(other);
            assert!(!other.contains("panicked"), "{:?}: {other}", case.args);
        }
    }
}

#[test]
fn the_sandbox_stopped_by_sigterm_with_stderr_closed_exits_141_not_101() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("payauth"));
    scrub(&mut command);
    let mut child = command
        .args(["sandbox", "--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(writer)
        .spawn()
        .unwrap();
    let stdout = Lines::new(child.stdout.take().unwrap());
    stdout.until("VakıfBank scopes");
    signal(&child, "TERM");
    let status = wait_at_most(&mut child, Duration::from_secs(10)).expect("it stopped");
    assert_eq!(status.code(), Some(141), "{status:?}");
}

#[test]
fn the_sandbox_with_stdout_closed_exits_141_at_its_banner() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("payauth"));
    scrub(&mut command);
    let mut child = command
        .args(["sandbox", "--port", "0"])
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_at_most(&mut child, Duration::from_secs(10)).expect("it stopped");
    assert_eq!(status.code(), Some(141), "{status:?}");
}

#[test]
fn a_write_that_fails_for_another_reason_than_a_closed_pipe_exits_74() {
    for (args, on_stderr) in [
        (&["config", "schema"][..], false),
        (&["--no-such-flag"][..], true),
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("payauth"));
        scrub(&mut command);
        command.args(args).stdin(Stdio::null());
        if on_stderr {
            command.stdout(Stdio::null()).stderr(full);
        } else {
            command.stdout(full).stderr(Stdio::null());
        }
        let status = command.status().unwrap();
        assert_eq!(status.code(), Some(74), "{args:?}: {status:?}");
    }
}
