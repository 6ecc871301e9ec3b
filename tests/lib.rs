//! Workspace end-to-end and snapshot tests; the tests are the `[[test]]`
//! targets beside this file.
