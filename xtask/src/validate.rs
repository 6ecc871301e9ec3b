//! Rules every hand-written spec follows, checked before generation.
//!
//! The generator accepts more than payauth can use safely; these rules catch
//! what it would silently drop or get wrong (see DESIGN.md, "Generated code"),
//! and keep every fact traceable to its source.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::sources::{self, Kind, Sources};

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];
const FORM: &str = "application/x-www-form-urlencoded";

/// Property names that carry a credential unless listed in `NOT_SECRET`.
const SECRET_SUFFIXES: &[&str] = &["secret", "password", "token", "code", "verifier"];
const NOT_SECRET: &[&str] = &["token_type", "errorcode"];

/// One broken rule: where, and what is wrong.
pub(crate) struct Problem {
    /// Path inside the spec, e.g. `paths["/oauth/token"].post`.
    pub(crate) at: Vec<Segment>,
    pub(crate) message: String,
}

/// A step of a path inside the spec document.
#[derive(Clone)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

impl Problem {
    /// `file:line: path: message`, the line found when the path is a plain
    /// chain of mapping keys in block-style YAML (best effort).
    pub(crate) fn render(&self, file: &str, text: &str) -> String {
        let at = render_path(&self.at);
        match locate(text, &self.at) {
            Some(line) => format!("{file}:{line}: {at}: {}", self.message),
            None => format!("{file}: {at}: {}", self.message),
        }
    }
}

fn key(k: &str) -> Segment {
    Segment::Key(k.to_owned())
}

fn render_path(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(k)
                if k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
            {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Key(k) => {
                let _ = write!(out, "[{k:?}]");
            }
            Segment::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

/// The 1-based line of the last mapping key of `path` that can be found.
fn locate(text: &str, path: &[Segment]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut start = 0;
    let mut min_indent = 0;
    let mut found = None;
    for segment in path {
        let Segment::Key(k) = segment else { break };
        let plain = format!("{k}:");
        let quoted = format!("\"{k}\":");
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if found.is_some() && indent < min_indent {
                break;
            }
            if trimmed.starts_with(&plain) || trimmed.starts_with(&quoted) {
                hit = Some((i, indent));
                break;
            }
        }
        let (i, indent) = hit?;
        found = Some(i + 1);
        start = i + 1;
        min_indent = indent + 1;
    }
    found
}

/// Checks one spec document against the table of `sources` its
/// `x-source`s cite; an empty list means it follows every rule.
pub(crate) fn check(doc: &Value, sources: &Sources) -> Vec<Problem> {
    let mut v = Validator {
        doc,
        sources,
        problems: Vec::new(),
        operation_ids: Vec::new(),
    };
    v.document();
    v.citations(doc, &mut Vec::new());
    v.problems
}

struct Validator<'a> {
    doc: &'a Value,
    sources: &'a Sources,
    problems: Vec<Problem>,
    operation_ids: Vec<String>,
}

impl<'a> Validator<'a> {
    fn problem(&mut self, at: &[Segment], message: impl Into<String>) {
        self.problems.push(Problem {
            at: at.to_vec(),
            message: message.into(),
        });
    }

    fn require_source(&mut self, node: &Value, at: &[Segment]) {
        match node.get("x-source") {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            _ => self.problem(
                at,
                "missing x-source: name the entry of specs/sources.yaml this comes from",
            ),
        }
    }

    /// Everywhere in the document: every `x-source` names entries of the
    /// table of sources, and every `x-unverified` carries an `x-guess` (an
    /// id, or a list of ids, of the README's table of guesses) and the
    /// other way round.
    fn citations(&mut self, node: &Value, at: &mut Vec<Segment>) {
        match node {
            Value::Object(map) => {
                if let Some(source) = map.get("x-source").and_then(Value::as_str) {
                    for id in sources::cited_ids(source) {
                        if self.sources.kind(id).is_none() {
                            self.problem(
                                at,
                                format!(
                                    "x-source names {id:?}, which is no entry of {}",
                                    sources::SOURCES_FILE
                                ),
                            );
                        }
                    }
                }
                let unverified = map.contains_key("x-unverified");
                match (unverified, map.get("x-guess")) {
                    (true, None) => self.problem(
                        at,
                        "x-unverified without x-guess: name the README's row of this guess",
                    ),
                    (false, Some(_)) => self.problem(at, "x-guess without x-unverified"),
                    (true, Some(guess)) if sources::guess_ids(guess).is_none() => {
                        self.problem(at, "x-guess is an id or a list of ids");
                    }
                    _ => {}
                }
                for (name, value) in map {
                    at.push(key(name));
                    self.citations(value, at);
                    at.pop();
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    at.push(Segment::Index(i));
                    self.citations(item, at);
                    at.pop();
                }
            }
            _ => {}
        }
    }

