//! VakıfBank authorization code: authorize URL, the customer's login (the
//! sandbox's browser consents at once), the callback check, the exchange,
//! and the exchanged token seeded into a cache over the refresh-token grant.
//! `cargo run -p payauth --example
//! vakifbank_authorization_code --features vakifbank`.

use payauth::core::{Environment, FlowSettings, Secret, TokenCache};
use payauth::vakifbank::{AuthorizationCodeSettings, VakifBank, VakifBankSettings};
use payauth_sandbox::{Sandbox, defaults};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::builder().start().await?;
    let http = payauth::core::http::default_client()?;
    let gateway = VakifBankSettings::new(
        defaults::VAKIFBANK_CLIENT_ID,
        Secret::new(defaults::VAKIFBANK_CLIENT_SECRET),
        Environment::Custom(sandbox.base_url()), // Environment::Production for real
    );
    // `customer` is your label for who logs in: it keeps their tokens apart.
    let settings = AuthorizationCodeSettings::new(gateway, "customer-1").scopes(["account"]);
    let bank = VakifBank::new(&settings.gateway, &http)?;

    // 1. Send the customer's browser here; keep `pending` in their session.
    let pending = settings.authorize_url(&bank, "https://app.example/callback")?;
    println!("authorize: {}", pending.url);

    // 2. The bank redirects the browser back to your callback (here the
    //    sandbox plays the browser).
    let callback = payauth_sandbox::browser::authorize(&http, pending.url.as_str()).await?;

    // 3. Check state, take the code, exchange it.
    let code = pending.callback(&callback)?;
    let token = bank.exchange(&pending, &code).await?;
    println!(
        "logged in: expires in {}s, refresh token: {}",
        token.lifetime().as_secs(),
        token.refresh_token().is_some()
    );

    // 4. Keep it fresh: hand the token to a cache over the refresh-token
    //    grant, which renews it with its refresh token (add
    //    `.store(store, settings.store_key()?)` to keep it across restarts;
    //    the first call saves it there).
    let cache = TokenCache::builder(settings.build(&http)?)
        .seed(token)
        .build();
    let current = cache.token().await?; // the exchanged token, no fetch
    println!(
        "cached: expires in {}s, store key {}",
        current.lifetime().as_secs(),
        settings.store_key()?
    );
    sandbox.shutdown().await;
    Ok(())
}
