//! # payauth
//!
//! Access tokens from payment providers' auth APIs, typed, cached and
//! renewed. This facade re-exports [`payauth_core`] and each provider crate
//! behind a feature of its name, so an application compiles only the
//! providers it uses:
//!
//! ```toml
//! [dependencies]
//! payauth = { version = "0.1", features = ["mypos", "toml"] }
//! ```
//!
//! With a provider feature on, [`config::Config`] builds a ready
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

pub use payauth_core as core;

/// iyzico: Terminal API login and the Pay-with-iyzico access token.
#[cfg(feature = "iyzico")]
pub use payauth_iyzico as iyzico;

/// VakıfBank API gateway: authorization code, refresh, client and B2B credentials.
#[cfg(feature = "vakifbank")]
pub use payauth_vakifbank as vakifbank;

/// myPOS / iCard: client credentials and revocation.
#[cfg(feature = "mypos")]
pub use payauth_mypos as mypos;

/// The fleet store: one token shared by every replica, on Redis.
#[cfg(feature = "redis")]
pub use payauth_redis as redis;

#[cfg(any(feature = "mypos", feature = "vakifbank", feature = "iyzico"))]
pub mod config;

#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
mod bearer;

#[cfg(feature = "reqwest-middleware")]
pub mod middleware;

#[cfg(feature = "tower")]
pub mod tower;
