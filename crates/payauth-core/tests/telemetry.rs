//! What a `TokenCache` tells operators: the `payauth.fetch` span naming
//! the provider and flow around every event of a flight and, with the
//! `metrics` feature, the metrics the crate docs list. Each test runs on a
//! current-thread runtime, so the flight's task runs on the test's thread
//! and sees its local recorder and subscriber.

// Without the feature, only the span tests run; the fake's hang and gate
// serve the metrics tests.
#![cfg_attr(not(feature = "metrics"), allow(dead_code))]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use payauth_core::{
    AccessToken, BoxFuture, Error, ErrorKind, Issued, ManualClock, MemoryStore, Secret, TokenCache,
    TokenCacheBuilder, TokenSource,
};
use tokio::sync::Semaphore;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

const LIFETIME: Duration = Duration::from_secs(100);
/// Every secret, token and store key here carries it.
const MARK: &str = "TELEMETRYLEAK";

/// What the fake answers next.
enum Next {
    Token,
    Fail(ErrorKind),
    Hang,
}

/// A source labelled `fakepay` and a flow of the test's choosing, holding
/// a sentinel client secret; tokens and refresh tokens carry the mark.
struct Fake {
    clock: Arc<ManualClock>,
    flow: &'static str,
    client_secret: Secret,
    calls: AtomicUsize,
    script: Mutex<VecDeque<Next>>,
    gate: Option<Arc<Semaphore>>,
}

impl Fake {
    fn new(clock: &Arc<ManualClock>, flow: &'static str, script: Vec<Next>) -> Self {
        Self {
            clock: Arc::clone(clock),
            flow,
            client_secret: Secret::new(format!("{MARK}-client-secret")),
            calls: AtomicUsize::new(0),
            script: Mutex::new(script.into()),
            gate: None,
        }
    }

    fn gated(self, gate: &Arc<Semaphore>) -> Self {
        Self {
            gate: Some(Arc::clone(gate)),
            ..self
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl TokenSource for Fake {
    fn fetch<'a>(
        &'a self,
        _previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(gate) = &self.gate {
                gate.acquire().await.expect("gate open").forget();
            }
            let next = self.script.lock().unwrap().pop_front();
            match next.unwrap_or(Next::Token) {
                Next::Token => {}
                Next::Fail(kind) => {
                    let status = if kind == ErrorKind::Unavailable {
                        503
                    } else {
                        400
                    };
                    return Err(Error::new(kind).with_status(status));
                }
                Next::Hang => std::future::pending().await,
            }
            let secret = self.client_secret.expose_secret();
            let refresh = Secret::new(format!("{secret}-refresh-{n}"));
            let issued = Issued::now(self.clock.as_ref());
            Ok(AccessToken::new(
                Secret::new(format!("{MARK}-token-{n}")),
                "Bearer",
                issued,
                LIFETIME,
            )?
            .with_refresh_token(Some(refresh)))
        })
    }

    fn name(&self) -> &'static str {
        "fake"
    }

    fn provider(&self) -> &'static str {
        "fakepay"
    }

    fn flow(&self) -> &str {
        self.flow
    }
}

fn builder(source: &Arc<Fake>, clock: &Arc<ManualClock>) -> TokenCacheBuilder {
    TokenCache::builder(Arc::clone(source))
        .clock(Arc::clone(clock) as _)
        .refresh_margin(Duration::from_secs(30))
        .jitter(0.0)
}

/// Runs `future` on a current-thread runtime with paused time (a hung
/// fetch meets its timeout at once).
fn run<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(future)
}

/// The fields of a span or event, `name k=v k=v`.
struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        write!(self.0, " {}={value:?}", field.name()).unwrap();
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        write!(self.0, " {}={value}", field.name()).unwrap();
    }
}

/// An event's fields and those of every span it was recorded in.
type Traced = (String, Vec<String>);

thread_local! {
    /// What this thread's test recorded.
    static EVENTS: RefCell<Vec<Traced>> = const { RefCell::new(Vec::new()) };
}

/// Records every event into [`EVENTS`] of its thread. Global (scoped
/// subscribers in parallel tests lose events to tracing's interest cache).
struct Spans;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields(attrs.metadata().name().to_owned());
        attrs.record(&mut fields);
        ctx.span(id).unwrap().extensions_mut().insert(fields);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let spans = ctx
            .event_scope(event)
            .into_iter()
            .flatten()
            .map(|span| {
                span.extensions()
                    .get::<Fields>()
                    .map(|fields| fields.0.clone())
                    .unwrap_or_default()
            })
            .collect();
        EVENTS.with_borrow_mut(|events| events.push((fields.0, spans)));
    }
}

