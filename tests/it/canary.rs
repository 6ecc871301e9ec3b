//! The canary sweep: no secret leaves payauth, by any path.
//!
//! Distinct canary secrets, one per kind, are planted in every flow of
//! every provider; each flow is driven against every fault a hostile
//! gateway can answer with, most of them echoing the request it got
//! (headers and body) back in every encoding a server uses; and every
//! output is searched for every canary in every encoding ([`Canaries::find`]):
//! the `Display`, `Debug` and source chain of each error, the `Debug` of
//! the values a user holds, what `tracing` records at TRACE, store keys.
//!
//! The sweep is three tables: [`FLOWS`], [`FAULTS`] and the outputs
//! [`outputs`] collects. A new flow, fault or output is one row.
//!
//! The CLI's outputs (stdout, stderr, `--json`, `-vv`, `--help`) are swept
//! in payauth-cli's `tests/it/canary.rs` with the same canaries and faults.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use payauth::core::http::HttpClient;
use payauth::core::{
    AccessToken, Environment, Error, FlowSettings, Issued, Secret, SystemClock, TokenCache,
    TokenSource,
};
use payauth::iyzico::{PwiSessionSettings, PwiSettings, TerminalLogin, TerminalLoginSettings};
use payauth::mypos::{Mypos, MyposSettings};
use payauth::vakifbank::{
    AuthorizationCodeSettings, B2bCredentialsSettings, Channel, ClientAuthStyle,
    ClientCredentialsSettings, VakifBank, VakifBankSettings,
};

/// Every canary starts with this, so a cut one is still found.
const MARK: &str = "QzKANARYq";

/// The kinds of secret planted, each its own canary.
const KINDS: &[&str] = &[
    "client_secret",
    "password",
    "secret_key",
    "session_token",
    "refresh_token",
    "code",
    "code_verifier",
    "access_token",
    "proxy_password",
    "url_password",
];

/// The canary of `kind`: the mark, the kind, and characters every
/// encoding changes (`/`, `+`, `%`, a space, `:`, a quote, non-ASCII).
fn canary(kind: &str) -> String {
    format!("{MARK}{kind}-s3/+% :\"ü")
}

fn secret(kind: &str) -> Secret {
    Secret::new(canary(kind))
}

/// The canaries and every form a server (or payauth) can show them in.
struct Canaries {
    /// `(kind, form)`, each form at least 8 characters.
    forms: Vec<(String, String)>,
}

