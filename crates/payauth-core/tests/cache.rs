//! `TokenCache` behaviour with a fake source: counted calls, a gate instead
//! of sleeps, a manual clock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

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
            match next {
                Next::Token => {
                    Ok(
                        AccessToken::new(Secret::new(format!("t{n}")), "Bearer", issued, LIFETIME)?
                            .with_refresh_token(Some(Secret::new(format!("r{n}")))),
                    )
                }
                Next::Fail(kind) => {
                    let status = if kind == ErrorKind::Unavailable {
                        503
                    } else {
                        400
                    };
                    Err(Error::new(kind).with_status(status))
                }
            }
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
}

impl TokenStore for Recording {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>, Error>> {
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
    let first = cache.token().await.unwrap();
    cache.invalidate(&first);
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
    let minted = AccessToken::new(
        Secret::new("stored"),
        "Bearer",
        Issued::now(clock.as_ref()),
        LIFETIME,
    )
    .unwrap();
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
    let error = cache.token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Store);
    // Served from memory; no retry before the backoff.
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
