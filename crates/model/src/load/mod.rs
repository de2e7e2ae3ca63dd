//! Loading policy sources and data fixtures from files, and building an engine from them.
//!
//! Policy sources are `Policy` and `LibraryPolicy` manifests (YAML or JSON, several
//! documents per file, directories walked recursively) and plain `.congress` rule files.
//! Fixtures are YAML or JSON files of table rows; `Datasource` manifests and schema files
//! among them give the tables and columns. Every problem is reported with its file, YAML
//! document and `line:col`; policy diagnostics come with a snippet and a caret pointing
//! into the file as written. File formats: `docs/cli.md`.

use crate::resources::{API_VERSION, DatasourceSpec, Enforcement, GROUP, LibraryPolicySpec, PolicySpec, RuleEntry};
use congress_engine::Schema;
use congress_engine::syntax::{self, Diagnostic, Span};
use congress_engine::{ActionEvent, Engine, EngineError, PolicyKind, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where something is in the input files.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub file: PathBuf,
    /// 1-based YAML document in the file, 0 if not applicable (`.congress`, JSON).
    pub document: usize,
    /// 1-based line in the file.
    pub line: usize,
    /// 1-based column (in characters) in the file.
    pub col: usize,
}

impl Origin {
    pub fn new(file: impl Into<PathBuf>, document: usize, line: usize, col: usize) -> Origin {
        Origin { file: file.into(), document, line, col }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)?;
        if self.document > 0 {
            write!(f, " (document {})", self.document)?;
        }
        Ok(())
    }
}

/// One statement (rule or fact) of a policy, and where its text starts in its file.
#[derive(Clone, Debug, PartialEq)]
pub struct StatementSource {
    pub name: Option<String>,
    pub comment: Option<String>,
    pub text: String,
    /// Where `text` starts in the file.
    pub origin: Origin,
}

/// A policy as read from a manifest or a `.congress` file.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicySource {
    pub name: String,
    pub kind: PolicyKind,
    pub enforcement: Enforcement,
    pub statements: Vec<StatementSource>,
    /// The `LibraryPolicy` this policy activates (its statements are already copied in).
    pub library_ref: Option<String>,
    /// True for a `LibraryPolicy` (inactive: [`build`] does not load it).
    pub library: bool,
    /// Where the manifest (or file) starts.
    pub origin: Origin,
}

/// The rows of one datasource table from a fixture file.
#[derive(Clone, Debug, PartialEq)]
pub struct TableFixture {
    pub datasource: String,
    pub table: String,
    pub rows: Vec<Vec<Value>>,
    /// Where the table's key is in the file.
    pub origin: Origin,
}

/// Everything read from the data files: datasource schemas and table rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FixtureSet {
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
    #[error("{origin}: {message}\n{snippet}")]
    Policy { origin: Origin, policy: String, message: String, snippet: String },
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

// ---------------------------------------------------------------------------------------
// Files and documents
// ---------------------------------------------------------------------------------------

const POLICY_EXTS: &[&str] = &["yaml", "yml", "json", "congress"];
const DATA_EXTS: &[&str] = &["yaml", "yml", "json"];

fn has_ext(p: &Path, exts: &[&str]) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| exts.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Every file under `paths` (files as given, directories walked recursively in sorted
/// order) with one of `exts`.
fn collect_files(paths: &[PathBuf], exts: &[&str], errors: &mut Vec<LoadError>) -> Vec<PathBuf> {
    fn walk(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>, errors: &mut Vec<LoadError>) {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                errors.push(LoadError::Io { path: dir.to_path_buf(), message: e.to_string() });
                return;
            }
        };
        let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            let hidden = p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if p.is_dir() {
                walk(&p, exts, out, errors);
            } else if has_ext(&p, exts) {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, exts, &mut out, errors);
        } else if p.exists() {
            out.push(p.clone());
        } else {
            errors.push(LoadError::Io { path: p.clone(), message: "no such file or directory".into() });
        }
    }
    out
}

fn read(path: &Path, errors: &mut Vec<LoadError>) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(s) => Some(s),
        Err(e) => {
            errors.push(LoadError::Io { path: path.to_path_buf(), message: e.to_string() });
            None
        }
    }
}

/// One YAML (or JSON) document of a file.
struct Doc<'a> {
    file: &'a Path,
    /// 1-based, 0 for JSON.
    index: usize,
    /// The file line of the document text's first line.
    first_line: usize,
    text: &'a str,
    value: serde_json::Value,
}

impl Doc<'_> {
    /// The origin of a byte offset in the document text.
    fn origin_at(&self, byte: usize) -> Origin {
        let (l, c) = Span::new(byte, byte).line_col(self.text);
        Origin::new(self.file, self.index, self.first_line + l - 1, c)
    }

    /// The origin of the document's first non-blank, non-comment line.
    fn start(&self) -> Origin {
        let mut off = 0;
        for line in self.text.split_inclusive('\n') {
            let t = line.trim();
            if !t.is_empty() && !t.starts_with('#') {
                return self.origin_at(off + (line.len() - line.trim_start().len()));
            }
            off += line.len();
        }
        Origin::new(self.file, self.index, self.first_line, 1)
    }

    /// The origin of the first occurrence of the mapping key `key` at or after `from`.
    fn key_origin(&self, key: &str, from: usize) -> Option<(usize, Origin)> {
        find_key(self.text, key, from).map(|b| (b, self.origin_at(b)))
    }
}

