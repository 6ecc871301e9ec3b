//! Credentials the sandbox accepts and the knobs that change how it answers.

use std::fmt;
use std::time::Duration;

use payauth_core::Secret;
use payauth_core::oauth2::BasicEncoding;

/// The credentials a sandbox accepts when none are given: public, fixed
/// values that tests, benchmarks and `payauth demo` share.
///
/// None of them is a real credential of any provider.
pub mod defaults {
    /// iyzico Terminal API `client_id` (form field on `/authorize`, Basic
    /// user on `/token`).
    pub const IYZICO_CLIENT_ID: &str = "sandbox-terminal-client";
    /// iyzico Terminal API `client_secret`.
    pub const IYZICO_CLIENT_SECRET: &str = "sandbox-terminal-secret";
    /// iyzico Terminal API `username` (the cashier).
    pub const IYZICO_USERNAME: &str = "sandbox-cashier";
    /// iyzico Terminal API `password`.
    pub const IYZICO_PASSWORD: &str = "sandbox-password";
    /// iyzico merchant API key (the `apiKey` of IYZWSv2).
    pub const IYZICO_API_KEY: &str = "sandbox-api-key";
    /// iyzico merchant secret key (the HMAC key of IYZWSv2).
    pub const IYZICO_SECRET_KEY: &str = "sandbox-secret-key";
    /// A Pay-with-iyzico session token the sandbox knows...
    pub const PWI_SESSION_TOKEN: &str = "sandbox-session";
    /// ...and the member it belongs to.
    pub const PWI_MEMBER_IDENTIFIER: &str = "sandbox-member";
    /// VakıfBank API key (`client_id`).
    pub const VAKIFBANK_CLIENT_ID: &str = "sandbox-vakifbank-client";
    /// VakıfBank API secret (`client_secret`).
    pub const VAKIFBANK_CLIENT_SECRET: &str = "sandbox-vakifbank-secret";
    /// The VakıfBank `consentId` the `b2b_credentials` grant must send.
    pub const VAKIFBANK_CONSENT_ID: &str = "sandbox-consent";
    /// The VakıfBank scopes the sandbox knows (the ones seen in public code).
    pub const VAKIFBANK_SCOPES: &[&str] = &["public", "oob", "loan", "account", "transfer"];
    /// myPOS `client_id` (the Basic user).
    pub const MYPOS_CLIENT_ID: &str = "sandbox-mypos-client";
    /// myPOS `client_secret` (the Basic password).
    pub const MYPOS_CLIENT_SECRET: &str = "sandbox-mypos-secret";
    /// The myPOS scopes the sandbox knows: the docs name `webhooks` (for
    /// the Webhook API) and no other.
    pub const MYPOS_SCOPES: &[&str] = &["webhooks"];
}

/// A Pay-with-iyzico session the sandbox knows: the access-token endpoint
/// answers `260016` for any other pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxPwiSession {
    /// The `sessionToken` of the member's payment.
    pub session_token: String,
    /// The `memberIdentifier` it belongs to.
    pub member_identifier: String,
}

impl SandboxPwiSession {
    /// A session token for a member.
    #[must_use]
    pub fn new(session_token: impl Into<String>, member_identifier: impl Into<String>) -> Self {
        Self {
            session_token: session_token.into(),
            member_identifier: member_identifier.into(),
        }
    }
}

/// Every credential the sandbox checks. [`Default`] gives the values in
/// [`defaults`]; change any field to test other values (a secret with `:`,
/// `%` or `+` exercises the two HTTP Basic encodings, say: see
/// [`Behaviour::iyzico_basic`] and its siblings).
///
/// `Debug` never prints a secret.
pub struct SandboxCredentials {
    /// iyzico Terminal API `client_id`.
    pub iyzico_client_id: String,
    /// iyzico Terminal API `client_secret`.
    pub iyzico_client_secret: Secret,
    /// iyzico Terminal API `username`.
    pub iyzico_username: String,
    /// iyzico Terminal API `password`.
    pub iyzico_password: Secret,
    /// iyzico merchant API key (IYZWSv2 `apiKey`).
    pub iyzico_api_key: String,
    /// iyzico merchant secret key (IYZWSv2 HMAC key).
    pub iyzico_secret_key: Secret,
    /// Pay-with-iyzico sessions known from the start; more can be added at
    /// run time with [`RunningSandbox::add_pwi_session`](crate::RunningSandbox::add_pwi_session).
    pub pwi_sessions: Vec<SandboxPwiSession>,
    /// VakıfBank `client_id`.
    pub vakifbank_client_id: String,
    /// VakıfBank `client_secret`.
    pub vakifbank_client_secret: Secret,
    /// The `consentId` the `b2b_credentials` grant must send.
    pub vakifbank_consent_id: String,
    /// Scopes the VakıfBank endpoints accept (space-separated values must
    /// each be one of these); empty accepts any scope.
    pub vakifbank_scopes: Vec<String>,
    /// Registered VakıfBank redirect URIs; empty accepts any absolute
    /// `http`/`https` URI (handy with ephemeral loopback callback ports).
    pub vakifbank_redirect_uris: Vec<String>,
    /// myPOS `client_id`.
    pub mypos_client_id: String,
    /// myPOS `client_secret`.
    pub mypos_client_secret: Secret,
    /// Scopes the myPOS token endpoint grants (space-separated values must
    /// each be one of these, else `invalid_scope`); empty accepts any.
    pub mypos_scopes: Vec<String>,
}

