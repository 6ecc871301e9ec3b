//! Credentials carried by the generated client.

use payauth_core::Secret;
use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};

use crate::generated::gateway::{Client, security};

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
    /// Adds HTTP Basic where the spec allows it and the caller chose it;
    /// with the default body style the flow puts `client_id` and
    /// `client_secret` in the form instead.
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        request.headers_mut().remove("api-version");
        let auth = self.inner();
        let basic_allowed = security::for_operation(info.operation_id)
            .iter()
            .any(|schemes| schemes.contains(&security::Scheme::ClientBasic));
        if auth.style == ClientAuthStyle::Basic && basic_allowed {
            let value =
                payauth_core::oauth2::basic_authorization(&auth.client_id, &auth.client_secret);
            request
                .headers_mut()
                .insert(reqwest::header::AUTHORIZATION, value);
        }
        Ok(())
    }

    /// Reads the response body under `payauth_core::http::MAX_BODY`.
    async fn exec(
        &self,
        request: reqwest::Request,
        _info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        payauth_core::http::execute_capped(self.client(), request, payauth_core::http::MAX_BODY)
            .await
    }
}
