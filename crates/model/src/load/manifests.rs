//! Policy sources: `Policy` and `LibraryPolicy` manifests and `.congress` files. Their kind
//! and statements are what [`crate::loader`] makes of their specs (the operator's loader);
//! this module reads the files, resolves `libraryRef` among them and finds where each
//! statement is in its file.

use super::documents::{
    Doc, POLICY_EXTS, collect_files, documents, find_key, has_ext, is_congress, line_offset, metadata_name, read,
    spec_of,
};
use super::{LoadError, Origin, PolicySource};
use crate::engine_name;
use crate::loader::{self, Part, PolicyStatements, SpecError, Statement};
use crate::resources::{API_VERSION, Enforcement, LibraryPolicySpec, PolicySpec, RuleEntry};
use congress_engine::syntax::Span;
use std::collections::HashMap;
use std::path::PathBuf;

/// Where a spec's statements are in their file.
#[derive(Clone, Debug)]
enum Placement {
    /// Per `rules[]` entry: where its trimmed text starts.
    Rules(Vec<Origin>),
    /// A text block: `origin.line` is the file line of the block's first line, and a column
    /// in the block is `indent` columns further right in the file.
    Text { origin: Origin, indent: usize },
}

impl Placement {
    /// Where each statement's text starts in the file (`fallback` when it cannot be found).
    fn place(&self, statements: &mut [Statement], fallback: &Origin) {
        for st in statements {
            let origin = match (self, st.part) {
                (Placement::Rules(entries), Part::Rule(i)) => entries.get(i).cloned(),
                (Placement::Text { origin, indent }, Part::Text) => {
                    Some(Origin { line: origin.line + st.line - 1, col: indent + st.column, ..origin.clone() })
                }
                _ => None,
            };
            st.origin = Some(origin.unwrap_or_else(|| fallback.clone()));
        }
    }
}

/// Where the statements of one `rules:` list start in the document (the first line of
/// each trimmed `rule`, searched in order from `from`).
fn rule_origins(doc: &Doc, rules: &[RuleEntry], from: usize) -> Vec<Origin> {
    let mut cursor = from;
    let mut out = Vec::new();
    for entry in rules {
        let first = entry.rule.trim().lines().next().unwrap_or("").trim_end();
        let origin = match (!first.is_empty()).then(|| doc.text.get(cursor..).and_then(|t| t.find(first))).flatten() {
            Some(i) => {
                cursor += i + first.len();
                doc.origin_at(cursor - first.len())
            }
            None => doc.start(),
        };
        out.push(origin);
    }
    out
}

/// Where a `text:` block is in the document: the file position of the block's first
/// non-blank character, found from `from`, tells where its line 1 is and how far it is
/// indented (block scalars keep the text verbatim apart from a common indentation).
fn text_placement(doc: &Doc, text: &str, from: usize) -> Placement {
    let first = text.trim().lines().next().unwrap_or("").trim_end();
    let at = match (!first.is_empty()).then(|| doc.text.get(from..).and_then(|t| t.find(first))).flatten() {
        Some(i) => doc.origin_at(from + i),
        None => doc.start(),
    };
    let lead = text.len() - text.trim_start().len();
    let (l0, c0) = Span::new(lead, lead).line_col(text);
    let line = at.line.saturating_sub(l0 - 1).max(1);
    Placement::Text { origin: Origin { line, col: 1, ..at.clone() }, indent: at.col.saturating_sub(c0) }
}

fn placement(doc: &Doc, rules: &Option<Vec<RuleEntry>>, text: &Option<String>) -> Placement {
    let spec_at = doc.key_origin("spec", 0).map_or(0, |(b, _)| b);
    if let Some(rules) = rules {
        let from = doc.key_origin("rules", spec_at).map_or(spec_at, |(b, _)| b);
        return Placement::Rules(rule_origins(doc, rules, from));
    }
    if let Some(text) = text {
        let from = doc.key_origin("text", spec_at).map_or(spec_at, |(b, _)| b);
        return text_placement(doc, text, from);
    }
    Placement::Rules(Vec::new())
}

/// What a policy source says, before its statements are made (a `Policy` may need a
/// `LibraryPolicy` from another file).
enum Spec {
    Policy(PolicySpec),
    Library(LibraryPolicySpec),
    /// A `.congress` file's text.
    File(String),
}

/// A policy source as read: its [`PolicySource`] (statements not yet made), its spec, and
/// where the spec's statements are in the file.
struct Read {
    source: PolicySource,
    spec: Spec,
    placement: Placement,
}

fn policy_from_doc(doc: &Doc, kind: &str, errors: &mut Vec<LoadError>) -> Option<Read> {
    let name = metadata_name(doc, errors)?;
    let origin = doc.start();
    match kind {
        "Policy" => {
            let spec: PolicySpec = spec_of(doc, kind, errors)?;
            if let Err(m) = spec.validate() {
                errors.push(LoadError::Manifest { origin, message: format!("Policy {name}: {m}") });
                return None;
            }
            Some(Read {
                source: PolicySource {
                    statements: Vec::new(),
                    kind: spec.kind.unwrap_or_default().into(),
                    enforcement: spec.enforcement,
                    admission: spec.admission.as_ref().map(|a| a.action).unwrap_or_default(),
                    library_ref: spec.library_ref.as_ref().map(|l| l.name.clone()),
                    library: false,
                    name: engine_name(&name),
                    resource: name,
                    origin,
                },
                placement: placement(doc, &spec.rules, &spec.text),
                spec: Spec::Policy(spec),
            })
        }
        _ => {
            let spec: LibraryPolicySpec = spec_of(doc, kind, errors)?;
            if let Err(m) = spec.validate() {
                errors.push(LoadError::Manifest { origin, message: format!("LibraryPolicy {name}: {m}") });
                return None;
            }
            Some(Read {
                source: PolicySource {
                    statements: Vec::new(),
                    kind: spec.kind.unwrap_or_default().into(),
                    enforcement: Enforcement::Monitor,
                    admission: Default::default(),
                    library_ref: None,
                    library: true,
                    name: engine_name(&name),
                    resource: name,
                    origin,
                },
                placement: placement(doc, &spec.rules, &spec.text),
                spec: Spec::Library(spec),
            })
        }
    }
}

