//! The myPOS crate's integration tests, one binary so the suite links
//! once: the flow against httpmock (with its wire snapshot), the generated
//! client on the wire, and the never-panic properties.

mod flow;
mod generated_client;
mod properties;
