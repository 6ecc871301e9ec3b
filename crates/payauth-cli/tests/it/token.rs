//! `payauth token` and `payauth revoke`, driven as a user runs them,
//! against a sandbox started in the test.

use assert_cmd::Command;
use payauth_sandbox::{RunningSandbox, Sandbox, defaults};
use predicates::prelude::*;

/// A sandbox on its own runtime, serving while the binary runs.
fn sandbox() -> (tokio::runtime::Runtime, RunningSandbox) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sandbox = runtime.block_on(Sandbox::builder().start()).unwrap();
    (runtime, sandbox)
}

/// The binary with no `PAYAUTH_*` variables leaking in from the caller.
fn payauth(base_url: &str) -> Command {
    let mut command = Command::cargo_bin("payauth").unwrap();
    for (name, _) in std::env::vars() {
        if name.starts_with("PAYAUTH_") {
            command.env_remove(name);
        }
    }
    command.env("PAYAUTH_ENVIRONMENT", base_url);
    command
}

fn mypos(base_url: &str) -> Command {
    let mut command = payauth(base_url);
    command
        .env("PAYAUTH_MYPOS_CLIENT_ID", defaults::MYPOS_CLIENT_ID)
        .env("PAYAUTH_MYPOS_CLIENT_SECRET", defaults::MYPOS_CLIENT_SECRET);
    command
}

#[test]
fn token_prints_what_the_token_is_but_not_the_token() {
    let (_runtime, sandbox) = sandbox();
    mypos(&sandbox.base_url())
        .args(["token", "mypos", "--scope", "webhooks"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "mypos client credentials: OK, Bearer token, expires in",
        ))
        .stdout(predicate::str::contains("Authorization").not())
        .stdout(predicate::str::contains(defaults::MYPOS_CLIENT_SECRET).not());
}

