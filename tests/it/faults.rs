//! Every provider flow, through the public API a user holds (a
//! `TokenCache` built from a config), against every fault the sandbox can
//! inject: a typed error of the right kind, never a panic, and a cached
//! token that is still valid keeps being served until it expires.

use std::sync::Arc;
use std::time::Duration;

use payauth::config::Config;
use payauth::core::{ErrorKind, ManualClock, TokenCache};
use payauth_sandbox::{Fault, RunningSandbox, Sandbox, Schedule, defaults};

use crate::flows::configs;

/// Each fault and the kind of error a caller must see for it.
fn faults() -> Vec<(&'static str, Fault, ErrorKind)> {
    vec![
        (
            "503 with Retry-After",
            Fault::Status {
                status: 503,
                retry_after: Some(1),
            },
            ErrorKind::Unavailable,
        ),
        (
            "429",
            Fault::Status {
                status: 429,
                retry_after: Some(1),
            },
            ErrorKind::RateLimited,
        ),
        ("HTML error page", Fault::Html, ErrorKind::Unavailable),
        ("garbage body", Fault::Garbage, ErrorKind::Malformed),
        ("truncated JSON", Fault::TruncatedJson, ErrorKind::Malformed),
        ("wrong types", Fault::WrongTypes, ErrorKind::Malformed),
        (
            "10 MB body",
            Fault::HugeBody {
                bytes: 10 * 1024 * 1024,
            },
            ErrorKind::Malformed,
        ),
        ("connection reset", Fault::Reset, ErrorKind::Transport),
        ("torn body", Fault::TornBody, ErrorKind::Transport),
    ]
}

fn cache(config: &str, clock: &Arc<ManualClock>) -> TokenCache {
    let config = Config::from_toml(config).unwrap();
    let (source, _) = config
        .source(&payauth::core::http::default_client().unwrap())
        .unwrap();
    TokenCache::builder(source)
        .clock(Arc::clone(clock) as _)
        .refresh_margin(Duration::from_secs(30))
        .jitter(0.0)
        .build()
}

async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn check(
    sandbox: &RunningSandbox,
    provider: &str,
    config: &str,
    fault: &str,
    injected: Fault,
    kind: ErrorKind,
) {
    sandbox.faults().clear_all();
    let clock = Arc::new(ManualClock::new());
    let cache = cache(config, &clock);
    let first = cache
        .token()
        .await
        .unwrap_or_else(|e| panic!("{provider}: no first token: {e}"));
    sandbox.faults().set_all(injected, Schedule::Always);

    // Inside the refresh margin: the still-valid token is served while the
    // refresh fails in the background.
    clock.advance(first.lifetime().saturating_sub(Duration::from_secs(10)));
    let served = cache
        .token()
        .await
        .unwrap_or_else(|e| panic!("{provider}/{fault}: valid token not served: {e}"));
    assert!(Arc::ptr_eq(&first, &served), "{provider}/{fault}");
    settle().await;
    let still = cache
        .token()
        .await
        .unwrap_or_else(|e| panic!("{provider}/{fault}: valid token dropped: {e}"));
    assert!(
        Arc::ptr_eq(&first, &still),
        "{provider}/{fault}: the failure kept the cached token"
    );

    // Past expiry: the typed error, never the stale token.
    clock.advance(Duration::from_secs(60));
    let error = cache
        .token()
        .await
        .expect_err("an expired token is never served");
    // (A processed fault can let iyzico rotate the refresh token while the
    // client never saw the new one: the next refresh is refused, and the
    // terminal login logs in again, meeting the same fault.)
    assert_eq!(error.kind(), kind, "{provider}/{fault}: {error}");
}

#[test]
fn every_flow_under_every_fault_gives_a_typed_error_and_keeps_a_valid_token() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sandbox = Sandbox::builder().start().await.unwrap();
        for (provider, config) in configs(&sandbox.base_url()) {
            for (fault, injected, kind) in faults() {
                check(&sandbox, provider, &config, fault, injected, kind).await;
            }
        }
        sandbox.shutdown().await;
    });
}

/// The transient failures a token endpoint shows, each at a 20 % rate.
fn transient_faults() -> Vec<(&'static str, Fault)> {
    vec![
        (
            "503",
            Fault::Status {
                status: 503,
                retry_after: None,
            },
        ),
        (
            "502",
            Fault::Status {
                status: 502,
                retry_after: None,
            },
        ),
        (
            // Retry-After: 0 keeps the test quick; honouring larger values
            // is the core's own test.
            "429 with Retry-After",
            Fault::Status {
                status: 429,
                retry_after: Some(0),
            },
        ),
        ("connection reset", Fault::Reset),
        // Longer than the client's timeout below.
        ("timeout", Fault::Latency(Duration::from_secs(2))),
    ]
}

