//! `TokenCache` behaviour with a fake source: counted calls, a gate instead
//! of sleeps, a manual clock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use payauth_core::Clock as _;
use payauth_core::{
    AccessToken, BoxFuture, Error, ErrorKind, Issued, ManualClock, MemoryStore, Secret,
    StoredToken, TokenCache, TokenSource, TokenStore,
};
use tokio::sync::Semaphore;

const LIFETIME: Duration = Duration::from_secs(100);

/// What the fake answers next; tokens are `t<call number>` with a rotating
/// refresh token `r<call number>`.
enum Next {
    Token,
    Fail(ErrorKind),
    /// A 429 asking to wait this long.
    RateLimited(Duration),
    /// A token said to live this long.
    Lifetime(Duration),
    /// A token whose fetch took this long on the manual clock.
    Slow(Duration),
    /// A bug in the source.
    Panic,
    /// A source that never answers.
    Hang,
}

struct Fake {
    clock: Arc<ManualClock>,
    calls: AtomicUsize,
    script: Mutex<VecDeque<Next>>,
    gate: Option<Arc<Semaphore>>,
    seen_refresh_tokens: Mutex<Vec<Option<String>>>,
}

impl Fake {
    fn new(clock: &Arc<ManualClock>) -> Self {
        Self {
            clock: Arc::clone(clock),
            calls: AtomicUsize::new(0),
            script: Mutex::new(VecDeque::new()),
            gate: None,
            seen_refresh_tokens: Mutex::new(Vec::new()),
        }
    }

    fn gated(clock: &Arc<ManualClock>) -> (Self, Arc<Semaphore>) {
        let gate = Arc::new(Semaphore::new(0));
        (
            Self {
                gate: Some(Arc::clone(&gate)),
                ..Self::new(clock)
            },
            gate,
        )
    }

    fn then(self, next: Next) -> Self {
        self.script.lock().unwrap().push_back(next);
        self
    }
}

impl TokenSource for Fake {
    fn fetch<'a>(
        &'a self,
        previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async move {
            let issued = Issued::now(self.clock.as_ref());
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            self.seen_refresh_tokens.lock().unwrap().push(
                previous
                    .and_then(|p| p.refresh_token())
                    .map(|r| r.expose_secret().to_owned()),
            );
            if let Some(gate) = &self.gate {
                gate.acquire().await.expect("gate open").forget();
            }
            let next = self
                .script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Next::Token);
            let lifetime = match next {
                Next::Token => LIFETIME,
                Next::Lifetime(lifetime) => lifetime,
                Next::Slow(took) => {
                    self.clock.advance(took);
                    LIFETIME
                }
                Next::Fail(kind) => {
                    let status = if kind == ErrorKind::Unavailable {
                        503
                    } else {
                        400
                    };
                    return Err(Error::new(kind).with_status(status));
                }
                Next::RateLimited(wait) => {
                    return Err(Error::new(ErrorKind::RateLimited)
                        .with_status(429)
                        .with_retry_after(wait));
                }
                Next::Panic => panic!("a bug in the token source"),
                Next::Hang => std::future::pending().await,
            };
            Ok(
                AccessToken::new(Secret::new(format!("t{n}")), "Bearer", issued, lifetime)?
                    .with_refresh_token(Some(Secret::new(format!("r{n}")))),
            )
        })
    }

    fn name(&self) -> &'static str {
        "fake"
    }
}

fn cache(source: Fake, clock: &Arc<ManualClock>) -> (TokenCache, Arc<Fake>) {
    let source = Arc::new(source);
    let cache = TokenCache::builder(Arc::clone(&source) as Arc<dyn TokenSource>)
        .clock(Arc::clone(clock) as _)
        .refresh_margin(Duration::from_secs(30))
        .jitter(0.0)
        .build();
    (cache, source)
}

fn value(token: &AccessToken) -> &str {
    token.secret().expose_secret()
}

async fn until(mut condition: impl FnMut() -> bool) {
    for _ in 0..100_000 {
        if condition() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("condition never held");
}

/// Lets spawned work run for a while on the current runtime.
async fn settle() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_fresh_token_is_fetched_once_and_then_served_from_memory() {
    let clock = Arc::new(ManualClock::new());
    let (cache, source) = cache(Fake::new(&clock), &clock);
    let first = cache.token().await.unwrap();
    clock.advance(Duration::from_secs(60));
    let second = cache.token().await.unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_callers_on_an_empty_cache_share_one_fetch() {
    let clock = Arc::new(ManualClock::new());
    let (fake, gate) = Fake::gated(&clock);
    let (cache, source) = cache(fake, &clock);
    let callers: Vec<_> = (0..10_000)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.token().await })
        })
        .collect();
    until(|| source.calls.load(Ordering::SeqCst) == 1).await;
    gate.add_permits(1);
    for caller in callers {
        assert_eq!(value(&caller.await.unwrap().unwrap()), "t1");
    }
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_callers_share_one_failure_too() {
    let clock = Arc::new(ManualClock::new());
    let (fake, gate) = Fake::gated(&clock);
    let (cache, source) = cache(fake.then(Next::Fail(ErrorKind::Unavailable)), &clock);
    let callers: Vec<_> = (0..10_000)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.token().await })
        })
        .collect();
    until(|| source.calls.load(Ordering::SeqCst) == 1).await;
    gate.add_permits(1);
    for caller in callers {
        assert_eq!(
            caller.await.unwrap().unwrap_err().kind(),
            ErrorKind::Unavailable
        );
    }
    assert_eq!(
        cache.token().await.unwrap_err().kind(),
        ErrorKind::Unavailable,
        "remembered during the backoff"
    );
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_fetch_survives_the_first_caller_being_dropped() {
    let clock = Arc::new(ManualClock::new());
    let (fake, gate) = Fake::gated(&clock);
    let (cache, source) = cache(fake, &clock);
    let first = tokio::spawn({
        let cache = cache.clone();
        async move { cache.token().await }
    });
    until(|| source.calls.load(Ordering::SeqCst) == 1).await;
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    gate.add_permits(1);
    assert_eq!(value(&cache.token().await.unwrap()), "t1");
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        1,
        "the second caller joined the surviving fetch"
    );
}

