//! Usage errors with `--json`, over the whole command tree as `--help`
//! describes it: every command, leaf or not, given a flag it does not
//! know or too little to run, prints the usage report on stdout and
//! exits 2.

use crate::common::{json, payauth};

/// The subcommands `payauth <path> --help` lists (without `help`).
fn subcommands(path: &[String]) -> Vec<String> {
    let output = payauth("http://127.0.0.1:1")
        .args(path)
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success(), "{path:?}: {output:?}");
    let help = String::from_utf8(output.stdout).unwrap();
    let Some(section) = help.split("\nCommands:\n").nth(1) else {
        return Vec::new();
    };
    section
        .lines()
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Every command path under `payauth`, the root included, with whether it
/// has subcommands of its own.
fn command_tree() -> Vec<(Vec<String>, Vec<String>)> {
    let mut found = Vec::new();
    let mut todo = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        let children = subcommands(&path);
        for child in &children {
            let mut next = path.clone();
            next.push(child.clone());
            todo.push(next);
        }
        found.push((path, children));
    }
    found
}

/// Commands that do their work with no arguments at all.
const RUN_WITHOUT_ARGUMENTS: [&str; 3] = ["demo", "sandbox", "config schema"];

/// The usage report a run printed, after checking its status.
fn usage_report(args: &[String]) -> serde_json::Value {
    let output = payauth("http://127.0.0.1:1").args(args).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
    let value = json(&output.stdout);
    assert_eq!(value["error"]["kind"], "usage", "{args:?}: {value}");
    assert!(
        !value["error"]["message"].as_str().unwrap().is_empty(),
        "{args:?}: {value}"
    );
    value
}

#[test]
fn json_usage_errors_print_the_usage_report_for_every_command_in_the_tree() {
    let tree = command_tree();
    let names: Vec<String> = tree.iter().map(|(path, _)| path.join(" ")).collect();
    for expected in [
        "",
        "token mypos",
        "revoke mypos",
        "login vakifbank",
        "iyzico sign",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
    }
    for (path, children) in &tree {
        // A flag no command knows, with --json before and after the path.
        for args in [
            [
                &["--json".to_owned()][..],
                path,
                &["--no-such-flag".to_owned()],
            ]
            .concat(),
            [
                &path[..],
                &["--no-such-flag".to_owned(), "--json".to_owned()],
            ]
            .concat(),
        ] {
            let value = usage_report(&args);
            let message = value["error"]["message"].as_str().unwrap();
            assert!(message.contains("--no-such-flag"), "{args:?}: {value}");
        }
        // Too little to run: no subcommand, or none of its arguments.
        if RUN_WITHOUT_ARGUMENTS.contains(&path.join(" ").as_str()) {
            continue;
        }
        let args = [&["--json".to_owned()][..], path].concat();
        let value = usage_report(&args);
        let message = value["error"]["message"].as_str().unwrap();
        for child in children {
            assert!(message.contains(child.as_str()), "{args:?}: {value}");
        }
    }
}
