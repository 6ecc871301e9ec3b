//! Wire types shared by every provider's generated client: values that
//! providers send loosely, written once here and mapped onto each spec at
//! codegen (`x-rust-type`), so no provider crate re-reads them.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A JSON value that providers send as a number or as a string: RFC 6749
/// `expires_in` (`3600` or `"3600"`), iyzico's `errorCode` and `status`.
/// Every spec schema that is `oneOf: [integer, string]` generates as this
/// type.
///
/// Read without an intermediate `serde_json::Value`: a number outside
/// `i64`, a fraction, or any other JSON type is a deserialization error
/// (the response does not match its spec).
///
/// ```
/// use std::time::Duration;
/// use payauth_core::wire::NumberOrString;
///
/// let n: NumberOrString = serde_json::from_str("3600").unwrap();
/// let s: NumberOrString = serde_json::from_str(r#"" 7199 ""#).unwrap();
/// assert_eq!(n.as_seconds(), Some(Duration::from_secs(3600)));
/// assert_eq!(s.as_seconds(), Some(Duration::from_secs(7199)));
/// assert_eq!(NumberOrString::Number(-1).as_seconds(), None);
/// assert_eq!(n.to_string(), "3600");
/// assert!(serde_json::from_str::<NumberOrString>("true").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberOrString {
    /// Sent as a JSON number.
    Number(i64),
    /// Sent as a JSON string.
    String(String),
}

impl NumberOrString {
    /// The value as whole seconds: a non-negative number, or a string of
    /// decimal digits (surrounding spaces allowed). `None` for anything
    /// else.
    #[must_use]
    pub fn as_seconds(&self) -> Option<Duration> {
        match self {
            Self::Number(n) => u64::try_from(*n).ok().map(Duration::from_secs),
            Self::String(s) => s.trim().parse::<u64>().ok().map(Duration::from_secs),
        }
    }

    /// The text, when it was sent as a string.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Number(_) => None,
            Self::String(s) => Some(s),
        }
    }

    /// The number, when it was sent as a number.
    #[must_use]
    pub fn as_number(&self) -> Option<i64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::String(_) => None,
        }
    }
}

impl fmt::Display for NumberOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::String(s) => f.write_str(s),
        }
    }
}

impl From<i64> for NumberOrString {
    fn from(n: i64) -> Self {
        Self::Number(n)
    }
}

impl From<&str> for NumberOrString {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl Serialize for NumberOrString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Number(n) => serializer.serialize_i64(*n),
            Self::String(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for NumberOrString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NumberOrStringVisitor)
    }
}

struct NumberOrStringVisitor;

impl Visitor<'_> for NumberOrStringVisitor {
    type Value = NumberOrString;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer or a string")
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(NumberOrString::Number(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        i64::try_from(n)
            .map(NumberOrString::Number)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(n), &self))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(NumberOrString::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(NumberOrString::String(s))
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for NumberOrString {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NumberOrString".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "oneOf": [{ "type": "integer", "format": "int64" }, { "type": "string" }],
            "description": "A number, or the same number as a string.",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_outside_i64_fractions_and_other_types_do_not_parse() {
        for text in ["18446744073709551615", "3600.5", "null", "[]", "{}"] {
            assert!(
                serde_json::from_str::<NumberOrString>(text).is_err(),
                "{text}"
            );
        }
        assert_eq!(
            serde_json::from_str::<NumberOrString>("9223372036854775807").unwrap(),
            NumberOrString::Number(i64::MAX)
        );
    }

    #[test]
    fn seconds_are_read_from_non_negative_numbers_and_digit_strings_only() {
        assert_eq!(
            NumberOrString::from(0).as_seconds(),
            Some(Duration::from_secs(0))
        );
        assert_eq!(NumberOrString::from("soon").as_seconds(), None);
        assert_eq!(NumberOrString::from("-5").as_seconds(), None);
        assert_eq!(
            NumberOrString::from("18446744073709551615").as_seconds(),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn it_serializes_as_it_was_sent() {
        assert_eq!(
            serde_json::to_string(&NumberOrString::from(5)).unwrap(),
            "5"
        );
        assert_eq!(
            serde_json::to_string(&NumberOrString::from("5")).unwrap(),
            "\"5\""
        );
        assert_eq!(NumberOrString::from("x").as_str(), Some("x"));
        assert_eq!(NumberOrString::from(-3).to_string(), "-3");
        assert_eq!(NumberOrString::from("x y").to_string(), "x y");
        assert_eq!(NumberOrString::from(7).as_number(), Some(7));
        assert_eq!(NumberOrString::from(7).as_str(), None);
        assert_eq!(NumberOrString::from("7").as_number(), None);
    }
}
