//! Token requests through your own `reqwest::Client` (its proxies, roots,
//! client identity, TLS backend), with what payauth promises kept: its
//! timeout and body cap, and no redirect followed. Runs against the
//! loopback sandbox: `cargo run -p payauth --example own_reqwest_client
//! --features mypos,reqwest-client`.

use std::time::Duration;

use payauth::core::http::HttpClient;
use payauth::core::{Environment, Secret, TokenCache};
use payauth::mypos::{Mypos, MyposSettings};
use payauth_sandbox::{Sandbox, defaults};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::builder().start().await?;

    // Your client, configured as your network needs. Never following a
    // redirect: payauth refuses an answer reached by one.
    let own = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let http = HttpClient::builder()
        .timeout(Duration::from_secs(20))
        .build_on_reqwest(own)?;
    println!("{http:?}");

    let settings = MyposSettings::new(
        defaults::MYPOS_CLIENT_ID,
        Secret::new(defaults::MYPOS_CLIENT_SECRET),
        Environment::Custom(sandbox.base_url()),
    );
    let cache = TokenCache::builder(std::sync::Arc::new(Mypos::new(&settings, &http)?)).build();
    let token = cache.token().await?;
    println!(
        "token through your client: {}, expires in {}s",
        token.token_type(),
        token.lifetime().as_secs()
    );
    sandbox.shutdown().await;
    Ok(())
}
