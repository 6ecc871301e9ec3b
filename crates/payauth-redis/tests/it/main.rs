//! payauth-redis's integration tests against a real Redis, one binary so
//! the suite links once: the store, a fleet of caches sharing it, and (with
//! the `cluster` feature, what `required-features` did for a separate
//! binary) the fleet protocol on a three-node Redis Cluster.

#[cfg(feature = "cluster")]
mod cluster;
mod fleet;
mod restart;
mod store;
mod support;
