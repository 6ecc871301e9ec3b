//! OAuth 2.0 pieces every standard provider uses.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::HeaderValue;

use crate::Secret;

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