/// Where the mapping key `key` (`key:`, `"key":`, `'key':`) first occurs at or after `from`.
fn find_key(text: &str, key: &str, from: usize) -> Option<usize> {
    let mut best: Option<usize> = None;
    for pat in [format!("{key}:"), format!("\"{key}\":"), format!("\"{key}\" :"), format!("'{key}':")] {
        let mut at = from.min(text.len());
        while let Some(i) = text.get(at..).and_then(|t| t.find(&pat)) {
            let b = at + i;
            let before = text[..b].chars().next_back();
            let ok = before.is_none_or(|c| c.is_whitespace() || matches!(c, '{' | ',' | '-' | '['));
            if ok {
                best = Some(best.map_or(b, |x| x.min(b)));
                break;
            }
            at = b + 1;
        }
    }
    best
}

/// Split a YAML stream into documents at `---` lines. Returns (index, first line, text).
fn split_yaml(text: &str) -> Vec<(usize, usize, &str)> {
    // (start, end, first line, preceded by a `---` marker)
    let mut ranges: Vec<(usize, usize, usize, bool)> = Vec::new();
    let (mut start, mut start_line, mut line_no, mut off, mut seen_marker) = (0usize, 1usize, 1usize, 0usize, false);
    for line in text.split_inclusive('\n') {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") || t == "..." {
            ranges.push((start, off, start_line, seen_marker));
            seen_marker = t != "...";
            start = off + line.len();
            start_line = line_no + 1;
        }
        off += line.len();
        line_no += 1;
    }
    ranges.push((start, text.len(), start_line, seen_marker));
    let mut docs = Vec::new();
    let mut index = 0usize;
    for (s, e, l, marker) in ranges {
        let chunk = &text[s..e];
        let blank = chunk.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#')
        });
        // A blank chunk before the first `---` is not a document; later ones are (empty).
        if blank && !marker {
            continue;
        }
        index += 1;
        if !blank {
            docs.push((index, l, chunk));
        }
    }
    docs
}

/// Parse a file into documents (YAML: split at `---`; JSON: one document).
fn documents<'a>(file: &'a Path, text: &'a str, errors: &mut Vec<LoadError>) -> Vec<Doc<'a>> {
    let mut out = Vec::new();
    if has_ext(file, &["json"]) {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(value) => out.push(Doc { file, index: 0, first_line: 1, text, value }),
            Err(e) => errors.push(LoadError::Syntax {
                origin: Origin::new(file, 0, e.line().max(1), e.column().max(1)),
                format: "JSON",
                message: e.to_string(),
            }),
        }
        return out;
    }
    for (index, first_line, chunk) in split_yaml(text) {
        match serde_norway::from_str::<serde_json::Value>(chunk) {
            Ok(serde_json::Value::Null) => {}
            Ok(value) => out.push(Doc { file, index, first_line, text: chunk, value }),
            Err(e) => {
                let (l, c) = e.location().map_or((1, 1), |loc| (loc.line(), loc.column()));
                let mut message = e.to_string();
                // serde_norway appends " at line L column C" relative to the document.
                if let Some(i) = message.find(" at line ") {
                    message.truncate(i);
                }
                errors.push(LoadError::Syntax {
                    origin: Origin::new(file, index, first_line + l - 1, c),
                    format: "YAML",
                    message,
                });
            }
        }
    }
    out
}

/// `(apiVersion, kind)` of a manifest document.
fn manifest_kind(v: &serde_json::Value) -> Option<(&str, &str)> {
    let api = v.get("apiVersion")?.as_str()?;
    let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    Some((api, kind))
}

/// Check a congress manifest's apiVersion; `Ok(false)` for documents that are not ours.
fn is_congress(doc: &Doc, errors: &mut Vec<LoadError>) -> Option<String> {
    let (api, kind) = manifest_kind(&doc.value)?;
    if !api.starts_with(&format!("{GROUP}/")) {
        return None;
    }
    if api != API_VERSION {
        let origin = doc.key_origin("apiVersion", 0).map_or_else(|| doc.start(), |(_, o)| o);
        errors.push(LoadError::Manifest {
            origin,
            message: format!("unsupported apiVersion `{api}` (this version of congress reads `{API_VERSION}`)"),
        });
        return None;
    }
    Some(kind.to_string())
}

fn metadata_name(doc: &Doc, errors: &mut Vec<LoadError>) -> Option<String> {
    match doc.value.get("metadata").and_then(|m| m.get("name")).and_then(|n| n.as_str()) {
        Some(n) if !n.is_empty() => Some(n.to_string()),
        _ => {
            errors.push(LoadError::Manifest { origin: doc.start(), message: "manifest has no `metadata.name`".into() });
            None
        }
    }
}

