//! # payauth-core
//!
//! The common token interface of payauth, with no provider knowledge:
//!
//! - [`Secret`]: credentials and tokens that never print themselves.
//! - [`AccessToken`]: a token with an absolute expiry and a ready
//!   `Authorization` header.
//! - [`TokenSource`]: how a provider flow gets a token (object-safe), and
//!   how its tokens go on API requests ([`scheme`]: [`TokenScheme`],
//!   Bearer by default).
//! - [`TokenCache`]: what applications hold; lock-free when fresh, one
//!   fetch in flight that always ends, refresh ahead, serve-stale only
//!   while valid (its module docs list every promise).
//! - [`subjects::Subjects`] (feature `subjects`, on by default): one
//!   cache per customer or sub-merchant, built on first use, evicted when
//!   idle, saved before it is dropped.
//! - [`TokenStore`]: [`MemoryStore`], [`FileStore`] (Redis in
//!   `payauth-redis`).
//! - [`Error`] and [`ErrorKind`]: typed, with [`Error::is_transient`].
//! - [`oauth2`] and [`http`]: RFC 6749 client authentication and token
//!   responses, [`http::HttpClient`] (the redirect-free client token
//!   requests go over), capped bodies, the one rule for applying a
//!   generated security table, and typed errors from generated clients;
//!   [`wire`]: wire types shared by every spec.
//! - [`redact`]: the secrets of a request masked in every answer to it,
//!   in every form a server echoes them; the one way a URL is shown.
//! - [`settings`]: what every flow's settings share ([`FlowSettings`],
//!   [`SecretConfig`], the [`StoreKey`] scheme); [`Environment`]: the one
//!   host rule.
//!
//! Features beyond TLS: `subjects` (above) and `schema`
//! (`schemars::JsonSchema` of the config types, for the facade's
//! config-file schema) are on by default; provider crates turn default
//! features off, so an application on one of them alone compiles neither.
//!
//! ## Features: TLS for token requests
//!
//! | feature | TLS of [`http::HttpClient`] |
//! |---|---|
//! | `rustls-ring` (default) | rustls with ring: quick to build |
//! | `rustls-aws-lc` | rustls with aws-lc-rs (wins over ring when both are on) |
//! | `native-tls` | the platform's library: OpenSSL, Secure Transport, `SChannel` (wins over rustls) |
//!
//! None of them touches reqwest: payauth turns on no TLS feature of
//! reqwest, whose types the generated clients build requests with, so an
//! application's own `reqwest::Client` is exactly what its features make
//! it. The rustls provider is handed to rustls directly; no process-wide
//! default is installed or read. One caveat of rustls itself: its
//! `ClientConfig::builder()` (not `builder_with_provider`) refuses to pick
//! a provider when both `ring` and `aws-lc-rs` are compiled in. An
//! application that calls it and has aws-lc-rs in its tree should choose
//! `rustls-aws-lc` (or `native-tls`) with `default-features = false` on
//! every payauth crate it names, so that ring is not compiled in.
//!
//! ## Features: the transport's optional parts
//!
//! None adds a crate to the build; each compiles code a default build
//! does not.
//!
//! | feature | what |
//! |---|---|
//! | `socks` | `socks5://` and `socks5h://` proxies (hyper-util's SOCKS client); without it a SOCKS proxy is a configuration error naming the feature |
//! | `reqwest-client` | `http::HttpClientBuilder::build_on_reqwest`: token requests through the application's own `reqwest::Client` |
//!
//! ```
//! use std::time::Duration;
//! use payauth_core::{AccessToken, BoxFuture, Error, Issued, Secret, SystemClock, TokenCache, TokenSource};
//!
//! /// A source that mints tokens locally; real ones call a provider.
//! struct Local;
//!
//! impl TokenSource for Local {
//!     fn fetch<'a>(&'a self, _previous: Option<&'a AccessToken>) -> BoxFuture<'a, Result<AccessToken, Error>> {
//!         Box::pin(async {
//!             AccessToken::new(Secret::new("token"), "Bearer", Issued::now(&SystemClock), Duration::from_secs(3600))
//!         })
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let cache = TokenCache::builder(Local).build();
//! let token = cache.token().await?; // fetched once, then served from memory
//! assert!(token.authorization().is_sensitive());
//! assert_eq!(format!("{:?}", token.secret()), "Secret([REDACTED])");
//! # Ok::<(), Error>(())
//! # }).unwrap();
//! ```
//!
//! # Observability
//!
//! Every flight of a [`TokenCache`] (its fetch, retries, store and fleet
//! work) runs in a `payauth.fetch` tracing span with the fields `provider`
//! and `flow`, so each of its events says which token it is about.
//!
//! With the `metrics` feature, caches record through the
//! [`metrics`](https://docs.rs/metrics) facade, so any exporter
//! (Prometheus, OpenTelemetry, …) works. Every metric has the
//! labels `provider` and `flow` ([`TokenSource::provider`] and
//! [`TokenSource::flow`], e.g. `mypos` and `client_credentials`); no label
//! ever holds a secret, a token, a client id or a store key.
//!
//! | Name | Kind | Extra label | What it counts |
//! |---|---|---|---|
//! | `payauth_token_requests_total` | counter | `served`: `cache`, `wait`, `backoff` | calls of [`TokenCache::token`]: answered from memory at once (a fresh token, or a still-valid one while it is refreshed), after waiting for a fetch, or with the failure remembered for the backoff |
//! | `payauth_fetches_total` | counter | `outcome`: `ok`, `error`, `cancelled` | calls to the provider (each retry is one); `cancelled`: cut short by the fetch timeout or by dropping the cache |
//! | `payauth_fetch_failures_total` | counter | `kind`: an [`ErrorKind`] in snake case (`invalid_client`, `rate_limited`, …) | calls to the provider that failed, and flights cut short by the fetch timeout (`timeout`) |
//! | `payauth_fetch_duration_seconds` | histogram | | how long each answered call to the provider took |
//! | `payauth_token_remaining_seconds` | gauge | | the lifetime left to the token just published, set at each publication; 0 once the cache drops its token (refused, invalidated) |
//! | `payauth_fleet_lease_waits_total` | counter | | looks at a [`SharedStore`] whose fetch lease another replica held |
//! | `payauth_fleet_lease_takeovers_total` | counter | | leases taken after waiting on another replica's, which ended (released, or expired with its holder) without a token in the store |
//!
//! Install the recorder before building caches: the request counters are
//! registered when a cache is built (a hit on a fresh token costs one
//! counter increment). Without the feature nothing is recorded and
//! nothing costs.

