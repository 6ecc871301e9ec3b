//! The two tables the specs cite: `specs/sources.yaml`, every public source
//! an `x-source` names by id, and the README's table of unverified
//! assumptions, every guess an `x-guess` names by id.

use std::fs;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

/// The table of sources, relative to the workspace root.
pub(crate) const SOURCES_FILE: &str = "specs/sources.yaml";
/// The file whose table lists every guess.
pub(crate) const README_FILE: &str = "README.md";
/// The heading of the README's table of guesses.
const GUESSES_HEADING: &str = "## Unverified assumptions";

/// What kind of source an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Kind {
    /// The vendor's own documentation: the only kind that documents an
    /// error response.
    VendorDocs,
    /// The vendor's official code (SDKs).
    VendorSdk,
    /// Someone else's public code that calls the API.
    PublicCaller,
    /// An RFC.
    Rfc,
}

/// One row of `specs/sources.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    kind: Kind,
    url: String,
    title: String,
    read: String,
    facts: Vec<String>,
}

/// The sources an `x-source` may name.
pub(crate) struct Sources(Vec<(String, Kind)>);

impl Sources {
    /// Reads and checks `specs/sources.yaml` under `root`.
    pub(crate) fn load(root: &Path) -> Result<Self, String> {
        let text = fs::read_to_string(root.join(SOURCES_FILE))
            .map_err(|e| format!("cannot read {SOURCES_FILE}: {e}"))?;
        Self::parse(&text).map_err(|e| format!("{SOURCES_FILE}: {e}"))
    }

    /// Parses the table: each entry has an id (lowercase letters, digits
    /// and `-`, unique), a kind, an `https://` URL, a title, the date it
    /// was read (`YYYY-MM-DD`) and at least one fact.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let entries: Vec<Entry> =
            serde_norway::from_str(text).map_err(|e| format!("not a table of sources: {e}"))?;
        let mut out: Vec<(String, Kind)> = Vec::new();
        for entry in entries {
            let id = &entry.id;
            let well_formed = !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            let date = entry.read.len() == 10
                && entry.read.char_indices().all(|(i, c)| {
                    if i == 4 || i == 7 {
                        c == '-'
                    } else {
                        c.is_ascii_digit()
                    }
                });
            let problem = if !well_formed {
                Some("an id is lowercase letters, digits and `-`")
            } else if out.iter().any(|(seen, _)| seen == id) {
                Some("the id is used twice")
            } else if !entry.url.starts_with("https://") {
                Some("the url is a public https:// address")
            } else if entry.title.trim().is_empty() {
                Some("the title is empty")
            } else if !date {
                Some("`read` is the date the page was read, YYYY-MM-DD")
            } else if entry.facts.iter().all(|f| f.trim().is_empty()) {
                Some("an entry lists the facts it gives")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(format!("entry {id:?}: {problem}"));
            }
            out.push((entry.id, entry.kind));
        }
        Ok(Self(out))
    }

    /// The kind of the entry `id`, if there is one.
    pub(crate) fn kind(&self, id: &str) -> Option<Kind> {
        self.0
            .iter()
            .find(|(known, _)| known == id)
            .map(|(_, k)| *k)
    }

    /// A table of the given ids and kinds (for tests).
    #[cfg(test)]
    pub(crate) fn of(entries: &[(&str, Kind)]) -> Self {
        Self(
            entries
                .iter()
                .map(|(id, k)| ((*id).to_owned(), *k))
                .collect(),
        )
    }
}

