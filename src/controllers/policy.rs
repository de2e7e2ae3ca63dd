//! The `Policy` reconciler. Every replica loads policies into its engine (a warm standby);
//! the leader also publishes: status (conditions, violations, a sample with first-seen
//! times, warnings), the policy's reports, and events as violations appear and clear.
//!
//! Loading is all or nothing: the new version replaces the old in one engine transaction,
//! so a version that does not parse or analyse leaves the previous one running, and the
//! status says why (`Accepted=False`, each diagnostic with its rule and `line:col`).
//! Publishing starts only once every datasource has synced, so a restart never reports
//! violations as cleared merely because the cluster has not been read yet; the state it
//! compares against (what was reported, and since when) is read back from the reports.

use super::reports::{self, ReportBook, Violation};
use super::{Context, Error, condition, engine_name, now_rfc3339};
use congress_engine::{Engine, EngineError, Value};
use congress_model::loader::{self, PolicyStatements, ProblemKind, SpecError, Staged};
use congress_model::resources::{
    API_VERSION, LibraryPolicy, LibraryPolicySpec, Policy, PolicyDiagnostic, PolicySpec, PolicyStatus, ViolationSample,
};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The finalizer that unloads a policy and deletes its reports.
pub const FINALIZER: &str = "congress.dev/policy";
/// At most this many violation rows in `status.violationSample`.
pub const SAMPLE: usize = 20;
/// Events per policy: a burst of this many, then one per [`EVENT_REFILL`].
const EVENT_BURST: f64 = 10.0;
const EVENT_REFILL: Duration = Duration::from_secs(6);

/// What the operator keeps per policy between reconciles.
#[derive(Default)]
pub struct PolicyState {
    /// Digest of the statements loaded into the engine (kind and texts).
    loaded: Option<String>,
    /// Why the latest version was not loaded.
    failure: Option<LoadFailure>,
    /// The last version that failed to commit (its digest), the engine's error, and the
    /// diagnosis: not diagnosed again (on a copy of the engine) while it fails the same way.
    diagnosed: Option<(String, EngineError, LoadFailure)>,
    /// The reports as written (None until read back from the API by the leader).
    book: Option<ReportBook>,
    /// The status this replica last wrote.
    status: Option<PolicyStatus>,
    /// Every current violation's first-seen time.
    first_seen: HashMap<String, String>,
    /// How many events the policy may still record.
    events: EventBudget,
}

/// A token bucket for one policy's events: a burst of [`EVENT_BURST`], then one token per
/// [`EVENT_REFILL`]. What does not fit is counted and summed up in one event once a token is
/// free again.
#[derive(Debug, Default)]
pub struct EventBudget {
    tokens: f64,
    refilled: Option<Instant>,
    /// Changes not shown as events since the last summary.
    suppressed: usize,
}

impl EventBudget {
    /// The events to record now, and, when some are held back, the number of changes a
    /// summary event must mention (the summary takes the last token).
    pub fn plan<E>(&mut self, now: Instant, mut events: Vec<E>) -> (Vec<E>, Option<usize>) {
        let refill = EVENT_REFILL.as_secs_f64();
        let elapsed = self.refilled.map_or(EVENT_BURST * refill, |t| now.saturating_duration_since(t).as_secs_f64());
        self.tokens = (self.tokens + elapsed / refill).min(EVENT_BURST);
        self.refilled = Some(now);
        let budget = self.tokens.floor() as usize;
        let mut summary = None;
        if events.len() > budget || (self.suppressed > 0 && budget > 0) {
            let shown = budget.saturating_sub(1).min(events.len());
            let hidden = events.len() - shown + self.suppressed;
            events.truncate(shown);
            if budget > 0 {
                summary = Some(hidden);
                self.suppressed = 0;
            } else {
                self.suppressed = hidden;
            }
        }
        let used = events.len() + usize::from(summary.is_some());
        self.tokens = (self.tokens - used as f64).max(0.0);
        (events, summary)
    }
}

