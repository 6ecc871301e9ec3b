//! One seed's run: the replicas, their callers and runtimes, the events
//! (faults, crashes, clock jumps, logins), the phases (faults, then calm)
//! and the driver loop that steps them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use payauth_core::{AccessToken, Clock, TokenCache};

use crate::cache_api::{self, Store};
use crate::check::{CallEnd, CallOutcome, Stats, Violation};
use crate::ctx::{Ctx, lock};
use crate::driver::Host;
use crate::panics::{self, CatchUnwind};
use crate::provider::{Flavour, Provider, SimSource, number};
use crate::rng::Rng;
use crate::setup::{CHAOS_WAIT, Setup};
use crate::store::{StoreHandle, StoreModel};

/// A fine step, while calls to the models are in flight or a lease is held.
const TICK: Duration = Duration::from_millis(50);
/// A step while one call is in flight, or callers wait on nothing moving.
const SLOW_TICK: Duration = Duration::from_secs(1);
/// The longest step while the fleet is idle.
const IDLE_JUMP: Duration = Duration::from_secs(60);
/// How long after a model call ends the driver keeps stepping finely.
const QUIET: Duration = Duration::from_millis(200);
/// How long the calm phase runs past the bound.
const CALM_EXTRA: Duration = Duration::from_secs(120);

/// Something the world does at a set time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Act(usize),
    Crash(usize),
    /// A replica exits gracefully: `flush()`, then its process ends.
    Exit(usize),
    /// A graceful exit while the replica is cut off from its store.
    ExitCutOff(usize),
    Exited(usize),
    Restart(usize),
    SideDown(usize),
    SideUp(usize),
    WallJump,
    Revoke,
    Storm,
    Outage,
    /// The store restarts without persistence.
    Forget,
    Partition(usize),
    Login,
}

struct Replica {
    cache: Option<TokenCache>,
    main: Option<Host>,
    side: Option<Host>,
}

struct Caller {
    replica: usize,
    side: bool,
    /// The call in progress: when it started.
    busy: Option<Duration>,
    mean_gap: Duration,
}

/// What one seed's run found.
#[derive(Debug, Clone)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// Steps run (those with faults, then the calm phase's).
    pub steps: u64,
    /// Steps with faults asked for (`--steps`): a replay needs the same.
    pub chaos_steps: u64,
    /// Simulated time covered.
    pub simulated: Duration,
    /// The first violation, if any.
    pub violation: Option<Violation>,
    /// The last events before the end (or the violation).
    pub trace_tail: Vec<String>,
    /// Every event, when asked for.
    pub full_trace: Option<Vec<String>>,
    /// A hash of every event: equal for two runs of one seed.
    pub trace_hash: u64,
    /// How many events the trace holds.
    pub events: u64,
    /// Counts kept apart.
    pub stats: Stats,
    /// The seed's setup, in one line.
    pub setup: String,
}

pub(crate) struct World {
    ctx: Arc<Ctx>,
    setup: Setup,
    provider: Arc<Provider>,
    store: Arc<StoreModel>,
    /// The one process's `FileStore` directory, when the seed has one.
    file: Option<crate::file::Dir>,
    replicas: Vec<Replica>,
    callers: Vec<Caller>,
    operator: Host,
    events: BinaryHeap<Reverse<(Duration, u64, Event)>>,
    next_event: u64,
    next_host: u32,
    done: Arc<Mutex<Vec<Finished>>>,
    rng: Rng,
    now: Duration,
    calm_at: Option<Duration>,
    quiet_until: Duration,
    ended_seen: u64,
}

