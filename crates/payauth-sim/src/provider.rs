//! The provider model and the [`TokenSource`] in front of it.
//!
//! The provider issues tokens `at-N` (refresh tokens `rt-N`), rotates a
//! refresh token on every use (a used one is refused with
//! `invalid_grant`), takes single-use codes from logins, rate-limits, and
//! refuses revoked credentials. In front of it, every fault of the
//! sandbox's fault model (`payauth-sandbox/src/fault.rs`) and a few more
//! (lifetimes of 0, 1 and `u64::MAX`, slow and hung answers, panics), each
//! turned into the `Error` the provider crates make of it
//! ([`payauth_core::http::classify`], as `from_generated` does).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use payauth_core::oauth2::{TokenFields, read_token};
use payauth_core::token::parse_expires_in;
use payauth_core::wire::NumberOrString;
use payauth_core::{AccessToken, BoxFuture, Error, ErrorKind, Issued, Secret, TokenSource, http};
use serde_json::{Value, json};

use crate::ctx::{Ctx, lock};
use crate::{clock, panics};

/// The lifetime a provider crate assumes when `expires_in` is missing.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// The provider crates' HTTP timeout (`http::client_builder`).
pub(crate) const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// The rate limit: this many requests per window, then 429.
const RATE_LIMIT: usize = 30;
/// See [`RATE_LIMIT`].
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(10);
/// The longest sane `Retry-After` the model sends, in seconds.
pub(crate) const MAX_RETRY_AFTER_S: u64 = 60;

/// Which grant a replica's source uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// Client credentials, no refresh token (myPOS).
    ClientCredentials,
    /// Refresh when it can, else log in with its own credentials; a
    /// refused refresh token falls back to the login (iyzico terminal).
    RefreshOrLogin,
    /// Refresh only; without a refresh token the customer must log in
    /// (`payauth login` saves a pair to the store) (VakıfBank).
    RefreshOnly,
}

/// How often each fault of [`Answer::draw`] is drawn, by its number there;
/// a hang (13) and a panic (14) come last so a caller that never hangs can
/// leave them out.
const FAULT_WEIGHTS: [(u32, u8); 15] = [
    (9, 0),
    (4, 1),
    (4, 2),
    (4, 3),
    (2, 4),
    (2, 5),
    (2, 6),
    (2, 7),
    (2, 8),
    (1, 9),
    (6, 10),
    (4, 11),
    (5, 12),
    (1, 13),
    (1, 14),
];

/// What the network and gateways do to one request.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Normal,
    /// A 5xx or 429 with an OAuth-looking body, maybe `Retry-After`.
    Status(u16, Option<u64>),
    Reset,
    /// No answer within the HTTP timeout; `true`: after the provider
    /// processed the request.
    Timeout(bool),
    Garbage,
    Html,
    TornBody,
    TruncatedJson,
    WrongTypes,
    HugeBody,
    Bare(u16),
    /// Processed, answered this late.
    Slow(Duration),
    Hang,
    Panic,
    /// Processed, with this `expires_in`.
    Lifetime(Value),
}

impl Answer {
    /// Whether the provider processes the request before the fault.
    fn processed(&self) -> bool {
        matches!(
            self,
            Self::Normal
                | Self::Timeout(true)
                | Self::TornBody
                | Self::TruncatedJson
                | Self::WrongTypes
                | Self::Slow(_)
                | Self::Lifetime(_)
        )
    }

