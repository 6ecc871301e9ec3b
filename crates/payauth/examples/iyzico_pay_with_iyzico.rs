//! The Pay-with-iyzico access token for one member session (IYZWSv2-signed,
//! 5 minutes). `cargo run -p payauth --example iyzico_pay_with_iyzico --features iyzico`.

use payauth::core::{Environment, Secret, TokenCache};
use payauth::iyzico::{Pwi, PwiSettings};
use payauth_sandbox::{Sandbox, defaults};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::builder().start().await?;
    let settings = PwiSettings::new(
        defaults::IYZICO_API_KEY,
        Secret::new(defaults::IYZICO_SECRET_KEY),
        Environment::Custom(sandbox.base_url()),
    );
    // One merchant, one token source per member session.
    let pwi = Pwi::new(&settings, &payauth::core::http::default_client()?)?;
    let session = pwi.access_token(
        Secret::new(defaults::PWI_SESSION_TOKEN),
        defaults::PWI_MEMBER_IDENTIFIER,
    );
    let cache = TokenCache::builder(session).build();
    let token = cache.token().await?;
    // Send it as the `access-token` header beside the signed Authorization.
    println!("access token: expires in {}s", token.lifetime().as_secs());
    sandbox.shutdown().await;
    Ok(())
}