#[tokio::test]
async fn inside_the_margin_callers_get_the_old_token_while_one_refresh_runs() {
    let clock = Arc::new(ManualClock::new());
    let (fake, gate) = Fake::gated(&clock);
    let (cache, source) = cache(fake, &clock);
    gate.add_permits(1);
    assert_eq!(value(&cache.token().await.unwrap()), "t1");
    clock.advance(Duration::from_secs(75)); // 25 s left, margin 30 s
    assert_eq!(
        value(&cache.token().await.unwrap()),
        "t1",
        "no waiting while the token is valid"
    );
    assert_eq!(value(&cache.token().await.unwrap()), "t1");
    until(|| source.calls.load(Ordering::SeqCst) == 2).await;
    gate.add_permits(1);
    until(|| cache.peek().is_some_and(|t| value(&t) == "t2")).await;
    assert_eq!(value(&cache.token().await.unwrap()), "t2");
    assert_eq!(source.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_margin_is_capped_at_half_the_lifetime() {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(Fake::new(&clock));
    let cache = TokenCache::builder(Arc::clone(&source) as Arc<dyn TokenSource>)
        .clock(Arc::clone(&clock) as _)
        .refresh_margin(Duration::from_secs(3600))
        .jitter(0.0)
        .build();
    cache.token().await.unwrap();
    clock.advance(Duration::from_secs(49));
    cache.token().await.unwrap();
    settle().await;
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        1,
        "a 100 s token is not refreshed before 50 s"
    );
    clock.advance(Duration::from_secs(2));
    cache.token().await.unwrap();
    until(|| source.calls.load(Ordering::SeqCst) == 2).await;
}

#[tokio::test]
async fn the_jitter_moves_the_refresh_earlier_by_its_share_of_a_tenth_of_the_lifetime() {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(Fake::new(&clock));
    // 100 s token, 30 s margin, full jitter of min(10 s, 30 s): refresh at 60 s.
    let cache = builder(&source, &clock).jitter(1.0).build();
    cache.token().await.unwrap();
    clock.advance(Duration::from_secs(59));
    cache.token().await.unwrap();
    settle().await;
    assert_eq!(source.calls.load(Ordering::SeqCst), 1, "not before 60 s");
    clock.advance(Duration::from_secs(2));
    cache.token().await.unwrap();
    until(|| source.calls.load(Ordering::SeqCst) == 2).await;
}

#[tokio::test]
async fn a_transient_failure_keeps_serving_the_valid_token_and_backs_off() {
    let clock = Arc::new(ManualClock::new());
    let fake = Fake::new(&clock)
        .then(Next::Token)
        .then(Next::Fail(ErrorKind::Unavailable))
        .then(Next::Fail(ErrorKind::Transport));
    let (cache, source) = cache(fake, &clock);
    cache.token().await.unwrap();
    clock.advance(Duration::from_secs(75));
    assert_eq!(value(&cache.token().await.unwrap()), "t1");
    until(|| source.calls.load(Ordering::SeqCst) == 2).await;
    settle().await;
    assert_eq!(
        value(&cache.token().await.unwrap()),
        "t1",
        "still valid: served despite the failure"
    );
    settle().await;
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        2,
        "no new fetch inside the 1 s backoff"
    );
    clock.advance(Duration::from_millis(1001));
    assert_eq!(value(&cache.token().await.unwrap()), "t1");
    until(|| source.calls.load(Ordering::SeqCst) == 3).await;
    settle().await;
    clock.advance(Duration::from_millis(1500));
    cache.token().await.unwrap();
    settle().await;
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        3,
        "the backoff doubled to 2 s after two failures"
    );
    clock.advance(Duration::from_millis(600));
    assert_eq!(value(&cache.token().await.unwrap()), "t1");
    until(|| cache.peek().is_some_and(|t| value(&t) == "t4")).await;
}

#[tokio::test]
async fn after_expiry_the_error_reaches_the_caller_never_a_stale_token() {
    let clock = Arc::new(ManualClock::new());
    let fake = Fake::new(&clock)
        .then(Next::Token)
        .then(Next::Fail(ErrorKind::Unavailable));
    let (cache, _source) = cache(fake, &clock);
    cache.token().await.unwrap();
    clock.advance(LIFETIME);
    let error = cache.token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error.is_transient());
}

#[tokio::test]
async fn an_expired_token_is_never_served_while_the_refresh_is_pending() {
    let clock = Arc::new(ManualClock::new());
    let (fake, gate) = Fake::gated(&clock);
    let (cache, _source) = cache(fake, &clock);
    gate.add_permits(1);
    cache.token().await.unwrap();
    clock.advance(LIFETIME + Duration::from_secs(1));
    let waiting = tokio::spawn({
        let cache = cache.clone();
        async move { cache.token().await }
    });
    settle().await;
    assert!(!waiting.is_finished(), "the caller waits for the new token");
    gate.add_permits(1);
    assert_eq!(value(&waiting.await.unwrap().unwrap()), "t2");
}

#[tokio::test]
async fn a_permanent_failure_drops_the_token_and_reaches_the_next_caller() {
    let clock = Arc::new(ManualClock::new());
    let fake = Fake::new(&clock)
        .then(Next::Token)
        .then(Next::Fail(ErrorKind::InvalidClient));
    let (cache, source) = cache(fake, &clock);
    cache.token().await.unwrap();
    clock.advance(Duration::from_secs(75));
    let _ = cache.token().await; // triggers the refresh
    until(|| source.calls.load(Ordering::SeqCst) == 2).await;
    until(|| cache.peek().is_none()).await;
    assert_eq!(
        cache.token().await.unwrap_err().kind(),
        ErrorKind::InvalidClient
    );
}

#[tokio::test]
async fn invalidate_drops_only_the_token_that_was_rejected() {
    let clock = Arc::new(ManualClock::new());
    let (cache, source) = cache(Fake::new(&clock), &clock);
    let old = cache.token().await.unwrap();
    assert!(cache.invalidate(&old));
    let new = cache.token().await.unwrap();
    assert_eq!(value(&new), "t2");
    assert!(
        !cache.invalidate(&old),
        "a late 401 for the old token keeps the new one"
    );
    assert_eq!(value(&cache.token().await.unwrap()), "t2");
    assert_eq!(source.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_refresh_token_of_the_last_token_feeds_the_next_fetch() {
    let clock = Arc::new(ManualClock::new());
    let (cache, source) = cache(Fake::new(&clock), &clock);
    let first = cache.token().await.unwrap();
    cache.invalidate(&first);
    cache.token().await.unwrap();
    assert_eq!(
        *source.seen_refresh_tokens.lock().unwrap(),
        [None, Some("r1".to_owned())]
    );
}

/// A store that counts saves and checks, on every save, that the cache has
/// not yet published the token being saved; its saves fail while `failing`
/// is set.
#[derive(Default)]
struct Recording {
    inner: MemoryStore,
    cache: OnceLock<TokenCache>,
    saves: AtomicUsize,
    published_before_save: AtomicUsize,
    /// Saves fail while this is set.
    failing: std::sync::atomic::AtomicBool,
    /// The next this many loads fail.
    failing_loads: AtomicUsize,
}

impl TokenStore for Recording {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        let failing = self
            .failing_loads
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Box::pin(async {
                Err(Error::new(ErrorKind::Store).with_description("connection refused"))
            });
        }
        self.inner.load(key)
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.saves.fetch_add(1, Ordering::SeqCst);
        if let Some(cache) = self.cache.get()
            && cache
                .peek()
                .is_some_and(|t| t.secret() == token.access_token.as_secret())
        {
            self.published_before_save.fetch_add(1, Ordering::SeqCst);
        }
        if self.failing.load(Ordering::SeqCst) {
            return Box::pin(async {
                Err(Error::new(ErrorKind::Store).with_description("disk full"))
            });
        }
        self.inner.save(key, token)
    }

    fn clear<'a>(
        &'a self,
        key: &'a str,
        if_refresh_token: Option<&'a Secret>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.inner.clear(key, if_refresh_token)
    }
}

#[tokio::test]
async fn a_new_token_and_its_rotated_refresh_token_are_saved_before_they_are_published() {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(Recording::default());
    let cache = TokenCache::builder(Fake::new(&clock))
        .clock(Arc::clone(&clock) as _)
        .store(Arc::clone(&store) as _, "k")
        .jitter(0.0)
        .build();
    let _ = store.cache.set(cache.clone());
    cache.token().await.unwrap();
    clock.advance(LIFETIME);
    cache.token().await.unwrap();
    assert_eq!(store.saves.load(Ordering::SeqCst), 2);
    assert_eq!(store.published_before_save.load(Ordering::SeqCst), 0);
    let stored = store.inner.load("k").await.unwrap().unwrap();
    assert_eq!(
        stored.refresh_token.map(Secret::from),
        Some(Secret::new("r2"))
    );
}

