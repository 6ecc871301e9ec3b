//! The README as a newcomer reads it: its Rust snippets (compiled as
//! doctests of the `payauth` facade) name only crates its install lines
//! add, and its CLI section says what the CLI's tests prove.

const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));

/// The fenced blocks of the README with their info strings.
fn blocks() -> Vec<(&'static str, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(&str, String)> = None;
    for line in README.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info, String::new())),
            (Some(_), Some(_)) => blocks.extend(open.take()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

#[test]
fn every_rust_snippet_of_the_readme_names_only_crates_its_install_lines_add() {
    let blocks = blocks();
    let install = &blocks.iter().find(|(info, _)| *info == "toml").unwrap().1;
    let mut crates: Vec<String> = install
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .filter_map(|l| l.split('=').next())
        .map(|name| name.trim().replace('-', "_"))
        .filter(|name| !name.is_empty() && !name.starts_with('['))
        .collect();
    crates.extend(["std", "core", "crate", "self", "super"].map(str::to_owned));
    assert!(crates.contains(&"payauth".to_owned()), "{crates:?}");
    let snippets: Vec<&String> = blocks
        .iter()
        .filter(|(info, _)| info.starts_with("rust"))
        .map(|(info, body)| {
            assert!(
                !info.contains("ignore"),
                "a snippet the doctests skip: {info}"
            );
            body
        })
        .collect();
    assert!(snippets.len() >= 2);
    for snippet in snippets {
        let code: String = snippet
            .lines()
            .map(|l| l.split("//").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        for (at, _) in code.match_indices("::") {
            let before = &code[..at];
            let root: String = before
                .chars()
                .rev()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
                .chars()
                .rev()
                .collect();
            let preceded = &before[..before.len() - root.len()];
            let is_path_root = !preceded.ends_with("::")
                && root.chars().next().is_some_and(|c| c.is_ascii_lowercase());
            if is_path_root {
                assert!(
                    crates.contains(&root),
                    "`{root}::` is not a crate the README adds:\n{snippet}"
                );
            }
        }
    }
}