impl Canaries {
    fn new() -> Self {
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
    fn find(&self, text: &str) -> Option<String> {
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
fn encodings(value: &str) -> Vec<String> {
    let form: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let json = serde_json::to_string(value).unwrap();
    let json = json[1..json.len() - 1].to_owned();
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

// ---------------------------------------------------------------- faults

/// An answer: status, headers, body.
type Answer = (u16, Vec<(String, String)>, String);

/// What a hostile gateway answers, built from the request it got.
struct Fault {
    name: &'static str,
    answer: fn(&str) -> Answer,
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
const FAULTS: &[Fault] = &[
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
struct Gateway {
    base: String,
}

impl Gateway {
    fn start(fault: &'static Fault) -> Self {
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

// ----------------------------------------------------------------- flows

/// What running a flow left for the outputs to show.
#[derive(Default)]
struct Outcome {
    errors: Vec<Error>,
    /// The `Debug` of every value a user holds: settings, sources, tokens.
    shown: Vec<String>,
    store_keys: Vec<String>,
}

impl Outcome {
    fn result<T: std::fmt::Debug>(&mut self, result: Result<T, Error>) {
        match result {
            Ok(value) => self.shown.push(format!("{value:?}")),
            Err(error) => self.errors.push(error),
        }
    }

    fn show(&mut self, value: &dyn std::fmt::Debug) {
        self.shown.push(format!("{value:?}"));
    }
}

fn environment(base: &str) -> Environment {
    Environment::Custom(base.to_owned())
}

fn vakifbank_settings(base: &str, auth: ClientAuthStyle) -> VakifBankSettings {
    let mut settings =
        VakifBankSettings::new("client-1", secret("client_secret"), environment(base));
    settings.client_auth = auth;
    settings
}

/// A token holding the refresh-token canary, as a cache hands a source.
fn previous() -> AccessToken {
    AccessToken::new(
        secret("access_token"),
        "Bearer",
        Issued::now(&SystemClock),
        Duration::from_secs(600),
    )
    .unwrap()
    .with_refresh_token(Some(secret("refresh_token")))
}

/// A flow: a name, and how to run it against a base URL.
struct Flow {
    name: &'static str,
    run: for<'a> fn(&'a HttpClient, &'a str) -> payauth::core::BoxFuture<'a, Outcome>,
}

/// Every flow of every provider, each request it can send.
const FLOWS: &[Flow] = &[
    Flow {
        name: "mypos client credentials, revoke",
        run: |http, base| {
            Box::pin(async move {
                let mut out = Outcome::default();
                let settings =
                    MyposSettings::new("client-1", secret("client_secret"), environment(base));
                out.show(&settings);
                out.store_keys.push(settings.store_key().unwrap());
                let mypos = Mypos::new(&settings, http).unwrap();
                out.show(&mypos);
                out.result(mypos.fetch_token().await);
                out.result(mypos.revoke(&secret("access_token")).await);
                let cache = TokenCache::builder(Arc::new(mypos)).build();
                out.result(cache.token().await);
                out.show(&cache);
                out
            })
        },
    },
    Flow {
        name: "vakifbank client credentials (body and basic), b2b",
        run: |http, base| {
            Box::pin(async move {
                let mut out = Outcome::default();
                for auth in [ClientAuthStyle::Body, ClientAuthStyle::Basic] {
                    let gateway = vakifbank_settings(base, auth);
                    let settings =
                        ClientCredentialsSettings::new(gateway.clone()).scopes(["account"]);
                    out.show(&settings);
                    out.store_keys.push(settings.store_key().unwrap());
                    let source = settings.build(http).unwrap();
                    out.show(&source);
                    out.result(source.fetch(None).await);
                    let b2b = B2bCredentialsSettings::new(gateway, "consent-7");
                    out.store_keys.push(b2b.store_key().unwrap());
                    let source = b2b.build(http).unwrap();
                    out.show(&source);
                    out.result(source.fetch(None).await);
                }
                out
            })
        },
    },
    Flow {
        name: "vakifbank code exchange (PKCE) and refresh",
        run: |http, base| {
            Box::pin(async move {
                let mut out = Outcome::default();
                for auth in [ClientAuthStyle::Body, ClientAuthStyle::Basic] {
                    let gateway = vakifbank_settings(base, auth);
                    let settings = AuthorizationCodeSettings::new(gateway.clone(), "alice");
                    out.show(&settings);
                    out.store_keys.push(settings.store_key().unwrap());
                    let bank = VakifBank::new(&gateway, http).unwrap();
                    let mut pending = bank
                        .authorize_url(
                            Channel::Retail,
                            &["account"],
                            "http://127.0.0.1:1/callback",
                            true,
                        )
                        .unwrap();
                    pending.code_verifier = Some(secret("code_verifier"));
                    out.show(&pending);
                    out.result(bank.exchange(&pending, &secret("code")).await);
                    let grant = bank.refresh_token(&["account"]);
                    out.show(&grant);
                    out.result(grant.fetch(Some(&previous())).await);
                }
                out
            })
        },
    },
    Flow {
        name: "iyzico terminal login: authorize, exchange, refresh",
        run: |http, base| {
            Box::pin(async move {
                let mut out = Outcome::default();
                let settings = TerminalLoginSettings::new(
                    "client-1",
                    secret("client_secret"),
                    "cashier-1",
                    secret("password"),
                    environment(base),
                );
                out.show(&settings);
                out.store_keys.push(settings.store_key().unwrap());
                let login = TerminalLogin::new(&settings, http).unwrap();
                out.show(&login);
                out.result(login.authorize().await);
                out.result(login.exchange(&secret("code")).await);
                out.result(login.refresh(&secret("refresh_token")).await);
                out.result(login.fetch(Some(&previous())).await);
                out
            })
        },
    },
    Flow {
        name: "iyzico pay with iyzico",
        run: |http, base| {
            Box::pin(async move {
                let mut out = Outcome::default();
                let merchant =
                    PwiSettings::new("api-key-1", secret("secret_key"), environment(base));
                let settings =
                    PwiSessionSettings::new(merchant, secret("session_token"), "member-1");
                out.show(&settings);
                out.store_keys.push(settings.store_key().unwrap());
                let source = settings.build(http).unwrap();
                out.show(&source);
                out.result(source.fetch(None).await);
                out
            })
        },
    },
];

// --------------------------------------------------------------- outputs

/// Every output of an outcome, named: each error's `Display`, `Debug`,
/// parts and source chain, every value's `Debug`, every store key.
fn outputs(outcome: &Outcome) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for (n, error) in outcome.errors.iter().enumerate() {
        all.push((format!("error {n} Display"), error.to_string()));
        all.push((format!("error {n} Debug"), format!("{error:?}")));
        all.push((format!("error {n} Debug pretty"), format!("{error:#?}")));
        all.push((
            format!("error {n} parts"),
            format!("{:?} {:?}", error.description(), error.provider_code()),
        ));
        let mut source = std::error::Error::source(error);
        let mut depth = 0;
        while let Some(cause) = source {
            all.push((
                format!("error {n} source {depth}"),
                format!("{cause} | {cause:?}"),
            ));
            source = cause.source();
            depth += 1;
        }
    }
    for (n, shown) in outcome.shown.iter().enumerate() {
        all.push((format!("value {n} Debug"), shown.clone()));
    }
    for key in &outcome.store_keys {
        all.push(("store key".to_owned(), key.clone()));
    }
    all
}

/// A `tracing` subscriber for this thread only, recording everything at
/// TRACE into a buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn no_canary_shows_in_any_output_of_any_flow_against_any_hostile_gateway() {
    let canaries = Canaries::new();
    let http = payauth::core::http::default_client().unwrap();
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut leaks = Vec::new();
    let mut swept = 0;
    tracing::subscriber::with_default(subscriber, || {
        for fault in FAULTS {
            let gateway = Gateway::start(fault);
            for flow in FLOWS {
                let outcome = runtime.block_on((flow.run)(&http, &gateway.base));
                assert!(
                    !outcome.errors.is_empty() || fault.name.starts_with("200 token"),
                    "{} / {}: no error to look at",
                    flow.name,
                    fault.name
                );
                for (output, text) in outputs(&outcome) {
                    swept += 1;
                    if let Some(found) = canaries.find(&text) {
                        leaks.push(format!(
                            "{} / {} / {output}: {found} in {text}",
                            flow.name, fault.name
                        ));
                    }
                }
            }
        }
    });
    let traced = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert!(traced.contains("TRACE"), "nothing traced");
    for line in traced.lines() {
        if let Some(found) = canaries.find(line) {
            leaks.push(format!("tracing: {found} in {line}"));
        }
    }
    assert!(swept > 500, "{swept} outputs swept");
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

#[test]
fn no_canary_shows_in_the_debug_of_builders_environments_settings_or_stores() {
    let canaries = Canaries::new();
    let proxy = format!(
        "http://user:{}@proxy.example:3128",
        canary("proxy_password")
    );
    let with_userinfo = format!("https://user:{}@api.example/", canary("url_password"));
    let dir = tempfile::tempdir().unwrap();
    let shown = [
        format!(
            "{:?}",
            payauth::core::http::client_builder().proxy(proxy.clone())
        ),
        format!("{:?}", Environment::Custom(with_userinfo.clone())),
        Environment::Custom(with_userinfo.clone())
            .label()
            .into_owned(),
        format!(
            "{:?}",
            MyposSettings::new(
                "c",
                secret("client_secret"),
                Environment::Custom(with_userinfo.clone())
            )
        ),
        format!(
            "{:?}",
            payauth::core::SecretConfig::from(secret("client_secret"))
        ),
        format!("{:?}", payauth::core::FileStore::new(dir.path())),
        format!("{:?}", payauth::core::MemoryStore::new()),
        format!("{:?}", previous()),
        format!(
            "{:?}",
            payauth::core::oauth2::ClientSecretBasic::new("c", secret("client_secret"))
        ),
    ];
    for text in shown {
        assert_eq!(canaries.find(&text), None, "{text}");
    }
    // And a base URL with user:password@ never builds a flow.
    let settings = MyposSettings::new(
        "c",
        secret("client_secret"),
        Environment::Custom(with_userinfo),
    );
    let error = Mypos::new(&settings, &payauth::core::http::default_client().unwrap()).unwrap_err();
    assert_eq!(error.kind(), payauth::core::ErrorKind::Config);
    assert_eq!(canaries.find(&format!("{error} {error:?}")), None);
}

#[test]
fn the_detector_finds_each_canary_in_each_encoding_and_nothing_in_plain_text() {
    let canaries = Canaries::new();
    for kind in KINDS {
        let value = canary(kind);
        let mut shown: Vec<String> = encodings(&value)
            .into_iter()
            .map(|f| format!("x {f} y"))
            .collect();
        shown.push(format!("Basic {}", STANDARD.encode(format!("id:{value}"))));
        shown.push(format!(
            "Basic {}",
            URL_SAFE.encode(format!("client-1:{value}"))
        ));
        shown.push(format!("cut: {}…", &value[..14]));
        for text in shown {
            assert!(canaries.find(&text).is_some(), "{kind}: {text}");
        }
    }
    assert_eq!(
        canaries.find("invalid_client: client credentials refused [REDACTED]"),
        None
    );
}

#[test]
fn no_canary_shows_in_the_errors_of_a_config_file_that_misplaces_a_secret() {
    let canaries = Canaries::new();
    // TOML basic strings: the canary's quote escaped.
    let lit = |kind: &str| serde_json::to_string(&canary(kind)).unwrap();
    let mypos = |environment: &str, secret: &str| {
        format!(
            "[source]\nprovider = \"mypos\"\nenvironment = {environment}\nclient_id = \"c\"\nclient_secret = {secret}\n"
        )
    };
    let userinfo = serde_json::to_string(&format!(
        "https://user:{}@api.example:99999/",
        canary("url_password")
    ))
    .unwrap();
    let query = serde_json::to_string(&format!(
        "htps://api.example/?client_secret={}",
        canary("client_secret")
    ))
    .unwrap();
    let secret = format!("{{ value = {} }}", lit("client_secret"));
    let http = payauth::core::http::default_client().unwrap();
    for text in [
        // A secret written where its table belongs.
        mypos("\"sandbox\"", &lit("client_secret")),
        // A secret of the wrong type, and a misspelt key.
        mypos("\"sandbox\"", "{ value = 123456789 }"),
        mypos(
            "\"sandbox\"",
            &format!("{{ valeu = {} }}", lit("client_secret")),
        ),
        // Environments that are no URL, or carry user:password@.
        mypos(&userinfo, &secret),
        mypos(&query, &secret),
    ] {
        let error = match payauth::config::Config::from_toml(&text) {
            Err(error) => error,
            Ok(config) => config.open(&http).map(drop).unwrap_err(),
        };
        let shown = format!("{error} | {error:?}");
        assert_eq!(canaries.find(&shown), None, "{text}\n{shown}");
    }
}