#[tokio::test]
async fn a_fresh_stored_token_is_used_without_a_fetch() {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(MemoryStore::new());
    let minted = minted(&clock, "stored", None);
    store
        .save("k", &StoredToken::from_token(&minted))
        .await
        .unwrap();
    let source = Arc::new(Fake::new(&clock));
    let cache = TokenCache::builder(Arc::clone(&source) as Arc<dyn TokenSource>)
        .clock(Arc::clone(&clock) as _)
        .store(store, "k")
        .build();
    assert_eq!(value(&cache.token().await.unwrap()), "stored");
    assert_eq!(source.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn invalid_grant_clears_the_store_only_when_it_holds_the_refused_refresh_token() {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(MemoryStore::new());
    let fake = Fake::new(&clock)
        .then(Next::Token)
        .then(Next::Fail(ErrorKind::InvalidGrant));
    let cache = TokenCache::builder(fake)
        .clock(Arc::clone(&clock) as _)
        .store(Arc::clone(&store) as _, "k")
        .jitter(0.0)
        .build();
    let first = cache.token().await.unwrap();
    cache.invalidate(&first);
    assert_eq!(
        cache.token().await.unwrap_err().kind(),
        ErrorKind::InvalidGrant
    );
    assert_eq!(
        store.load("k").await.unwrap(),
        None,
        "the store held the refused r1: cleared"
    );
}

#[tokio::test]
async fn debug_and_errors_never_show_a_secret() {
    const SENTINEL: &str = "SENTINEL-cache-3e";
    struct Leaky;
    impl TokenSource for Leaky {
        fn fetch<'a>(
            &'a self,
            _: Option<&'a AccessToken>,
        ) -> BoxFuture<'a, Result<AccessToken, Error>> {
            Box::pin(async {
                AccessToken::new(
                    Secret::new(SENTINEL),
                    "Bearer",
                    Issued::now(&payauth_core::SystemClock),
                    LIFETIME,
                )
                .map(|t| t.with_refresh_token(Some(Secret::new(SENTINEL))))
            })
        }
    }
    let cache = TokenCache::builder(Leaky).build();
    let token = cache.token().await.unwrap();
    let shown = format!(
        "{cache:?} {token:?} {:?} {:?}",
        token.authorization(),
        StoredToken::from_token(&token)
    );
    assert!(!shown.contains(SENTINEL), "{shown}");
}

#[tokio::test]
async fn with_retries_a_transient_failure_is_retried_within_one_fetch() {
    let clock = Arc::new(ManualClock::new());
    let fake = Fake::new(&clock)
        .then(Next::Fail(ErrorKind::Unavailable))
        .then(Next::Fail(ErrorKind::Transport));
    let source = Arc::new(fake);
    let cache = TokenCache::builder(Arc::clone(&source) as Arc<dyn TokenSource>)
        .clock(Arc::clone(&clock) as _)
        .retries(2, Duration::from_millis(1))
        .build();
    assert_eq!(
        value(&cache.token().await.unwrap()),
        "t3",
        "two retries, the third attempt succeeds"
    );
    assert_eq!(source.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retries_stop_at_the_limit_and_never_retry_a_permanent_failure() {
    let clock = Arc::new(ManualClock::new());
    let fake = Fake::new(&clock)
        .then(Next::Fail(ErrorKind::Unavailable))
        .then(Next::Fail(ErrorKind::Unavailable))
        .then(Next::Fail(ErrorKind::Unavailable));
    let source = Arc::new(fake);
    let cache = TokenCache::builder(Arc::clone(&source) as Arc<dyn TokenSource>)
        .clock(Arc::clone(&clock) as _)
        .retries(1, Duration::from_millis(1))
        .build();
    assert_eq!(
        cache.token().await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        2,
        "one try and one retry"
    );

    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(Fake::new(&clock).then(Next::Fail(ErrorKind::InvalidClient)));
    let cache = TokenCache::builder(Arc::clone(&source) as Arc<dyn TokenSource>)
        .clock(Arc::clone(&clock) as _)
        .retries(3, Duration::from_millis(1))
        .build();
    assert_eq!(
        cache.token().await.unwrap_err().kind(),
        ErrorKind::InvalidClient
    );
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        1,
        "a refusal is never retried"
    );
}

#[tokio::test]
async fn a_token_that_failed_to_save_is_saved_again_by_a_later_call_after_the_backoff() {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(Recording::default());
    store.failing.store(true, Ordering::SeqCst);
    let source = Arc::new(Fake::new(&clock));
    let cache = TokenCache::builder(Arc::clone(&source) as Arc<dyn TokenSource>)
        .clock(Arc::clone(&clock) as _)
        .store(Arc::clone(&store) as _, "k")
        .failure_backoff(Duration::from_secs(1))
        .jitter(0.0)
        .build();
    // A failed save costs no caller its token: served from memory, and
    // no retry before the backoff.
    assert_eq!(value(&cache.token().await.unwrap()), "t1");
    assert_eq!(value(&cache.token().await.unwrap()), "t1");
    settle().await;
    assert_eq!(store.saves.load(Ordering::SeqCst), 1);
    // Still failing after the backoff: tried again, still served.
    clock.advance(Duration::from_secs(2));
    assert_eq!(value(&cache.token().await.unwrap()), "t1");
    until(|| store.saves.load(Ordering::SeqCst) == 2).await;
    // The store recovers: the next call after the backoff saves it.
    store.failing.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(2));
    cache.token().await.unwrap();
    until(|| store.saves.load(Ordering::SeqCst) == 3).await;
    settle().await;
    let stored = store.inner.load("k").await.unwrap().expect("saved");
    assert_eq!(stored.access_token.as_secret().expose_secret(), "t1");
    // Saved: no more attempts.
    clock.advance(Duration::from_secs(2));
    cache.token().await.unwrap();
    settle().await;
    assert_eq!(store.saves.load(Ordering::SeqCst), 3);
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
}

// ---- A flight always ends ----

fn builder(source: &Arc<Fake>, clock: &Arc<ManualClock>) -> payauth_core::TokenCacheBuilder {
    TokenCache::builder(Arc::clone(source))
        .clock(Arc::clone(clock) as _)
        .refresh_margin(Duration::from_secs(30))
        .failure_backoff(Duration::from_secs(1))
        .jitter(0.0)
}

#[tokio::test]
async fn a_source_that_panics_ends_its_flight_with_an_error_and_the_cache_fetches_again_after_the_backoff()
 {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(Fake::new(&clock).then(Next::Panic));
    let cache = builder(&source, &clock).build();
    let error = cache.token().await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(
        error.to_string().contains("ended without an outcome"),
        "{error}"
    );
    assert_eq!(
        cache.token().await.unwrap_err().kind(),
        error.kind(),
        "remembered for the backoff"
    );
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_millis(1001));
    assert_eq!(value(&cache.token().await.unwrap()), "t2");
}

#[test]
fn a_runtime_shut_down_mid_fetch_never_wedges_the_cache_and_its_waiters_elsewhere_get_an_error() {
    let clock = Arc::new(ManualClock::new());
    let (fake, gate) = Fake::gated(&clock);
    let source = Arc::new(fake);
    let cache = builder(&source, &clock).build();
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // The fetch starts on the doomed runtime; a waiter on another runtime
    // joins it.
    let first = doomed.spawn({
        let cache = cache.clone();
        async move { cache.token().await }
    });
    let other = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    other.block_on(async {
        until(|| source.calls.load(Ordering::SeqCst) == 1).await;
        let waiter = tokio::spawn({
            let cache = cache.clone();
            async move { cache.token().await }
        });
        settle().await;
        doomed.shutdown_background(); // mid-fetch
        let error = waiter.await.unwrap().unwrap_err();
        assert!(error.is_transient(), "{error}");
        drop(first);
        clock.advance(Duration::from_millis(1001));
        gate.add_permits(1);
        assert_eq!(
            value(&cache.token().await.unwrap()),
            "t2",
            "a new fetch, on this runtime"
        );
    });
}

#[tokio::test(start_paused = true)]
async fn a_source_that_never_returns_times_out_and_the_cache_fetches_again_after_the_backoff() {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(Fake::new(&clock).then(Next::Hang));
    let cache = builder(&source, &clock)
        .fetch_timeout(Duration::from_secs(5))
        .build();
    let started = tokio::time::Instant::now();
    let error = cache.token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(error.is_transient());
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    clock.advance(Duration::from_millis(1001));
    assert_eq!(value(&cache.token().await.unwrap()), "t2");
}

/// Counts its live fetches: one that is dropped (cancelled) counts down.
struct Stuck(Arc<AtomicUsize>);