pub mod cache;
mod clock;
#[cfg(feature = "encryption")]
#[cfg_attr(docsrs, doc(cfg(feature = "encryption")))]
pub mod encryption;
mod error;
pub mod http;
pub mod oauth2;
pub mod redact;
pub mod scheme;
mod secret;
pub mod settings;
mod source;
pub mod store;
#[cfg(feature = "subjects")]
#[cfg_attr(docsrs, doc(cfg(feature = "subjects")))]
pub mod subjects;
mod text;
pub mod token;
pub mod wire;

#[doc(hidden)]
pub mod internal;

pub use cache::{
    DEFAULT_FAILURE_BACKOFF, DEFAULT_FETCH_TIMEOUT, DEFAULT_MARGIN, MAX_FAILURE_BACKOFF,
    MAX_FETCH_TIMEOUT, MAX_RETRIES, MAX_RETRY_AFTER_BACKOFF, MAX_RETRY_WAIT, MIN_FAILURE_BACKOFF,
    MIN_FETCH_TIMEOUT, TokenCache, TokenCacheBuilder,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, ErrorKind};
pub use http::Environment;
pub use scheme::{BearerScheme, TokenScheme};
pub use secret::{MAX_SECRET_FILE, Secret, SerializableSecret};
pub use settings::{FlowSettings, SecretConfig, StoreKey};
pub use source::{BoxFuture, TokenSource};
pub use store::{
    FileStore, Lease, MemoryStore, SaveIf, SharedStore, StoredFailure, StoredToken, TokenStore,
};
pub use token::{AccessToken, Issued, MAX_LIFETIME, MIN_LIFETIME};
