//! VakıfBank authorization code: authorize URL, the customer's login (the
//! sandbox consents at once), the callback check, the exchange, and the
//! exchanged token seeded into a cache over the refresh-token source. `cargo run -p payauth --example
//! vakifbank_authorization_code --features vakifbank`.

use payauth::core::{Secret, TokenCache};
use payauth::vakifbank::{Channel, Resource, VakifBank, VakifBankConfig};
use payauth_sandbox::{Sandbox, defaults};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::builder().start().await?;
    let http = payauth::core::http::default_client()?;
    let mut config = VakifBankConfig::new(
        defaults::VAKIFBANK_CLIENT_ID,
        Secret::new(defaults::VAKIFBANK_CLIENT_SECRET),
        Resource::Sandbox,
    );
    config.base_url = sandbox.base_url(); // omit for the real gateway
    let bank = VakifBank::new(config, http.clone())?;

    // 1. Send the customer's browser here; keep `pending` in their session.
    let pending = bank.authorize_url(
        Channel::Retail,
        &["account"],
        "https://app.example/callback",
        false,
    )?;
    println!("authorize: {}", pending.url);

    // 2. The bank redirects the browser back to your callback.
    let redirect = http.get(pending.url.clone()).send().await?;
    let callback = redirect.headers()["location"].to_str()?.to_owned();

    // 3. Check state, take the code, exchange it.
    let code = pending.callback(&callback)?;
    let token = bank.exchange(&pending, &code).await?;
    println!(
        "logged in: expires in {}s, refresh token: {}",
        token.lifetime().as_secs(),
        token.refresh_token().is_some()
    );

    // 4. Keep it fresh: hand the token to a cache over the refresh source,
    //    which renews it with its refresh token (add `.store(...)` to keep
    //    it across restarts; the first call saves it there).
    let cache = TokenCache::builder(bank.refresh_source(&["account"]))
        .seed(token)
        .build();
    let current = cache.token().await?; // the exchanged token, no fetch
    println!("cached: expires in {}s", current.lifetime().as_secs());
    sandbox.shutdown().await;
    Ok(())
}
