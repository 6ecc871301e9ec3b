//! Helpers for payauth's own crates (hex digits, CSPRNG values, calendar
//! days), written
//! once and shared. Not public API: hidden from the docs, with no
//! compatibility promise; applications have no use for them.

pub mod hex;
pub mod random;
pub mod time;

/// Bounded reads of regular files.
pub mod fs {
    pub use crate::secret::read_regular_file;
}

/// Text safe for a terminal.
pub mod text {
    pub use crate::text::is_format;
}

/// Shared stores' settings.
pub mod store {
    use std::time::Duration;

    /// `value` within `limits`, with a warning naming `store` and `setting`
    /// when it was not: a setting out of range (say, from a config file) is
    /// never silently something else. The one clamp of every shared store's
    /// timing settings.
    pub fn clamp_setting(
        store: &str,
        setting: &str,
        value: Duration,
        limits: &std::ops::RangeInclusive<Duration>,
    ) -> Duration {
        let clamped = value.clamp(*limits.start(), *limits.end());
        if clamped != value {
            tracing::warn!(
                "the {store} store's {setting} of {value:?} is outside {:?}..={:?}; using {clamped:?}",
                limits.start(),
                limits.end()
            );
        }
        clamped
    }
}
