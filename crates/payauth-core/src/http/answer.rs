//! A provider's error answer kept whole on its way through a generated
//! client: the exec hook reads the body of every non-2xx answer under the
//! cap and carries it beside the status and headers, and the answer becomes
//! a typed [`Error`] whatever its body was (empty, HTML, a JSON array,
//! wrong types, too large, torn) and whether or not the spec declared the
//! status.
//!
//! progenitor decodes a declared error status's body with the spec's
//! schema and, when that fails, reports only the body and the JSON error:
//! the status and headers are gone. So the hook
//!
//! - keeps the real body in a header of its own, which survives in both
//!   the declared (`ErrorResponse`) and the undeclared
//!   (`UnexpectedResponse`) case;
//! - hands the generated client `{}` in place of a body that is no JSON
//!   object (every error schema reads `{}`: all their fields are optional),
//!   so the status and headers reach `ErrorResponse`;
//! - hands on a JSON object as it came, with one member added that carries
//!   the status and headers, so that if the object does not match the
//!   schema (a number where the spec says string), the payload error still
//!   says what the answer was. Schemas ignore unknown members.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{ProviderErrorBody, classify, retry_after};
use crate::error::{Error, ErrorKind};
use crate::redact::Redactor;

/// Headers payauth adds to an answer; one a server sends is removed, so
/// it cannot pose as payauth's.
const OWN_PREFIX: &str = "x-payauth-";
/// The body of a non-2xx answer (see [`Body::to_header`]).
const BODY_HEADER: HeaderName = HeaderName::from_static("x-payauth-error-body");
/// Marks a 2xx answer whose body exceeded the cap; the value is the
/// original status.
const TOO_LARGE_HEADER: HeaderName = HeaderName::from_static("x-payauth-body-too-large");
/// Status given to a 2xx answer whose body exceeded the cap, and to a
/// request that got no answer ([`failure`]), so the generated client
/// reports it as unexpected (no spec declares it). Never sent by a server:
/// one that does is read as a 5xx.
const TOO_LARGE_STATUS: u16 = 599;
/// What the generated client decodes in place of an error body that is no
/// JSON object.
const PLACEHOLDER: &[u8] = b"{}";
/// The member added to an error body's JSON object, `{"status": 400,
/// "headers": [[name, value], ...]}`, is named this plus a random suffix
/// drawn once per process (see [`answer_member`]).
const ANSWER_MEMBER: &str = "x-payauth-answer-";
/// The most headers carried in [`ANSWER_MEMBER`].
const MAX_HEADERS: usize = 64;
/// The most fields of an error body tried one by one.
const MAX_FIELDS: usize = 64;

/// The body of a non-2xx answer.
#[derive(Debug, PartialEq, Eq)]
enum Body {
    Read(Vec<u8>),
    TooLarge,
    BrokeOff,
}

impl Body {
    fn to_header(&self) -> HeaderValue {
        let value = match self {
            Self::Read(bytes) => format!("read:{}", STANDARD.encode(bytes)),
            Self::TooLarge => "too-large".to_owned(),
            Self::BrokeOff => "broke-off".to_owned(),
        };
        HeaderValue::try_from(value).unwrap_or_else(|_| HeaderValue::from_static("broke-off"))
    }

    fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(BODY_HEADER)?.to_str().ok()?;
        Some(match value {
            "too-large" => Self::TooLarge,
            "broke-off" => Self::BrokeOff,
            other => Self::Read(STANDARD.decode(other.strip_prefix("read:")?).ok()?),
        })
    }
}

/// Removes headers only payauth may set.
pub(super) fn strip_own_headers(headers: &mut HeaderMap) {
    let own: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(OWN_PREFIX))
        .cloned()
        .collect();
    for name in own {
        headers.remove(name);
    }
}

