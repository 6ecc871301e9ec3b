//! Lowercase hexadecimal, as HMAC signatures, random keys and file names
//! use it.

/// `bytes` as lowercase hex digits, two per byte.
///
/// ```
/// assert_eq!(payauth_core::hex::encode_lower(&[0x00, 0xab, 0xff]), "00abff");
/// ```
#[must_use]
pub fn encode_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}
