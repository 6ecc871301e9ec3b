//! payauth-core: the common token interface (placeholder written by the lead
//! so the workspace loads; replaced by the core implementation).

mod secret;
pub use secret::Secret;

/// OAuth 2.0 helpers (placeholder).
pub mod oauth2 {
    use crate::Secret;
    /// `Basic base64(urlencode(id):urlencode(secret))` (placeholder).
    #[must_use]
    pub fn basic_authorization(_id: &str, _secret: &Secret) -> reqwest::header::HeaderValue {
        let mut v = reqwest::header::HeaderValue::from_static("Basic placeholder");
        v.set_sensitive(true);
        v
    }
}