    /// Draws the answer to one request.
    fn draw(ctx: &Ctx, no_hang: bool) -> Self {
        let (rate, outage) = {
            let faults = ctx.faults();
            (faults.provider, ctx.now() < faults.outage_until)
        };
        let mut rng = ctx.rng();
        if outage {
            return Self::Status(503, rng.chance(0.5).then(|| rng.range(1, 30)));
        }
        if !rng.chance(rate) {
            return Self::Normal;
        }
        let kind = rng.weighted(&FAULT_WEIGHTS[..if no_hang { 13 } else { 15 }]);
        match kind {
            0 => Self::Status(
                [500, 502, 503][rng.index(3)],
                rng.chance(0.3).then(|| rng.range(1, 30)),
            ),
            1 => Self::Status(
                429,
                match rng.index(4) {
                    0 => None,
                    1 => Some(u64::MAX),
                    _ => Some(rng.range(0, MAX_RETRY_AFTER_S)),
                },
            ),
            2 => Self::Reset,
            3 => Self::Timeout(rng.chance(0.5)),
            4 => Self::Garbage,
            5 => Self::Html,
            6 => Self::TornBody,
            7 => Self::TruncatedJson,
            8 => Self::WrongTypes,
            9 => Self::HugeBody,
            10 => Self::Bare(if rng.chance(0.5) { 401 } else { 403 }),
            11 => Self::Slow(rng.millis(1_000, 20_000)),
            13 => Self::Hang,
            14 => Self::Panic,
            _ => Self::Lifetime(
                [
                    json!(0),
                    json!(1),
                    json!(2),
                    json!(u64::MAX),
                    json!("18446744073709551615"),
                    json!(9_223_372_036_854_775_807_u64),
                ][rng.index(6)]
                .clone(),
            ),
        }
    }

    /// The error a provider crate makes of a fault (`None`: no fault).
    fn error(&self) -> Option<Error> {
        Some(match self {
            Self::Status(status, retry_after) => {
                let code = if matches!(status, 429 | 503) {
                    "temporarily_unavailable"
                } else {
                    "server_error"
                };
                let error = Error::new(http::classify(*status, Some(code)))
                    .with_status(*status)
                    .with_provider_code(code);
                match retry_after {
                    Some(s) => error.with_retry_after(Duration::from_secs(*s)),
                    None => error,
                }
            }
            Self::Reset => {
                Error::new(ErrorKind::Transport).with_description("connection reset by peer")
            }
            Self::Timeout(_) => {
                Error::new(ErrorKind::Timeout).with_description("operation timed out")
            }
            Self::Garbage | Self::TruncatedJson | Self::WrongTypes => {
                Error::new(ErrorKind::Malformed).with_description(
                    "response does not match the spec (Syntax error at line 1, column 1)",
                )
            }
            Self::HugeBody => Error::new(ErrorKind::Malformed)
                .with_description("response body larger than the cap"),
            Self::Html => Error::new(http::classify(502, None)).with_status(502),
            Self::TornBody => {
                Error::new(ErrorKind::Transport).with_description("error decoding response body")
            }
            Self::Bare(status) => Error::new(http::classify(*status, None)).with_status(*status),
            Self::Normal | Self::Slow(_) | Self::Hang | Self::Panic | Self::Lifetime(_) => {
                return None;
            }
        })
    }
}

/// A grant as the provider sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Grant {
    /// Client credentials or a login with the client's own password.
    Full,
    /// A refresh token, by number.
    Refresh(u64),
    /// A single-use authorization code, by number.
    Code(u64),
}

/// What the provider issued for one grant.
#[derive(Debug)]
pub(crate) struct Issue {
    id: u64,
    refresh: Option<u64>,
}

#[derive(Debug, Default)]
struct State {
    next_token: u64,
    next_refresh: u64,
    next_code: u64,
    /// Each family's refresh tokens, oldest first; the last one is valid.
    families: Vec<Vec<u64>>,
    family_of: BTreeMap<u64, usize>,
    codes_used: BTreeSet<u64>,
    recent: VecDeque<Duration>,
}

/// A refusal by the provider itself (not a fault on the way).
pub(crate) struct Refusal(pub(crate) Error);

/// The provider model, shared by every replica.
pub(crate) struct Provider {
    ctx: Arc<Ctx>,
    state: Mutex<State>,
    lifetime: Duration,
    rotates: bool,
}

