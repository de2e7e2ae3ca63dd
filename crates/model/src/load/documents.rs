//! Files and their YAML/JSON documents, and positions in them: every problem is placed at
//! its file, document and `line:col`.

use super::{LoadError, Origin};
use crate::resources::{API_VERSION, GROUP};
use congress_engine::syntax::Span;
use std::path::{Path, PathBuf};

pub(super) const POLICY_EXTS: &[&str] = &["yaml", "yml", "json", "congress"];
pub(super) const DATA_EXTS: &[&str] = &["yaml", "yml", "json"];

pub(super) fn has_ext(p: &Path, exts: &[&str]) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| exts.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Every file under `paths` (files as given, directories walked recursively in sorted
/// order) with one of `exts`.
pub(super) fn collect_files(paths: &[PathBuf], exts: &[&str], errors: &mut Vec<LoadError>) -> Vec<PathBuf> {
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

pub(super) fn read(path: &Path, errors: &mut Vec<LoadError>) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(s) => Some(s),
        Err(e) => {
            errors.push(LoadError::Io { path: path.to_path_buf(), message: e.to_string() });
            None
        }
    }
}

/// One YAML (or JSON) document of a file.
pub(super) struct Doc<'a> {
    pub(super) file: &'a Path,
    /// 1-based, 0 for JSON.
    pub(super) index: usize,
    /// The file line of the document text's first line.
    pub(super) first_line: usize,
    pub(super) text: &'a str,
    pub(super) value: serde_json::Value,
}

impl Doc<'_> {
    /// The origin of a byte offset in the document text.
    pub(super) fn origin_at(&self, byte: usize) -> Origin {
        let (l, c) = Span::new(byte, byte).line_col(self.text);
        Origin::new(self.file, self.index, self.first_line + l - 1, c)
    }

    /// The origin of the document's first non-blank, non-comment line.
    pub(super) fn start(&self) -> Origin {
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
    pub(super) fn key_origin(&self, key: &str, from: usize) -> Option<(usize, Origin)> {
        find_key(self.text, key, from).map(|b| (b, self.origin_at(b)))
    }
}

/// Where the mapping key `key` (`key:`, `"key":`, `'key':`) first occurs at or after `from`.
pub(super) fn find_key(text: &str, key: &str, from: usize) -> Option<usize> {
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
pub(super) fn split_yaml(text: &str) -> Vec<(usize, usize, &str)> {
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
pub(super) fn documents<'a>(file: &'a Path, text: &'a str, errors: &mut Vec<LoadError>) -> Vec<Doc<'a>> {
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
pub(super) fn manifest_kind(v: &serde_json::Value) -> Option<(&str, &str)> {
    let api = v.get("apiVersion")?.as_str()?;
    let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    Some((api, kind))
}

/// Check a congress manifest's apiVersion; `Ok(false)` for documents that are not ours.
pub(super) fn is_congress(doc: &Doc, errors: &mut Vec<LoadError>) -> Option<String> {
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

pub(super) fn metadata_name(doc: &Doc, errors: &mut Vec<LoadError>) -> Option<String> {
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
pub(super) fn spec_of<T: serde::de::DeserializeOwned + schemars::JsonSchema>(
    doc: &Doc,
    kind: &str,
    errors: &mut Vec<LoadError>,
) -> Option<T> {
    let known = known_fields::<T>();
    let spec = doc.value.get("spec").cloned().unwrap_or(serde_json::Value::Object(Default::default()));
    let spec_at = doc.key_origin("spec", 0).map_or(0, |(b, _)| b);
    if let Some(map) = spec.as_object() {
        for k in map.keys() {
            if !known.iter().any(|f| f == k) {
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

/// Byte offset of the start of 1-based `line`.
pub(super) fn line_offset(text: &str, line: usize) -> Option<usize> {
    if line <= 1 {
        return Some(0);
    }
    text.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)
}

/// The fields of a spec type, from its schema (so a field added to the type is known here).
pub(super) fn known_fields<T: schemars::JsonSchema>() -> Vec<String> {
    let schema = schemars::schema_for!(T);
    schema
        .as_object()
        .and_then(|o| o.get("properties"))
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}
