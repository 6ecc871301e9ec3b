//! Fault injection and request counters.

use std::time::{Duration, Instant};

use payauth_sandbox::{Endpoint, Fault, RunningSandbox, Sandbox, Schedule, defaults};
use serde_json::Value;

use crate::common::{basic, client, post_form, sandbox, status_json};

fn mypos_basic() -> String {
    basic(defaults::MYPOS_CLIENT_ID, defaults::MYPOS_CLIENT_SECRET)
}

/// A myPOS token request on a fresh client (a fresh connection).
async fn mypos_token(sandbox: &RunningSandbox) -> reqwest::Result<reqwest::Response> {
    client()
        .post(sandbox.url(Endpoint::MyposToken))
        .header("authorization", mypos_basic())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
}

async fn mypos_status(sandbox: &RunningSandbox) -> u16 {
    mypos_token(sandbox).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_status_fault_answers_the_next_n_requests_then_stops() {
    let sandbox = sandbox().await;
    sandbox.faults().set(
        Endpoint::MyposToken,
        Fault::Status {
            status: 503,
            retry_after: Some(1),
        },
        Schedule::Times(2),
    );
    for _ in 0..2 {
        let response = mypos_token(&sandbox).await.unwrap();
        assert_eq!(response.headers()["retry-after"], "1");
        let (status, body) = status_json(response).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("temporarily_unavailable"))
        );
    }
    assert_eq!(mypos_status(&sandbox).await, 200);
    assert_eq!(sandbox.faults().injected(Endpoint::MyposToken), 2);
    assert_eq!(sandbox.requests(Endpoint::MyposToken), 3);
}

#[tokio::test]
async fn a_429_carries_retry_after_and_other_statuses_need_not() {
    let sandbox = sandbox().await;
    let faults = sandbox.faults();
    faults.set(
        Endpoint::MyposToken,
        Fault::Status {
            status: 429,
            retry_after: Some(7),
        },
        Schedule::Times(1),
    );
    let response = mypos_token(&sandbox).await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    faults.set(
        Endpoint::MyposToken,
        Fault::Status {
            status: 500,
            retry_after: None,
        },
        Schedule::Times(1),
    );
    let response = mypos_token(&sandbox).await.unwrap();
    assert_eq!(response.status(), 500);
    assert!(!response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_rate_fault_is_reproducible_for_a_seed() {
    async fn pattern(seed: u64) -> Vec<u16> {
        let sandbox = Sandbox::builder().seed(seed).start().await.unwrap();
        sandbox.faults().set(
            Endpoint::MyposToken,
            Fault::Status {
                status: 500,
                retry_after: None,
            },
            Schedule::Rate(0.5),
        );
        let mut statuses = Vec::new();
        for _ in 0..24 {
            statuses.push(mypos_status(&sandbox).await);
        }
        assert_eq!(
            sandbox.faults().injected(Endpoint::MyposToken),
            statuses.iter().filter(|&&s| s == 500).count() as u64
        );
        statuses
    }
    let first = pattern(42).await;
    assert_eq!(first, pattern(42).await);
    assert!(first.contains(&200) && first.contains(&500), "{first:?}");

    // Reseeding at run time restarts the same sequence.
    let sandbox = Sandbox::builder().seed(1).start().await.unwrap();
    sandbox.faults().reseed(42);
    sandbox.faults().set(
        Endpoint::MyposToken,
        Fault::Status {
            status: 500,
            retry_after: None,
        },
        Schedule::Rate(0.5),
    );
    let mut again = Vec::new();
    for _ in 0..24 {
        again.push(mypos_status(&sandbox).await);
    }
    assert_eq!(first, again);
}

#[tokio::test]
async fn a_latency_fault_delays_the_answer() {
    let sandbox = sandbox().await;
    sandbox.faults().set(
        Endpoint::MyposToken,
        Fault::Latency(Duration::from_millis(30)),
        Schedule::Times(1),
    );
    let started = Instant::now();
    assert_eq!(mypos_status(&sandbox).await, 200);
    assert!(started.elapsed() >= Duration::from_millis(30));
}

#[tokio::test]
async fn a_reset_fault_closes_the_connection_without_an_answer() {
    let sandbox = sandbox().await;
    sandbox
        .faults()
        .set(Endpoint::MyposToken, Fault::Reset, Schedule::Times(1));
    let error = mypos_token(&sandbox).await.unwrap_err();
    assert!(error.is_request() && error.status().is_none(), "{error:?}");
    // A real TCP reset (SO_LINGER 0), not a polite close.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    let mut reset = false;
    while let Some(error) = source {
        reset |= error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset);
        source = error.source();
    }
    assert!(reset, "{error:?}");
    // The next request, on a new connection, is answered.
    assert_eq!(mypos_status(&sandbox).await, 200);
    assert_eq!(sandbox.requests(Endpoint::MyposToken), 2);
}

#[tokio::test]
async fn a_torn_body_fault_breaks_the_body_mid_way() {
    let sandbox = sandbox().await;
    sandbox
        .faults()
        .set(Endpoint::MyposToken, Fault::TornBody, Schedule::Times(1));
    let response = mypos_token(&sandbox).await.unwrap();
    assert_eq!(response.status(), 200);
    let announced = response.content_length().unwrap();
    assert!(announced > 20);
    let error = response.bytes().await.unwrap_err();
    assert!(error.is_body() || error.is_decode(), "{error:?}");
}

#[tokio::test]
async fn a_garbage_fault_sends_bytes_that_are_not_json() {
    let sandbox = sandbox().await;
    sandbox
        .faults()
        .set(Endpoint::MyposToken, Fault::Garbage, Schedule::Times(1));
    let response = mypos_token(&sandbox).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&body).is_err());
}

