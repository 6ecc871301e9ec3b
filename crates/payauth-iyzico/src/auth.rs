//! How an iyzico client proves who it is, the one place that decides it
//! for both APIs; the generated clients' hooks apply it per each spec's
//! security table.
//!
//! - Terminal API login: the client id and secret go in the form body of
//!   `/authorize` (the spec's required fields, written by the flow from
//!   these [`TerminalCredentials`]) and as HTTP Basic on `/token` and
//!   `/token/refresh` (`clientBasic`), plain by default
//!   ([`BASIC_ENCODING`]: `base64(client_id:client_secret)`, the docs'
//!   formula), RFC 6749 §2.3.1 as an option.
//! - Pay with iyzico: every request is signed with IYZWSv2 (`iyzwsv2`)
//!   from the [`ApiKeys`].

use payauth_core::http::ClientAuthentication;
use payauth_core::oauth2::{BasicEncoding, ClientSecretBasic};
use payauth_core::{Error, ErrorKind, Secret, SerializableSecret};

use crate::generated::{pwi, terminal_login};
use crate::iyzwsv2;

/// iyzico's HTTP Basic encoding by default: the docs write
/// `Basic base64(client_id:client_secret)`, the credentials as they are.
/// That formula is the only source: no official iyzico SDK implements the
/// Terminal API login. Which one iyzico's server decodes is not
/// documented; `basic_encoding = "rfc6749"` switches.
pub const BASIC_ENCODING: BasicEncoding = BasicEncoding::Plain;

/// [`BASIC_ENCODING`], for settings' serde default.
pub(crate) fn default_basic_encoding() -> BasicEncoding {
    BASIC_ENCODING
}

/// The Terminal API client id and secret.
#[derive(Clone, Debug)]
pub struct TerminalCredentials {
    basic: ClientSecretBasic,
}

impl TerminalCredentials {
    /// The merchant-specific client id provided by iyzico and the client
    /// secret it generated, sent as HTTP Basic in [`BASIC_ENCODING`].
    pub fn new(client_id: impl Into<String>, client_secret: Secret) -> Self {
        Self::with_basic_encoding(client_id, client_secret, BASIC_ENCODING)
    }

    /// The client id and secret, sent as HTTP Basic in `encoding`.
    ///
    /// ```
    /// use payauth_core::{Secret, oauth2::BasicEncoding};
    /// use payauth_iyzico::auth::TerminalCredentials;
    ///
    /// let plain = TerminalCredentials::new("id", Secret::new("s"));
    /// assert_eq!(plain.basic_encoding(), BasicEncoding::Plain);
    /// let rfc = TerminalCredentials::with_basic_encoding("id", Secret::new("s"), BasicEncoding::Rfc6749);
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

    /// The client id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        self.basic.client_id()
    }

    /// `client_id` and `client_secret` for `/authorize`'s form body.
    pub(crate) fn body_fields(&self) -> (String, SerializableSecret) {
        (
            self.basic.client_id().to_owned(),
            self.basic.client_secret().clone().into(),
        )
    }
}

/// The merchant's API key and secret key, used for IYZWSv2 signatures.
///
/// What is signed is the **endpoint path** (`/v1/pay-with-iyzico/…`), as
/// every official SDK signs it: behind a base URL with a path of its own
/// (an egress proxy at `https://proxy.example/iyzico`), [`behind`] says so,
/// and that prefix is left out of the signature.
///
/// ```
/// use payauth_core::Secret;
/// use payauth_iyzico::auth::ApiKeys;
///
/// let keys = ApiKeys::new("api-key", Secret::new("secret-key")).behind("https://proxy.example/iyzico").unwrap();
/// assert_eq!(keys.signed_path("/iyzico/v1/payment"), "/v1/payment");
/// assert_eq!(keys.signed_path("/v1/payment"), "/v1/payment");
/// assert_eq!(keys.signed_path("/iyzicoX/v1"), "/iyzicoX/v1");
/// assert!(!format!("{keys:?}").contains("secret-key"));
/// ```
///
/// [`behind`]: Self::behind
#[derive(Clone)]
pub struct ApiKeys {
    api_key: String,
    secret_key: Secret,
    /// The base URL's own path, without its trailing `/` (empty for a
    /// host): left out of the signed path.
    base_path: String,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("api_key", &self.api_key)
            .field("base_path", &self.base_path)
            .finish_non_exhaustive()
    }
}

