//! Workspace end-to-end and snapshot tests; the tests are the `[[test]]`
//! targets beside this file: `it/` (one binary of modules) and the two
//! that need a process of their own, `leaks.rs` and `tls.rs`.
