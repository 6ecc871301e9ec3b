//! The B2B-credentials grant, for one consent:
//! [`B2bCredentialsSettings`] builds a [`B2bCredentialsGrant`].

use payauth_core::{AccessToken, BoxFuture, Error, FlowSettings, TokenSource};
use serde::Deserialize;

use crate::gateway::{VakifBank, VakifBankSettings, as_strs, scope_field};

/// The B2B-credentials grant's settings; in a config file, the `[source]`
/// table with `provider = "vakifbank"` and `flow = "b2b_credentials"`.
/// Unknown keys are refused.
///
/// ```
/// use payauth_core::{Environment, FlowSettings, Secret};
/// use payauth_vakifbank::{B2bCredentialsSettings, VakifBankSettings};
///
/// let gateway = VakifBankSettings::new("app-key", Secret::new("s"), Environment::Sandbox);
/// let settings = B2bCredentialsSettings::new(gateway, "consent-1").scopes(["account"]);
/// assert_eq!(settings.store_key().unwrap(), "vakifbank/sandbox/app-key/b2b_credentials/consent-1/account");
/// ```
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct B2bCredentialsSettings {
    /// The application's credentials and host.
    // Flattened keys stay checked: this struct refuses every key that
    // neither it nor `VakifBankSettings` knows.
    #[serde(flatten)]
    pub gateway: VakifBankSettings,
    /// The consent number from the bank's business unit.
    pub consent_id: String,
    /// Scopes (`account`, …).
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl B2bCredentialsSettings {
    /// The grant for `consent_id`, no scopes, no `resource` sent.
    pub fn new(gateway: VakifBankSettings, consent_id: impl Into<String>) -> Self {
        Self {
            gateway,
            consent_id: consent_id.into(),
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

impl FlowSettings for B2bCredentialsSettings {
    type Source = B2bCredentialsGrant;

    fn build(&self, http: &payauth_core::http::HttpClient) -> Result<B2bCredentialsGrant, Error> {
        Ok(VakifBank::new(&self.gateway, http)?
            .b2b_credentials(&as_strs(&self.scopes), self.consent_id.clone()))
    }

    /// The subject is the consent.
    fn store_key(&self) -> Result<String, Error> {
        Ok(self
            .gateway
            .store_key("b2b_credentials")
            .subject(&self.consent_id)
            .build(&self.scopes))
    }
}

impl VakifBank {
    /// The B2B-credentials grant for one consent: `grant_type`, the client
    /// credentials, `scope` and `consentId`, as the docs list them.
    #[must_use]
    pub fn b2b_credentials(
        &self,
        scopes: &[&str],
        consent_id: impl Into<String>,
    ) -> B2bCredentialsGrant {
        B2bCredentialsGrant {
            bank: self.clone(),
            scope: scope_field(scopes),
            consent_id: consent_id.into(),
        }
    }
}

/// The B2B-credentials grant; see [`VakifBank::b2b_credentials`].
#[derive(Debug, Clone)]
pub struct B2bCredentialsGrant {
    bank: VakifBank,
    scope: Option<String>,
    consent_id: String,
}

impl B2bCredentialsGrant {
    /// Whether to send the API plan as `resource` too (unverified; see
    /// [`VakifBankSettings::send_resource`](crate::VakifBankSettings::send_resource)).
    #[must_use]
    pub fn send_resource(mut self, send: bool) -> Self {
        self.bank.send_resource = send;
        self
    }

    /// The gateway handle this grant sends its requests through (for the
    /// authorize URL and the code exchange).
    #[must_use]
    pub fn bank(&self) -> &VakifBank {
        &self.bank
    }
}

impl TokenSource for B2bCredentialsGrant {
    fn fetch<'a>(
        &'a self,
        _previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async move {
            let body = crate::generated::gateway::types::TokenRequest {
                scope: self.scope.clone(),
                consent_id: Some(self.consent_id.clone()),
                ..self.bank.request("b2b_credentials")
            };
            self.bank.token(&body).await
        })
    }

    fn name(&self) -> &'static str {
        "vakifbank b2b_credentials"
    }

    fn provider(&self) -> &'static str {
        "vakifbank"
    }

    fn flow(&self) -> &'static str {
        "b2b_credentials"
    }
}
