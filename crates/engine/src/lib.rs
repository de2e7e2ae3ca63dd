//! congress's policy engine: Congress's Datalog language, parsed, analysed, stratified and
//! maintained incrementally inside all-or-nothing transactions.
//!
//! A plain library: no Kubernetes, no async runtime, no YAML, no HTTP. The command line and
//! the operator both drive an [`Engine`]; everything they may touch is re-exported here, and
//! the machinery behind it (analysis, stratification, evaluation, interning) is private.
//!
//! The pipeline: [`syntax`] (text -> rules, every error with a span) -> analysis (safety,
//! arity, kinds) -> stratification (recursion and negation) -> evaluation (counting and
//! delete-and-rederive over interned rows).
//!
//! ```
//! use congress_engine::{Engine, PolicyKind, Schema, Value};
//!
//! let mut engine = Engine::new();
//! let mut schema = Schema::new();
//! schema.insert("servers".into(), vec!["id".into(), "status".into()]);
//! let mut txn = engine.transaction();
//! txn.create_datasource("nova", schema)
//!     .create_policy("ops", PolicyKind::Nonrecursive)
//!     .insert_rule("ops", r#"error(id) :- nova:servers(id, "ERROR")"#)
//!     .insert_rows("nova", "servers", vec![
//!         vec![Value::str("vm1"), Value::str("ACTIVE")],
//!         vec![Value::str("vm2"), Value::str("ERROR")],
//!     ]);
//! let commit = txn.commit().expect("a valid transaction");
//! assert!(commit.changes.iter().any(|d| d.policy == "ops" && d.table == "error"));
//! assert_eq!(engine.rows("ops", "error").unwrap(), vec![vec![Value::str("vm2")]]);
//!
//! // A transaction with a bad rule changes nothing.
//! let mut txn = engine.transaction();
//! txn.insert_rule("ops", "error(x) :- nova:servers(x").insert_rule("ops", "p(1)");
//! assert!(txn.commit().is_err());
//! assert!(engine.rows("ops", "p").is_err(), "no table `p`: nothing was committed");
//! assert_eq!(engine.rows("ops", "error").unwrap().len(), 1);
//! ```

mod analysis;
mod builtins;
mod engine;
mod eval;
mod explain;
mod intern;
mod query;
mod simulate;
mod stratify;
pub mod syntax;
mod transaction;
mod types;
mod value;

pub use engine::Engine;
pub use explain::render_proof;
pub use query::{MemoryReport, Rows};
pub use simulate::RowChange;
pub use transaction::Transaction;
pub use types::{
    ActionEvent, Answer, BuiltinFailures, Commit, EngineError, EngineWarning, PolicyKind, Proof, Schema,
    SimulateRequest, TableDelta,
};
pub use value::Value;
