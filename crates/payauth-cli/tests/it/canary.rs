//! The CLI's half of the canary sweep (the library's is the workspace's
//! `tests/it/canary.rs`): the `payauth` binary, fed canary secrets through
//! its variables, runs every `token` and `revoke` flow against every
//! hostile gateway of payauth-testkit's `canary` module (most echo the
//! request back in one encoding or another), in text and `--json`, with
//! `-vv` tracing; and `--help` of every subcommand, found by walking the
//! help itself, runs with every variable it names set to a canary. No
//! canary may show on stdout or stderr, in any encoding.

use payauth_testkit::canary::{Canaries, FAULTS, Gateway, canary};

use crate::common::payauth;

/// A `payauth` command line and the variables carrying its canaries.
type CliFlow = (&'static [&'static str], Vec<(&'static str, String)>);

/// Every flow the binary runs, with each secret a canary.
fn flows() -> Vec<CliFlow> {
    let vakifbank = || {
        vec![
            ("PAYAUTH_VAKIFBANK_CLIENT_ID", "client-1".to_owned()),
            ("PAYAUTH_VAKIFBANK_CLIENT_SECRET", canary("client_secret")),
            ("PAYAUTH_VAKIFBANK_CONSENT_ID", "consent-7".to_owned()),
        ]
    };
    let mypos = || {
        vec![
            ("PAYAUTH_MYPOS_CLIENT_ID", "client-1".to_owned()),
            ("PAYAUTH_MYPOS_CLIENT_SECRET", canary("client_secret")),
            ("PAYAUTH_MYPOS_TOKEN", canary("access_token")),
        ]
    };
    vec![
        (&["token", "mypos"], mypos()),
        (&["revoke", "mypos"], mypos()),
        (&["token", "vakifbank"], vakifbank()),
        (
            &["token", "vakifbank", "--flow", "b2b-credentials"],
            vakifbank(),
        ),
        (
            &["token", "iyzico-terminal"],
            vec![
                ("PAYAUTH_IYZICO_CLIENT_ID", "client-1".to_owned()),
                ("PAYAUTH_IYZICO_CLIENT_SECRET", canary("client_secret")),
                ("PAYAUTH_IYZICO_USERNAME", "cashier-1".to_owned()),
                ("PAYAUTH_IYZICO_PASSWORD", canary("password")),
            ],
        ),
        (
            &["token", "iyzico-pwi"],
            vec![
                ("PAYAUTH_IYZICO_API_KEY", "api-key-1".to_owned()),
                ("PAYAUTH_IYZICO_SECRET_KEY", canary("secret_key")),
                ("PAYAUTH_IYZICO_PWI_SESSION_TOKEN", canary("session_token")),
                ("PAYAUTH_IYZICO_PWI_MEMBER", "member-1".to_owned()),
            ],
        ),
    ]
}

/// The output modes: text and JSON, both tracing at TRACE.
const MODES: &[&[&str]] = &[&["-vv"], &["--json", "-vv"]];

#[test]
fn no_canary_shows_on_stdout_or_stderr_of_any_flow_against_any_hostile_gateway() {
    let canaries = Canaries::new();
    let mut leaks = Vec::new();
    let mut runs = 0;
    for fault in FAULTS {
        let gateway = Gateway::start(fault);
        for (args, vars) in flows() {
            for mode in MODES {
                let output = payauth(&gateway.base)
                    .envs(vars.iter().map(|(name, value)| (*name, value.as_str())))
                    .args(*mode)
                    .args(args)
                    .timeout(std::time::Duration::from_secs(30))
                    .output()
                    .unwrap();
                runs += 1;
                for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
                    let text = String::from_utf8_lossy(bytes);
                    if let Some(found) = canaries.find(&text) {
                        leaks.push(format!(
                            "{args:?} {mode:?} / {} / {stream}: {found}",
                            fault.name
                        ));
                    }
                }
            }
        }
    }
    assert!(runs >= 100, "{runs} runs");
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

/// The subcommands a help text lists under `Commands:` (not `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(ToOwned::to_owned)
        .collect()
}

/// The variables a help text names (`[env: NAME]`, `PAYAUTH_…`).
fn variables(help: &str) -> Vec<String> {
    help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("PAYAUTH_"))
        .map(ToOwned::to_owned)
        .collect()
}

fn help(path: &[String], vars: &[(String, String)]) -> String {
    let output = payauth("sandbox")
        .envs(vars.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        .args(path)
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success(), "{path:?}: {output:?}");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn help_never_shows_a_variables_value_in_any_subcommand() {
    // Walk the command tree through its own help, gathering every variable.
    let mut paths: Vec<Vec<String>> = vec![Vec::new()];
    let mut all = Vec::new();
    let mut names: Vec<String> = Vec::new();
    while let Some(path) = paths.pop() {
        let text = help(&path, &[]);
        names.extend(variables(&text));
        for sub in subcommands(&text) {
            let mut next = path.clone();
            next.push(sub);
            paths.push(next);
        }
        all.push(path);
    }
    names.sort();
    names.dedup();
    assert!(all.len() >= 10, "{all:?}");
    assert!(names.len() >= 15, "{names:?}");
    // Then again with every one of them holding a canary (as a URL with
    // user:password@ and a query, the worst an environment can hold).
    let canaries = Canaries::new();
    let value = format!(
        "https://user:{}@host.example/?client_secret={}",
        canary("url_password"),
        canary("client_secret")
    );
    let vars: Vec<(String, String)> = names.iter().map(|n| (n.clone(), value.clone())).collect();
    for path in all {
        let text = help(&path, &vars);
        assert_eq!(
            canaries.find(&text),
            None,
            "payauth {path:?} --help:\n{text}"
        );
    }
}
