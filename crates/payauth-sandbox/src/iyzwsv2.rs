//! IYZWSv2 as iyzico's server checks it, written from the official SDKs'
//! description of the scheme and their test vectors (`iyzipay-sdks` in
//! `specs/sources.yaml`), and nothing of payauth-iyzico's signer: a bug in
//! the client's signer cannot pass the sandbox by being the sandbox's bug
//! too.
//!
//! ```text
//! Authorization = "IYZWSv2 " + base64("apiKey:" + apiKey + "&randomKey:" + rnd + "&signature:" + signature)
//! signature     = lowercase hex of HMAC-SHA256(key = secretKey, message = rnd + uriPath + body)
//! ```

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The parts of an `Authorization: IYZWSv2 …` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Authorization {
    pub(crate) api_key: String,
    pub(crate) random_key: String,
    pub(crate) signature: String,
}

/// Reads an `Authorization` value: the `IYZWSv2 ` prefix, standard base64
/// with padding, and exactly the three named parts, in that order.
pub(crate) fn parse(value: &str) -> Option<Authorization> {
    let encoded = value.strip_prefix("IYZWSv2 ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let rest = decoded.strip_prefix("apiKey:")?;
    let (api_key, rest) = rest.split_once("&randomKey:")?;
    let (random_key, signature) = rest.split_once("&signature:")?;
    Some(Authorization {
        api_key: api_key.to_owned(),
        random_key: random_key.to_owned(),
        signature: signature.to_owned(),
    })
}

/// The signature iyzico expects for a request to `uri_path` with `body`
/// (the exact bytes received), as 64 lowercase hex digits.
pub(crate) fn expected(secret_key: &str, random_key: &str, uri_path: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()) else {
        return String::new();
    };
    mac.update(random_key.as_bytes());
    mac.update(uri_path.as_bytes());
    mac.update(body);
    let mut hex = String::with_capacity(64);
    for byte in mac.finalize().into_bytes() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test vectors: the first from iyzipay-php's tests, the others computed
    /// with the formula (`specs/sources.yaml`, `iyzipay-sdks`).
    #[test]
    fn the_sdk_payment_vector_parses_and_verifies() {
        let header = "IYZWSv2 YXBpS2V5OmFwaUtleSZyYW5kb21LZXk6cm5kJnNpZ25hdHVyZTpkMDBiYWE0YjZkYzU5MzA0NzJlNGQyMmEzYzUwZmIwN2RlNTBiMGRmYjhmNWFmNWI5ZjczMTU4ZDZiMTg0ZmY2";
        let parsed = parse(header).unwrap();
        assert_eq!(parsed.api_key, "apiKey");
        assert_eq!(parsed.random_key, "rnd");
        assert_eq!(
            expected(
                "secretKey",
                &parsed.random_key,
                "/payment/test",
                br#"{"locale":"tr","conversationId":"123456"}"#
            ),
            parsed.signature
        );
    }

    #[test]
    fn the_sdk_escaped_body_and_empty_body_vectors_verify() {
        assert_eq!(
            expected("secretKey", "random", "/v2/uri", br#""[data\u003dvalue]""#),
            "a90ec1aecd68e37cc30942f85ce6b0d53435a4ca45e04769b46e3c35d81bf6fe"
        );
        assert_eq!(
            expected("test", "123456789", "/v2/subscription/initialize", b""),
            "bc44b2f4dfb8df74147b1f527ff636444c3b3d3a1ff97dcb3366bc293facf298"
        );
    }

    #[test]
    fn a_header_in_another_shape_is_not_read() {
        let encode = |text: &str| format!("IYZWSv2 {}", STANDARD.encode(text));
        assert!(parse(&encode("apiKey:a&randomKey:r&signature:s")).is_some());
        for bad in [
            "randomKey:r&apiKey:a&signature:s",
            "apiKey:a&signature:s",
            "apiKey:a&randomKey:r",
            "apikey:a&randomKey:r&signature:s",
        ] {
            assert!(parse(&encode(bad)).is_none(), "{bad}");
        }
        assert!(parse("IYZWS apiKey").is_none());
        assert!(parse("IYZWSv2 !!!").is_none());
        assert!(
            parse(&encode("apiKey:a&randomKey:r&signature:s").replace("IYZWSv2", "Bearer"))
                .is_none()
        );
    }
}
