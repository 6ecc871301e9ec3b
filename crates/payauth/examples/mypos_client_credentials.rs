//! myPOS client credentials through a `TokenCache`, used by an API client
//! via the `BearerAuth` middleware (Bearer, `API-Key`, `X-Request-ID`).
//! Runs against the loopback sandbox: `cargo run -p payauth --example
//! mypos_client_credentials --features mypos,reqwest-middleware`.

use std::sync::Arc;

use payauth::core::{Environment, Secret, TokenCache};
use payauth::middleware::BearerAuth;
use payauth::mypos::{Mypos, MyposSettings};
use payauth_sandbox::{Sandbox, defaults};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::builder().start().await?;
    let http = payauth::core::http::default_client()?; // build once, share

    // In production: Environment::Production and Secret::from_env("MYPOS_CLIENT_SECRET")?.
    let settings = MyposSettings::new(
        defaults::MYPOS_CLIENT_ID,
        Secret::new(defaults::MYPOS_CLIENT_SECRET),
        Environment::Custom(sandbox.base_url()),
    );
    let mypos = Arc::new(Mypos::new(&settings, &http)?);
    let cache = TokenCache::builder(mypos.clone()).build();

    let token = cache.token().await?;
    println!(
        "token: {}, expires in {}s",
        token.token_type(),
        token.lifetime().as_secs()
    );

    // Your own API calls (your own reqwest client, with your own features:
    // payauth turns on none of reqwest's) get the token the myPOS way: the
    // cache carries its scheme (Bearer, `API-Key`, a fresh `X-Request-ID`).
    let api = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(cache.clone()))
        .build();
    let _ = api; // api.get("https://api.mypos.com/...").send().await?

    mypos.revoke_cached(&cache).await?;
    println!(
        "revoked: {}",
        sandbox.is_revoked(token.secret().expose_secret())
    );
    sandbox.shutdown().await;
    Ok(())
}
