//! `payauth sandbox` as an operator runs it: the port it got, the
//! credentials it accepts, a busy port, and a clean stop on a signal.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{Lines, drain, json, scrub, signal, wait_at_most};

/// A sandbox process, stopped when a test ends however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> (Running, Lines) {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("payauth"));
    scrub(&mut command);
    let mut child = command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = Lines::new(child.stdout.take().unwrap());
    (Running(child), stdout)
}

fn stop(mut running: Running, how: &str) -> std::process::ExitStatus {
    signal(&running.0, how);
    wait_at_most(&mut running.0, Duration::from_secs(10)).expect("the sandbox stopped")
}

#[test]
fn port_0_announces_the_port_it_bound_and_serves_there() {
    let (child, stdout) = start(&["sandbox", "--port", "0"]);
    let banner = stdout.until("payauth sandbox serving on");
    let url = banner[0]
        .strip_prefix("payauth sandbox serving on ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .to_owned();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0, "{url}");
    // It answers on that port.
    let answered = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    assert!(answered, "{url}");
    assert!(stop(child, "TERM").success());
}

#[test]
fn a_busy_port_fails_before_any_banner_and_says_so() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (mut running, stdout) = start(&["sandbox", "--port", &port]);
    let status = wait_at_most(&mut running.0, Duration::from_secs(10)).expect("it gave up");
    assert_eq!(status.code(), Some(1));
    let printed = stdout.rest();
    assert!(printed.is_empty(), "no banner: {printed}");
    let (_, stderr) = drain(&mut running.0);
    assert!(
        stderr.contains(&format!("port {port} on 127.0.0.1 is busy")),
        "{stderr}"
    );
    assert!(stderr.contains("--port 0"), "{stderr}");
}

#[test]
fn sigterm_and_ctrl_c_stop_it_cleanly_with_status_0_and_release_the_port() {
    for how in ["TERM", "INT"] {
        let (child, stdout) = start(&["--json", "sandbox", "--port", "0"]);
        let line = stdout.until("{").pop().unwrap();
        let port = u16::try_from(json(line.as_bytes())["port"].as_u64().unwrap()).unwrap();
        let status = stop(child, how);
        assert_eq!(status.code(), Some(0), "{how}: {status:?}");
        // Released: the port can be bound again at once.
        TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| panic!("{how}: {e}"));
    }
}

/// Runs every `payauth token` subcommand with only `env` set.
fn every_flow_works_with(env: &[(String, String)]) {
    for (args, _) in crate::common::flows() {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("payauth"));
        scrub(&mut command);
        command.arg("token").args(&args);
        command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn the_banner_alone_is_enough_to_get_a_token_from_every_provider() {
    let (child, stdout) = start(&["sandbox", "--port", "0"]);
    let banner = stdout.until("then: payauth token");
    let env: Vec<(String, String)> = banner
        .iter()
        .filter_map(|l| l.trim_start().strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect();
    assert!(env.len() >= 14, "{banner:?}");
    every_flow_works_with(&env);
    assert!(stop(child, "TERM").success());
}

#[test]
fn sandbox_json_prints_the_url_and_credentials_that_work() {
    let (child, stdout) = start(&["--json", "sandbox", "--port", "0"]);
    let line = stdout.until("{").pop().unwrap();
    let value = json(line.as_bytes());
    let url = value["url"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{value}");
    assert_eq!(
        value["credentials"]["mypos"]["client_secret"],
        payauth_sandbox::defaults::MYPOS_CLIENT_SECRET
    );
    assert_eq!(
        value["credentials"]["vakifbank"]["consent_id"],
        payauth_sandbox::defaults::VAKIFBANK_CONSENT_ID
    );
    assert!(value["credentials"]["vakifbank"]["scopes"].is_array());
    let env: Vec<(String, String)> = value["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    assert!(
        env.iter()
            .any(|(k, v)| k == "PAYAUTH_ENVIRONMENT" && v == url)
    );
    every_flow_works_with(&env);
    assert!(stop(child, "TERM").success());
}

#[test]
fn code_lifetime_secs_sets_how_long_the_sandbox_s_authorization_codes_live() {
    // Codes that are expired when issued: the iyzico Terminal login, which
    // exchanges its code at once, is refused; the other flows still work.
    let (child, stdout) = start(&[
        "--json",
        "sandbox",
        "--port",
        "0",
        "--code-lifetime-secs",
        "0",
    ]);
    let line = stdout.until("{").pop().unwrap();
    let value = json(line.as_bytes());
    let env: Vec<(String, String)> = value["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("payauth"));
    scrub(&mut command);
    command.args(["token", "iyzico-terminal"]);
    command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("invalid_grant"), "{stderr}");
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("payauth"));
    scrub(&mut command);
    command.args(["token", "mypos"]);
    command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert!(command.output().unwrap().status.success());
    assert!(stop(child, "TERM").success());
}
