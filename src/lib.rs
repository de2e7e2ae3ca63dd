//! congress: cloud policy in Datalog.
//!
//! The crate is one library with one binary. [`datalog`] is the policy engine, a plain
//! Rust library with no Kubernetes in it; the command line ([`cli`]) embeds it in-process,
//! and the operator ([`controllers`]) feeds it from [`drivers`] and publishes what it derives.
#![forbid(unsafe_code)]

pub mod cli;
pub mod controllers;
pub mod datalog;
pub mod drivers;
pub mod resources;
