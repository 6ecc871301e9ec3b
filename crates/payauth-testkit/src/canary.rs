//! The canary sweep's shared half: distinct canary secrets per kind, a
//! detector that finds any of them in any encoding a server or payauth can
//! show them in ([`Canaries::find`]), and hostile gateways ([`FAULTS`])
//! that answer each request by echoing it back, head and body, in one
//! encoding or another. The workspace's `tests/it/canary.rs` drives the
//! library's flows through them, payauth-cli's tests the binary.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// Every canary starts with this, so a cut one is still found.
pub const MARK: &str = "QzKANARYq";

/// The kinds of secret planted, each its own canary.
pub const KINDS: &[&str] = &[
    "client_secret",
    "password",
    "secret_key",
    "session_token",
    "refresh_token",
    "code",
    "code_verifier",
    "state",
    "access_token",
    "proxy_password",
    "url_password",
];

/// The canary of `kind`: the mark, the kind, and characters every
/// encoding changes (`/`, `+`, `%`, a space, `:`, a quote, non-ASCII).
/// An access token is sent in a header, so payauth takes only an RFC 6750
/// `b64token`: its canary keeps to those characters (`/`, `+`, `~`, `.`).
#[must_use]
pub fn canary(kind: &str) -> String {
    if kind == "access_token" {
        format!("{MARK}{kind}-s3/+~.")
    } else {
        format!("{MARK}{kind}-s3/+% :\"ü")
    }
}

/// The canaries and every form a server (or payauth) can show them in.
pub struct Canaries {
    /// `(kind, form)`, each form at least 8 characters.
    forms: Vec<(String, String)>,
}

impl Canaries {
    /// Every form of every canary.
    #[must_use]
    pub fn new() -> Self {
        let mut forms = Vec::new();
        for kind in KINDS {
            let value = canary(kind);
            for form in encodings(&value) {
                forms.push(((*kind).to_owned(), form));
            }
        }
        forms.retain(|(_, form)| form.chars().count() >= 8);
        Self { forms }
    }

    /// The first canary `text` shows, in any form: whole, or a prefix of 8
    /// characters or more where the text ends or an ellipsis follows.
    #[must_use]
    pub fn find(&self, text: &str) -> Option<String> {
        if text.contains(MARK) {
            return Some(format!("the mark {MARK}"));
        }
        let mut ends = vec![text.trim_end().len()];
        for ellipsis in ["…", "..."] {
            ends.extend(text.match_indices(ellipsis).map(|(at, _)| at));
        }
        for (kind, form) in &self.forms {
            if text.contains(form.as_str()) {
                return Some(format!("{kind} as {form:?}"));
            }
            for &end in &ends {
                let cut = form
                    .char_indices()
                    .map(|(at, _)| at)
                    .skip(8)
                    .find(|&len| text[..end].ends_with(&form[..len]));
                if let Some(len) = cut {
                    return Some(format!("{kind} cut as {:?}", &form[..len]));
                }
            }
        }
        None
    }
}

/// `value` as it is, percent-encoded (`+` or `%20` for a space, either hex
/// case; once, or twice as a form body echoed percent-encoded), JSON-escaped (also `\/` and `\uXXXX`), and in base64 (both
/// alphabets, alone or inside a longer text at any alignment, as in
/// `Basic base64(id:secret)`), of itself and of its form encoding.
#[must_use]
pub fn encodings(value: &str) -> Vec<String> {
    let form: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json
        .get(1..json.len().saturating_sub(1))
        .unwrap_or_default()
        .to_owned();
    let ascii: String = json
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("\\u{:04x}", u32::from(c))
            }
        })
        .collect();
    let twice: String = form_urlencoded::byte_serialize(form.as_bytes()).collect();
    let mut out = vec![
        value.to_owned(),
        twice,
        form.clone(),
        form.replace('+', "%20"),
        form.to_lowercase(),
        json.replace('/', "\\/"),
        ascii,
        json,
    ];
    for text in [value, form.as_str()] {
        for offset in 0..3 {
            let mut shifted = vec![b'.'; offset];
            shifted.extend_from_slice(text.as_bytes());
            let whole = shifted.len() / 3 * 3;
            let skip = if offset == 0 { 0 } else { 4 };
            for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                out.push(engine.encode(&shifted[..whole])[skip..].to_owned());
            }
        }
        out.push(STANDARD.encode(text));
        out.push(URL_SAFE.encode(text));
    }
    out
}

/// An answer: status, headers, body.
pub type Answer = (u16, Vec<(String, String)>, String);

/// What a hostile gateway answers, built from the request it got.
pub struct Fault {
    /// What the gateway does.
    pub name: &'static str,
    /// The answer to a request (its head and body as text).
    pub answer: fn(&str) -> Answer,
}

