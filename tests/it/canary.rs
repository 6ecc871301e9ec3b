//! The canary sweep: no secret leaves payauth, by any path.
//!
//! Distinct canary secrets, one per kind, are planted in every flow of
//! every provider; each flow is driven against every fault a hostile
//! gateway can answer with, most of them echoing the request it got
//! (headers and body) back in every encoding a server uses; and every
//! output is searched for every canary in every encoding (`Canaries::find`):
//! the `Display`, `Debug` and source chain of each error, the `Debug` of
//! the values a user holds, what `tracing` records at TRACE, store keys.
//!
//! The sweep is three tables: [`FLOWS`] here, the hostile gateways'
//! `FAULTS` (payauth-testkit's `canary` module, shared with the CLI's
//! sweep) and the outputs [`outputs`] collects. A new flow, fault or
//! output is one row.
//!
//! The CLI's outputs (stdout, stderr, `--json`, `-vv`, `--help`) are swept
//! in payauth-cli's `tests/it/canary.rs` with the same canaries and faults.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
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
use payauth_sandbox::{Fault as SandboxFault, Schedule};
use payauth_sandbox::{Sandbox, SandboxCredentials, SandboxPwiSession};
use payauth_testkit::canary::{Canaries, FAULTS, Gateway, KINDS, canary, encodings};

fn secret(kind: &str) -> Secret {
    Secret::new(canary(kind))
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

fn form(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
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
                    pending.state = secret("state");
                    out.show(&pending);
                    // A redirect whose error repeats the state and verifier.
                    let echo = format!("{} {}", canary("state"), canary("code_verifier"));
                    let redirect = format!(
                        "http://127.0.0.1:1/callback?state={}&error={}&error_description={}",
                        form(&canary("state")),
                        form(&echo),
                        form(&echo)
                    );
                    out.result(pending.callback(&redirect));
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

/// Runs every flow against every base URL `servers` yields (each named,
/// started in the runtime it is given), with `tracing` recording at TRACE,
/// and returns every canary found in any output, and how many outputs
/// were searched.
fn sweep<S>(
    servers: impl IntoIterator<Item = S>,
    start: impl Fn(&S, &tokio::runtime::Runtime) -> (String, String),
) -> (Vec<String>, usize) {
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
        for server in servers {
            let (name, base) = start(&server, &runtime);
            for flow in FLOWS {
                let outcome = runtime.block_on((flow.run)(&http, &base));
                for (output, text) in outputs(&outcome) {
                    swept += 1;
                    if let Some(found) = canaries.find(&text) {
                        leaks.push(format!(
                            "{} / {name} / {output}: {found} in {text}",
                            flow.name
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
    (leaks, swept)
}

#[test]
fn no_canary_shows_in_any_output_of_any_flow_against_any_hostile_gateway() {
    let (leaks, swept) = sweep(FAULTS, |fault, _| {
        (fault.name.to_owned(), Gateway::start(fault).base)
    });
    assert!(swept > 500, "{swept} outputs swept");
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

/// The sandbox, knowing the canaries as the right credentials (so each
/// flow gets as far as it can), with `fault` on every endpoint.
fn sandbox(fault: Option<SandboxFault>, runtime: &tokio::runtime::Runtime) -> String {
    let credentials = SandboxCredentials {
        iyzico_client_id: "client-1".to_owned(),
        iyzico_client_secret: secret("client_secret"),
        iyzico_username: "cashier-1".to_owned(),
        iyzico_password: secret("password"),
        iyzico_api_key: "api-key-1".to_owned(),
        iyzico_secret_key: secret("secret_key"),
        pwi_sessions: vec![SandboxPwiSession::new(canary("session_token"), "member-1")],
        vakifbank_client_id: "client-1".to_owned(),
        vakifbank_client_secret: secret("client_secret"),
        mypos_client_id: "client-1".to_owned(),
        mypos_client_secret: secret("client_secret"),
        ..SandboxCredentials::default()
    };
    let running = runtime
        .block_on(Sandbox::builder().credentials(credentials).start())
        .unwrap();
    if let Some(fault) = fault {
        running.faults().set_all(fault, Schedule::Always);
    }
    let base = running.base_url();
    // The sandbox serves while the runtime runs; it lives for the test.
    std::mem::forget(running);
    base
}

#[test]
fn no_canary_shows_in_any_output_of_any_flow_against_every_sandbox_fault() {
    let faults = [
        None,
        Some(SandboxFault::Status {
            status: 503,
            retry_after: Some(1),
        }),
        Some(SandboxFault::Status {
            status: 429,
            retry_after: None,
        }),
        Some(SandboxFault::Reset),
        Some(SandboxFault::TornBody),
        Some(SandboxFault::Garbage),
        Some(SandboxFault::Html),
        Some(SandboxFault::TruncatedJson),
        Some(SandboxFault::WrongTypes),
        Some(SandboxFault::HugeBody { bytes: 100_000 }),
    ];
    let (leaks, swept) = sweep(faults, |fault, runtime| {
        (
            format!("sandbox {fault:?}"),
            sandbox(fault.clone(), runtime),
        )
    });
    assert!(swept > 300, "{swept} outputs swept");
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
        format!(
            "{:?}",
            payauth_redis::RedisStore::open(&Secret::new(format!(
                "redis://:{}@127.0.0.1:1/0",
                canary("url_password")
            )))
        ),
        format!(
            "{:?}",
            payauth_redis::RedisStore::open(&Secret::new(format!(
                "redis://:{}@[::1:1",
                canary("url_password")
            )))
        ),
        MyposSettings::new(
            "c",
            secret("client_secret"),
            Environment::Custom(format!(
                "https://api.example/base?client_secret={}",
                canary("client_secret")
            )),
        )
        .store_key()
        .unwrap(),
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

/// A proxy named `https://` must be spoken to over TLS, or refused before
/// a byte is sent: its password never crosses a wire in clear, whatever
/// the proxy connector does with it.
#[test]
fn no_canary_crosses_the_wire_in_clear_to_an_https_proxy() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&received);
    std::thread::spawn(move || {
        use std::io::Read as _;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = stream.read(&mut buffer) {
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        }
    });
    let canaries = Canaries::new();
    let proxy = format!("https://user:{}@127.0.0.1:{port}", canary("proxy_password"));
    let built = payauth::core::http::client_builder()
        .proxy(proxy)
        .timeout(Duration::from_secs(3))
        .build();
    let shown = match built {
        Err(error) => format!("{error} {error:?}"),
        Ok(http) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let settings = MyposSettings::new(
                "client-1",
                secret("client_secret"),
                environment("https://127.0.0.1:9"),
            );
            let mypos = Mypos::new(&settings, &http).unwrap();
            let error = runtime.block_on(mypos.fetch_token()).unwrap_err();
            format!("{error} {error:?}")
        }
    };
    assert_eq!(canaries.find(&shown), None, "{shown}");
    let wire = String::from_utf8_lossy(&received.lock().unwrap()).into_owned();
    assert_eq!(
        canaries.find(&wire),
        None,
        "sent in clear to the proxy: {wire}"
    );
}
