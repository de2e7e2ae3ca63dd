//! An engine from fixtures and policy sources: the policies go in through the loader
//! ([`crate::loader::stage`]) in one transaction, and a failure is diagnosed by the loader
//! ([`crate::loader::diagnose`]) and rendered here at its place in its file.

use super::documents::line_offset;
use super::{FixtureSet, LoadError, Loaded, Origin, PolicySource, TableFixture};
use crate::loader::{self, Problem, Staged};
use congress_engine::syntax::Span;
use congress_engine::{Engine, EngineError, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
            let message = if p.name == p.resource {
                format!("policy `{}` has the name of a datasource", p.name)
            } else {
                format!("policy `{}` has the name of a datasource (`{}` in the engine)", p.resource, p.name)
            };
            errors.push(LoadError::Manifest { origin: p.origin.clone(), message });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let before = engine.clone();
    let mut txn = engine.transaction();
    for p in &active {
        // `classification` and `action` exist (empty) in a fresh engine.
        loader::stage(&mut txn, &p.name, p.kind, &p.statements, before.policy_kind(&p.name).is_some());
    }
    match txn.commit() {
        Ok(c) => actions.extend(c.actions),
        Err(e) => return Err(diagnose(before, &active, &e)),
    }
    Ok(Loaded { engine, policies: policies.to_vec(), actions })
}

/// The policy transaction failed with `first`: the loader finds every problem, each is
/// rendered at its place in its file.
fn diagnose(before: Engine, active: &[&PolicySource], first: &EngineError) -> Vec<LoadError> {
    let staged: Vec<Staged> =
        active.iter().map(|p| Staged { policy: &p.name, kind: p.kind, statements: &p.statements }).collect();
    let mut files = FileCache::default();
    loader::diagnose(before, &staged, first)
        .into_iter()
        .map(|problem| {
            let p = active.iter().find(|p| p.name == problem.policy);
            let st = p.zip(problem.statement).and_then(|(p, i)| p.statements.get(i));
            match (p, st) {
                (Some(p), Some(st)) => place(&p.name, st, problem, &mut files),
                _ => LoadError::Engine {
                    origin: p.map(|p| p.origin.clone()).unwrap_or_default(),
                    message: format!("policy `{}`: {}", p.map_or(&problem.policy, |p| &p.resource), problem.message),
                },
            }
        })
        .collect()
}

/// File contents read on demand for rendering snippets.
#[derive(Default)]
struct FileCache(HashMap<PathBuf, Option<String>>);

impl FileCache {
    fn get(&mut self, path: &Path) -> Option<&str> {
        self.0.entry(path.to_path_buf()).or_insert_with(|| std::fs::read_to_string(path).ok()).as_deref()
    }
}

/// One problem of a statement rendered against its file: the message, and a snippet of the
/// file with a caret under the diagnostic's span.
fn place(policy: &str, st: &loader::Statement, problem: Problem, files: &mut FileCache) -> LoadError {
    let Problem { rule, line, column, message, origin, diagnostic, .. } = problem;
    let origin = origin.or_else(|| st.origin.clone()).unwrap_or_default();
    let mut d = diagnostic
        .unwrap_or_else(|| congress_engine::syntax::Diagnostic::error("policy", message.clone(), Span::new(0, 0)));
    d.rule = Some(match &st.name {
        Some(n) => format!("{n}: {}", st.text),
        None => st.text.clone(),
    });
    let file_name = origin.file.display().to_string();
    let len = (d.span.end - d.span.start) as usize;
    let snippet = match files.get(&origin.file) {
        Some(text) => match line_offset(text, origin.line) {
            Some(ls) => {
                let line_text = &text[ls..text[ls..].find('\n').map_or(text.len(), |i| ls + i)];
                let start = ls + line_text.char_indices().nth(origin.col - 1).map_or(line_text.len(), |(i, _)| i);
                let end = (start + len).min(ls + line_text.len()).max(start);
                let mut fd = d.clone();
                fd.span = Span::new(start, end);
                fd.render(&file_name, text)
            }
            None => d.render(&file_name, &st.text),
        },
        None => d.render(&file_name, &st.text),
    };
    LoadError::Policy {
        origin,
        policy: policy.to_string(),
        rule: rule.unwrap_or_else(|| st.label.clone()),
        line,
        column,
        message,
        snippet,
    }
}
