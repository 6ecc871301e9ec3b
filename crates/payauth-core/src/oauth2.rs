//! OAuth 2.0 pieces every standard provider uses: RFC 6749 client
//! authentication, token responses, scopes. (Form bodies are written by the
//! generated clients.)

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::HeaderValue;

use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::secret::Secret;
use crate::token::{AccessToken, Issued};
use crate::wire::NumberOrString;

/// How HTTP Basic client credentials are written before base64: the one
/// choice that differs between providers' servers. The two give the same
/// header for credentials made of letters, digits and `*-._`; they differ
/// for any other character (`:` `%` `+` `/` `=` `~`, spaces, non-ASCII).
///
/// In settings files: `basic_encoding = "plain"` or `"rfc6749"`.
///
/// ```
/// use payauth_core::{Secret, oauth2::BasicEncoding};
///
/// let secret = Secret::new("a:b+c");
/// // base64("id:a:b+c"): the bytes as they are.
/// assert_eq!(BasicEncoding::Plain.authorization("id", &secret).to_str().unwrap(), "Basic aWQ6YTpiK2M=");
/// // base64("id:a%3Ab%2Bc"): each part form-urlencoded first.
/// assert_eq!(BasicEncoding::Rfc6749.authorization("id", &secret).to_str().unwrap(), "Basic aWQ6YSUzQWIlMkJj");
/// assert_eq!("plain".parse::<BasicEncoding>().unwrap(), BasicEncoding::Plain);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum BasicEncoding {
    /// `base64(client_id ":" client_secret)`, the UTF-8 bytes as they are:
    /// the formula iyzico's and myPOS's docs write, and what myPOS's
    /// official JS SDK sends (no official iyzico SDK implements the
    /// Terminal API login).
    Plain,
    /// RFC 6749 §2.3.1: the client id and secret are each
    /// `application/x-www-form-urlencoded` first, then joined with `:` and
    /// base64-encoded; standards servers (oidc-provider, Spring
    /// Authorization Server, Layer7) decode it so.
    Rfc6749,
}

impl BasicEncoding {
    /// `plain` or `rfc6749`, as settings files write it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Rfc6749 => "rfc6749",
        }
    }

    /// The `Authorization: Basic …` value for `client_id` and
    /// `client_secret` in this encoding, marked sensitive.
    ///
    /// # Panics
    /// Never: base64 output is always a valid header value.
    #[must_use]
    pub fn authorization(self, client_id: &str, client_secret: &Secret) -> HeaderValue {
        let secret = client_secret.expose_secret();
        let joined = match self {
            Self::Plain => format!("{client_id}:{secret}"),
            Self::Rfc6749 => {
                let id: String = form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
                let secret: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
                format!("{id}:{secret}")
            }
        };
        let mut header = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(joined)))
            .expect("base64 is a valid header value");
        header.set_sensitive(true);
        header
    }
}

impl std::fmt::Display for BasicEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for BasicEncoding {
    type Err = Error;

    /// `plain` or `rfc6749`.
    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "plain" => Ok(Self::Plain),
            "rfc6749" => Ok(Self::Rfc6749),
            other => Err(Error::new(ErrorKind::Config).with_description(format!(
                "basic encoding {other:?} is not `plain` or `rfc6749`"
            ))),
        }
    }
}

/// `Authorization: Basic …` for client authentication per RFC 6749 §2.3.1
/// ([`BasicEncoding::Rfc6749`]): the client id and secret are each
/// `application/x-www-form-urlencoded` first, then joined with `:` and
/// base64-encoded. The value is marked sensitive.
///
/// ```
/// use payauth_core::{Secret, oauth2::basic_authorization};
///
/// let header = basic_authorization("id", &Secret::new("a:b"));
/// // base64("id:a%3Ab")
/// assert_eq!(header.to_str().unwrap(), "Basic aWQ6YSUzQWI=");
/// assert!(header.is_sensitive());
/// ```
#[must_use]
pub fn basic_authorization(client_id: &str, client_secret: &Secret) -> HeaderValue {
    BasicEncoding::Rfc6749.authorization(client_id, client_secret)
}

/// What payauth reads from an RFC 6749 §5.1 token response. Each provider
/// crate implements it for its generated response type with
/// [`oauth_token_response!`](crate::oauth_token_response); [`read_token`]
/// turns it into an [`AccessToken`].
pub trait TokenResponseBody {
    /// The response's fields, moved out.
    fn into_fields(self) -> TokenFields;
}