#[tokio::test]
async fn an_html_fault_sends_a_502_page() {
    let sandbox = sandbox().await;
    sandbox
        .faults()
        .set(Endpoint::MyposToken, Fault::Html, Schedule::Times(1));
    let response = mypos_token(&sandbox).await.unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["content-type"], "text/html");
    assert!(response.text().await.unwrap().contains("<html>"));
}

#[tokio::test]
async fn a_truncated_json_fault_cuts_the_real_answer_and_still_spends_the_grant() {
    let sandbox = sandbox().await;
    let code = {
        let query = crate::common::form(&[
            ("client_id", defaults::VAKIFBANK_CLIENT_ID),
            ("response_type", "code"),
            ("scope", "transfer"),
            ("redirect_uri", "http://127.0.0.1/cb"),
            ("resource", "sandbox"),
        ]);
        let url = format!("{}?{query}", sandbox.url(Endpoint::VakifbankAuthorize));
        let location = payauth_sandbox::browser::authorize(
            &payauth_core::http::default_client().unwrap(),
            &url,
        )
        .await
        .unwrap();
        location.split_once("code=").unwrap().1.to_owned()
    };
    sandbox.faults().set(
        Endpoint::VakifbankToken,
        Fault::TruncatedJson,
        Schedule::Times(1),
    );
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1/cb"),
        ("client_id", defaults::VAKIFBANK_CLIENT_ID),
        ("client_secret", defaults::VAKIFBANK_CLIENT_SECRET),
    ];
    let response = post_form(&sandbox, Endpoint::VakifbankToken, None, &grant).await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.starts_with("{\""), "{body}");
    assert!(serde_json::from_str::<Value>(&body).is_err());
    // The sandbox processed the exchange before the answer was spoiled.
    let (status, body) =
        status_json(post_form(&sandbox, Endpoint::VakifbankToken, None, &grant).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn a_wrong_types_fault_sends_expires_in_as_a_boolean() {
    let sandbox = sandbox().await;
    sandbox
        .faults()
        .set(Endpoint::MyposToken, Fault::WrongTypes, Schedule::Times(1));
    let (status, body) = status_json(mypos_token(&sandbox).await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], true);
    assert!(body["access_token"].is_string());
}

#[tokio::test]
async fn a_huge_body_fault_sends_the_asked_size() {
    let sandbox = sandbox().await;
    sandbox.faults().set(
        Endpoint::MyposToken,
        Fault::HugeBody { bytes: 10_000_000 },
        Schedule::Times(1),
    );
    let response = mypos_token(&sandbox).await.unwrap();
    assert_eq!(response.content_length(), Some(10_000_000));
    assert_eq!(response.bytes().await.unwrap().len(), 10_000_000);
}

#[tokio::test]
async fn an_all_endpoints_rule_hits_every_endpoint_until_cleared() {
    let sandbox = sandbox().await;
    sandbox.faults().set_all(
        Fault::Status {
            status: 500,
            retry_after: None,
        },
        Schedule::Always,
    );
    assert_eq!(mypos_status(&sandbox).await, 500);
    let response = post_form(&sandbox, Endpoint::IyzicoToken, None, &[]).await;
    assert_eq!(response.status(), 500);
    sandbox.faults().clear_all();
    assert_eq!(mypos_status(&sandbox).await, 200);

    sandbox
        .faults()
        .set(Endpoint::MyposRevoke, Fault::Html, Schedule::Always);
    assert_eq!(mypos_status(&sandbox).await, 200);
    sandbox.faults().clear(Endpoint::MyposRevoke);
    let response = post_form(
        &sandbox,
        Endpoint::MyposRevoke,
        Some(&mypos_basic()),
        &[("token", "t")],
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn counters_count_each_endpoint_faulted_or_not() {
    let sandbox = sandbox().await;
    for endpoint in Endpoint::ALL {
        assert_eq!(sandbox.requests(endpoint), 0);
    }
    mypos_token(&sandbox).await.unwrap();
    sandbox
        .faults()
        .set(Endpoint::MyposToken, Fault::Html, Schedule::Times(1));
    mypos_token(&sandbox).await.unwrap();
    post_form(&sandbox, Endpoint::IyzicoToken, None, &[]).await;
    client()
        .get(sandbox.url(Endpoint::VakifbankCommercialAuthorize))
        .send()
        .await
        .unwrap();
    // Unknown paths are not counted.
    client()
        .get(format!("{}/nowhere", sandbox.base_url()))
        .send()
        .await
        .unwrap();

    assert_eq!(sandbox.requests(Endpoint::MyposToken), 2);
    assert_eq!(sandbox.requests(Endpoint::IyzicoToken), 1);
    assert_eq!(sandbox.requests(Endpoint::VakifbankCommercialAuthorize), 1);
    assert_eq!(sandbox.requests(Endpoint::VakifbankAuthorize), 0);
    assert_eq!(sandbox.total_requests(), 4);
    sandbox.reset_counters();
    assert_eq!(sandbox.total_requests(), 0);
}