impl PolicyState {
    /// Forget what was published (another replica may have written since).
    pub fn forget_published(&mut self) {
        self.book = None;
        self.status = None;
    }
}

/// Why a version of a policy was not loaded.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadFailure {
    pub reason: &'static str,
    pub message: String,
    pub diagnostics: Vec<PolicyDiagnostic>,
}

impl LoadFailure {
    fn new(reason: &'static str, message: impl Into<String>) -> LoadFailure {
        LoadFailure { reason, message: message.into(), diagnostics: Vec::new() }
    }
}

/// The `LibraryPolicy` that `spec.libraryRef` names, read from the API server: `(name,
/// spec)`, `None` without a `libraryRef`.
async fn library(spec: &PolicySpec, ctx: &Context) -> Result<Option<(String, LibraryPolicySpec)>, LoadFailure> {
    spec.validate().map_err(|m| LoadFailure::new("InvalidSpec", m))?;
    let Some(lib) = &spec.library_ref else {
        return Ok(None);
    };
    let api: Api<LibraryPolicy> = Api::all(ctx.client.clone());
    let found = api
        .get_opt(lib)
        .await
        .map_err(|e| LoadFailure::new("LibraryPolicyUnavailable", format!("reading LibraryPolicy {lib}: {e}")))?
        .ok_or_else(|| LoadFailure::new("LibraryPolicyNotFound", format!("LibraryPolicy {lib} does not exist")))?;
    Ok(Some((lib.clone(), found.spec)))
}

/// The kind and statements of a policy version: the loader's, shared with the CLI
/// (`congress_model::loader`), given the LibraryPolicy already read.
fn statements(
    spec: &PolicySpec,
    library: Option<&(String, LibraryPolicySpec)>,
) -> Result<PolicyStatements, LoadFailure> {
    loader::statements_from_spec(spec, library.map(|(n, s)| (n.as_str(), s))).map_err(|e| match e {
        SpecError::InvalidSpec(m) => LoadFailure::new("InvalidSpec", m),
        SpecError::LibraryNotFound(_) => LoadFailure::new("LibraryPolicyNotFound", e.to_string()),
        SpecError::InvalidLibrary { .. } => LoadFailure::new("InvalidLibraryPolicy", e.to_string()),
    })
}

/// Why `src` did not load into policy `engine` (its commit failed with `e`): every problem,
/// found by the loader replaying it on `before` (the engine without this version), each
/// with its rule label and `line:col` within the rule entry or text block.
fn failure(engine: &str, src: &PolicyStatements, before: Engine, e: &EngineError) -> LoadFailure {
    let staged = Staged { policy: engine, kind: src.kind, statements: &src.statements };
    let problems = loader::diagnose(before, &[staged], e);
    let any = |kind: ProblemKind| problems.iter().any(|p| p.kind == kind);
    let reason = if any(ProblemKind::Syntax) {
        "SyntaxError"
    } else if any(ProblemKind::Analysis) {
        "AnalysisError"
    } else if matches!(e, EngineError::PolicyExists(_)) {
        "NameConflict"
    } else {
        "Rejected"
    };
    let message = problems
        .iter()
        .map(|p| match &p.rule {
            Some(rule) => format!("{rule} {}:{}: {}", p.line, p.column, p.message),
            None => p.message.clone(),
        })
        .collect::<Vec<_>>();
    let diagnostics = problems
        .iter()
        .filter_map(|p| {
            Some(PolicyDiagnostic {
                rule: p.rule.clone()?,
                line: p.line as u32,
                column: p.column as u32,
                message: p.message.clone(),
            })
        })
        .collect();
    LoadFailure { reason, message: message.join("; "), diagnostics }
}

