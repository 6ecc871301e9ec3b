//! Credentials carried by the generated client, applied per the spec's
//! security table (`generated::oauth::security`).

use payauth_core::Secret;
use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};

use crate::generated::oauth::{Client, security};

/// The client id and secret sent as HTTP Basic on every operation.
#[derive(Clone, Debug)]
pub struct BasicCredentials {
    /// The client id from the myPOS account.
    pub client_id: String,
    /// The client secret from the myPOS account.
    pub client_secret: Secret,
}

impl ClientHooks<BasicCredentials> for Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        let headers = request.headers_mut();
        headers.remove("api-version");
        let alternatives = security::for_operation(info.operation_id);
        if alternatives
            .first()
            .is_some_and(|schemes| schemes.contains(&security::Scheme::ClientBasic))
        {
            let credentials = self.inner();
            let value = payauth_core::oauth2::basic_authorization(
                &credentials.client_id,
                &credentials.client_secret,
            );
            headers.insert(reqwest::header::AUTHORIZATION, value);
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
