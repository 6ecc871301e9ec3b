//! Tokens encrypted at rest, for stores shared by a fleet
//! (`payauth-redis`, `payauth-postgres`): XChaCha20-Poly1305 with a key
//! the user supplies, a random 192-bit nonce per write, and the record's
//! name in the store (its Redis key, its table row's key) as associated
//! data, so a value copied under another name does not open.
//!
//! [`encode`] and [`decode`] are the one record format both stores write:
//! a format byte (`j` for JSON, `x` for sealed JSON) and the
//! [`StoredToken`]'s JSON, at most
//! [`MAX_STORED_TOKEN_BYTES`] of it.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind};
use crate::secret::Secret;
use crate::store::{MAX_STORED_TOKEN_BYTES, StoredToken};

/// Stored values start with one format byte.
const PLAIN: u8 = b'j';
const SEALED: u8 = b'x';
const NONCE_LEN: usize = 24;
/// The Poly1305 tag a sealed value ends with.
const TAG_LEN: usize = 16;
/// The largest value stored for one token: its JSON within
/// [`MAX_STORED_TOKEN_BYTES`], sealed or not. Loads refuse larger values
/// before reading them.
pub const MAX_VALUE_BYTES: usize = 1 + NONCE_LEN + MAX_STORED_TOKEN_BYTES + TAG_LEN;

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
                .with_description("the store encryption key must be 64 hex digits (32 bytes)")
        };
        let bytes = Zeroizing::new(
            crate::internal::hex::decode(hex.expose_secret().trim().as_bytes())
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

/// The bytes to store for `json` under `name` (sealed with `key`, or
/// marked plain without one).
///
/// # Errors
/// [`ErrorKind::Store`] when no randomness is to be had for a nonce.
pub fn seal(key: Option<&EncryptionKey>, name: &str, json: &[u8]) -> Result<Vec<u8>, Error> {
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
                aad: name.as_bytes(),
            },
        )
        .map_err(|_| store_error("cannot encrypt the token"))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    out.push(SEALED);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The JSON inside `stored`, read from `name`.
///
/// # Errors
/// [`ErrorKind::Store`] when it is not a payauth value, is sealed without
/// a key configured (or plain with one), or does not open with the key
/// under this name.
pub fn open(
    key: Option<&EncryptionKey>,
    name: &str,
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
                        aad: name.as_bytes(),
                    },
                )
                .map(Zeroizing::new)
                .map_err(|_| store_error("the stored token does not open with the configured key"))
        }
        _ => Err(store_error("the stored value is not a payauth token")),
    }
}

/// The bytes a store writes for `token` under `name`: its JSON, sealed
/// with `key` if one is configured.
///
/// # Errors
/// [`ErrorKind::Store`] when its JSON is larger than
/// [`MAX_STORED_TOKEN_BYTES`] (nothing is written) or cannot be sealed.
pub fn encode(
    key: Option<&EncryptionKey>,
    name: &str,
    token: &StoredToken,
) -> Result<Vec<u8>, Error> {
    let json = Zeroizing::new(
        serde_json::to_vec(token).map_err(|e| Error::new(ErrorKind::Store).with_source(e))?,
    );
    if json.len() > MAX_STORED_TOKEN_BYTES {
        return Err(store_error(&format!(
            "the token is larger than the {MAX_STORED_TOKEN_BYTES} bytes a stored token may take; it was not saved"
        )));
    }
    seal(key, name, &json)
}

/// The token in `stored`, read from `name`.
///
/// # Errors
/// [`ErrorKind::Store`] as [`open`], and for a value larger than
/// [`MAX_VALUE_BYTES`] or JSON that is not a payauth token.
pub fn decode(
    key: Option<&EncryptionKey>,
    name: &str,
    stored: &[u8],
) -> Result<StoredToken, Error> {
    if stored.len() > MAX_VALUE_BYTES {
        return Err(store_error(&format!(
            "the stored value is {} bytes, larger than the {MAX_VALUE_BYTES} bytes a stored token may take",
            stored.len()
        )));
    }
    let json = open(key, name, stored)?;
    serde_json::from_slice(&json).map_err(|_| store_error("the stored token is not payauth JSON"))
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
    fn a_token_encoded_decodes_under_its_name_and_an_oversized_value_is_refused() {
        use std::time::Duration;

        use crate::clock::ManualClock;
        use crate::token::{AccessToken, Issued};

        let clock = ManualClock::new();
        let token = StoredToken::from_token(
            &AccessToken::new(
                Secret::new("a"),
                "Bearer",
                Issued::now(&clock),
                Duration::from_secs(60),
            )
            .unwrap(),
        );
        for key in [None, Some(key(3))] {
            let bytes = encode(key.as_ref(), "k", &token).unwrap();
            assert_eq!(decode(key.as_ref(), "k", &bytes).unwrap(), token);
        }
        let huge = vec![b'j'; MAX_VALUE_BYTES + 1];
        assert_eq!(
            decode(None, "k", &huge).unwrap_err().kind(),
            ErrorKind::Store
        );
        let big = StoredToken {
            scope: Some("s".repeat(MAX_STORED_TOKEN_BYTES)),
            ..token
        };
        assert_eq!(
            encode(None, "k", &big).unwrap_err().kind(),
            ErrorKind::Store
        );
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
