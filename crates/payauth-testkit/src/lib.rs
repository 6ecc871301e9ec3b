//! Test helpers shared by payauth's provider crates. A dev-dependency only.

pub mod canary;
pub mod gateway;
pub mod postgres;
pub mod proxy;
pub mod redis;

use std::sync::{Arc, Mutex};

use httpmock::HttpMockRequest;

/// Requests as they arrived, rendered for a snapshot.
pub type Seen = Arc<Mutex<Vec<String>>>;

/// An httpmock matcher that records every request it sees and matches
/// all: `when.is_true(matcher)`. Each request is rendered as the method and
/// path, the headers sorted (without `host` and `content-length`, which
/// vary), a blank line and the body, so an insta snapshot of it shows
/// exactly what went on the wire.
pub fn wire_recorder() -> (
    Seen,
    impl Fn(&HttpMockRequest) -> bool + Send + Sync + 'static,
) {
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    let matcher = move |req: &HttpMockRequest| {
        let mut headers: Vec<String> = req
            .headers()
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "host" | "content-length"))
            .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap_or("<binary>")))
            .collect();
        headers.sort();
        let body = String::from_utf8_lossy(req.body_ref());
        let line = format!(
            "{} {}\n{}\n\n{body}",
            req.method(),
            req.uri().path(),
            headers.join("\n")
        );
        sink.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(line);
        true
    };
    (seen, matcher)
}

/// The `n`th request a recorder saw.
///
/// # Panics
/// When fewer than `n + 1` requests arrived: the test expected more.
#[must_use]
pub fn nth(seen: &Seen, n: usize) -> String {
    let seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    seen.get(n)
        .cloned()
        .unwrap_or_else(|| panic!("expected request {n}, saw {}", seen.len()))
}

/// Replaces the values of the named headers (lowercase) with `<redacted>`,
/// for requests that carry a random key or a signature.
#[must_use]
pub fn redact_headers(request: &str, names: &[&str]) -> String {
    request
        .lines()
        .map(|line| match line.split_once(": ") {
            Some((name, _)) if names.contains(&name) => format!("{name}: <redacted>"),
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Replaces the value of form field `field` in the body with `<value>`, for
/// fields that vary by run (timestamps).
#[must_use]
pub fn redact_form_field(request: &str, field: &str) -> String {
    let prefix = format!("{field}=");
    request
        .lines()
        .map(|line| {
            line.split('&')
                .map(|pair| {
                    if pair.starts_with(&prefix) {
                        format!("{prefix}<value>")
                    } else {
                        pair.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("&")
        })
        .collect::<Vec<_>>()
        .join("\n")
}
