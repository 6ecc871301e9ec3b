//! Depending on one provider compiles no other: checked on the resolved
//! dependency graph (`cargo tree`, offline, from Cargo.lock).

use std::process::Command;

fn tree(args: &[&str]) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["tree", "--offline", "-e", "normal", "--prefix", "none"])
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
