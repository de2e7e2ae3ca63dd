//! The admission webhook: TLS serving (tls): its certificates, hot-swapped without a restart.

// Wired into the operator together with the admission handler.
#[allow(dead_code, reason = "used by the admission handler, which comes next")]
pub mod tls;
