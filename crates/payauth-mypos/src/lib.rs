//! # payauth-mypos
//!
//! myPOS / iCard REST API auth: a client-credentials token over HTTP Basic
//! and RFC 7009 revocation.
//!
//! ```no_run
//! use std::sync::Arc;
//! use payauth_core::{FlowSettings, Secret, TokenCache};
//! use payauth_mypos::{Environment, MyposSettings};
//!
//! # async fn run() -> Result<(), payauth_core::Error> {
//! let http = payauth_core::http::default_client()?; // build once, share
//! let settings = MyposSettings::new("client-id", Secret::from_env("MYPOS_CLIENT_SECRET")?, Environment::Sandbox)
//!     .scopes(["webhooks"]);
//! let mypos = Arc::new(settings.build(&http)?);
//! let cache = TokenCache::builder(mypos.clone())
//!     .store(Arc::new(payauth_core::MemoryStore::new()), settings.store_key()?)
//!     .build();
//! let token = cache.token().await?; // cached; renewed ahead of expiry
//! mypos.revoke_cached(&cache).await?; // revoke and drop it
//! # let _ = token; Ok(()) }
//! ```
//!
//! ## Layout
//! The same in every provider crate: [`auth`] decides how the client
//! proves who it is; one module per flow ([`client_credentials`]) holds its
//! settings ([`MyposSettings`], `build` and `store_key` through
//! [`FlowSettings`](payauth_core::FlowSettings)) and its token source
//! ([`Mypos`]); [`generated`] is the typed client produced from
//! `specs/mypos.yaml` by `cargo xtask codegen`; [`HOSTS`] are the hosts.
//!
//! ## Where myPOS differs
//! - Client authentication is HTTP Basic with a **colon** (the old docs say
//!   "semicolon"; their own example, the current docs and the official JS
//!   SDK use a colon), the credentials sent as they are
//!   ([`auth::BASIC_ENCODING`]; `basic_encoding = "rfc6749"` form-encodes
//!   them first, RFC 6749 §2.3.1).
//! - Only `client_credentials` is supported; `scopes = ["webhooks"]` for
//!   the Webhook API.
//! - Revocation: the docs name `api.mypos.com` in the text and
//!   `auth-api.mypos.com` in the example; the URL is
//!   [`MyposSettings::revoke_base_url`], the token host by default.
//! - Resource APIs want `API-Key` and a fresh `X-Request-ID` beside the
//!   Bearer token: [`MyposScheme`], which a cache over [`Mypos`] carries
//!   to the facade's middleware ([`Mypos::resource_headers`] for your own
//!   requests).
//!
//! ## Store key
//! `mypos/<environment>/<client id>/client_credentials/<scopes>`, the
//! [`StoreKey`](payauth_core::StoreKey) scheme every provider shares.

pub mod auth;
pub mod client_credentials;

#[rustfmt::skip]
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic, rustdoc::bare_urls)]
pub mod generated;

pub use client_credentials::{
    DEFAULT_LIFETIME, MAX_RETRY_AFTER, Mypos, MyposScheme, MyposSettings, REVOKE_RETRIES,
};
pub use payauth_core::Environment;

/// myPOS's token hosts: production `auth-api.mypos.com`, sandbox
/// `sandbox-auth-api.mypos.com`.
pub const HOSTS: payauth_core::http::Hosts = payauth_core::http::Hosts {
    production: "https://auth-api.mypos.com",
    sandbox: "https://sandbox-auth-api.mypos.com",
};
