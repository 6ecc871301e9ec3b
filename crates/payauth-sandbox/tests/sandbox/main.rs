//! End-to-end tests of the sandbox over real loopback HTTP, one binary for
//! every provider so the suite links once.

mod common;
mod faults;
mod iyzico;
mod lifecycle;
mod mypos;
mod pwi;
mod vakifbank;