/// Reads the body, at most `limit` bytes: `None` when it is (or declares
/// itself) longer.
///
/// # Errors
/// The transport error when the body breaks off.
pub(super) async fn read_capped(
    response: &mut reqwest::Response,
    limit: usize,
) -> reqwest::Result<Option<Vec<u8>>> {
    if response
        .content_length()
        .is_some_and(|declared| usize::try_from(declared).map_or(true, |n| n > limit))
    {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len().saturating_add(chunk.len()) > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

fn rebuild(
    status: StatusCode,
    version: reqwest::Version,
    headers: HeaderMap,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut rebuilt = http::Response::new(body);
    *rebuilt.status_mut() = status;
    *rebuilt.version_mut() = version;
    *rebuilt.headers_mut() = headers;
    reqwest::Response::from(rebuilt)
}

/// A non-2xx answer with its body read (or marked too large or torn) into
/// [`BODY_HEADER`], and a body the generated client can always decode in
/// its place (see the module docs). Status and headers are kept.
pub(super) async fn keep_error(
    mut response: reqwest::Response,
    limit: usize,
    redactor: &Redactor,
) -> reqwest::Response {
    let body = match read_capped(&mut response, limit).await {
        Ok(Some(bytes)) => Body::Read(redactor.redact_body(&bytes, false).unwrap_or(bytes)),
        Ok(None) => Body::TooLarge,
        Err(_) => Body::BrokeOff,
    };
    let (status, version) = (response.status(), response.version());
    let mut headers = std::mem::take(response.headers_mut());
    redact_headers(&mut headers, redactor);
    let handed = handed_body(&body, status, &headers);
    headers.insert(BODY_HEADER, body.to_header());
    rebuild(status, version, headers, handed)
}

/// The name of the member that carries status and headers: random per
/// process, so that no answer (a 2xx body that fails to decode, say) can
/// pose as an error answer with a status of its choosing.
fn answer_member() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        format!(
            "{ANSWER_MEMBER}{}",
            crate::internal::random::hex(16).unwrap_or_default()
        )
    })
}

/// What the generated client decodes for an error answer: a JSON object
/// with the [`answer_member`] added, else `{}`.
fn handed_body(body: &Body, status: StatusCode, headers: &HeaderMap) -> Vec<u8> {
    let Body::Read(bytes) = body else {
        return PLACEHOLDER.to_vec();
    };
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(bytes) else {
        return PLACEHOLDER.to_vec();
    };
    let carried: Vec<Value> = headers
        .iter()
        .take(MAX_HEADERS)
        .map(|(name, value)| {
            Value::from(vec![
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ])
        })
        .collect();
    let answer = serde_json::json!({ "status": status.as_u16(), "headers": carried });
    fields.insert(answer_member().to_owned(), answer);
    serde_json::to_vec(&fields).unwrap_or_else(|_| PLACEHOLDER.to_vec())
}

/// The typed error of an error answer whose JSON object did not match the
/// schema, from the payload the generated client reported: `None` when the
/// payload is no error answer's (a 2xx body that does not match).
pub(super) fn from_payload<E: ProviderErrorBody + DeserializeOwned>(
    payload: &[u8],
    code_header: Option<&str>,
) -> Option<Error> {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(payload) else {
        return None;
    };
    let answer = fields.remove(answer_member())?;
    let status = answer.get("status")?.as_u64()?;
    let status = StatusCode::from_u16(u16::try_from(status).ok()?).ok()?;
    let mut headers = HeaderMap::new();
    for pair in answer.get("headers")?.as_array()? {
        if let Some([Value::String(name), Value::String(value)]) =
            pair.as_array().map(Vec::as_slice)
            && let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            )
        {
            headers.append(name, value);
        }
    }
    let body = serde_json::to_vec(&fields).ok()?;
    headers.insert(BODY_HEADER, Body::Read(body).to_header());
    Some(to_error::<E>(status, &headers, None, code_header))
}

/// Every header value of an answer with the request's secrets masked.
fn redact_headers(headers: &mut HeaderMap, redactor: &Redactor) {
    if redactor.is_empty() {
        return;
    }
    for value in headers.values_mut() {
        if !redactor.may_hold_one(value.as_bytes()) {
            continue;
        }
        let text = String::from_utf8_lossy(value.as_bytes());
        if let std::borrow::Cow::Owned(masked) = redactor.redact(&text) {
            *value = HeaderValue::try_from(masked)
                .unwrap_or_else(|_| HeaderValue::from_static(crate::redact::MASK));
        }
    }
}