    /// Follows a local `$ref` (`#/components/...`) once.
    fn resolve(&self, node: &'a Value) -> (&'a Value, Option<Vec<Segment>>) {
        let Some(reference) = node.get("$ref").and_then(Value::as_str) else {
            return (node, None);
        };
        let Some(pointer) = reference.strip_prefix('#') else {
            return (node, None);
        };
        match self.doc.pointer(pointer) {
            Some(target) => {
                let at = pointer.split('/').skip(1).map(key).collect();
                (target, Some(at))
            }
            None => (node, None),
        }
    }

    fn document(&mut self) {
        match self.doc.get("openapi").and_then(Value::as_str) {
            Some(version) if version.starts_with("3.0.") => {}
            _ => self.problem(&[key("openapi")], "payauth specs are OpenAPI 3.0.x"),
        }
        match self.doc.get("info") {
            Some(info) => self.require_source(info, &[key("info")]),
            None => self.problem(&[key("info")], "missing info"),
        }
        if let Some(Value::Array(servers)) = self.doc.get("servers") {
            for (i, server) in servers.iter().enumerate() {
                self.require_source(server, &[key("servers"), Segment::Index(i)]);
            }
        }
        let doc = self.doc;
        let paths = doc.get("paths").and_then(Value::as_object);
        if paths.is_none_or(Map::is_empty) {
            self.problem(&[key("paths")], "a spec describes at least one operation");
        }
        for (path, item) in paths.into_iter().flatten() {
            for method in METHODS {
                if let Some(operation) = item.get(*method) {
                    let at = vec![key("paths"), key(path), key(method)];
                    self.operation(operation, &at);
                }
            }
        }
        self.components();
    }

    fn operation(&mut self, operation: &'a Value, at: &[Segment]) {
        match operation.get("operationId").and_then(Value::as_str) {
            None => self.problem(at, "missing operationId: it names the generated method"),
            Some(id) => {
                let snake = !id.is_empty()
                    && id.starts_with(|c: char| c.is_ascii_lowercase())
                    && id
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !snake {
                    self.problem(
                        at,
                        format!("operationId {id:?} is not snake_case: it names a Rust method"),
                    );
                }
                if self.operation_ids.iter().any(|seen| seen == id) {
                    self.problem(at, format!("operationId {id:?} is used twice"));
                }
                self.operation_ids.push(id.to_owned());
            }
        }
        self.require_source(operation, at);
        if let Some(Value::Array(parameters)) = operation.get("parameters") {
            for (i, parameter) in parameters.iter().enumerate() {
                let (parameter, target) = self.resolve(parameter);
                let mut here = at.to_vec();
                here.extend([key("parameters"), Segment::Index(i)]);
                self.require_source(parameter, &target.unwrap_or(here));
            }
        }
        if let Some(body) = operation.get("requestBody") {
            let mut here = at.to_vec();
            here.push(key("requestBody"));
            self.request_body(body, &here);
        }
        let mut here = at.to_vec();
        here.push(key("responses"));
        self.responses(operation.get("responses"), &here);
        if let Some(Value::Array(requirements)) = operation.get("security") {
            let schemes = self.doc.pointer("/components/securitySchemes");
            for (i, requirement) in requirements.iter().enumerate() {
                for name in requirement.as_object().into_iter().flat_map(Map::keys) {
                    if schemes.and_then(|s| s.get(name)).is_none() {
                        let mut here = at.to_vec();
                        here.extend([key("security"), Segment::Index(i)]);
                        self.problem(
                            &here,
                            format!(
                                "security scheme {name:?} is not in components.securitySchemes"
                            ),
                        );
                    }
                }
            }
        }
    }

