//! Random values from the operating system's CSPRNG: nonces, request ids.

use super::hex::encode_lower;
use crate::error::{Error, ErrorKind};

fn fill(bytes: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(bytes).map_err(|e| {
        Error::new(ErrorKind::Config).with_description(format!("no randomness available: {e}"))
    })
}

/// `len` random bytes as `2 * len` lowercase hex digits.
///
/// # Errors
/// [`ErrorKind::Config`] when the operating system has no randomness to
/// give; never a predictable fallback.
pub fn hex(len: usize) -> Result<String, Error> {
    let mut bytes = vec![0u8; len];
    fill(&mut bytes)?;
    Ok(encode_lower(&bytes))
}

/// A random (version 4) UUID, hyphenated.
///
/// ```
/// let id = payauth_core::internal::random::uuid_v4().unwrap();
/// assert_eq!(id.len(), 36);
/// assert_eq!(&id[14..15], "4");
/// ```
///
/// # Errors
/// As [`hex`].
pub fn uuid_v4() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    fill(&mut bytes)?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = encode_lower(&bytes);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_version_4_uuids_and_differ() {
        let a = super::uuid_v4().unwrap();
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(a, super::uuid_v4().unwrap());
    }

    #[test]
    fn random_hex_has_two_digits_per_byte_and_differs() {
        let a = super::hex(16).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, super::hex(16).unwrap());
    }
}
