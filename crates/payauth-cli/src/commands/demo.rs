//! `payauth demo`: starts the loopback sandbox and runs every flow of every
//! provider against it through the same public API a user calls (a
//! `TokenCache` over each provider's token source), printing one row per
//! flow. No credentials, no network beyond 127.0.0.1.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use payauth_core::{AccessToken, Environment, Error, Secret, TokenCache, TokenSource};
use payauth_iyzico::{Pwi, PwiSettings, TerminalLogin, TerminalLoginSettings};
use payauth_mypos::{Mypos, MyposSettings};
use payauth_sandbox::{Sandbox, defaults};
use payauth_vakifbank::{Channel, VakifBank, VakifBankSettings};

use super::Output;
use crate::failure::Failure;
use crate::output::{clean, print_json, say};

/// One flow's outcome.
struct Row {
    provider: &'static str,
    flow: &'static str,
    result: Result<String, String>,
    expires_in: Option<Duration>,
    latency: Duration,
}

pub(crate) fn run(output: Output) -> Result<(), Failure> {
    let rows = super::run(None, flows())?;
    print(&rows, output);
    let failed = rows.iter().filter(|r| r.result.is_err()).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(Failure::Reported(format!(
            "{failed} of {} flows failed",
            rows.len()
        )))
    }
}

async fn flows() -> Result<Vec<Row>, Failure> {
    let sandbox = Sandbox::builder().start().await.map_err(|e| {
        Failure::from(
            Error::new(payauth_core::ErrorKind::Config)
                .with_description(format!("cannot start the sandbox: {e}")),
        )
    })?;
    let base = sandbox.base_url();
    crate::output::note!("sandbox listening on {base}; running every flow…");
    let http = payauth_core::http::default_client()?;
    let mut rows = Vec::new();

    iyzico(&base, &http, &mut rows).await;
    vakifbank(&base, &http, &mut rows).await;
    mypos(&base, &http, &mut rows).await;
    sandbox.shutdown().await;
    Ok(rows)
}

/// iyzico: Terminal API login and refresh, and the Pay-with-iyzico token.
async fn iyzico(base: &str, http: &payauth_core::http::HttpClient, rows: &mut Vec<Row>) {
    let env = || Environment::Custom(base.to_owned());
    // iyzico Terminal API: login, then refresh through the cache.
    let login = TerminalLoginSettings::new(
        defaults::IYZICO_CLIENT_ID,
        Secret::new(defaults::IYZICO_CLIENT_SECRET),
        defaults::IYZICO_USERNAME,
        Secret::new(defaults::IYZICO_PASSWORD),
        env(),
    );
    match TerminalLogin::new(&login, http) {
        Ok(login) => {
            let cache = TokenCache::builder(login).build();
            let first = timed("iyzico", "terminal login", cache.token()).await;
            let previous = cache.peek();
            rows.push(first);
            if let Some(previous) = previous {
                cache.invalidate(&previous);
            }
            rows.push(timed("iyzico", "terminal refresh", cache.token()).await);
        }
        Err(e) => rows.push(failed("iyzico", "terminal login", &e)),
    }

    // iyzico Pay with iyzico: an IYZWSv2-signed access token.
    match Pwi::new(
        &PwiSettings::new(
            defaults::IYZICO_API_KEY,
            Secret::new(defaults::IYZICO_SECRET_KEY),
            env(),
        ),
        http,
    ) {
        Ok(pwi) => {
            let session = pwi.access_token(
                Secret::new(defaults::PWI_SESSION_TOKEN),
                defaults::PWI_MEMBER_IDENTIFIER,
            );
            rows.push(
                timed(
                    "iyzico",
                    "pay-with-iyzico token",
                    TokenCache::builder(session).build().token(),
                )
                .await,
            );
        }
        Err(e) => rows.push(failed("iyzico", "pay-with-iyzico token", &e)),
    }
}

/// VakıfBank: the authorization-code walk, refresh, client and B2B credentials.
async fn vakifbank(base: &str, http: &payauth_core::http::HttpClient, rows: &mut Vec<Row>) {
    // VakıfBank: the authorization-code walk, refresh, client and B2B credentials.
    let settings = VakifBankSettings::new(
        defaults::VAKIFBANK_CLIENT_ID,
        Secret::new(defaults::VAKIFBANK_CLIENT_SECRET),
        Environment::Custom(base.to_owned()),
    );
    match VakifBank::new(&settings, http) {
        Ok(bank) => {
            let started = Instant::now();
            let walked = authorization_code(&bank, http).await;
            let previous = walked.as_ref().ok().cloned();
            rows.push(row(
                "vakifbank",
                "authorization code",
                walked.map(Arc::new),
                started,
            ));
            match previous {
                Some(previous) => {
                    let started = Instant::now();
                    let refreshed = bank
                        .refresh_token(&["account"])
                        .fetch(Some(&previous))
                        .await;
                    rows.push(row(
                        "vakifbank",
                        "refresh token",
                        refreshed.map(Arc::new),
                        started,
                    ));
                }
                None => rows.push(Row {
                    provider: "vakifbank",
                    flow: "refresh token",
                    result: Err("skipped: no token to refresh".to_owned()),
                    expires_in: None,
                    latency: Duration::ZERO,
                }),
            }
            let cache = TokenCache::builder(bank.client_credentials(&["public"])).build();
            rows.push(timed("vakifbank", "client credentials", cache.token()).await);
            let cache = TokenCache::builder(
                bank.b2b_credentials(&["account"], defaults::VAKIFBANK_CONSENT_ID),
            )
            .build();
            rows.push(timed("vakifbank", "b2b credentials", cache.token()).await);
        }
        Err(e) => rows.push(failed("vakifbank", "authorization code", &e)),
    }
}

