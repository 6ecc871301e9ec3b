//! Config file errors located at their key, over every key of every table
//! the JSON Schema (`payauth config schema`) describes: a value of the
//! wrong type, a bad value, a missing key and an unknown key each name the
//! key (or the table it is missing from) with its line and column.

use payauth::config::Config;
use serde_json::Value;

use crate::common::{json, payauth};

/// One variant of a tagged table: its name (`source`, `store`), the tag
/// lines that select it, its keys and its required keys.
struct Variant {
    table: &'static str,
    tags: Vec<(String, String)>,
    properties: serde_json::Map<String, Value>,
    required: Vec<String>,
}

/// Every variant of `definition` (nested `oneOf`s flattened, their tags
/// gathered).
fn variants(
    table: &'static str,
    definition: &Value,
    tags: &[(String, String)],
    out: &mut Vec<Variant>,
) {
    let Some(one_of) = definition["oneOf"].as_array() else {
        return;
    };
    for variant in one_of {
        let mut tags = tags.to_vec();
        let properties = variant["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (name, property) in &properties {
            if let Some(tag) = property["const"].as_str() {
                tags.push((name.clone(), tag.to_owned()));
            }
        }
        if variant["oneOf"].is_array() {
            variants(table, variant, &tags, out);
            continue;
        }
        let required = variant["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect();
        out.push(Variant {
            table,
            tags,
            properties,
            required,
        });
    }
}

impl Variant {
    fn is_tag(&self, key: &str) -> bool {
        self.tags.iter().any(|(name, _)| name == key)
    }

    /// A valid value of a required key.
    fn valid(&self, key: &str) -> &'static str {
        if self.properties[key]["$ref"]
            .as_str()
            .is_some_and(|r| r.ends_with("/SecretConfig"))
        {
            "{ value = \"s\" }"
        } else {
            "\"x\""
        }
    }

    /// The table with its tags and required keys but `without`, then
    /// `last` (a line), as a config file (a valid `[source]` first when the
    /// table is another); and the line `last` is on.
    fn text(&self, without: &str, last: Option<&str>) -> (String, usize) {
        let mut lines = Vec::new();
        if self.table != "source" {
            lines.extend(
                [
                    "[source]",
                    "provider = \"mypos\"",
                    "client_id = \"x\"",
                    "client_secret = { value = \"s\" }",
                ]
                .map(str::to_owned),
            );
        }
        lines.push(format!("[{}]", self.table));
        for (name, tag) in &self.tags {
            if name != without {
                lines.push(format!("{name} = \"{tag}\""));
            }
        }
        for key in &self.required {
            if key != without && !self.is_tag(key) {
                lines.push(format!("{key} = {}", self.valid(key)));
            }
        }
        lines.extend(last.map(str::to_owned));
        let line = lines.len();
        (lines.join("\n") + "\n", line)
    }

    fn header_line(&self) -> usize {
        if self.table == "source" { 1 } else { 5 }
    }
}

/// The error `text` gives; it must be one.
fn error(text: &str) -> String {
    match Config::from_toml(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(error) => error.to_string(),
    }
}

/// Whether the key's value is one of fixed strings (or a pattern): a
/// `$defs` type, directly or as the one choice beside `null`.
fn is_enum(schema: &Value, property: &Value) -> bool {
    let reference = property["$ref"].as_str().or_else(|| {
        property["anyOf"]
            .as_array()?
            .iter()
            .find_map(|choice| choice["$ref"].as_str())
    });
    let Some(name) = reference.and_then(|r| r.rsplit('/').next()) else {
        return false;
    };
    let definition = &schema["$defs"][name];
    let strings = |all: &Value| {
        all.as_array().is_some_and(|all| {
            all.iter()
                .all(|v| v["const"].is_string() || v["enum"].is_array() || v["pattern"].is_string())
        })
    };
    definition["enum"].is_array() || strings(&definition["oneOf"]) || strings(&definition["anyOf"])
}

/// A value of the wrong type for `property`.
fn wrong_type(schema: &Value, property: &Value) -> &'static str {
    let mut types = String::new();
    let mut add = |p: &Value| {
        types.push_str(&p["type"].to_string());
        if let Some(name) = p["$ref"].as_str().and_then(|r| r.rsplit('/').next()) {
            types.push_str(&schema["$defs"][name].to_string());
        }
    };
    add(property);
    for choice in property["anyOf"].as_array().into_iter().flatten() {
        add(choice);
    }
    if types.contains("\"string\"") {
        "true"
    } else if types.contains("\"object\"") {
        "5"
    } else {
        "\"wrong-type-value\""
    }
}

#[test]
fn every_config_error_names_its_key_with_line_and_column_for_every_key_of_every_table() {
    let schema = serde_json::to_value(Config::json_schema()).unwrap();
    let mut all = Vec::new();
    variants("source", &schema["$defs"]["SourceConfig"], &[], &mut all);
    variants("store", &schema["$defs"]["StoreConfig"], &[], &mut all);
    assert!(all.len() >= 9, "every provider flow and store kind");
    let mut checked = 0;
    for variant in &all {
        let (valid, _) = variant.text("", None);
        Config::from_toml(&valid).unwrap_or_else(|e| panic!("{valid}: {e}"));
        for (key, property) in &variant.properties {
            let path = format!("`{}.{key}`", variant.table);
            let mut bad = vec![(
                format!("{key} = {}", wrong_type(&schema, property)),
                "wrong type",
            )];
            if variant.is_tag(key) || is_enum(&schema, property) {
                bad.push((format!("{key} = \"no-such-value\""), "bad value"));
            }
            for (line, what) in bad {
                let (text, at) = variant.text(key, Some(&line));
                let shown = error(&text);
                let expected = format!("line {at}, column 1: {path}");
                assert!(
                    shown.contains(&expected),
                    "{what}: {expected} in {shown}\n{text}"
                );
                checked += 1;
            }
            if variant.required.contains(key) && !variant.is_tag(key) {
                let (text, _) = variant.text(key, None);
                let shown = error(&text);
                let expected = format!(
                    "line {}, column 1: [{}]: missing field `{key}`",
                    variant.header_line(),
                    variant.table
                );
                assert!(
                    shown.contains(&expected),
                    "missing: {expected} in {shown}\n{text}"
                );
                checked += 1;
            }
        }
        let (text, at) = variant.text("", Some("no_such_key = 1"));
        let shown = error(&text);
        let expected = format!("line {at}, column 1: `{}.no_such_key`", variant.table);
        assert!(
            shown.contains(&expected),
            "unknown: {expected} in {shown}\n{text}"
        );
    }
    assert!(checked > 60, "{checked}");
    // The root table's own keys.
    let (source, _) = all[0].text("", None);
    for (line, path) in [
        ("refresh_margin_secs = \"soon\"", "refresh_margin_secs"),
        ("no_such_key = 1", "no_such_key"),
    ] {
        let shown = error(&format!("{line}\n{source}"));
        assert!(
            shown.contains(&format!("line 1, column 1: `{path}`")),
            "{shown}"
        );
    }
}

#[test]
fn a_wrong_type_in_the_source_table_is_reported_at_its_key_by_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payauth.toml");
    std::fs::write(
        &path,
        "# tokens\n\n[source]\nprovider = \"mypos\"\nclient_id = 5\nclient_secret = { env = \"S\" }\n",
    )
    .unwrap();
    let output = payauth("http://127.0.0.1:1")
        .args(["--json", "token", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let message = json(&output.stdout)["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("line 5, column 1: `source.client_id`: invalid type: integer `5`"),
        "{message}"
    );
}
