//! [`Secret`]: a credential or token that never shows itself by accident.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind};

/// A client secret, password, access token, refresh token, auth code or
/// HMAC key.
///
/// - `Debug` prints `Secret([REDACTED])`; there is no `Display`.
/// - The memory is zeroed when the value is dropped.
/// - `==` compares in constant time (for equal lengths).
/// - No `Serialize`: a `Secret` cannot end up in JSON logs or config
///   dumps by accident. Request bodies and token stores, which must write
///   the value, use [`SerializableSecret`]; `Deserialize` is there for
///   loading configuration.
///
/// ```
/// use payauth_core::Secret;
///
/// let secret = Secret::new("s3cr3t");
/// assert_eq!(format!("{secret:?}"), "Secret([REDACTED])");
/// assert_eq!(secret.expose_secret(), "s3cr3t");
/// ```
///
/// ```compile_fail
/// fn serializable<T: serde::Serialize>() {}
/// serializable::<payauth_core::Secret>(); // a Secret cannot be serialized
/// ```
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The value itself, for the one place that must send it.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads a secret from the environment variable `name`.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the variable is unset, not UTF-8 or empty;
    /// the message names the variable, never its value.
    pub fn from_env(name: &str) -> Result<Self, Error> {
        match std::env::var(name) {
            Ok(value) if !value.is_empty() => Ok(Self::new(value)),
            Ok(_) => Err(Error::new(ErrorKind::Config)
                .with_description(format!("environment variable {name} is empty"))),
            Err(std::env::VarError::NotPresent) => Err(Error::new(ErrorKind::Config)
                .with_description(format!("environment variable {name} is not set"))),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::new(ErrorKind::Config)
                .with_description(format!("environment variable {name} is not UTF-8"))),
        }
    }

    /// Reads a secret from a file (a mounted Kubernetes or Docker secret,
    /// say), without its trailing newline. Only a regular file (or a link
    /// to one) of at most [`MAX_SECRET_FILE`] bytes is read: a device
    /// (`/dev/zero`), a FIFO with no writer or a directory is refused at
    /// once, never read without end or waited on.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the file cannot be read, is not a regular
    /// file, is larger than [`MAX_SECRET_FILE`], is not UTF-8 or is empty;
    /// the message names the path, never the content.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = Zeroizing::new(read_regular_file(path, MAX_SECRET_FILE).map_err(|e| {
            Error::new(ErrorKind::Config)
                .with_description(format!("cannot read secret file {}: {e}", path.display()))
        })?);
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::new(ErrorKind::Config)
                .with_description(format!("secret file {} is not UTF-8", path.display()))
        })?;
        let value = text
            .strip_suffix('\n')
            .map_or(text, |t| t.strip_suffix('\r').unwrap_or(t));
        if value.is_empty() {
            return Err(Error::new(ErrorKind::Config)
                .with_description(format!("secret file {} is empty", path.display())));
        }
        Ok(Self::new(value))
    }
}

/// The largest secret file [`Secret::from_file`] reads: 64 KiB, far more
/// than any credential, key or token.
pub const MAX_SECRET_FILE: u64 = 64 * 1024;

/// The content of the regular file at `path` (links followed), at most
/// `max` bytes. What is not a regular file is refused before it is opened,
/// so a FIFO with no writer never blocks and a device is never read.
///
/// # Errors
/// The I/O error (its kind, never the content), or one saying the file is
/// not a regular file or is larger than `max` bytes.
pub fn read_regular_file(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let refuse = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, why);
    let metadata = std::fs::metadata(path).map_err(|e| refuse(e.kind().to_string()))?;
    if !metadata.is_file() {
        return Err(refuse("not a regular file".to_owned()));
    }
    if metadata.len() > max {
        return Err(refuse(format!("larger than {max} bytes")));
    }
    // Sized once: a secret is not left behind in a grown buffer.
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0) + 1);
    std::fs::File::open(path)
        .and_then(|file| file.take(max + 1).read_to_end(&mut bytes))
        .map_err(|e| refuse(e.kind().to_string()))?;
    if bytes.len() as u64 > max {
        return Err(refuse(format!("larger than {max} bytes")));
    }
    Ok(bytes)
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Secret {}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