impl TokenSource for Stuck {
    fn fetch<'a>(
        &'a self,
        _: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        struct Live(Arc<AtomicUsize>);
        impl Drop for Live {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.0.fetch_add(1, Ordering::SeqCst);
        let live = Live(Arc::clone(&self.0));
        Box::pin(async move {
            let _live = live;
            std::future::pending().await
        })
    }
}

#[tokio::test]
async fn dropping_the_last_handle_cancels_the_flight_and_frees_the_source() {
    let live = Arc::new(AtomicUsize::new(0));
    let source = Arc::new(Stuck(Arc::clone(&live)));
    let cache = TokenCache::builder(Arc::clone(&source)).build();
    let caller = tokio::spawn({
        let cache = cache.clone();
        async move { cache.token().await }
    });
    until(|| live.load(Ordering::SeqCst) == 1).await;
    caller.abort();
    let _ = caller.await;
    settle().await;
    assert_eq!(
        live.load(Ordering::SeqCst),
        1,
        "the flight outlives its caller"
    );
    drop(cache);
    until(|| live.load(Ordering::SeqCst) == 0).await;
    until(|| Arc::strong_count(&source) == 1).await;
}

#[test]
fn without_a_tokio_runtime_a_fetch_is_a_typed_error_not_a_panic() {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(Fake::new(&clock));
    let cache = builder(&source, &clock).build();
    let mut fetch = std::pin::pin!(cache.token());
    let waker = std::task::Waker::noop();
    let std::task::Poll::Ready(outcome) = fetch
        .as_mut()
        .poll(&mut std::task::Context::from_waker(waker))
    else {
        panic!("the outcome is known at once");
    };
    assert_eq!(outcome.unwrap_err().kind(), ErrorKind::Config);
    assert_eq!(source.calls.load(Ordering::SeqCst), 0);
}

// ---- Lifetimes and durations from a provider or a caller ----

#[tokio::test]
async fn a_huge_lifetime_is_clamped_and_served_never_a_panic() {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(Fake::new(&clock).then(Next::Lifetime(Duration::MAX)));
    let cache = builder(&source, &clock).build();
    let token = cache.token().await.unwrap();
    assert_eq!(token.lifetime(), payauth_core::MAX_LIFETIME);
    clock.advance(Duration::from_secs(365 * 86_400));
    cache.token().await.unwrap();
    let stored = StoredToken::from_token(&token);
    assert!(stored.to_token(clock.as_ref()).is_ok());
}

#[tokio::test]
async fn a_lifetime_too_short_to_use_is_malformed_and_remembered_for_the_backoff() {
    for lifetime in [Duration::ZERO, Duration::from_secs(1)] {
        let clock = Arc::new(ManualClock::new());
        let fake = (0..100).fold(Fake::new(&clock), |fake, _| {
            fake.then(Next::Lifetime(lifetime))
        });
        let source = Arc::new(fake);
        let cache = builder(&source, &clock).build();
        for _ in 0..100 {
            let error = cache.token().await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Malformed, "{error}");
            assert!(error.to_string().contains("less than the 10 s"), "{error}");
        }
        assert_eq!(
            source.calls.load(Ordering::SeqCst),
            1,
            "100 calls, one fetch: {lifetime:?}"
        );
    }
}

#[tokio::test]
async fn the_minimum_lifetime_is_a_boundary_ten_seconds_served_a_millisecond_less_refused() {
    for (lifetime, served) in [
        (Duration::from_millis(9_999), false),
        (payauth_core::MIN_LIFETIME, true),
    ] {
        let clock = Arc::new(ManualClock::new());
        let source = Arc::new(Fake::new(&clock).then(Next::Lifetime(lifetime)));
        let cache = builder(&source, &clock).build();
        assert_eq!(cache.token().await.is_ok(), served, "{lifetime:?}");
    }
    assert_eq!(payauth_core::MIN_LIFETIME, Duration::from_secs(10));
}

#[tokio::test]
async fn a_refused_short_lived_token_keeps_its_rotated_refresh_token() {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(MemoryStore::new());
    let source = Arc::new(Fake::new(&clock).then(Next::Lifetime(Duration::from_secs(2))));
    let cache = builder(&source, &clock)
        .store(Arc::clone(&store) as _, "k")
        .build();
    assert_eq!(
        cache.token().await.unwrap_err().kind(),
        ErrorKind::Malformed
    );
    let stored = stored(&store).await.expect("its refresh token is stored");
    assert_eq!(
        stored.refresh_token.map(Secret::from),
        Some(Secret::new("r1"))
    );
    let back = stored_now(&store)
        .unwrap()
        .to_token(clock.as_ref())
        .unwrap();
    assert!(
        !back.is_valid_at(clock.now()),
        "stored expired, never served"
    );
    clock.advance(Duration::from_millis(1001));
    assert_eq!(value(&cache.token().await.unwrap()), "t2");
    assert_eq!(
        *source.seen_refresh_tokens.lock().unwrap(),
        [None, Some("r1".to_owned())],
        "the next fetch refreshed with the refresh token the refused answer rotated"
    );
}

#[tokio::test]
async fn a_token_that_arrives_almost_expired_is_refused_never_served() {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(Fake::new(&clock).then(Next::Slow(Duration::from_secs(95))));
    let cache = builder(&source, &clock).build();
    let error = cache.token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Malformed);
    assert!(error.to_string().contains("arrived with"), "{error}");
    assert!(cache.peek().is_none());
}

#[tokio::test]
async fn after_a_429_with_retry_after_the_next_callers_wait_it_out() {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(Fake::new(&clock).then(Next::RateLimited(Duration::from_secs(120))));
    let cache = builder(&source, &clock)
        .retries(3, Duration::from_millis(1))
        .build();
    assert_eq!(
        cache.token().await.unwrap_err().kind(),
        ErrorKind::RateLimited
    );
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        1,
        "a Retry-After past the retry wait is not waited for inside the fetch"
    );
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        cache.token().await.unwrap_err().kind(),
        ErrorKind::RateLimited
    );
    clock.advance(Duration::from_secs(100));
    assert!(cache.token().await.is_err(), "still inside the 120 s");
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_secs(11));
    assert_eq!(value(&cache.token().await.unwrap()), "t2");
}

#[tokio::test]
async fn a_retry_after_of_a_day_holds_callers_for_the_documented_cap_only() {
    let clock = Arc::new(ManualClock::new());
    let day = Duration::from_secs(86_400);
    let source = Arc::new(Fake::new(&clock).then(Next::RateLimited(day)));
    let cache = builder(&source, &clock).build();
    assert!(cache.token().await.is_err());
    assert_eq!(
        payauth_core::MAX_RETRY_AFTER_BACKOFF,
        Duration::from_secs(300)
    );
    clock.advance(Duration::from_secs(299));
    assert!(cache.token().await.is_err());
    clock.advance(Duration::from_secs(2));
    assert_eq!(value(&cache.token().await.unwrap()), "t2");
}