/// A client id and secret for HTTP Basic client authentication, with the
/// `Authorization` value computed once, not per request, in a
/// [`BasicEncoding`]. A provider's `auth.rs` builds it with the encoding
/// its settings choose (the provider's own by default).
///
/// ```
/// use payauth_core::{Secret, oauth2::{BasicEncoding, ClientSecretBasic}};
///
/// let basic = ClientSecretBasic::new("id", Secret::new("a:b"));
/// let mut request = reqwest::Request::new(reqwest::Method::POST, "https://x.example/t".parse().unwrap());
/// basic.apply(&mut request);
/// assert_eq!(request.headers()["authorization"], "Basic aWQ6YSUzQWI=");
/// assert!(!format!("{basic:?}").contains("a:b"));
/// let plain = ClientSecretBasic::with_encoding("id", Secret::new("a:b"), BasicEncoding::Plain);
/// assert_eq!(plain.encoding(), BasicEncoding::Plain);
/// ```
#[derive(Clone)]
pub struct ClientSecretBasic {
    client_id: String,
    client_secret: Secret,
    encoding: BasicEncoding,
    authorization: HeaderValue,
}

impl ClientSecretBasic {
    /// The credentials and their header value, RFC 6749 §2.3.1 encoded.
    pub fn new(client_id: impl Into<String>, client_secret: Secret) -> Self {
        Self::with_encoding(client_id, client_secret, BasicEncoding::Rfc6749)
    }

    /// The credentials and their header value in `encoding`.
    pub fn with_encoding(
        client_id: impl Into<String>,
        client_secret: Secret,
        encoding: BasicEncoding,
    ) -> Self {
        let client_id = client_id.into();
        let authorization = encoding.authorization(&client_id, &client_secret);
        Self {
            client_id,
            client_secret,
            encoding,
            authorization,
        }
    }

    /// How the header is encoded.
    #[must_use]
    pub fn encoding(&self) -> BasicEncoding {
        self.encoding
    }

    /// The client id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The client secret.
    #[must_use]
    pub fn client_secret(&self) -> &Secret {
        &self.client_secret
    }

    /// Puts `Authorization: Basic …` (sensitive) on `request`.
    pub fn apply(&self, request: &mut reqwest::Request) {
        request
            .headers_mut()
            .insert(reqwest::header::AUTHORIZATION, self.authorization.clone());
    }
}

impl std::fmt::Debug for ClientSecretBasic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecretBasic")
            .field("client_id", &self.client_id)
            .field("encoding", &self.encoding)
            .finish_non_exhaustive()
    }
}

/// The fields of an RFC 6749 §5.1 token response, as a provider's
/// generated type holds them.
#[derive(Debug, Default)]
pub struct TokenFields {
    /// `access_token`.
    pub access_token: Option<Secret>,
    /// `token_type`; absent means `Bearer`.
    pub token_type: Option<String>,
    /// `expires_in`, a number or a numeric string.
    pub expires_in: Option<NumberOrString>,
    /// `scope`.
    pub scope: Option<String>,
    /// `refresh_token`.
    pub refresh_token: Option<Secret>,
}

impl TokenResponseBody for TokenFields {
    fn into_fields(self) -> TokenFields {
        self
    }
}

/// Implements [`TokenResponseBody`] for a generated RFC 6749 §5.1 token
/// response type: one with `access_token`, `token_type`, `expires_in`,
/// `scope` and `refresh_token` fields, or, with `no refresh_token`, one
/// whose spec has no refresh token (client credentials, RFC 6749 §4.4.3).
///
/// ```ignore
/// payauth_core::oauth_token_response!(crate::generated::gateway::types::TokenResponse);
/// payauth_core::oauth_token_response!(crate::generated::oauth::types::TokenResponse, no refresh_token);
/// ```
#[macro_export]
macro_rules! oauth_token_response {
    ($body:ty) => {
        $crate::oauth_token_response!(@impl $body, body, body.refresh_token.map(::core::convert::Into::into));
    };
    ($body:ty, no refresh_token) => {
        $crate::oauth_token_response!(@impl $body, body, ::core::option::Option::None);
    };
    (@impl $body:ty, $this:ident, $refresh_token:expr) => {
        impl $crate::oauth2::TokenResponseBody for $body {
            fn into_fields(self) -> $crate::oauth2::TokenFields {
                let $this = self;
                $crate::oauth2::TokenFields {
                    access_token: $this.access_token.map(::core::convert::Into::into),
                    token_type: $this.token_type,
                    expires_in: $this.expires_in,
                    scope: $this.scope,
                    refresh_token: $refresh_token,
                }
            }
        }
    };
}

