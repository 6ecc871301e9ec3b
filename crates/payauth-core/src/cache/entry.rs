//! The published token and the instant it must be replaced, computed once
//! when it is published: all the fast path reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::builder::Settings;
use crate::token::AccessToken;

/// The jitter spreads refreshes over at most this much.
const MAX_JITTER_SPAN: Duration = Duration::from_secs(30);

/// A published token.
pub(super) struct Entry {
    pub(super) token: Arc<AccessToken>,
    /// From this instant on, callers start a refresh.
    pub(super) refresh_at: Instant,
    /// The token is not in the store yet (a failed save, or a seed).
    unsaved: AtomicBool,
}

impl Entry {
    pub(super) fn new(token: Arc<AccessToken>, settings: &Settings, unsaved: bool) -> Self {
        Self {
            refresh_at: refresh_at(&token, settings),
            token,
            unsaved: AtomicBool::new(unsaved),
        }
    }

    pub(super) fn is_unsaved(&self) -> bool {
        self.unsaved.load(Ordering::Relaxed)
    }

    pub(super) fn mark_saved(&self) {
        self.unsaved.store(false, Ordering::Relaxed);
    }
}

/// When `token` should be replaced: before its expiry by the margin (at
/// most half its lifetime) plus this instance's jitter of
/// `min(10 % of lifetime, 30 s)`.
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
