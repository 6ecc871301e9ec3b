//! # payauth-mypos
//!
//! myPOS / iCard REST API auth: a client-credentials token over HTTP Basic
//! and RFC 7009 revocation.
//!
//! The typed client in [`generated`] is produced from `specs/mypos.yaml` by
//! `cargo xtask codegen`; [`auth`] holds the credentials it carries and
//! applies the spec's security requirements to every request.

pub mod auth;

#[rustfmt::skip]
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod generated;
