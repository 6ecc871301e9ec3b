//! How a myPOS client proves who it is: HTTP Basic with the client id and
//! secret on every operation. The one place that decides it; the generated
//! client's hooks apply it per the spec's security table.

use payauth_core::http::ClientAuthentication;
use payauth_core::{Error, Secret};

use crate::generated::oauth::security::Scheme;

/// The client id and secret, sent as HTTP Basic (id and secret each
/// form-encoded first, RFC 6749 §2.3.1).
#[derive(Clone, Debug)]
pub struct BasicCredentials {
    /// The client id from the myPOS account.
    pub client_id: String,
    /// The client secret from the myPOS account.
    pub client_secret: Secret,
}

impl ClientAuthentication<Scheme> for BasicCredentials {
    fn schemes(&self) -> &[Scheme] {
        &[Scheme::ClientBasic]
    }

    fn apply(&self, scheme: Scheme, request: &mut reqwest::Request) -> Result<(), Error> {
        let Scheme::ClientBasic = scheme;
        payauth_core::oauth2::apply_basic(request, &self.client_id, &self.client_secret);
        Ok(())
    }
}
