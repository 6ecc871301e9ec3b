//! `payauth demo`: the README's first command, driven as a user runs it.

use assert_cmd::Command;

#[test]
fn demo_runs_every_flow_of_every_provider_ok() {
    let output = Command::cargo_bin("payauth")
        .unwrap()
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (provider, flow) in [
        ("iyzico", "terminal login"),
        ("iyzico", "terminal refresh"),
        ("iyzico", "pay-with-iyzico token"),
        ("vakifbank", "authorization code"),
        ("vakifbank", "refresh token"),
        ("vakifbank", "client credentials"),
        ("vakifbank", "b2b credentials"),
        ("mypos", "client credentials"),
        ("mypos", "revoke"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(provider) && l.contains(flow))
            .unwrap_or_else(|| panic!("no row for {provider} {flow} in\n{stdout}"));
        assert!(line.contains(" OK "), "{line}");
    }
}

#[test]
fn demo_json_is_one_object_per_flow_all_ok() {
    let output = Command::cargo_bin("payauth")
        .unwrap()
        .args(["--json", "demo"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    let rows = rows.as_array().expect("an array");
    assert_eq!(rows.len(), 9);
    assert!(rows.iter().all(|r| r["ok"] == true), "{rows:?}");
}

#[test]
fn demo_output_holds_no_sandbox_secret() {
    let output = Command::cargo_bin("payauth")
        .unwrap()
        .arg("demo")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for secret in [
        payauth_sandbox::defaults::IYZICO_CLIENT_SECRET,
        payauth_sandbox::defaults::IYZICO_PASSWORD,
        payauth_sandbox::defaults::IYZICO_SECRET_KEY,
        payauth_sandbox::defaults::VAKIFBANK_CLIENT_SECRET,
        payauth_sandbox::defaults::MYPOS_CLIENT_SECRET,
    ] {
        assert!(!all.contains(secret), "{secret} leaked");
    }
}

#[test]
fn sandbox_serves_on_the_requested_port_until_stopped() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("payauth"))
        .args(["sandbox", "--port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut answered = false;
    for _ in 0..200 {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read as _, Write as _};
            let request = "POST /oauth/token HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
            stream.write_all(request.as_bytes()).unwrap();
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response);
            answered = response.starts_with("HTTP/1.1 ");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert!(answered, "the sandbox answered HTTP on port {port}");
}