/// A 2xx answer with `body` (read under the cap, the request's secrets
/// masked in every string but its own tokens), or flagged too large.
pub(super) fn success(
    mut response: reqwest::Response,
    body: Option<Vec<u8>>,
    redactor: &Redactor,
) -> reqwest::Response {
    let (status, version) = (response.status(), response.version());
    let mut headers = std::mem::take(response.headers_mut());
    redact_headers(&mut headers, redactor);
    let body = body.map(|bytes| redactor.redact_body(&bytes, true).unwrap_or(bytes));
    let Some(body) = body else {
        headers.insert(TOO_LARGE_HEADER, HeaderValue::from(status.as_u16()));
        let flagged = StatusCode::from_u16(TOO_LARGE_STATUS).unwrap_or(StatusCode::BAD_GATEWAY);
        return rebuild(flagged, version, headers, Vec::new());
    };
    rebuild(status, version, headers, body)
}

/// A request that got no whole answer, as an answer: undeclared status
/// [`TOO_LARGE_STATUS`], the typed error in its extensions (kept by
/// `reqwest::Response::from`), taken out by [`take_failure`].
pub(super) fn failure(error: Error) -> reqwest::Response {
    let mut answer = http::Response::new(Vec::new());
    *answer.status_mut() =
        StatusCode::from_u16(TOO_LARGE_STATUS).unwrap_or(StatusCode::BAD_GATEWAY);
    answer.extensions_mut().insert(Failure(error));
    reqwest::Response::from(answer)
}

/// The typed error of an answer built by [`failure`], if this is one.
pub(super) fn take_failure(response: &mut reqwest::Response) -> Option<Error> {
    response
        .extensions_mut()
        .remove::<Failure>()
        .map(|Failure(error)| error)
}

/// The extension [`failure`] puts its error in.
#[derive(Clone)]
struct Failure(Error);

/// The typed error of a 2xx answer flagged by [`success`], if this is one.
pub(super) fn too_large(status: StatusCode, headers: &HeaderMap) -> Option<Error> {
    if status.as_u16() != TOO_LARGE_STATUS {
        return None;
    }
    let original = headers.get(TOO_LARGE_HEADER)?.to_str().ok()?.parse().ok()?;
    Some(
        Error::new(ErrorKind::Malformed)
            .with_status(original)
            .with_description("the answer's body is larger than the cap"),
    )
}

/// The typed error of an answer with `status` and `headers`: the kind from
/// the status and the body's code, the provider's code from the body or
/// `code_header`, its description (or what the body was, when it was no
/// error body), and `Retry-After`. The body is the one [`keep_error`] kept
/// among the headers, or else `decoded`, what the generated client read
/// (an exec hook other than payauth's keeps none).
pub(super) fn to_error<E: ProviderErrorBody + DeserializeOwned>(
    status: StatusCode,
    headers: &HeaderMap,
    decoded: Option<E>,
    code_header: Option<&str>,
) -> Error {
    let status = status.as_u16();
    let body = Body::from_headers(headers);
    let parsed: Option<E> = match &body {
        Some(Body::Read(bytes)) => serde_json::from_slice::<Value>(bytes)
            .ok()
            .and_then(|value| lenient(&value)),
        Some(_) => None,
        None => decoded,
    };
    let oauth_code = parsed.as_ref().and_then(ProviderErrorBody::oauth_code);
    let mut error = Error::new(classify(status, oauth_code)).with_status(status);
    let header_code = code_header
        .and_then(|name| headers.get(name))
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    if let Some(code) = parsed
        .as_ref()
        .and_then(ProviderErrorBody::provider_code)
        .or(header_code)
        .or_else(|| oauth_code.map(ToOwned::to_owned))
    {
        error = error.with_provider_code(code);
    }
    let description = parsed
        .as_ref()
        .and_then(ProviderErrorBody::description)
        .map(ToOwned::to_owned)
        .or_else(|| what_came(status, body.as_ref(), parsed.is_some(), headers));
    if let Some(description) = description {
        error = error.with_description(description);
    }
    if let Some(wait) = retry_after(headers) {
        error = error.with_retry_after(wait);
    }
    error
}

