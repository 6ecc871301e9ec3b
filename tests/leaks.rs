//! No secret reaches a log: every flow runs with sentinel credentials while
//! a `tracing` subscriber records everything at TRACE — payauth's own
//! events and every dependency's (hyper, reqwest, rustls, redis; `log`
//! records included) — plus the `Debug` and `Display` of every value a
//! user holds. Neither a sentinel nor any token the sandbox issued may
//! appear in what was recorded.
//!
//! A binary of its own, not a module of `it/`: it installs the process's
//! one global `tracing` subscriber, which would also record (and slow) the
//! other tests, and which no other test may have installed first.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use payauth::config::Config;
use payauth::core::Environment;
use payauth::core::{AccessToken, Clock, ManualClock, Secret, TokenCache, TokenSource};
use payauth::mypos::{Mypos, MyposSettings};
use payauth::vakifbank::{Channel, VakifBank, VakifBankSettings};
use payauth_redis::{EncryptionKey, RedisStore};
use payauth_sandbox::{RunningSandbox, Sandbox, SandboxCredentials, SandboxPwiSession};

/// Every sentinel starts with this, so one search finds them all.
const MARK: &str = "LEAKCHECK";
/// The Redis encryption key (hex cannot carry the mark).
const HEX_KEY: &str = "1eac0c4ec01eac0c4ec01eac0c4ec01eac0c4ec01eac0c4ec01eac0c4ec01eac";

