//! Hexadecimal: lowercase out, as HMAC signatures, random keys and file
//! names use it; either case in.

/// `bytes` as lowercase hex digits, two per byte.
///
/// ```
/// assert_eq!(payauth_core::internal::hex::encode_lower(&[0x00, 0xab, 0xff]), "00abff");
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

/// The value of one hex digit, either case.
///
/// ```
/// assert_eq!(payauth_core::internal::hex::digit(b'F'), Some(15));
/// assert_eq!(payauth_core::internal::hex::digit(b'g'), None);
/// ```
#[must_use]
pub fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The bytes `text` spells in hex digits (either case), or `None` for an
/// odd length or a non-digit.
///
/// ```
/// assert_eq!(payauth_core::internal::hex::decode(b"00aBff"), Some(vec![0x00, 0xab, 0xff]));
/// assert_eq!(payauth_core::internal::hex::decode(b"abc"), None);
/// ```
#[must_use]
pub fn decode(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}
