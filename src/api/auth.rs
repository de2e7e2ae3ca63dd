//! Who may call the API: the authenticators live in the drivers' library
//! (`congress_drivers::api_auth`: Keystone tokens validated as keystonemiddleware does,
//! Kubernetes tokens with TokenReview and SubjectAccessReview, or nobody checks).

pub use congress_drivers::api_auth::{Access, Authenticator, KeystoneAuth, KeystoneAuthConfig, NoAuth, request_token};
