//! A payauth token fetch against a bare reqwest POST of the same request,
//! and against the `oauth2` crate's client-credentials exchange, all
//! against the loopback sandbox over one shared reqwest client: what the
//! typed client, the hooks, the body cap and the token parsing cost on top
//! of the HTTP exchange itself. The budget is within 3 % of the
//! bare POST. (`oauth2` is given the same reqwest 0.13 client through its
//! `AsyncHttpClient` closure form, so only the libraries differ.)
//!
//! Samples rotate between the three so drift hits all alike; medians and
//! 90th percentiles of 2,000 each, after 200 warm-up rounds. The last line,
//! `BENCH {json}`, is what `cargo xtask bench` collects.
//!
//! `cargo bench -p payauth-mypos --bench cold_fetch`
//!
//! To profile one of the three alone (instruction counts do not depend on
//! the machine's load), `COLD_FETCH_PROFILE=bare|payauth|oauth2` runs only
//! it, `COLD_FETCH_PROFILE_ROUNDS` times (default 500), and prints nothing:
//! `valgrind --tool=callgrind target/release/deps/cold_fetch-…`, once per
//! variant; the difference in instructions over the rounds is the cost per
//! fetch on top of the bare POST.

use std::time::{Duration, Instant};

use payauth_core::{Environment, Secret};
use payauth_mypos::{Mypos, MyposSettings};
use payauth_sandbox::{Endpoint, Sandbox, defaults};

const SAMPLES: usize = 2_000;
const WARMUP: usize = 200;

/// The `percent`th percentile of `sorted`, in µs.
fn percentile(sorted: &[Duration], percent: usize) -> f64 {
    let index = (sorted.len() - 1) * percent / 100;
    sorted[index].as_secs_f64() * 1e6
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let sandbox = Sandbox::builder().start().await.expect("sandbox");
        let http = payauth_core::http::default_client().expect("client");
        // The baselines' client: bare reqwest (payauth's own transport is
        // hyper with payauth's TLS; the comparison is with what a user
        // would write over reqwest).
        let bare_http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client");
        let settings = MyposSettings::new(
            defaults::MYPOS_CLIENT_ID,
            Secret::new(defaults::MYPOS_CLIENT_SECRET),
            Environment::Custom(sandbox.base_url()),
        );
        let mypos = Mypos::new(&settings, &http).expect("mypos");
        let url = sandbox.url(Endpoint::MyposToken);

        let bare = || async {
            let response = bare_http
                .post(&url)
                .basic_auth(
                    defaults::MYPOS_CLIENT_ID,
                    Some(defaults::MYPOS_CLIENT_SECRET),
                )
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials")
                .send()
                .await
                .expect("bare POST");
            let body: serde_json::Value = response.json().await.expect("bare JSON");
            assert!(body["access_token"].is_string());
        };
        let typed = || async {
            mypos.fetch_token().await.expect("payauth fetch");
        };
        let oauth2_client = oauth2::basic::BasicClient::new(oauth2::ClientId::new(
            defaults::MYPOS_CLIENT_ID.to_owned(),
        ))
        .set_client_secret(oauth2::ClientSecret::new(
            defaults::MYPOS_CLIENT_SECRET.to_owned(),
        ))
        .set_token_uri(oauth2::TokenUrl::new(url.clone()).expect("token url"));
        let via_reqwest = |request: oauth2::HttpRequest| {
            let http = bare_http.clone();
            async move {
                let (parts, body) = request.into_parts();
                let response = http
                    .request(parts.method, parts.uri.to_string())
                    .headers(parts.headers)
                    .body(body)
                    .send()
                    .await?;
                let mut built = http::Response::builder().status(response.status());
                for (name, value) in response.headers() {
                    built = built.header(name, value);
                }
                let body = response.bytes().await?.to_vec();
                Ok::<_, reqwest::Error>(built.body(body).expect("response"))
            }
        };
        let with_oauth2 = || async {
            let token = oauth2_client
                .exchange_client_credentials()
                .request_async(&via_reqwest)
                .await
                .expect("oauth2 exchange");
            assert!(
                !oauth2::TokenResponse::access_token(&token)
                    .secret()
                    .is_empty()
            );
        };

        if let Some((variant, rounds)) = profile_mode() {
            for _ in 0..rounds {
                match variant.as_str() {
                    "bare" => bare().await,
                    "payauth" => typed().await,
                    _ => with_oauth2().await,
                }
            }
            sandbox.shutdown().await;
            return;
        }
        for _ in 0..WARMUP {
            bare().await;
            typed().await;
            with_oauth2().await;
        }
        let mut times: [Vec<Duration>; 3] = std::array::from_fn(|_| Vec::with_capacity(SAMPLES));
        for _ in 0..SAMPLES {
            times[0].push(timed(&bare).await);
            times[1].push(timed(&typed).await);
            times[2].push(timed(&with_oauth2).await);
        }
        let [bare_times, typed_times, oauth2_times] = times;
        report(bare_times, typed_times, oauth2_times);
        sandbox.shutdown().await;
    });
}