impl World {
    pub(crate) fn new(seed: u64, keep_full_trace: bool) -> Self {
        let mut rng = Rng::new(seed);
        let mut setup = Setup::draw(&mut rng);
        setup.forget_mark = setup.fleet && Rng::new(seed ^ 0x6D61_726B).chance(0.5);
        let ctx = Ctx::new(seed ^ 0xC0FF_EE00_D15E_A5E5, keep_full_trace, setup.fleet);
        let provider = Provider::new(
            &ctx,
            setup.lifetime,
            setup.flavour != Flavour::ClientCredentials,
        );
        let store = StoreModel::new(&ctx, setup.lease_ttl, setup.max_wait, setup.forget_mark);
        {
            let mut faults = ctx.faults();
            faults.provider = setup.provider_faults;
            faults.store = setup.store_faults;
            faults.downstream_401 = 0.02;
            faults.partitioned_until = vec![Duration::ZERO; setup.replicas.len()];
        }
        let operator = Host::new(0, Duration::ZERO);
        let mut world = Self {
            ctx,
            provider,
            file: setup.file_store.then(|| crate::file::Dir::new(seed)),
            store,
            replicas: Vec::new(),
            callers: Vec::new(),
            operator,
            events: BinaryHeap::new(),
            next_event: 0,
            next_host: 1,
            done: Arc::default(),
            rng,
            now: Duration::ZERO,
            calm_at: None,
            quiet_until: Duration::ZERO,
            ended_seen: 0,
            setup,
        };
        world.populate();
        world
    }

    fn populate(&mut self) {
        let setups = self.setup.replicas.clone();
        for (r, replica) in setups.iter().enumerate() {
            self.ctx.check().add_replica(1 + replica.cache.retries);
            self.replicas.push(Replica {
                cache: None,
                main: None,
                side: None,
            });
            self.start_replica(r);
            for n in 0..replica.main_callers + replica.side_callers {
                let mean_gap =
                    Duration::from_millis([200, 1_000, 5_000, 20_000][self.rng.index(4)]);
                self.callers.push(Caller {
                    replica: r,
                    side: n >= replica.main_callers,
                    busy: None,
                    mean_gap,
                });
                let first = self.rng.millis(500, 5_000);
                self.schedule(first, Event::Act(self.callers.len() - 1));
            }
            for (mean, event) in [
                (900, Event::Crash(r)),
                (900, Event::Exit(r)),
                (240, Event::SideDown(r)),
                (900, Event::Partition(r)),
            ] {
                self.schedule_chaos(mean, event);
            }
        }
        for (mean, event) in [
            (600, Event::WallJump),
            (1_800, Event::Revoke),
            (900, Event::Storm),
            (900, Event::Outage),
            (1_800, Event::Forget),
        ] {
            self.schedule_chaos(mean, event);
        }
        if self.setup.flavour == Flavour::RefreshOnly {
            self.schedule(Duration::ZERO, Event::Login);
        }
        if self.setup.flavour != Flavour::ClientCredentials {
            self.schedule_chaos(600, Event::Login);
        }
        let line = format!("setup: {}", self.setup);
        self.ctx.log(&line);
    }

    fn host(&mut self) -> Host {
        let id = self.next_host;
        self.next_host += 1;
        Host::new(id, self.now)
    }

    fn start_replica(&mut self, r: usize) {
        let config = self.setup.replicas[r].cache.clone();
        let source = Arc::new(SimSource::new(
            &self.ctx,
            &self.provider,
            r,
            self.setup.flavour,
            config.failure_backoff,
        ));
        let handle = Arc::new(StoreHandle::new(&self.store, Some(r)));
        let store = match (&self.file, self.setup.fleet) {
            (Some(dir), _) => Store::Plain(Arc::new(crate::file::FileHandle::new(
                &self.ctx,
                dir,
                Some(r),
            ))),
            (None, true) => Store::Shared(handle),
            (None, false) => Store::Plain(handle),
        };
        let clock = Arc::clone(&self.ctx.clock) as Arc<dyn Clock>;
        let cache = cache_api::build(source, clock, store, &config);
        let main = self.host();
        let side = (self.setup.replicas[r].side_callers > 0).then(|| self.host());
        self.replicas[r] = Replica {
            cache: Some(cache),
            main: Some(main),
            side,
        };
        self.ctx.log(&format!("r{r} started"));
    }

    fn schedule(&mut self, after: Duration, event: Event) {
        self.next_event += 1;
        self.events
            .push(Reverse((self.now + after, self.next_event, event)));
    }

