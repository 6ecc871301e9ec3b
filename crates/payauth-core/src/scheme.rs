//! How a provider puts a token on an API request: Bearer for most, a
//! provider's own scheme where it differs (myPOS's `API-Key` and
//! `X-Request-ID` beside the Bearer token; Pay with iyzico's
//! `access-token` header beside an IYZWSv2 signature of the request).
//!
//! Each flow's [`TokenSource::scheme`](crate::TokenSource::scheme) says
//! which; a [`TokenCache`] hands it on ([`TokenCache::scheme`]), so a
//! cache built from a config file carries its provider's scheme to the
//! facade's middleware with no code of yours. Sending requests yourself,
//! [`authorize`] a `reqwest::Request`, or [`apply`] a token you hold.
//!
//! ```
//! use std::time::Duration;
//! use payauth_core::scheme::{ApiRequest, BearerScheme, RequestBody, TokenScheme};
//! use payauth_core::{AccessToken, Issued, Secret, SystemClock};
//!
//! let token = AccessToken::new(Secret::new("t"), "Bearer", Issued::now(&SystemClock), Duration::from_secs(60)).unwrap();
//! let mut headers = reqwest::header::HeaderMap::new();
//! let request = ApiRequest { method: &reqwest::Method::GET, path: "/v1/accounts", body: RequestBody::Empty, headers: &mut headers };
//! BearerScheme.apply(&token, request).unwrap();
//! assert_eq!(headers["authorization"], "Bearer t");
//! ```

use std::sync::Arc;

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderMap};

use crate::cache::TokenCache;
use crate::error::{Error, ErrorKind};
use crate::token::AccessToken;

/// What a scheme may read of a request's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody<'a> {
    /// No body.
    Empty,
    /// The exact bytes that will be sent.
    Bytes(&'a [u8]),
    /// A body whose bytes cannot be seen here (a stream, or a tower
    /// service's generic body).
    Unreadable,
}

impl<'a> RequestBody<'a> {
    /// The bytes to sign: empty for no body.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for an [`Unreadable`](Self::Unreadable) body,
    /// naming `scheme`: a scheme that signs the body cannot sign it.
    pub fn bytes_for(self, scheme: &str) -> Result<&'a [u8], Error> {
        match self {
            Self::Empty => Ok(&[]),
            Self::Bytes(bytes) => Ok(bytes),
            Self::Unreadable => Err(Error::new(ErrorKind::Config).with_description(format!(
                "{scheme} signs the request body, and this request's body cannot be read \
                 (a stream, or a tower service): send a buffered body through \
                 payauth::middleware::BearerAuth or payauth_core::scheme::authorize"
            ))),
        }
    }
}

/// The outgoing API request a scheme puts a token on.
#[derive(Debug)]
pub struct ApiRequest<'a> {
    /// The method.
    pub method: &'a Method,
    /// The URL path, without query string.
    pub path: &'a str,
    /// The body, when it can be read.
    pub body: RequestBody<'a>,
    /// The headers, where the scheme writes.
    pub headers: &'a mut HeaderMap,
}

/// How a provider puts a token on an API request. Implemented by each
/// provider crate whose APIs want more than a Bearer token.
pub trait TokenScheme: Send + Sync + 'static {
    /// Puts `token` on `request`.
    ///
    /// # Errors
    /// When the token cannot be put on this request (a body it must sign
    /// but cannot read, no randomness for a nonce, a value that cannot be
    /// a header).
    fn apply(&self, token: &AccessToken, request: ApiRequest<'_>) -> Result<(), Error>;
}

/// `Authorization: Bearer <token>` (RFC 6750 §2.1), marked sensitive: the
/// default scheme.
#[derive(Debug, Clone, Copy, Default)]
pub struct BearerScheme;

impl TokenScheme for BearerScheme {
    fn apply(&self, token: &AccessToken, request: ApiRequest<'_>) -> Result<(), Error> {
        request
            .headers
            .insert(AUTHORIZATION, token.authorization().clone());
        Ok(())
    }
}

/// Puts `token` on a `reqwest::Request` with `scheme`: the body's bytes
/// when it has a buffered body, [`RequestBody::Unreadable`] for a stream.
///
/// # Errors
/// As [`TokenScheme::apply`].
pub fn apply(
    scheme: &dyn TokenScheme,
    token: &AccessToken,
    request: &mut reqwest::Request,
) -> Result<(), Error> {
    let method = request.method().clone();
    let path = request.url().path().to_owned();
    let mut headers = std::mem::take(request.headers_mut());
    let body = match request.body() {
        None => RequestBody::Empty,
        Some(body) => body
            .as_bytes()
            .map_or(RequestBody::Unreadable, RequestBody::Bytes),
    };
    let applied = scheme.apply(
        token,
        ApiRequest {
            method: &method,
            path: &path,
            body,
            headers: &mut headers,
        },
    );
    // Headers the scheme wrote on top of the request's own.
    *request.headers_mut() = headers;
    applied
}