impl Provider {
    pub(crate) fn new(ctx: &Arc<Ctx>, lifetime: Duration, rotates: bool) -> Arc<Self> {
        Arc::new(Self {
            ctx: Arc::clone(ctx),
            state: Mutex::new(State::default()),
            lifetime,
            rotates,
        })
    }

    /// A fresh single-use code (the customer's consent in a browser).
    pub(crate) fn authorize(&self) -> u64 {
        let mut state = lock(&self.state);
        state.next_code += 1;
        state.next_code
    }

    /// Processes one grant; `Err` is a genuine refusal or a rate limit.
    fn grant(&self, grant: Grant, by: Option<usize>) -> Result<Issue, Refusal> {
        let now = self.ctx.now();
        let revoked = now < self.ctx.faults().revoked_until;
        let mut state = lock(&self.state);
        while state
            .recent
            .front()
            .is_some_and(|t| *t + RATE_WINDOW <= now)
        {
            state.recent.pop_front();
        }
        if state.recent.len() >= RATE_LIMIT {
            let oldest = state.recent.front().copied().unwrap_or(now);
            let wait = (oldest + RATE_WINDOW).saturating_sub(now).as_secs() + 1;
            return Err(Refusal(
                Error::new(http::classify(429, None))
                    .with_status(429)
                    .with_retry_after(Duration::from_secs(wait)),
            ));
        }
        state.recent.push_back(now);
        if revoked {
            return Err(refusal(401, "invalid_client"));
        }
        let family = match grant {
            Grant::Full => None,
            Grant::Code(code) => {
                if !state.codes_used.insert(code) {
                    drop(state);
                    self.ctx.check().violate(
                        crate::check::Invariant::RotatedRefreshToken,
                        format!("the single-use code c{code} was sent twice"),
                    );
                    return Err(refusal(400, "invalid_grant"));
                }
                None
            }
            Grant::Refresh(rt) => Some(self.rotate(&mut state, rt, by)?),
        };
        state.next_token += 1;
        let id = state.next_token;
        let refresh = self.rotates.then(|| {
            state.next_refresh += 1;
            let rt = state.next_refresh;
            let family = family.unwrap_or_else(|| {
                state.families.push(Vec::new());
                state.families.len() - 1
            });
            state.families[family].push(rt);
            state.family_of.insert(rt, family);
            self.ctx.check().refresh_family(rt, family);
            rt
        });
        Ok(Issue { id, refresh })
    }

    /// Checks `rt` is its family's latest (else refuses it, and the check
    /// decides whether a fault excuses it); returns the family.
    fn rotate(&self, state: &mut State, rt: u64, by: Option<usize>) -> Result<usize, Refusal> {
        let Some(&family) = state.family_of.get(&rt) else {
            return Err(refusal(400, "invalid_grant"));
        };
        let chain = &state.families[family];
        let at = chain.iter().position(|r| *r == rt).unwrap_or(0);
        if at + 1 < chain.len() {
            let newer = chain[at + 1..].to_vec();
            self.ctx.check().stale_refresh(rt, &newer, by);
            return Err(refusal(400, "invalid_grant"));
        }
        Ok(family)
    }

    /// Registers what was issued and builds the token the provider crates
    /// would make of the answer.
    fn deliver(
        &self,
        issue: &Issue,
        issued: Issued,
        view_issued: Duration,
        wall: i64,
        expires_in: Value,
    ) -> Result<AccessToken, Error> {
        let lifetime = parse_expires_in(&expires_in).unwrap_or(DEFAULT_LIFETIME);
        let seq = self.ctx.seq();
        self.ctx.check().issued(
            issue.id,
            crate::check::TokenTruth {
                view_issued,
                lifetime,
                expiry: self.ctx.now().checked_add(lifetime),
                wall_at_issue: wall,
                seq,
            },
        );
        // As the generated client reads it: a number beyond i64 does not
        // decode, so the whole answer is malformed and what it issued is lost.
        let expires_in = serde_json::from_value::<NumberOrString>(expires_in).map_err(|_| {
            self.spoiled(
                issue,
                Error::new(ErrorKind::Malformed)
                    .with_description("response does not match the spec (expires_in)"),
            )
        })?;
        let fields = TokenFields {
            access_token: Some(Secret::new(format!("at-{}", issue.id))),
            token_type: Some("Bearer".to_owned()),
            expires_in: Some(expires_in),
            scope: None,
            refresh_token: issue.refresh.map(|rt| Secret::new(format!("rt-{rt}"))),
        };
        read_token(fields, issued, DEFAULT_LIFETIME)
    }

