//! Tokens encrypted at rest: payauth-core's `encryption` module, shared
//! with payauth-postgres (one key type, one record format).

pub use payauth_core::encryption::EncryptionKey;
pub(crate) use payauth_core::encryption::{MAX_VALUE_BYTES, open, seal};
