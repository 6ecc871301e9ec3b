//! A service holding VakıfBank tokens for many customers: each customer
//! logs in once (authorization code), their token lands in PostgreSQL,
//! and from then on `Subjects` hands out a cache per customer, built on
//! first use, evicted when idle (saved first), sharing one HTTP client and
//! one store. Every replica of the service can run this: the store's lease
//! makes one refresh per customer per expiry fleet-wide, and a rotated
//! refresh token is committed before it is used.
//!
//! Needs a PostgreSQL: `DATABASE_URL`, e.g. from `eval "$(.ci/postgres
//! start)"` and `DATABASE_URL=$PAYAUTH_POSTGRES_URL`.
//!
//! `cargo run -p payauth --example many_customers --features vakifbank,postgres,subjects`

use std::sync::Arc;
use std::time::Duration;

use payauth::core::subjects::Subjects;
use payauth::core::{
    Environment, FlowSettings, Secret, SharedStore, StoredToken, TokenCache, TokenStore,
};
use payauth::postgres::PostgresStore;
use payauth::vakifbank::{AuthorizationCodeSettings, VakifBank, VakifBankSettings};
use payauth_sandbox::{Sandbox, defaults};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::builder().start().await?;
    // Shared by every customer: one HTTP client, one store, one gateway.
    let http = payauth::core::http::default_client()?;
    let store = Arc::new(PostgresStore::connect(&Secret::from_env("DATABASE_URL")?).await?);
    let gateway = VakifBankSettings::new(
        defaults::VAKIFBANK_CLIENT_ID,
        Secret::new(defaults::VAKIFBANK_CLIENT_SECRET), // production: Secret::from_env(…)?
        Environment::Custom(sandbox.base_url()),        // Environment::Production for real
    );
    let settings = {
        let gateway = gateway.clone();
        move |customer: &str| {
            AuthorizationCodeSettings::new(gateway.clone(), customer).scopes(["account"])
        }
    };

    // The cache of any customer, on demand.
    let customers = {
        let (http, store, settings) = (http.clone(), Arc::clone(&store), settings.clone());
        Subjects::builder(move |customer: &String| {
            let flow = settings(customer);
            let key = flow
                .store_key()
                .expect("a customer label makes a store key");
            let source = flow
                .build(&http)
                .expect("the gateway settings were checked");
            TokenCache::builder(source)
                .shared_store(Arc::clone(&store) as Arc<dyn SharedStore>, key)
                .build()
        })
        .capacity(100_000)
        .time_to_idle(Duration::from_secs(30 * 60))
        .build()
    };

    let bank = VakifBank::new(&gateway, &http)?;
    for customer in ["customer-1", "customer-2", "customer-3"] {
        // Once per customer: the login (the sandbox plays the browser),
        // and its token saved where every replica finds it.
        let flow = settings(customer);
        let pending = flow.authorize_url(&bank, "https://app.example/callback")?;
        let callback = payauth_sandbox::browser::authorize(&http, pending.url.as_str()).await?;
        let token = bank
            .exchange(&pending, &pending.callback(&callback)?)
            .await?;
        store
            .save(&flow.store_key()?, &StoredToken::from_token(&token))
            .await?;
    }

    // Then, on every request for a customer: their token.
    for customer in ["customer-2", "customer-1", "customer-3", "customer-2"] {
        let token = customers.token(customer).await?;
        println!(
            "{customer}: a token expiring in {}s",
            token.lifetime().as_secs()
        );
    }
    println!("{} customers in memory", customers.len());
    customers.flush().await?; // before exiting: nothing rotated is left unsaved
    sandbox.shutdown().await;
    Ok(())
}
