//! The settings and handle every VakıfBank flow shares: the application's
//! credentials, the host and API plan ([`VakifBankSettings`]), and the
//! gateway client that sends the token requests of every grant
//! ([`VakifBank`]).

use std::sync::Arc;
use std::time::Duration;

use payauth_core::http;
use payauth_core::oauth2::{BasicEncoding, read_token};
use payauth_core::{
    AccessToken, Clock, Environment, Error, Issued, SecretConfig, StoreKey, SystemClock,
};
use progenitor_client::ClientInfo as _;
use serde::Deserialize;

use crate::HOSTS;
use crate::auth::{ClientAuth, ClientAuthStyle};
use crate::generated::gateway::{Client, types};

pub use crate::generated::gateway::types::Resource;

/// Lifetime assumed when a token response has no `expires_in`, unless
/// `default_lifetime_secs` says otherwise (a guess: the docs list
/// `expires_in` in every answer, and 3600 s is the Layer7 toolkit's usual).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// The header in which the Layer7 gateway sends its numeric error code.
pub const ERROR_CODE_HEADER: &str = "x-ca-err";

/// What every VakıfBank flow needs: the application's credentials, where
/// they go, the host and the API plan. Each flow's settings hold these
/// keys beside their own. Unknown keys are refused.
///
/// ```
/// use payauth_core::{Environment, Secret};
/// use payauth_vakifbank::{Resource, VakifBankSettings};
///
/// let settings = VakifBankSettings::new("app-key", Secret::new("app-secret"), Environment::Production);
/// assert_eq!(settings.resource(), Resource::Production);
/// assert!(!format!("{settings:?}").contains("app-secret"));
/// ```
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct VakifBankSettings {
    /// The API key from the application page.
    pub client_id: String,
    /// The API secret from the application page.
    pub client_secret: SecretConfig,
    /// `sandbox` (default), `production`, or a base URL. The gateway has
    /// one host; the environment also picks the API plan.
    #[serde(default)]
    pub environment: Environment,
    /// The API plan (`resource`) when it is not the environment's own:
    /// `production` for `environment = "production"`, else `sandbox` (a
    /// proxy in front of production needs `resource = "production"`).
    #[serde(default)]
    pub resource: Option<Resource>,
    /// Also send the API plan as `resource` on every token request (the
    /// code exchange, refresh, client credentials and B2B). The docs name
    /// `resource` on the authorize page only, so it is off by default; the
    /// one public B2B caller found sends `resource=sandbox` on its token
    /// call. A server that reads `resource` as an RFC 8707 indicator
    /// refuses `sandbox` (`invalid_target`). Unverified.
    #[serde(default)]
    pub send_resource: bool,
    /// `body` (default, as documented) or `basic` (unverified). `none` is
    /// refused here: only the code exchange may go without credentials
    /// (`exchange_client_auth`).
    #[serde(default)]
    pub client_auth: ClientAuthStyle,
    /// How HTTP Basic is encoded with `client_auth = "basic"`: `rfc6749`
    /// (default, RFC 6749 §2.3.1, as a standards gateway decodes it) or
    /// `plain` (`base64(client_id:client_secret)` as they are). Unverified.
    #[serde(default = "crate::auth::default_basic_encoding")]
    pub basic_encoding: BasicEncoding,
    /// Where the authorization-code exchange sends the client credentials,
    /// when not where `client_auth` says: `body`, `basic`, or `none` (the
    /// request exactly as the docs list it: `grant_type`, `code` and
    /// `redirect_uri` only). A confidential client must authenticate (RFC
    /// 6749 §4.1.3), so the default is as `client_auth`. Unverified.
    #[serde(default)]
    pub exchange_client_auth: Option<ClientAuthStyle>,
    /// Seconds a token lives when the answer has no `expires_in` (the docs
    /// list it in every answer; default 3600, [`DEFAULT_LIFETIME`],
    /// unverified).
    #[serde(default)]
    pub default_lifetime_secs: Option<u64>,
    /// Allow plain `http://` to a non-loopback host (never in production).
    #[serde(default)]
    pub allow_insecure_http: bool,
}

