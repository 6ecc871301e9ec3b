//! How a myPOS client proves who it is: HTTP Basic with the client id and
//! secret on every operation. The one place that decides it; the generated
//! client's hooks apply it per the spec's security table.

use payauth_core::http::ClientAuthentication;
use payauth_core::oauth2::ClientSecretBasic;
use payauth_core::{Error, Secret};

use crate::generated::oauth::security::Scheme;

/// The client id and secret, sent as HTTP Basic (id and secret each
/// form-encoded first, RFC 6749 §2.3.1).
#[derive(Clone, Debug)]
pub struct MyposCredentials {
    basic: ClientSecretBasic,
}

impl MyposCredentials {
    /// The client id and secret from the myPOS account.
    pub fn new(client_id: impl Into<String>, client_secret: Secret) -> Self {
        Self {
            basic: ClientSecretBasic::new(client_id, client_secret),
        }
    }
}

impl ClientAuthentication<Scheme> for MyposCredentials {
    fn schemes(&self) -> &[Scheme] {
        &[Scheme::ClientBasic]
    }

    fn apply(&self, scheme: Scheme, request: &mut reqwest::Request) -> Result<(), Error> {
        let Scheme::ClientBasic = scheme;
        self.basic.apply(request);
        Ok(())
    }
}
