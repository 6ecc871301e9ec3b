//! VakıfBank client credentials and B2B credentials through caches.
//! `cargo run -p payauth --example vakifbank_client_credentials --features vakifbank`.

use payauth::core::{Environment, FlowSettings, Secret, TokenCache};
use payauth::vakifbank::{B2bCredentialsSettings, ClientCredentialsSettings, VakifBankSettings};
use payauth_sandbox::{Sandbox, defaults};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::builder().start().await?;
    let http = payauth::core::http::default_client()?;
    // Environment::Production (and Secret::from_env) for the real gateway.
    let gateway = VakifBankSettings::new(
        defaults::VAKIFBANK_CLIENT_ID,
        Secret::new(defaults::VAKIFBANK_CLIENT_SECRET),
        Environment::Custom(sandbox.base_url()),
    );

    let open_apis = ClientCredentialsSettings::new(gateway.clone()).scopes(["public", "oob"]);
    let open_apis = TokenCache::builder(open_apis.build(&http)?).build();
    println!(
        "client credentials: scope {:?}",
        open_apis.token().await?.scope()
    );

    let b2b =
        B2bCredentialsSettings::new(gateway, defaults::VAKIFBANK_CONSENT_ID).scopes(["account"]);
    let b2b = TokenCache::builder(b2b.build(&http)?).build();
    println!(
        "b2b credentials: expires in {}s",
        b2b.token().await?.lifetime().as_secs()
    );
    sandbox.shutdown().await;
    Ok(())
}