impl ApiKeys {
    /// The merchant API key and secret key (the HMAC key), for requests
    /// to a host's root.
    pub fn new(api_key: impl Into<String>, secret_key: Secret) -> Self {
        Self {
            api_key: api_key.into(),
            secret_key,
            base_path: String::new(),
        }
    }

    /// The same keys for requests through `base_url`: its path is a prefix
    /// (a proxy's) that is not part of the endpoint path iyzico checks.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when `base_url` is not a URL.
    pub fn behind(mut self, base_url: &str) -> Result<Self, Error> {
        let url = reqwest::Url::parse(base_url).map_err(|e| {
            Error::new(ErrorKind::Config).with_description(format!(
                "base URL {:?} is not a URL: {e}",
                payauth_core::redact::url(base_url)
            ))
        })?;
        url.path()
            .trim_end_matches('/')
            .clone_into(&mut self.base_path);
        Ok(self)
    }

    /// The merchant API key.
    #[must_use]
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The endpoint path signed for a request to `path`: `path` without
    /// the base URL's own path, when it starts with it.
    #[must_use]
    pub fn signed_path<'a>(&self, path: &'a str) -> &'a str {
        if self.base_path.is_empty() {
            return path;
        }
        match path.strip_prefix(self.base_path.as_str()) {
            Some(rest) if rest.starts_with('/') => rest,
            Some("") => "/",
            _ => path,
        }
    }

    /// Signs a request to `path` (no query string) with `body`, its exact
    /// bytes: `Authorization: IYZWSv2 …` (sensitive) and `x-iyzi-rnd`,
    /// with a fresh random key.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the operating system has no randomness.
    pub fn sign(
        &self,
        path: &str,
        body: &[u8],
        headers: &mut reqwest::header::HeaderMap,
    ) -> Result<(), Error> {
        let random_key = iyzwsv2::random_key()?;
        let authorization = iyzwsv2::authorization(
            &self.api_key,
            &self.secret_key,
            &random_key,
            self.signed_path(path),
            body,
        );
        let random_header = reqwest::header::HeaderValue::from_str(&random_key).map_err(|_| {
            Error::new(ErrorKind::Config).with_description("bad IYZWSv2 random key")
        })?;
        headers.insert(reqwest::header::AUTHORIZATION, authorization);
        headers.insert(iyzwsv2::RANDOM_KEY_HEADER, random_header);
        Ok(())
    }
}

impl ClientAuthentication<terminal_login::security::Scheme> for TerminalCredentials {
    fn schemes(&self) -> &[terminal_login::security::Scheme] {
        &[terminal_login::security::Scheme::ClientBasic]
    }

    fn apply(
        &self,
        scheme: terminal_login::security::Scheme,
        request: &mut reqwest::Request,
    ) -> Result<(), Error> {
        let terminal_login::security::Scheme::ClientBasic = scheme;
        self.basic.apply(request);
        Ok(())
    }
}

impl ClientAuthentication<pwi::security::Scheme> for ApiKeys {
    fn schemes(&self) -> &[pwi::security::Scheme] {
        &[pwi::security::Scheme::Iyzwsv2]
    }

    /// Signs over the exact body bytes reqwest will send and the endpoint
    /// path (the URL path without query string and without the base URL's
    /// own path).
    fn apply(
        &self,
        scheme: pwi::security::Scheme,
        request: &mut reqwest::Request,
    ) -> Result<(), Error> {
        let pwi::security::Scheme::Iyzwsv2 = scheme;
        let path = request.url().path().to_owned();
        let mut headers = std::mem::take(request.headers_mut());
        let body = request
            .body()
            .and_then(reqwest::Body::as_bytes)
            .unwrap_or_default();
        let signed = self.sign(&path, body, &mut headers);
        *request.headers_mut() = headers;
        signed
    }
}
