//! A fleet sharing one token through Redis: two caches stand for two
//! replicas (each with its own HTTP client and Redis connection); between
//! them they make one upstream fetch.
//!
//! Needs a Redis: `REDIS_URL` (default `redis://127.0.0.1:6379/`), e.g.
//! `redis-server --port 6379 --save ''` in another terminal.
//!
//! `cargo run -p payauth --example fleet_redis --features mypos,redis`

use std::sync::Arc;

use payauth::core::{Environment, FlowSettings, Secret, TokenCache};
use payauth::mypos::MyposSettings;
use payauth::redis::RedisStore;
use payauth_sandbox::{Endpoint, Sandbox, defaults};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::builder().start().await?;
    let redis_url = Secret::new(
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned()),
    );

    let mut replicas = Vec::new();
    for _ in 0..2 {
        // What each replica does at startup.
        let settings = MyposSettings::new(
            defaults::MYPOS_CLIENT_ID,
            Secret::new(defaults::MYPOS_CLIENT_SECRET), // production: Secret::from_env(…)?
            Environment::Custom(sandbox.base_url()),
        );
        let mypos = settings.build(&payauth::core::http::default_client()?)?;
        let store = RedisStore::connect(&redis_url)
            .await?
            .with_prefix("payauth-example");
        replicas.push(
            TokenCache::builder(mypos)
                // The key names the flow: replicas with the same settings share tokens.
                .shared_store(Arc::new(store), settings.store_key()?)
                .build(),
        );
    }

    let (one, two) = tokio::join!(replicas[0].token(), replicas[1].token());
    assert_eq!(one?.secret(), two?.secret());
    println!(
        "two replicas, one token, {} upstream fetch",
        sandbox.requests(Endpoint::MyposToken)
    );
    sandbox.shutdown().await;
    Ok(())
}