    /// The normal `expires_in` of a new token: the seed's lifetime, give
    /// or take half.
    fn expires_in(&self) -> Value {
        let ms = u64::try_from(self.lifetime.as_millis()).unwrap_or(u64::MAX);
        json!(self.ctx.rng().range(ms / 2, ms + ms / 2) / 1000)
    }

    /// A fault spoiled the answer to a processed request: what it issued
    /// never reaches the source.
    fn spoiled(&self, issue: &Issue, error: Error) -> Error {
        if let Some(rt) = issue.refresh {
            self.ctx.check().refresh_spoiled(rt);
        }
        self.ctx.log(&format!(
            "  provider issued t{} (r{:?}); the answer was lost: {error}",
            issue.id, issue.refresh
        ));
        error
    }

    /// One request to the token endpoint through the fault model, as a
    /// provider crate makes it. `Err(Ok(error))` is a genuine refusal.
    /// `by` is the replica sending it (`None`: the operator, whose CLI never hangs).
    pub(crate) async fn request(
        &self,
        grant: Grant,
        by: Option<usize>,
    ) -> Result<AccessToken, Result<Error, Error>> {
        let no_hang = by.is_none();
        let mut busy = self.ctx.busy();
        let clock = Arc::clone(&self.ctx.clock);
        let issued = Issued::now(clock.as_ref());
        let view_issued = self.ctx.now();
        let wall = clock.wall_offset_ms();
        let answer = Answer::draw(&self.ctx, no_hang);
        let latency = self.ctx.rng().millis(5, 300);
        tokio::time::sleep(latency).await;
        if let Answer::Timeout(false) = answer {
            tokio::time::sleep(HTTP_TIMEOUT).await;
        }
        match &answer {
            Answer::Hang => {
                busy.hang();
                self.ctx.log("  provider: the answer never comes");
                std::future::pending::<()>().await;
            }
            Answer::Panic => panic!("{}", panics::INJECTED),
            _ if !answer.processed() => {
                return Err(Err(answer
                    .error()
                    .unwrap_or_else(|| Error::new(ErrorKind::Provider))));
            }
            _ => {}
        }
        let issue = self.grant(grant, by).map_err(
            |Refusal(e)| {
                if e.is_transient() { Err(e) } else { Ok(e) }
            },
        )?;
        if let Some(rt) = issue.refresh {
            self.ctx.check().refresh_issued(rt, by);
        }
        let expires_in = match &answer {
            Answer::Lifetime(value) => value.clone(),
            _ => self.expires_in(),
        };
        let on_the_way = Abandoned {
            ctx: &self.ctx,
            refresh: issue.refresh,
        };
        match &answer {
            Answer::Slow(d) => tokio::time::sleep(*d).await,
            Answer::Timeout(true) => tokio::time::sleep(HTTP_TIMEOUT).await,
            _ => {}
        }
        std::mem::forget(on_the_way);
        if let Some(error) = answer.error() {
            return Err(Err(self.spoiled(&issue, error)));
        }
        if let Some(rt) = issue.refresh {
            self.ctx
                .check()
                .refresh_delivered(rt, clock::current_runtime());
        }
        self.deliver(&issue, issued, view_issued, wall, expires_in)
            .map_err(Err)
    }
}