/// The one reader of token responses: an [`AccessToken`] from a provider's
/// answer, issued at `issued`, living `expires_in` (a number or a numeric
/// string) or `default_lifetime` when the provider does not say.
///
/// `token_type` must be `Bearer` in any case, or absent (which means
/// `Bearer`): payauth sends these tokens as `Authorization: Bearer …`, and
/// a `MAC`, `Basic` or unknown type would be a different scheme, or text
/// injected into that header.
///
/// ```
/// use std::time::Duration;
/// use payauth_core::oauth2::{TokenFields, read_token};
/// use payauth_core::{ErrorKind, Issued, Secret, SystemClock};
///
/// let fields = |token_type: &str| TokenFields {
///     access_token: Some(Secret::new("t")),
///     token_type: Some(token_type.to_owned()),
///     expires_in: Some("3600".into()),
///     ..TokenFields::default()
/// };
/// let issued = Issued::now(&SystemClock);
/// let token = read_token(fields("bearer"), issued, Duration::from_secs(60)).unwrap();
/// assert_eq!(token.authorization().to_str().unwrap(), "Bearer t");
/// assert_eq!(token.lifetime(), Duration::from_secs(3600));
/// let refused = read_token(fields("MAC"), issued, Duration::from_secs(60)).unwrap_err();
/// assert_eq!(refused.kind(), ErrorKind::Malformed);
/// ```
///
/// # Errors
/// [`ErrorKind::Malformed`] when the access token is missing or empty,
/// `expires_in` is present but not a whole number of seconds, or the token
/// type is not `Bearer`.
pub fn read_token(
    body: impl TokenResponseBody,
    issued: Issued,
    default_lifetime: Duration,
) -> Result<AccessToken, Error> {
    let fields = body.into_fields();
    let access_token = fields.access_token.ok_or_else(|| {
        Error::new(ErrorKind::Malformed).with_description("the token response has no access_token")
    })?;
    let lifetime = match &fields.expires_in {
        None => default_lifetime,
        Some(value) => value.as_seconds().ok_or_else(|| {
            Error::new(ErrorKind::Malformed)
                .with_description("expires_in is not a whole number of seconds")
        })?,
    };
    match fields.token_type.as_deref() {
        None | Some("") => {}
        Some(token_type) if token_type.eq_ignore_ascii_case(BEARER) => {}
        Some(_) => {
            return Err(Error::new(ErrorKind::Malformed).with_description(
                "the token response's token_type is not Bearer (the only type payauth sends)",
            ));
        }
    }
    Ok(AccessToken::new(access_token, BEARER, issued, lifetime)?
        .with_scope(fields.scope)
        .with_refresh_token(fields.refresh_token))
}

/// The token a refresh grant answered, keeping the refresh token `used`
/// when the answer carries none: a provider that rotates refresh tokens
/// sends a new one, which replaces it; one that does not keeps the old one
/// working.
#[must_use]
pub fn after_refresh(token: AccessToken, used: &Secret) -> AccessToken {
    if token.refresh_token().is_some() {
        token
    } else {
        token.with_refresh_token(Some(used.clone()))
    }
}

const BEARER: &str = "Bearer";

