//! # payauth-vakifbank
//!
//! VakıfBank API gateway OAuth 2.0: authorization code (retail and
//! corporate), refresh token, client credentials and B2B credentials.
//!
//! The typed client in [`generated`] is produced from `specs/vakifbank.yaml`
//! by `cargo xtask codegen`; [`auth`] holds the credentials it carries.

pub mod auth;
mod client;

#[rustfmt::skip]
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod generated;

pub use auth::ClientAuthStyle;
pub use client::{
    B2bCredentialsGrant, BASE_URL, Channel, ClientCredentialsGrant, DEFAULT_LIFETIME,
    ERROR_CODE_HEADER, PendingAuthorization, RefreshGrant, Resource, VakifBank, VakifBankConfig,
};
