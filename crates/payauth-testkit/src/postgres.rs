//! A real PostgreSQL for tests: the one `.ci/run` started
//! (`PAYAUTH_POSTGRES_URL`, from `.ci/postgres`), else a visible skip —
//! which CI (`CI` set) refuses.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A PostgreSQL to test against.
#[derive(Debug)]
pub struct Postgres {
    /// `postgres://user@127.0.0.1:<port>/<database>`.
    pub url: String,
    /// A row prefix no other test uses, so tests can share one database.
    pub prefix: String,
}

impl Postgres {
    /// The PostgreSQL to use, or `None` (after printing why) when there is
    /// none outside CI.
    ///
    /// # Panics
    /// In CI, when `PAYAUTH_POSTGRES_URL` is not set.
    #[must_use]
    pub fn get() -> Option<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let Ok(url) = std::env::var("PAYAUTH_POSTGRES_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the PostgreSQL tests, but PAYAUTH_POSTGRES_URL is not set (.ci/run starts one with .ci/postgres)"
            );
            eprintln!(
                "SKIPPED: no PostgreSQL; run `eval \"$(.ci/postgres start)\"` to set PAYAUTH_POSTGRES_URL"
            );
            return None;
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Some(Self {
            url,
            prefix: format!(
                "test-{}-{nanos}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ),
        })
    }
}
