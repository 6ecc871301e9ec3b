//! The facade's integration tests, one binary so the suite links once:
//! each adapter's module compiles with the feature that adds the adapter
//! (what `required-features` did for separate binaries).

#[cfg(feature = "reqwest-middleware")]
mod middleware;
#[cfg(feature = "tower")]
mod tower;