fn sentinel(name: &str) -> String {
    format!("{MARK}-{name}-x%:+ü")
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn credentials() -> SandboxCredentials {
    SandboxCredentials {
        iyzico_client_secret: Secret::new(sentinel("iyzico-client-secret")),
        iyzico_password: Secret::new(sentinel("iyzico-password")),
        iyzico_secret_key: Secret::new(sentinel("iyzico-secret-key")),
        pwi_sessions: vec![SandboxPwiSession::new(sentinel("pwi-session"), "member-1")],
        vakifbank_client_secret: Secret::new(sentinel("vakifbank-client-secret")),
        mypos_client_secret: Secret::new(sentinel("mypos-client-secret")),
        ..SandboxCredentials::default()
    }
}

/// A TOML string literal (sentinels carry `%`, `+`, `ü`, none special).
fn lit(value: &str) -> String {
    format!("\"{value}\"")
}

fn configs(base: &str, wrong: bool) -> Vec<String> {
    let secret = |name: &str| {
        if wrong {
            lit(&sentinel(&format!("{name}-wrong")))
        } else {
            lit(&sentinel(name))
        }
    };
    let c = SandboxCredentials::default();
    vec![
        format!(
            "[source]\nprovider = \"mypos\"\nenvironment = \"{base}\"\nclient_id = \"{}\"\nclient_secret = {{ value = {} }}\n",
            c.mypos_client_id,
            secret("mypos-client-secret")
        ),
        format!(
            "[source]\nprovider = \"vakifbank\"\nflow = \"client_credentials\"\nenvironment = \"{base}\"\nclient_id = \"{}\"\nclient_secret = {{ value = {} }}\nscopes = [\"public\"]\n",
            c.vakifbank_client_id,
            secret("vakifbank-client-secret")
        ),
        format!(
            "[source]\nprovider = \"iyzico-terminal\"\nenvironment = \"{base}\"\nclient_id = \"{}\"\nclient_secret = {{ value = {} }}\nusername = \"{}\"\npassword = {{ value = {} }}\n",
            c.iyzico_client_id,
            secret("iyzico-client-secret"),
            c.iyzico_username,
            secret("iyzico-password")
        ),
        format!(
            "[source]\nprovider = \"iyzico-pwi\"\nenvironment = \"{base}\"\napi_key = \"{}\"\nsecret_key = {{ value = {} }}\nsession_token = {{ value = {} }}\nmember_identifier = \"member-1\"\n",
            c.iyzico_api_key,
            secret("iyzico-secret-key"),
            secret("pwi-session")
        ),
    ]
}

/// Collects every token value seen, to look for them in the logs too.
#[derive(Default)]
struct Issued(Vec<String>);

impl Issued {
    fn add(&mut self, token: &AccessToken) {
        self.0.push(token.secret().expose_secret().to_owned());
        if let Some(refresh) = token.refresh_token() {
            self.0.push(refresh.expose_secret().to_owned());
        }
    }
}

async fn config_flows(
    sandbox: &RunningSandbox,
    http: &payauth::core::http::HttpClient,
    issued: &mut Issued,
) {
    for text in configs(&sandbox.base_url(), false) {
        let config = Config::from_toml(&text).unwrap();
        let (source, key) = config.source(http).unwrap();
        let clock = Arc::new(ManualClock::new());
        let cache = TokenCache::builder(source)
            .clock(Arc::clone(&clock) as Arc<dyn Clock>)
            .build();
        let first = cache.token().await.expect("token");
        issued.add(&first);
        // The refresh path (a refresh grant where there is one). The
        // sources mint on the system clock, so the cache's clock stays put.
        assert!(cache.forget(&first).await.unwrap());
        let second = cache.token().await.expect("renewed");
        issued.add(&second);
        assert!(cache.invalidate(&second));
        issued.add(&cache.token().await.expect("after a 401"));
        tracing::info!(?config, %key, ?cache, ?first, "flow done");
    }
    for text in configs(&sandbox.base_url(), true) {
        let config = Config::from_toml(&text).unwrap();
        let error = config.cache(http).unwrap().token().await.unwrap_err();
        tracing::error!(%error, ?error, "refused as expected");
    }
}

async fn vakifbank_walk(
    sandbox: &RunningSandbox,
    http: &payauth::core::http::HttpClient,
    issued: &mut Issued,
) {
    let settings = VakifBankSettings::new(
        SandboxCredentials::default().vakifbank_client_id,
        Secret::new(sentinel("vakifbank-client-secret")),
        Environment::Custom(sandbox.base_url()),
    );
    tracing::debug!(?settings, "vakifbank settings");
    let bank = VakifBank::new(&settings, http).unwrap();
    let pending = bank
        .authorize_url(
            Channel::Retail,
            &["account"],
            "https://app.example/cb",
            true,
        )
        .unwrap();
    tracing::debug!(?pending, "pending authorization");
    let redirect = payauth_sandbox::browser::authorize(http, pending.url.as_str())
        .await
        .unwrap();
    let code = pending.callback(&redirect).unwrap();
    let token = bank.exchange(&pending, &code).await.unwrap();
    issued.add(&token);
    let refreshed = bank
        .refresh_token(&["account"])
        .fetch(Some(&token))
        .await
        .unwrap();
    issued.add(&refreshed);
    // A refresh token already used is refused: the error must not quote it.
    let error = bank
        .refresh_token(&["account"])
        .fetch(Some(&token))
        .await
        .unwrap_err();
    tracing::error!(%error, ?error, "refused refresh");
    let b2b = bank
        .b2b_credentials(
            &["account"],
            SandboxCredentials::default().vakifbank_consent_id,
        )
        .fetch(None)
        .await
        .unwrap();
    issued.add(&b2b);
}

async fn mypos_revoke(
    sandbox: &RunningSandbox,
    http: &payauth::core::http::HttpClient,
    issued: &mut Issued,
) {
    let settings = MyposSettings::new(
        SandboxCredentials::default().mypos_client_id,
        Secret::new(sentinel("mypos-client-secret")),
        Environment::Custom(sandbox.base_url()),
    );
    let mypos = Mypos::new(&settings, http).unwrap();
    let token = mypos.fetch_token().await.unwrap();
    issued.add(&token);
    let headers = mypos.resource_headers(&token).unwrap();
    tracing::debug!(?headers, ?mypos, "resource headers");
    mypos.revoke(token.secret()).await.unwrap();
}

async fn redis_fleet(
    sandbox: &RunningSandbox,
    http: &payauth::core::http::HttpClient,
    issued: &mut Issued,
) {
    let Some(redis) = payauth_testkit::redis::Redis::get() else {
        return;
    };
    let store = RedisStore::connect(&Secret::new(redis.url.clone()))
        .await
        .unwrap()
        .with_prefix(redis.prefix.clone())
        .with_encryption(EncryptionKey::from_hex(&Secret::new(HEX_KEY)).unwrap());
    let settings = MyposSettings::new(
        SandboxCredentials::default().mypos_client_id,
        Secret::new(sentinel("mypos-client-secret")),
        Environment::Custom(sandbox.base_url()),
    );
    let cache = TokenCache::builder(Mypos::new(&settings, http).unwrap())
        .shared_store(Arc::new(store.clone()), "mypos")
        .build();
    issued.add(&cache.token().await.unwrap());
    tracing::debug!(?store, ?cache, "fleet cache");
    let wrong = RedisStore::connect(&Secret::new(format!(
        "redis://user:{}@127.0.0.1:1/",
        sentinel("redis-password")
    )))
    .await
    .unwrap_err();
    tracing::error!(%wrong, ?wrong, "unreachable redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_reaches_any_log_at_trace_level_in_any_flow() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the only subscriber in this test binary");

    let sandbox = Sandbox::builder()
        .credentials(credentials())
        .start()
        .await
        .unwrap();
    let http = payauth::core::http::default_client().unwrap();
    let mut issued = Issued::default();
    config_flows(&sandbox, &http, &mut issued).await;
    vakifbank_walk(&sandbox, &http, &mut issued).await;
    mypos_revoke(&sandbox, &http, &mut issued).await;
    redis_fleet(&sandbox, &http, &mut issued).await;
    sandbox.shutdown().await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let log = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    // The capture works: payauth's own events and the HTTP stack's traces.
    assert!(log.contains("token fetched"), "payauth events recorded");
    assert!(log.contains("hyper"), "dependency traces recorded");
    assert!(issued.0.len() >= 15, "tokens issued: {}", issued.0.len());
    for needle in [MARK, HEX_KEY]
        .into_iter()
        .chain(issued.0.iter().map(String::as_str))
    {
        if let Some(at) = log.find(needle) {
            let start = log[..at].rfind('\n').map_or(0, |n| n + 1);
            let end = log[at..].find('\n').map_or(log.len(), |n| at + n);
            panic!("a secret reached the log:\n{}", &log[start..end]);
        }
    }
    if std::env::var_os("PAYAUTH_SHOW_LOG").is_some() {
        eprintln!("{log}");
    }
    eprintln!(
        "{} log lines at TRACE, {} tokens checked",
        log.lines().count(),
        issued.0.len()
    );
}
