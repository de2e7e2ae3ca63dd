//! Loading policy sources and data fixtures from files, and building an engine from them.
//!
//! Policy sources are `Policy` and `LibraryPolicy` manifests (YAML or JSON, several
//! documents per file, directories walked recursively) and plain `.congress` rule files.
//! Fixtures are YAML or JSON files of table rows; `Datasource` manifests and schema files
//! among them give the tables and columns. Every problem is reported with its file, YAML
//! document and `line:col`; policy diagnostics come with a snippet and a caret pointing
//! into the file as written. File formats: `docs/cli.md`.
//!
//! Names are the operator's: a policy or datasource is named in the engine by
//! [`crate::engine_name`] of its `metadata.name` (`-` becomes `_`), and so are a `.congress`
//! file's stem and the datasource names fixtures and schema files write, so that one name
//! (either spelling) works in every file and the CLI loads what the operator loads.
//!
//! What a manifest's statements and kind are, how they go into the engine and how a failure
//! is diagnosed is decided by [`crate::loader`], which the operator uses too; this module
//! reads the files and places what the loader reports in them.
//!
//! Its parts: `documents` (files, YAML/JSON documents and positions in them), `manifests`
//! (`Policy`/`LibraryPolicy` manifests and `.congress` files: [`load_policies`]), `fixtures`
//! (data files and schemas: [`load_fixtures`], [`load_schemas`]) and `build` (an engine from
//! all of it: [`build()`], failures rendered at their file positions).

mod build;
mod documents;
mod fixtures;
mod manifests;
mod objects;

pub use crate::loader::{Origin, Statement};
pub use build::build;
pub use fixtures::{load_fixtures, load_fixtures_with_schemas, load_schemas};
pub use manifests::load_policies;
pub use objects::{Objects, load_objects};

use crate::resources::Enforcement;
use congress_engine::{ActionEvent, Engine, PolicyKind, Schema, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One statement of a policy as read from a file: a [`Statement`] whose `origin` is set.
pub type StatementSource = Statement;

/// A policy as read from a manifest or a `.congress` file.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicySource {
    /// The name in the engine, what rules write (`pod_security:error`):
    /// [`crate::engine_name`] of `resource`.
    pub name: String,
    /// The manifest's `metadata.name` (`pod-security`), or a `.congress` file's stem: what
    /// messages about the manifest say, and what `libraryRef` names.
    pub resource: String,
    pub kind: PolicyKind,
    pub enforcement: Enforcement,
    /// What a `proactive` policy does at admission (`deny` unless the manifest says).
    pub admission: crate::resources::AdmissionAction,
    /// The statements as [`crate::loader`] makes them, each with its file position.
    pub statements: Vec<StatementSource>,
    /// The `LibraryPolicy` this policy activates (its statements are already copied in).
    pub library_ref: Option<String>,
    /// True for a `LibraryPolicy` (inactive: [`build()`] does not load it).
    pub library: bool,
    /// Where the manifest (or file) starts.
    pub origin: Origin,
}

/// The rows of one datasource table from a fixture file.
#[derive(Clone, Debug, PartialEq)]
pub struct TableFixture {
    /// The datasource's engine name ([`crate::engine_name`] of the name written).
    pub datasource: String,
    pub table: String,
    pub rows: Vec<Vec<Value>>,
    /// Where the table's key is in the file.
    pub origin: Origin,
}

/// Everything read from the data files: datasource schemas and table rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FixtureSet {
    /// Keyed by the datasources' engine names.
    pub schemas: BTreeMap<String, Schema>,
    pub tables: Vec<TableFixture>,
}

/// A problem in the input files.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    /// Not valid YAML or JSON.
    #[error("{origin}: malformed {format}: {message}")]
    Syntax { origin: Origin, format: &'static str, message: String },
    /// A manifest that is not a valid Policy, LibraryPolicy or Datasource.
    #[error("{origin}: {message}")]
    Manifest { origin: Origin, message: String },
    /// A policy statement the engine refused: the message, then the snippet with a caret.
    /// `rule`, `line` and `column` are the loader's label and position within the rule entry
    /// or text block (what the operator reports); `origin` is the position in the file.
    #[error("{origin}: {message}\n{snippet}")]
    Policy {
        origin: Origin,
        /// The policy's engine name.
        policy: String,
        rule: String,
        line: usize,
        column: usize,
        message: String,
        snippet: String,
    },
    /// A bad fixture: unknown table or column, wrong arity, a nested value, no schema.
    #[error("{origin}: {message}")]
    Fixture { origin: Origin, message: String },
    /// Any other refusal by the engine.
    #[error("{origin}: {message}")]
    Engine { origin: Origin, message: String },
}

impl LoadError {
    /// Where the problem is, when known.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            LoadError::Io { .. } => None,
            LoadError::Syntax { origin, .. }
            | LoadError::Manifest { origin, .. }
            | LoadError::Policy { origin, .. }
            | LoadError::Fixture { origin, .. }
            | LoadError::Engine { origin, .. } => Some(origin),
        }
    }
}

/// An engine loaded with fixtures and policies.
pub struct Loaded {
    pub engine: Engine,
    /// The sources that were loaded (library policies included).
    pub policies: Vec<PolicySource>,
    /// Actions that would fire on loading (never executed).
    pub actions: Vec<ActionEvent>,
}

#[cfg(test)]
mod tests;