    /// Schedules the next `event` of a kind that happens every `mean_s`
    /// seconds on average, while faults go on.
    fn schedule_chaos(&mut self, mean_s: u64, event: Event) {
        if self.calm_at.is_none() {
            let after = self.rng.exp_millis(Duration::from_secs(mean_s));
            self.schedule(after, event);
        }
    }
}

impl World {
    /// Runs the seed: `steps` steps with faults, then calm until the bound
    /// has passed and a while more.
    pub(crate) fn run(mut self, seed: u64, steps: u64) -> SeedReport {
        panics::record_on_this_thread();
        let bound = self.setup.bound();
        let mut taken = 0;
        loop {
            if taken == steps && self.calm_at.is_none() {
                self.calm_down();
            }
            if self
                .calm_at
                .is_some_and(|at| self.now >= at + bound + CALM_EXTRA)
            {
                break;
            }
            self.step(bound);
            taken += 1;
            if self.ctx.check().violation().is_some() || taken > steps.saturating_mul(20) + 200_000
            {
                break;
            }
        }
        panics::stop_recording();
        self.report(seed, steps, taken)
    }

    fn step(&mut self, bound: Duration) {
        while let Some(Reverse((at, _, event))) = self.events.peek().copied()
            && at <= self.now
        {
            self.events.pop();
            self.apply(event);
        }
        let span = self.span();
        for replica in &self.replicas {
            for host in [&replica.main, &replica.side].into_iter().flatten() {
                host.run_for(span);
            }
        }
        self.operator.run_for(span);
        self.now += span;
        self.ctx.clock.set_outside(self.now);
        for message in panics::take() {
            self.ctx.log(&format!("a task panicked: {message}"));
            self.ctx.check().panicked(&message);
        }
        self.collect(bound);
    }

    /// How far the next step goes: finely while the models are busy or a
    /// lease is held (so the runtimes' clocks never drift apart by more
    /// than a tick while they interact), coarsely otherwise.
    fn span(&mut self) -> Duration {
        let (busy, ended) = self.ctx.activity();
        if ended != self.ended_seen {
            self.ended_seen = ended;
            self.quiet_until = self.now + QUIET;
        }
        let waiting = self.callers.iter().any(|c| c.busy.is_some());
        let span = if busy >= 2 || self.store.lease_live() || self.now < self.quiet_until {
            TICK
        } else if busy == 1 || waiting {
            SLOW_TICK
        } else {
            IDLE_JUMP
        };
        let next = self
            .events
            .peek()
            .map_or(span, |Reverse((at, _, _))| at.saturating_sub(self.now));
        span.min(next).max(Duration::from_millis(1))
    }
}

impl World {
    fn apply(&mut self, event: Event) {
        match event {
            Event::Act(c) => self.act(c),
            Event::Crash(r) => self.crash(r),
            Event::Exit(r) => {
                self.exit(r);
                self.schedule_chaos(900, Event::Exit(r));
            }
            Event::ExitCutOff(r) => self.exit(r),
            Event::Exited(r) => {
                // Faults stopped meanwhile: the process stays.
                if self.calm_at.is_none() && self.replicas[r].cache.is_some() {
                    self.ctx.log(&format!("r{r} exits"));
                    self.tear_down(r);
                }
            }
            Event::Restart(r) => {
                if self.replicas[r].cache.is_none() {
                    self.start_replica(r);
                }
            }
            Event::SideDown(r) => self.side_down(r),
            Event::SideUp(r) => {
                if self.replicas[r].cache.is_some() && self.replicas[r].side.is_none() {
                    self.replicas[r].side = Some(self.host());
                    self.ctx.log(&format!("r{r} second runtime up"));
                }
            }
            Event::Login => self.login(),
            _ if self.calm_at.is_some() => {}
            Event::WallJump => {
                let by = i64::try_from(self.rng.range(1_000, 7_200_000)).unwrap_or(0);
                let by = if self.rng.chance(0.5) { -by } else { by };
                self.ctx.clock.jump_wall(by);
                self.ctx.log(&format!("wall clock jumps {by} ms"));
                self.schedule_chaos(600, Event::WallJump);
            }
            Event::Forget => {
                // A file store keeps its files.
                if self.file.is_none() {
                    self.store.forget();
                    self.ctx.log("the store restarts empty");
                }
                self.schedule_chaos(1_800, Event::Forget);
            }
            Event::Revoke | Event::Storm | Event::Outage | Event::Partition(_) => {
                self.window(event);
            }
        }
    }

