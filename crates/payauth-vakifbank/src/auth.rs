//! Credentials carried by the generated client.

use payauth_core::Secret;
use progenitor_client::{ClientHooks, OperationInfo};

use crate::generated::gateway::Client;

/// How the client authenticates on the token endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuthStyle {
    /// `client_id` and `client_secret` in the form body, as the docs list them.
    #[default]
    Body,
    /// HTTP Basic (RFC 6749 §2.3.1); not documented by VakıfBank.
    Basic,
}

/// The application's API key and secret, and where they are sent.
#[derive(Clone, Debug)]
pub struct ClientAuth {
    /// The API key from the application page.
    pub client_id: String,
    /// The API secret from the application page.
    pub client_secret: Secret,
    /// Body (default) or HTTP Basic.
    pub style: ClientAuthStyle,
}

impl ClientHooks<ClientAuth> for Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        _info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        request.headers_mut().remove("api-version");
        Ok(())
    }
}
