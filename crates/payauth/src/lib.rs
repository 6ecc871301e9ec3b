//! # payauth
//!
//! Access tokens from payment providers' auth APIs, typed, cached and
//! renewed. This facade re-exports [`payauth_core`] and each provider crate
//! behind a feature of its name, so an application compiles only the
//! providers it uses:
//!
//! ```toml
//! [dependencies]
//! payauth = { version = "0.1", features = ["mypos"] }
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