    /// A fault that lasts a while: credentials revoked, a downstream 401
    /// storm, a provider outage, a replica cut off from the store.
    fn window(&mut self, event: Event) {
        let until = self.now + self.rng.millis(2_000, 60_000);
        {
            let mut faults = self.ctx.faults();
            match event {
                Event::Revoke => faults.revoked_until = until,
                Event::Storm => faults.storm_until = until,
                Event::Outage => faults.outage_until = until,
                Event::Partition(r) => faults.partitioned_until[r] = until,
                _ => {}
            }
        }
        // Half the partitions see the replica exit (and flush) meanwhile.
        if let Event::Partition(r) = event
            && self.rng.chance(0.5)
        {
            let window = until.saturating_sub(self.now).as_millis();
            let after = self.rng.millis(0, window.try_into().unwrap_or(0));
            self.schedule(after, Event::ExitCutOff(r));
        }
        self.ctx
            .log(&format!("{event:?} until {} ms", until.as_millis()));
        let mean = if matches!(event, Event::Revoke) {
            1_800
        } else {
            900
        };
        self.schedule_chaos(mean, event);
    }

    fn crash(&mut self, r: usize) {
        if self.calm_at.is_some() || self.replicas[r].cache.is_none() {
            return;
        }
        self.ctx.log(&format!("r{r} crashes"));
        self.tear_down(r);
        self.schedule_chaos(900, Event::Crash(r));
    }

    /// A graceful exit: the replica calls `flush()` (what it holds unsaved
    /// when that returns `Ok` must never be lost), and its process ends a
    /// little later, whatever the flush is doing by then.
    fn exit(&mut self, r: usize) {
        if self.calm_at.is_some() {
            return;
        }
        if let (Some(cache), Some(main)) = (&self.replicas[r].cache, &self.replicas[r].main) {
            // Half the time the job's last API call was answered 401.
            let rejected_last = self.rng.chance(0.5);
            self.ctx.log(&format!(
                "r{r} flushes before it exits{}",
                if rejected_last {
                    ", its last token rejected by the API"
                } else {
                    ""
                }
            ));
            let (ctx, cache) = (Arc::clone(&self.ctx), cache.clone());
            main.spawn(async move {
                if rejected_last
                    && let Some(token) = cache_api::peek(&cache)
                    && cache_api::invalidate(&cache, &token)
                {
                    let id = number(token.secret(), "at-").unwrap_or(0);
                    ctx.check().invalidated(r, id);
                }
                let flushed = cache_api::flush(&cache).await;
                ctx.log(&format!(
                    "r{r} flush: {}",
                    flushed
                        .as_ref()
                        .map_or_else(ToString::to_string, |()| "Ok".to_owned())
                ));
                if flushed.is_ok() {
                    ctx.check().flushed(r);
                }
            });
            let after = self.rng.millis(1_000, 5_000);
            self.schedule(after, Event::Exited(r));
        }
    }

    /// Replica `r`'s process ends: its runtimes and memory go; it starts
    /// again, empty, a while later.
    fn tear_down(&mut self, r: usize) {
        let replica = std::mem::replace(
            &mut self.replicas[r],
            Replica {
                cache: None,
                main: None,
                side: None,
            },
        );
        for host in [replica.main, replica.side].into_iter().flatten() {
            let id = host.id();
            host.shut_down();
            self.ctx.check().host_died(id);
        }
        drop(replica.cache);
        self.ctx.check().replica_died(r);
        self.drop_calls(|c| c.replica == r);
        let after = self.rng.millis(1_000, 30_000);
        self.schedule(after, Event::Restart(r));
    }

