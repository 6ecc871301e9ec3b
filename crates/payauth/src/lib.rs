//! # payauth
//!
//! Access tokens from payment providers' auth APIs, typed, cached and
//! renewed. This facade re-exports [`payauth_core`] (as [`core`]) and each
//! provider crate behind a feature of its name, so an application compiles
//! only the providers it uses:
//!
//! ```toml
//! [dependencies]
//! # Until 0.1 is released on crates.io, from git:
//! payauth = { git = "https://github.com/payauth/payauth", features = ["mypos", "toml"] }
//! # Once it is: payauth = { version = "0.1", features = ["mypos", "toml"] }
//! ```
//!
//! ## Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `iyzico` | `payauth::iyzico` ([payauth-iyzico]): Terminal API login, Pay-with-iyzico access token |
//! | `vakifbank` | `payauth::vakifbank` ([payauth-vakifbank]): authorization code, refresh, client and B2B credentials |
//! | `mypos` | `payauth::mypos` ([payauth-mypos]): client credentials, revocation |
//! | `redis` | `payauth::redis` ([payauth-redis]): one token for a fleet; `[store] kind = "redis"` in a config |
//! | `postgres` | `payauth::postgres` ([payauth-postgres]): durable tokens for every customer, shared by a fleet; `[store] kind = "postgres"` in a config |
//! | `subjects` | `payauth::core::subjects`: one token cache per customer, evicted when idle |
//! | `toml` | `config::Config::from_toml` (a config with any provider feature) |
//! | `reqwest-middleware` | `middleware::BearerAuth`: tokens on your own reqwest-middleware client |
//! | `tower` | `tower::BearerLayer`: tokens on tower and hyper services |
//! | `rustls-ring` (default) | TLS for token requests: rustls with ring, quick to build |
//! | `rustls-aws-lc` | rustls with aws-lc-rs instead (with `default-features = false`) |
//! | `native-tls` | the platform's TLS library instead (with `default-features = false`) |
//!
//! No feature of payauth turns on a feature of reqwest: your own
//! `reqwest::Client` is built as your features say. Token requests go over
//! payauth's own [`HttpClient`](payauth_core::http::HttpClient) (build one
//! with [`core::http::default_client`] and share it).
//!
//! The sandbox (`payauth-sandbox`, loopback simulators of every provider
//! API), the `payauth` CLI and the test kit are not published; depend on
//! them from git. The examples below run against the sandbox: replace
//! `Environment::Custom(sandbox.base_url())` with `Environment::Production`
//! (or `Environment::Sandbox`, the provider's own test host) and the
//! sandbox's credentials with yours (`Secret::from_env("…")?`).
//!
//! [payauth-iyzico]: https://docs.rs/payauth-iyzico
//! [payauth-vakifbank]: https://docs.rs/payauth-vakifbank
//! [payauth-mypos]: https://docs.rs/payauth-mypos
//! [payauth-redis]: https://docs.rs/payauth-redis
//! [payauth-postgres]: https://docs.rs/payauth-postgres
//!
//! ## myPOS: client credentials
//!
#![cfg_attr(feature = "mypos", doc = "```")]
#![cfg_attr(not(feature = "mypos"), doc = "```ignore")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use payauth::core::{Environment, FlowSettings, Secret, TokenCache};
//! use payauth::mypos::MyposSettings;
//! use payauth_sandbox::{Sandbox, defaults};
//!
//! let sandbox = Sandbox::builder().start().await?; // stands in for myPOS
//! let http = payauth::core::http::default_client()?; // build once, share
//! let settings = MyposSettings::new(
//!     defaults::MYPOS_CLIENT_ID,
//!     Secret::new(defaults::MYPOS_CLIENT_SECRET),
//!     Environment::Custom(sandbox.base_url()),
//! );
//! let mypos = Arc::new(settings.build(&http)?);
//! let cache = TokenCache::builder(mypos.clone()).build(); // hold this; clone freely
//! let token = cache.token().await?; // fetched once, then from memory until renewal
//! let headers = mypos.resource_headers(&token)?; // Bearer, API-Key, X-Request-ID
//! assert!(headers.contains_key("api-key"));
//! # sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! ## VakıfBank: client credentials
//!
#![cfg_attr(feature = "vakifbank", doc = "```")]
#![cfg_attr(not(feature = "vakifbank"), doc = "```ignore")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use payauth::core::{Environment, FlowSettings, Secret, TokenCache};
//! use payauth::vakifbank::{ClientCredentialsSettings, VakifBankSettings};
//! use payauth_sandbox::{Sandbox, defaults};
//!
//! let sandbox = Sandbox::builder().start().await?; // stands in for the gateway
//! let http = payauth::core::http::default_client()?;
//! let gateway = VakifBankSettings::new(
//!     defaults::VAKIFBANK_CLIENT_ID,
//!     Secret::new(defaults::VAKIFBANK_CLIENT_SECRET),
//!     Environment::Custom(sandbox.base_url()),
//! );
//! let settings = ClientCredentialsSettings::new(gateway).scopes(["public"]);
//! let cache = TokenCache::builder(settings.build(&http)?).build();
//! let token = cache.token().await?;
//! assert!(token.authorization().to_str()?.starts_with("Bearer "));
//! # sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! ## iyzico: Terminal API login
//!
#![cfg_attr(feature = "iyzico", doc = "```")]
#![cfg_attr(not(feature = "iyzico"), doc = "```ignore")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use payauth::core::{Environment, FlowSettings, Secret, TokenCache};
//! use payauth::iyzico::TerminalLoginSettings;
//! use payauth_sandbox::{Sandbox, defaults};
//!
//! let sandbox = Sandbox::builder().start().await?; // stands in for iyzico
//! let http = payauth::core::http::default_client()?;
//! let settings = TerminalLoginSettings::new(
//!     defaults::IYZICO_CLIENT_ID,
//!     Secret::new(defaults::IYZICO_CLIENT_SECRET),
//!     defaults::IYZICO_USERNAME,
//!     Secret::new(defaults::IYZICO_PASSWORD),
//!     Environment::Custom(sandbox.base_url()),
//! );
//! let cache = TokenCache::builder(settings.build(&http)?).build();
//! let first = cache.token().await?;
//! // Your Terminal API call answered 401: drop that token; the next call
//! // renews it with the refresh token.
//! cache.invalidate(&first);
//! let renewed = cache.token().await?;
//! assert!(renewed.refresh_token().is_some());
//! # sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! ## Any source, one cache
//!
//! With a provider feature on, `config::Config` builds a ready
//! [`TokenCache`](payauth_core::TokenCache) from a configuration file (see
//! its docs for the format; `Config::json_schema()` describes it). The
//! cache itself is the same for every provider:
//!
//! ```
//! use std::time::Duration;
//! use payauth::core::{AccessToken, BoxFuture, Error, Issued, Secret, SystemClock, TokenCache, TokenSource};
//!
//! // Any provider flow is a TokenSource; this one mints tokens locally.
//! struct Local;
//! impl TokenSource for Local {
//!     fn fetch<'a>(&'a self, _: Option<&'a AccessToken>) -> BoxFuture<'a, Result<AccessToken, Error>> {
//!         Box::pin(async { AccessToken::new(Secret::new("t"), "Bearer", Issued::now(&SystemClock), Duration::from_secs(60)) })
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let cache = TokenCache::builder(Local).build();
//! let token = cache.token().await?;
//! assert_eq!(token.authorization().to_str().unwrap(), "Bearer t");
//! # Ok::<(), Error>(())
//! # }).unwrap();
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

