//! Fault injection: what goes wrong, on which endpoint, and when.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::endpoint::Endpoint;

/// What goes wrong with a request. See [`Faults`] for when.
///
/// Faults marked *processed* let the request reach the simulated provider
/// first (so a code is consumed, a refresh token rotated) and spoil the
/// answer on its way back, as a gateway or a network would; the others
/// answer without touching the provider's state.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this HTTP status (500, 502, 503, 429, ...) and an
    /// OAuth-looking JSON body (`temporarily_unavailable` for 429 and 503,
    /// `server_error` otherwise), with `Retry-After: <seconds>` when given.
    Status {
        /// The HTTP status code.
        status: u16,
        /// The `Retry-After` header, in seconds.
        retry_after: Option<u64>,
    },
    /// Wait this long, then answer normally (*processed*).
    Latency(Duration),
    /// Close the connection without an answer: the socket is closed with
    /// `SO_LINGER` 0, so the client sees a TCP reset (or a "connection
    /// closed before message completed") right after sending its request.
    Reset,
    /// Send the status line and headers, with a `Content-Length` for the
    /// full answer, then half the body, then drop the connection: a torn
    /// read (*processed*).
    TornBody,
    /// HTTP 200, `Content-Type: application/json`, and bytes that are not
    /// JSON (nor UTF-8).
    Garbage,
    /// HTTP 502 with an nginx-style `text/html` error page, as a proxy in
    /// front of a provider sends.
    Html,
    /// The real answer cut in half: a complete HTTP message whose JSON
    /// body ends mid-way (*processed*).
    TruncatedJson,
    /// The real answer with fields of the wrong type: `expires_in: true`,
    /// `accessToken: true`, `code: true`, `systemTime: "now"`, `expiredAt:
    /// 0` wherever those fields appear (*processed*). Bodies without them
    /// (redirects, error bodies) pass unchanged.
    WrongTypes,
    /// HTTP 200, `Content-Type: application/json`, a syntactically valid
    /// token response whose `access_token` pads the body to `bytes` bytes
    /// (10 MB makes a good test of a client's size limit).
    HugeBody {
        /// The size of the body in bytes (at least the size of the JSON
        /// around the padding).
        bytes: usize,
    },
}

/// When a [`Fault`] applies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// To every request until cleared.
    Always,
    /// To the next `n` requests, then the rule is gone.
    Times(u32),
    /// To each request with this probability (0.0 to 1.0), drawn from the
    /// sandbox's seeded generator, so a run of requests sent one after the
    /// other is reproducible for a given seed.
    Rate(f64),
}

/// The seed a sandbox uses when none is given.
pub const DEFAULT_SEED: u64 = 0x5EED_CAFE_F00D_D00D;

#[derive(Clone, Debug)]
struct Rule {
    fault: Fault,
    schedule: Schedule,
}

#[derive(Debug)]
struct Rules {
    per_endpoint: [Option<Rule>; Endpoint::COUNT],
    all: Option<Rule>,
    rng: XorShift,
}

#[derive(Debug)]
struct FaultState {
    rules: Mutex<Rules>,
    /// Whether any rule is set: the request path skips the lock when not.
    active: AtomicBool,
    injected: [AtomicU64; Endpoint::COUNT],
}

/// The fault-injection handle of a running sandbox (cheap to clone; every
/// clone controls the same sandbox).
///
/// One rule per endpoint plus one rule for all endpoints. For each request
/// the endpoint's own rule is tried first, then the all-endpoints rule;
/// the first that fires decides. Faults apply to the nine provider routes
/// only, and every request is counted by
/// [`RunningSandbox::requests`](crate::RunningSandbox::requests) whether it
/// is faulted or not.
///
/// ```no_run
/// # async fn demo(sandbox: payauth_sandbox::RunningSandbox) {
/// use payauth_sandbox::{Endpoint, Fault, Schedule};
///
/// // The next two myPOS token requests get a 503 with Retry-After: 1.
/// sandbox.faults().set(
///     Endpoint::MyposToken,
///     Fault::Status { status: 503, retry_after: Some(1) },
///     Schedule::Times(2),
/// );
/// // A tenth of all requests fail with a 500, reproducibly.
/// sandbox.faults().set_all(
///     Fault::Status { status: 500, retry_after: None },
///     Schedule::Rate(0.1),
/// );
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Faults {
    state: Arc<FaultState>,
}