    fn side_down(&mut self, r: usize) {
        if self.calm_at.is_some() {
            return;
        }
        if let Some(host) = self.replicas[r].side.take() {
            self.ctx.log(&format!("r{r} second runtime shuts down"));
            let id = host.id();
            host.shut_down();
            self.ctx.check().host_died(id);
            self.drop_calls(|c| c.replica == r && c.side);
            let after = self.rng.millis(500, 10_000);
            self.schedule(after, Event::SideUp(r));
        }
        self.schedule_chaos(240, Event::SideDown(r));
    }
}

impl World {
    /// Forgets the calls of the callers `which` picks (their runtime died
    /// with them) and has those callers try again a little later.
    fn drop_calls(&mut self, which: impl Fn(&Caller) -> bool) {
        let dropped: Vec<usize> = (0..self.callers.len())
            .filter(|&c| which(&self.callers[c]) && self.callers[c].busy.is_some())
            .collect();
        for c in dropped {
            self.callers[c].busy = None;
            let after = self.rng.millis(1_000, 5_000);
            self.schedule(after, Event::Act(c));
        }
    }

    /// Caller `c` calls `token()` on its replica's cache, from its runtime.
    fn act(&mut self, c: usize) {
        let (r, side) = (self.callers[c].replica, self.callers[c].side);
        let replica = &self.replicas[r];
        let host = if side { &replica.side } else { &replica.main };
        let (Some(cache), Some(host)) = (replica.cache.clone(), host.as_ref()) else {
            let after = self.rng.millis(1_000, 5_000);
            self.schedule(after, Event::Act(c));
            return;
        };
        if self.callers[c].busy.is_some() {
            return;
        }
        self.callers[c].busy = Some(self.now);
        host.spawn(call(
            Arc::clone(&self.ctx),
            cache,
            c,
            Arc::clone(&self.done),
        ));
    }

    /// `payauth login` on the operator's machine: a fresh pair saved to the
    /// store while the caches run.
    fn login(&mut self) {
        let store: Arc<dyn payauth_core::TokenStore> = match &self.file {
            Some(dir) => Arc::new(crate::file::FileHandle::new(&self.ctx, dir, None)),
            None => Arc::new(StoreHandle::new(&self.store, None)),
        };
        self.operator.spawn(crate::login::login(
            Arc::clone(&self.ctx),
            Arc::clone(&self.provider),
            store,
        ));
        if self.calm_at.is_none() && self.now > Duration::ZERO {
            self.schedule_chaos(600, Event::Login);
        }
    }

    /// Faults stop: every fault knob off, every window closed, crashed
    /// replicas and runtimes back, and the customer logs in again.
    fn calm_down(&mut self) {
        self.calm_at = Some(self.now);
        {
            let mut faults = self.ctx.faults();
            let now = self.now;
            faults.provider = 0.0;
            faults.store = 0.0;
            faults.downstream_401 = 0.0;
            faults.outage_until = now;
            faults.revoked_until = now;
            faults.storm_until = now;
            for until in &mut faults.partitioned_until {
                *until = now;
            }
        }
        self.ctx.log(&format!(
            "faults stop; bound {} s",
            self.setup.bound().as_secs()
        ));
        for r in 0..self.replicas.len() {
            if self.replicas[r].cache.is_none() {
                self.start_replica(r);
            } else if self.replicas[r].side.is_none() && self.setup.replicas[r].side_callers > 0 {
                self.replicas[r].side = Some(self.host());
            }
        }
        if self.setup.flavour != Flavour::ClientCredentials {
            self.login();
        }
    }

    /// Checks the calls that ended and the callers still waiting.
    fn collect(&mut self, bound: Duration) {
        let mut done = std::mem::take(&mut *lock(&self.done));
        done.sort_by_key(|call| (call.ended, call.caller));
        let calm_from = self.calm_at.map(|at| at + bound);
        for call in done {
            let c = call.caller;
            let end = self.finish(call);
            self.ctx.check().call_ended(&end, calm_from);
            self.callers[c].busy = None;
            let gap = self.rng.exp_millis(self.callers[c].mean_gap);
            self.schedule(gap, Event::Act(c));
        }
        for (c, caller) in self.callers.iter().enumerate() {
            if let Some(started) = caller.busy {
                let mut deadline = started + CHAOS_WAIT;
                if let Some(at) = self.calm_at {
                    deadline = deadline.min(started.max(at) + bound);
                }
                self.ctx
                    .check()
                    .waiting(caller.replica, c, started, self.now, deadline);
            }
        }
    }

