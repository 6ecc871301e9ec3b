//! payauth-postgres's integration tests against a real PostgreSQL (from
//! `.ci/postgres`), one binary so the suite links once: the store, and
//! the fleet suite that runs the same tests on PostgreSQL and on Redis.

mod fleet;
mod round_trips;
mod store;
mod support;
#[cfg(feature = "tls")]
mod tls;