/// How long one run of `f` takes.
async fn timed<F: Future<Output = ()>>(f: &impl Fn() -> F) -> Duration {
    let start = Instant::now();
    f().await;
    start.elapsed()
}

/// `COLD_FETCH_PROFILE` and its rounds, when one variant is to run alone.
fn profile_mode() -> Option<(String, usize)> {
    let variant = std::env::var("COLD_FETCH_PROFILE").ok()?;
    let rounds = std::env::var("COLD_FETCH_PROFILE_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    Some((variant, rounds))
}

/// Prints the table, the ratios and the `BENCH` line.
fn report(
    mut bare_times: Vec<Duration>,
    mut typed_times: Vec<Duration>,
    mut oauth2_times: Vec<Duration>,
) {
    bare_times.sort();
    typed_times.sort();
    oauth2_times.sort();
    let (bare_median, typed_median, oauth2_median) = (
        percentile(&bare_times, 50),
        percentile(&typed_times, 50),
        percentile(&oauth2_times, 50),
    );
    let (bare_p90, typed_p90, oauth2_p90) = (
        percentile(&bare_times, 90),
        percentile(&typed_times, 90),
        percentile(&oauth2_times, 90),
    );
    println!(
        "{:<34} {:>10} {:>10}",
        "µs per token fetch (loopback)", "median", "p90"
    );
    println!(
        "{:<34} {bare_median:>10.1} {bare_p90:>10.1}",
        "bare reqwest POST + JSON"
    );
    println!(
        "{:<34} {oauth2_median:>10.1} {oauth2_p90:>10.1}",
        "oauth2 crate exchange"
    );
    println!(
        "{:<34} {typed_median:>10.1} {typed_p90:>10.1}",
        "payauth Mypos::fetch_token"
    );
    println!(
        "ratio payauth / bare: median {:.3}, p90 {:.3}; payauth / oauth2: median {:.3}, p90 {:.3}",
        typed_median / bare_median,
        typed_p90 / bare_p90,
        typed_median / oauth2_median,
        typed_p90 / oauth2_p90
    );
    let row = |baseline: &str, metric: &str, ours: f64, theirs: f64| {
        format!(
            r#"{{"bench":"cold-fetch","subject":"payauth Mypos::fetch_token","baseline":"{baseline}","metric":"{metric}","subject_value":{ours:.2},"baseline_value":{theirs:.2}}}"#
        )
    };
    let rows = [
        row("bare reqwest POST", "µs median", typed_median, bare_median),
        row("bare reqwest POST", "µs p90", typed_p90, bare_p90),
        row(
            "oauth2 crate exchange",
            "µs median",
            typed_median,
            oauth2_median,
        ),
        row("oauth2 crate exchange", "µs p90", typed_p90, oauth2_p90),
    ];
    println!("BENCH [{}]", rows.join(","));
}
