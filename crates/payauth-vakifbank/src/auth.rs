//! How a VakıfBank client proves who it is: `client_id` and
//! `client_secret` in the form body (default, as the docs list them), as
//! HTTP Basic (unverified), or, on the code exchange only, not at all (as
//! the docs list that request). The one place that decides it: the generated
//! client's hooks apply [`ClientAuth::schemes`] per the spec's security
//! table, and the flows write `ClientAuth::body_fields` into the form.

use payauth_core::http::ClientAuthentication;
use payauth_core::oauth2::{BasicEncoding, ClientSecretBasic};
use payauth_core::{Error, Secret, SerializableSecret};
use serde::Deserialize;

use crate::generated::gateway::security::Scheme;

/// How the client authenticates on the token endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthStyle {
    /// `client_id` and `client_secret` in the form body, as the docs list them.
    #[default]
    Body,
    /// HTTP Basic (RFC 6749 §2.3.1); not documented by VakıfBank.
    Basic,
    /// No client credentials at all: the code exchange exactly as the docs
    /// list it (`grant_type`, `code`, `redirect_uri`). Only for
    /// `exchange_client_auth`; every other grant names its client.
    None,
}

impl std::str::FromStr for ClientAuthStyle {
    type Err = Error;

    /// `body`, `basic` or `none`, as settings files write it.
    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "body" => Ok(Self::Body),
            "basic" => Ok(Self::Basic),
            "none" => Ok(Self::None),
            other => Err(
                Error::new(payauth_core::ErrorKind::Config).with_description(format!(
                    "client auth {other:?} is not `body`, `basic` or `none`"
                )),
            ),
        }
    }
}

/// How HTTP Basic is encoded when [`ClientAuthStyle::Basic`] is chosen: RFC
/// 6749 §2.3.1 by default, as the gateway is a standards OAuth server
/// (Layer7); `basic_encoding = "plain"` switches. Unverified.
pub const BASIC_ENCODING: BasicEncoding = BasicEncoding::Rfc6749;

/// [`BASIC_ENCODING`], for settings' serde default.
pub(crate) fn default_basic_encoding() -> BasicEncoding {
    BASIC_ENCODING
}

/// The application's API key and secret, and where they are sent.
#[derive(Clone, Debug)]
pub struct ClientAuth {
    basic: ClientSecretBasic,
    style: ClientAuthStyle,
}

impl ClientAuth {
    /// The API key and secret from the application page, sent in the body
    /// or as HTTP Basic ([`BASIC_ENCODING`]).
    pub fn new(
        client_id: impl Into<String>,
        client_secret: Secret,
        style: ClientAuthStyle,
    ) -> Self {
        Self::with_basic_encoding(client_id, client_secret, style, BASIC_ENCODING)
    }

    /// As [`new`](Self::new), HTTP Basic in `encoding`.
    ///
    /// ```
    /// use payauth_core::{Secret, oauth2::BasicEncoding};
    /// use payauth_vakifbank::auth::{ClientAuth, ClientAuthStyle};
    ///
    /// let auth = ClientAuth::new("id", Secret::new("s"), ClientAuthStyle::Basic);
    /// assert_eq!(auth.basic_encoding(), BasicEncoding::Rfc6749);
    /// let plain = ClientAuth::with_basic_encoding("id", Secret::new("s"), ClientAuthStyle::Basic, BasicEncoding::Plain);
    /// assert_eq!(plain.basic_encoding(), BasicEncoding::Plain);
    /// ```
    pub fn with_basic_encoding(
        client_id: impl Into<String>,
        client_secret: Secret,
        style: ClientAuthStyle,
        encoding: BasicEncoding,
    ) -> Self {
        Self {
            basic: ClientSecretBasic::with_encoding(client_id, client_secret, encoding),
            style,
        }
    }

    /// How HTTP Basic is encoded, when it is used.
    #[must_use]
    pub fn basic_encoding(&self) -> BasicEncoding {
        self.basic.encoding()
    }

    /// The API key.
    #[must_use]
    pub fn client_id(&self) -> &str {
        self.basic.client_id()
    }

    /// Body or HTTP Basic.
    #[must_use]
    pub fn style(&self) -> ClientAuthStyle {
        self.style
    }

    /// `client_id` and `client_secret` for the form body: there only with
    /// [`ClientAuthStyle::Body`] (HTTP Basic sends them in a header,
    /// [`ClientAuthStyle::None`] not at all).
    pub(crate) fn body_fields(&self) -> (Option<String>, Option<SerializableSecret>) {
        match self.style {
            ClientAuthStyle::Body => (
                Some(self.basic.client_id().to_owned()),
                Some(self.basic.client_secret().clone().into()),
            ),
            ClientAuthStyle::Basic | ClientAuthStyle::None => (None, None),
        }
    }
}

impl ClientAuthentication<Scheme> for ClientAuth {
    fn schemes(&self) -> &[Scheme] {
        match self.style {
            ClientAuthStyle::Body | ClientAuthStyle::None => &[],
            ClientAuthStyle::Basic => &[Scheme::ClientBasic],
        }
    }

    fn apply(&self, scheme: Scheme, request: &mut reqwest::Request) -> Result<(), Error> {
        let Scheme::ClientBasic = scheme;
        self.basic.apply(request);
        Ok(())
    }
}