/// Deserialize a manifest's spec, reporting unknown fields (Kubernetes would prune them
/// silently; here they are almost always typos).
fn spec_of<T: serde::de::DeserializeOwned>(
    doc: &Doc,
    kind: &str,
    known: &[&str],
    errors: &mut Vec<LoadError>,
) -> Option<T> {
    let spec = doc.value.get("spec").cloned().unwrap_or(serde_json::Value::Object(Default::default()));
    let spec_at = doc.key_origin("spec", 0).map_or(0, |(b, _)| b);
    if let Some(map) = spec.as_object() {
        for k in map.keys() {
            if !known.contains(&k.as_str()) {
                let origin = doc.key_origin(k, spec_at).map_or_else(|| doc.start(), |(_, o)| o);
                errors.push(LoadError::Manifest {
                    origin,
                    message: format!("{kind}: unknown field `spec.{k}` (expected one of: {})", known.join(", ")),
                });
                return None;
            }
        }
    } else {
        errors.push(LoadError::Manifest { origin: doc.start(), message: format!("{kind}: `spec` must be a mapping") });
        return None;
    }
    match serde_json::from_value::<T>(spec) {
        Ok(s) => Some(s),
        Err(e) => {
            errors.push(LoadError::Manifest { origin: doc.start(), message: format!("{kind}: invalid spec: {e}") });
            None
        }
    }
}

// ---------------------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------------------

/// Statements of one `rules:` list, located in the document.
fn rule_statements(doc: &Doc, rules: &[RuleEntry], from: usize) -> Vec<StatementSource> {
    let mut cursor = from;
    let mut out = Vec::new();
    for entry in rules {
        let text = entry.rule.trim().to_string();
        let first = text.lines().next().unwrap_or("").trim_end();
        let origin = match (!first.is_empty()).then(|| doc.text.get(cursor..).and_then(|t| t.find(first))).flatten() {
            Some(i) => {
                cursor += i + first.len();
                doc.origin_at(cursor - first.len())
            }
            None => doc.start(),
        };
        out.push(StatementSource { name: entry.name.clone(), comment: entry.comment.clone(), text, origin });
    }
    out
}

/// Split a block of statements into one [`StatementSource`] per statement; `at` is where
/// the block's first character is in the file (block scalars keep the text verbatim apart
/// from a common indentation, so relative positions shift by `at.col - 1`). A block that
/// does not parse stays whole, so the engine reports all of its syntax errors at once.
fn split_block(block: &str, at: &Origin) -> Vec<StatementSource> {
    let lead = block.len() - block.trim_start().len();
    let text = block.trim();
    if text.is_empty() {
        return Vec::new();
    }
    let shift = |byte: usize| -> Origin {
        let (l, c) = Span::new(byte, byte).line_col(block);
        let col = if l == 1 { at.col + c - 1 } else { at.col.saturating_sub(1) + c };
        Origin { file: at.file.clone(), document: at.document, line: at.line + l - 1, col }
    };
    let parsed = syntax::parse(text);
    if !parsed.is_ok() || parsed.rules.is_empty() {
        return vec![StatementSource { name: None, comment: None, text: text.to_string(), origin: shift(lead) }];
    }
    let mut out = Vec::new();
    let mut prev_end = 0usize;
    for r in &parsed.rules {
        let (s, e) = (r.span.start as usize, r.span.end as usize);
        // Comment lines right before a statement become its comment.
        let between = &text[prev_end.min(s)..s];
        let comment: Vec<&str> = between
            .lines()
            .map(str::trim)
            .filter_map(|l| l.strip_prefix("//").or_else(|| l.strip_prefix('#')))
            .map(str::trim)
            .collect();
        out.push(StatementSource {
            name: None,
            comment: (!comment.is_empty()).then(|| comment.join("\n")),
            text: text[s..e].to_string(),
            origin: shift(lead + s),
        });
        prev_end = e;
    }
    out
}

/// Locate a `text:` block in the document: where its first non-blank line starts.
fn block_origin(doc: &Doc, text: &str, from: usize) -> Origin {
    let first = text.trim().lines().next().unwrap_or("").trim_end();
    match (!first.is_empty()).then(|| doc.text.get(from..).and_then(|t| t.find(first))).flatten() {
        Some(i) => {
            // Origin of the trimmed text; `split_block` expects the origin of the block
            // itself, so step back over the leading whitespace it will skip.
            doc.origin_at(from + i)
        }
        None => doc.start(),
    }
}

fn statements_of(doc: &Doc, rules: &Option<Vec<RuleEntry>>, text: &Option<String>) -> Vec<StatementSource> {
    let spec_at = doc.key_origin("spec", 0).map_or(0, |(b, _)| b);
    if let Some(rules) = rules {
        let from = doc.key_origin("rules", spec_at).map_or(spec_at, |(b, _)| b);
        return rule_statements(doc, rules, from);
    }
    if let Some(text) = text {
        let from = doc.key_origin("text", spec_at).map_or(spec_at, |(b, _)| b);
        let at = block_origin(doc, text, from);
        return split_block(text.trim_start(), &at);
    }
    Vec::new()
}

const POLICY_FIELDS: &[&str] = &["rules", "text", "kind", "enforcement", "libraryRef", "description", "report"];
const LIBRARY_FIELDS: &[&str] = &["description", "kind", "rules", "text", "dependsOn"];
const DATASOURCE_FIELDS: &[&str] = &["driver", "tables", "pollIntervalSeconds", "config", "kubernetes"];

