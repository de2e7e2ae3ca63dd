//! The policy engine: Congress's Datalog, analysed, stratified and maintained
//! incrementally. No Kubernetes in here: the CLI and the operator call [`Engine`].

pub mod analysis;
pub mod builtins;
pub mod engine;
pub mod eval;
pub mod explain;
pub mod intern;
pub mod query;
pub mod simulate;
pub mod syntax;
pub mod value;

pub use engine::{ActionEvent, Commit, Engine, EngineError, PolicyKind, TableDelta, Transaction};
pub use value::Value;
