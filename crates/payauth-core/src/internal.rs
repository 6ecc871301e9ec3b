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
