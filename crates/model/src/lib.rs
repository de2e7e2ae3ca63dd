//! congress's model: what the command line and the operator agree on.
//!
//! - [`resources`]: the Kubernetes resource types (`Policy`, `LibraryPolicy`, `Datasource`,
//!   `ActionRequest`), from which the CRDs are generated;
//! - [`loader`]: the policy loader, one for the command line and the operator: a `Policy`
//!   spec to its kind and labelled statements, one all-or-nothing transaction, and every
//!   problem of a failed one with its rule and `line:col`;
//! - [`load`]: reading manifests and fixtures from files (policies through [`loader`]),
//!   every problem placed at its `file:line:col`;
//! - [`names`]: how resource names map to engine names, and the time format of statuses.

pub mod load;
pub mod loader;
pub mod names;
pub mod resources;

pub use names::{engine_name, now_rfc3339, resource_name};
