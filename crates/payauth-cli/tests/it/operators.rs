//! The CLI as operators run it: secrets from files, verbose logs that
//! never hold a secret, shell completions, and a plain-http refusal that
//! names the flag that overrides it.

use std::path::Path;

use payauth_core::Secret;
use payauth_sandbox::{Sandbox, SandboxCredentials, SandboxPwiSession, defaults};
use predicates::prelude::*;

use crate::common::{json, payauth, sandbox, sandbox_from};

/// Every sentinel starts with this, so one search finds them all.
const MARK: &str = "LEAKCHECK";

fn sentinel(name: &str) -> String {
    format!("{MARK}-{name}-x%:+ü")
}

fn write(dir: &Path, name: &str, value: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{value}\n")).unwrap();
    path.display().to_string()
}

/// Sandbox credentials whose every secret is a sentinel.
fn sentinel_credentials() -> SandboxCredentials {
    SandboxCredentials {
        iyzico_client_secret: Secret::new(sentinel("iyzico-client-secret")),
        iyzico_password: Secret::new(sentinel("iyzico-password")),
        iyzico_secret_key: Secret::new(sentinel("iyzico-secret-key")),
        pwi_sessions: vec![SandboxPwiSession::new(
            sentinel("pwi-session"),
            defaults::PWI_MEMBER_IDENTIFIER,
        )],
        vakifbank_client_secret: Secret::new(sentinel("vakifbank-client-secret")),
        mypos_client_secret: Secret::new(sentinel("mypos-client-secret")),
        ..SandboxCredentials::default()
    }
}

/// Each token subcommand with every secret given as a `--…-file` flag
/// (the PWI session token through standard input).
fn runs_with_secret_files(dir: &Path) -> Vec<(Vec<String>, Option<String>)> {
    let s = |v: &[&str]| v.iter().map(|&a| a.to_owned()).collect::<Vec<_>>();
    let file = |name: &str| write(dir, name, &sentinel(name));
    vec![
        (
            [
                s(&["mypos", "--client-id", defaults::MYPOS_CLIENT_ID]),
                s(&["--client-secret-file", &file("mypos-client-secret")]),
            ]
            .concat(),
            None,
        ),
        (
            [
                s(&["vakifbank", "--client-id", defaults::VAKIFBANK_CLIENT_ID]),
                s(&["--client-secret-file", &file("vakifbank-client-secret")]),
            ]
            .concat(),
            None,
        ),
        (
            [
                s(&["iyzico-terminal", "--client-id", defaults::IYZICO_CLIENT_ID]),
                s(&["--username", defaults::IYZICO_USERNAME]),
                s(&["--client-secret-file", &file("iyzico-client-secret")]),
                s(&["--password-file", &file("iyzico-password")]),
            ]
            .concat(),
            None,
        ),
        (
            [
                s(&["iyzico-pwi", "--api-key", defaults::IYZICO_API_KEY]),
                s(&["--member", defaults::PWI_MEMBER_IDENTIFIER]),
                s(&["--secret-key-file", &file("iyzico-secret-key")]),
                s(&["--session-token-file", "-"]),
            ]
            .concat(),
            Some(format!("{}\n", sentinel("pwi-session"))),
        ),
    ]
}

#[test]
fn every_secret_flag_has_a_file_form_and_every_flow_works_from_files() {
    let (_runtime, sandbox) = sandbox_from(Sandbox::builder().credentials(sentinel_credentials()));
    let dir = tempfile::tempdir().unwrap();
    for (args, stdin) in runs_with_secret_files(dir.path()) {
        let mut command = payauth(&sandbox.base_url());
        command.args(["--json", "token"]).args(&args);
        if let Some(stdin) = stdin {
            command.write_stdin(stdin);
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(json(&output.stdout)["token_type"], "Bearer");
    }
}

#[test]
fn a_secret_file_named_by_the_environment_is_read_and_a_missing_one_is_named() {
    let (_runtime, sandbox) = sandbox();
    let dir = tempfile::tempdir().unwrap();
    let secret = write(dir.path(), "secret", defaults::MYPOS_CLIENT_SECRET);
    payauth(&sandbox.base_url())
        .env("PAYAUTH_MYPOS_CLIENT_ID", defaults::MYPOS_CLIENT_ID)
        .env("PAYAUTH_MYPOS_CLIENT_SECRET_FILE", &secret)
        .args(["token", "mypos"])
        .assert()
        .success();
    // A flag beats the environment: a file flag wins over a set variable.
    payauth(&sandbox.base_url())
        .env("PAYAUTH_MYPOS_CLIENT_ID", defaults::MYPOS_CLIENT_ID)
        .env("PAYAUTH_MYPOS_CLIENT_SECRET", "wrong")
        .args(["token", "mypos", "--client-secret-file", &secret])
        .assert()
        .success();
    let missing = dir.path().join("nope");
    payauth(&sandbox.base_url())
        .env("PAYAUTH_MYPOS_CLIENT_ID", defaults::MYPOS_CLIENT_ID)
        .args(["token", "mypos", "--client-secret-file"])
        .arg(&missing)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(missing.display().to_string()));
}