/// The ids an `x-source` names: the leading id of each part, the parts
/// split on `;` outside parentheses (`<id>`, `<id>#<anchor>`,
/// `<id>:<section>`, `<id> (<note>)`). An empty id means a part that does
/// not start with one.
pub(crate) fn cited_ids(x_source: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0_i32, 0);
    for (i, c) in x_source.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ';' if depth == 0 => {
                parts.push(&x_source[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&x_source[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let end = part
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
                .unwrap_or(part.len());
            let follows = part[end..].chars().next();
            if matches!(follows, None | Some(':' | '#' | ' ' | '(')) {
                &part[..end]
            } else {
                ""
            }
        })
        .collect()
}

/// The ids an `x-guess` holds: one id, or a list of them.
pub(crate) fn guess_ids(x_guess: &Value) -> Option<Vec<&str>> {
    let ids: Vec<&str> = match x_guess {
        Value::String(id) => vec![id.as_str()],
        Value::Array(ids) => ids.iter().map(Value::as_str).collect::<Option<_>>()?,
        _ => return None,
    };
    (!ids.is_empty() && ids.iter().all(|id| !id.trim().is_empty())).then_some(ids)
}

/// Every `x-guess` id in a spec, once each.
pub(crate) fn spec_guesses(doc: &Value, out: &mut Vec<String>) {
    match doc {
        Value::Object(map) => {
            if let Some(ids) = map.get("x-guess").and_then(guess_ids) {
                for id in ids {
                    if !out.iter().any(|seen| seen == id) {
                        out.push(id.to_owned());
                    }
                }
            }
            for value in map.values() {
                spec_guesses(value, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                spec_guesses(item, out);
            }
        }
        _ => {}
    }
}

/// The ids of the README's table of guesses: the first cell of each row
/// under its heading, in backquotes.
pub(crate) fn readme_guesses(readme: &str) -> Result<Vec<String>, String> {
    let Some(start) = readme.find(GUESSES_HEADING) else {
        return Err(format!("{README_FILE} has no {GUESSES_HEADING:?} section"));
    };
    let section = &readme[start + GUESSES_HEADING.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut ids = Vec::new();
    for row in section.lines().filter(|l| l.starts_with('|')).skip(2) {
        let cell = row.split('|').nth(1).unwrap_or_default().trim();
        let id = cell
            .strip_prefix('`')
            .and_then(|c| c.strip_suffix('`'))
            .filter(|id| !id.is_empty())
            .ok_or_else(|| format!("{README_FILE}: a guess row starts with its `id`: {row}"))?;
        if ids.iter().any(|seen| seen == id) {
            return Err(format!("{README_FILE}: guess {id:?} is listed twice"));
        }
        ids.push(id.to_owned());
    }
    if ids.is_empty() {
        return Err(format!("{README_FILE}: the table of guesses is empty"));
    }
    Ok(ids)
}

/// The README's guesses and the specs' `x-guess` ids, one to one: every
/// row is some spec's guess and every guess has its row.
pub(crate) fn match_guesses(readme: &[String], specs: &[String]) -> Result<(), String> {
    let unlisted: Vec<&str> = specs
        .iter()
        .filter(|id| !readme.contains(id))
        .map(String::as_str)
        .collect();
    let unmarked: Vec<&str> = readme
        .iter()
        .filter(|id| !specs.contains(id))
        .map(String::as_str)
        .collect();
    let mut problems = Vec::new();
    if !unlisted.is_empty() {
        problems.push(format!(
            "x-guess ids missing from {README_FILE}'s table of unverified assumptions: {}",
            unlisted.join(", ")
        ));
    }
    if !unmarked.is_empty() {
        problems.push(format!(
            "{README_FILE} lists guesses no spec marks x-unverified with x-guess: {}",
            unmarked.join(", ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_x_source_names_the_leading_id_of_each_part_outside_parentheses() {
        assert_eq!(cited_ids("rfc6749:5.2"), ["rfc6749"]);
        assert_eq!(
            cited_ids("vakifbank-authorization#Parameter scope; rfc6749:3.3 (space separated)"),
            ["vakifbank-authorization", "rfc6749"]
        );
        assert_eq!(
            cited_ids("iyzico-pwi-access-token-tr#x (a; b); iyzico-pwi-last-payment"),
            ["iyzico-pwi-access-token-tr", "iyzico-pwi-last-payment"]
        );
        assert_eq!(cited_ids("seed:x"), ["seed"]);
        assert_eq!(cited_ids("Seed/x"), [""], "no id at the start");
        assert_eq!(cited_ids("https://example.com"), ["https"]);
    }

    const TABLE: &str = "- id: a-page\n  kind: vendor-docs\n  url: https://example.com/a\n  title: A\n  read: 2026-12-07\n  facts: [one]\n";

    #[test]
    fn a_table_entry_needs_an_id_an_https_url_a_title_a_date_and_facts() {
        let table = Sources::parse(TABLE).unwrap();
        assert_eq!(table.kind("a-page"), Some(Kind::VendorDocs));
        assert_eq!(table.kind("b-page"), None);
        for (from, to, says) in [
            ("id: a-page", "id: A page", "lowercase"),
            ("https://example.com/a", "http://example.com/a", "https://"),
            ("title: A", "title: \" \"", "title"),
            ("2026-12-07", "7 Dec 2026", "YYYY-MM-DD"),
            ("facts: [one]", "facts: []", "facts"),
            ("vendor-docs", "blog", "not a table"),
        ] {
            let error = Sources::parse(&TABLE.replace(from, to)).err().unwrap();
            assert!(error.contains(says), "{to}: {error}");
        }
        let twice = format!("{TABLE}{TABLE}");
        assert!(Sources::parse(&twice).err().unwrap().contains("twice"));
    }

    const README: &str = "# x\n\n## Unverified assumptions\n\ntext\n\n| id | what |\n| --- | --- |\n| `one` | a |\n| `two` | b |\n\n## Next\n\n| `three` | c |\n";

    #[test]
    fn the_readme_table_and_the_specs_guesses_must_match_one_to_one() {
        let readme = readme_guesses(README).unwrap();
        assert_eq!(readme, ["one", "two"]);
        let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(match_guesses(&readme, &ids(&["two", "one"])), Ok(()));
        let error = match_guesses(&readme, &ids(&["one", "three"])).unwrap_err();
        assert!(error.contains("missing from README.md's table") && error.contains("three"));
        assert!(
            error.contains("no spec marks") && error.contains("two"),
            "{error}"
        );
        assert!(readme_guesses(&README.replace("| `two` |", "| two |")).is_err());
        assert!(readme_guesses(&README.replace("`two`", "`one`")).is_err());
    }

    #[test]
    fn x_guess_is_one_id_or_a_list_of_them() {
        let doc: Value = serde_norway::from_str(
            "a:\n  x-guess: one\n  b:\n    - x-guess: [two, one]\nc:\n  x-guess: 3\n",
        )
        .unwrap();
        let mut out = Vec::new();
        spec_guesses(&doc, &mut out);
        assert_eq!(out, ["one", "two"]);
    }

    #[test]
    fn the_repository_s_readme_lists_exactly_the_specs_guesses() {
        let root = crate::workspace_root();
        let readme = readme_guesses(&fs::read_to_string(root.join(README_FILE)).unwrap()).unwrap();
        let mut specs = Vec::new();
        for spec in crate::specs::SPECS {
            let text = fs::read_to_string(root.join(spec.file)).unwrap();
            spec_guesses(&serde_norway::from_str(&text).unwrap(), &mut specs);
        }
        assert_eq!(match_guesses(&readme, &specs), Ok(()));
    }
}