/// Read every policy source under `paths`: `Policy` and `LibraryPolicy` manifests and
/// `.congress` files. Other documents are skipped. Kind and statements are the loader's
/// ([`loader::statements_from_spec`]): a `Policy` with `libraryRef` gets the statements of
/// the `LibraryPolicy` whose `metadata.name` it is (labelled `LIB/...`, as the operator
/// resolves it), and its own `kind` if it has one, else the library's. A `.congress` file is
/// a `nonrecursive` policy named after the file stem, its text split like a `text` block.
/// Every policy's engine name is [`engine_name`] of its `metadata.name` or stem, as in the
/// operator; two sources with the same engine name are an error.
pub fn load_policies(paths: &[PathBuf]) -> Result<Vec<PolicySource>, Vec<LoadError>> {
    let mut errors = Vec::new();
    let files = collect_files(paths, POLICY_EXTS, &mut errors);
    let mut read_: Vec<Read> = Vec::new();
    for file in &files {
        let Some(text) = read(file, &mut errors) else { continue };
        if has_ext(file, &["congress"]) {
            let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("policy").to_string();
            let at = Origin::new(file, 0, 1, 1);
            read_.push(Read {
                source: PolicySource {
                    name: engine_name(&stem),
                    resource: stem,
                    kind: congress_engine::PolicyKind::Nonrecursive,
                    enforcement: Enforcement::Monitor,
                    admission: Default::default(),
                    statements: Vec::new(),
                    library_ref: None,
                    library: false,
                    origin: at.clone(),
                },
                placement: Placement::Text { origin: at, indent: 0 },
                spec: Spec::File(text),
            });
            continue;
        }
        for doc in documents(file, &text, &mut errors) {
            let Some(kind) = is_congress(&doc, &mut errors) else { continue };
            if kind == "Policy" || kind == "LibraryPolicy" {
                if let Some(r) = policy_from_doc(&doc, &kind, &mut errors) {
                    read_.push(r);
                }
            } else if !matches!(kind.as_str(), "Datasource" | "ActionRequest") {
                errors.push(LoadError::Manifest {
                    origin: doc.start(),
                    message: format!("unknown kind `{kind}` for {API_VERSION}"),
                });
            }
        }
    }
    // Duplicates, by engine name (`a-b` and a file `a_b.congress` are the same policy).
    let mut seen: HashMap<(bool, &str), &PolicySource> = HashMap::new();
    for p in read_.iter().map(|r| &r.source) {
        let what = if p.library { "LibraryPolicy" } else { "policy" };
        match seen.get(&(p.library, p.name.as_str())) {
            Some(first) if first.resource == p.resource => errors.push(LoadError::Manifest {
                origin: p.origin.clone(),
                message: format!("{what} `{}` is defined twice (first at {})", p.resource, first.origin),
            }),
            Some(first) => errors.push(LoadError::Manifest {
                origin: p.origin.clone(),
                message: format!(
                    "{what} `{}` and {what} `{}` (at {}) are both `{}` in the engine",
                    p.resource, first.resource, first.origin, p.name
                ),
            }),
            None => {
                seen.insert((p.library, p.name.as_str()), p);
            }
        }
    }
    // Statements, library references resolved among the files read by `metadata.name`.
    let mut libraries: HashMap<&str, (&LibraryPolicySpec, &Placement)> = HashMap::new();
    for r in &read_ {
        if let Spec::Library(spec) = &r.spec {
            libraries.entry(r.source.resource.as_str()).or_insert((spec, &r.placement));
        }
    }
    let mut out = Vec::with_capacity(read_.len());
    for r in &read_ {
        let mut p = r.source.clone();
        let made: Result<(PolicyStatements, &Placement), SpecError> = match &r.spec {
            Spec::File(text) => {
                Ok((PolicyStatements { kind: p.kind, statements: loader::text_statements(text, "text") }, &r.placement))
            }
            Spec::Library(spec) => loader::library_statements(spec)
                .map(|s| (s, &r.placement))
                .map_err(|message| SpecError::InvalidLibrary { name: p.resource.clone(), message }),
            Spec::Policy(spec) => {
                let lib = spec.library_ref.as_ref().and_then(|l| libraries.get_key_value(l.name.as_str()));
                loader::statements_from_spec(spec, lib.map(|(n, (s, _))| (*n, *s)))
                    .map(|s| (s, lib.map_or(&r.placement, |(_, (_, placement))| *placement)))
            }
        };
        match made {
            Ok((statements, placement)) => {
                p.kind = statements.kind;
                p.statements = statements.statements;
                placement.place(&mut p.statements, &p.origin);
                out.push(p);
            }
            Err(SpecError::LibraryNotFound(lib)) => {
                let origin = library_ref_origin(&p.origin).unwrap_or_else(|| p.origin.clone());
                errors.push(LoadError::Manifest {
                    origin,
                    message: format!(
                        "policy `{}`: libraryRef `{lib}` names no LibraryPolicy among the loaded files",
                        p.resource
                    ),
                });
            }
            Err(e) => {
                errors.push(LoadError::Manifest { origin: p.origin.clone(), message: format!("{}: {e}", p.resource) })
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
