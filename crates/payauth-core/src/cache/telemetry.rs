//! What a cache tells operators, in one place: the tracing span of every
//! flight (provider and flow) and, with the `metrics` feature, the metrics
//! listed in the [crate docs](crate#observability). Without the feature
//! every recording here is an empty inline function.
//!
//! Labels are the source's [`provider`](TokenSource::provider) and
//! [`flow`](TokenSource::flow), an outcome or an [`ErrorKind`] name:
//! never a secret, a client id or a store key.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use crate::error::Error;
#[cfg(feature = "metrics")]
use crate::error::ErrorKind;
use crate::source::TokenSource;
use crate::token::AccessToken;

/// The metric names, as documented in the crate docs.
#[cfg(feature = "metrics")]
mod names {
    pub(super) const REQUESTS: &str = "payauth_token_requests_total";
    pub(super) const FETCHES: &str = "payauth_fetches_total";
    pub(super) const FAILURES: &str = "payauth_fetch_failures_total";
    pub(super) const DURATION: &str = "payauth_fetch_duration_seconds";
    pub(super) const REMAINING: &str = "payauth_token_remaining_seconds";
    pub(super) const LEASE_WAITS: &str = "payauth_fleet_lease_waits_total";
    pub(super) const TAKEOVERS: &str = "payauth_fleet_lease_takeovers_total";
}

/// How a caller of `token()` was answered.
#[derive(Clone, Copy)]
pub(super) enum Served {
    /// A valid cached token, without waiting.
    Cache,
    /// After waiting for a fetch (its own or another caller's).
    Wait,
    /// The failure remembered for the backoff, without fetching.
    Backoff,
}

/// One cache's labels and its pre-registered request counters (the fast
/// path's only cost: one counter increment, with the feature).
pub(super) struct Telemetry {
    provider: Arc<str>,
    flow: Arc<str>,
    #[cfg(feature = "metrics")]
    served: [metrics::Counter; 3],
}

// Without the feature, the recordings use nothing of `self`.
#[cfg_attr(not(feature = "metrics"), allow(clippy::unused_self))]
impl Telemetry {
    /// Reads the source's labels once; with the feature, registers the
    /// request counters with the recorder installed now.
    pub(super) fn new(source: &dyn TokenSource) -> Self {
        let provider: Arc<str> = Arc::from(source.provider());
        let flow: Arc<str> = Arc::from(source.flow());
        #[cfg(feature = "metrics")]
        let served = ["cache", "wait", "backoff"].map(|served| {
            metrics::counter!(names::REQUESTS, "provider" => Arc::clone(&provider), "flow" => Arc::clone(&flow), "served" => served)
        });
        Self {
            provider,
            flow,
            #[cfg(feature = "metrics")]
            served,
        }
    }