/// `value` as `E` when it is a JSON object: whole if it reads, else with
/// only the fields that read on their own (a number where a string belongs
/// does not hide the error code beside it).
fn lenient<E: DeserializeOwned>(value: &Value) -> Option<E> {
    let fields = value.as_object()?;
    E::deserialize(value).ok().or_else(|| {
        let readable: Map<String, Value> = fields
            .iter()
            .take(MAX_FIELDS)
            .filter(|&(name, field)| {
                let alone = Map::from_iter([(name.clone(), field.clone())]);
                E::deserialize(&Value::Object(alone)).is_ok()
            })
            .map(|(name, field)| (name.clone(), field.clone()))
            .collect();
        E::deserialize(&Value::Object(readable)).ok()
    })
}

/// What the answer was, for an error whose body did not say.
fn what_came(
    status: u16,
    body: Option<&Body>,
    parsed: bool,
    headers: &HeaderMap,
) -> Option<String> {
    if (300..400).contains(&status) {
        return Some("a redirect, not followed: token endpoints must not redirect".to_owned());
    }
    if let Some(challenge) = headers.get(WWW_AUTHENTICATE) {
        return Some(format!(
            "challenge {}",
            String::from_utf8_lossy(challenge.as_bytes())
        ));
    }
    Some(match body? {
        Body::TooLarge => "the answer's body is larger than the cap; not read".to_owned(),
        Body::BrokeOff => "the answer's body broke off".to_owned(),
        Body::Read(bytes) if bytes.is_empty() => "the answer has no body".to_owned(),
        Body::Read(_) if parsed => return None,
        Body::Read(bytes) if serde_json::from_slice::<Value>(bytes).is_ok() => {
            "the answer's JSON is not an error body".to_owned()
        }
        Body::Read(bytes) => format!(
            "the answer is not JSON ({}, {} bytes)",
            headers
                .get(CONTENT_TYPE)
                .map_or("no content type".into(), |v| String::from_utf8_lossy(
                    v.as_bytes()
                )),
            bytes.len()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Default)]
    struct OAuth {
        error: Option<String>,
        error_description: Option<String>,
    }

    crate::oauth_error_body!(OAuth);

    fn headers(body: &Body) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(BODY_HEADER, body.to_header());
        headers
    }

    /// The body `keep_error` kept of `answer` under a cap of `limit`.
    async fn kept(answer: Vec<u8>, limit: usize) -> Body {
        let gateway = payauth_testkit::gateway::RawGateway::answering(answer);
        let client = crate::http::default_client().unwrap();
        let request = client.requests().post(gateway.base_url()).build().unwrap();
        let response = client.execute(request).await.unwrap();
        let kept = keep_error(response, limit, &Redactor::new()).await;
        assert_eq!(kept.status(), StatusCode::BAD_REQUEST);
        Body::from_headers(kept.headers()).unwrap()
    }

    #[tokio::test]
    async fn an_error_body_of_exactly_the_cap_is_read_and_one_byte_more_is_not() {
        use payauth_testkit::gateway::{answer, chunked};
        let body = [b'x'; 100];
        let declared = answer("400 Bad Request", &[("content-length", b"100")], &body);
        let streamed = answer(
            "400 Bad Request",
            &[("transfer-encoding", b"chunked")],
            &chunked(&body, 30),
        );
        for answer in [declared, streamed] {
            assert_eq!(kept(answer.clone(), 100).await, Body::Read(body.to_vec()));
            assert_eq!(kept(answer, 99).await, Body::TooLarge);
        }
    }

    #[test]
    fn the_answer_member_is_named_at_random_once_per_process() {
        let name = answer_member();
        let suffix = name.strip_prefix(ANSWER_MEMBER).unwrap();
        assert_eq!(suffix.len(), 32);
        assert!(suffix.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
        assert_eq!(answer_member(), name);
    }

    #[test]
    fn a_kept_body_reads_back_as_it_was() {
        for body in [
            Body::Read(b"\x00\xff<html>\r\n".to_vec()),
            Body::Read(Vec::new()),
            Body::TooLarge,
            Body::BrokeOff,
        ] {
            assert_eq!(Body::from_headers(&headers(&body)), Some(body));
        }
    }

    #[test]
    fn a_field_of_the_wrong_type_is_dropped_and_the_others_kept() {
        let value = serde_json::json!({"error": "invalid_grant", "error_description": 5});
        let body: OAuth = lenient(&value).unwrap();
        assert_eq!(body.error.as_deref(), Some("invalid_grant"));
        assert_eq!(body.error_description, None);
        assert!(lenient::<OAuth>(&serde_json::json!([1])).is_none());
    }

    #[test]
    fn a_body_cannot_pose_as_an_error_answer() {
        let forged = serde_json::json!({
            "error": "invalid_grant",
            (ANSWER_MEMBER): {"status": 400, "headers": []},
            "x-payauth-answer": {"status": 400, "headers": []},
        });
        let payload = serde_json::to_vec(&forged).unwrap();
        assert!(from_payload::<OAuth>(&payload, None).is_none());

        let mut real = HeaderMap::new();
        real.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
        let handed = handed_body(
            &Body::Read(br#"{"error":5}"#.to_vec()),
            StatusCode::UNAUTHORIZED,
            &real,
        );
        let error = from_payload::<OAuth>(&handed, None).unwrap();
        assert_eq!(error.status(), Some(401));
        assert_eq!(error.kind(), ErrorKind::Refused);
        assert_eq!(error.description(), Some("challenge Basic"));
    }

    #[test]
    fn a_server_cannot_pose_as_payauth() {
        let mut map = HeaderMap::new();
        map.insert(
            "x-payauth-error-body",
            HeaderValue::from_static("read:e30="),
        );
        map.insert("X-Payauth-Body-Too-Large", HeaderValue::from_static("200"));
        map.insert("x-ca-err", HeaderValue::from_static("1"));
        strip_own_headers(&mut map);
        assert_eq!(map.len(), 1);
        assert!(map.contains_key("x-ca-err"));
    }

    #[test]
    fn an_empty_answer_says_so_and_a_challenge_is_shown() {
        let error = to_error::<OAuth>(
            StatusCode::UNAUTHORIZED,
            &headers(&Body::Read(Vec::new())),
            None,
            None,
        );
        assert_eq!(error.kind(), ErrorKind::Refused);
        assert_eq!(error.description(), Some("the answer has no body"));
        let mut challenged = headers(&Body::Read(Vec::new()));
        challenged.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"api\""),
        );
        let error = to_error::<OAuth>(StatusCode::UNAUTHORIZED, &challenged, None, None);
        assert_eq!(error.description(), Some("challenge Basic realm=\"api\""));
    }

    #[test]
    fn a_body_that_is_no_error_body_is_described_not_quoted() {
        let mut html = headers(&Body::Read(b"<html>secret-ish page</html>".to_vec()));
        html.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
        let error = to_error::<OAuth>(StatusCode::BAD_REQUEST, &html, None, None);
        assert_eq!(
            error.description(),
            Some("the answer is not JSON (text/html, 28 bytes)")
        );
        let error = to_error::<OAuth>(
            StatusCode::BAD_REQUEST,
            &headers(&Body::Read(b"[1]".to_vec())),
            None,
            None,
        );
        assert_eq!(
            error.description(),
            Some("the answer's JSON is not an error body")
        );
        let error = to_error::<OAuth>(
            StatusCode::BAD_REQUEST,
            &headers(&Body::Read(br#"{"error":"invalid_grant"}"#.to_vec())),
            None,
            None,
        );
        assert_eq!(error.description(), None);
        assert_eq!(error.kind(), ErrorKind::InvalidGrant);
    }
}
