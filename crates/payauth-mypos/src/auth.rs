//! How a myPOS client proves who it is: HTTP Basic with the client id and
//! secret on every operation, plain by default ([`BASIC_ENCODING`]), RFC
//! 6749 §2.3.1 as an option. The one place that decides it; the generated
//! client's hooks apply it per the spec's security table.

use payauth_core::http::ClientAuthentication;
use payauth_core::oauth2::{BasicEncoding, ClientSecretBasic};
use payauth_core::{Error, Secret};

use crate::generated::oauth::security::Scheme;

/// myPOS's HTTP Basic encoding by default: the docs' example writes
/// `base64encode(client_id:client_secret)` and the official JS SDK sends the
/// credentials as they are. Which one myPOS's server decodes is not
/// documented; `basic_encoding = "rfc6749"` switches.
pub const BASIC_ENCODING: BasicEncoding = BasicEncoding::Plain;

/// [`BASIC_ENCODING`], for settings' serde default.
pub(crate) fn default_basic_encoding() -> BasicEncoding {
    BASIC_ENCODING
}

/// The client id and secret, sent as colon-joined HTTP Basic.
#[derive(Clone, Debug)]
pub struct MyposCredentials {
    basic: ClientSecretBasic,
}

impl MyposCredentials {
    /// The client id and secret from the myPOS account, HTTP Basic in
    /// [`BASIC_ENCODING`].
    pub fn new(client_id: impl Into<String>, client_secret: Secret) -> Self {
        Self::with_basic_encoding(client_id, client_secret, BASIC_ENCODING)
    }

    /// The client id and secret, HTTP Basic in `encoding`.
    ///
    /// ```
    /// use payauth_core::{Secret, oauth2::BasicEncoding};
    /// use payauth_mypos::auth::MyposCredentials;
    ///
    /// let plain = MyposCredentials::new("id", Secret::new("s"));
    /// assert_eq!(plain.basic_encoding(), BasicEncoding::Plain);
    /// let rfc = MyposCredentials::with_basic_encoding("id", Secret::new("s"), BasicEncoding::Rfc6749);
    /// assert_eq!(rfc.basic_encoding(), BasicEncoding::Rfc6749);
    /// ```
    pub fn with_basic_encoding(
        client_id: impl Into<String>,
        client_secret: Secret,
        encoding: BasicEncoding,
    ) -> Self {
        Self {
            basic: ClientSecretBasic::with_encoding(client_id, client_secret, encoding),
        }
    }

    /// How HTTP Basic is encoded.
    #[must_use]
    pub fn basic_encoding(&self) -> BasicEncoding {
        self.basic.encoding()
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