    /// The span every event of a flight is recorded in.
    pub(super) fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "payauth.fetch",
            provider = &*self.provider,
            flow = &*self.flow
        )
    }

    /// A caller was answered.
    #[inline]
    pub(super) fn served(&self, how: Served) {
        #[cfg(feature = "metrics")]
        self.served[how as usize].increment(1);
        #[cfg(not(feature = "metrics"))]
        let _ = how;
    }

    /// A call to the provider starts; record its end with
    /// [`Attempt::ended`] (dropped before: it was cut short).
    pub(super) fn attempt(&self) -> Attempt<'_> {
        Attempt {
            #[cfg(feature = "metrics")]
            telemetry: self,
            #[cfg(feature = "metrics")]
            started: Instant::now(),
            #[cfg(feature = "metrics")]
            ended: false,
            _telemetry: PhantomData,
        }
    }

    /// A flight outlived the fetch timeout.
    pub(super) fn timed_out(&self) {
        #[cfg(feature = "metrics")]
        self.failure(ErrorKind::Timeout);
    }

    /// `token` is the cached one from `now()` on; `None`: nothing is.
    pub(super) fn cached(&self, token: Option<&AccessToken>, now: impl FnOnce() -> Instant) {
        #[cfg(feature = "metrics")]
        metrics::gauge!(names::REMAINING, self.labels(None)).set(token.map_or(0.0, |token| {
            token
                .expires_at()
                .saturating_duration_since(now())
                .as_secs_f64()
        }));
        #[cfg(not(feature = "metrics"))]
        let _ = (token, now);
    }

    /// Another replica held the fleet's fetch lease: this one waits.
    pub(super) fn lease_waited(&self) {
        #[cfg(feature = "metrics")]
        metrics::counter!(names::LEASE_WAITS, self.labels(None)).increment(1);
    }

    /// This replica took the lease after waiting on another's, which
    /// ended (released, or expired) without storing a token.
    pub(super) fn lease_taken_over(&self) {
        #[cfg(feature = "metrics")]
        metrics::counter!(names::TAKEOVERS, self.labels(None)).increment(1);
    }

    /// The cache's labels, and `extra` if any.
    #[cfg(feature = "metrics")]
    fn labels(&self, extra: Option<(&'static str, &'static str)>) -> Vec<metrics::Label> {
        let mut labels = Vec::with_capacity(3);
        labels.push(metrics::Label::new("provider", Arc::clone(&self.provider)));
        labels.push(metrics::Label::new("flow", Arc::clone(&self.flow)));
        labels.extend(extra.map(|(key, value)| metrics::Label::new(key, value)));
        labels
    }

    #[cfg(feature = "metrics")]
    fn failure(&self, kind: ErrorKind) {
        metrics::counter!(
            names::FAILURES,
            self.labels(Some(("kind", kind_label(kind))))
        )
        .increment(1);
    }

    #[cfg(feature = "metrics")]
    fn fetched(&self, outcome: &'static str) {
        metrics::counter!(names::FETCHES, self.labels(Some(("outcome", outcome)))).increment(1);
    }
}

/// One call to the provider, timed (with the feature; else nothing).
pub(super) struct Attempt<'a> {
    #[cfg(feature = "metrics")]
    telemetry: &'a Telemetry,
    #[cfg(feature = "metrics")]
    started: Instant,
    #[cfg(feature = "metrics")]
    ended: bool,
    _telemetry: PhantomData<&'a Telemetry>,
}

impl Attempt<'_> {
    /// The provider answered (`Ok` or `Err`).
    #[cfg_attr(not(feature = "metrics"), allow(clippy::unused_self))]
    pub(super) fn ended<T>(#[allow(unused_mut)] mut self, outcome: &Result<T, Error>) {
        #[cfg(feature = "metrics")]
        {
            self.ended = true;
            let telemetry = self.telemetry;
            metrics::histogram!(names::DURATION, telemetry.labels(None))
                .record(self.started.elapsed().as_secs_f64());
            match outcome {
                Ok(_) => telemetry.fetched("ok"),
                Err(error) => {
                    telemetry.fetched("error");
                    telemetry.failure(error.kind());
                }
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = outcome;
    }
}

#[cfg(feature = "metrics")]
impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.telemetry.fetched("cancelled");
        }
    }
}

/// The `kind` label of `kind`: its snake-case name.
#[cfg(feature = "metrics")]
fn kind_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest => "invalid_request",
        ErrorKind::InvalidClient => "invalid_client",
        ErrorKind::InvalidGrant => "invalid_grant",
        ErrorKind::UnauthorizedClient => "unauthorized_client",
        ErrorKind::UnsupportedGrantType => "unsupported_grant_type",
        ErrorKind::InvalidScope => "invalid_scope",
        ErrorKind::AccessDenied => "access_denied",
        ErrorKind::Refused => "refused",
        ErrorKind::RateLimited => "rate_limited",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Transport => "transport",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Certificate => "certificate",
        ErrorKind::Proxy => "proxy",
        ErrorKind::Malformed => "malformed",
        ErrorKind::Provider => "provider",
        ErrorKind::Store => "store",
        ErrorKind::Config => "config",
    }
}
