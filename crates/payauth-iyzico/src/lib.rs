//! # payauth-iyzico
//!
//! iyzico's two auth APIs:
//! - **Terminal API login** (`/in-store/oauth2/*`): username and password
//!   plus client credentials give a single-use code, exchanged over HTTP
//!   Basic for an access token and a refresh token.
//! - **Pay with iyzico access token**: a 5-minute token per member session,
//!   requested with iyzico's IYZWSv2 HMAC signature.
//!
//! The typed clients in [`generated`] are produced from
//! `specs/iyzico-terminal-login.yaml` and `specs/iyzico-pwi.yaml` by
//! `cargo xtask codegen`; [`auth`] holds the credentials they carry.

pub mod auth;
pub mod iyzwsv2;
pub mod pwi;
pub mod terminal_login;

#[rustfmt::skip]
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod generated;
