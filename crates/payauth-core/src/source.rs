//! [`TokenSource`]: how a provider flow gets a token.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::Error;
use crate::scheme::{BearerScheme, TokenScheme};
use crate::token::AccessToken;

/// A boxed, `Send` future, the return type of object-safe async methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A provider flow that can produce a fresh [`AccessToken`].
///
/// Object-safe: `Arc<dyn TokenSource>` works, so one cache type serves
/// every provider.
///
/// `previous` is the last token the caller held (possibly expired or
/// rejected), so a flow that can refresh uses its refresh token, and falls
/// back to its full grant when the refresh token is refused. A token from a
/// [`TokenStore`](crate::TokenStore) arrives here too.
///
/// ```
/// use std::time::Duration;
/// use payauth_core::{AccessToken, BoxFuture, Error, Issued, Secret, SystemClock, TokenSource};
///
/// struct Fixed;
///
/// impl TokenSource for Fixed {
///     fn fetch<'a>(&'a self, _previous: Option<&'a AccessToken>) -> BoxFuture<'a, Result<AccessToken, Error>> {
///         Box::pin(async {
///             AccessToken::new(Secret::new("t"), "Bearer", Issued::now(&SystemClock), Duration::from_secs(60))
///         })
///     }
/// }
///
/// let source: std::sync::Arc<dyn TokenSource> = std::sync::Arc::new(Fixed);
/// assert_eq!(source.name(), "token source");
/// assert_eq!((source.provider(), source.flow()), ("custom", "token source"));
/// ```
pub trait TokenSource: Send + Sync + 'static {
    /// Gets a fresh token from the provider.
    fn fetch<'a>(
        &'a self,
        previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>>;

    /// A short name for logs, e.g. `mypos client_credentials`.
    // Implementations may return a borrowed field, hence `&self`'s lifetime.
    #[allow(clippy::unnecessary_literal_bound)]
    fn name(&self) -> &str {
        "token source"
    }

    /// The provider, for metrics labels and tracing spans: a short fixed
    /// word such as `mypos`, never a secret, a client id or a store key.
    /// `custom` unless the source says.
    #[allow(clippy::unnecessary_literal_bound)]
    fn provider(&self) -> &str {
        "custom"
    }

    /// The flow, for metrics labels and tracing spans: a short fixed word
    /// such as `client_credentials`, never a secret, a client id or a
    /// store key. The [`name`](Self::name) unless the source says.
    fn flow(&self) -> &str {
        self.name()
    }

    /// How this flow's tokens go on API requests: `Authorization: Bearer`
    /// unless the provider wants more (myPOS, Pay with iyzico). A
    /// [`TokenCache`](crate::TokenCache) hands it on, so adapters apply it
    /// with no user code.
    fn scheme(&self) -> Arc<dyn TokenScheme> {
        Arc::new(BearerScheme)
    }
}

/// A shared source is a source: `TokenCache::builder(Arc::clone(&source))`
/// works for an `Arc<Mypos>` as for an `Arc<dyn TokenSource>` chosen at run
/// time. Every method is forwarded (a default left in place here would
/// silently replace the provider's own, e.g. its token scheme).
impl<T: TokenSource + ?Sized> TokenSource for Arc<T> {
    fn fetch<'a>(
        &'a self,
        previous: Option<&'a AccessToken>,
    ) -> BoxFuture<'a, Result<AccessToken, Error>> {
        (**self).fetch(previous)
    }

    fn name(&self) -> &str {
        (**self).name()
    }

    fn provider(&self) -> &str {
        (**self).provider()
    }

    fn flow(&self) -> &str {
        (**self).flow()
    }

    fn scheme(&self) -> Arc<dyn TokenScheme> {
        (**self).scheme()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::{HeaderMap, Method};

    use super::*;
    use crate::clock::SystemClock;
    use crate::scheme::{ApiRequest, RequestBody};
    use crate::secret::Secret;
    use crate::token::Issued;

    fn token() -> AccessToken {
        AccessToken::new(
            Secret::new("t"),
            "Bearer",
            Issued::now(&SystemClock),
            Duration::from_secs(60),
        )
        .unwrap()
    }

    /// The headers `scheme` puts on a request for [`token`].
    fn applied(scheme: &dyn TokenScheme) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let request = ApiRequest {
            method: &Method::GET,
            path: "/",
            body: RequestBody::Bytes(b""),
            headers: &mut headers,
        };
        scheme.apply(&token(), request).unwrap();
        headers
    }

    struct Plain;

    impl TokenSource for Plain {
        fn fetch<'a>(
            &'a self,
            _: Option<&'a AccessToken>,
        ) -> BoxFuture<'a, Result<AccessToken, Error>> {
            Box::pin(async { Ok(token()) })
        }

        fn name(&self) -> &'static str {
            "plain flow"
        }
    }

    struct Marked;

    impl TokenScheme for Marked {
        fn apply(&self, _: &AccessToken, request: ApiRequest<'_>) -> Result<(), Error> {
            request.headers.insert("x-marked", "1".parse().unwrap());
            Ok(())
        }
    }

    struct Own;

    impl TokenSource for Own {
        fn fetch<'a>(
            &'a self,
            _: Option<&'a AccessToken>,
        ) -> BoxFuture<'a, Result<AccessToken, Error>> {
            Box::pin(async { Ok(token()) })
        }

        fn name(&self) -> &'static str {
            "own"
        }

        fn provider(&self) -> &'static str {
            "acme"
        }

        fn flow(&self) -> &'static str {
            "client_credentials"
        }

        fn scheme(&self) -> Arc<dyn TokenScheme> {
            Arc::new(Marked)
        }
    }

    #[test]
    fn a_source_that_says_nothing_is_a_custom_provider_named_flow_with_bearer_tokens() {
        assert_eq!(Plain.provider(), "custom");
        assert_eq!(Plain.flow(), "plain flow");
        let headers = applied(Plain.scheme().as_ref());
        assert_eq!(headers["authorization"], "Bearer t");
        assert!(!headers.contains_key("x-marked"));
    }

    #[test]
    fn a_shared_source_reports_what_the_source_itself_says() {
        let shared: Arc<dyn TokenSource> = Arc::new(Own);
        let twice = Arc::new(Arc::clone(&shared));
        for source in [&shared as &dyn TokenSource, &twice as &dyn TokenSource] {
            assert_eq!(source.name(), "own");
            assert_eq!(source.provider(), "acme");
            assert_eq!(source.flow(), "client_credentials");
            assert!(applied(source.scheme().as_ref()).contains_key("x-marked"));
        }
    }
}
