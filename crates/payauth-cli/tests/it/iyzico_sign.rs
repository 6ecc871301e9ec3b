//! `payauth iyzico sign`, driven as a user runs it.

use assert_cmd::Command;
use predicates::prelude::*;

const SDK_HEADER: &str = "Authorization: IYZWSv2 YXBpS2V5OmFwaUtleSZyYW5kb21LZXk6cm5kJnNpZ25hdHVyZTpkMDBiYWE0YjZkYzU5MzA0NzJlNGQyMmEzYzUwZmIwN2RlNTBiMGRmYjhmNWFmNWI5ZjczMTU4ZDZiMTg0ZmY2";

fn payauth() -> Command {
    let mut command = Command::cargo_bin("payauth").expect("the payauth binary is built");
    command
        .env_remove("PAYAUTH_IYZICO_API_KEY")
        .env_remove("PAYAUTH_IYZICO_SECRET_KEY");
    command
}

#[test]
fn sign_reproduces_the_sdk_test_vector() {
    payauth()
        .args([
            "iyzico",
            "sign",
            "--api-key",
            "apiKey",
            "--random-key",
            "rnd",
            "--path",
            "/payment/test",
        ])
        .args(["--body", r#"{"locale":"tr","conversationId":"123456"}"#])
        .env("PAYAUTH_IYZICO_SECRET_KEY", "secretKey")
        .assert()
        .success()
        .stdout(predicate::str::contains(SDK_HEADER))
        .stdout(predicate::str::contains("x-iyzi-rnd: rnd"));
}

#[test]
fn sign_reduces_a_full_url_with_query_to_its_path() {
    payauth()
        .args([
            "iyzico",
            "sign",
            "--api-key",
            "apiKey",
            "--random-key",
            "rnd",
        ])
        .args(["--path", "https://sandbox-api.iyzipay.com/payment/test?x=1"])
        .args(["--body", r#"{"locale":"tr","conversationId":"123456"}"#])
        .env("PAYAUTH_IYZICO_SECRET_KEY", "secretKey")
        .assert()
        .success()
        .stdout(predicate::str::contains(SDK_HEADER));
}

#[test]
fn sign_reads_the_body_from_stdin() {
    payauth()
        .args([
            "iyzico",
            "sign",
            "--api-key",
            "apiKey",
            "--random-key",
            "rnd",
            "--path",
            "/payment/test",
            "--body",
            "-",
        ])
        .env("PAYAUTH_IYZICO_SECRET_KEY", "secretKey")
        .write_stdin(r#"{"locale":"tr","conversationId":"123456"}"#)
        .assert()
        .success()
        .stdout(predicate::str::contains(SDK_HEADER));
}

#[test]
fn sign_never_echoes_the_secret_key_even_in_json() {
    const SENTINEL: &str = "SENTINEL-secret-9c1";
    for json in [false, true] {
        let mut command = payauth();
        if json {
            command.arg("--json");
        }
        command
            .args([
                "iyzico",
                "sign",
                "--api-key",
                "k",
                "--path",
                "/p",
                "--body",
                "{}",
            ])
            .env("PAYAUTH_IYZICO_SECRET_KEY", SENTINEL)
            .assert()
            .success()
            .stdout(predicate::str::contains(SENTINEL).not())
            .stderr(predicate::str::contains(SENTINEL).not());
    }
}

#[test]
fn sign_without_a_secret_key_fails_with_a_clear_message() {
    payauth()
        .args(["iyzico", "sign", "--api-key", "k", "--path", "/p"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--secret-key"));
}

#[test]
fn sign_refuses_a_relative_path() {
    payauth()
        .args(["iyzico", "sign", "--api-key", "k", "--path", "payment/test"])
        .env("PAYAUTH_IYZICO_SECRET_KEY", "s")
        .assert()
        .failure()
        .stderr(predicate::str::contains("--path must start with '/'"));
}

#[test]
fn sign_never_echoes_control_or_bidi_characters_of_its_arguments() {
    let hostile = [
        "\u{1b}[2J",
        "\u{7}",
        "\u{202e}",
        "\u{9b}31m",
        "\n# forged",
        "\u{200b}",
    ];
    for bad in hostile {
        for (flag, value) in [
            ("--path", format!("/v1/pay{bad}")),
            ("--random-key", format!("rnd{bad}")),
            ("--api-key", format!("key{bad}")),
            ("--body", format!("{{}}{bad}")),
        ] {
            for json in [false, true] {
                let mut command = payauth();
                if json {
                    command.arg("--json");
                }
                command.args(["iyzico", "sign", "--secret-key", "s"]);
                for (default, v) in [("--path", "/p"), ("--random-key", "r"), ("--api-key", "k")] {
                    if default != flag {
                        command.args([default, v]);
                    }
                }
                let output = command.arg(flag).arg(&value).output().unwrap();
                let code = output.status.code();
                assert!(
                    code == Some(0) || code == Some(2),
                    "{flag} {bad:?}: {output:?}"
                );
                for (name, stream) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
                    let text = String::from_utf8_lossy(stream);
                    let raw = text.trim_end_matches('\n');
                    assert!(
                        !raw.chars().any(|c| c != '\n'
                            && (c.is_control() || ('\u{200b}'..='\u{206f}').contains(&c))),
                        "{flag} {bad:?} {name}: {text:?}"
                    );
                    assert!(
                        !text.lines().any(|l| l.starts_with("# forged")),
                        "{flag} {bad:?}: {text:?}"
                    );
                }
            }
        }
    }
}
