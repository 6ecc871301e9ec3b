//! The authorization-code flow: the authorize URL for the customer's
//! browser, the callback check, the code exchange, and the refresh-token
//! grant that keeps the login fresh ([`RefreshTokenGrant`]), built from
//! [`AuthorizationCodeSettings`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use payauth_core::oauth2::{after_refresh, join_scopes};
use payauth_core::{AccessToken, BoxFuture, Error, ErrorKind, FlowSettings, Secret, TokenSource};
use progenitor_client::ClientInfo as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::gateway::{self, VakifBank, VakifBankSettings, as_strs, scope_field};
use crate::generated::gateway::types;

/// Which customers log in on the authorize page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Retail customers: `/auth/oauth/v2/authorize` (the default).
    #[default]
    Retail,
    /// Corporate customers: `/auth/oauth/v2/commercial/authorize`.
    Corporate,
}

impl Channel {
    /// `retail` or `corporate`, as settings and store keys write it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retail => "retail",
            Self::Corporate => "corporate",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Retail => "/auth/oauth/v2/authorize",
            Self::Corporate => "/auth/oauth/v2/commercial/authorize",
        }
    }
}

/// A customer's login and its renewal; in a config file, the `[source]`
/// table with `provider = "vakifbank"` and `flow = "authorization_code"`,
/// the same settings `payauth login vakifbank` stores its tokens under.
/// Unknown keys are refused.
///
/// ```
/// use payauth_core::{Environment, FlowSettings, Secret};
/// use payauth_vakifbank::{AuthorizationCodeSettings, VakifBankSettings};
///
/// let gateway = VakifBankSettings::new("app-key", Secret::new("s"), Environment::Sandbox);
/// let settings = AuthorizationCodeSettings::new(gateway, "customer-7").scopes(["account"]);
/// assert_eq!(
///     settings.store_key().unwrap(),
///     "vakifbank/sandbox/app-key/authorization_code/retail/customer-7/account",
/// );
/// ```
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AuthorizationCodeSettings {
    /// The application's credentials and host.
    // Flattened keys stay checked: this struct refuses every key that
    // neither it nor `VakifBankSettings` knows.
    #[serde(flatten)]
    pub gateway: VakifBankSettings,
    /// Your label for the customer who logs in (a user id): each customer's
    /// tokens are kept apart.
    pub customer: String,
    /// Whose login page: `retail` (default) or `corporate`.
    #[serde(default)]
    pub channel: Channel,
    /// Scopes to authorise (`account`, `transfer`, …).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Send PKCE S256 (not in VakıfBank's docs: off unless your plan
    /// accepts it).
    #[serde(default)]
    pub pkce: bool,
}

impl AuthorizationCodeSettings {
    /// A retail customer's login, no scopes, no PKCE.
    pub fn new(gateway: VakifBankSettings, customer: impl Into<String>) -> Self {
        Self {
            gateway,
            customer: customer.into(),
            channel: Channel::Retail,
            scopes: Vec::new(),
            pkce: false,
        }
    }

    /// Requests `scopes`.
    #[must_use]
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Starts an authorization on `bank` with these settings' channel,
    /// scopes and PKCE choice; see [`VakifBank::authorize_url`].
    ///
    /// # Errors
    /// As [`VakifBank::authorize_url`].
    pub fn authorize_url(
        &self,
        bank: &VakifBank,
        redirect_uri: &str,
    ) -> Result<PendingAuthorization, Error> {
        bank.authorize_url(
            self.channel,
            &as_strs(&self.scopes),
            redirect_uri,
            self.pkce,
        )
    }
}

impl FlowSettings for AuthorizationCodeSettings {
    type Source = RefreshTokenGrant;

    fn build(&self, http: &payauth_core::http::HttpClient) -> Result<RefreshTokenGrant, Error> {
        Ok(VakifBank::new(&self.gateway, http)?.refresh_token(&as_strs(&self.scopes)))
    }

    /// The subject is the channel and the customer.
    fn store_key(&self) -> Result<String, Error> {
        Ok(self
            .gateway
            .store_key("authorization_code")
            .subject(self.channel.as_str())
            .subject(&self.customer)
            .build(&self.scopes))
    }
}

/// An authorization in progress: what the callback must be checked
/// against. Keep it server-side (a session), never in the browser.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    /// The URL to send the customer's browser to.
    pub url: reqwest::Url,
    /// The CSPRNG `state` sent with it.
    pub state: Secret,
    /// The redirect URI, repeated in the exchange.
    pub redirect_uri: String,
    /// The PKCE verifier, when PKCE is on.
    pub code_verifier: Option<Secret>,
}

