//! The CLI's integration tests, one binary so the suite links once: the
//! `payauth` binary (`CARGO_BIN_EXE_payauth`) driven as users, scripts and
//! operators run it, each test in its own child processes.

mod canary;
mod common;
mod config;
mod demo;
mod hostile;
mod iyzico_sign;
mod login;
mod operators;
mod pipes;
mod proxies;
mod readme;
mod sandbox;
mod scripts;
mod secret_files;
mod token;
mod usage;
