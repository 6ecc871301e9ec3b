//! Depending on one provider compiles no other: checked on the resolved
//! dependency graph (`cargo tree`, offline, from Cargo.lock).

use std::process::Command;

fn tree(args: &[&str]) -> String {
    cargo_tree("normal", args)
}

/// `cargo tree` offline, from Cargo.lock, over edges `edges`.
fn cargo_tree(edges: &str, args: &[&str]) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["tree", "--offline", "-e", edges, "--prefix", "none"])
        .args(args)
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_mypos_crate_pulls_in_no_other_provider_nor_the_generator() {
    let tree = tree(&["-p", "payauth-mypos"]);
    for absent in [
        "payauth-iyzico",
        "payauth-vakifbank",
        "payauth-sandbox",
        "progenitor-impl",
        "typify",
    ] {
        assert!(!tree.contains(absent), "payauth-mypos depends on {absent}");
    }
}

#[test]
fn the_cli_without_its_sandbox_feature_pulls_in_no_sandbox() {
    let tree = tree(&["-p", "payauth-cli", "--no-default-features"]);
    assert!(tree.contains("payauth-mypos"), "{tree}");
    assert!(!tree.contains("payauth-sandbox"), "{tree}");
}

#[test]
fn the_facade_with_only_mypos_compiles_only_mypos() {
    let tree = tree(&[
        "-p",
        "payauth",
        "--no-default-features",
        "--features",
        "mypos",
    ]);
    assert!(tree.contains("payauth-mypos"));
    for absent in ["payauth-iyzico", "payauth-vakifbank", "toml "] {
        assert!(!tree.contains(absent), "payauth[mypos] depends on {absent}");
    }
}

#[test]
fn no_provider_feature_turns_on_another() {
    for (feature, others) in [
        ("iyzico", ["payauth-vakifbank", "payauth-mypos"]),
        ("vakifbank", ["payauth-iyzico", "payauth-mypos"]),
        ("mypos", ["payauth-iyzico", "payauth-vakifbank"]),
    ] {
        let tree = tree(&[
            "-p",
            "payauth",
            "--no-default-features",
            "--features",
            feature,
        ]);
        for other in others {
            assert!(
                !tree.contains(other),
                "payauth[{feature}] depends on {other}"
            );
        }
    }
}

/// The library crates a user depends on.
const LIBRARIES: [&str; 6] = [
    "payauth-core",
    "payauth-iyzico",
    "payauth-vakifbank",
    "payauth-mypos",
    "payauth-redis",
    "payauth",
];

/// The features of `package` (with `args`) that reach `target`, from
/// `cargo tree -e features -i`.
fn features_of(package: &str, target: &str, args: &[&str]) -> Vec<String> {
    let tree = cargo_tree(
        "normal,features",
        &[&["-p", package, "-i", target][..], args].concat(),
    );
    let prefix = format!("{target} feature \"");
    let mut features: Vec<String> = tree
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix)?.split('"').next())
        .map(ToOwned::to_owned)
        .collect();
    features.sort();
    features.dedup();
    features
}

#[test]
fn no_library_crate_turns_on_a_feature_that_changes_the_users_own_reqwest() {
    // With reqwest's `rustls-no-provider` on (as payauth-core once had it),
    // a user's `reqwest::Client::new()` panics for want of a crypto
    // provider; `rustls`/`native-tls`/`default` give their client a TLS
    // stack they did not ask for. payauth needs none of them: reqwest only
    // builds requests, payauth's HttpClient sends them.
    for package in LIBRARIES {
        for args in [&[][..], &["--all-features"][..]] {
            let features = features_of(package, "reqwest", args);
            let tls: Vec<&String> = features
                .iter()
                .filter(|f| {
                    f.contains("tls")
                        || f.contains("rustls")
                        || f.starts_with("default")
                        || f.starts_with("http")
                        || f.contains("proxy")
                })
                .collect();
            assert!(
                tls.is_empty(),
                "{package} {args:?} turns on reqwest features {tls:?}"
            );
        }
    }
}

#[test]
fn choosing_native_tls_compiles_neither_ring_nor_rustls() {
    let tree = tree(&[
        "-p",
        "payauth",
        "--no-default-features",
        "--features",
        "mypos,native-tls",
    ]);
    assert!(tree.contains("native-tls"), "{tree}");
    for absent in ["ring ", "rustls ", "aws-lc"] {
        assert!(
            !tree.contains(absent),
            "payauth[native-tls] compiles {absent}"
        );
    }
}

#[test]
fn the_default_tls_is_rustls_on_ring_without_aws_lc() {
    let tree = tree(&["-p", "payauth-mypos"]);
    assert!(tree.contains("ring "), "{tree}");
    assert!(tree.contains("hyper-rustls "), "{tree}");
    assert!(!tree.contains("aws-lc"), "payauth-mypos compiles aws-lc");
}

#[test]
fn the_cli_built_alone_still_speaks_tls() {
    // payauth crates depend on each other with default features off; a
    // binary that forgot to ask for a backend would refuse every https://
    // provider host with a configuration error.
    let tree = tree(&["-p", "payauth-cli"]);
    assert!(
        tree.contains("hyper-rustls "),
        "payauth-cli has no TLS backend"
    );
}
