//! iyzico's IYZWSv2 request signature, standalone.
//!
//! ```text
//! signature     = lowercase_hex(HMAC-SHA256(key = secretKey, msg = randomKey + uriPath + body))
//! Authorization = "IYZWSv2 " + base64("apiKey:" + apiKey + "&randomKey:" + randomKey + "&signature:" + signature)
//! x-iyzi-rnd    = randomKey
//! ```
//!
//! `uriPath` is the request path without host and query string; `body` is
//! the exact bytes sent, so serialise once and sign and send that same
//! buffer. Every official iyzipay SDK signs this way.
//!
//! ```
//! use payauth_core::Secret;
//! use payauth_iyzico::iyzwsv2;
//!
//! let header = iyzwsv2::authorization(
//!     "apiKey",
//!     &Secret::new("secretKey"),
//!     "rnd",
//!     "/payment/test",
//!     br#"{"locale":"tr","conversationId":"123456"}"#,
//! );
//! assert_eq!(
//!     header.to_str().unwrap(),
//!     "IYZWSv2 YXBpS2V5OmFwaUtleSZyYW5kb21LZXk6cm5kJnNpZ25hdHVyZTpkMDBiYWE0YjZkYzU5MzA0NzJlNGQyMmEzYzUwZmIwN2RlNTBiMGRmYjhmNWFmNWI5ZjczMTU4ZDZiMTg0ZmY2",
//! );
//! assert!(header.is_sensitive());
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use payauth_core::Secret;
use payauth_core::internal::hex::encode_lower;
use reqwest::header::HeaderValue;
use sha2::Sha256;

/// The header that carries the random key beside `Authorization`.
pub const RANDOM_KEY_HEADER: &str = "x-iyzi-rnd";

/// `lowercase_hex(HMAC-SHA256(secret_key, random_key + uri_path + body))`.
///
/// # Panics
/// Never: HMAC accepts keys of any length.
#[must_use]
pub fn signature(secret_key: &Secret, random_key: &str, uri_path: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret_key.expose_secret().as_bytes())
        .expect("HMAC-SHA256 takes keys of any length");
    mac.update(random_key.as_bytes());
    mac.update(uri_path.as_bytes());
    mac.update(body);
    encode_lower(&mac.finalize().into_bytes())
}

/// The `Authorization` header value, marked sensitive so HTTP logging
/// layers do not print it.
///
/// # Panics
/// Never: the value is a fixed prefix and base64, always a valid header.
#[must_use]
pub fn authorization(
    api_key: &str,
    secret_key: &Secret,
    random_key: &str,
    uri_path: &str,
    body: &[u8],
) -> HeaderValue {
    let signature = signature(secret_key, random_key, uri_path, body);
    let params = format!("apiKey:{api_key}&randomKey:{random_key}&signature:{signature}");
    let value = format!("IYZWSv2 {}", STANDARD.encode(params));
    let mut header = HeaderValue::from_str(&value).expect("base64 is a valid header value");
    header.set_sensitive(true);
    header
}

/// A fresh random key: 16 bytes from the operating system's CSPRNG, as 32
/// lowercase hex digits.
///
/// # Errors
/// When the operating system has no randomness to give (vanishingly rare);
/// never a predictable fallback.
pub fn random_key() -> Result<String, payauth_core::Error> {
    payauth_core::internal::random::hex(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_payment_vector_gives_the_documented_header() {
        let header = authorization(
            "apiKey",
            &Secret::new("secretKey"),
            "rnd",
            "/payment/test",
            br#"{"locale":"tr","conversationId":"123456"}"#,
        );
        assert_eq!(
            header.to_str().unwrap(),
            "IYZWSv2 YXBpS2V5OmFwaUtleSZyYW5kb21LZXk6cm5kJnNpZ25hdHVyZTpkMDBiYWE0YjZkYzU5MzA0NzJlNGQyMmEzYzUwZmIwN2RlNTBiMGRmYjhmNWFmNWI5ZjczMTU4ZDZiMTg0ZmY2"
        );
    }

    #[test]
    fn the_sdk_escaped_body_vector_signs_the_bytes_as_sent() {
        let body = br#""[data\u003dvalue]""#;
        assert_eq!(
            signature(&Secret::new("secretKey"), "random", "/v2/uri", body),
            "a90ec1aecd68e37cc30942f85ce6b0d53435a4ca45e04769b46e3c35d81bf6fe"
        );
    }

    #[test]
    fn the_sdk_empty_body_vector_signs_path_only() {
        assert_eq!(
            signature(
                &Secret::new("test"),
                "123456789",
                "/v2/subscription/initialize",
                b""
            ),
            "bc44b2f4dfb8df74147b1f527ff636444c3b3d3a1ff97dcb3366bc293facf298"
        );
    }

    #[test]
    fn turkish_characters_are_signed_as_utf8_bytes() {
        // Expected value from Python: hmac.new(b"k", ("r/p" + body).encode("utf-8"), sha256).
        let body = "{\"memberIdentifier\":\"Şükrü Çağlar\"}";
        assert_eq!(
            signature(&Secret::new("k"), "r", "/p", body.as_bytes()),
            "05bc5c789a51575bb1e50bb2ac45d82cc3a2786562de17071445c31546410eea"
        );
    }

    #[test]
    fn random_keys_are_32_hex_digits_and_differ() {
        let a = random_key().unwrap();
        let b = random_key().unwrap();
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}
