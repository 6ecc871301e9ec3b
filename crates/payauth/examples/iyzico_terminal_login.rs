//! iyzico Terminal API login through a cache: login, then renewals with the
//! (rotating) refresh token. `cargo run -p payauth --example
//! iyzico_terminal_login --features iyzico`.

use payauth::core::{Environment, FlowSettings, Secret, TokenCache};
use payauth::iyzico::TerminalLoginSettings;
use payauth_sandbox::{Sandbox, defaults};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::builder().start().await?;
    let settings = TerminalLoginSettings::new(
        defaults::IYZICO_CLIENT_ID,
        Secret::new(defaults::IYZICO_CLIENT_SECRET),
        defaults::IYZICO_USERNAME,
        Secret::new(defaults::IYZICO_PASSWORD),
        Environment::Custom(sandbox.base_url()), // Environment::Production for real
    );
    let cache =
        TokenCache::builder(settings.build(&payauth::core::http::default_client()?)?).build();
    let first = cache.token().await?;
    println!("logged in: expires in {}s", first.lifetime().as_secs());

    // After your Terminal Host call answers 401: drop it, the next call refreshes.
    cache.invalidate(&first);
    let renewed = cache.token().await?;
    println!(
        "renewed with the refresh token: {}",
        renewed.refresh_token().is_some()
    );
    sandbox.shutdown().await;
    Ok(())
}
