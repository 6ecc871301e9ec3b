//! The instant a published token must be replaced: computed from the
//! token and the shared settings on the fast path (a few integer
//! operations, no pointer followed), so a cache publishes the token alone.

use std::time::{Duration, Instant};

use super::builder::Settings;
use crate::token::AccessToken;

/// The jitter spreads refreshes over at most this much.
const MAX_JITTER_SPAN: Duration = Duration::from_secs(30);

/// When `token` should be replaced: before its expiry by the margin (at
/// most half its lifetime) plus this instance's jitter of
/// `min(10 % of lifetime, 30 s)`.
#[inline]
pub(super) fn refresh_at(token: &AccessToken, settings: &Settings) -> Instant {
    let lifetime = token.lifetime();
    let span = (lifetime / 10).min(MAX_JITTER_SPAN);
    // Both terms are bounded (half of MAX_LIFETIME, 30 s), jitter in [0, 1].
    let ahead = settings.margin.min(lifetime / 2) + span.mul_f64(settings.jitter);
    token
        .expires_at()
        .checked_sub(ahead)
        .unwrap_or_else(|| token.expires_at())
}