#[test]
fn token_with_reveal_prints_the_authorization_header() {
    let (_runtime, sandbox) = sandbox();
    mypos(&sandbox.base_url())
        .args(["--json", "token", "--reveal", "mypos"])
        .assert()
        .success()
        .stdout(predicate::str::contains(r#""authorization":"Bearer "#));
}

#[test]
fn a_wrong_secret_fails_with_a_clear_message_and_no_secret() {
    const SENTINEL: &str = "SENTINEL-cli-wrong-secret";
    let (_runtime, sandbox) = sandbox();
    payauth(&sandbox.base_url())
        .env("PAYAUTH_MYPOS_CLIENT_ID", defaults::MYPOS_CLIENT_ID)
        .env("PAYAUTH_MYPOS_CLIENT_SECRET", SENTINEL)
        .args(["token", "mypos"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "mypos client credentials failed: client credentials refused",
        ))
        .stderr(predicate::str::contains(SENTINEL).not())
        .stdout(predicate::str::contains(SENTINEL).not());
}

/// Arguments after `token`, and the environment that carries credentials.
type Run = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

#[test]
fn every_provider_flow_gets_a_token_from_the_sandbox() {
    let (_runtime, sandbox) = sandbox();
    let base = sandbox.base_url();
    let runs: [Run; 4] = [
        (
            &["vakifbank", "--flow", "client-credentials"],
            &[
                ("PAYAUTH_VAKIFBANK_CLIENT_ID", defaults::VAKIFBANK_CLIENT_ID),
                (
                    "PAYAUTH_VAKIFBANK_CLIENT_SECRET",
                    defaults::VAKIFBANK_CLIENT_SECRET,
                ),
            ],
        ),
        (
            &[
                "vakifbank",
                "--flow",
                "b2b-credentials",
                "--scope",
                "account",
            ],
            &[
                ("PAYAUTH_VAKIFBANK_CLIENT_ID", defaults::VAKIFBANK_CLIENT_ID),
                (
                    "PAYAUTH_VAKIFBANK_CLIENT_SECRET",
                    defaults::VAKIFBANK_CLIENT_SECRET,
                ),
                (
                    "PAYAUTH_VAKIFBANK_CONSENT_ID",
                    defaults::VAKIFBANK_CONSENT_ID,
                ),
            ],
        ),
        (
            &["iyzico-terminal"],
            &[
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
            &["iyzico-pwi"],
            &[
                ("PAYAUTH_IYZICO_API_KEY", defaults::IYZICO_API_KEY),
                ("PAYAUTH_IYZICO_SECRET_KEY", defaults::IYZICO_SECRET_KEY),
                (
                    "PAYAUTH_IYZICO_PWI_SESSION_TOKEN",
                    defaults::PWI_SESSION_TOKEN,
                ),
                ("PAYAUTH_IYZICO_PWI_MEMBER", defaults::PWI_MEMBER_IDENTIFIER),
            ],
        ),
    ];
    for (args, env) in runs {
        let mut command = payauth(&base);
        command.args(["--json", "token"]).args(args);
        for (name, value) in env {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(json["token_type"], "Bearer", "{args:?}");
        assert!(
            json.get("authorization").is_none(),
            "{args:?}: not revealed"
        );
    }
}

#[test]
fn revoke_mypos_revokes_the_token_at_the_sandbox() {
    let (_runtime, sandbox) = sandbox();
    let issued = mypos(&sandbox.base_url())
        .args(["--json", "token", "--reveal", "mypos"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&issued.stdout).unwrap();
    let token = json["authorization"]
        .as_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();
    assert!(!sandbox.is_revoked(&token));
    mypos(&sandbox.base_url())
        .env("PAYAUTH_MYPOS_TOKEN", &token)
        .args(["revoke", "mypos"])
        .assert()
        .success()
        .stdout(predicate::str::contains("revoked"));
    assert!(sandbox.is_revoked(&token));
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    payauth("http://auth-api.mypos.com")
        .env("PAYAUTH_MYPOS_CLIENT_ID", "id")
        .env("PAYAUTH_MYPOS_CLIENT_SECRET", "secret")
        .args(["token", "mypos"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "refusing plain http:// to auth-api.mypos.com",
        ));
}

/// A config file for the sandbox's myPOS client, its secret from
/// `MY_MYPOS_SECRET`, with `extra` appended (a `[store]` table, say).
fn mypos_config(dir: &std::path::Path, base_url: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("payauth.toml");
    std::fs::write(
        &path,
        format!(
            "[source]\nprovider = \"mypos\"\nenvironment = \"{base_url}\"\nclient_id = \"{}\"\nclient_secret = {{ env = \"MY_MYPOS_SECRET\" }}\n{extra}",
            defaults::MYPOS_CLIENT_ID
        ),
    )
    .unwrap();
    path
}

/// A `[store]` table for a file store in `dir`.
fn file_store(dir: &std::path::Path) -> String {
    format!(
        "\n[store]\nkind = \"file\"\ndir = {:?}\n",
        dir.display().to_string()
    )
}

#[test]
fn token_from_a_toml_config_file() {
    let (_runtime, sandbox) = sandbox();
    let dir = tempfile::tempdir().unwrap();
    let path = mypos_config(dir.path(), &sandbox.base_url(), "");
    payauth(&sandbox.base_url())
        .env("MY_MYPOS_SECRET", defaults::MYPOS_CLIENT_SECRET)
        .arg("token")
        .arg("--config")
        .arg(&path)
        .assert()
        .success()
        .stdout(predicate::str::contains("OK, Bearer token"));
}

#[test]
fn a_bad_config_file_names_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[source]\nprovider = \"paypal\"\n").unwrap();
    payauth("http://127.0.0.1:1")
        .arg("token")
        .arg("--config")
        .arg(&path)
        .assert()
        .failure()
        .stderr(predicate::str::contains("bad.toml"))
        .stderr(predicate::str::contains("paypal"));
}

#[test]
fn config_schema_prints_the_json_schema_of_the_config_file() {
    let output = Command::cargo_bin("payauth")
        .unwrap()
        .args(["config", "schema"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(schema["title"], "Config");
    assert!(schema["$defs"]["SourceConfig"].is_object());
}

#[test]
fn token_config_honours_its_file_store_across_runs() {
    let (_runtime, sandbox) = sandbox();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("tokens");
    let path = mypos_config(dir.path(), &sandbox.base_url(), &file_store(&store));
    let run = || {
        payauth(&sandbox.base_url())
            .env("MY_MYPOS_SECRET", defaults::MYPOS_CLIENT_SECRET)
            .args(["token", "--print", "--config"])
            .arg(&path)
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{first:?}");
    assert_eq!(sandbox.requests(payauth_sandbox::Endpoint::MyposToken), 1);
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), 1, "saved");
    let second = run();
    assert!(second.status.success());
    assert_eq!(
        first.stdout, second.stdout,
        "the stored token, served again"
    );
    assert_eq!(
        sandbox.requests(payauth_sandbox::Endpoint::MyposToken),
        1,
        "no second request"
    );
}

#[test]
fn revoke_config_revokes_the_token_its_store_holds_and_removes_it_from_there() {
    let (_runtime, sandbox) = sandbox();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("tokens");
    let path = mypos_config(dir.path(), &sandbox.base_url(), &file_store(&store));
    let with_config = |args: &[&str]| {
        let mut command = payauth(&sandbox.base_url());
        command
            .env("MY_MYPOS_SECRET", defaults::MYPOS_CLIENT_SECRET)
            .args(args)
            .arg("--config")
            .arg(&path);
        command
    };
    // Nothing stored yet: nothing to revoke, and nothing sent.
    with_config(&["revoke"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no token stored"))
        .stderr(predicate::str::contains("nothing to revoke"))
        .stderr(predicate::str::contains("--token-file").not());
    let issued = with_config(&["token", "--print"]).output().unwrap();
    assert!(issued.status.success(), "{issued:?}");
    let token = String::from_utf8(issued.stdout).unwrap().trim().to_owned();
    assert!(!sandbox.is_revoked(&token));
    let revoked = with_config(&["--json", "revoke"]).output().unwrap();
    assert!(revoked.status.success(), "{revoked:?}");
    let json: serde_json::Value = serde_json::from_slice(&revoked.stdout).unwrap();
    assert_eq!(json["removed_from_store"], true);
    assert!(sandbox.is_revoked(&token));
    // The next run fetches anew: the revoked token is not served again.
    let next = with_config(&["token", "--print"]).output().unwrap();
    assert!(next.status.success());
    assert_ne!(String::from_utf8(next.stdout).unwrap().trim(), token);
    // A subcommand and --config together: say which.
    with_config(&["revoke", "mypos"]).assert().code(2);
}

#[test]
fn revoke_config_of_a_provider_without_revocation_is_a_usage_error_sending_nothing() {
    let (_runtime, sandbox) = sandbox();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iyzico.toml");
    std::fs::write(
        &path,
        format!(
            "[source]\nprovider = \"iyzico-terminal\"\nenvironment = \"{}\"\nclient_id = \"c\"\nclient_secret = {{ env = \"S\" }}\nusername = \"u\"\npassword = {{ env = \"S\" }}\n",
            sandbox.base_url()
        ),
    )
    .unwrap();
    payauth(&sandbox.base_url())
        .env("S", "s3cret-value")
        .args(["revoke", "--config"])
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("only myPOS tokens can be revoked"));
    assert_eq!(sandbox.requests(payauth_sandbox::Endpoint::IyzicoToken), 0);
}

#[test]
fn token_config_comes_from_the_environment_when_no_provider_is_given() {
    let (_runtime, sandbox) = sandbox();
    let dir = tempfile::tempdir().unwrap();
    let path = mypos_config(dir.path(), &sandbox.base_url(), "");
    payauth(&sandbox.base_url())
        .env("MY_MYPOS_SECRET", defaults::MYPOS_CLIENT_SECRET)
        .env("PAYAUTH_CONFIG", &path)
        .arg("token")
        .assert()
        .success();
    // A provider subcommand wins over a config named by the environment.
    mypos(&sandbox.base_url())
        .env("PAYAUTH_CONFIG", dir.path().join("absent.toml"))
        .args(["token", "mypos"])
        .assert()
        .success();
    // Given as a flag, with a subcommand too: say which.
    mypos(&sandbox.base_url())
        .arg("token")
        .arg("--config")
        .arg(&path)
        .arg("mypos")
        .assert()
        .code(2);
}

#[test]
fn token_with_a_store_dir_serves_the_stored_token_until_it_nears_expiry() {
    let (_runtime, sandbox) = sandbox();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("tokens");
    let run = || {
        mypos(&sandbox.base_url())
            .args(["token", "mypos", "--print", "--store-dir"])
            .arg(&store)
            .output()
            .unwrap()
    };
    let first = run();
    let second = run();
    assert!(first.status.success() && second.status.success());
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(sandbox.requests(payauth_sandbox::Endpoint::MyposToken), 1);
    // Without a store every run fetches.
    let third = mypos(&sandbox.base_url())
        .args(["token", "mypos", "--print"])
        .output()
        .unwrap();
    assert_ne!(third.stdout, first.stdout);
    assert_eq!(sandbox.requests(payauth_sandbox::Endpoint::MyposToken), 2);
}

#[test]
fn default_lifetime_secs_sets_the_lifetime_of_a_token_sent_without_expires_in() {
    use payauth_testkit::gateway::{self, RawGateway};
    // Every answer a token without `expires_in` (and, for the iyzico
    // Terminal login's authorize step, a code).
    let server = RawGateway::answering(gateway::json(
        "200 OK",
        r#"{"code":"c","access_token":"t","token_type":"Bearer"}"#,
    ));
    let flows: Vec<_> = crate::common::flows()
        .into_iter()
        .filter(|(args, _)| args[0] != "iyzico-pwi")
        .collect();
    assert_eq!(flows.len(), 4, "every flow with a default lifetime");
    for (args, env) in flows {
        let lifetime = |extra: &[&str]| {
            let output = payauth(&server.base_url())
                .envs(env.iter().copied())
                .arg("--json")
                .arg("token")
                .args(&args)
                .args(extra)
                .output()
                .unwrap();
            assert!(output.status.success(), "{args:?}: {output:?}");
            crate::common::json(&output.stdout)["expires_in_s"]
                .as_u64()
                .unwrap()
        };
        let set = lifetime(&["--default-lifetime-secs", "4242"]);
        assert!((4230..=4242).contains(&set), "{args:?}: {set}");
        let default = lifetime(&[]);
        assert!(default != set && default >= 3500, "{args:?}: {default}");
    }
}

#[test]
fn revoke_with_the_store_of_token_revokes_the_stored_token_and_removes_it() {
    let (_runtime, sandbox) = crate::common::sandbox();
    let store = tempfile::tempdir().unwrap();
    let dir = store.path().join("tokens");
    let issue = || {
        let output = crate::common::mypos(&sandbox.base_url())
            .args(["token", "mypos", "--print", "--store-dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let first = issue();
    assert_eq!(issue(), first, "served from the store");
    // No token given: the stored one is revoked, and removed.
    let output = crate::common::mypos(&sandbox.base_url())
        .args(["--json", "revoke", "mypos", "--store-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let value = crate::common::json(&output.stdout);
    assert_eq!(value["removed_from_store"], true, "{value}");
    assert!(sandbox.is_revoked(&first));
    let second = issue();
    assert_ne!(second, first, "a revoked token is not served again");
    // A token given, through the variable of the store: removed as well.
    let output = crate::common::mypos(&sandbox.base_url())
        .env("PAYAUTH_STORE_DIR", &dir)
        .env("PAYAUTH_MYPOS_TOKEN", &second)
        .args(["--json", "revoke", "mypos"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        crate::common::json(&output.stdout)["removed_from_store"],
        true
    );
    assert!(sandbox.is_revoked(&second));
    let third = issue();
    assert_ne!(third, second);
    // Another token: revoked, and the stored one kept.
    let output = crate::common::mypos(&sandbox.base_url())
        .env("PAYAUTH_MYPOS_TOKEN", "some-other-token")
        .args(["--json", "revoke", "mypos", "--store-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        crate::common::json(&output.stdout)["removed_from_store"],
        false
    );
    assert_eq!(issue(), third);
}

#[test]
fn a_redis_store_refusing_connections_is_a_transient_failure_exit_75() {
    let (_runtime, sandbox) = sandbox();
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = mypos_config(
        dir.path(),
        &sandbox.base_url(),
        &format!("\n[store]\nkind = \"redis\"\nurl = {{ value = \"redis://127.0.0.1:{port}\" }}\n"),
    );
    let output = payauth(&sandbox.base_url())
        .env("MY_MYPOS_SECRET", defaults::MYPOS_CLIENT_SECRET)
        .args(["token", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(75),
        "try again later, not 'the same command will fail again': {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