impl Default for SandboxCredentials {
    fn default() -> Self {
        Self {
            iyzico_client_id: defaults::IYZICO_CLIENT_ID.to_owned(),
            iyzico_client_secret: Secret::new(defaults::IYZICO_CLIENT_SECRET),
            iyzico_username: defaults::IYZICO_USERNAME.to_owned(),
            iyzico_password: Secret::new(defaults::IYZICO_PASSWORD),
            iyzico_api_key: defaults::IYZICO_API_KEY.to_owned(),
            iyzico_secret_key: Secret::new(defaults::IYZICO_SECRET_KEY),
            pwi_sessions: vec![SandboxPwiSession::new(
                defaults::PWI_SESSION_TOKEN,
                defaults::PWI_MEMBER_IDENTIFIER,
            )],
            vakifbank_client_id: defaults::VAKIFBANK_CLIENT_ID.to_owned(),
            vakifbank_client_secret: Secret::new(defaults::VAKIFBANK_CLIENT_SECRET),
            vakifbank_consent_id: defaults::VAKIFBANK_CONSENT_ID.to_owned(),
            vakifbank_scopes: defaults::VAKIFBANK_SCOPES
                .iter()
                .map(|&s| s.to_owned())
                .collect(),
            vakifbank_redirect_uris: Vec::new(),
            mypos_client_id: defaults::MYPOS_CLIENT_ID.to_owned(),
            mypos_client_secret: Secret::new(defaults::MYPOS_CLIENT_SECRET),
            mypos_scopes: defaults::MYPOS_SCOPES
                .iter()
                .map(|&s| s.to_owned())
                .collect(),
        }
    }
}

impl fmt::Debug for SandboxCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const REDACTED: &str = "[REDACTED]";
        f.debug_struct("SandboxCredentials")
            .field("iyzico_client_id", &self.iyzico_client_id)
            .field("iyzico_client_secret", &REDACTED)
            .field("iyzico_username", &self.iyzico_username)
            .field("iyzico_password", &REDACTED)
            .field("iyzico_api_key", &self.iyzico_api_key)
            .field("iyzico_secret_key", &REDACTED)
            .field("pwi_sessions", &self.pwi_sessions.len())
            .field("vakifbank_client_id", &self.vakifbank_client_id)
            .field("vakifbank_client_secret", &REDACTED)
            .field("vakifbank_consent_id", &self.vakifbank_consent_id)
            .field("vakifbank_scopes", &self.vakifbank_scopes)
            .field("vakifbank_redirect_uris", &self.vakifbank_redirect_uris)
            .field("mypos_client_id", &self.mypos_client_id)
            .field("mypos_client_secret", &REDACTED)
            .field("mypos_scopes", &self.mypos_scopes)
            .finish()
    }
}

/// How long what the sandbox issues lives. Each token lifetime is what the
/// response's `expires_in` (or, for Pay with iyzico, the JWT `exp`) says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenLifetimes {
    /// iyzico Terminal API access token (docs example: 7199 s).
    pub iyzico_terminal: Duration,
    /// Pay-with-iyzico access token (docs: 5 minutes).
    pub pwi: Duration,
    /// VakıfBank access token (3600 s typical).
    pub vakifbank: Duration,
    /// myPOS access token (about 24 h reported).
    pub mypos: Duration,
    /// iyzico and VakıfBank authorization codes (about 10 minutes). A zero
    /// lifetime issues codes that are already expired.
    pub auth_code: Duration,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        Self {
            iyzico_terminal: Duration::from_secs(7199),
            pwi: Duration::from_secs(300),
            vakifbank: Duration::from_secs(3600),
            mypos: Duration::from_secs(86_400),
            auth_code: Duration::from_secs(600),
        }
    }
}

/// How Pay-with-iyzico failures are sent. iyzico does all three.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PwiFailureStyle {
    /// HTTP 4xx (401 for signature and API key, 400 otherwise) with
    /// `"status":"failure"`.
    #[default]
    HttpError,
    /// HTTP 200 with `"status":"failure"`: only the body tells.
    Http200,
    /// HTTP 4xx with `status` as the number of the HTTP status, e.g.
    /// `{"status":401,"errorCode":"1000",...}` (the gateway's form).
    NumericStatus,
}