    fn report(mut self, seed: u64, chaos_steps: u64, steps: u64) -> SeedReport {
        if let Some(violation) = self.ctx.check().violation().cloned() {
            self.ctx.log(&format!(
                "VIOLATION {}: {}",
                violation.invariant, violation.detail
            ));
        }
        for replica in std::mem::take(&mut self.replicas) {
            for host in [replica.main, replica.side].into_iter().flatten() {
                host.shut_down();
            }
        }
        let (violation, stats) = {
            let check = self.ctx.check();
            (check.violation().cloned(), check.stats.clone())
        };
        let mut trace = self.ctx.trace();
        SeedReport {
            seed,
            steps,
            chaos_steps,
            simulated: self.now,
            violation,
            trace_tail: trace.tail(),
            full_trace: trace.take_full(),
            trace_hash: trace.hash(),
            events: trace.count(),
            stats,
            setup: self.setup.to_string(),
        }
    }
}

/// A call of `token()` that returned, as its task saw it.
struct Finished {
    caller: usize,
    cache: TokenCache,
    started: Duration,
    start_seq: u64,
    end_seq: u64,
    ended: Duration,
    result: Result<Result<Arc<AccessToken>, String>, String>,
}

/// One call of `token()` by caller `c`. Tasks woken by one flight run in
/// an order tokio randomizes (its `watch` channel picks a notifier at
/// random), so the task does nothing after `token()` returns but record
/// the result; the world handles results in a fixed order.
async fn call(ctx: Arc<Ctx>, cache: TokenCache, c: usize, done: Arc<Mutex<Vec<Finished>>>) {
    let started = ctx.now();
    let start_seq = ctx.seq();
    let result = CatchUnwind(Box::pin(cache_api::token(&cache))).await;
    let finished = Finished {
        caller: c,
        started,
        start_seq,
        end_seq: ctx.seq(),
        ended: ctx.now(),
        result: result.map(|r| r.map_err(|e| e.to_string())),
        cache,
    };
    lock(&done).push(finished);
}

impl World {
    /// Turns a finished call into what the checks see: a token is used
    /// against the downstream API, whose 401 makes the caller invalidate it.
    fn finish(&mut self, call: Finished) -> CallEnd {
        let r = self.callers[call.caller].replica;
        let c = call.caller;
        let outcome = match call.result {
            Ok(Ok(token)) => {
                let id = number(token.secret(), "at-").unwrap_or(0);
                if self.downstream_rejects(id) {
                    let cache = &call.cache;
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        cache_api::invalidate(cache, &token)
                    })) {
                        Ok(invalidated) => {
                            self.ctx.trace().add(call.ended, &format!("r{r} c{c} got t{id}; the API said 401; invalidated: {invalidated}"));
                            CallOutcome::Token { id, invalidated }
                        }
                        Err(_) => CallOutcome::Panicked("invalidate() panicked".to_owned()),
                    }
                } else {
                    self.ctx
                        .trace()
                        .add_quiet(call.ended, &format!("r{r} c{c} got t{id}"));
                    CallOutcome::Token {
                        id,
                        invalidated: false,
                    }
                }
            }
            Ok(Err(error)) => {
                self.ctx
                    .trace()
                    .add(call.ended, &format!("r{r} c{c} got an error: {error}"));
                CallOutcome::Error(error)
            }
            Err(message) => CallOutcome::Panicked(message),
        };
        CallEnd {
            replica: r,
            started: call.started,
            start_seq: call.start_seq,
            end_seq: call.end_seq,
            ended: call.ended,
            outcome,
        }
    }

    /// Whether the downstream API answers 401 to token `id` now: always
    /// while a storm lasts, else now and then.
    fn downstream_rejects(&mut self, id: u64) -> bool {
        let (storm, rate) = {
            let faults = self.ctx.faults();
            (self.now < faults.storm_until, faults.downstream_401)
        };
        id != 0 && (storm || self.rng.chance(rate))
    }
}