#[tokio::test(start_paused = true)]
async fn every_builder_input_is_clamped_at_build_so_nothing_panics_later() {
    let durations = [Duration::ZERO, Duration::from_nanos(1), Duration::MAX];
    let fractions = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, 2.0];
    for (i, fraction) in fractions.into_iter().enumerate() {
        for duration in durations {
            let clock = Arc::new(ManualClock::new());
            let fake = Fake::new(&clock)
                .then(Next::Fail(ErrorKind::Unavailable))
                .then(Next::Fail(ErrorKind::Unavailable))
                .then(Next::Token)
                .then(Next::Fail(ErrorKind::Unavailable));
            let source = Arc::new(fake);
            let store = Arc::new(Recording::default());
            store.failing.store(true, Ordering::SeqCst);
            let cache = TokenCache::builder(Arc::clone(&source))
                .clock(Arc::clone(&clock) as _)
                .store(Arc::clone(&store) as _, "k")
                .jitter(fraction)
                .refresh_margin(duration)
                .failure_backoff(duration)
                .retries(u32::MAX, duration)
                .fetch_timeout(duration)
                .build();
            let _ = cache.token().await; // fails, retries, saves and fails
            clock.advance(Duration::from_secs(31));
            let _ = cache.token().await;
            clock.advance(Duration::from_secs(31));
            let _ = cache.token().await;
            settle().await;
            clock.advance(LIFETIME);
            let _ = cache.token().await;
            if let Some(token) = cache.peek() {
                cache.invalidate(&token);
            }
            assert!(
                source.calls.load(Ordering::SeqCst) <= 4 + 11,
                "case {i} {duration:?}: retries are capped"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn retries_are_capped_at_max_retries_whatever_was_asked() {
    let clock = Arc::new(ManualClock::new());
    let fake = (0..30).fold(Fake::new(&clock), |fake, _| {
        fake.then(Next::Fail(ErrorKind::Unavailable))
    });
    let source = Arc::new(fake);
    let cache = builder(&source, &clock)
        .retries(u32::MAX, Duration::MAX)
        .fetch_timeout(Duration::MAX)
        .build();
    assert!(cache.token().await.is_err());
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        1 + payauth_core::MAX_RETRIES as usize
    );
}

#[tokio::test]
async fn a_zero_or_endless_failure_backoff_is_kept_within_its_documented_range() {
    let clock = Arc::new(ManualClock::new());
    let failing = || {
        (0..10).fold(Fake::new(&clock), |fake, _| {
            fake.then(Next::Fail(ErrorKind::Unavailable))
        })
    };
    let source = Arc::new(failing());
    let cache = builder(&source, &clock)
        .failure_backoff(Duration::ZERO)
        .build();
    for _ in 0..100 {
        assert!(cache.token().await.is_err());
    }
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        1,
        "at least MIN_FAILURE_BACKOFF"
    );
    clock.advance(payauth_core::MIN_FAILURE_BACKOFF);
    assert!(cache.token().await.is_err());
    assert_eq!(source.calls.load(Ordering::SeqCst), 2);

    let source = Arc::new(failing());
    let cache = builder(&source, &clock)
        .failure_backoff(Duration::MAX)
        .build();
    assert!(cache.token().await.is_err());
    clock.advance(payauth_core::MAX_FAILURE_BACKOFF);
    assert!(cache.token().await.is_err());
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        2,
        "at most MAX_FAILURE_BACKOFF"
    );
}

// ---- 401s ----

#[tokio::test]
async fn an_api_that_rejects_every_token_gets_one_renewal_per_backoff_window() {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(Fake::new(&clock));
    let cache = builder(&source, &clock).build();
    for _ in 0..50 {
        let token = cache.token().await.unwrap();
        cache.invalidate(&token);
    }
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        2,
        "the first token and one renewal"
    );
    // After the window, one more; the window then doubles.
    clock.advance(Duration::from_millis(1001));
    for _ in 0..50 {
        let token = cache.token().await.unwrap();
        cache.invalidate(&token);
    }
    assert_eq!(source.calls.load(Ordering::SeqCst), 3);
    clock.advance(Duration::from_millis(1500));
    let token = cache.token().await.unwrap();
    assert!(!cache.invalidate(&token), "inside the doubled window");
    clock.advance(Duration::from_millis(600));
    assert!(cache.invalidate(&token));
    assert_eq!(value(&cache.token().await.unwrap()), "t4");
}

#[tokio::test]
async fn a_token_that_lived_to_its_refresh_starts_the_renewal_window_over() {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(Fake::new(&clock));
    let cache = builder(&source, &clock).build();
    // Four renewals in a row: the window has doubled to 8 s.
    for gap in [0, 1_001, 2_001, 4_001] {
        clock.advance(Duration::from_millis(gap));
        let token = cache.token().await.unwrap();
        assert!(cache.invalidate(&token));
    }
    // This token lives to its refresh: the next 401 renews at once, and
    // the window is back to 1 s.
    cache.token().await.unwrap();
    clock.advance(LIFETIME);
    let lived = cache.token().await.unwrap();
    assert!(cache.invalidate(&lived));
    clock.advance(Duration::from_millis(1_500));
    let renewed = cache.token().await.unwrap();
    assert!(
        cache.invalidate(&renewed),
        "the window started over at 1 s, not at 16 s"
    );
}

// ---- The store ----

fn stored_cache(
    source: &Arc<Fake>,
    clock: &Arc<ManualClock>,
    store: &Arc<MemoryStore>,
) -> TokenCache {
    builder(source, clock)
        .store(Arc::clone(store) as _, "k")
        .build()
}

async fn stored(store: &MemoryStore) -> Option<StoredToken> {
    store.load("k").await.unwrap()
}

/// A token `value` living `LIFETIME` from now on `clock`.
fn minted(clock: &ManualClock, value: &str, refresh: Option<&str>) -> AccessToken {
    AccessToken::new(Secret::new(value), "Bearer", Issued::now(clock), LIFETIME)
        .unwrap()
        .with_refresh_token(refresh.map(Secret::new))
}

/// What the memory store holds, read at once (its futures are ready).
fn stored_now(store: &MemoryStore) -> Option<StoredToken> {
    let mut load = store.load("k");
    match load
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(stored) => stored.unwrap(),
        std::task::Poll::Pending => panic!("a memory store answers at once"),
    }
}

#[tokio::test]
async fn invalidate_clears_a_rejected_token_from_the_store_so_the_next_process_fetches() {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(MemoryStore::new());
    // A token without a refresh token: removed outright.
    let minted = minted(&clock, "alone", None);
    store
        .save("k", &StoredToken::from_token(&minted))
        .await
        .unwrap();
    let source = Arc::new(Fake::new(&clock).then(Next::Fail(ErrorKind::Unavailable)));
    let cache = stored_cache(&source, &clock, &store);
    let token = cache.token().await.unwrap();
    assert_eq!(value(&token), "alone");
    assert!(cache.invalidate(&token));
    until(|| stored_now(&store).is_none()).await;

    let next_process = stored_cache(&Arc::new(Fake::new(&clock)), &clock, &store);
    assert_eq!(value(&next_process.token().await.unwrap()), "t1");
}

#[tokio::test]
async fn a_rejected_token_with_a_refresh_token_is_stored_expired_keeping_the_refresh_token() {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(MemoryStore::new());
    let source = Arc::new(
        Fake::new(&clock)
            .then(Next::Token)
            .then(Next::Fail(ErrorKind::Unavailable)),
    );
    let cache = stored_cache(&source, &clock, &store);
    let token = cache.token().await.unwrap();
    assert!(cache.invalidate(&token));
    let _ = cache.token().await; // the renewal fails: the store keeps t1
    until(|| {
        stored_now(&store).is_some_and(|s| {
            s.to_token(clock.as_ref())
                .is_ok_and(|t| !t.is_valid_at(clock.now()))
        })
    })
    .await;

    let next = Arc::new(Fake::new(&clock));
    let next_process = stored_cache(&next, &clock, &store);
    next_process.token().await.unwrap();
    assert_eq!(
        *next.seen_refresh_tokens.lock().unwrap(),
        [Some("r1".to_owned())],
        "the next process refreshes with the stored refresh token"
    );
}

#[tokio::test]
async fn invalidate_never_clears_a_newer_token_another_process_stored() {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(MemoryStore::new());
    let source = Arc::new(Fake::new(&clock));
    let cache = stored_cache(&source, &clock, &store);
    let token = cache.token().await.unwrap();
    clock.advance(Duration::from_millis(5));
    let newer = minted(&clock, "newer", Some("r-newer"));
    store
        .save("k", &StoredToken::from_token(&newer))
        .await
        .unwrap();
    assert!(cache.invalidate(&token));
    settle().await;
    assert_eq!(stored(&store).await, Some(StoredToken::from_token(&newer)));
}

