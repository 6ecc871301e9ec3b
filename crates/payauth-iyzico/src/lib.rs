//! # payauth-iyzico
//!
//! iyzico's two auth APIs, one flow module each:
//! - [`terminal_login`]: the **Terminal API login** (`/in-store/oauth2/*`):
//!   username and password plus client credentials give a single-use code,
//!   exchanged over HTTP Basic for an access token and a refresh token.
//! - [`pwi`]: the **Pay with iyzico access token**: a 5-minute token per
//!   member session, requested with iyzico's IYZWSv2 HMAC signature
//!   ([`iyzwsv2`]); later calls carry it in an `access-token` header
//!   beside a fresh signature ([`PwiScheme`], which a cache over a
//!   [`PwiSession`] carries to the facade's middleware).
//!
//! ## Layout
//! The same in every provider crate: [`auth`] decides how the clients
//! prove who they are; each flow module holds its settings
//! ([`TerminalLoginSettings`], [`PwiSessionSettings`]: `build` and
//! `store_key` through [`FlowSettings`](payauth_core::FlowSettings)) and
//! its token source ([`TerminalLogin`], [`PwiSession`]); [`generated`] is
//! the typed clients produced from `specs/iyzico-terminal-login.yaml` and
//! `specs/iyzico-pwi.yaml` by `cargo xtask codegen`; [`HOSTS`] are the
//! hosts both APIs share.
//!
//! ## Store keys
//! The [`StoreKey`](payauth_core::StoreKey) scheme every provider shares:
//! - `iyzico/<environment>/<client id>/terminal_login/<username>/`
//! - `iyzico/<environment>/<api key>/pwi/<member>/<session>/`, where
//!   `<session>` is a keyed digest of the session token (HMAC-SHA256 with
//!   the secret key, 16 hex digits): each member session has its own
//!   token, and the key never shows the session token.

pub mod auth;
mod envelope;
pub mod iyzwsv2;
pub mod pwi;
pub mod terminal_login;

#[rustfmt::skip]
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic, rustdoc::bare_urls)]
pub mod generated;

pub use payauth_core::Environment;
pub use pwi::{Locale, Pwi, PwiScheme, PwiSession, PwiSessionSettings, PwiSettings};
pub use terminal_login::{TerminalLogin, TerminalLoginSettings, TimestampUnit};

/// iyzico's hosts, for both APIs: production `api.iyzipay.com`, sandbox
/// `sandbox-api.iyzipay.com` (sandbox keys work only there).
pub const HOSTS: payauth_core::http::Hosts = payauth_core::http::Hosts {
    production: "https://api.iyzipay.com",
    sandbox: "https://sandbox-api.iyzipay.com",
};
