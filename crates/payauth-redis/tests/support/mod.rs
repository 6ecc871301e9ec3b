//! The test Redis (from payauth-testkit) and stores on it.

#![allow(dead_code, unreachable_pub)]

use payauth_core::Secret;
use payauth_redis::RedisStore;
pub use payauth_testkit::redis::Redis;

/// A store on its own connection, as a separate replica would have.
pub async fn new_store(redis: &Redis) -> RedisStore {
    RedisStore::connect(&Secret::new(redis.url.clone()))
        .await
        .expect("connect to the test Redis")
        .with_prefix(redis.prefix.clone())
}

/// A raw connection, to look at what is stored.
pub async fn raw_conn(redis: &Redis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}