/// Joins scopes with spaces, the RFC 6749 §3.3 form.
#[must_use]
pub fn join_scopes<S: AsRef<str>>(scopes: &[S]) -> String {
    scopes
        .iter()
        .map(AsRef::as_ref)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn plain_basic_sends_the_bytes_as_they_are_and_rfc_encodes_every_special_character() {
        // Independently: base64 of the joined strings, computed by hand.
        let secret = Secret::new("s+e/c=r%t:x y");
        let plain = BasicEncoding::Plain.authorization("client id", &secret);
        assert_eq!(
            plain.to_str().unwrap(),
            format!("Basic {}", STANDARD.encode("client id:s+e/c=r%t:x y"))
        );
        let rfc = BasicEncoding::Rfc6749.authorization("client id", &secret);
        assert_eq!(
            rfc.to_str().unwrap(),
            format!(
                "Basic {}",
                STANDARD.encode("client+id:s%2Be%2Fc%3Dr%25t%3Ax+y")
            )
        );
        assert!(plain.is_sensitive() && rfc.is_sensitive());
        // Credentials without special characters give one header.
        let simple = Secret::new("Abc-1.2_3*");
        assert_eq!(
            BasicEncoding::Plain.authorization("id", &simple),
            BasicEncoding::Rfc6749.authorization("id", &simple)
        );
    }

    #[test]
    fn a_basic_encoding_reads_from_its_name_and_refuses_others() {
        for encoding in [BasicEncoding::Plain, BasicEncoding::Rfc6749] {
            assert_eq!(
                encoding.as_str().parse::<BasicEncoding>().unwrap(),
                encoding
            );
            let json = serde_json::json!(encoding.to_string());
            assert_eq!(
                serde_json::from_value::<BasicEncoding>(json).unwrap(),
                encoding
            );
        }
        let error = "RFC".parse::<BasicEncoding>().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(serde_json::from_value::<BasicEncoding>(serde_json::json!("form")).is_err());
    }

    #[test]
    fn basic_auth_form_encodes_id_and_secret_first() {
        // Independently: base64("client+id:s3%3Acr%25t%2B%C3%BC")
        let header = basic_authorization("client id", &Secret::new("s3:cr%t+ü"));
        assert_eq!(
            header.to_str().unwrap(),
            "Basic Y2xpZW50K2lkOnMzJTNBY3IlMjV0JTJCJUMzJUJD"
        );
    }

    fn read(fields: TokenFields) -> Result<AccessToken, Error> {
        read_token(
            fields,
            Issued::now(&ManualClock::new()),
            Duration::from_secs(1),
        )
    }

    fn with_token(f: impl FnOnce(&mut TokenFields)) -> TokenFields {
        let mut fields = TokenFields {
            access_token: Some(Secret::new("t")),
            ..TokenFields::default()
        };
        f(&mut fields);
        fields
    }

    #[test]
    fn a_string_expires_in_is_read_as_seconds() {
        let token = read(with_token(|f| f.expires_in = Some("3600".into()))).unwrap();
        assert_eq!(token.lifetime(), Duration::from_secs(3600));
    }

    #[test]
    fn a_missing_access_token_or_bad_expires_in_is_malformed() {
        let error = read(TokenFields::default()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Malformed);
        let error = read(with_token(|f| f.expires_in = Some("soon".into()))).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Malformed);
        let error = read(with_token(|f| f.expires_in = Some((-1).into()))).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Malformed);
    }

    #[test]
    fn no_expires_in_means_the_default_lifetime() {
        let token = read(with_token(|_| {})).unwrap();
        assert_eq!(token.lifetime(), Duration::from_secs(1));
    }

    #[test]
    fn bearer_in_any_case_or_absent_is_sent_as_bearer() {
        for token_type in [
            None,
            Some(""),
            Some("Bearer"),
            Some("bearer"),
            Some("BEARER"),
        ] {
            let token = read(with_token(|f| f.token_type = token_type.map(str::to_owned)))
                .unwrap_or_else(|e| panic!("{token_type:?}: {e}"));
            assert_eq!(token.token_type(), "Bearer");
            assert_eq!(token.authorization().to_str().unwrap(), "Bearer t");
        }
    }

    #[test]
    fn any_other_token_type_is_refused_never_echoed_into_the_header() {
        for token_type in ["MAC", "Basic dXNlcjpwYXNz,", "Bearer x", "DPoP", "Bearer,"] {
            let error =
                read(with_token(|f| f.token_type = Some(token_type.to_owned()))).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Malformed, "{token_type}");
            assert!(!error.to_string().contains(token_type), "{error}");
        }
    }

    #[test]
    fn a_refresh_keeps_the_used_refresh_token_unless_a_new_one_came() {
        let used = Secret::new("old");
        let kept = after_refresh(read(with_token(|_| {})).unwrap(), &used);
        assert_eq!(kept.refresh_token(), Some(&used));
        let rotated = after_refresh(
            read(with_token(|f| f.refresh_token = Some(Secret::new("new")))).unwrap(),
            &used,
        );
        assert_eq!(rotated.refresh_token(), Some(&Secret::new("new")));
    }

    #[test]
    fn client_secret_basic_puts_its_precomputed_header_and_never_shows_the_secret() {
        let basic = ClientSecretBasic::new("client id", Secret::new("s3:cr%t+ü"));
        let mut request = reqwest::Request::new(
            reqwest::Method::POST,
            "https://x.example/t".parse().unwrap(),
        );
        basic.apply(&mut request);
        let header = &request.headers()[reqwest::header::AUTHORIZATION];
        assert_eq!(
            header,
            &basic_authorization("client id", &Secret::new("s3:cr%t+ü"))
        );
        assert!(header.is_sensitive());
        assert_eq!(basic.client_id(), "client id");
        assert_eq!(basic.client_secret(), &Secret::new("s3:cr%t+ü"));
        let shown = format!("{basic:?}");
        assert!(
            shown.contains("client id") && !shown.contains("s3:cr"),
            "{shown}"
        );
    }

    #[test]
    fn scopes_are_joined_by_single_spaces() {
        assert_eq!(join_scopes(&["public", "", "oob"]), "public oob");
    }
}