/// Load `policy`'s current version into the engine unless it is already loaded.
async fn load(policy: &Policy, ctx: &Context) -> Result<(), LoadFailure> {
    let name = policy.name_any();
    let engine = engine_name(&name);
    let library = library(&policy.spec, ctx).await?;
    let src = statements(&policy.spec, library.as_ref())?;
    let digest = src.digest();
    if ctx.policy_state(&name, |s| s.loaded.as_ref() == Some(&digest)) {
        return Ok(());
    }
    let exists = ctx.engine.read(|e| e.policy_kind(&engine).is_some());
    let loaded_by_us = ctx.policy_state(&name, |s| s.loaded.is_some());
    if exists && !loaded_by_us {
        return Err(LoadFailure::new("NameConflict", format!("`{engine}` is already the name of a datasource")));
    }
    let committed = ctx.engine.change(|txn| loader::stage(txn, &engine, src.kind, &src.statements, exists));
    if let Err(e) = committed {
        // The same version failing the same way again: the diagnosis is known.
        let known = ctx.policy_state(&name, |s| {
            s.diagnosed.as_ref().filter(|(d, first, _)| *d == digest && *first == e).map(|(_, _, f)| f.clone())
        });
        if let Some(f) = known {
            return Err(f);
        }
        // Diagnose on a copy of the engine, which the failed commit left as it was.
        let before = ctx.engine.read(Engine::clone);
        let f = failure(&engine, &src, before, &e);
        ctx.policy_state(&name, |s| s.diagnosed = Some((digest, e, f.clone())));
        return Err(f);
    }
    ctx.engine.touch(&engine);
    ctx.policy_state(&name, |s| {
        s.loaded = Some(digest);
        s.diagnosed = None;
    });
    // Other policies may have been reading this one while it was unknown.
    for other in ctx.loaded_policies() {
        if other != name {
            ctx.engine.touch(&engine_name(&other));
        }
    }
    tracing::info!(policy = %name, "loaded");
    Ok(())
}

/// Reconcile one Policy.
pub async fn reconcile(policy: Arc<Policy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = tracing::debug_span!("reconcile", kind = "Policy", name = %policy.name_any());
    super::timed(&ctx, "Policy", tracing::Instrument::instrument(reconcile_inner(&policy, &ctx), span)).await
}

async fn reconcile_inner(policy: &Policy, ctx: &Context) -> Result<Action, Error> {
    let name = policy.name_any();
    if policy.meta().deletion_timestamp.is_some() {
        return cleanup(policy, ctx).await;
    }
    let leader = ctx.is_leader();
    if leader {
        super::set_finalizer(ctx, policy, FINALIZER, true).await?;
    }
    let failure = load(policy, ctx).await.err();
    if let Some(f) = &failure {
        tracing::warn!(policy = %name, reason = f.reason, message = %f.message, "not loaded");
    }
    ctx.policy_state(&name, |s| s.failure.clone_from(&failure));
    if !leader {
        return Ok(Action::await_change());
    }
    if !ctx.datasources_synced() {
        return Ok(Action::requeue(Duration::from_millis(300)));
    }
    // Ready as soon as the leader publishes (the readiness loop would say so within 500 ms).
    ctx.metrics.set_ready(true);
    publish(policy, ctx).await?;
    let again = if failure.as_ref().is_some_and(|f| f.reason.starts_with("LibraryPolicy")) { 10 } else { 300 };
    Ok(Action::requeue(Duration::from_secs(again)))
}

async fn cleanup(policy: &Policy, ctx: &Context) -> Result<Action, Error> {
    let name = policy.name_any();
    let engine = engine_name(&name);
    // Only what this policy loaded: a datasource may own the name.
    if ctx.policy_state(&name, |s| s.loaded.is_some())
        && let Err(e) = ctx.engine.remove(&engine)
    {
        tracing::warn!(policy = %name, error = %e, "unload failed");
    }
    ctx.forget_policy(&name);
    ctx.metrics.violations.remove(&super::metrics::PolicyLabel { policy: name.clone() });
    if ctx.is_leader() && policy.finalizers().iter().any(|f| f == FINALIZER) {
        reports::delete_all(&ctx.client, &name).await?;
        super::set_finalizer(ctx, policy, FINALIZER, false).await?;
    }
    tracing::info!(policy = %name, "unloaded");
    Ok(Action::await_change())
}

