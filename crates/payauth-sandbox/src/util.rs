//! Small helpers shared by the provider simulators.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use payauth_core::oauth2::BasicEncoding;

/// Seconds since the Unix epoch.
pub(crate) fn now_epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `epoch_secs` as ISO-8601 in Turkey's time (UTC+03:00, no DST since
/// 2016), e.g. `2025-06-01T15:04:05+03:00`, as iyzico writes its dates.
pub(crate) fn iso8601_turkey(epoch_secs: u64) -> String {
    let local = i64::try_from(epoch_secs).unwrap_or(i64::MAX / 2) + 3 * 3600;
    let (days, secs_of_day) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (year, month, day) = payauth_core::internal::time::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+03:00",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60,
        secs_of_day % 60
    )
}

/// Unpadded base64url, as JWTs and PKCE use.
pub(crate) fn base64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JSON response with the given status.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A token-endpoint JSON response: RFC 6749 §5.1 forbids caching it.
pub(crate) fn token_json(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut response = json(status, value);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `expires_in` as a number or, when asked, a numeric string.
pub(crate) fn expires_in(seconds: u64, as_string: bool) -> serde_json::Value {
    if as_string {
        serde_json::Value::String(seconds.to_string())
    } else {
        serde_json::Value::from(seconds)
    }
}

/// Whether the request says its body is a form.
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// A parsed `application/x-www-form-urlencoded` body or query string.
#[derive(Debug, Default)]
pub(crate) struct Form {
    fields: HashMap<String, String>,
    /// A parameter sent more than once (RFC 6749 §3.1 forbids it).
    pub(crate) duplicate: Option<String>,
}

impl Form {
    pub(crate) fn parse(bytes: &[u8]) -> Self {
        let mut form = Self::default();
        for (key, value) in form_urlencoded::parse(bytes) {
            if form
                .fields
                .insert(key.clone().into_owned(), value.into_owned())
                .is_some()
                && form.duplicate.is_none()
            {
                form.duplicate = Some(key.into_owned());
            }
        }
        form
    }

    /// A parameter's value; an empty value counts as absent (RFC 6749 §3.1).
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Whether the parameter was sent, even empty.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }
}

/// What an `Authorization: Basic` header holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Basic {
    /// No `Authorization` header, or another scheme.
    Missing,
    /// A Basic header that does not decode to `id:secret`.
    Malformed,
    /// The client id and secret, decoded as the provider's server does.
    Credentials {
        /// The client id.
        id: String,
        /// The client secret.
        secret: String,
    },
}

/// Padding optional, as most servers decode Basic credentials.
const BASIC_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Reads HTTP Basic client credentials as a server decoding `encoding`
/// does: base64-decode, split on the first `:`, and, for RFC 6749 §2.3.1,
/// form-urldecode both halves (a plain server takes them as they are).
pub(crate) fn basic_auth(headers: &HeaderMap, encoding: BasicEncoding) -> Basic {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Basic::Missing;
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return Basic::Missing;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Basic::Missing;
    }
    let Ok(decoded) = BASIC_BASE64.decode(encoded.trim()) else {
        return Basic::Malformed;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return Basic::Malformed;
    };
    let Some((id, secret)) = decoded.split_once(':') else {
        return Basic::Malformed;
    };
    let decoded = match encoding {
        BasicEncoding::Plain => Some((id.to_owned(), secret.to_owned())),
        BasicEncoding::Rfc6749 => form_urldecode(id).zip(form_urldecode(secret)),
    };
    match decoded {
        Some((id, secret)) if !id.is_empty() => Basic::Credentials { id, secret },
        _ => Basic::Malformed,
    }
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a
/// space, `%XX` a byte; the result must be UTF-8. A `%` not followed by two
/// hex digits stays as it is (as WHATWG URL parsing does).
pub(crate) fn form_urldecode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes
                    .get(i + 1)
                    .copied()
                    .and_then(payauth_core::internal::hex::digit),
                bytes
                    .get(i + 2)
                    .copied()
                    .and_then(payauth_core::internal::hex::digit),
            ) {
                (Some(high), Some(low)) => {
                    out.push((high << 4) | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_in_turkey_time_with_the_offset() {
        assert_eq!(iso8601_turkey(0), "1970-01-01T03:00:00+03:00");
        // 2024-02-29T21:30:00Z, a leap day.
        assert_eq!(iso8601_turkey(1_709_242_200), "2024-03-01T00:30:00+03:00");
        assert_eq!(iso8601_turkey(951_782_400), "2000-02-29T03:00:00+03:00");
    }

    #[test]
    fn basic_credentials_are_split_on_the_first_colon_and_decoded_as_the_server_does() {
        let mut headers = HeaderMap::new();
        // base64("a%3Ab:s%3Ae+c%25r%2Bt:x")
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("a%3Ab:s%3Ae+c%25r%2Bt:x")
        );
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        assert_eq!(
            basic_auth(&headers, BasicEncoding::Rfc6749),
            Basic::Credentials {
                id: "a:b".into(),
                secret: "s:e c%r+t:x".into()
            }
        );
        assert_eq!(
            basic_auth(&headers, BasicEncoding::Plain),
            Basic::Credentials {
                id: "a%3Ab".into(),
                secret: "s%3Ae+c%25r%2Bt:x".into()
            }
        );
        for encoding in [BasicEncoding::Plain, BasicEncoding::Rfc6749] {
            headers.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
            assert_eq!(basic_auth(&headers, encoding), Basic::Malformed);
            headers.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
            assert_eq!(basic_auth(&headers, encoding), Basic::Missing);
            headers.insert(
                header::AUTHORIZATION,
                format!(
                    "basic {}",
                    base64::engine::general_purpose::STANDARD.encode("nocolon")
                )
                .parse()
                .unwrap(),
            );
            assert_eq!(basic_auth(&headers, encoding), Basic::Malformed);
        }
    }

    #[test]
    fn form_decoding_keeps_a_stray_percent() {
        assert_eq!(form_urldecode("100%").as_deref(), Some("100%"));
        assert_eq!(form_urldecode("%zz%41").as_deref(), Some("%zzA"));
        assert_eq!(form_urldecode("%C5%9F").as_deref(), Some("ş"));
    }

    #[test]
    fn repeated_form_parameters_are_noticed() {
        let form = Form::parse(b"a=1&b=&a=2");
        assert_eq!(form.duplicate.as_deref(), Some("a"));
        assert_eq!(form.get("b"), None);
        assert!(form.has("b"));
    }
}
