//! payauth-core's integration tests, one binary so the suite links once:
//! the cache with a fake source, the cache over a shared store (replicas),
//! and errors as the cache's callers see them over real HTTP.
//! `telemetry` stays a binary of its own: it installs the process's one
//! global tracing subscriber.

mod cache;
mod errors;
mod shared;
#[cfg(feature = "subjects")]
mod subjects;
