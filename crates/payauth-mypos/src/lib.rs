//! # payauth-mypos
//!
//! myPOS / iCard REST API auth: a client-credentials token over HTTP Basic
//! and RFC 7009 revocation.
//!
//! ```no_run
//! use std::sync::Arc;
//! use payauth_core::{Secret, TokenCache};
//! use payauth_mypos::{Environment, Mypos, MyposConfig};
//!
//! # async fn run() -> Result<(), payauth_core::Error> {
//! let http = payauth_core::http::default_client()?; // build once, share
//! let config = MyposConfig::new("client-id", Secret::from_env("MYPOS_CLIENT_SECRET")?, Environment::Sandbox)
//!     .scope("webhooks");
//! let mypos = Arc::new(Mypos::new(config, http)?);
//! let cache = TokenCache::builder(mypos.clone()).build();
//! let token = cache.token().await?; // cached; renewed ahead of expiry
//! mypos.revoke_cached(&cache).await?; // revoke and drop it
//! # let _ = token; Ok(()) }
//! ```
//!
//! ## Where myPOS differs
//! - Client authentication is HTTP Basic with a **colon** (the old docs say
//!   "semicolon"; their own example, the current docs and the official JS
//!   SDK use a colon), id and secret form-encoded first (RFC 6749 §2.3.1).
//! - Only `client_credentials` is supported; `scope=webhooks` for the
//!   Webhook API.
//! - Revocation: the docs name `api.mypos.com` in the text and
//!   `auth-api.mypos.com` in the example; the URL is
//!   [`MyposConfig::revoke_base_url`], the token host by default.
//! - Resource APIs want `API-Key` and a fresh `X-Request-ID` beside the
//!   Bearer token: [`Mypos::resource_headers`].
//!
//! The typed client in [`generated`] is produced from `specs/mypos.yaml` by
//! `cargo xtask codegen`; [`auth`] holds the credentials it carries.

pub mod auth;
mod client;

#[rustfmt::skip]
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod generated;

pub use client::{
    DEFAULT_LIFETIME, MAX_RETRY_AFTER, Mypos, MyposConfig, PRODUCTION_BASE_URL, REVOKE_RETRIES,
    SANDBOX_BASE_URL,
};
pub use payauth_core::Environment;