fn policy_from_doc(doc: &Doc, kind: &str, errors: &mut Vec<LoadError>) -> Option<PolicySource> {
    let name = metadata_name(doc, errors)?;
    let origin = doc.start();
    match kind {
        "Policy" => {
            let spec: PolicySpec = spec_of(doc, kind, POLICY_FIELDS, errors)?;
            if let Err(m) = spec.validate() {
                errors.push(LoadError::Manifest { origin, message: format!("Policy {name}: {m}") });
                return None;
            }
            Some(PolicySource {
                statements: statements_of(doc, &spec.rules, &spec.text),
                kind: spec.policy_kind(),
                enforcement: spec.enforcement,
                library_ref: spec.library_ref.clone(),
                library: false,
                name,
                origin,
            })
        }
        _ => {
            let spec: LibraryPolicySpec = spec_of(doc, kind, LIBRARY_FIELDS, errors)?;
            if let Err(m) = spec.validate() {
                errors.push(LoadError::Manifest { origin, message: format!("LibraryPolicy {name}: {m}") });
                return None;
            }
            Some(PolicySource {
                statements: statements_of(doc, &spec.rules, &spec.text),
                kind: spec.kind.unwrap_or_default().into(),
                enforcement: Enforcement::Monitor,
                library_ref: None,
                library: true,
                name,
                origin,
            })
        }
    }
}