/// Armed while a processed answer is on its way: dropped with the request
/// (the cache's fetch timeout), it records the refresh token the answer
/// carried as abandoned.
struct Abandoned<'a> {
    ctx: &'a Ctx,
    refresh: Option<u64>,
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if let Some(rt) = self.refresh {
            self.ctx.check().refresh_abandoned(rt);
            self.ctx.log(&format!(
                "  the request was dropped; its answer carried r{rt}"
            ));
        }
    }
}

fn refusal(status: u16, code: &str) -> Refusal {
    Refusal(
        Error::new(http::classify(status, Some(code)))
            .with_status(status)
            .with_provider_code(code)
            .with_description("refused by the provider"),
    )
}

/// The number in `prefix-N`.
pub(crate) fn number(secret: &Secret, prefix: &str) -> Option<u64> {
    secret.expose_secret().strip_prefix(prefix)?.parse().ok()
}

/// One replica's token source over the shared provider.
pub(crate) struct SimSource {
    ctx: Arc<Ctx>,
    provider: Arc<Provider>,
    replica: usize,
    flavour: Flavour,
    /// The cache's first failure backoff: how long a genuine refusal must
    /// reach callers.
    backoff: Duration,
}

impl SimSource {
    pub(crate) fn new(
        ctx: &Arc<Ctx>,
        provider: &Arc<Provider>,
        replica: usize,
        flavour: Flavour,
        backoff: Duration,
    ) -> Self {
        Self {
            ctx: Arc::clone(ctx),
            provider: Arc::clone(provider),
            replica,
            flavour,
            backoff,
        }
    }

    async fn fetch_from(&self, refresh: Option<u64>) -> Result<AccessToken, Result<Error, Error>> {
        let r = self.replica;
        let grant = match (self.flavour, refresh) {
            (Flavour::ClientCredentials, _) | (Flavour::RefreshOrLogin, None) => Grant::Full,
            (_, Some(rt)) => Grant::Refresh(rt),
            (Flavour::RefreshOnly, None) => {
                return Err(Ok(Error::new(ErrorKind::InvalidGrant).with_description(
                    "no refresh token: the customer must log in again",
                )));
            }
        };
        self.ctx.check().attempt_started(r);
        let _attempt = AttemptGuard(Arc::clone(&self.ctx), r);
        match self.provider.request(grant, Some(r)).await {
            Err(Ok(refused))
                if refused.kind() == ErrorKind::InvalidGrant
                    && self.flavour == Flavour::RefreshOrLogin =>
            {
                self.ctx
                    .log(&format!("r{r} refresh refused: {refused}; logging in"));
                self.provider.request(Grant::Full, Some(r)).await
            }
            other => other,
        }
    }
}

/// Ends an upstream attempt in the checker, however it ends.
struct AttemptGuard(Arc<Ctx>, usize);

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        self.0.check().attempt_ended(self.1);
    }
}

impl TokenSource for SimSource {
    fn fetch<'a>(
        &'a self,
        previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        let refresh = previous
            .and_then(AccessToken::refresh_token)
            .and_then(|s| number(s, "rt-"));
        Box::pin(async move {
            let r = self.replica;
            self.ctx.log(&format!(
                "r{r} fetch {}",
                refresh.map_or("(full grant)".to_owned(), |rt| format!("with r{rt}"))
            ));
            match self.fetch_from(refresh).await {
                Ok(token) => {
                    let id = number(token.secret(), "at-").unwrap_or(0);
                    self.ctx.log(&format!(
                        "r{r} fetched t{id} (lifetime {} s)",
                        token.lifetime().as_secs()
                    ));
                    Ok(token)
                }
                Err(Ok(refused)) => {
                    let seq = self.ctx.seq();
                    let until = self.ctx.now() + self.backoff;
                    self.ctx.check().refused(r, seq, until);
                    self.ctx.log(&format!("r{r} refused for good: {refused}"));
                    Err(refused)
                }
                Err(Err(error)) => {
                    self.ctx.log(&format!("r{r} fetch failed: {error}"));
                    Err(error)
                }
            }
        })
    }

    fn name(&self) -> &'static str {
        "payauth-sim provider"
    }
}