/// Runs `future` with every event and span recorded.
fn traced<F: Future>(future: F) -> (F::Output, Vec<Traced>) {
    static SUBSCRIBER: Once = Once::new();
    SUBSCRIBER.call_once(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Spans))
            .unwrap();
    });
    EVENTS.with_borrow_mut(Vec::clear);
    let output = run(future);
    (output, EVENTS.with_borrow_mut(std::mem::take))
}

/// A fetch that fails (transient), is retried and succeeds, then a fetch
/// refused for good: every event is in the flight's span.
async fn fetch_retry_and_refusal(flow: &'static str, store_key: &str) {
    let clock = Arc::new(ManualClock::new());
    let script = vec![
        Next::Fail(ErrorKind::Unavailable),
        Next::Token,
        Next::Fail(ErrorKind::InvalidClient),
    ];
    let source = Arc::new(Fake::new(&clock, flow, script));
    let cache = builder(&source, &clock)
        .store(Arc::new(MemoryStore::new()), store_key)
        .retries(1, Duration::from_millis(10))
        .build();
    cache.token().await.unwrap();
    clock.advance(LIFETIME);
    assert_eq!(
        cache.token().await.unwrap_err().kind(),
        ErrorKind::InvalidClient
    );
}

#[test]
fn every_event_of_a_flight_is_in_a_span_naming_its_provider_and_flow() {
    let ((), events) = traced(fetch_retry_and_refusal("spans", "k"));
    let messages: Vec<&str> = events.iter().map(|(fields, _)| fields.as_str()).collect();
    for expected in ["retrying", "token fetched", "token fetch failed"] {
        assert!(
            messages.iter().any(|m| m.contains(expected)),
            "no {expected:?} event in {messages:?}"
        );
    }
    for (fields, spans) in &events {
        assert_eq!(
            spans,
            &["payauth.fetch provider=fakepay flow=spans"],
            "event {fields}"
        );
    }
}

#[test]
fn no_span_field_carries_a_secret_a_token_or_the_store_key() {
    let ((), events) = traced(fetch_retry_and_refusal("sentinel", &format!("{MARK}-key")));
    assert!(!events.is_empty());
    for (_, spans) in &events {
        for span in spans {
            assert!(!span.contains(MARK), "span {span}");
        }
    }
}

#[cfg(feature = "metrics")]
mod metrics_emitted {
    use metrics::Key;
    use metrics_util::MetricKind;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    /// Everything recorded while a test ran.
    struct Recorded(Vec<(MetricKind, Key, DebugValue)>);

