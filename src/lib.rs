//! congress: cloud policy in Datalog.
//!
//! The crate is one library with one binary. [`datalog`] is the policy engine, a plain
//! Rust library with no Kubernetes in it; the command line ([`cli`]) embeds it in-process.
#![forbid(unsafe_code)]

pub mod cli;
pub mod datalog;
pub mod resources;