impl Faults {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            state: Arc::new(FaultState {
                rules: Mutex::new(Rules {
                    per_endpoint: Default::default(),
                    all: None,
                    rng: XorShift::new(seed),
                }),
                active: AtomicBool::new(false),
                injected: Default::default(),
            }),
        }
    }

    fn rules(&self) -> MutexGuard<'_, Rules> {
        self.state
            .rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn refresh_active(&self, rules: &Rules) {
        let active = rules.all.is_some() || rules.per_endpoint.iter().any(Option::is_some);
        self.state.active.store(active, Ordering::Release);
    }

    /// Sets the rule of one endpoint, replacing its previous one.
    pub fn set(&self, endpoint: Endpoint, fault: Fault, schedule: Schedule) {
        let mut rules = self.rules();
        rules.per_endpoint[endpoint.index()] = Rule::new(fault, schedule);
        self.refresh_active(&rules);
    }

    /// Sets the rule that applies to every endpoint (after each endpoint's
    /// own rule), replacing the previous one.
    pub fn set_all(&self, fault: Fault, schedule: Schedule) {
        let mut rules = self.rules();
        rules.all = Rule::new(fault, schedule);
        self.refresh_active(&rules);
    }

    /// Removes the rule of one endpoint.
    pub fn clear(&self, endpoint: Endpoint) {
        let mut rules = self.rules();
        rules.per_endpoint[endpoint.index()] = None;
        self.refresh_active(&rules);
    }

    /// Removes every rule, the all-endpoints one included.
    pub fn clear_all(&self) {
        let mut rules = self.rules();
        rules.per_endpoint = Default::default();
        rules.all = None;
        self.refresh_active(&rules);
    }

    /// Restarts the generator behind [`Schedule::Rate`] from `seed`.
    pub fn reseed(&self, seed: u64) {
        self.rules().rng = XorShift::new(seed);
    }

    /// How many requests to `endpoint` a fault was injected into.
    #[must_use]
    pub fn injected(&self, endpoint: Endpoint) -> u64 {
        self.state.injected[endpoint.index()].load(Ordering::Relaxed)
    }

    /// The fault for this request to `endpoint`, if one fires.
    pub(crate) fn pick(&self, endpoint: Endpoint) -> Option<Fault> {
        if !self.state.active.load(Ordering::Acquire) {
            return None;
        }
        let mut rules = self.rules();
        let Rules {
            per_endpoint,
            all,
            rng,
        } = &mut *rules;
        let fault = fire(&mut per_endpoint[endpoint.index()], rng).or_else(|| fire(all, rng))?;
        self.refresh_active(&rules);
        self.state.injected[endpoint.index()].fetch_add(1, Ordering::Relaxed);
        Some(fault)
    }
}

impl Rule {
    fn new(fault: Fault, schedule: Schedule) -> Option<Self> {
        match schedule {
            Schedule::Times(0) => None,
            Schedule::Rate(fraction) if fraction.is_nan() || fraction <= 0.0 => None,
            _ => Some(Self { fault, schedule }),
        }
    }
}

/// Whether `slot`'s rule fires for one request; a used-up rule is removed.
fn fire(slot: &mut Option<Rule>, rng: &mut XorShift) -> Option<Fault> {
    let rule = slot.as_mut()?;
    match &mut rule.schedule {
        Schedule::Always => Some(rule.fault.clone()),
        Schedule::Rate(fraction) => (rng.next_unit() < *fraction).then(|| rule.fault.clone()),
        Schedule::Times(n) => {
            *n = n.saturating_sub(1);
            if *n == 0 {
                slot.take().map(|r| r.fault)
            } else {
                Some(rule.fault.clone())
            }
        }
    }
}

/// xorshift64*: small, fast and reproducible; not for secrets.
#[derive(Clone, Debug)]
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so nearby seeds give unrelated streams and
        // the state is never zero.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(if z == 0 { DEFAULT_SEED } else { z })
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `[0, 1)`.
    pub(crate) fn next_unit(&mut self) -> f64 {
        let high = u32::try_from(self.next_u64() >> 32).unwrap_or(u32::MAX);
        f64::from(high) / 4_294_967_296.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_reproducible_and_spreads_over_the_unit_interval() {
        let mut a = XorShift::new(7);
        let mut b = XorShift::new(7);
        let draws: Vec<f64> = (0..1000).map(|_| a.next_unit()).collect();
        assert!(draws.iter().all(|&d| (0.0..1.0).contains(&d)));
        assert!(
            draws
                .iter()
                .zip((0..1000).map(|_| b.next_unit()))
                .all(|(x, y)| x.to_bits() == y.to_bits())
        );
        let below_half = draws.iter().filter(|&&d| d < 0.5).count();
        assert!((400..600).contains(&below_half), "{below_half}");
    }

    #[test]
    fn a_times_rule_fires_n_times_then_disappears() {
        let faults = Faults::new(1);
        faults.set(Endpoint::MyposToken, Fault::Reset, Schedule::Times(2));
        assert_eq!(faults.pick(Endpoint::MyposToken), Some(Fault::Reset));
        assert_eq!(faults.pick(Endpoint::MyposRevoke), None);
        assert_eq!(faults.pick(Endpoint::MyposToken), Some(Fault::Reset));
        assert_eq!(faults.pick(Endpoint::MyposToken), None);
        assert!(!faults.state.active.load(Ordering::Relaxed));
        assert_eq!(faults.injected(Endpoint::MyposToken), 2);
    }

    #[test]
    fn an_endpoint_rule_is_tried_before_the_all_endpoints_rule() {
        let faults = Faults::new(1);
        faults.set_all(Fault::Html, Schedule::Always);
        faults.set(Endpoint::IyzicoToken, Fault::Garbage, Schedule::Times(1));
        assert_eq!(faults.pick(Endpoint::IyzicoToken), Some(Fault::Garbage));
        assert_eq!(faults.pick(Endpoint::IyzicoToken), Some(Fault::Html));
        assert_eq!(faults.pick(Endpoint::MyposToken), Some(Fault::Html));
        faults.clear_all();
        assert_eq!(faults.pick(Endpoint::MyposToken), None);
    }

    #[test]
    fn rates_of_zero_and_one_never_and_always_fire() {
        let faults = Faults::new(1);
        faults.set(Endpoint::MyposToken, Fault::Reset, Schedule::Rate(0.0));
        faults.set(Endpoint::MyposRevoke, Fault::Reset, Schedule::Rate(1.0));
        for _ in 0..100 {
            assert_eq!(faults.pick(Endpoint::MyposToken), None);
            assert_eq!(faults.pick(Endpoint::MyposRevoke), Some(Fault::Reset));
        }
    }
}