/// A valid token from `cache`, put on `request` with the cache's scheme
/// ([`TokenCache::scheme`]): what the facade's middleware does, for code
/// that sends its own requests. Returns the token, for
/// [`TokenCache::invalidate`] after a 401.
///
/// ```no_run
/// # async fn run(cache: payauth_core::TokenCache, http: reqwest::Client) -> Result<(), payauth_core::Error> {
/// let mut request = http.get("https://api.example/v1/accounts").build().map_err(payauth_core::Error::from)?;
/// let token = payauth_core::scheme::authorize(&cache, &mut request).await?;
/// let response = http.execute(request).await.map_err(payauth_core::Error::from)?;
/// if response.status() == 401 {
///     cache.invalidate(&token);
/// }
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`TokenCache::token`] and [`TokenScheme::apply`].
pub async fn authorize(
    cache: &TokenCache,
    request: &mut reqwest::Request,
) -> Result<Arc<AccessToken>, Error> {
    let token = cache.token().await?;
    apply(cache.scheme().as_ref(), &token, request)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::SystemClock;
    use crate::secret::Secret;
    use crate::token::Issued;

    fn token() -> AccessToken {
        AccessToken::new(
            Secret::new("SENTINEL-tok"),
            "Bearer",
            Issued::now(&SystemClock),
            Duration::from_secs(60),
        )
        .unwrap()
    }

    /// What a scheme was shown: method, path, body bytes, unreadable.
    type Shown = (Method, String, Option<Vec<u8>>, bool);

    /// Records what it was shown.
    struct Seen(std::sync::Mutex<Option<Shown>>);

    impl TokenScheme for Seen {
        fn apply(&self, _: &AccessToken, request: ApiRequest<'_>) -> Result<(), Error> {
            let (bytes, unreadable) = match request.body {
                RequestBody::Empty => (None, false),
                RequestBody::Bytes(bytes) => (Some(bytes.to_vec()), false),
                RequestBody::Unreadable => (None, true),
            };
            *self.0.lock().unwrap() = Some((
                request.method.clone(),
                request.path.to_owned(),
                bytes,
                unreadable,
            ));
            request.headers.insert("x-seen", "1".parse().unwrap());
            Ok(())
        }
    }

    #[test]
    fn a_scheme_sees_the_method_the_path_without_query_and_the_exact_body() {
        let client = reqwest::Client::new();
        let seen = Seen(std::sync::Mutex::default());
        let mut request = client
            .post("https://api.example/v1/pay?x=1")
            .header("x-own", "kept")
            .body(r#"{"a":1}"#)
            .build()
            .unwrap();
        apply(&seen, &token(), &mut request).unwrap();
        let shown = seen.0.lock().unwrap().take().unwrap();
        assert_eq!(
            shown,
            (
                Method::POST,
                "/v1/pay".to_owned(),
                Some(br#"{"a":1}"#.to_vec()),
                false
            )
        );
        assert_eq!(request.headers()["x-own"], "kept");
        assert_eq!(request.headers()["x-seen"], "1");

        let mut get = client.get("https://api.example/").build().unwrap();
        apply(&seen, &token(), &mut get).unwrap();
        let shown = seen.0.lock().unwrap().take().unwrap();
        assert_eq!((shown.2, shown.3), (None, false));
    }

    #[test]
    fn a_streamed_body_is_unreadable_and_a_scheme_needing_it_says_why() {
        let seen = Seen(std::sync::Mutex::default());
        // A wrapped body is a stream: reqwest cannot hand out its bytes.
        let stream = reqwest::Body::wrap(String::from("streamed"));
        let mut request = reqwest::Client::new()
            .post("https://api.example/v1")
            .body(stream)
            .build()
            .unwrap();
        apply(&seen, &token(), &mut request).unwrap();
        assert!(seen.0.lock().unwrap().take().unwrap().3);
        let error = RequestBody::Unreadable.bytes_for("IYZWSv2").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(
            error.to_string().contains("IYZWSv2 signs the request body"),
            "{error}"
        );
        assert_eq!(RequestBody::Empty.bytes_for("x").unwrap(), b"");
        assert_eq!(RequestBody::Bytes(b"ab").bytes_for("x").unwrap(), b"ab");
    }

    #[test]
    fn bearer_is_the_default_and_the_header_stays_sensitive() {
        let mut headers = HeaderMap::new();
        BearerScheme
            .apply(
                &token(),
                ApiRequest {
                    method: &Method::GET,
                    path: "/",
                    body: RequestBody::Empty,
                    headers: &mut headers,
                },
            )
            .unwrap();
        assert_eq!(headers[AUTHORIZATION], "Bearer SENTINEL-tok");
        assert!(headers[AUTHORIZATION].is_sensitive());
        assert!(!format!("{headers:?}").contains("SENTINEL"));
    }
}
