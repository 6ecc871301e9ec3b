//! A payauth token fetch against a bare reqwest POST of the same request,
//! both against the loopback sandbox over one shared client: what the
//! typed client, the hooks, the body cap and the token parsing cost on top
//! of the HTTP exchange itself. The design budget is within 5 %.
//!
//! Samples alternate between the two so drift hits both alike; medians and
//! 90th percentiles of 2,000 each, after 200 warm-up rounds. The last line,
//! `BENCH {json}`, is what `cargo xtask bench` collects.
//!
//! `cargo bench -p payauth-mypos --bench cold_fetch`

use std::time::{Duration, Instant};

use payauth_core::{Environment, Secret};
use payauth_mypos::{Mypos, MyposConfig};
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
        let config = MyposConfig::new(
            defaults::MYPOS_CLIENT_ID,
            Secret::new(defaults::MYPOS_CLIENT_SECRET),
            Environment::Custom(sandbox.base_url()),
        );
        let mypos = Mypos::new(config, http.clone()).expect("mypos");
        let url = sandbox.url(Endpoint::MyposToken);

        let bare = || async {
            let response = http
                .post(&url)
                .basic_auth(defaults::MYPOS_CLIENT_ID, Some(defaults::MYPOS_CLIENT_SECRET))
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

        for _ in 0..WARMUP {
            bare().await;
            typed().await;
        }
        let mut bare_times = Vec::with_capacity(SAMPLES);
        let mut typed_times = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let start = Instant::now();
            bare().await;
            bare_times.push(start.elapsed());
            let start = Instant::now();
            typed().await;
            typed_times.push(start.elapsed());
        }
        bare_times.sort();
        typed_times.sort();
        let (bare_median, typed_median) = (percentile(&bare_times, 50), percentile(&typed_times, 50));
        let (bare_p90, typed_p90) = (percentile(&bare_times, 90), percentile(&typed_times, 90));
        println!("{:<34} {:>10} {:>10}", "µs per token fetch (loopback)", "median", "p90");
        println!("{:<34} {bare_median:>10.1} {bare_p90:>10.1}", "bare reqwest POST + JSON");
        println!("{:<34} {typed_median:>10.1} {typed_p90:>10.1}", "payauth Mypos::fetch_token");
        println!(
            "ratio payauth / bare: median {:.3}, p90 {:.3}",
            typed_median / bare_median,
            typed_p90 / bare_p90
        );
        println!(
            r#"BENCH [{{"bench":"cold-fetch","subject":"payauth Mypos::fetch_token","baseline":"bare reqwest POST","metric":"µs median","subject_value":{typed_median:.2},"baseline_value":{bare_median:.2}}},{{"bench":"cold-fetch","subject":"payauth Mypos::fetch_token","baseline":"bare reqwest POST","metric":"µs p90","subject_value":{typed_p90:.2},"baseline_value":{bare_p90:.2}}}]"#
        );
        sandbox.shutdown().await;
    });
}
