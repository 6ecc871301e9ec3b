//! The myPOS client-credentials flow: its settings ([`MyposSettings`]),
//! its [`TokenSource`] ([`Mypos`]), RFC 7009 revocation, and how myPOS
//! resource APIs take the token ([`MyposScheme`]).

use std::sync::Arc;
use std::time::Duration;

use payauth_core::http;
use payauth_core::oauth2::{BasicEncoding, join_scopes, read_token};
use payauth_core::scheme::{ApiRequest, RequestBody};
use payauth_core::{
    AccessToken, BoxFuture, Clock, Environment, Error, ErrorKind, FlowSettings, Issued, Secret,
    SecretConfig, StoreKey, SystemClock, TokenCache, TokenScheme, TokenSource,
};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

use crate::HOSTS;
use crate::auth::MyposCredentials;
use crate::generated::oauth::{Client, types};

/// Lifetime assumed when a token response has no `expires_in`, unless
/// `default_lifetime_secs` says otherwise (myPOS reports about 24 h;
/// `expires_in` is always used when present).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// How often revocation retries a 503 that carries `Retry-After`.
pub const REVOKE_RETRIES: u32 = 2;
/// The longest `Retry-After` revocation waits for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Everything the myPOS flow needs; in a config file, the `[source]` table
/// with `provider = "mypos"`. Unknown keys are refused.
///
/// ```
/// use payauth_core::{FlowSettings, Secret};
/// use payauth_mypos::{Environment, MyposSettings};
///
/// let settings = MyposSettings::new("client-id", Secret::new("client-secret"), Environment::Sandbox)
///     .scopes(["webhooks"]);
/// assert!(!format!("{settings:?}").contains("client-secret"));
/// assert_eq!(settings.store_key().unwrap(), "mypos/sandbox/client-id/client_credentials/webhooks");
/// ```
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MyposSettings {
    /// The client id from the myPOS account.
    pub client_id: String,
    /// The client secret from the myPOS account.
    pub client_secret: SecretConfig,
    /// `sandbox` (default), `production`, or a base URL.
    #[serde(default)]
    pub environment: Environment,
    /// `["webhooks"]` for the Webhook API; none otherwise.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Where revocation goes. The docs name both `api.mypos.com` and
    /// `auth-api.mypos.com`; default: the token host.
    #[serde(default)]
    pub revoke_base_url: Option<String>,
    /// How HTTP Basic is encoded: `plain` (default:
    /// `base64(client_id:client_secret)`, as myPOS's docs show and its JS
    /// SDK sends) or `rfc6749` (each part form-urlencoded first, RFC 6749
    /// §2.3.1). Unverified which one myPOS's server decodes.
    #[serde(default = "crate::auth::default_basic_encoding")]
    pub basic_encoding: BasicEncoding,
    /// Seconds a token lives when the answer has no `expires_in` (myPOS
    /// documents no response body; default 3600, [`DEFAULT_LIFETIME`]).
    #[serde(default)]
    pub default_lifetime_secs: Option<u64>,
    /// Allow plain `http://` to a non-loopback host (never in production).
    #[serde(default)]
    pub allow_insecure_http: bool,
}

impl MyposSettings {
    /// Settings with no scope, revocation on the token host, myPOS's Basic
    /// encoding.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<SecretConfig>,
        environment: Environment,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            environment,
            scopes: Vec::new(),
            revoke_base_url: None,
            basic_encoding: crate::auth::BASIC_ENCODING,
            default_lifetime_secs: None,
            allow_insecure_http: false,
        }
    }

    /// Requests `scopes` (myPOS knows `webhooks`).
    #[must_use]
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sends revocations to `base_url` instead of the token host.
    #[must_use]
    pub fn revoke_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.revoke_base_url = Some(base_url.into());
        self
    }
}

impl FlowSettings for MyposSettings {
    type Source = Mypos;

    fn build(&self, http: &payauth_core::http::HttpClient) -> Result<Mypos, Error> {
        Mypos::new(self, http)
    }

    fn store_key(&self) -> Result<String, Error> {
        Ok(StoreKey::new(
            "mypos",
            &self.environment,
            &self.client_id,
            "client_credentials",
        )
        .build(&self.scopes))
    }
}