/// The text of an `error` row.
fn row_text(row: &[Value]) -> String {
    let cells: Vec<String> = row.iter().map(Value::to_string).collect();
    format!("error({})", cells.join(", "))
}

fn violations(policy: &Policy, ctx: &Context) -> Vec<(String, Vec<Value>)> {
    let engine = engine_name(&policy.name_any());
    let rows = ctx.engine.read(|e| if e.policy_kind(&engine).is_some() { e.rows(&engine, "error").ok() } else { None });
    let mut out: Vec<(String, Vec<Value>)> =
        rows.unwrap_or_default().into_iter().map(|r| (reports::row_key(&row_text(&r)), r)).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

fn resource_of(policy: &Policy, row: &[Value], ctx: &Context) -> Option<congress_drivers::kubernetes::ObjectRef> {
    if let Some(spec) = &policy.spec.report {
        let cell = |i: u32| row.get(i as usize).and_then(Value::as_str).map(str::to_string);
        let name = cell(spec.name_column)?;
        let namespace = spec.namespace_column.and_then(cell);
        return Some(congress_drivers::kubernetes::ObjectRef {
            api_version: spec.api_version.clone(),
            kind: spec.kind.clone(),
            namespace,
            name,
            uid: String::new(),
        });
    }
    row.iter().filter_map(Value::as_str).find_map(|s| ctx.objects.get(s))
}

fn warnings(engine: &str, ctx: &Context) -> Vec<String> {
    ctx.engine.read(|e| {
        let mut out: Vec<String> = e
            .warnings()
            .into_iter()
            .filter(|w| w.policy == engine)
            .map(|w| format!("{}: {}", w.rule, w.message))
            .collect();
        out.extend(
            e.builtin_failures()
                .into_iter()
                .filter(|f| f.policy == engine)
                .map(|f| format!("{}: {} builtin failure(s), the last: {}", f.rule, f.count, f.last_error)),
        );
        out.sort();
        out.dedup();
        out.truncate(20);
        out
    })
}

/// Write status, reports and events for `policy` (leader only).
async fn publish(policy: &Policy, ctx: &Context) -> Result<(), Error> {
    let name = policy.name_any();
    // Read back what was reported before (first publish since start or since leading).
    if ctx.policy_state(&name, |s| s.book.is_none()) {
        let existing = reports::load(&ctx.client, &name).await?;
        let book = ReportBook::from_existing(existing);
        let seen = book.first_seen();
        ctx.policy_state(&name, |s| {
            for (k, t) in seen {
                s.first_seen.entry(k).or_insert(t);
            }
            s.book = Some(book);
        });
    }
    let rows = violations(policy, ctx);
    let now = now_rfc3339();
    let list: Vec<Violation> = ctx.policy_state(&name, |s| {
        let current: BTreeSet<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
        s.first_seen.retain(|k, _| current.contains(k.as_str()));
        rows.iter()
            .map(|(key, row)| Violation {
                key: key.clone(),
                row: serde_json::Value::Array(row.iter().map(Value::to_json).collect()),
                resource: resource_of(policy, row, ctx),
                first_seen: s.first_seen.entry(key.clone()).or_insert_with(|| now.clone()).clone(),
            })
            .collect()
    });
    // What changed since the last publish.
    let (changes, delta) = ctx.policy_state(&name, |s| {
        let book = s.book.get_or_insert_with(ReportBook::default);
        let delta = book.set(&name, &list);
        (book.changes(), delta)
    });
    let added: BTreeSet<&str> = delta.added.iter().map(String::as_str).collect();
    let appeared: Vec<&Violation> = list.iter().filter(|v| added.contains(v.key.as_str())).collect();
    let cleared: Vec<&String> = delta.removed.iter().collect();
    // Status first: it is what users and tools watch.
    let (failure, loaded, written) =
        ctx.policy_state(&name, |s| (s.failure.clone(), s.loaded.is_some(), s.status.clone()));
    // Compare with what this replica last wrote: the cached object may not show it yet.
    let old = written.or_else(|| policy.status.clone()).unwrap_or_default();
    let changed = !appeared.is_empty() || !cleared.is_empty();
    let status = status(policy, &old, failure.as_ref(), loaded, &list, warnings(&engine_name(&name), ctx), changed);
    ctx.metrics.violations.get_or_create(&super::metrics::PolicyLabel { policy: name.clone() }).set(list.len() as i64);
    if status != old {
        let api: Api<Policy> = Api::all(ctx.client.clone());
        let body = json!({"apiVersion": API_VERSION, "kind": "Policy", "status": status});
        if let Err(e) =
            api.patch_status(&name, &PatchParams::apply(reports::MANAGER).force(), &Patch::Apply(&body)).await
        {
            ctx.policy_state(&name, PolicyState::forget_published);
            return Err(e.into());
        }
        ctx.policy_state(&name, |s| s.status = Some(status));
    }
    // Reports: the parts that changed.
    for change in &changes {
        if let Err(e) = reports::write(&ctx.client, &name, change).await {
            tracing::warn!(policy = %name, error = %e, "report write failed");
            // Read back from the API next time: some parts may have been written.
            ctx.policy_state(&name, PolicyState::forget_published);
            return Err(e.into());
        }
        ctx.policy_state(&name, |s| {
            if let Some(b) = s.book.as_mut() {
                b.written(change);
            }
        });
    }
    emit_events(policy, ctx, &appeared, &cleared).await;
    Ok(())
}

fn status(
    policy: &Policy,
    old: &PolicyStatus,
    failure: Option<&LoadFailure>,
    loaded: bool,
    list: &[Violation],
    warnings: Vec<String>,
    changed: bool,
) -> PolicyStatus {
    let generation = policy.meta().generation;
    let accepted = match failure {
        None => condition(old, "Accepted", "True", "Loaded", "the rules are loaded", generation),
        Some(f) => condition(old, "Accepted", "False", f.reason, &f.message, generation),
    };
    let ready = match (loaded, failure) {
        (true, None) => condition(old, "Ready", "True", "Evaluated", "violations are up to date", generation),
        (true, Some(_)) => condition(
            old,
            "Ready",
            "True",
            "PreviousVersionActive",
            "the previously accepted version is still enforced",
            generation,
        ),
        (false, _) => condition(old, "Ready", "False", "NotLoaded", "no version of the rules is loaded", generation),
    };
    let mut sample: Vec<ViolationSample> =
        list.iter().map(|v| ViolationSample { row: v.key.clone(), first_seen: v.first_seen.clone() }).collect();
    sample.sort_by(|a, b| (&a.first_seen, &a.row).cmp(&(&b.first_seen, &b.row)));
    sample.truncate(SAMPLE);
    PolicyStatus {
        conditions: vec![accepted, ready],
        violations: list.len() as u64,
        violation_sample: sample,
        diagnostics: failure.map(|f| f.diagnostics.clone()).unwrap_or_default(),
        warnings,
        last_evaluation_time: if changed || old.last_evaluation_time.is_none() {
            Some(now_rfc3339())
        } else {
            old.last_evaluation_time.clone()
        },
        observed_generation: generation,
    }
}

/// Events for violations that appeared and cleared, at most [`EVENT_BURST`] at once per
/// policy; past that, one event sums up the rest.
async fn emit_events(policy: &Policy, ctx: &Context, appeared: &[&Violation], cleared: &[&String]) {
    if appeared.is_empty() && cleared.is_empty() {
        return;
    }
    let name = policy.name_any();
    let mut events = Vec::new();
    for v in appeared {
        let on = v.resource.as_ref().map(|o| match &o.namespace {
            Some(ns) => format!(" ({} {ns}/{})", o.kind, o.name),
            None => format!(" ({} {})", o.kind, o.name),
        });
        events.push(("Warning", "ViolationFound", format!("{}{}", truncate(&v.key, 900), on.unwrap_or_default())));
    }
    for key in cleared {
        events.push(("Normal", "ViolationCleared", truncate(key, 900)));
    }
    let (mut events, hidden) = ctx.policy_state(&name, |s| s.events.plan(Instant::now(), events));
    if let Some(hidden) = hidden {
        let note = format!(
            "{} violation(s) appeared and {} cleared; {hidden} change(s) not shown as events (see the policy's reports)",
            appeared.len(),
            cleared.len(),
        );
        events.push(("Warning", "ViolationsChanged", note));
    }
    for (type_, reason, message) in events {
        if let Err(e) = super::events::publish(ctx, policy, type_, reason, &message).await {
            tracing::warn!(policy = %name, error = %e, "event not recorded");
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    let kept = super::prefix(s, max);
    if kept.len() == s.len() { s.to_string() } else { format!("{kept}…") }
}

#[cfg(test)]
mod equivalence;

#[cfg(test)]
mod tests {
    use super::*;
    use congress_model::resources::RuleEntry;

    #[test]
    fn events_are_rate_limited_and_the_rest_summed_up() {
        let mut b = EventBudget::default();
        let t0 = Instant::now();
        // A burst fits whole.
        let (shown, summary) = b.plan(t0, vec![1; 10]);
        assert_eq!((shown.len(), summary), (10, None));
        // No tokens left: nothing now, but the changes are remembered.
        let (shown, summary) = b.plan(t0, vec![1; 5]);
        assert_eq!((shown.len(), summary), (0, None));
        // One refill later: the token goes to a summary of the 5 held back and 1 new.
        let (shown, summary) = b.plan(t0 + EVENT_REFILL, vec![1]);
        assert_eq!((shown.len(), summary), (0, Some(6)));
        // After a long quiet spell the burst is back, and a flood is cut to 9 + a summary.
        let (shown, summary) = b.plan(t0 + EVENT_REFILL * 100, vec![1; 5000]);
        assert_eq!((shown.len(), summary), (9, Some(4991)));
    }

    fn rule(name: Option<&str>, rule: &str) -> RuleEntry {
        RuleEntry { name: name.map(str::to_string), comment: None, rule: rule.into() }
    }

    #[test]
    fn rule_labels_name_each_statement() {
        let spec = PolicySpec {
            rules: Some(vec![rule(Some("bad-image"), "error(x) :- p(x)"), rule(None, "p(1)")]),
            ..Default::default()
        };
        let s = statements(&spec, None).unwrap().statements;
        assert_eq!(s[0].label, "bad-image");
        assert_eq!(s[1].label, "rules[1]");
        // A text block is one statement per rule, each labelled `text` (after the library).
        let lib = ("lib".to_string(), LibraryPolicySpec { text: Some("p(1)\nq(2)".into()), ..Default::default() });
        let spec = PolicySpec { library_ref: Some("lib".into()), ..Default::default() };
        let s = statements(&spec, Some(&lib)).unwrap().statements;
        let labels: Vec<(&str, &str)> = s.iter().map(|s| (s.label.as_str(), s.text.as_str())).collect();
        assert_eq!(labels, [("lib/text", "p(1)"), ("lib/text", "q(2)")]);
    }

    #[test]
    fn syntax_errors_carry_rule_and_line_col() {
        let spec = PolicySpec {
            rules: Some(vec![rule(Some("ok"), "p(1)"), rule(Some("broken"), "error(x) :-\n  p(x")]),
            ..Default::default()
        };
        let src = statements(&spec, None).unwrap();
        let mut engine = Engine::new();
        let before = engine.clone();
        let mut txn = engine.transaction();
        loader::stage(&mut txn, "p", src.kind, &src.statements, false);
        let e = txn.commit().unwrap_err();
        let f = failure("p", &src, before, &e);
        assert_eq!(f.reason, "SyntaxError");
        let d = f.diagnostics;
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].rule, "broken");
        assert_eq!(d[0].line, 2);
        assert!(d[0].column > 1);
    }

    #[test]
    fn rows_print_as_error_literals() {
        assert_eq!(row_text(&[Value::str("a"), Value::Int(3)]), "error(\"a\", 3)");
        assert_eq!(truncate("ééé", 3), "é…");
    }
}