#[tokio::test]
async fn forget_drops_a_token_whatever_the_renewal_window_and_clears_the_store() {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(MemoryStore::new());
    let source = Arc::new(Fake::new(&clock));
    let cache = stored_cache(&source, &clock, &store);
    let first = cache.token().await.unwrap();
    assert!(cache.invalidate(&first));
    let second = cache.token().await.unwrap();
    assert!(!cache.invalidate(&second), "inside the renewal window");
    assert!(
        cache.forget(&second).await.unwrap(),
        "revoked: dropped anyway"
    );
    let stored = stored(&store)
        .await
        .unwrap()
        .to_token(clock.as_ref())
        .unwrap();
    assert!(
        !stored.is_valid_at(clock.now()),
        "never served again from the store"
    );
    assert_eq!(value(&cache.token().await.unwrap()), "t3");
}

#[tokio::test]
async fn an_invalidation_without_a_runtime_clears_the_store_at_the_next_fetch() {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(MemoryStore::new());
    let source = Arc::new(
        Fake::new(&clock)
            .then(Next::Token)
            .then(Next::Fail(ErrorKind::Unavailable)),
    );
    let cache = stored_cache(&source, &clock, &store);
    let token = cache.token().await.unwrap();
    let invalidated = std::thread::spawn({
        let (cache, token) = (cache.clone(), Arc::clone(&token));
        move || cache.invalidate(&token)
    });
    assert!(invalidated.join().unwrap());
    assert!(
        stored(&store)
            .await
            .unwrap()
            .to_token(clock.as_ref())
            .unwrap()
            .is_valid_at(clock.now())
    );
    let _ = cache.token().await;
    let stored = stored(&store)
        .await
        .unwrap()
        .to_token(clock.as_ref())
        .unwrap();
    assert!(!stored.is_valid_at(clock.now()));
}

/// A source that needs a refresh token (a login saved by someone else).
struct NeedsLogin(Arc<ManualClock>, AtomicUsize);

impl TokenSource for NeedsLogin {
    fn fetch<'a>(
        &'a self,
        previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async move {
            self.1.fetch_add(1, Ordering::SeqCst);
            let Some(refresh) = previous.and_then(|p| p.refresh_token()) else {
                return Err(Error::new(ErrorKind::InvalidGrant).with_description("log in first"));
            };
            AccessToken::new(
                Secret::new(format!("from-{}", refresh.expose_secret())),
                "Bearer",
                Issued::now(self.0.as_ref()),
                LIFETIME,
            )
        })
    }
}

#[tokio::test]
async fn a_login_saved_after_startup_is_picked_up_without_a_restart() {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(MemoryStore::new());
    let source = Arc::new(NeedsLogin(Arc::clone(&clock), AtomicUsize::new(0)));
    let cache = TokenCache::builder(Arc::clone(&source))
        .clock(Arc::clone(&clock) as _)
        .store(Arc::clone(&store) as _, "k")
        .jitter(0.0)
        .build();
    assert_eq!(
        cache.token().await.unwrap_err().kind(),
        ErrorKind::InvalidGrant
    );
    // `payauth login` (another process) saves a login, already expired.
    let login = minted(&clock, "login", Some("rt-login"));
    store
        .save("k", &StoredToken::from_token(&login))
        .await
        .unwrap();
    clock.advance(LIFETIME);
    assert_eq!(value(&cache.token().await.unwrap()), "from-rt-login");
}

#[tokio::test]
async fn a_seeded_token_is_served_without_a_fetch_and_its_refresh_token_feeds_the_next() {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(Fake::new(&clock));
    let exchanged = minted(&clock, "exchanged", Some("r-exchanged"));
    let cache = builder(&source, &clock).seed(exchanged).build();
    assert_eq!(value(&cache.token().await.unwrap()), "exchanged");
    assert_eq!(source.calls.load(Ordering::SeqCst), 0);
    clock.advance(LIFETIME);
    cache.token().await.unwrap();
    assert_eq!(
        *source.seen_refresh_tokens.lock().unwrap(),
        [Some("r-exchanged".to_owned())]
    );
}

#[tokio::test]
async fn a_seeded_token_is_saved_by_the_first_call_unless_the_store_holds_a_newer_one() {
    let clock = Arc::new(ManualClock::new());
    let seed = || minted(&clock, "seed", None);
    let store = Arc::new(MemoryStore::new());
    let cache = builder(&Arc::new(Fake::new(&clock)), &clock)
        .store(Arc::clone(&store) as _, "k")
        .seed(seed())
        .build();
    cache.token().await.unwrap();
    until(|| stored_now(&store).is_some()).await;

    let older = seed();
    clock.advance(Duration::from_millis(5));
    let newer = minted(&clock, "newer", None);
    store
        .save("k", &StoredToken::from_token(&newer))
        .await
        .unwrap();
    let cache = builder(&Arc::new(Fake::new(&clock)), &clock)
        .store(Arc::clone(&store) as _, "k")
        .seed(older)
        .build();
    cache.token().await.unwrap();
    settle().await;
    assert_eq!(stored(&store).await, Some(StoredToken::from_token(&newer)));
}

/// Tokio's paused time as a `Clock`, as a simulation would drive it.
struct TokioClock {
    start: tokio::time::Instant,
    system: std::time::SystemTime,
}

impl payauth_core::Clock for TokioClock {
    fn now(&self) -> std::time::Instant {
        tokio::time::Instant::now().into_std()
    }

    fn system_now(&self) -> std::time::SystemTime {
        self.system + self.start.elapsed()
    }
}

/// Tokens living 100 s, minted on tokio's clock.
struct TokioSource(Arc<TokioClock>, AtomicUsize);

impl TokenSource for TokioSource {
    fn fetch<'a>(
        &'a self,
        _: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async move {
            let issued = Issued::now(self.0.as_ref());
            tokio::time::sleep(Duration::from_millis(200)).await;
            let n = self.1.fetch_add(1, Ordering::SeqCst) + 1;
            AccessToken::new(Secret::new(format!("t{n}")), "Bearer", issued, LIFETIME)
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_cache_on_a_custom_clock_works_with_tokio_time_paused() {
    let clock = Arc::new(TokioClock {
        start: tokio::time::Instant::now(),
        system: std::time::SystemTime::now(),
    });
    let source = Arc::new(TokioSource(Arc::clone(&clock), AtomicUsize::new(0)));
    let cache = TokenCache::builder(Arc::clone(&source))
        .clock(Arc::clone(&clock) as _)
        .refresh_margin(Duration::from_secs(30))
        .jitter(0.0)
        .build();
    let callers: Vec<_> = (0..100)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.token().await.map(|t| value(&t).to_owned()) })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap(), "t1");
    }
    tokio::time::sleep(LIFETIME).await;
    assert_eq!(value(&cache.token().await.unwrap()), "t2");
    assert_eq!(source.1.load(Ordering::SeqCst), 2);
}

/// A store that never answers (a hung mount).
struct Hung;

impl TokenStore for Hung {
    fn load<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
        Box::pin(std::future::pending())
    }

    fn save<'a>(&'a self, _: &'a str, _: &'a StoredToken) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(std::future::pending())
    }

    fn clear<'a>(&'a self, _: &'a str, _: Option<&'a Secret>) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn a_store_that_never_answers_holds_no_caller_past_the_fetch_timeout() {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(Fake::new(&clock));
    let cache = builder(&source, &clock)
        .store(Arc::new(Hung), "k")
        .fetch_timeout(Duration::from_secs(3))
        .build();
    let started = tokio::time::Instant::now();
    // The read counted as none, the token was fetched, and the save that
    // never answered left it in memory, served.
    assert_eq!(value(&cache.token().await.unwrap()), "t1");
    assert!(started.elapsed() <= Duration::from_secs(3));
    assert_eq!(value(&cache.token().await.unwrap()), "t1");
    let error = cache.flush().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store, "{error}");
    assert!(error.to_string().contains("did not answer"), "{error}");
    assert!(started.elapsed() <= Duration::from_secs(3));
    let error = cache.forget(&cache.peek().unwrap()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store, "forget is bounded too");
    assert!(started.elapsed() <= Duration::from_secs(3));
}