/// Read every policy source under `paths`: `Policy` and `LibraryPolicy` manifests and
/// `.congress` files. Other documents are skipped. A `Policy` with `libraryRef` gets the
/// statements of the `LibraryPolicy` it names.
pub fn load_policies(paths: &[PathBuf]) -> Result<Vec<PolicySource>, Vec<LoadError>> {
    let mut errors = Vec::new();
    let files = collect_files(paths, POLICY_EXTS, &mut errors);
    let mut out: Vec<PolicySource> = Vec::new();
    for file in &files {
        let Some(text) = read(file, &mut errors) else { continue };
        if has_ext(file, &["congress"]) {
            let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("policy").to_string();
            let at = Origin::new(file, 0, 1, 1);
            out.push(PolicySource {
                name,
                kind: PolicyKind::Nonrecursive,
                enforcement: Enforcement::Monitor,
                statements: split_block(&text, &at),
                library_ref: None,
                library: false,
                origin: at,
            });
            continue;
        }
        for doc in documents(file, &text, &mut errors) {
            let Some(kind) = is_congress(&doc, &mut errors) else { continue };
            if kind == "Policy" || kind == "LibraryPolicy" {
                if let Some(p) = policy_from_doc(&doc, &kind, &mut errors) {
                    out.push(p);
                }
            } else if !matches!(kind.as_str(), "Datasource" | "ActionRequest") {
                errors.push(LoadError::Manifest {
                    origin: doc.start(),
                    message: format!("unknown kind `{kind}` for {API_VERSION}"),
                });
            }
        }
    }
    // Duplicates, then library references.
    let mut seen: HashMap<(bool, String), Origin> = HashMap::new();
    for p in &out {
        if let Some(first) = seen.get(&(p.library, p.name.clone())) {
            let what = if p.library { "LibraryPolicy" } else { "policy" };
            errors.push(LoadError::Manifest {
                origin: p.origin.clone(),
                message: format!("{what} `{}` is defined twice (first at {first})", p.name),
            });
        } else {
            seen.insert((p.library, p.name.clone()), p.origin.clone());
        }
    }
    let libraries: HashMap<String, PolicySource> =
        out.iter().filter(|p| p.library).map(|p| (p.name.clone(), p.clone())).collect();
    for p in out.iter_mut().filter(|p| !p.library) {
        let Some(lib) = &p.library_ref else { continue };
        match libraries.get(lib) {
            Some(l) => {
                p.statements = l.statements.clone();
                p.kind = l.kind;
            }
            None => {
                let origin = library_ref_origin(&p.origin).unwrap_or_else(|| p.origin.clone());
                errors.push(LoadError::Manifest {
                    origin,
                    message: format!(
                        "policy `{}`: libraryRef `{lib}` names no LibraryPolicy among the loaded files",
                        p.name
                    ),
                });
            }
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// The position of `libraryRef:` in the manifest that starts at `origin`.
fn library_ref_origin(origin: &Origin) -> Option<Origin> {
    let text = std::fs::read_to_string(&origin.file).ok()?;
    let start = line_offset(&text, origin.line)?;
    let b = find_key(&text, "libraryRef", start)?;
    let (l, c) = Span::new(b, b).line_col(&text);
    Some(Origin { line: l, col: c, ..origin.clone() })
}

/// Byte offset of the start of 1-based `line`.
fn line_offset(text: &str, line: usize) -> Option<usize> {
    if line <= 1 {
        return Some(0);
    }
    text.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// A fixture document waiting for every schema to be known.
struct PendingTable {
    datasource: String,
    table: String,
    rows: serde_json::Value,
    origin: Origin,
    /// Byte offset of the table key in `doc_text`, and the document.
    key_at: usize,
    doc_text: String,
    first_line: usize,
}

/// Read every data file under `paths`: fixtures (`tables:`), schema files (`schema:`) and
/// `Datasource` manifests. Rows are checked against the schemas.
pub fn load_fixtures(paths: &[PathBuf]) -> Result<FixtureSet, Vec<LoadError>> {
    load_fixtures_with_schemas(paths, BTreeMap::new())
}

/// [`load_fixtures`], with schemas known beforehand (e.g. from [`load_schemas`] over the
/// policy paths); the data files may define more.
pub fn load_fixtures_with_schemas(
    paths: &[PathBuf],
    schemas: BTreeMap<String, Schema>,
) -> Result<FixtureSet, Vec<LoadError>> {
    let mut errors = Vec::new();
    let files = collect_files(paths, DATA_EXTS, &mut errors);
    let mut schema_origin: HashMap<String, Origin> =
        schemas.keys().map(|k| (k.clone(), Origin::new(format!("<schema of {k}>"), 0, 1, 1))).collect();
    let mut set = FixtureSet { schemas, tables: Vec::new() };
    let mut pending: Vec<PendingTable> = Vec::new();
    for file in &files {
        let Some(text) = read(file, &mut errors) else { continue };
        for doc in documents(file, &text, &mut errors) {
            if manifest_kind(&doc.value).is_some() {
                if is_congress(&doc, &mut errors).as_deref() == Some("Datasource") {
                    let Some(name) = metadata_name(&doc, &mut errors) else { continue };
                    let Some(spec) = spec_of::<DatasourceSpec>(&doc, "Datasource", DATASOURCE_FIELDS, &mut errors)
                    else {
                        continue;
                    };
                    add_schema(&mut set, &mut schema_origin, &name, spec.schema(), doc.start(), &mut errors);
                }
                continue;
            }
            let Some(map) = doc.value.as_object() else {
                errors.push(LoadError::Fixture {
                    origin: doc.start(),
                    message: "not a fixture: expected a mapping with `tables` or `schema`".into(),
                });
                continue;
            };
            for k in map.keys() {
                if !matches!(k.as_str(), "datasource" | "tables" | "schema") {
                    let origin = doc.key_origin(k, 0).map_or_else(|| doc.start(), |(_, o)| o);
                    errors.push(LoadError::Fixture {
                        origin,
                        message: format!("unknown key `{k}` in a fixture (expected `datasource`, `tables`, `schema`)"),
                    });
                }
            }
            if !map.contains_key("tables") && !map.contains_key("schema") {
                errors.push(LoadError::Fixture {
                    origin: doc.start(),
                    message: "not a fixture: expected `tables` or `schema`".into(),
                });
                continue;
            }
            if let Some(schema) = map.get("schema") {
                schema_doc(&doc, schema, &mut set, &mut schema_origin, &mut errors);
            }
            let default_ds = match map.get("datasource") {
                None => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(_) => {
                    let origin = doc.key_origin("datasource", 0).map_or_else(|| doc.start(), |(_, o)| o);
                    errors.push(LoadError::Fixture { origin, message: "`datasource` must be a string".into() });
                    continue;
                }
            };
            let Some(tables) = map.get("tables") else { continue };
            let tables_at = doc.key_origin("tables", 0).map_or(0, |(b, _)| b);
            let Some(tables) = tables.as_object() else {
                errors.push(LoadError::Fixture {
                    origin: doc.origin_at(tables_at),
                    message: "`tables` must map table names to lists of rows".into(),
                });
                continue;
            };
            let mut cursor = tables_at;
            for (key, rows) in tables {
                let key_at = find_key(doc.text, key, cursor).unwrap_or(tables_at);
                cursor = key_at.max(cursor);
                let origin = doc.origin_at(key_at);
                let (ds, table) = match (key.split_once(':'), &default_ds) {
                    (Some((d, t)), _) => (d.to_string(), t.to_string()),
                    (None, Some(d)) => (d.clone(), key.clone()),
                    (None, None) => {
                        errors.push(LoadError::Fixture {
                            origin,
                            message: format!(
                                "table `{key}` has no datasource: write `DATASOURCE:{key}` or add `datasource: NAME`"
                            ),
                        });
                        continue;
                    }
                };
                pending.push(PendingTable {
                    datasource: ds,
                    table,
                    rows: rows.clone(),
                    origin,
                    key_at,
                    doc_text: doc.text.to_string(),
                    first_line: doc.first_line,
                });
            }
        }
    }
    for p in pending {
        if let Some(t) = convert_table(p, &set.schemas, &mut errors) {
            set.tables.push(t);
        }
    }
    if errors.is_empty() { Ok(set) } else { Err(errors) }
}

/// The schemas of the `Datasource` manifests under `paths` (other documents are ignored):
/// policy directories often hold the Datasource manifests their rules read.
pub fn load_schemas(paths: &[PathBuf]) -> Result<BTreeMap<String, Schema>, Vec<LoadError>> {
    let mut errors = Vec::new();
    let files = collect_files(paths, DATA_EXTS, &mut errors);
    let mut set = FixtureSet::default();
    let mut origins = HashMap::new();
    for file in &files {
        let Some(text) = read(file, &mut errors) else { continue };
        for doc in documents(file, &text, &mut errors) {
            if manifest_kind(&doc.value).is_some_and(|(_, k)| k == "Datasource")
                && is_congress(&doc, &mut errors).is_some()
                && let Some(name) = metadata_name(&doc, &mut errors)
                && let Some(spec) = spec_of::<DatasourceSpec>(&doc, "Datasource", DATASOURCE_FIELDS, &mut errors)
            {
                add_schema(&mut set, &mut origins, &name, spec.schema(), doc.start(), &mut errors);
            }
        }
    }
    if errors.is_empty() { Ok(set.schemas) } else { Err(errors) }
}

fn add_schema(
    set: &mut FixtureSet,
    origins: &mut HashMap<String, Origin>,
    name: &str,
    schema: Schema,
    origin: Origin,
    errors: &mut Vec<LoadError>,
) {
    if name.is_empty() || name.contains(':') || name == "builtin" {
        errors.push(LoadError::Fixture { origin, message: format!("invalid datasource name `{name}`") });
        return;
    }
    if let Some(first) = origins.get(name) {
        if set.schemas.get(name) != Some(&schema) {
            errors.push(LoadError::Fixture {
                origin,
                message: format!("datasource `{name}` has a second, different schema (first at {first})"),
            });
        }
        return;
    }
    origins.insert(name.to_string(), origin);
    set.schemas.insert(name.to_string(), schema);
}

/// `schema: {DATASOURCE: {TABLE: [COLUMN, ...]}}`.
fn schema_doc(
    doc: &Doc,
    schema: &serde_json::Value,
    set: &mut FixtureSet,
    origins: &mut HashMap<String, Origin>,
    errors: &mut Vec<LoadError>,
) {
    let at = doc.key_origin("schema", 0).map_or(0, |(b, _)| b);
    let bad = |errors: &mut Vec<LoadError>, b: usize, m: String| {
        errors.push(LoadError::Fixture { origin: doc.origin_at(b), message: m });
    };
    let Some(dss) = schema.as_object() else {
        return bad(errors, at, "`schema` must map datasource names to {table: [columns]}".into());
    };
    for (ds, tables) in dss {
        let ds_at = find_key(doc.text, ds, at).unwrap_or(at);
        let Some(tables) = tables.as_object() else {
            bad(errors, ds_at, format!("schema of `{ds}` must map table names to lists of columns"));
            continue;
        };
        let mut s = Schema::new();
        for (t, cols) in tables {
            let cols: Option<Vec<String>> =
                cols.as_array().and_then(|a| a.iter().map(|c| c.as_str().map(str::to_string)).collect());
            match cols {
                Some(c) => {
                    s.insert(t.clone(), c);
                }
                None => {
                    let t_at = find_key(doc.text, t, ds_at).unwrap_or(ds_at);
                    bad(errors, t_at, format!("columns of `{ds}:{t}` must be a list of names"));
                }
            }
        }
        add_schema(set, origins, ds, s, doc.origin_at(ds_at), errors);
    }
}

/// Line starts (byte offsets) of rows under a table key: lines beginning with `-`, `[` or
/// `{` after the key, at the indentation of the first one (best effort; JSON and YAML).
fn row_offsets(text: &str, key_at: usize) -> Vec<usize> {
    let line_start = text[..key_at].rfind('\n').map_or(0, |i| i + 1);
    let key_indent = key_at - line_start;
    let mut out = Vec::new();
    let mut row_indent: Option<usize> = None;
    let key_line_end = text[key_at..].find('\n').map_or(text.len(), |i| key_at + i + 1);
    // Flow rows on the key's own line (`servers: [[a, b]]`): one offset for all.
    let rest = text[key_at..key_line_end].trim_end();
    if rest.ends_with(']') || rest.ends_with('}') {
        return vec![key_at];
    }
    let mut off = key_line_end;
    for line in text[key_line_end..].split_inclusive('\n') {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        if body.trim().is_empty() || body.starts_with('#') {
            off += line.len();
            continue;
        }
        let starter = body.starts_with('-') || body.starts_with('[') || body.starts_with('{');
        match row_indent {
            None if starter && indent >= key_indent => {
                row_indent = Some(indent);
                out.push(off + indent);
            }
            Some(ri) if indent == ri && starter => out.push(off + indent),
            Some(ri) if indent < ri && !(body.starts_with(']') || body.starts_with('}')) => break,
            None if indent <= key_indent => break,
            _ => {}
        }
        off += line.len();
    }
    out
}

fn convert_table(
    p: PendingTable,
    schemas: &BTreeMap<String, Schema>,
    errors: &mut Vec<LoadError>,
) -> Option<TableFixture> {
    let PendingTable { datasource, table, rows, origin, key_at, doc_text, first_line } = p;
    let at = |b: usize| {
        let (l, c) = Span::new(b, b).line_col(&doc_text);
        Origin { line: first_line + l - 1, col: c, ..origin.clone() }
    };
    let Some(schema) = schemas.get(&datasource) else {
        errors.push(LoadError::Fixture {
            origin,
            message: format!(
                "no schema for datasource `{datasource}`: add a Datasource manifest or a schema file to the data files"
            ),
        });
        return None;
    };
    let Some(columns) = schema.get(&table) else {
        let known: Vec<&str> = schema.keys().map(String::as_str).collect();
        errors.push(LoadError::Fixture {
            origin,
            message: format!(
                "unknown table `{datasource}:{table}` (datasource `{datasource}` has: {})",
                if known.is_empty() { "no tables".to_string() } else { known.join(", ") }
            ),
        });
        return None;
    };
    let rows = match rows {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::Array(a) => a,
        _ => {
            errors
                .push(LoadError::Fixture { origin, message: format!("rows of `{datasource}:{table}` must be a list") });
            return None;
        }
    };
    let offsets = row_offsets(&doc_text, key_at);
    let row_at = |i: usize| offsets.get(i).or(offsets.last()).copied().unwrap_or(key_at);
    let n_err = errors.len();
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let here = row_at(i);
        let name = format!("`{datasource}:{table}` row {}", i + 1);
        let mut values = Vec::with_capacity(columns.len());
        let mut bad = |b: usize, m: String| errors.push(LoadError::Fixture { origin: at(b), message: m });
        match row {
            serde_json::Value::Array(vals) => {
                if vals.len() != columns.len() {
                    bad(
                        here,
                        format!(
                            "{name} has {} values but the table has {} columns ({})",
                            vals.len(),
                            columns.len(),
                            columns.join(", ")
                        ),
                    );
                    continue;
                }
                for (c, v) in columns.iter().zip(vals) {
                    match scalar(v) {
                        Some(v) => values.push(v),
                        None => bad(here, format!("{name}, column `{c}`: nested value {v} (only scalars are allowed)")),
                    }
                }
            }
            serde_json::Value::Object(obj) => {
                let next = row_at(i + 1);
                let end = if next > here { next } else { doc_text.len() };
                for k in obj.keys() {
                    if !columns.contains(k) {
                        let b = find_key(&doc_text[..end], k, here).unwrap_or(here);
                        bad(b, format!("{name}: unknown column `{k}` (columns: {})", columns.join(", ")));
                    }
                }
                for c in columns {
                    match obj.get(c) {
                        None => values.push(Value::str("None")),
                        Some(v) => match scalar(v) {
                            Some(v) => values.push(v),
                            None => {
                                let b = find_key(&doc_text[..end], c, here).unwrap_or(here);
                                bad(b, format!("{name}, column `{c}`: nested value {v} (only scalars are allowed)"))
                            }
                        },
                    }
                }
            }
            other => {
                bad(here, format!("{name}: a row must be a list of values or a mapping of columns, not {other}"));
                continue;
            }
        }
        out.push(values);
    }
    if errors.len() > n_err {
        return None;
    }
    Some(TableFixture { datasource, table, rows: out, origin })
}

/// A scalar JSON value as Congress converts it; `None` for arrays and objects.
fn scalar(v: &serde_json::Value) -> Option<Value> {
    match v {
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => None,
        v => Some(Value::from_json_congress(v)),
    }
}

// ---------------------------------------------------------------------------------------
// Building an engine
// ---------------------------------------------------------------------------------------

/// Rows loaded between progress updates are grouped per table; the bar appears only when
/// loading has taken this long and stderr is a terminal.
const PROGRESS_AFTER: Duration = Duration::from_secs(2);

/// Build an engine: datasources from the fixture schemas, fixture rows (one transaction
/// per table), then every non-library policy with all its statements in one transaction
/// (so references across policies resolve in any order). On failure every problem is
/// reported, each at its statement's place in its file.
pub fn build(policies: &[PolicySource], fixtures: &FixtureSet, progress: bool) -> Result<Loaded, Vec<LoadError>> {
    let mut engine = Engine::with_default_policies();
    let mut actions = Vec::new();
    let mut errors = Vec::new();

    // Datasources.
    if !fixtures.schemas.is_empty() {
        let mut txn = engine.transaction();
        for (name, schema) in &fixtures.schemas {
            txn.create_datasource(name, schema.clone());
        }
        if let Err(e) = txn.commit() {
            // Attribute: one at a time.
            for (name, schema) in &fixtures.schemas {
                if let Err(e) = engine.create_datasource(name, schema.clone()) {
                    let origin = fixtures
                        .tables
                        .iter()
                        .find(|t| &t.datasource == name)
                        .map_or_else(|| Origin::new(name, 0, 1, 1), |t| t.origin.clone());
                    errors.push(LoadError::Engine { origin, message: format!("datasource `{name}`: {e}") });
                }
            }
            if errors.is_empty() {
                errors.push(LoadError::Engine { origin: Origin::default(), message: e.to_string() });
            }
            return Err(errors);
        }
    }

    // Fixture rows, grouped per table in first-seen order.
    let mut groups: Vec<((&str, &str), Vec<&TableFixture>)> = Vec::new();
    for t in &fixtures.tables {
        let key = (t.datasource.as_str(), t.table.as_str());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(t),
            None => groups.push((key, vec![t])),
        }
    }
    let total: u64 = fixtures.tables.iter().map(|t| t.rows.len() as u64).sum();
    let started = Instant::now();
    let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::hidden());
    let show = progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut shown = false;
    for ((ds, table), parts) in groups {
        if show && !shown && started.elapsed() > PROGRESS_AFTER {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("loading fixtures {bar:40} {pos}/{len} rows {msg}")
            {
                bar.set_style(style);
            }
            shown = true;
        }
        bar.set_message(format!("{ds}:{table}"));
        let rows: Vec<Vec<Value>> = parts.iter().flat_map(|p| p.rows.iter().cloned()).collect();
        let n = rows.len() as u64;
        let mut txn = engine.transaction();
        txn.report_rows(false).insert_rows(ds, table, rows);
        match txn.commit() {
            Ok(c) => actions.extend(c.actions),
            Err(e) => errors.push(LoadError::Fixture { origin: parts[0].origin.clone(), message: e.to_string() }),
        }
        bar.inc(n);
    }
    bar.finish_and_clear();
    if !errors.is_empty() {
        return Err(errors);
    }

    // Policies.
    let active: Vec<&PolicySource> = policies.iter().filter(|p| !p.library).collect();
    for p in &active {
        if fixtures.schemas.contains_key(&p.name) {
            errors.push(LoadError::Manifest {
                origin: p.origin.clone(),
                message: format!("policy `{}` has the name of a datasource", p.name),
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let before = engine.clone();
    let mut txn = engine.transaction();
    for p in &active {
        if before.policy_kind(&p.name).is_some() {
            // `classification` and `action` exist (empty) in a fresh engine.
            txn.delete_policy(&p.name);
        }
        txn.create_policy(&p.name, p.kind);
    }
    for p in &active {
        for st in &p.statements {
            txn.insert_rule(&p.name, &st.text);
        }
    }
    match txn.commit() {
        Ok(c) => actions.extend(c.actions),
        Err(e) => return Err(diagnose(before, &active, e)),
    }
    Ok(Loaded { engine, policies: policies.to_vec(), actions })
}

/// The policy transaction failed with `first`: replay it one statement at a time on a
/// copy of the engine to find and place every problem.
fn diagnose(mut engine: Engine, active: &[&PolicySource], first: EngineError) -> Vec<LoadError> {
    let mut errors = Vec::new();
    let mut files = FileCache::default();
    for p in active {
        let exists = engine.policy_kind(&p.name).is_some();
        let mut txn = engine.transaction();
        if exists {
            txn.delete_policy(&p.name);
        }
        txn.create_policy(&p.name, p.kind);
        if let Err(e) = txn.commit() {
            errors.push(LoadError::Engine { origin: p.origin.clone(), message: format!("policy `{}`: {e}", p.name) });
        }
    }
    for p in active {
        if engine.policy_kind(&p.name).is_none() {
            continue;
        }
        for st in &p.statements {
            if let Err(e) = engine.insert_rule(&p.name, &st.text) {
                errors.extend(statement_errors(&p.name, st, &e, &mut files));
            }
        }
    }
    if errors.is_empty() {
        // Order-dependent failure: place the original error as well as possible.
        let st = first.diagnostics().and_then(|(src, _)| {
            active.iter().find_map(|p| {
                p.statements
                    .iter()
                    .find(|s| s.text == src || canonical(&s.text).as_deref() == Some(src))
                    .map(|s| (*p, s))
            })
        });
        match st {
            Some((p, s)) => errors.extend(statement_errors(&p.name, s, &first, &mut files)),
            None => errors.push(LoadError::Engine {
                origin: active.first().map(|p| p.origin.clone()).unwrap_or_default(),
                message: first.to_string(),
            }),
        }
    }
    errors
}

fn canonical(text: &str) -> Option<String> {
    syntax::parse_one(text).ok().map(|r| r.to_string())
}

/// File contents read on demand for rendering snippets.
#[derive(Default)]
struct FileCache(HashMap<PathBuf, Option<String>>);

impl FileCache {
    fn get(&mut self, path: &Path) -> Option<&str> {
        self.0.entry(path.to_path_buf()).or_insert_with(|| std::fs::read_to_string(path).ok()).as_deref()
    }
}

/// Map the engine's error for one statement to load errors at the statement's place in
/// its file, each with a snippet and a caret.
fn statement_errors(policy: &str, st: &StatementSource, e: &EngineError, files: &mut FileCache) -> Vec<LoadError> {
    let diags: Vec<(Diagnostic, bool)> = match e.diagnostics() {
        Some((src, diags)) => {
            let same = src == st.text;
            diags
                .iter()
                .filter(|d| d.is_error())
                .map(|d| {
                    if same {
                        (d.clone(), true)
                    } else {
                        let mut d = d.clone();
                        d.span = Span::new(0, st.text.lines().next().unwrap_or("").len());
                        (d, true)
                    }
                })
                .collect()
        }
        None => {
            let len = st.text.lines().next().unwrap_or("").len();
            vec![(Diagnostic::error("policy", e.to_string(), Span::new(0, len)), true)]
        }
    };
    let diags: Vec<(Diagnostic, bool)> = if diags.is_empty() {
        let len = st.text.lines().next().unwrap_or("").len();
        vec![(Diagnostic::error("policy", e.to_string(), Span::new(0, len)), true)]
    } else {
        diags
    };
    diags.into_iter().map(|(d, _)| place(policy, st, d, files)).collect()
}

/// One diagnostic (span relative to the statement text) rendered against the file.
fn place(policy: &str, st: &StatementSource, mut d: Diagnostic, files: &mut FileCache) -> LoadError {
    let (l, c) = d.span.line_col(&st.text);
    let line = st.origin.line + l - 1;
    let col = st.origin.col + c - 1;
    let origin = Origin { line, col, ..st.origin.clone() };
    let rule_note = match &st.name {
        Some(n) => format!("{n}: {}", st.text),
        None => st.text.clone(),
    };
    d.rule = Some(rule_note);
    let file_name = st.origin.file.display().to_string();
    let len = (d.span.end - d.span.start) as usize;
    let snippet = match files.get(&st.origin.file) {
        Some(text) => match line_offset(text, line) {
            Some(ls) => {
                let line_text = &text[ls..text[ls..].find('\n').map_or(text.len(), |i| ls + i)];
                let start = ls + line_text.char_indices().nth(col - 1).map_or(line_text.len(), |(i, _)| i);
                let end = (start + len).min(ls + line_text.len()).max(start);
                let mut fd = d.clone();
                fd.span = Span::new(start, end);
                fd.render(&file_name, text)
            }
            None => d.render(&file_name, &st.text),
        },
        None => d.render(&file_name, &st.text),
    };
    LoadError::Policy { origin, policy: policy.to_string(), message: d.message.clone(), snippet }
}

#[cfg(test)]
mod tests;
