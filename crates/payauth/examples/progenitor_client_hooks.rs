//! Auth for your own progenitor-generated API client. Generate it with the
//! token cache as the client's inner value and hooks expected:
//!
//! ```ignore
//! settings
//!     .with_inner_type(quote::quote!(payauth::core::TokenCache))
//!     .with_hooks(progenitor::HooksMode::Expected);
//! ```
//!
//! then write one `ClientHooks::pre` (below) and every operation carries a
//! fresh token. `Client` here stands in for what progenitor generates.
//! `cargo run -p payauth --example progenitor_client_hooks --features mypos`.

use std::sync::Arc;

use payauth::core::{Environment, Secret, TokenCache};
use payauth::mypos::{Mypos, MyposSettings};
use payauth_sandbox::{Sandbox, defaults};
use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::header::AUTHORIZATION;

/// What progenitor generates (abridged): the base URL, the shared reqwest
/// client, and the inner value, here the token cache. (Field names as
/// progenitor writes them.)
#[allow(clippy::struct_field_names)]
struct Client {
    baseurl: String,
    client: reqwest::Client,
    inner: TokenCache,
}

impl ClientInfo<TokenCache> for Client {
    fn api_version() -> &'static str {
        "1"
    }

    fn baseurl(&self) -> &str {
        &self.baseurl
    }

    fn client(&self) -> &reqwest::Client {
        &self.client
    }

    fn inner(&self) -> &TokenCache {
        &self.inner
    }
}

/// What you write: attach the cached token before each request.
impl ClientHooks<TokenCache> for Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        _info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        let token = self
            .inner()
            .token()
            .await
            .map_err(|e| progenitor_client::Error::Custom(e.to_string()))?;
        request
            .headers_mut()
            .insert(AUTHORIZATION, token.authorization().clone());
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::builder().start().await?;
    let http = payauth::core::http::default_client()?;
    let settings = MyposSettings::new(
        defaults::MYPOS_CLIENT_ID,
        Secret::new(defaults::MYPOS_CLIENT_SECRET),
        Environment::Custom(sandbox.base_url()),
    );
    let cache = TokenCache::builder(Arc::new(Mypos::new(&settings, &http)?)).build();
    let client = Client {
        baseurl: sandbox.base_url(),
        // Your API's own reqwest client (progenitor's), apart from
        // payauth's token client.
        client: reqwest::Client::new(),
        inner: cache,
    };

    // The generated operation methods call `pre` like this before sending.
    let mut request = client
        .client()
        .get(format!("{}/v1/transactions", client.baseurl()))
        .build()?;
    client
        .pre::<()>(
            &mut request,
            &OperationInfo {
                operation_id: "list_transactions",
            },
        )
        .await?;
    let header = request.headers()[AUTHORIZATION].clone();
    println!(
        "the request carries a Bearer token: {}",
        header.to_str()?.starts_with("Bearer ")
    );
    assert!(header.is_sensitive());
    sandbox.shutdown().await;
    Ok(())
}