/// The myPOS client-credentials flow. A [`TokenSource`]: put it in a
/// [`TokenCache`].
///
/// ```no_run
/// use payauth_core::{Secret, TokenCache};
/// use payauth_mypos::{Environment, Mypos, MyposSettings};
///
/// # async fn run() -> Result<(), payauth_core::Error> {
/// let http = payauth_core::http::default_client()?;
/// let settings = MyposSettings::new("client-id", Secret::from_env("MYPOS_CLIENT_SECRET")?, Environment::Production);
/// let mypos = std::sync::Arc::new(Mypos::new(&settings, &http)?);
/// let cache = TokenCache::builder(mypos.clone()).build();
/// let token = cache.token().await?;
/// let headers = mypos.resource_headers(&token)?; // Authorization, API-Key, X-Request-ID
/// # let _ = headers; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Mypos {
    token_client: Client,
    revoke_client: Client,
    client_id: String,
    scope: Option<String>,
    scheme: Arc<MyposScheme>,
    default_lifetime: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Mypos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mypos")
            .field("client_id", &self.client_id)
            .field(
                "token_base_url",
                &progenitor_client::ClientInfo::baseurl(&self.token_client),
            )
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl Mypos {
    /// The flow over a shared `http` client (build it once with
    /// [`payauth_core::http::default_client`]); the same as
    /// [`FlowSettings::build`].
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a missing client id or secret, or a base
    /// URL that is not `https://` (plain `http://` only to loopback unless
    /// allowed).
    pub fn new(
        settings: &MyposSettings,
        http: &payauth_core::http::HttpClient,
    ) -> Result<Self, Error> {
        let client_secret = settings.client_secret.load()?;
        payauth_core::settings::require(
            "myPOS",
            &[
                ("a client id", settings.client_id.is_empty()),
                ("a client secret", client_secret.is_empty()),
            ],
        )?;
        let token_base = settings
            .environment
            .base_url(&HOSTS, settings.allow_insecure_http)?;
        let revoke_base = http::check_base_url(
            settings.revoke_base_url.as_deref().unwrap_or(&token_base),
            settings.allow_insecure_http,
        )?;
        let credentials = MyposCredentials::with_basic_encoding(
            settings.client_id.clone(),
            client_secret,
            settings.basic_encoding,
        );
        let scope = join_scopes(&settings.scopes);
        Ok(Self {
            token_client: Client::new_with_client(&token_base, http.clone(), credentials.clone()),
            revoke_client: Client::new_with_client(&revoke_base, http.clone(), credentials),
            client_id: settings.client_id.clone(),
            scope: (!scope.is_empty()).then_some(scope),
            scheme: Arc::new(MyposScheme::new(settings.client_id.clone())),
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

    /// A fresh client-credentials token.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidClient`] for refused credentials,
    /// [`ErrorKind::Refused`] for a 401 or 403 that does not say why (an
    /// empty Basic refusal, a gateway page), transient kinds for
    /// 429/5xx/transport, [`ErrorKind::Malformed`] for an answer that is not
    /// a token.
    pub async fn fetch_token(&self) -> Result<AccessToken, Error> {
        let issued = Issued::now(self.clock.as_ref());
        let body = types::TokenRequest {
            grant_type: types::TokenRequestGrantType::ClientCredentials,
            scope: self.scope.clone(),
        };
        let response = self
            .token_client
            .token(&body)
            .await
            .map_err(|e| http::from_generated(e, None))?
            .into_inner();
        read_token(response, issued, self.default_lifetime)
    }

    /// Revokes `token` (RFC 7009). Success on any 2xx (RFC 7009 says 200;
    /// gateways answer 204 too), also when myPOS did not know the token; a
    /// 503 with `Retry-After` is retried up to [`REVOKE_RETRIES`] times,
    /// waiting at most [`MAX_RETRY_AFTER`].
    ///
    /// # Errors
    /// The provider's refusal, or the last transient failure.
    pub async fn revoke(&self, token: &Secret) -> Result<(), Error> {
        let body = types::RevokeRequest {
            token: token.clone().into(),
        };
        let mut attempt = 0;
        loop {
            match self.revoke_client.revoke(&body).await {
                Ok(_) => return Ok(()),
                // RFC 7009 says 200; a gateway may answer 202 or 204.
                Err(progenitor_client::Error::UnexpectedResponse(answer))
                    if answer.status().is_success() =>
                {
                    return Ok(());
                }
                Err(error) => {
                    let error = http::from_generated(error, None);
                    let wait = error.retry_after().filter(|_| error.status() == Some(503));
                    match wait {
                        Some(wait) if attempt < REVOKE_RETRIES => {
                            attempt += 1;
                            tokio::time::sleep(wait.min(MAX_RETRY_AFTER)).await;
                        }
                        _ => return Err(error),
                    }
                }
            }
        }
    }

    /// Revokes the token `cache` holds, if any, and drops it from the
    /// cache and its store ([`TokenCache::forget`]) so no caller, in this
    /// process or the next, is served it again.
    ///
    /// # Errors
    /// As [`revoke`](Self::revoke); the token is dropped only once revoked.
    /// [`ErrorKind::Store`] when it was revoked and dropped from memory but
    /// the store could not be cleared.
    pub async fn revoke_cached(&self, cache: &TokenCache) -> Result<(), Error> {
        let Some(token) = cache.peek() else {
            return Ok(());
        };
        self.revoke(token.secret()).await?;
        cache.forget(&token).await?;
        Ok(())
    }

    /// The headers myPOS resource APIs want with `token`:
    /// `Authorization: Bearer …` (sensitive), `API-Key: <client id>` and a
    /// fresh `X-Request-ID` (a random UUID) for each call: what
    /// [`MyposScheme`] puts on a request.
    ///
    /// # Errors
    /// As [`MyposScheme`]'s [`TokenScheme::apply`].
    pub fn resource_headers(&self, token: &AccessToken) -> Result<HeaderMap, Error> {
        let mut headers = HeaderMap::with_capacity(3);
        self.scheme.apply(
            token,
            ApiRequest {
                method: &reqwest::Method::GET,
                path: "/",
                body: RequestBody::Empty,
                headers: &mut headers,
            },
        )?;
        Ok(headers)
    }
}

/// How myPOS resource APIs take a token: `Authorization: Bearer …`
/// (sensitive), `API-Key: <client id>`, and a fresh `X-Request-ID` (a
/// random UUID v4) on every request [V, docs and the official JS SDK].
/// [`Mypos`]'s [`TokenSource::scheme`], so a cache over it carries it to
/// the facade's middleware.
///
/// ```
/// use payauth_core::scheme::{ApiRequest, RequestBody, TokenScheme};
/// use payauth_core::{AccessToken, Issued, Secret, SystemClock};
/// use payauth_mypos::client_credentials::MyposScheme;
///
/// let token = AccessToken::new(Secret::new("t"), "Bearer", Issued::now(&SystemClock), std::time::Duration::from_secs(60)).unwrap();
/// let mut headers = reqwest::header::HeaderMap::new();
/// let request = ApiRequest { method: &reqwest::Method::GET, path: "/v1/transactions", body: RequestBody::Empty, headers: &mut headers };
/// MyposScheme::new("client-id").apply(&token, request).unwrap();
/// assert_eq!(headers["authorization"], "Bearer t");
/// assert_eq!(headers["api-key"], "client-id");
/// assert_eq!(headers["x-request-id"].len(), 36);
/// ```
#[derive(Debug, Clone)]
pub struct MyposScheme {
    client_id: String,
}

impl MyposScheme {
    /// The scheme for the application with `client_id`.
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
        }
    }
}

impl TokenScheme for MyposScheme {
    /// # Errors
    /// [`ErrorKind::Config`] when the client id cannot be a header value,
    /// or no randomness is available for the request id.
    fn apply(&self, token: &AccessToken, request: ApiRequest<'_>) -> Result<(), Error> {
        let api_key = HeaderValue::from_str(&self.client_id).map_err(|_| {
            Error::new(ErrorKind::Config)
                .with_description("the client id is not a valid header value")
        })?;
        let request_id = HeaderValue::from_str(&payauth_core::internal::random::uuid_v4()?)
            .map_err(|_| Error::new(ErrorKind::Config))?;
        let headers = request.headers;
        headers.insert(AUTHORIZATION, token.authorization().clone());
        headers.insert(HeaderName::from_static("api-key"), api_key);
        headers.insert(HeaderName::from_static("x-request-id"), request_id);
        Ok(())
    }
}

impl TokenSource for Mypos {
    fn fetch<'a>(
        &'a self,
        _previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(self.fetch_token())
    }

    fn name(&self) -> &'static str {
        "mypos client_credentials"
    }

    fn provider(&self) -> &'static str {
        "mypos"
    }

    fn flow(&self) -> &'static str {
        "client_credentials"
    }

    /// [`MyposScheme`]: Bearer, `API-Key` and a fresh `X-Request-ID`.
    fn scheme(&self) -> Arc<dyn TokenScheme> {
        self.scheme.clone()
    }
}

payauth_core::oauth_error_body!(types::OAuthError);
payauth_core::oauth_token_response!(types::TokenResponse, no refresh_token);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_secret_or_plain_http_is_a_config_error() {
        let http = payauth_core::http::default_client().unwrap();
        let settings = MyposSettings::new("id", Secret::new(""), Environment::Sandbox);
        assert_eq!(
            Mypos::new(&settings, &http).unwrap_err().kind(),
            ErrorKind::Config
        );
        let settings = MyposSettings::new(
            "id",
            Secret::new("s"),
            Environment::Custom("http://auth-api.mypos.com".into()),
        );
        assert_eq!(
            Mypos::new(&settings, &http).unwrap_err().kind(),
            ErrorKind::Config
        );
    }
}
