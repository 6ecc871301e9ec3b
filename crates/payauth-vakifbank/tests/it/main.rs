//! The VakıfBank crate's integration tests, one binary so the suite links
//! once: the flows against httpmock (with their wire snapshots), the
//! generated client on the wire, and the never-panic properties.

mod flow;
mod generated_client;
mod properties;
