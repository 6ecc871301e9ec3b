//! VakıfBank client credentials and B2B credentials through caches.
//! `cargo run -p payauth --example vakifbank_client_credentials --features vakifbank`.

use payauth::core::{Secret, TokenCache};
use payauth::vakifbank::{Resource, VakifBank, VakifBankConfig};
use payauth_sandbox::{Sandbox, defaults};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::builder().start().await?;
    let mut config = VakifBankConfig::new(
        defaults::VAKIFBANK_CLIENT_ID,
        Secret::new(defaults::VAKIFBANK_CLIENT_SECRET),
        Resource::Sandbox,
    );
    config.base_url = sandbox.base_url();
    let bank = VakifBank::new(config, payauth::core::http::default_client()?)?;

    let open_apis = TokenCache::builder(bank.client_credentials(&["public", "oob"])).build();
    println!(
        "client credentials: scope {:?}",
        open_apis.token().await?.scope()
    );

    let b2b =
        TokenCache::builder(bank.b2b_credentials(&["account"], defaults::VAKIFBANK_CONSENT_ID))
            .build();
    println!(
        "b2b credentials: expires in {}s",
        b2b.token().await?.lifetime().as_secs()
    );
    sandbox.shutdown().await;
    Ok(())
}
