//! The admission webhook (proactive enforcement): the answer to a review (`review`), the
//! `ValidatingWebhookConfiguration` generated from the proactive policies (`config`), TLS
//! and certificates (`tls`), and running it all (`server`).
pub mod config;
pub mod review;
pub mod server;
pub mod tls;