#[test]
fn under_twenty_percent_transient_failures_every_grant_succeeds_within_its_retries() {
    const FETCHES: u64 = 20;
    const RETRIES: u32 = 4;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sandbox = Sandbox::builder().seed(7).start().await.unwrap();
        let http = payauth::core::http::client_builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        // Single-request grants: the terminal login (two requests, restarted
        // whole on failure) is covered by the suite above.
        for (provider, config) in configs(&sandbox.base_url())
            .into_iter()
            .filter(|(p, _)| *p != "iyzico-terminal")
        {
            for (name, fault) in transient_faults() {
                sandbox.faults().clear_all();
                sandbox.reset_counters();
                sandbox.faults().set_all(fault, Schedule::Rate(0.2));
                let config = Config::from_toml(&config).unwrap();
                let (source, _) = config.source(&http).unwrap();
                let cache = TokenCache::builder(source)
                    .retries(RETRIES, Duration::from_millis(1))
                    .build();
                for n in 0..FETCHES {
                    let token = cache.token().await.unwrap_or_else(|e| {
                        panic!("{provider} under {name}: fetch {n} failed: {e}")
                    });
                    // Unconditionally, unlike a 401's renewal-limited invalidate.
                    cache.forget(&token).await.unwrap();
                }
                let requests = sandbox.total_requests();
                assert!(
                    requests <= FETCHES * u64::from(RETRIES + 1),
                    "{provider} under {name}: {requests} requests"
                );
                assert!(
                    requests > FETCHES,
                    "{provider} under {name}: some requests failed and were retried"
                );
            }
        }
        sandbox.shutdown().await;
    });
}

#[tokio::test]
async fn an_authorization_code_exchange_meeting_a_transient_failure_is_reported_never_retried() {
    use payauth::vakifbank::{Channel, VakifBank, VakifBankSettings};
    use payauth_sandbox::Endpoint;
    let sandbox = Sandbox::builder().start().await.unwrap();
    let http = payauth::core::http::default_client().unwrap();
    let settings = VakifBankSettings::new(
        defaults::VAKIFBANK_CLIENT_ID,
        payauth::core::Secret::new(defaults::VAKIFBANK_CLIENT_SECRET),
        payauth::core::Environment::Custom(sandbox.base_url()),
    );
    let bank = VakifBank::new(&settings, &http).unwrap();
    let pending = bank
        .authorize_url(
            Channel::Retail,
            &["account"],
            "https://app.example/cb",
            false,
        )
        .unwrap();
    let redirect = payauth_sandbox::browser::authorize(&http, pending.url.as_str())
        .await
        .unwrap();
    let code = pending.callback(&redirect).unwrap();
    sandbox.faults().set(
        Endpoint::VakifbankToken,
        Fault::Status {
            status: 503,
            retry_after: Some(0),
        },
        Schedule::Always,
    );
    let error = bank.exchange(&pending, &code).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error.is_transient());
    assert_eq!(sandbox.requests(Endpoint::VakifbankToken), 1, "sent once");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_retried_terminal_login_starts_over_with_a_new_code_never_replaying_one() {
    use payauth_sandbox::Endpoint;
    let sandbox = Sandbox::builder().start().await.unwrap();
    sandbox.faults().set(
        Endpoint::IyzicoToken,
        Fault::Status {
            status: 503,
            retry_after: Some(0),
        },
        Schedule::Times(2),
    );
    let (_, config) = configs(&sandbox.base_url())
        .into_iter()
        .find(|(p, _)| *p == "iyzico-terminal")
        .unwrap();
    let config = Config::from_toml(&config).unwrap();
    let (source, _) = config
        .source(&payauth::core::http::default_client().unwrap())
        .unwrap();
    let cache = TokenCache::builder(source)
        .retries(3, Duration::from_millis(1))
        .build();
    cache.token().await.expect("the third login succeeds");
    // Each attempt asked for a fresh code: 3 authorizations, 3 exchanges.
    assert_eq!(sandbox.requests(Endpoint::IyzicoAuthorize), 3);
    assert_eq!(sandbox.requests(Endpoint::IyzicoToken), 3);
    sandbox.shutdown().await;
}
