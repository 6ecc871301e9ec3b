//! Where secrets come from, under abuse: a device, a FIFO with no writer,
//! a directory or a huge file instead of a secret file, and an empty
//! secret from each of its sources.

use std::process::Stdio;
use std::time::{Duration, Instant};

use payauth_sandbox::defaults;

use crate::common::{flows, payauth, scrub, signal, wait_at_most};

/// A FIFO at `path` (mkfifo(1)).
fn fifo(path: &std::path::Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success());
}

#[test]
fn a_secret_or_config_file_that_is_not_a_small_regular_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let pipe = dir.path().join("fifo");
    fifo(&pipe);
    let huge = dir.path().join("huge");
    std::fs::write(&huge, vec![b'a'; 1024 * 1024 + 1]).unwrap();
    let cases = [
        ("/dev/zero".into(), "not a regular file"),
        (pipe.clone(), "not a regular file"),
        (dir.path().to_owned(), "not a regular file"),
        (huge, "larger than"),
    ];
    for (path, why) in &cases {
        let runs = [
            vec!["token", "mypos", "--client-id", "i", "--client-secret-file"],
            vec![
                "revoke",
                "mypos",
                "--client-id",
                "i",
                "--client-secret",
                "s",
                "--token-file",
            ],
            vec![
                "iyzico",
                "sign",
                "--api-key",
                "k",
                "--path",
                "/p",
                "--secret-key-file",
            ],
            vec!["token", "--config"],
        ];
        for args in runs {
            let started = Instant::now();
            let output = payauth("http://127.0.0.1:1")
                .args(&args)
                .arg(path)
                .timeout(Duration::from_secs(10))
                .output()
                .unwrap();
            assert_eq!(
                output.status.code(),
                Some(1),
                "{args:?} {path:?}: {output:?}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{args:?} {path:?}"
            );
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains(why), "{args:?} {path:?}: {stderr}");
        }
        // The same file named by a variable.
        let output = payauth("http://127.0.0.1:1")
            .env("PAYAUTH_MYPOS_CLIENT_SECRET_FILE", path)
            .args(["token", "mypos", "--client-id", "i"])
            .timeout(Duration::from_secs(10))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{path:?}: {output:?}");
    }
}

#[test]
fn a_secret_on_standard_input_is_capped_and_sigint_still_stops_a_wait_for_it() {
    let output = payauth("http://127.0.0.1:1")
        .args([
            "token",
            "mypos",
            "--client-id",
            "i",
            "--client-secret-file",
            "-",
        ])
        .write_stdin(vec![b'a'; 64 * 1024 + 1])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("larger than"));

    // Standard input open with nothing written yet: SIGINT ends the wait.
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("payauth"));
    scrub(&mut command);
    let mut child = command
        .args([
            "token",
            "mypos",
            "--client-id",
            "i",
            "--client-secret-file",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "INT");
    let status = wait_at_most(&mut child, Duration::from_secs(5)).expect("SIGINT stopped it");
    assert!(!status.success(), "{status:?}");
}

/// Arguments, variables and standard input of one run.
type Run<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, Option<&'a str>);

#[test]
fn an_empty_secret_is_a_usage_error_from_a_flag_a_variable_a_file_or_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let empty = empty.display().to_string();
    let base = ["token", "mypos", "--client-id", defaults::MYPOS_CLIENT_ID];
    let runs: Vec<Run> = vec![
        (vec!["--client-secret", ""], vec![], None),
        (vec![], vec![("PAYAUTH_MYPOS_CLIENT_SECRET", "")], None),
        (vec!["--client-secret-file", &empty], vec![], None),
        (
            vec![],
            vec![("PAYAUTH_MYPOS_CLIENT_SECRET_FILE", &empty)],
            None,
        ),
        (vec!["--client-secret-file", "-"], vec![], Some("\n")),
    ];
    for (args, env, stdin) in runs {
        let mut command = payauth("http://127.0.0.1:1");
        command.args(base).args(&args).envs(env.iter().copied());
        if let Some(stdin) = stdin {
            command.write_stdin(stdin);
        }
        let output = command.output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?} {env:?}: {output:?}"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("is empty"), "{args:?} {env:?}: {stderr}");
    }
    // Every secret variable of every flow.
    for (args, vars) in flows() {
        for (name, _) in vars.iter().filter(|(name, _)| {
            name.ends_with("SECRET") || name.ends_with("PASSWORD") || name.ends_with("TOKEN")
        }) {
            let output = payauth("http://127.0.0.1:1")
                .envs(vars.iter().copied())
                .env(name, "")
                .arg("token")
                .args(&args)
                .output()
                .unwrap();
            assert_eq!(output.status.code(), Some(2), "{args:?} {name}: {output:?}");
        }
    }
}