impl PendingAuthorization {
    /// Reads the redirect back to `redirect_uri` (a full URL, a path, or
    /// only its query string, with or without the `?`): checks `state` in
    /// constant time and returns the code.
    ///
    /// # Errors
    /// The kind of the OAuth `error` when the customer or bank refused
    /// (`access_denied` is [`ErrorKind::AccessDenied`]) and
    /// [`ErrorKind::Provider`] for a code payauth does not know (no verdict,
    /// as everywhere), both with the code kept;
    /// [`ErrorKind::InvalidRequest`] when the state is missing or does not
    /// match (a forged or stale callback), or a response parameter is
    /// repeated (RFC 6749 §3.1 forbids it: which one counts would be the
    /// attacker's choice); [`ErrorKind::Malformed`] when there is no code.
    pub fn callback(&self, redirect: &str) -> Result<Secret, Error> {
        let answer = CallbackAnswer::parse(redirect)?;
        if answer.state.as_ref() != Some(&self.state) {
            return Err(Error::new(ErrorKind::InvalidRequest).with_description(
                "the callback's state does not match the authorization (forged or stale redirect)",
            ));
        }
        if let Some(error) = answer.error {
            // What the redirect says is masked with what the authorization
            // holds (its state and PKCE verifier), as every answer is.
            let mut redactor = payauth_core::redact::Redactor::new();
            redactor.add_secret(&self.state);
            if let Some(verifier) = &self.code_verifier {
                redactor.add_secret(verifier);
            }
            let kind = ErrorKind::from_oauth_code(&error).unwrap_or(ErrorKind::Provider);
            let mut out = Error::new(kind)
                .with_provider_code(redactor.redact(&error))
                .with_description("the bank's redirect carries an error instead of a code");
            if let Some(description) = answer.description {
                out = out.with_description(redactor.redact(&description));
            }
            return Err(out);
        }
        answer.code.filter(|c| !c.is_empty()).ok_or_else(|| {
            Error::new(ErrorKind::Malformed).with_description("the callback carries no code")
        })
    }
}

/// The response parameters of an authorization redirect (RFC 6749
/// §4.1.2), each at most once.
#[derive(Default)]
struct CallbackAnswer {
    code: Option<Secret>,
    state: Option<Secret>,
    error: Option<String>,
    description: Option<String>,
}

/// The response parameters read; any other (the redirect URI's own) is
/// left alone.
const RESPONSE_PARAMETERS: [&str; 6] = [
    "code",
    "state",
    "error",
    "error_description",
    "error_uri",
    "iss",
];

impl CallbackAnswer {
    fn parse(redirect: &str) -> Result<Self, Error> {
        let mut answer = Self::default();
        let mut seen = [false; RESPONSE_PARAMETERS.len()];
        for (key, value) in form_urlencoded::parse(callback_query(redirect).as_bytes()) {
            let Some(index) = RESPONSE_PARAMETERS.iter().position(|p| *p == key) else {
                continue;
            };
            if std::mem::replace(&mut seen[index], true) {
                return Err(
                    Error::new(ErrorKind::InvalidRequest).with_description(format!(
                        "the callback repeats `{}` (RFC 6749 §3.1 forbids repeated parameters)",
                        RESPONSE_PARAMETERS[index]
                    )),
                );
            }
            let value = value.into_owned();
            match RESPONSE_PARAMETERS[index] {
                "code" => answer.code = Some(Secret::new(value)),
                "state" => answer.state = Some(Secret::new(value)),
                "error" => answer.error = Some(value),
                "error_description" => answer.description = Some(value),
                _ => {}
            }
        }
        Ok(answer)
    }
}

/// The query of a redirect given as a full URL, a path, or only its query
/// string: after the first `?` when what comes before it is a location (a
/// URL, a path, or nothing), else the whole text, a query string in which
/// a raw `?` is only a character (RFC 3986 §3.4). The fragment is dropped.
fn callback_query(redirect: &str) -> &str {
    let redirect = redirect.split('#').next().unwrap_or_default();
    match redirect.split_once('?') {
        Some((head, query)) if is_location(head) => query,
        _ => redirect,
    }
}

