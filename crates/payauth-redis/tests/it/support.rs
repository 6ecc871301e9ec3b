//! The test Redis (from payauth-testkit) and stores on it.

use std::sync::Arc;

use payauth_core::{Clock, ManualClock, Secret, TokenCache};
use payauth_mypos::{Mypos, MyposSettings};
use payauth_redis::RedisStore;
use payauth_sandbox::{RunningSandbox, defaults};
pub(crate) use payauth_testkit::redis::Redis;

/// A store on its own connection, as a separate replica would have.
pub(crate) async fn new_store(redis: &Redis) -> RedisStore {
    RedisStore::connect(&Secret::new(redis.url.clone()))
        .await
        .expect("connect to the test Redis")
        .with_prefix(redis.prefix.clone())
}

/// A raw connection, to look at what is stored.
pub(crate) async fn raw_conn(redis: &Redis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// A myPOS source on the sandbox, on its own HTTP client, reading `clock`.
pub(crate) fn mypos(sandbox: &RunningSandbox, clock: &Arc<ManualClock>) -> Mypos {
    let settings = MyposSettings::new(
        defaults::MYPOS_CLIENT_ID,
        Secret::new(defaults::MYPOS_CLIENT_SECRET),
        payauth_core::Environment::Custom(sandbox.base_url()),
    );
    Mypos::new(&settings, &payauth_core::http::default_client().unwrap())
        .unwrap()
        .with_clock(Arc::clone(clock) as Arc<dyn Clock>)
}

/// `callers` calls of every replica at once; the tokens they got.
pub(crate) async fn herd(replicas: &[TokenCache], callers: usize) -> Vec<String> {
    let callers: Vec<_> = replicas
        .iter()
        .flat_map(|cache| std::iter::repeat_n(cache, callers))
        .map(|cache| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.token().await })
        })
        .collect();
    let mut tokens = Vec::with_capacity(callers.len());
    for caller in callers {
        let token = caller.await.unwrap().expect("every caller gets a token");
        tokens.push(token.secret().expose_secret().to_owned());
    }
    tokens
}
