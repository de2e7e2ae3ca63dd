//! congress's model: what the command line and the operator agree on.
//!
//! - [`resources`]: the Kubernetes resource types (`Policy`, `LibraryPolicy`, `Datasource`,
//!   `ActionRequest`), from which the CRDs are generated;
//! - [`load`]: reading manifests and fixtures from files, every problem placed at its
//!   `file:line:col`;
//! - [`names`]: how resource names map to engine names, and the time format of statuses.

pub mod load;
pub mod names;
pub mod resources;

pub use names::{engine_name, now_rfc3339, resource_name};
