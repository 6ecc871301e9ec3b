//! # payauth-vakifbank
//!
//! VakıfBank API gateway OAuth 2.0, one module per flow:
//! [`authorization_code`] (authorize URL, callback, exchange, and the
//! refresh-token grant that keeps the login fresh), [`client_credentials`]
//! and [`b2b_credentials`].
//!
//! ## Layout
//! The same in every provider crate: [`auth`] decides how the client
//! proves who it is; [`gateway`] holds the settings and handle the flows
//! share ([`VakifBankSettings`], [`VakifBank`]); each flow module holds
//! its settings (`build` and `store_key` through
//! [`FlowSettings`](payauth_core::FlowSettings)) and its token source;
//! [`generated`] is the typed client produced from `specs/vakifbank.yaml`
//! by `cargo xtask codegen`; [`HOSTS`] are the hosts.
//!
//! ## Store keys
//! The [`StoreKey`](payauth_core::StoreKey) scheme every provider shares,
//! `vakifbank/<environment>/<client id>/<flow>[/<subject>…]/<scopes>`:
//! - `…/authorization_code/<channel>/<customer>/<scopes>`
//! - `…/client_credentials/<scopes>`
//! - `…/b2b_credentials/<consent id>/<scopes>`
//!
//! `<environment>` is `sandbox`, `production` or the base URL, followed by
//! `+<plan>` when the API plan (`resource`) is not that environment's own.

pub mod auth;
pub mod authorization_code;
pub mod b2b_credentials;
pub mod client_credentials;
pub mod gateway;

#[rustfmt::skip]
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic, rustdoc::bare_urls)]
pub mod generated;

pub use auth::ClientAuthStyle;
pub use authorization_code::{
    AuthorizationCodeSettings, Channel, PendingAuthorization, RefreshTokenGrant,
};
pub use b2b_credentials::{B2bCredentialsGrant, B2bCredentialsSettings};
pub use client_credentials::{ClientCredentialsGrant, ClientCredentialsSettings};
pub use gateway::{DEFAULT_LIFETIME, ERROR_CODE_HEADER, Resource, VakifBank, VakifBankSettings};
pub use payauth_core::Environment;

/// The gateway host, for sandbox and production alike (the API plan,
/// `resource`, tells them apart).
pub const HOSTS: payauth_core::http::Hosts = payauth_core::http::Hosts {
    production: "https://apigw.vakifbank.com.tr:8443",
    sandbox: "https://apigw.vakifbank.com.tr:8443",
};
