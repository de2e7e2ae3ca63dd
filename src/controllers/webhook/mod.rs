//! The admission webhook (proactive enforcement): the answer to a review (`review`) and the
//! `ValidatingWebhookConfiguration` generated from the proactive policies (`config`).
pub mod config;
pub mod review;