/// myPOS: client credentials, then revocation through the cache.
async fn mypos(base: &str, http: &payauth_core::http::HttpClient, rows: &mut Vec<Row>) {
    let env = || Environment::Custom(base.to_owned());
    // myPOS: client credentials, then revocation through the cache.
    match Mypos::new(
        &MyposSettings::new(
            defaults::MYPOS_CLIENT_ID,
            Secret::new(defaults::MYPOS_CLIENT_SECRET),
            env(),
        )
        .scopes(["webhooks"]),
        http,
    ) {
        Ok(mypos) => {
            let mypos = Arc::new(mypos);
            let cache = TokenCache::builder(mypos.clone() as Arc<dyn TokenSource>).build();
            rows.push(timed("mypos", "client credentials", cache.token()).await);
            let started = Instant::now();
            let revoked = mypos.revoke_cached(&cache).await;
            rows.push(Row {
                provider: "mypos",
                flow: "revoke",
                result: revoked
                    .map(|()| "revoked".to_owned())
                    .map_err(|e| e.to_string()),
                expires_in: None,
                latency: started.elapsed(),
            });
        }
        Err(e) => rows.push(failed("mypos", "client credentials", &e)),
    }
}

/// Authorize URL, the simulated customer login (the sandbox redirects at
/// once), the callback check, and the code exchange.
async fn authorization_code(
    bank: &VakifBank,
    http: &payauth_core::http::HttpClient,
) -> Result<AccessToken, Error> {
    let pending = bank.authorize_url(
        Channel::Retail,
        &["account"],
        "http://127.0.0.1/callback",
        true,
    )?;
    let location = payauth_sandbox::browser::authorize(http, pending.url.as_str()).await?;
    let code = pending.callback(&location)?;
    bank.exchange(&pending, &code).await
}

async fn timed(
    provider: &'static str,
    flow: &'static str,
    fetch: impl Future<Output = Result<Arc<AccessToken>, Error>>,
) -> Row {
    let started = Instant::now();
    let result = fetch.await;
    row(provider, flow, result, started)
}

fn row(
    provider: &'static str,
    flow: &'static str,
    result: Result<Arc<AccessToken>, Error>,
    started: Instant,
) -> Row {
    let latency = started.elapsed();
    match result {
        Ok(token) => Row {
            provider,
            flow,
            result: Ok("ok".to_owned()),
            expires_in: token
                .expires_at_system()
                .duration_since(SystemTime::now())
                .ok(),
            latency,
        },
        Err(error) => Row {
            provider,
            flow,
            result: Err(error.to_string()),
            expires_in: None,
            latency,
        },
    }
}

fn failed(provider: &'static str, flow: &'static str, error: &Error) -> Row {
    Row {
        provider,
        flow,
        result: Err(error.to_string()),
        expires_in: None,
        latency: Duration::ZERO,
    }
}

fn print(rows: &[Row], output: Output) {
    if output.json {
        let rows: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "provider": r.provider,
                    "flow": r.flow,
                    "ok": r.result.is_ok(),
                    "result": match &r.result { Ok(s) | Err(s) => s },
                    "expires_in_s": r.expires_in.map(|d| d.as_secs()),
                    "latency_ms": r.latency.as_secs_f64() * 1000.0,
                })
            })
            .collect();
        print_json(&serde_json::Value::Array(rows));
        return;
    }
    say!(
        "{:<10} {:<24} {:<8} {:>11} {:>10}",
        "provider",
        "flow",
        "result",
        "expires in",
        "latency"
    );
    for r in rows {
        let result = if r.result.is_ok() { "OK" } else { "FAILED" };
        let expires = r
            .expires_in
            .map_or_else(|| "-".to_owned(), |d| format!("{}s", d.as_secs()));
        say!(
            "{:<10} {:<24} {:<8} {:>11} {:>8.1}ms",
            r.provider,
            r.flow,
            result,
            expires,
            r.latency.as_secs_f64() * 1000.0
        );
        if let Err(message) = &r.result {
            say!("           └ {}", clean(message));
        }
    }
}
