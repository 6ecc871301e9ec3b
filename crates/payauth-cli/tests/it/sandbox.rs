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

/// A CA (PEM) and a certificate it signed for `name` with its key (PEM).
fn signed(ca_name: &str, name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

#[test]
fn with_a_client_ca_it_serves_tokens_over_mutual_tls_only_to_a_client_that_ca_signed() {
    use std::fmt::Write as _;

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    // The announced URL is https://127.0.0.1:PORT: the certificate names
    // the address.
    let (server_ca, server_cert, server_key) = signed("sandbox CA", "127.0.0.1");
    let (client_ca, client_cert, client_key) = signed("client CA", "merchant");
    let (_, stranger_cert, stranger_key) = signed("another CA", "merchant");
    let (server_ca, server_cert, server_key) = (
        write("server-ca.pem", &server_ca),
        write("server.pem", &server_cert),
        write("server-key.pem", &server_key),
    );
    let client_ca = write("client-ca.pem", &client_ca);
    let (child, stdout) = start(&[
        "--json",
        "sandbox",
        "--port",
        "0",
        "--tls-cert",
        &server_cert,
        "--tls-key",
        &server_key,
        "--client-ca",
        &client_ca,
    ]);
    let value = json(stdout.until("{").pop().unwrap().as_bytes());
    let url = value["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{value}");
    assert_eq!(value["client_certificate_required"], true, "{value}");
    // `payauth token --config` with an `[http] identity`, trusting the
    // sandbox's CA as every rustls-platform-verifier client does.
    let token = |identity: Option<(&str, &str)>| {
        let mut config = format!(
            "[source]\nprovider = \"mypos\"\nenvironment = \"{url}\"\nclient_id = \"{}\"\nclient_secret = {{ value = \"{}\" }}\n",
            payauth_sandbox::defaults::MYPOS_CLIENT_ID,
            payauth_sandbox::defaults::MYPOS_CLIENT_SECRET
        );
        if let Some((cert, key)) = identity {
            let cert = write("client.pem", cert);
            let key = write("client-key.pem", key);
            writeln!(
                config,
                "[http]\nidentity = {{ certificate_chain = \"{cert}\", key = {{ file = \"{key}\" }} }}"
            )
            .unwrap();
        }
        let config = write("payauth.toml", &config);
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("payauth"));
        scrub(&mut command);
        command
            .args(["token", "--config", &config])
            .env("SSL_CERT_FILE", &server_ca)
            .env_remove("SSL_CERT_DIR");
        command.output().unwrap()
    };
    let served = token(Some((&client_cert, &client_key)));
    assert!(
        served.status.success(),
        "{}",
        String::from_utf8_lossy(&served.stderr)
    );
    // No certificate, or one another CA signed: refused, a configuration
    // problem (exit 1, not 75: retrying cannot help).
    for (who, identity) in [
        ("no identity", None),
        (
            "another CA's",
            Some((stranger_cert.as_str(), stranger_key.as_str())),
        ),
    ] {
        let refused = token(identity);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{who}: {stderr}");
        assert!(stderr.contains("client certificate"), "{who}: {stderr}");
        assert!(!stderr.contains("PRIVATE"), "{who}: {stderr}");
    }
    assert!(stop(child, "TERM").success());
}

#[test]
fn a_tls_file_that_is_no_pem_certificate_or_key_fails_the_start_naming_which() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "KEY-CANARY").unwrap();
    let (_, cert, key) = signed("sandbox CA", "127.0.0.1");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let (junk, cert, key) = (
        junk.to_str().unwrap(),
        cert_path.to_str().unwrap(),
        key_path.to_str().unwrap(),
    );
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec!["--tls-cert", junk, "--tls-key", key],
            "server certificate",
        ),
        (vec!["--tls-cert", cert, "--tls-key", junk], "server key"),
        (
            vec!["--tls-cert", cert, "--tls-key", key, "--client-ca", junk],
            "client CA",
        ),
        (vec!["--tls-cert", cert], "--tls-key"),
    ];
    for (args, named) in cases {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("payauth"));
        scrub(&mut command);
        let output = command
            .args(["sandbox", "--port", "0"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
        assert!(!stderr.contains("CANARY"), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "no banner: {args:?}");
    }
}
