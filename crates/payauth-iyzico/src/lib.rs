//! # payauth-iyzico
//!
//! iyzico's two auth APIs, one flow module each:
//! - [`terminal_login`]: the **Terminal API login** (`/in-store/oauth2/*`):
//!   username and password plus client credentials give a single-use code,
//!   exchanged over HTTP Basic for an access token and a refresh token.
//! - [`pwi`]: the **Pay with iyzico access token**: a 5-minute token per
//!   member session, requested with iyzico's IYZWSv2 HMAC signature
//!   ([`iyzwsv2`]).
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
pub mod iyzwsv2;
pub mod pwi;
pub mod terminal_login;

#[rustfmt::skip]
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic, rustdoc::bare_urls)]
pub mod generated;

pub use payauth_core::Environment;
pub use pwi::{Locale, Pwi, PwiSession, PwiSessionSettings, PwiSettings};
pub use terminal_login::{TerminalLogin, TerminalLoginSettings, TimestampUnit};

/// iyzico's hosts, for both APIs: production `api.iyzipay.com`, sandbox
/// `sandbox-api.iyzipay.com` (sandbox keys work only there).
pub const HOSTS: payauth_core::http::Hosts = payauth_core::http::Hosts {
    production: "https://api.iyzipay.com",
    sandbox: "https://sandbox-api.iyzipay.com",
};

/// What one of iyzico's error codes means in RFC 6749 terms, for both
/// APIs: `1000` (invalid signature) and `1001` (API key not found) refuse
/// the client, `260016` (session token not found) refuses the grant, and
/// an OAuth code sent as iyzico's `errorCode` (the Terminal API's
/// `/authorize` does) is itself. Any other code is no verdict.
pub(crate) fn oauth_meaning(code: &payauth_core::wire::NumberOrString) -> Option<&str> {
    let text = match code {
        payauth_core::wire::NumberOrString::String(text) => text.trim(),
        payauth_core::wire::NumberOrString::Number(1000 | 1001) => return Some("invalid_client"),
        payauth_core::wire::NumberOrString::Number(260_016) => return Some("invalid_grant"),
        payauth_core::wire::NumberOrString::Number(_) => return None,
    };
    match text {
        "1000" | "1001" => Some("invalid_client"),
        "260016" => Some("invalid_grant"),
        other => payauth_core::ErrorKind::from_oauth_code(other).map(|_| other),
    }
}
