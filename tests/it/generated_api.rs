//! Snapshots of the public surface of every generated client: the methods,
//! the types with their fields, and the security table. A spec change shows
//! up here as a small, reviewable diff of what users of the crate see
//! (`cargo insta review`), while `cargo xtask codegen --check` guards the
//! full generated files.

use std::fmt::Write as _;
use std::path::Path;

use quote::ToTokens;

/// Reads `crates/<krate>/src/generated.rs` and describes its public surface.
fn surface(krate: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates")
        .join(krate)
        .join("src/generated.rs");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let file = syn::parse_file(&text).expect("generated code parses");
    let mut out = String::new();
    for item in &file.items {
        if let syn::Item::Mod(module) = item {
            describe_module(&mut out, &module.ident.to_string(), module);
        }
    }
    out
}

fn describe_module(out: &mut String, name: &str, module: &syn::ItemMod) {
    let Some((_, items)) = &module.content else {
        return;
    };
    for item in items {
        match item {
            syn::Item::Mod(inner) if inner.ident == "types" => {
                let _ = writeln!(out, "mod {name}::types");
                for item in inner.content.iter().flat_map(|(_, items)| items) {
                    describe_type(out, item);
                }
            }
            syn::Item::Mod(inner) if inner.ident == "security" => {
                let _ = writeln!(out, "mod {name}::security");
                for item in inner.content.iter().flat_map(|(_, items)| items) {
                    describe_security(out, item);
                }
            }
            syn::Item::Impl(imp) if imp.trait_.is_none() && tokens(&imp.self_ty) == "Client" => {
                let _ = writeln!(out, "impl {name}::Client");
                for method in imp.items.iter().filter_map(|i| {
                    if let syn::ImplItem::Fn(f) = i {
                        Some(f)
                    } else {
                        None
                    }
                }) {
                    if matches!(method.vis, syn::Visibility::Public(_)) {
                        let _ = writeln!(out, "    {}", signature(&method.sig));
                    }
                }
            }
            _ => {}
        }
    }
}

fn describe_type(out: &mut String, item: &syn::Item) {
    match item {
        syn::Item::Struct(s) => {
            let _ = writeln!(out, "    struct {}", s.ident);
            for field in &s.fields {
                let name = field
                    .ident
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let _ = writeln!(out, "        {name}: {}", tokens(&field.ty));
            }
        }
        syn::Item::Enum(e) => {
            let variants: Vec<String> = e
                .variants
                .iter()
                .map(|v| match &v.fields {
                    syn::Fields::Unit => v.ident.to_string(),
                    fields => format!("{}{}", v.ident, tokens(fields)),
                })
                .collect();
            let _ = writeln!(out, "    enum {} {{ {} }}", e.ident, variants.join(", "));
        }
        _ => {}
    }
}

fn describe_security(out: &mut String, item: &syn::Item) {
    match item {
        syn::Item::Enum(e) => {
            let variants: Vec<String> = e.variants.iter().map(|v| v.ident.to_string()).collect();
            let _ = writeln!(out, "    schemes: {}", variants.join(", "));
        }
        syn::Item::Fn(f) => {
            let Some(syn::Stmt::Expr(syn::Expr::Match(m), _)) = f.block.stmts.first() else {
                return;
            };
            for arm in &m.arms {
                let _ = writeln!(out, "    {} => {}", tokens(&arm.pat), tokens(&arm.body));
            }
        }
        _ => {}
    }
}

fn signature(sig: &syn::Signature) -> String {
    let inputs: Vec<String> = sig.inputs.iter().map(tokens).collect();
    let output = match &sig.output {
        syn::ReturnType::Default => String::new(),
        syn::ReturnType::Type(_, ty) => format!(" -> {}", tokens(ty)),
    };
    let asyncness = if sig.asyncness.is_some() {
        "async "
    } else {
        ""
    };
    format!("{asyncness}fn {}({}){output}", sig.ident, inputs.join(", "))
}

/// Tokens as compact, readable Rust (`Option<Secret>`, not
/// `:: std :: option :: Option < :: payauth_core :: Secret >`).
fn tokens(node: &impl ToTokens) -> String {
    let mut s = node.to_token_stream().to_string();
    for (from, to) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" < ", "<"),
        (" <", "<"),
        ("< ", "<"),
        (" > ", "> "),
        (" >", ">"),
        (" , ", ", "),
        (" ,>", ">"),
        (" : ", ": "),
        ("& ", "&"),
        ("( ", "("),
        (" )", ")"),
        ("[ ", "["),
        (" ]", "]"),
    ] {
        s = s.replace(from, to);
    }
    for prefix in [
        "::std::option::",
        "::std::string::",
        "::std::vec::",
        "::payauth_core::",
        "::std::",
        "types::",
    ] {
        s = s.replace(prefix, "");
    }
    s.trim_start_matches("::").to_owned()
}

#[test]
fn iyzico_generated_surface_is_reviewed() {
    insta::assert_snapshot!(surface("payauth-iyzico"));
}

#[test]
fn vakifbank_generated_surface_is_reviewed() {
    insta::assert_snapshot!(surface("payauth-vakifbank"));
}

#[test]
fn mypos_generated_surface_is_reviewed() {
    insta::assert_snapshot!(surface("payauth-mypos"));
}

#[test]
fn every_credential_field_is_generated_as_a_secret() {
    for krate in ["payauth-iyzico", "payauth-vakifbank", "payauth-mypos"] {
        for line in surface(krate).lines() {
            let Some((name, ty)) = line.trim().split_once(": ") else {
                continue;
            };
            let credential = [
                "client_secret",
                "password",
                "access_token",
                "refresh_token",
                "session_token",
                "code",
                "code_verifier",
                "token",
            ]
            .contains(&name);
            if credential {
                assert!(
                    ty.contains("Secret"),
                    "{krate}: field {name} is {ty}, not a Secret"
                );
            }
        }
    }
}
