//! The iyzico crate's integration tests, one binary so the suite links
//! once: the Terminal API and Pay-with-iyzico flows against httpmock (with
//! their wire snapshots), the generated clients on the wire, and the
//! never-panic properties.

mod flow;
mod generated_client;
mod properties;