    /// Runs `future` with a recorder of its own.
    fn recorded(future: impl Future<Output = ()>) -> Recorded {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || run(future));
        Recorded(
            snapshotter
                .snapshot()
                .into_vec()
                .into_iter()
                .map(|(key, _, _, value)| {
                    let (kind, key) = key.into_parts();
                    (kind, key, value)
                })
                .collect(),
        )
    }

    impl Recorded {
        /// The value under `name` for provider `fakepay`, `flow` and the
        /// `extra` labels (in any order).
        fn value(&self, name: &str, flow: &str, extra: &[(&str, &str)]) -> Option<&DebugValue> {
            let mut wanted: Vec<(&str, &str)> = [("provider", "fakepay"), ("flow", flow)]
                .into_iter()
                .chain(extra.iter().copied())
                .collect();
            wanted.sort_unstable();
            self.0.iter().find_map(|(_, key, value)| {
                let mut labels: Vec<(&str, &str)> =
                    key.labels().map(|l| (l.key(), l.value())).collect();
                labels.sort_unstable();
                (key.name() == name && labels == wanted).then_some(value)
            })
        }

        fn counter(&self, name: &str, flow: &str, extra: &[(&str, &str)]) -> u64 {
            match self.value(name, flow, extra) {
                None => 0,
                Some(DebugValue::Counter(n)) => *n,
                Some(other) => panic!("{name} is not a counter: {other:?}"),
            }
        }

        fn gauge(&self, name: &str, flow: &str) -> Option<f64> {
            match self.value(name, flow, &[])? {
                DebugValue::Gauge(value) => Some(value.into_inner()),
                other => panic!("{name} is not a gauge: {other:?}"),
            }
        }

        fn histogram(&self, name: &str, flow: &str) -> Vec<f64> {
            match self.value(name, flow, &[]) {
                None => Vec::new(),
                Some(DebugValue::Histogram(values)) => {
                    values.iter().map(|v| v.into_inner()).collect()
                }
                Some(other) => panic!("{name} is not a histogram: {other:?}"),
            }
        }

        fn names_with(&self, flow: &str) -> Vec<&str> {
            self.0
                .iter()
                .filter(|(_, key, _)| key.labels().any(|l| l.key() == "flow" && l.value() == flow))
                .map(|(_, key, _)| key.name())
                .collect()
        }
    }

    const REQUESTS: &str = "payauth_token_requests_total";
    const FETCHES: &str = "payauth_fetches_total";
    const FAILURES: &str = "payauth_fetch_failures_total";
    const DURATION: &str = "payauth_fetch_duration_seconds";
    const REMAINING: &str = "payauth_token_remaining_seconds";

    #[test]
    fn a_fetch_is_counted_and_timed_and_sets_the_tokens_remaining_lifetime() {
        let clock = Arc::new(ManualClock::new());
        let metrics = recorded(async {
            let source = Arc::new(Fake::new(&clock, "fetch", vec![]));
            let cache = builder(&source, &clock).build();
            cache.token().await.unwrap();
            clock.advance(Duration::from_secs(10));
            cache.token().await.unwrap();
        });
        assert_eq!(metrics.counter(FETCHES, "fetch", &[("outcome", "ok")]), 1);
        assert_eq!(
            metrics.counter(FETCHES, "fetch", &[("outcome", "error")]),
            0
        );
        assert_eq!(metrics.histogram(DURATION, "fetch").len(), 1);
        assert!(metrics.histogram(DURATION, "fetch")[0] >= 0.0);
        // Set when the token was published, 100 s before its expiry.
        assert_eq!(metrics.gauge(REMAINING, "fetch"), Some(100.0));
        assert_eq!(metrics.counter(REQUESTS, "fetch", &[("served", "wait")]), 1);
        assert_eq!(
            metrics.counter(REQUESTS, "fetch", &[("served", "cache")]),
            1
        );
        assert!(!metrics.names_with("fetch").contains(&FAILURES));
    }

    #[test]
    fn a_failure_is_counted_by_its_kind_and_answers_from_the_backoff_apart() {
        let clock = Arc::new(ManualClock::new());
        let metrics = recorded(async {
            let script = vec![Next::Fail(ErrorKind::InvalidClient)];
            let source = Arc::new(Fake::new(&clock, "refused", script));
            let cache = builder(&source, &clock).build();
            cache.token().await.unwrap_err();
            cache.token().await.unwrap_err();
            assert_eq!(source.calls(), 1);
        });
        let fetches = |outcome| metrics.counter(FETCHES, "refused", &[("outcome", outcome)]);
        assert_eq!((fetches("ok"), fetches("error")), (0, 1));
        let failures = |kind| metrics.counter(FAILURES, "refused", &[("kind", kind)]);
        assert_eq!(
            (failures("invalid_client"), failures("unavailable")),
            (1, 0)
        );
        let served = |how| metrics.counter(REQUESTS, "refused", &[("served", how)]);
        assert_eq!(
            (served("wait"), served("backoff"), served("cache")),
            (1, 1, 0)
        );
        assert_eq!(metrics.histogram(DURATION, "refused").len(), 1);
    }

    #[test]
    fn a_retried_transient_failure_counts_both_calls_and_one_failure() {
        let clock = Arc::new(ManualClock::new());
        let metrics = recorded(async {
            let script = vec![Next::Fail(ErrorKind::Unavailable)];
            let source = Arc::new(Fake::new(&clock, "retried", script));
            let cache = builder(&source, &clock)
                .retries(1, Duration::from_millis(10))
                .build();
            cache.token().await.unwrap();
        });
        let fetches = |outcome| metrics.counter(FETCHES, "retried", &[("outcome", outcome)]);
        assert_eq!((fetches("ok"), fetches("error")), (1, 1));
        assert_eq!(
            metrics.counter(FAILURES, "retried", &[("kind", "unavailable")]),
            1
        );
        assert_eq!(metrics.histogram(DURATION, "retried").len(), 2);
    }

    #[test]
    fn callers_behind_a_flight_count_as_waiting_and_a_still_valid_token_as_served_from_cache() {
        let clock = Arc::new(ManualClock::new());
        let metrics = recorded(async {
            let gate = Arc::new(Semaphore::new(0));
            let source = Arc::new(Fake::new(&clock, "waits", vec![]).gated(&gate));
            let cache = builder(&source, &clock).build();
            let callers: Vec<_> = (0..3)
                .map(|_| {
                    let cache = cache.clone();
                    tokio::spawn(async move { cache.token().await })
                })
                .collect();
            while source.calls() < 1 {
                tokio::task::yield_now().await;
            }
            gate.add_permits(1);
            for caller in callers {
                caller.await.unwrap().unwrap();
            }
            // Past the refresh instant, before expiry: served at once while
            // the refresh runs.
            clock.advance(Duration::from_secs(80));
            let stale = cache.token().await.unwrap();
            gate.add_permits(1);
            while cache.peek().is_some_and(|t| t.secret() == stale.secret()) {
                tokio::task::yield_now().await;
            }
        });
        let served = |how| metrics.counter(REQUESTS, "waits", &[("served", how)]);
        assert_eq!((served("wait"), served("cache")), (3, 1));
        assert_eq!(metrics.counter(FETCHES, "waits", &[("outcome", "ok")]), 2);
    }

    #[test]
    fn a_flight_cut_short_by_the_fetch_timeout_counts_a_cancelled_call_and_a_timeout() {
        let clock = Arc::new(ManualClock::new());
        let metrics = recorded(async {
            let source = Arc::new(Fake::new(&clock, "hung", vec![Next::Hang]));
            let cache = builder(&source, &clock)
                .fetch_timeout(payauth_core::MIN_FETCH_TIMEOUT)
                .build();
            let error = cache.token().await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Timeout);
        });
        let fetches = |outcome| metrics.counter(FETCHES, "hung", &[("outcome", outcome)]);
        assert_eq!((fetches("cancelled"), fetches("error")), (1, 0));
        assert_eq!(metrics.counter(FAILURES, "hung", &[("kind", "timeout")]), 1);
    }

    #[test]
    fn a_token_the_cache_drops_leaves_a_remaining_lifetime_of_zero() {
        let clock = Arc::new(ManualClock::new());
        let metrics = recorded(async {
            let source = Arc::new(Fake::new(&clock, "dropped", vec![]));
            let cache = builder(&source, &clock).build();
            let token = cache.token().await.unwrap();
            assert!(cache.invalidate(&token));
        });
        assert_eq!(metrics.gauge(REMAINING, "dropped"), Some(0.0));
    }

    #[test]
    fn no_metric_label_carries_a_secret_a_token_or_the_store_key() {
        let store_key = format!("{MARK}-key");
        let metrics = recorded(fetch_retry_and_refusal("sentinel", &store_key));
        assert!(metrics.names_with("sentinel").contains(&FAILURES));
        for (_, key, _) in &metrics.0 {
            assert!(!format!("{key:?}").contains(MARK), "{key:?}");
        }
    }

    #[cfg(feature = "subjects")]
    #[test]
    fn many_customers_record_one_series_per_provider_and_flow_and_never_their_keys() {
        let metrics = recorded(async {
            let clock = Arc::new(ManualClock::new());
            let factory_clock = Arc::clone(&clock);
            let customers = payauth_core::subjects::Subjects::builder(move |_: &String| {
                builder(
                    &Arc::new(Fake::new(&factory_clock, "per_customer", vec![])),
                    &factory_clock,
                )
                .build()
            })
            .capacity(16)
            .build();
            for i in 0..100 {
                customers
                    .token(&format!("{MARK}-customer-{i}"))
                    .await
                    .unwrap();
            }
        });
        assert_eq!(
            metrics.counter(FETCHES, "per_customer", &[("outcome", "ok")]),
            100
        );
        let series = metrics
            .0
            .iter()
            .filter(|(_, key, _)| key.name() == FETCHES)
            .count();
        assert_eq!(series, 1, "one series, whatever the number of customers");
        for (_, key, _) in &metrics.0 {
            assert!(!format!("{key:?}").contains(MARK), "{key:?}");
        }
    }
}
