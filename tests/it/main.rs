//! The workspace's end-to-end and snapshot tests that can share a process,
//! one binary so the suite links once: configuration, the fault matrix,
//! what gateways really answer, the vendors' behaviours, the feature
//! graph, and the reviewed surface of the generated clients. `leaks.rs`
//! and `tls.rs` are binaries of their own: each reads state that is
//! global to its process.

mod canary;
mod config;
mod faults;
mod features;
mod fidelity;
#[path = "../flows.rs"]
mod flows;
mod gateway_answers;
mod generated_api;
mod proxies;