#[test]
fn two_sources_for_one_secret_are_a_usage_error() {
    payauth("http://127.0.0.1:1")
        .env("PAYAUTH_MYPOS_CLIENT_ID", "id")
        .args([
            "token",
            "mypos",
            "--client-secret",
            "a",
            "--client-secret-file",
            "/f",
        ])
        .assert()
        .code(2);
    payauth("http://127.0.0.1:1")
        .env("PAYAUTH_MYPOS_CLIENT_ID", "id")
        .env("PAYAUTH_MYPOS_CLIENT_SECRET", "a")
        .env("PAYAUTH_MYPOS_CLIENT_SECRET_FILE", "/f")
        .args(["token", "mypos"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("PAYAUTH_MYPOS_CLIENT_SECRET_FILE"));
    payauth("http://127.0.0.1:1")
        .args(["iyzico", "sign", "--api-key", "k", "--path", "/p"])
        .args(["--secret-key-file", "-", "--body", "-"])
        .assert()
        .code(2);
}

#[test]
fn revoke_and_sign_take_their_secrets_from_files_too() {
    let (_runtime, sandbox) = sandbox();
    let dir = tempfile::tempdir().unwrap();
    let issued = payauth(&sandbox.base_url())
        .env("PAYAUTH_MYPOS_CLIENT_ID", defaults::MYPOS_CLIENT_ID)
        .env("PAYAUTH_MYPOS_CLIENT_SECRET", defaults::MYPOS_CLIENT_SECRET)
        .args(["token", "mypos", "--print"])
        .output()
        .unwrap();
    let token = String::from_utf8(issued.stdout).unwrap();
    let token_file = write(dir.path(), "token", token.trim());
    payauth(&sandbox.base_url())
        .env("PAYAUTH_MYPOS_CLIENT_ID", defaults::MYPOS_CLIENT_ID)
        .env("PAYAUTH_MYPOS_CLIENT_SECRET", defaults::MYPOS_CLIENT_SECRET)
        .args(["revoke", "mypos", "--token-file", &token_file])
        .assert()
        .success();
    assert!(sandbox.is_revoked(token.trim()));

    // The iyzico SDK's test vector, with the secret key from a file.
    let key = write(dir.path(), "key", "secretKey");
    payauth("http://127.0.0.1:1")
        .args(["iyzico", "sign", "--api-key", "apiKey", "--random-key", "rnd"])
        .args(["--path", "/payment/test", "--secret-key-file", &key])
        .args(["--body", r#"{"locale":"tr","conversationId":"123456"}"#])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "IYZWSv2 YXBpS2V5OmFwaUtleSZyYW5kb21LZXk6cm5kJnNpZ25hdHVyZTpkMDBiYWE0YjZkYzU5MzA0NzJlNGQyMmEzYzUwZmIwN2RlNTBiMGRmYjhmNWFmNWI5ZjczMTU4ZDZiMTg0ZmY2",
        ));
}

/// The line of `log` holding `needle`, for a readable failure.
fn line_with<'a>(log: &'a str, needle: &str) -> Option<&'a str> {
    log.lines().find(|l| l.contains(needle))
}

