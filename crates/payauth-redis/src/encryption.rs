//! Tokens encrypted at rest: XChaCha20-Poly1305 with a key the user
//! supplies, a random 192-bit nonce per write, and the Redis key as
//! associated data (a value copied under another key does not open).

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use payauth_core::store::MAX_STORED_TOKEN_BYTES;
use payauth_core::{Error, ErrorKind, Secret};
use zeroize::Zeroizing;

/// Stored values start with one format byte.
const PLAIN: u8 = b'j';
const SEALED: u8 = b'x';
const NONCE_LEN: usize = 24;
/// The Poly1305 tag a sealed value ends with.
const TAG_LEN: usize = 16;
/// The largest value stored for one token: its JSON within
/// [`MAX_STORED_TOKEN_BYTES`], sealed or not. Loads refuse larger values
/// before reading them.
pub(crate) const MAX_VALUE_BYTES: usize = 1 + NONCE_LEN + MAX_STORED_TOKEN_BYTES + TAG_LEN;

/// A 256-bit key for encrypting tokens at rest. Its `Debug` shows nothing
/// of it; it is wiped from memory when dropped.
#[derive(Clone)]
pub struct EncryptionKey(Zeroizing<[u8; 32]>);

impl EncryptionKey {
    /// A key from 32 bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A key from 64 hex digits (e.g. `openssl rand -hex 32`), typically
    /// read with [`Secret::from_env`] or [`Secret::from_file`].
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when `hex` is not 64 hex digits (the message
    /// says so without quoting it).
    pub fn from_hex(hex: &Secret) -> Result<Self, Error> {
        let invalid = || {
            Error::new(ErrorKind::Config)
                .with_description("the Redis encryption key must be 64 hex digits (32 bytes)")
        };
        let bytes = Zeroizing::new(
            payauth_core::internal::hex::decode(hex.expose_secret().trim().as_bytes())
                .ok_or_else(invalid)?,
        );
        if bytes.len() != 32 {
            return Err(invalid());
        }
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&bytes);
        Ok(Self(key))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&*self.0).into())
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey([REDACTED])")
    }
}

fn store_error(description: &str) -> Error {
    Error::new(ErrorKind::Store).with_description(description)
}

/// The bytes to store for `json` under `redis_key`.
pub(crate) fn seal(
    key: Option<&EncryptionKey>,
    redis_key: &str,
    json: &[u8],
) -> Result<Vec<u8>, Error> {
    let Some(key) = key else {
        let mut out = Vec::with_capacity(json.len() + 1);
        out.push(PLAIN);
        out.extend_from_slice(json);
        return Ok(out);
    };
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|_| store_error("no randomness for a nonce"))?;
    let sealed = key
        .cipher()
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: json,
                aad: redis_key.as_bytes(),
            },
        )
        .map_err(|_| store_error("cannot encrypt the token"))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    out.push(SEALED);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The JSON inside `stored`, read from `redis_key`.
pub(crate) fn open(
    key: Option<&EncryptionKey>,
    redis_key: &str,
    stored: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    match (stored.split_first(), key) {
        (Some((&PLAIN, json)), None) => Ok(Zeroizing::new(json.to_vec())),
        (Some((&PLAIN, _)), Some(_)) => Err(store_error(
            "the stored token is not encrypted but an encryption key is configured",
        )),
        (Some((&SEALED, _)), None) => Err(store_error(
            "the stored token is encrypted and no encryption key is configured",
        )),
        (Some((&SEALED, rest)), Some(key)) if rest.len() > NONCE_LEN => {
            let (nonce, sealed) = rest.split_at(NONCE_LEN);
            key.cipher()
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: sealed,
                        aad: redis_key.as_bytes(),
                    },
                )
                .map(Zeroizing::new)
                .map_err(|_| store_error("the stored token does not open with the configured key"))
        }
        _ => Err(store_error("the stored value is not a payauth token")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> EncryptionKey {
        EncryptionKey::from_bytes([byte; 32])
    }

    #[test]
    fn a_sealed_token_opens_with_its_key_under_its_redis_key_only() {
        let sealed = seal(Some(&key(1)), "{p:k}:token", b"{\"a\":1}").unwrap();
        assert_eq!(
            &*open(Some(&key(1)), "{p:k}:token", &sealed).unwrap(),
            b"{\"a\":1}"
        );
        assert!(open(Some(&key(2)), "{p:k}:token", &sealed).is_err());
        assert!(open(Some(&key(1)), "{p:other}:token", &sealed).is_err());
        assert!(open(None, "{p:k}:token", &sealed).is_err());
    }

    #[test]
    fn two_seals_of_the_same_token_differ() {
        let one = seal(Some(&key(1)), "k", b"same").unwrap();
        let two = seal(Some(&key(1)), "k", b"same").unwrap();
        assert_ne!(one, two);
    }

    #[test]
    fn the_sealed_bytes_do_not_contain_the_token() {
        let sealed = seal(Some(&key(1)), "k", b"SENTINEL-TOKEN").unwrap();
        assert!(!sealed.windows(8).any(|w| w == b"SENTINEL"));
    }

    #[test]
    fn any_stored_bytes_give_a_typed_error_or_the_token_never_a_panic() {
        for bytes in [&b""[..], b"x", b"x123", b"j", b"q{}", &[b'x'; 80][..]] {
            let _ = open(Some(&key(1)), "k", bytes);
            let _ = open(None, "k", bytes);
        }
    }

    #[test]
    fn a_hex_key_must_be_64_hex_digits_and_the_error_does_not_quote_it() {
        let good = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        assert!(EncryptionKey::from_hex(&Secret::new(good)).is_ok());
        for bad in ["SENTINELzz", &good[..62], &format!("{}zz", &good[..62])] {
            let error = EncryptionKey::from_hex(&Secret::new(bad)).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Config);
            assert!(!error.to_string().contains("SENTINEL"));
            assert!(!error.to_string().contains(&good[..20]));
        }
        assert_eq!(format!("{:?}", key(7)), "EncryptionKey([REDACTED])");
    }
}