/// A string; anything else is refused without showing what it was
/// (serde's own message would quote a number or a wrongly typed value).
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `any`: a tagged enum's buffered content calls the visitor only
        // so, and a value of the wrong type is refused unquoted.
        deserializer.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl serde::de::Visitor<'_> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Secret, E> {
        Ok(Secret::new(value))
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Secret, E> {
        Ok(Secret::new(value))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
        Err(E::custom(NOT_A_STRING))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
        Err(E::custom(NOT_A_STRING))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
        Err(E::custom(NOT_A_STRING))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
        Err(E::custom(NOT_A_STRING))
    }

    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        Err(E::custom(NOT_A_STRING))
    }
}

/// Why a secret that is no string is refused; the value is not shown.
const NOT_A_STRING: &str = "a secret must be a string (quote it); the value is not shown";

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "writeOnly": true,
            "description": "A credential or token; redacted in Debug output.",
        })
    }
}

/// A [`Secret`] that serializes its value: the type of credential fields in
/// generated request and response types (the spec's `format: password`) and
/// in [`StoredToken`](crate::StoredToken), which must put the real value on
/// the wire or on disk. `Debug` is still redacted. Convert with `From`.
///
/// ```
/// use payauth_core::{SerializableSecret, Secret};
///
/// let wire = SerializableSecret::from(Secret::new("v"));
/// assert_eq!(serde_json::to_string(&wire).unwrap(), "\"v\"");
/// assert_eq!(format!("{wire:?}"), "Secret([REDACTED])");
/// let back: Secret = wire.into();
/// assert_eq!(back.expose_secret(), "v");
/// ```
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SerializableSecret(Secret);

impl SerializableSecret {
    /// Wraps a value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(Secret::new(value))
    }

    /// The value itself.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether the value is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// As a plain [`Secret`].
    #[must_use]
    pub fn as_secret(&self) -> &Secret {
        &self.0
    }
}

impl fmt::Debug for SerializableSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<Secret> for SerializableSecret {
    fn from(secret: Secret) -> Self {
        Self(secret)
    }
}

impl From<SerializableSecret> for Secret {
    fn from(secret: SerializableSecret) -> Self {
        secret.0
    }
}

impl From<&str> for SerializableSecret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl Serialize for SerializableSecret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.expose_secret())
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for SerializableSecret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        Secret::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        Secret::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENTINEL: &str = "SENTINEL-a94f";

    #[test]
    fn debug_never_shows_the_value() {
        let shown = format!(
            "{:?} {:#?}",
            Secret::new(SENTINEL),
            Some(Secret::new(SENTINEL))
        );
        assert!(!shown.contains(SENTINEL), "{shown}");
    }

    #[test]
    fn equal_values_compare_equal_and_different_ones_do_not() {
        assert_eq!(Secret::new("abc"), Secret::new("abc"));
        assert_ne!(Secret::new("abc"), Secret::new("abd"));
        assert_ne!(Secret::new("abc"), Secret::new("abcd"));
    }

    #[test]
    fn only_the_serializable_form_writes_the_value() {
        let json = serde_json::to_string(&SerializableSecret::new("v")).unwrap();
        assert_eq!(json, "\"v\"");
        assert_eq!(
            serde_json::from_str::<Secret>(&json).unwrap(),
            Secret::new("v")
        );
        assert!(!format!("{:?}", SerializableSecret::new(SENTINEL)).contains(SENTINEL));
    }

    #[test]
    fn a_missing_env_var_names_the_variable() {
        let error = Secret::from_env("PAYAUTH_TEST_SURELY_UNSET_VAR").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(error.to_string().contains("PAYAUTH_TEST_SURELY_UNSET_VAR"));
    }

    #[test]
    fn a_secret_file_loses_its_trailing_newline_and_errors_never_show_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, format!("{SENTINEL}\n")).unwrap();
        assert_eq!(Secret::from_file(&path).unwrap().expose_secret(), SENTINEL);
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        let error = Secret::from_file(&path).unwrap_err();
        assert!(error.to_string().contains("not UTF-8"));
        let missing = Secret::from_file(dir.path().join("missing")).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::Config);
    }
}
