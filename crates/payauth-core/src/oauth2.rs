//! OAuth 2.0 pieces every standard provider uses: RFC 6749 client
//! authentication, token responses, scopes. (Form bodies are written by the
//! generated clients.)

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::HeaderValue;

use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::secret::Secret;
use crate::token::{AccessToken, Issued, parse_expires_in};

/// `Authorization: Basic …` for client authentication per RFC 6749 §2.3.1:
/// the client id and secret are each `application/x-www-form-urlencoded`
/// first, then joined with `:` and base64-encoded. For alphanumeric
/// credentials this equals plain Basic; it matters for secrets holding
/// `:`, `%`, `+`, spaces or non-ASCII. The value is marked sensitive.
///
/// ```
/// use payauth_core::{Secret, oauth2::basic_authorization};
///
/// let header = basic_authorization("id", &Secret::new("a:b"));
/// // base64("id:a%3Ab")
/// assert_eq!(header.to_str().unwrap(), "Basic aWQ6YSUzQWI=");
/// assert!(header.is_sensitive());
/// ```
///
/// # Panics
/// Never: base64 output is always a valid header value.
#[must_use]
pub fn basic_authorization(client_id: &str, client_secret: &Secret) -> HeaderValue {
    let id: String = form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    let secret: String =
        form_urlencoded::byte_serialize(client_secret.expose_secret().as_bytes()).collect();
    let value = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
    let mut header = HeaderValue::from_str(&value).expect("base64 is a valid header value");
    header.set_sensitive(true);
    header
}

/// The fields of an RFC 6749 §5.1 token response, as a provider's
/// generated type holds them.
#[derive(Debug, Default)]
pub struct TokenFields {
    /// `access_token`.
    pub access_token: Option<Secret>,
    /// `token_type`.
    pub token_type: Option<String>,
    /// `expires_in`, as whatever JSON the provider sent.
    pub expires_in: Option<serde_json::Value>,
    /// `scope`.
    pub scope: Option<String>,
    /// `refresh_token`.
    pub refresh_token: Option<Secret>,
}

/// An [`AccessToken`] from a token response: `expires_in` read leniently
/// (number or numeric string), `default_lifetime` when it is absent.
///
/// # Errors
/// [`ErrorKind::Malformed`] when the access token is missing or empty, or
/// `expires_in` is present but not a whole number of seconds.
pub fn token_from_response(
    fields: TokenFields,
    issued: Issued,
    default_lifetime: Duration,
) -> Result<AccessToken, Error> {
    let access_token = fields.access_token.ok_or_else(|| {
        Error::new(ErrorKind::Malformed).with_description("the token response has no access_token")
    })?;
    let lifetime = match &fields.expires_in {
        None | Some(serde_json::Value::Null) => default_lifetime,
        Some(value) => parse_expires_in(value).ok_or_else(|| {
            Error::new(ErrorKind::Malformed)
                .with_description("expires_in is not a whole number of seconds")
        })?,
    };
    Ok(AccessToken::new(
        access_token,
        fields.token_type.as_deref().unwrap_or("Bearer"),
        issued,
        lifetime,
    )?
    .with_scope(fields.scope)
    .with_refresh_token(fields.refresh_token))
}

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
    fn basic_auth_form_encodes_id_and_secret_first() {
        // Independently: base64("client+id:s3%3Acr%25t%2B%C3%BC")
        let header = basic_authorization("client id", &Secret::new("s3:cr%t+ü"));
        assert_eq!(
            header.to_str().unwrap(),
            "Basic Y2xpZW50K2lkOnMzJTNBY3IlMjV0JTJCJUMzJUJD"
        );
    }

    #[test]
    fn a_string_expires_in_is_read_as_seconds() {
        let clock = ManualClock::new();
        let fields = TokenFields {
            access_token: Some(Secret::new("t")),
            expires_in: Some(serde_json::json!("3600")),
            ..TokenFields::default()
        };
        let token =
            token_from_response(fields, Issued::now(&clock), Duration::from_secs(1)).unwrap();
        assert_eq!(token.lifetime(), Duration::from_secs(3600));
    }

    #[test]
    fn a_missing_access_token_or_bad_expires_in_is_malformed() {
        let clock = ManualClock::new();
        let error = token_from_response(
            TokenFields::default(),
            Issued::now(&clock),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Malformed);
        let fields = TokenFields {
            access_token: Some(Secret::new("t")),
            expires_in: Some(serde_json::json!("soon")),
            ..TokenFields::default()
        };
        let error =
            token_from_response(fields, Issued::now(&clock), Duration::from_secs(1)).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Malformed);
    }

    #[test]
    fn scopes_are_joined_by_single_spaces() {
        assert_eq!(join_scopes(&["public", "", "oob"]), "public oob");
    }
}
