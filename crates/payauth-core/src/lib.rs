//! payauth-core: the common token interface (placeholder written by the lead
//! so the workspace loads; replaced by the core implementation).

mod secret;
pub use secret::Secret;

pub mod oauth2;