/// The README's Rust snippets, compiled as doctests, as a user with the
/// dependencies it lists writes them.
#[cfg(all(
    doctest,
    feature = "mypos",
    feature = "redis",
    feature = "vakifbank",
    feature = "postgres",
    feature = "subjects"
))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

pub use payauth_core as core;

/// iyzico: Terminal API login and the Pay-with-iyzico access token.
#[cfg(feature = "iyzico")]
#[cfg_attr(docsrs, doc(cfg(feature = "iyzico")))]
pub use payauth_iyzico as iyzico;

/// VakıfBank API gateway: authorization code, refresh, client and B2B credentials.
#[cfg(feature = "vakifbank")]
#[cfg_attr(docsrs, doc(cfg(feature = "vakifbank")))]
pub use payauth_vakifbank as vakifbank;

/// myPOS / iCard: client credentials and revocation.
#[cfg(feature = "mypos")]
#[cfg_attr(docsrs, doc(cfg(feature = "mypos")))]
pub use payauth_mypos as mypos;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use payauth_postgres as postgres;
/// The fleet store: one token shared by every replica, on Redis.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use payauth_redis as redis;

#[cfg(any(feature = "mypos", feature = "vakifbank", feature = "iyzico"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "mypos", feature = "vakifbank", feature = "iyzico")))
)]
pub mod config;

#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "reqwest-middleware", feature = "tower")))
)]
mod bearer;

#[cfg(feature = "reqwest-middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest-middleware")))]
pub mod middleware;

#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;