#[tokio::test]
async fn a_store_failing_during_a_clear_is_reported_and_never_brings_the_token_back() {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(Recording::default());
    let source = Arc::new(Fake::new(&clock));
    let cache = builder(&source, &clock)
        .store(Arc::clone(&store) as _, "k")
        .build();
    let token = cache.token().await.unwrap();
    store.failing.store(true, Ordering::SeqCst);
    let error = cache.forget(&token).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store);
    assert!(cache.peek().is_none(), "dropped from memory all the same");
    store.failing.store(false, Ordering::SeqCst);
    assert_eq!(value(&cache.token().await.unwrap()), "t2");
}

#[tokio::test]
async fn invalidate_expires_the_rejected_token_only_if_the_store_still_holds_it() {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(MemoryStore::new());
    let source = Arc::new(Fake::new(&clock));
    let cache = stored_cache(&source, &clock, &store);
    let token = cache.token().await.unwrap();
    // Another process stored a login from a clock that reads earlier.
    let mut login = StoredToken::from_token(&minted(&clock, "login", Some("r-login")));
    login.issued_at_unix_ms -= 60_000;
    store.save("k", &login).await.unwrap();
    assert!(cache.invalidate(&token));
    settle().await;
    assert_eq!(
        stored(&store).await,
        Some(login),
        "not the rejected token: kept"
    );
}

// ---- Boundaries and formulas (pinned after mutation testing) ----

#[tokio::test]
async fn at_the_refresh_instant_exactly_the_refresh_starts() {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(Fake::new(&clock));
    let cache = builder(&source, &clock).build();
    cache.token().await.unwrap();
    clock.advance(Duration::from_secs(70)); // 100 s less the 30 s margin
    assert_eq!(value(&cache.token().await.unwrap()), "t1", "still valid");
    until(|| source.calls.load(Ordering::SeqCst) == 2).await;
}

#[tokio::test]
async fn the_backoff_jitter_adds_up_to_a_quarter_of_the_backoff() {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(Fake::new(&clock).then(Next::Fail(ErrorKind::Unavailable)));
    let cache = builder(&source, &clock).jitter(1.0).build();
    assert!(cache.token().await.is_err());
    clock.advance(Duration::from_millis(1_240));
    assert!(cache.token().await.is_err(), "1 s + 25 % not over yet");
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_millis(20));
    assert_eq!(value(&cache.token().await.unwrap()), "t2");
}

#[tokio::test]
async fn after_invalid_grant_the_next_fetch_starts_without_the_refused_refresh_token() {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(
        Fake::new(&clock)
            .then(Next::Token)
            .then(Next::Fail(ErrorKind::InvalidGrant)),
    );
    let cache = builder(&source, &clock).build();
    let first = cache.token().await.unwrap();
    assert!(cache.invalidate(&first));
    assert_eq!(
        cache.token().await.unwrap_err().kind(),
        ErrorKind::InvalidGrant
    );
    clock.advance(Duration::from_millis(1001));
    cache.token().await.unwrap();
    assert_eq!(
        *source.seen_refresh_tokens.lock().unwrap(),
        [None, Some("r1".to_owned()), None]
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_up_to_the_retry_wait_is_waited_for_inside_the_fetch() {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(Fake::new(&clock).then(Next::RateLimited(payauth_core::MAX_RETRY_WAIT)));
    let cache = builder(&source, &clock)
        .retries(1, Duration::from_millis(1))
        .build();
    let started = tokio::time::Instant::now();
    assert_eq!(value(&cache.token().await.unwrap()), "t2");
    assert_eq!(started.elapsed(), payauth_core::MAX_RETRY_WAIT);
    assert_eq!(payauth_core::MAX_RETRY_WAIT, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn retry_waits_double_from_the_configured_wait() {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(
        Fake::new(&clock)
            .then(Next::Fail(ErrorKind::Unavailable))
            .then(Next::Fail(ErrorKind::Unavailable)),
    );
    let cache = builder(&source, &clock)
        .retries(2, Duration::from_millis(100))
        .build();
    let started = tokio::time::Instant::now();
    assert_eq!(value(&cache.token().await.unwrap()), "t3");
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(300),
        "100 ms, then 200 ms"
    );
}

#[tokio::test]
async fn at_the_end_of_the_renewal_window_exactly_a_401_renews_again() {
    let clock = Arc::new(ManualClock::new());
    let source = Arc::new(Fake::new(&clock));
    let cache = builder(&source, &clock).build();
    let first = cache.token().await.unwrap();
    assert!(cache.invalidate(&first));
    let second = cache.token().await.unwrap();
    clock.advance(Duration::from_millis(999));
    assert!(!cache.invalidate(&second));
    clock.advance(Duration::from_millis(1));
    assert!(cache.invalidate(&second));
}

/// Client credentials: tokens `c<n>` without refresh tokens.
struct Credentials(Arc<ManualClock>, AtomicUsize);

impl TokenSource for Credentials {
    fn fetch<'a>(
        &'a self,
        _: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async move {
            let n = self.1.fetch_add(1, Ordering::SeqCst) + 1;
            AccessToken::new(
                Secret::new(format!("c{n}")),
                "Bearer",
                Issued::now(self.0.as_ref()),
                LIFETIME,
            )
        })
    }
}

#[tokio::test]
async fn a_token_another_process_stored_is_taken_up_at_the_next_refresh_never_refreshed_over() {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(MemoryStore::new());
    // Client credentials: the fresh stored token is served, no fetch.
    let source = Arc::new(Credentials(Arc::clone(&clock), AtomicUsize::new(0)));
    let cache = TokenCache::builder(Arc::clone(&source))
        .clock(Arc::clone(&clock) as _)
        .store(Arc::clone(&store) as _, "k")
        .refresh_margin(Duration::from_secs(30))
        .jitter(0.0)
        .build();
    cache.token().await.unwrap();
    clock.advance(Duration::from_secs(75));
    let other = minted(&clock, "other", None);
    store
        .save("k", &StoredToken::from_token(&other))
        .await
        .unwrap();
    assert_eq!(value(&cache.token().await.unwrap()), "c1");
    until(|| cache.peek().is_some_and(|t| value(&t) == "other")).await;
    assert_eq!(source.1.load(Ordering::SeqCst), 1);
    // A refresh token in memory, expired: the login stored since wins
    // over it.
    let store = Arc::new(MemoryStore::new());
    let source = Arc::new(Fake::new(&clock));
    let cache = stored_cache(&source, &clock, &store);
    cache.token().await.unwrap();
    clock.advance(LIFETIME);
    let login = minted(&clock, "login", Some("r-login"));
    store
        .save("k", &StoredToken::from_token(&login))
        .await
        .unwrap();
    assert_eq!(value(&cache.token().await.unwrap()), "login");
    clock.advance(LIFETIME);
    assert_eq!(value(&cache.token().await.unwrap()), "t2");
    assert_eq!(
        *source.seen_refresh_tokens.lock().unwrap(),
        [None, Some("r-login".to_owned())]
    );
}

#[tokio::test]
async fn the_debug_form_names_the_store_key() {
    let clock = Arc::new(ManualClock::new());
    let cache = builder(&Arc::new(Fake::new(&clock)), &clock)
        .store(Arc::new(MemoryStore::new()), "mypos/client-1")
        .build();
    assert!(format!("{cache:?}").contains("mypos/client-1"));
}

#[tokio::test]
async fn flush_saves_a_token_whose_save_failed_and_reports_a_store_still_failing() {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(Recording::default());
    store.failing.store(true, Ordering::SeqCst);
    let source = Arc::new(Fake::new(&clock));
    let cache = TokenCache::builder(Arc::clone(&source) as Arc<dyn TokenSource>)
        .clock(Arc::clone(&clock) as _)
        .store(Arc::clone(&store) as _, "k")
        .failure_backoff(Duration::from_secs(30))
        .jitter(0.0)
        .build();
    assert_eq!(value(&cache.token().await.unwrap()), "t1");
    settle().await;
    let tried = store.saves.load(Ordering::SeqCst);
    // Within the backoff, flush writes at once and says the store failed.
    let error = cache.flush().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store);
    assert_eq!(store.saves.load(Ordering::SeqCst), tried + 1);
    store.failing.store(false, Ordering::SeqCst);
    cache.flush().await.unwrap();
    assert_eq!(store.saves.load(Ordering::SeqCst), tried + 2);
    // Saved: nothing left to flush, no write.
    cache.flush().await.unwrap();
    assert_eq!(store.saves.load(Ordering::SeqCst), tried + 2);
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn flush_without_a_token_or_a_store_does_nothing() {
    let clock = Arc::new(ManualClock::new());
    let cache = builder(&Arc::new(Fake::new(&clock)), &clock).build();
    cache.flush().await.unwrap();
    cache.token().await.unwrap();
    cache.flush().await.unwrap();
}

// ---- Rotated refresh tokens are never lost ----

/// Where the access token of a rotated, unsaved refresh token went.
#[derive(Debug, Clone, Copy)]
enum Went {
    Published,
    RejectedBy401,
    TooShortLivedToServe,
    SeededThenRejectedBy401,
}

#[tokio::test]
async fn flush_reports_every_rotated_refresh_token_not_yet_saved_wherever_its_access_token_went() {
    for went in [
        Went::Published,
        Went::RejectedBy401,
        Went::TooShortLivedToServe,
        Went::SeededThenRejectedBy401,
    ] {
        let clock = Arc::new(ManualClock::new());
        let store = Arc::new(Recording::default());
        let mut source = Fake::new(&clock);
        if let Went::TooShortLivedToServe = went {
            source = source.then(Next::Lifetime(Duration::from_secs(2)));
        }
        let mut builder = builder(&Arc::new(source), &clock).store(Arc::clone(&store) as _, "k");
        if let Went::SeededThenRejectedBy401 = went {
            builder = builder.seed(minted(&clock, "exchanged", Some("r-exchanged")));
        }
        let cache = builder.build();
        store.failing.store(true, Ordering::SeqCst);
        let rotated = match went {
            Went::Published => {
                cache.token().await.unwrap();
                "r1"
            }
            Went::RejectedBy401 => {
                let token = cache.token().await.unwrap();
                assert!(cache.invalidate(&token));
                "r1"
            }
            Went::TooShortLivedToServe => {
                let error = cache.token().await.unwrap_err();
                assert_eq!(error.kind(), ErrorKind::Malformed);
                "r1"
            }
            Went::SeededThenRejectedBy401 => {
                let token = cache.peek().unwrap();
                assert!(cache.invalidate(&token));
                "r-exchanged"
            }
        };
        settle().await;
        let error = cache.flush().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Store, "{went:?}");
        store.failing.store(false, Ordering::SeqCst);
        cache.flush().await.unwrap();
        let stored = store.inner.load("k").await.unwrap();
        assert_eq!(
            stored.and_then(|s| s.refresh_token).map(Secret::from),
            Some(Secret::new(rotated)),
            "{went:?}: the rotated refresh token is in the store once flush says Ok"
        );
    }
}