/// Whether `head` (the text before a redirect's first `?`) is where the
/// redirect went, not the start of a query string: empty, a path, or a URL
/// (`scheme://…`, or `scheme:…` holding no `=` or `&`, which a query's
/// first parameter would).
fn is_location(head: &str) -> bool {
    if head.is_empty() || head.starts_with('/') {
        return true;
    }
    let Some((scheme, rest)) = head.split_once(':') else {
        return false;
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    scheme_ok && (rest.starts_with("//") || !head.contains(['=', '&']))
}

impl VakifBank {
    /// Starts an authorization: the URL for the customer's browser, with a
    /// fresh CSPRNG `state` and, when `pkce` is set, an S256 challenge (not
    /// in VakıfBank's docs: off unless you know your plan accepts it).
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when no randomness is available.
    pub fn authorize_url(
        &self,
        channel: Channel,
        scopes: &[&str],
        redirect_uri: &str,
        pkce: bool,
    ) -> Result<PendingAuthorization, Error> {
        let state = Secret::new(payauth_core::internal::random::hex(16)?);
        let code_verifier = if pkce {
            // 32 random bytes as 64 hex digits: within RFC 7636's 43-128.
            Some(Secret::new(payauth_core::internal::random::hex(32)?))
        } else {
            None
        };
        let mut url = reqwest::Url::parse(&format!("{}{}", self.base_url, channel.path()))
            .map_err(|e| {
                Error::new(ErrorKind::Config).with_description(format!("bad authorize URL: {e}"))
            })?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("client_id", self.client.inner().client_id())
                .append_pair("response_type", "code")
                .append_pair("scope", &join_scopes(scopes))
                .append_pair("state", state.expose_secret())
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("resource", &self.resource.to_string());
            if let Some(verifier) = &code_verifier {
                let challenge =
                    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose_secret().as_bytes()));
                query
                    .append_pair("code_challenge", &challenge)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        Ok(PendingAuthorization {
            url,
            state,
            redirect_uri: redirect_uri.to_owned(),
            code_verifier,
        })
    }

    /// Exchanges the code from [`PendingAuthorization::callback`] for a
    /// token pair (`redirect_uri` and the PKCE verifier repeated). Not
    /// retried: a code is single-use.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidGrant`] for an unknown, used or expired code;
    /// [`ErrorKind::InvalidClient`] for refused credentials (400 or 401);
    /// [`ErrorKind::Refused`] for a 401 or 403 that does not say why, with
    /// the Layer7 `x-ca-err` code kept when the gateway sent one.
    pub async fn exchange(
        &self,
        pending: &PendingAuthorization,
        code: &Secret,
    ) -> Result<AccessToken, Error> {
        // The docs list no client credentials for this grant: they go where
        // `exchange_client_auth` says (unverified; default as the others;
        // `none` sends the request exactly as documented).
        let body = types::TokenRequest {
            code: Some(code.clone().into()),
            redirect_uri: Some(pending.redirect_uri.clone()),
            code_verifier: pending.code_verifier.clone().map(Into::into),
            ..self.request_through(&self.exchange_client, "authorization_code")
        };
        gateway::token(&self.exchange_client, self, &body).await
    }

    /// The refresh-token grant: a token source that renews with the
    /// refresh token it is handed (the cache hands it the last token's),
    /// keeping rotated ones; without one, or when the bank refuses it,
    /// [`ErrorKind::InvalidGrant`]: the customer must log in again.
    #[must_use]
    pub fn refresh_token(&self, scopes: &[&str]) -> RefreshTokenGrant {
        RefreshTokenGrant {
            bank: self.clone(),
            scope: scope_field(scopes),
        }
    }
}

/// The refresh-token grant; see [`VakifBank::refresh_token`].
#[derive(Debug, Clone)]
pub struct RefreshTokenGrant {
    bank: VakifBank,
    scope: Option<String>,
}

impl RefreshTokenGrant {
    /// The gateway handle this grant sends its requests through (for the
    /// authorize URL and the code exchange).
    #[must_use]
    pub fn bank(&self) -> &VakifBank {
        &self.bank
    }
}

impl TokenSource for RefreshTokenGrant {
    fn fetch<'a>(
        &'a self,
        previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        Box::pin(async move {
            let Some(refresh_token) = previous.and_then(AccessToken::refresh_token) else {
                return Err(Error::new(ErrorKind::InvalidGrant)
                    .with_description("no refresh token: the customer must log in again"));
            };
            let body = types::TokenRequest {
                refresh_token: Some(refresh_token.clone().into()),
                scope: self.scope.clone(),
                ..self.bank.request("refresh_token")
            };
            // Refresh tokens may be single-use: a new one replaces the old;
            // none in the answer keeps the one that worked.
            Ok(after_refresh(self.bank.token(&body).await?, refresh_token))
        })
    }

    fn name(&self) -> &'static str {
        "vakifbank refresh_token"
    }

    fn provider(&self) -> &'static str {
        "vakifbank"
    }

    fn flow(&self) -> &'static str {
        "authorization_code"
    }
}
