//! The client-credentials grant, for the gateway's open and private APIs:
//! [`ClientCredentialsSettings`] builds a [`ClientCredentialsGrant`].

use payauth_core::{AccessToken, BoxFuture, Error, FlowSettings, TokenSource};
use serde::Deserialize;

use crate::gateway::{VakifBank, VakifBankSettings, as_strs, scope_field};

/// The client-credentials grant's settings; in a config file, the
/// `[source]` table with `provider = "vakifbank"` and
/// `flow = "client_credentials"`. Unknown keys are refused.
///
/// ```
/// use payauth_core::{Environment, FlowSettings, Secret};
/// use payauth_vakifbank::{ClientCredentialsSettings, VakifBankSettings};
///
/// let gateway = VakifBankSettings::new("app-key", Secret::new("s"), Environment::Production);
/// let settings = ClientCredentialsSettings::new(gateway).scopes(["public", "oob"]);
/// assert_eq!(settings.store_key().unwrap(), "vakifbank/production/app-key/client_credentials/oob public");
/// ```
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ClientCredentialsSettings {
    /// The application's credentials and host.
    // Flattened keys stay checked: this struct refuses every key that
    // neither it nor `VakifBankSettings` knows.
    #[serde(flatten)]
    pub gateway: VakifBankSettings,
    /// Scopes (`public`, `oob`, …).
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl ClientCredentialsSettings {
    /// The grant with no scopes.
    #[must_use]
    pub fn new(gateway: VakifBankSettings) -> Self {
        Self {
            gateway,
            scopes: Vec::new(),
        }
    }

    /// Requests `scopes`.
    #[must_use]
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
}

impl FlowSettings for ClientCredentialsSettings {
    type Source = ClientCredentialsGrant;

    fn build(
        &self,
        http: &payauth_core::http::HttpClient,
    ) -> Result<ClientCredentialsGrant, Error> {
        Ok(VakifBank::new(&self.gateway, http)?.client_credentials(&as_strs(&self.scopes)))
    }

    fn store_key(&self) -> Result<String, Error> {
        Ok(self
            .gateway
            .store_key("client_credentials")
            .build(&self.scopes))
    }
}

impl VakifBank {
    /// The client-credentials grant, a token source for open and private
    /// APIs.
    #[must_use]
    pub fn client_credentials(&self, scopes: &[&str]) -> ClientCredentialsGrant {
        ClientCredentialsGrant {
            bank: self.clone(),
            scope: scope_field(scopes),
        }
    }
}

/// The client-credentials grant; see [`VakifBank::client_credentials`].
#[derive(Debug, Clone)]
pub struct ClientCredentialsGrant {
    bank: VakifBank,
    scope: Option<String>,
}

impl ClientCredentialsGrant {
    /// The gateway handle this grant sends its requests through (for the
    /// authorize URL and the code exchange).
    #[must_use]
    pub fn bank(&self) -> &VakifBank {
        &self.bank
    }
}

impl TokenSource for ClientCredentialsGrant {
    fn fetch<'a>(
        &'a self,
        _previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async move {
            let body = crate::generated::gateway::types::TokenRequest {
                scope: self.scope.clone(),
                ..self.bank.request("client_credentials")
            };
            self.bank.token(&body).await
        })
    }

    fn name(&self) -> &'static str {
        "vakifbank client_credentials"
    }

    fn provider(&self) -> &'static str {
        "vakifbank"
    }

    fn flow(&self) -> &'static str {
        "client_credentials"
    }
}