fn json_header() -> Vec<(String, String)> {
    vec![("content-type".into(), "application/json".into())]
}

fn oauth(description: &str) -> String {
    serde_json::json!({"error": "invalid_request", "error_description": description}).to_string()
}

/// The request's `authorization` header value, if any.
fn authorization(request: &str) -> String {
    request
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("authorization")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default()
}

/// The request cut a few characters after the first canary in it: a
/// server that cuts its message at a limit, in the middle of a secret.
fn cut_in_a_secret(request: &str) -> String {
    let at = request
        .find(MARK)
        .map_or(request.len(), |at| at + MARK.len() + 6);
    request
        .chars()
        .take(request[..at.min(request.len())].chars().count())
        .collect()
}

/// The faults: each an answer a gateway can give, most echoing the
/// request in one encoding.
pub const FAULTS: &[Fault] = &[
    Fault {
        name: "400 RFC 6749 error echoing the request",
        answer: |request| (400, json_header(), oauth(request)),
    },
    Fault {
        name: "400 echoing the request percent-encoded",
        answer: |request| {
            let encoded: String = form_urlencoded::byte_serialize(request.as_bytes()).collect();
            (400, json_header(), oauth(&encoded))
        },
    },
    Fault {
        name: "400 echoing the request in base64",
        answer: |request| (400, json_header(), oauth(&STANDARD.encode(request))),
    },
    Fault {
        name: "400 echoing the request cut in the middle of a secret",
        answer: |request| {
            (
                400,
                json_header(),
                oauth(&format!("{}…", cut_in_a_secret(request))),
            )
        },
    },
    Fault {
        name: "400 echoing the request JSON-escaped inside the description",
        answer: |request| {
            let escaped = serde_json::to_string(request).unwrap();
            (400, json_header(), oauth(&escaped))
        },
    },
    Fault {
        name: "401 echoing the Authorization header in every header and code",
        answer: |request| {
            let auth = authorization(request);
            let headers = vec![
                ("www-authenticate".into(), format!("Basic realm=\"{auth}\"")),
                ("x-ca-err".into(), auth.clone()),
                ("content-type".into(), format!("text/plain; echo={auth}")),
            ];
            (401, headers, String::new())
        },
    },
    Fault {
        name: "400 iyzico envelope echoing the request in every field",
        answer: |request| {
            let body = serde_json::json!({
                "status": "failure",
                "errorCode": request,
                "errorMessage": request,
                "description": request,
                "error": request,
            });
            (400, json_header(), body.to_string())
        },
    },
    Fault {
        name: "200 iyzico envelope that says failure, echoing the request",
        answer: |request| {
            let body = serde_json::json!({
                "status": "failure",
                "errorCode": "10051",
                "errorMessage": request,
            });
            (200, json_header(), body.to_string())
        },
    },
    Fault {
        name: "200 token whose scope echoes the request",
        answer: |request| {
            let body = serde_json::json!({
                "access_token": "granted-access",
                "accessToken": "granted-access",
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": request.replace(['\r', '\n'], " "),
                "status": "success",
                "code": "granted-code",
                "data": {"accessToken": "granted-access"},
            });
            (200, json_header(), body.to_string())
        },
    },
    Fault {
        name: "503 HTML page echoing the request",
        answer: |request| {
            let headers = vec![("content-type".into(), "text/html".into())];
            (503, headers, format!("<html>{request}</html>"))
        },
    },
    Fault {
        name: "200 that is no JSON, echoing the request",
        answer: |request| (200, Vec::new(), request.to_owned()),
    },
    Fault {
        name: "400 with wrongly typed fields beside an echo",
        answer: |request| {
            let body = serde_json::json!({
                "error": 5,
                "error_description": request,
                "errorCode": [request],
            });
            (400, json_header(), body.to_string())
        },
    },
];

/// A loopback gateway answering each request with `fault`, built from the
/// request it read (head and body).
pub struct Gateway {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Gateway {
    /// Starts serving on a loopback port, until the process ends.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    #[must_use]
    pub fn start(fault: &'static Fault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                std::thread::spawn(move || {
                    let request = read_request(&mut stream);
                    let (status, headers, body) = (fault.answer)(&request);
                    let mut out = format!("HTTP/1.1 {status} X\r\nconnection: close\r\n");
                    for (name, value) in headers {
                        let _ = write!(out, "{name}: {value}\r\n");
                    }
                    let _ = write!(out, "content-length: {}\r\n\r\n{body}", body.len());
                    let _ = stream.write_all(out.as_bytes());
                });
            }
        });
        Self { base }
    }
}

/// One request's head and body, as text.
fn read_request(stream: &mut std::net::TcpStream) -> String {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut buffer) {
        bytes.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&bytes);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if bytes.len() >= head_end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Default for Canaries {
    fn default() -> Self {
        Self::new()
    }
}