    fn request_body(&mut self, body: &'a Value, at: &[Segment]) {
        let (body, _) = self.resolve(body);
        let Some(content) = body.get("content").and_then(Value::as_object) else {
            self.problem(at, "a request body needs content");
            return;
        };
        if content.len() != 1 {
            self.problem(
                at,
                "one media type per request body: the generator fails on two",
            );
        }
        let Some(form) = content.get(FORM) else {
            return;
        };
        let mut here = at.to_vec();
        here.extend([key("content"), key(FORM)]);
        if form.get("encoding").is_some() {
            self.problem(
                &here,
                "an `encoding` block on a form body makes the generator fail",
            );
        }
        let Some(schema) = form.get("schema") else {
            self.problem(&here, "a form body needs a schema");
            return;
        };
        let (schema, target) = self.resolve(schema);
        let schema_at = target.unwrap_or(here);
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            self.problem(&schema_at, "a form body is a flat object with properties");
            return;
        };
        for (name, property) in properties {
            let (property, _) = self.resolve(property);
            let kind = property.get("type").and_then(Value::as_str);
            if matches!(kind, Some("object" | "array")) || property.get("oneOf").is_some() {
                let mut here = schema_at.clone();
                here.extend([key("properties"), key(name)]);
                self.problem(
                    &here,
                    "form bodies hold scalars only: arrays and nested objects break the generator",
                );
            }
        }
    }

    /// All success responses share one `$ref` schema, and all error
    /// responses share one: the generator keeps one type for each and
    /// silently drops a second inline error schema.
    fn responses(&mut self, responses: Option<&'a Value>, at: &[Segment]) {
        let Some(responses) = responses
            .and_then(Value::as_object)
            .filter(|r| !r.is_empty())
        else {
            self.problem(at, "an operation documents its responses");
            return;
        };
        let mut success: Vec<String> = Vec::new();
        let mut failure: Vec<String> = Vec::new();
        for (status, response) in responses {
            let mut here = at.to_vec();
            here.push(key(status));
            let (response, target) = self.resolve(response);
            self.response_source(status, response, &target.unwrap_or_else(|| here.clone()));
            let Some(content) = response.get("content").and_then(Value::as_object) else {
                continue;
            };
            for (media, body) in content {
                let Some(reference) = body.pointer("/schema/$ref").and_then(Value::as_str) else {
                    let mut here = here.clone();
                    here.extend([key("content"), key(media)]);
                    self.problem(&here, "a response schema is a $ref to components.schemas");
                    continue;
                };
                let bucket = if status.starts_with('2') {
                    &mut success
                } else {
                    &mut failure
                };
                if !bucket.iter().any(|seen| seen == reference) {
                    bucket.push(reference.to_owned());
                }
            }
        }
        if success.len() > 1 {
            self.problem(
                at,
                format!(
                    "success responses must share one schema, found {}",
                    success.join(", ")
                ),
            );
        }
        if failure.len() > 1 {
            self.problem(
                at,
                format!(
                    "error responses must share one schema, found {}",
                    failure.join(", ")
                ),
            );
        }
    }

    /// Every response names its source; an error response (4xx, 5xx,
    /// `default`) that no vendor docs page documents is a guess at what the
    /// provider sends, so it says so with `x-unverified`.
    fn response_source(&mut self, status: &str, response: &Value, at: &[Segment]) {
        self.require_source(response, at);
        let error = !status.starts_with(['1', '2', '3']);
        let from_seed = response
            .get("x-source")
            .and_then(Value::as_str)
            .is_some_and(|source| {
                sources::cited_ids(source)
                    .into_iter()
                    .any(|id| self.sources.kind(id) == Some(Kind::VendorDocs))
            });
        let marked = response
            .get("x-unverified")
            .and_then(Value::as_str)
            .is_some_and(|why| !why.trim().is_empty());
        if error && !from_seed && !marked {
            self.problem(
                at,
                "an error response no vendor docs page documents is a guess: mark it x-unverified",
            );
        }
    }

    fn components(&mut self) {
        let Some(components) = self.doc.get("components") else {
            return;
        };
        for section in ["securitySchemes", "parameters", "responses"] {
            if let Some(items) = components.get(section).and_then(Value::as_object) {
                for (name, item) in items {
                    self.require_source(item, &[key("components"), key(section), key(name)]);
                }
            }
        }
        if let Some(schemas) = components.get("schemas").and_then(Value::as_object) {
            for (name, schema) in schemas {
                let at = [key("components"), key("schemas"), key(name)];
                self.require_source(schema, &at);
                self.properties(schema, &at);
            }
        }
    }

    /// Every inline property names its source; a `$ref` property is traced
    /// by the schema it points at. Credentials are `format: password`, which
    /// generates them as `payauth_core::Secret`, redacted in `Debug`.
    fn properties(&mut self, schema: &Value, at: &[Segment]) {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (name, property) in properties {
            let mut here = at.to_vec();
            here.extend([key("properties"), key(name)]);
            if property.get("$ref").is_some() {
                continue;
            }
            self.require_source(property, &here);
            let lower = name.to_ascii_lowercase();
            let looks_secret = SECRET_SUFFIXES.iter().any(|s| lower.ends_with(s))
                && !NOT_SECRET.contains(&lower.as_str());
            let is_string = property.get("type").and_then(Value::as_str) == Some("string");
            let marked = property.get("format").and_then(Value::as_str) == Some("password");
            if looks_secret && is_string && !marked {
                self.problem(&here, "a credential field is `format: password`, so it generates as a redacted Secret");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        let doc: Value = serde_norway::from_str(yaml).unwrap();
        let sources = Sources::of(&[
            ("seed", Kind::VendorDocs),
            ("sdk", Kind::VendorSdk),
            ("rfc6749", Kind::Rfc),
            ("rfc7009", Kind::Rfc),
        ]);
        check(&doc, &sources)
            .iter()
            .map(|p| p.render("spec.yaml", yaml))
            .collect()
    }

    const GOOD: &str = r##"
openapi: 3.0.3
info:
  title: t
  version: "1"
  x-source: seed:x
paths:
  /token:
    post:
      operationId: token
      x-source: seed:x
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema:
              $ref: "#/components/schemas/Req"
      responses:
        "200":
          description: ok
          x-source: seed:x
          content:
            application/json:
              schema:
                $ref: "#/components/schemas/Res"
components:
  schemas:
    Req:
      type: object
      x-source: seed:x
      properties:
        client_secret:
          type: string
          format: password
          x-source: seed:x
    Res:
      type: object
      x-source: seed:x
"##;

    #[test]
    fn a_spec_that_follows_every_rule_has_no_problems() {
        assert!(problems(GOOD).is_empty(), "{:?}", problems(GOOD));
    }

    #[test]
    fn an_operation_without_x_source_is_reported_at_its_line() {
        let yaml = GOOD.replacen(
            "      x-source: seed:x\n      requestBody",
            "      requestBody",
            1,
        );
        assert_eq!(
            problems(&yaml),
            [
                "spec.yaml:9: paths[\"/token\"].post: missing x-source: name the entry of specs/sources.yaml this comes from"
            ]
        );
    }

    #[test]
    fn a_response_without_x_source_is_reported_at_its_status() {
        let bare = GOOD.replace(
            "          x-source: seed:x\n          content:",
            "          content:",
        );
        assert_eq!(
            problems(&bare),
            [
                "spec.yaml:18: paths[\"/token\"].post.responses.200: missing x-source: name the entry of specs/sources.yaml this comes from"
            ]
        );
    }

    /// GOOD with one more response under `status`, carrying `extra`.
    fn with_response(status: &str, extra: &str) -> String {
        GOOD.replace(
            "                $ref: \"#/components/schemas/Res\"\n",
            &format!(
                "                $ref: \"#/components/schemas/Res\"\n        \"{status}\":\n          description: e\n{extra}          content:\n            application/json:\n              schema:\n                $ref: \"#/components/schemas/Res\"\n"
            ),
        )
    }

    #[test]
    fn an_error_response_no_vendor_docs_page_documents_must_be_marked_unverified() {
        let guessed = with_response("401", "          x-source: rfc6749:5.2\n");
        let found = problems(&guessed);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains(
                "responses.401: an error response no vendor docs page documents is a guess"
            ),
            "{found:?}"
        );
        let marked = with_response(
            "401",
            "          x-source: rfc6749:5.2\n          x-unverified: not in the docs\n          x-guess: g\n",
        );
        assert!(problems(&marked).is_empty(), "{:?}", problems(&marked));
        let documented = with_response("400", "          x-source: seed:x#400\n");
        assert!(
            problems(&documented).is_empty(),
            "{:?}",
            problems(&documented)
        );
        let blank = with_response(
            "503",
            "          x-source: rfc7009\n          x-unverified: \" \"\n          x-guess: g\n",
        );
        assert_eq!(problems(&blank).len(), 1, "{:?}", problems(&blank));
        // A success or a redirect is not an error shape.
        assert!(problems(&with_response("204", "          x-source: rfc7009\n")).is_empty());
        assert!(problems(&with_response("302", "          x-source: rfc6749\n")).is_empty());
    }

    #[test]
    fn an_x_source_naming_no_entry_of_the_table_is_reported_wherever_it_is() {
        let yaml = GOOD.replace(
            "          format: password\n          x-source: seed:x\n",
            "          format: password\n          x-source: seed:x; providers:x (a note; more)\n",
        );
        assert_eq!(
            problems(&yaml),
            [
                "spec.yaml:31: components.schemas.Req.properties.client_secret: x-source names \"providers\", which is no entry of specs/sources.yaml"
            ]
        );
        let server = GOOD.replace(
            "paths:\n",
            "servers:\n  - url: https://x\n    x-source: Seed\npaths:\n",
        );
        let found = problems(&server);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("servers[0]: x-source names \"\""),
            "{found:?}"
        );
    }

    #[test]
    fn every_x_unverified_carries_an_x_guess_and_the_other_way_round() {
        let yaml = |extra: &str| {
            GOOD.replace(
                "      x-source: seed:x\n      properties:",
                &format!("      x-source: seed:x\n{extra}      properties:"),
            )
        };
        assert!(problems(&yaml("      x-unverified: a guess\n      x-guess: g\n")).is_empty());
        assert!(
            problems(&yaml(
                "      x-unverified: a guess\n      x-guess: [g, h]\n"
            ))
            .is_empty()
        );
        for (extra, says) in [
            (
                "      x-unverified: a guess\n",
                "x-unverified without x-guess",
            ),
            ("      x-guess: g\n", "x-guess without x-unverified"),
            (
                "      x-unverified: a guess\n      x-guess: []\n",
                "an id or a list of ids",
            ),
        ] {
            let found = problems(&yaml(extra));
            assert_eq!(found.len(), 1, "{found:?}");
            assert!(
                found[0].contains("components.schemas.Req: ") && found[0].contains(says),
                "{found:?}"
            );
        }
    }

    #[test]
    fn an_error_response_only_an_sdk_or_rfc_shows_is_a_guess() {
        let found = problems(&with_response("401", "          x-source: sdk (seen)\n"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("no vendor docs page documents"),
            "{found:?}"
        );
    }

    #[test]
    fn a_referenced_response_is_checked_where_it_is_defined() {
        let yaml = with_response("401", "").replace(
            "        \"401\":\n          description: e\n          content:\n            application/json:\n              schema:\n                $ref: \"#/components/schemas/Res\"\n",
            "        \"401\":\n          $ref: \"#/components/responses/Err\"\n",
        ).replace("components:\n", "components:\n  responses:\n    Err:\n      description: e\n      x-source: rfc6749:5.2\n");
        let found = problems(&yaml);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("components.responses.Err: an error response"),
            "{found:?}"
        );
    }

    #[test]
    fn an_operation_without_operation_id_is_reported() {
        let yaml = GOOD.replace("      operationId: token\n", "");
        assert!(problems(&yaml)[0].contains("missing operationId"));
    }

    #[test]
    fn a_field_without_x_source_is_reported() {
        let yaml = GOOD.replace(
            "          format: password\n          x-source: seed:x\n",
            "          format: password\n",
        );
        assert_eq!(
            problems(&yaml),
            [
                "spec.yaml:31: components.schemas.Req.properties.client_secret: missing x-source: name the entry of specs/sources.yaml this comes from"
            ]
        );
    }

    #[test]
    fn a_credential_field_not_marked_as_password_is_reported() {
        let yaml = GOOD.replace("          format: password\n", "");
        assert!(
            problems(&yaml)[0].contains("format: password"),
            "{:?}",
            problems(&yaml)
        );
    }

    #[test]
    fn two_different_error_schemas_on_one_operation_are_reported() {
        let yaml = GOOD.replace(
            "                $ref: \"#/components/schemas/Res\"\n",
            "                $ref: \"#/components/schemas/Res\"\n        \"400\":\n          description: a\n          x-source: seed:x\n          content:\n            application/json:\n              schema:\n                $ref: \"#/components/schemas/Req\"\n        \"401\":\n          description: b\n          x-source: seed:x\n          content:\n            application/json:\n              schema:\n                $ref: \"#/components/schemas/Res\"\n",
        );
        let found = problems(&yaml);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("error responses must share one schema"),
            "{found:?}"
        );
    }

    #[test]
    fn an_inline_response_schema_is_reported() {
        let yaml = GOOD.replace(
            "                $ref: \"#/components/schemas/Res\"\n",
            "                type: object\n",
        );
        assert!(
            problems(&yaml)[0].contains("a response schema is a $ref"),
            "{:?}",
            problems(&yaml)
        );
    }

    #[test]
    fn a_nested_object_in_a_form_body_is_reported() {
        let yaml = GOOD.replace(
            "        client_secret:\n",
            "        nested:\n          type: object\n          x-source: seed:x\n        client_secret:\n",
        );
        assert!(
            problems(&yaml)[0].contains("form bodies hold scalars only"),
            "{:?}",
            problems(&yaml)
        );
    }

    #[test]
    fn an_unknown_security_scheme_is_reported() {
        let yaml = GOOD.replace(
            "      requestBody:",
            "      security:\n        - nope: []\n      requestBody:",
        );
        assert!(
            problems(&yaml)[0].contains("\"nope\" is not in components.securitySchemes"),
            "{:?}",
            problems(&yaml)
        );
    }
}