#[test]
fn verbose_logs_reach_stderr_and_never_hold_a_secret_or_token() {
    let (_runtime, sandbox) = sandbox_from(Sandbox::builder().credentials(sentinel_credentials()));
    let dir = tempfile::tempdir().unwrap();
    let mut logs = String::new();
    let mut tokens = Vec::new();
    for (args, stdin) in runs_with_secret_files(dir.path()) {
        let mut command = payauth(&sandbox.base_url());
        command
            .args(["-vv", "--json", "token", "--reveal"])
            .args(&args);
        if let Some(stdin) = stdin {
            command.write_stdin(stdin);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{args:?}");
        let value = json(&output.stdout);
        tokens.push(value["access_token"].as_str().unwrap().to_owned());
        logs.push_str(&String::from_utf8_lossy(&output.stderr));
    }
    // A refused secret, logged at trace too.
    let wrong = write(dir.path(), "wrong", &sentinel("wrong-secret"));
    let refused = payauth(&sandbox.base_url())
        .args([
            "-vv",
            "token",
            "mypos",
            "--client-id",
            defaults::MYPOS_CLIENT_ID,
        ])
        .args(["--client-secret-file", &wrong])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    logs.push_str(&String::from_utf8_lossy(&refused.stderr));

    // The capture works: payauth's own events and the HTTP stack's.
    assert!(
        logs.contains("token fetched"),
        "payauth events logged:\n{logs}"
    );
    assert!(logs.contains("hyper"), "HTTP stack traced");
    assert!(logs.contains("TRACE"), "-vv is trace");
    for needle in std::iter::once(MARK).chain(tokens.iter().map(String::as_str)) {
        assert!(
            line_with(&logs, needle).is_none(),
            "a secret reached the log: {:?}",
            line_with(&logs, needle)
        );
    }
}

#[test]
fn without_verbose_a_successful_run_prints_nothing_on_stderr() {
    let (_runtime, sandbox) = sandbox();
    payauth(&sandbox.base_url())
        .env("PAYAUTH_MYPOS_CLIENT_ID", defaults::MYPOS_CLIENT_ID)
        .env("PAYAUTH_MYPOS_CLIENT_SECRET", defaults::MYPOS_CLIENT_SECRET)
        .args(["token", "mypos"])
        .assert()
        .success()
        .stderr(predicate::str::is_empty());
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef payauth"),
        ("fish", "complete -c payauth"),
    ] {
        let output = payauth("http://127.0.0.1:1")
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: {script:.200}");
        for word in ["token", "client-secret-file", "allow-insecure-http"] {
            assert!(script.contains(word), "{shell} completes {word}");
        }
    }
    payauth("http://127.0.0.1:1")
        .args(["completions", "tcsh"])
        .assert()
        .code(2);
}

#[test]
fn plain_http_to_a_remote_host_is_refused_naming_the_flag_for_every_provider() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write(dir.path(), "s", "secret");
    let with_secret = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
        all.extend(["--client-secret-file".to_owned(), secret.clone()]);
        all
    };
    let runs: Vec<Vec<String>> = vec![
        with_secret(&["token", "mypos", "--client-id", "i"]),
        with_secret(&["token", "vakifbank", "--client-id", "i"]),
        with_secret(&[
            "token",
            "iyzico-terminal",
            "--client-id",
            "i",
            "--username",
            "u",
            "--password",
            "p",
        ]),
        [
            "token",
            "iyzico-pwi",
            "--api-key",
            "k",
            "--secret-key",
            "s",
            "--session-token",
            "t",
            "--member",
            "m",
        ]
        .map(str::to_owned)
        .to_vec(),
        with_secret(&["revoke", "mypos", "--client-id", "i", "--token", "t"]),
        with_secret(&["login", "vakifbank", "--client-id", "i"]),
    ];
    for args in runs {
        let output = payauth("http://auth.example.com")
            .arg("--json")
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("refusing plain http:// to auth.example.com"),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("--allow-insecure-http"),
            "{args:?}: {stderr}"
        );
        let value = json(&output.stdout);
        assert!(
            value["error"]["hint"]
                .as_str()
                .is_some_and(|h| h.contains("--allow-insecure-http")),
            "{args:?}: {value}"
        );
    }
}

#[test]
fn a_plain_http_revoke_host_is_refused_as_well() {
    payauth("https://auth.example.com")
        .args(["token", "mypos", "--client-id", "i", "--client-secret", "s"])
        .args(["--revoke-base-url", "http://revoke.example.com"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("revoke.example.com"))
        .stderr(predicate::str::contains("--allow-insecure-http"));
}