impl VakifBankSettings {
    /// Settings with the credentials in the body and the environment's
    /// own API plan.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<SecretConfig>,
        environment: Environment,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            environment,
            resource: None,
            send_resource: false,
            client_auth: ClientAuthStyle::Body,
            basic_encoding: crate::auth::BASIC_ENCODING,
            exchange_client_auth: None,
            default_lifetime_secs: None,
            allow_insecure_http: false,
        }
    }

    /// The API plan in force.
    #[must_use]
    pub fn resource(&self) -> Resource {
        self.resource.unwrap_or(self.own_resource())
    }

    fn own_resource(&self) -> Resource {
        match self.environment {
            Environment::Production => Resource::Production,
            _ => Resource::Sandbox,
        }
    }

    /// The start of every VakıfBank flow's store key: the environment
    /// (qualified by the plan when it is not the environment's own), the
    /// client id and the flow.
    pub(crate) fn store_key(&self, flow: &str) -> StoreKey {
        let resource = self.resource();
        if resource == self.own_resource() {
            StoreKey::new("vakifbank", &self.environment, &self.client_id, flow)
        } else {
            StoreKey::with_qualifier(
                "vakifbank",
                &self.environment,
                &resource.to_string(),
                &self.client_id,
                flow,
            )
        }
    }
}

/// The VakıfBank gateway: builds authorize URLs, exchanges codes, and
/// hands out a token source for each grant. Cheap to clone.
#[derive(Clone)]
pub struct VakifBank {
    pub(crate) client: Client,
    /// The client of the code exchange, whose credentials may go elsewhere.
    pub(crate) exchange_client: Client,
    pub(crate) base_url: String,
    pub(crate) resource: Resource,
    /// Whether token requests carry `resource` too.
    pub(crate) send_resource: bool,
    pub(crate) default_lifetime: Duration,
    pub(crate) clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for VakifBank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = self.client.inner();
        f.debug_struct("VakifBank")
            .field("base_url", &self.base_url)
            .field("client_id", &auth.client_id())
            .field("resource", &self.resource)
            .field("send_resource", &self.send_resource)
            .field("client_auth", &auth.style())
            .field("basic_encoding", &auth.basic_encoding())
            .field(
                "exchange_client_auth",
                &self.exchange_client.inner().style(),
            )
            .finish_non_exhaustive()
    }
}

impl VakifBank {
    /// The gateway over a shared `http` client.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](payauth_core::ErrorKind::Config) for missing credentials or a base URL that is
    /// not `https://` (plain `http://` only to loopback unless allowed).
    pub fn new(
        settings: &VakifBankSettings,
        http: &payauth_core::http::HttpClient,
    ) -> Result<Self, Error> {
        let client_secret = settings.client_secret.load()?;
        payauth_core::settings::require(
            "VakıfBank",
            &[
                ("a client id", settings.client_id.is_empty()),
                ("a client secret", client_secret.is_empty()),
            ],
        )?;
        if settings.client_auth == ClientAuthStyle::None {
            return Err(
                Error::new(payauth_core::ErrorKind::Config).with_description(
                    "VakıfBank client_auth = \"none\" is refused: only the code exchange may go \
                 without client credentials (exchange_client_auth = \"none\")",
                ),
            );
        }
        let base_url = settings
            .environment
            .base_url(&HOSTS, settings.allow_insecure_http)?;
        let auth = |style| {
            ClientAuth::with_basic_encoding(
                settings.client_id.clone(),
                client_secret.clone(),
                style,
                settings.basic_encoding,
            )
        };
        let exchange_style = settings
            .exchange_client_auth
            .unwrap_or(settings.client_auth);
        Ok(Self {
            client: Client::new_with_client(&base_url, http.clone(), auth(settings.client_auth)),
            exchange_client: Client::new_with_client(&base_url, http.clone(), auth(exchange_style)),
            base_url,
            resource: settings.resource(),
            send_resource: settings.send_resource,
            default_lifetime: payauth_core::settings::default_lifetime(
                settings.default_lifetime_secs,
                DEFAULT_LIFETIME,
            )?,
            clock: Arc::new(SystemClock),
        })
    }

    /// Reads time from `clock` (for tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Whether every token request also carries the API plan as
    /// `resource` (see [`VakifBankSettings::send_resource`]).
    #[must_use]
    pub fn send_resource(mut self, send: bool) -> Self {
        self.send_resource = send;
        self
    }