#[tokio::test]
async fn a_login_stored_while_a_refresh_runs_is_never_overwritten_and_the_next_refresh_starts_from_it()
 {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(MemoryStore::new());
    let (source, gate) = Fake::gated(&clock);
    let source = Arc::new(source);
    let cache = stored_cache(&source, &clock, &store);
    gate.add_permits(1);
    cache.token().await.unwrap();
    clock.advance(LIFETIME);
    let refresh = tokio::spawn({
        let cache = cache.clone();
        async move { cache.token().await }
    });
    until(|| source.calls.load(Ordering::SeqCst) == 2).await;
    // `payauth login` (another process) stores a new login meanwhile.
    let login = StoredToken::from_token(&minted(&clock, "login", Some("r-login")));
    store.save("k", &login).await.unwrap();
    gate.add_permits(2);
    assert_eq!(value(&refresh.await.unwrap().unwrap()), "t2");
    assert_eq!(stored(&store).await, Some(login), "the login stands");
    cache.flush().await.unwrap();
    clock.advance(LIFETIME);
    cache.token().await.unwrap();
    assert_eq!(
        source.seen_refresh_tokens.lock().unwrap().last().cloned(),
        Some(Some("r-login".to_owned())),
        "the next refresh starts from the stored login, not the superseded chain"
    );
}

#[tokio::test]
async fn once_a_newer_token_is_saved_a_later_unsaved_one_is_still_refreshed_from_not_the_stored_one()
 {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(Recording::default());
    let source = Arc::new(Fake::new(&clock));
    let cache = builder(&source, &clock)
        .store(Arc::clone(&store) as _, "k")
        .build();
    // Saved, unsaved, saved, unsaved: each refresh starts from the newest.
    for failing in [false, true, false, true, true] {
        store.failing.store(failing, Ordering::SeqCst);
        cache.token().await.unwrap();
        clock.advance(LIFETIME);
    }
    assert_eq!(
        *source.seen_refresh_tokens.lock().unwrap(),
        [
            None,
            Some("r1".to_owned()),
            Some("r2".to_owned()),
            Some("r3".to_owned()),
            Some("r4".to_owned())
        ],
        "never the stored r3 once r4 was in memory"
    );
}

#[tokio::test]
async fn after_a_save_refused_over_a_login_a_refresh_while_the_store_is_unreadable_never_overwrites_it()
 {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(Recording::default());
    let (source, gate) = Fake::gated(&clock);
    let source = Arc::new(source);
    let cache = builder(&source, &clock)
        .store(Arc::clone(&store) as _, "k")
        .build();
    gate.add_permits(1);
    cache.token().await.unwrap();
    clock.advance(LIFETIME);
    let refresh = tokio::spawn({
        let cache = cache.clone();
        async move { cache.token().await }
    });
    until(|| source.calls.load(Ordering::SeqCst) == 2).await;
    let login = StoredToken::from_token(&minted(&clock, "login", Some("r-login")));
    store.inner.save("k", &login).await.unwrap();
    gate.add_permits(10);
    assert_eq!(value(&refresh.await.unwrap().unwrap()), "t2");
    // The store cannot be read (a blip): the cache refreshes from memory,
    // but its save never lands over the login, whatever the issue times
    // say.
    store.failing_loads.store(1, Ordering::SeqCst);
    clock.advance(LIFETIME);
    assert_eq!(value(&cache.token().await.unwrap()), "t3");
    assert_eq!(store.inner.load("k").await.unwrap(), Some(login));
}

#[tokio::test]
async fn a_fresh_stored_token_is_never_taken_up_over_a_newer_unsaved_one_in_memory() {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(Recording::default());
    let source = Arc::new(Fake::new(&clock));
    let cache = builder(&source, &clock)
        .store(Arc::clone(&store) as _, "k")
        .build();
    let t1 = cache.token().await.unwrap();
    // The API rejects t1, and the store cannot take anything: it keeps
    // t1, fresh. t2 is fetched from r1 and not saved; the API rejects it
    // too.
    store.failing.store(true, Ordering::SeqCst);
    assert!(cache.invalidate(&t1));
    settle().await;
    let t2 = cache.token().await.unwrap();
    assert_eq!(value(&t2), "t2");
    clock.advance(Duration::from_millis(1100));
    assert!(cache.invalidate(&t2));
    settle().await;
    // The next fetch refreshes from r2, not from the stored t1 (whose
    // refresh token r1 the provider rotated away).
    assert_eq!(value(&cache.token().await.unwrap()), "t3");
    assert_eq!(
        *source.seen_refresh_tokens.lock().unwrap(),
        [None, Some("r1".to_owned()), Some("r2".to_owned())]
    );
}