/// What the iyzico `/authorize` endpoint demands of `request_timestamp`,
/// "the Unix timestamp of the request" in iyzico's docs, whose unit they
/// do not give.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimestampCheck {
    /// The time of the request in Unix seconds or milliseconds, within
    /// five minutes of the sandbox's clock (the default: what the docs
    /// say, in either unit; `1` is refused).
    #[default]
    Now,
    /// Any decimal digits (laxer than the docs).
    Digits,
    /// Unix seconds within five minutes of the sandbox's clock.
    Seconds,
    /// Unix milliseconds within five minutes of the sandbox's clock (a docs
    /// sample sends 13 digits).
    Milliseconds,
}

/// Where the VakıfBank token endpoint accepts client credentials. The
/// docs list them as body fields and say nothing of HTTP Basic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuthCheck {
    /// The body or HTTP Basic, never both (the sandbox default).
    #[default]
    Either,
    /// Only `client_id` and `client_secret` in the body: HTTP Basic is
    /// refused (`invalid_client`).
    BodyOnly,
    /// Only HTTP Basic: credentials in the body are refused
    /// (`invalid_client`, with a `WWW-Authenticate` challenge).
    BasicOnly,
}

/// What the VakıfBank token endpoint makes of `resource`. The docs name it
/// (`sandbox` or `production`, the API plan) on the authorize page only;
/// the one public B2B caller found also sends it on the token call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResourceCheck {
    /// The API plan, optional on every grant: absent is fine, anything
    /// but `sandbox` or `production` is refused (`invalid_request`, the
    /// sandbox default).
    #[default]
    Plan,
    /// The API plan, required on every grant (a gateway that wants it on
    /// the token call, as the public B2B caller sends it): absent or
    /// bogus is refused (`invalid_request`).
    Required,
    /// An RFC 8707 resource indicator: one that is not an absolute URI
    /// (`sandbox`) is refused (`invalid_target`).
    Rfc8707,
}

/// Knobs that change how the sandbox answers. Set at start with
/// [`SandboxBuilder::behaviour`](crate::SandboxBuilder::behaviour) and at any
/// time with [`RunningSandbox::set_behaviour`](crate::RunningSandbox::set_behaviour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Behaviour {
    /// Lifetimes of tokens and codes.
    pub lifetimes: TokenLifetimes,
    /// Send `expires_in` as a numeric string (`"3600"`) instead of a number,
    /// on the iyzico Terminal, VakıfBank and myPOS token responses.
    pub expires_in_as_string: bool,
    /// How Pay-with-iyzico failures are sent.
    pub pwi_failure_style: PwiFailureStyle,
    /// HTTP status of VakıfBank `invalid_client` errors: 401 (default) or
    /// 400 (the Layer7 gateway sends either).
    pub vakifbank_invalid_client_status: u16,
    /// The simulated VakıfBank customer refuses consent: `/authorize`
    /// redirects with `error=access_denied`.
    pub vakifbank_customer_refuses: bool,
    /// What iyzico `/authorize` demands of `request_timestamp`.
    pub iyzico_request_timestamp: TimestampCheck,
    /// How the iyzico Terminal API decodes HTTP Basic on `/token` and
    /// `/token/refresh`: plain by default (the formula its docs write);
    /// [`BasicEncoding::Rfc6749`] form-urldecodes id and secret.
    pub iyzico_basic: BasicEncoding,
    /// How myPOS decodes HTTP Basic: plain by default (as its docs and JS
    /// SDK show).
    pub mypos_basic: BasicEncoding,
    /// How the VakıfBank gateway decodes HTTP Basic: RFC 6749 §2.3.1 by
    /// default (a standards OAuth server).
    pub vakifbank_basic: BasicEncoding,
    /// Where the VakıfBank token endpoint accepts client credentials, for
    /// every grant (the code exchange included, unless
    /// [`vakifbank_public_exchange`](Self::vakifbank_public_exchange)).
    pub vakifbank_client_auth: ClientAuthCheck,
    /// The VakıfBank code exchange is accepted without client
    /// authentication, exactly as the docs list it (`grant_type`, `code`,
    /// `redirect_uri`); credentials that are sent are still checked. Off
    /// by default: a confidential client authenticates (RFC 6749 §4.1.3)
    /// and the request without credentials is `invalid_client`.
    pub vakifbank_public_exchange: bool,
    /// What the VakıfBank token endpoint makes of `resource`.
    pub vakifbank_resource: ResourceCheck,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            lifetimes: TokenLifetimes::default(),
            expires_in_as_string: false,
            pwi_failure_style: PwiFailureStyle::default(),
            vakifbank_invalid_client_status: 401,
            vakifbank_customer_refuses: false,
            iyzico_request_timestamp: TimestampCheck::default(),
            iyzico_basic: BasicEncoding::Plain,
            mypos_basic: BasicEncoding::Plain,
            vakifbank_basic: BasicEncoding::Rfc6749,
            vakifbank_client_auth: ClientAuthCheck::Either,
            vakifbank_public_exchange: false,
            vakifbank_resource: ResourceCheck::Plan,
        }
    }
}