    /// The fields every grant shares: `grant_type`, the client credentials
    /// when `auth.rs` puts them in the body, and `resource` when asked.
    pub(crate) fn request(&self, grant_type: &str) -> types::TokenRequest {
        self.request_through(&self.client, grant_type)
    }

    /// As [`request`](Self::request), with `client`'s credentials.
    pub(crate) fn request_through(&self, client: &Client, grant_type: &str) -> types::TokenRequest {
        types::TokenRequest {
            // Not in the docs' token parameters; some public callers send it.
            resource: self.send_resource.then(|| self.resource.to_string()),
            ..request(client, grant_type)
        }
    }

    /// Sends a token request of any grant and reads the answer.
    pub(crate) async fn token(&self, body: &types::TokenRequest) -> Result<AccessToken, Error> {
        token(&self.client, self, body).await
    }
}

/// The fields every grant shares, with `client`'s credentials in the body
/// when its `auth.rs` style puts them there.
pub(crate) fn request(client: &Client, grant_type: &str) -> types::TokenRequest {
    let (client_id, client_secret) = client.inner().body_fields();
    types::TokenRequest {
        grant_type: grant_type.to_owned(),
        client_id,
        client_secret,
        code: None,
        code_verifier: None,
        consent_id: None,
        redirect_uri: None,
        refresh_token: None,
        resource: None,
        scope: None,
    }
}

/// Sends a token request through `client` and reads the answer with
/// `bank`'s clock and assumed lifetime.
pub(crate) async fn token(
    client: &Client,
    bank: &VakifBank,
    body: &types::TokenRequest,
) -> Result<AccessToken, Error> {
    let issued = Issued::now(bank.clock.as_ref());
    let response = client
        .token(body)
        .await
        .map_err(|e| http::from_generated(e, Some(ERROR_CODE_HEADER)))?
        .into_inner();
    read_token(response, issued, bank.default_lifetime)
}

/// Settings' scopes as the grants take them.
pub(crate) fn as_strs(scopes: &[String]) -> Vec<&str> {
    scopes.iter().map(String::as_str).collect()
}

/// The `scope` form field: space-joined, absent when empty.
pub(crate) fn scope_field(scopes: &[&str]) -> Option<String> {
    let scope = payauth_core::oauth2::join_scopes(scopes);
    (!scope.is_empty()).then_some(scope)
}

payauth_core::oauth_error_body!(types::OAuthError);
payauth_core::oauth_token_response!(types::TokenResponse);

#[cfg(test)]
mod tests {
    use payauth_core::Secret;

    use super::*;

    fn key(environment: Environment, resource: Option<Resource>) -> String {
        let mut settings = VakifBankSettings::new("app", Secret::new("s"), environment);
        settings.resource = resource;
        settings.store_key("f").build::<&str>(&[])
    }

    #[test]
    fn the_api_plan_qualifies_the_key_only_when_it_is_not_the_environments_own() {
        assert_eq!(key(Environment::Sandbox, None), "vakifbank/sandbox/app/f/");
        assert_eq!(
            key(Environment::Sandbox, Some(Resource::Sandbox)),
            "vakifbank/sandbox/app/f/"
        );
        assert_eq!(
            key(Environment::Production, None),
            "vakifbank/production/app/f/"
        );
        assert_eq!(
            key(Environment::Sandbox, Some(Resource::Production)),
            "vakifbank/sandbox+production/app/f/"
        );
        assert_eq!(
            key(Environment::Production, Some(Resource::Sandbox)),
            "vakifbank/production+sandbox/app/f/"
        );
        let proxy = Environment::Custom("https://proxy.example".into());
        assert_eq!(
            key(proxy.clone(), Some(Resource::Production)),
            "vakifbank/https:%2F%2Fproxy.example+production/app/f/"
        );
        assert_eq!(
            VakifBankSettings::new("app", Secret::new("s"), proxy).resource(),
            Resource::Sandbox
        );
        // A base URL ending in `+production`, on its own (sandbox) plan,
        // never shares the production plan's key.
        let plus = Environment::Custom("https://proxy.example+production".into());
        assert_eq!(
            key(plus, None),
            "vakifbank/https:%2F%2Fproxy.example%2Bproduction/app/f/"
        );
    }
}
