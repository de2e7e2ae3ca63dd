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

use super::engine::ChangeError;
use super::outputs::{Outage, Output};
use super::reports::{self, ReportBook, Violation};
use super::{Context, condition, engine_name, lock, now_rfc3339};
use congress_engine::{Engine, EngineError, Value};
use congress_model::loader::{self, PolicyStatements, ProblemKind, SpecError, Staged};
use congress_model::resources::library_policy::archive_name;
use congress_model::resources::{
    API_VERSION, ActiveLibrary, Condition, Enforcement, LibraryPolicy, LibraryPolicySpec, Policy, PolicyDiagnostic,
    PolicySpec, PolicyStatus, Severity, ViolationSample,
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

/// Why a Policy reconcile failed (it is retried with backoff). A version that does not load
/// is not an error of the reconcile: it is reported in the status ([`LoadFailure`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("setting the finalizer: {0}")]
    Finalizer(#[source] kube::Error),
    #[error("reading the policy's reports: {0}")]
    ReadReports(#[source] kube::Error),
    #[error("writing the status: {0}")]
    WriteStatus(#[source] kube::Error),
    #[error("writing a report: {0}")]
    WriteReport(#[source] kube::Error),
    #[error("deleting the policy's reports: {0}")]
    DeleteReports(#[source] kube::Error),
}

impl super::ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::Finalizer(_) => "Finalizer",
            Error::ReadReports(_) => "ReadReports",
            Error::WriteStatus(_) => "WriteStatus",
            Error::WriteReport(_) => "WriteReport",
            Error::DeleteReports(_) => "DeleteReports",
        }
    }
}

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
    events: super::events::EventBudget,
    /// The library version loaded, for a `libraryRef` policy, and what it gives the policy.
    library: Option<Resolved>,
    /// When the loaded rules were last evaluated afresh, for rules that read the clock.
    refreshed: Option<Instant>,
}

/// Rules that read the clock (`now`: an exception's expiry) are evaluated afresh this often;
/// incremental maintenance only sees data change, not time pass.
pub const CLOCK_REFRESH: Duration = Duration::from_secs(60);

/// Whether any statement calls the `now` builtin (`builtin:now(t)` or `now(t)`).
pub fn reads_clock(src: &PolicyStatements) -> bool {
    src.statements.iter().any(|st| {
        st.text.match_indices("now(").any(|(i, _)| {
            let before = st.text[..i].chars().next_back();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
        })
    })
}

impl super::Context {
    /// Reconcile every policy whose last version did not load: a datasource they need may
    /// have just appeared (its schema resolves their column references).
    pub fn retry_unloaded_policies(&self) {
        let names: Vec<String> =
            super::lock(&self.policies).iter().filter(|(_, s)| s.failure.is_some()).map(|(n, _)| n.clone()).collect();
        for name in names {
            self.trigger_policy(&name);
        }
    }
}

impl PolicyState {
    /// The digest ([`PolicyStatements::digest`]) of the version loaded into the engine.
    pub fn loaded_digest(&self) -> Option<&str> {
        self.loaded.as_deref()
    }

    /// Why the latest version was not loaded, if it was not.
    pub fn failure(&self) -> Option<&LoadFailure> {
        self.failure.as_ref()
    }

    /// Every current violation's first-seen time, by row (this replica's, as published).
    pub fn first_seen(&self) -> &HashMap<String, String> {
        &self.first_seen
    }

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

/// The library version a `libraryRef` policy runs, and what it gives the policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// The LibraryPolicy's name (as `libraryRef.name`) and the spec of the version used.
    pub name: String,
    pub spec: LibraryPolicySpec,
    /// The version used and the LibraryPolicy's current version.
    pub active: ActiveLibrary,
}

impl Resolved {
    #[cfg(test)]
    /// The LibraryPolicy's current version (`spec`).
    pub fn current(name: &str, spec: LibraryPolicySpec) -> Resolved {
        let version = spec.version().to_string();
        Resolved {
            name: name.to_string(),
            active: ActiveLibrary { name: name.to_string(), version, latest_version: None },
            spec,
        }
    }
}

/// The `LibraryPolicy` version that `spec.libraryRef` asks for, read from the API server;
/// `None` without a `libraryRef`. The version is `libraryRef.version`, else the one this
/// policy already runs (`status.library`), else the current one. A version other than the
/// current one is read from its archived copy (`NAME.vVERSION`, kept by the library sync
/// when it installs a newer version).
async fn library(policy: &Policy, ctx: &Context) -> Result<Option<Resolved>, LoadFailure> {
    policy.spec.validate().map_err(|m| LoadFailure::new("InvalidSpec", m))?;
    let Some(lib) = &policy.spec.library_ref else {
        return Ok(None);
    };
    let api: Api<LibraryPolicy> = Api::all(ctx.client.clone());
    let get = |name: String| {
        let api = api.clone();
        async move {
            api.get_opt(&name)
                .await
                .map_err(|e| LoadFailure::new("LibraryPolicyUnavailable", format!("reading LibraryPolicy {name}: {e}")))
        }
    };
    let current = get(lib.name.clone()).await?.ok_or_else(|| {
        LoadFailure::new("LibraryPolicyNotFound", format!("LibraryPolicy {} does not exist", lib.name))
    })?;
    let latest = current.spec.version().to_string();
    let running = ctx
        .policy_state(&policy.name_any(), |s| s.library.as_ref().map(|r| (r.name.clone(), r.active.version.clone())))
        .or_else(|| {
            policy.status.as_ref().and_then(|s| s.library.as_ref()).map(|l| (l.name.clone(), l.version.clone()))
        })
        .filter(|(n, _)| *n == lib.name)
        .map(|(_, v)| v);
    let wanted = lib.version.clone().or(running);
    let spec = match wanted {
        Some(v) if v != latest => {
            let archived = get(archive_name(&lib.name, &v)).await?.filter(|a| a.spec.version() == v);
            match archived {
                Some(a) => a.spec,
                None if lib.version.is_some() => {
                    return Err(LoadFailure::new(
                        "LibraryVersionNotFound",
                        format!(
                            "LibraryPolicy {} is version {latest}, and version {v} is not kept (no LibraryPolicy {})",
                            lib.name,
                            archive_name(&lib.name, &v)
                        ),
                    ));
                }
                // The version this policy ran is gone: the current one is all there is.
                None => current.spec,
            }
        }
        _ => current.spec,
    };
    let version = spec.version().to_string();
    let latest_version = (version != latest).then_some(latest);
    Ok(Some(Resolved {
        name: lib.name.clone(),
        active: ActiveLibrary { name: lib.name.clone(), version, latest_version },
        spec,
    }))
}

/// The kind and statements of a policy version: the loader's, shared with the CLI
/// (`congress_model::loader`), given the LibraryPolicy already read.
fn statements(spec: &PolicySpec, library: Option<&Resolved>) -> Result<PolicyStatements, LoadFailure> {
    loader::statements_from_spec(spec, library.map(|r| (r.name.as_str(), &r.spec))).map_err(|e| match e {
        SpecError::InvalidSpec(m) => LoadFailure::new("InvalidSpec", m),
        SpecError::LibraryNotFound(_) => LoadFailure::new("LibraryPolicyNotFound", e.to_string()),
        SpecError::InvalidLibrary { .. } => LoadFailure::new("InvalidLibraryPolicy", e.to_string()),
        SpecError::VersionNotFound { .. } => LoadFailure::new("LibraryVersionNotFound", e.to_string()),
        SpecError::InvalidParameters(_) => LoadFailure::new("InvalidParameters", e.to_string()),
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
    let library = library(policy, ctx).await?;
    let src = statements(&policy.spec, library.as_ref())?;
    let digest = src.digest();
    let clock = reads_clock(&src);
    let fresh = |s: &PolicyState| !clock || s.refreshed.is_some_and(|t| t.elapsed() < CLOCK_REFRESH);
    if ctx.policy_state(&name, |s| s.loaded.as_ref() == Some(&digest) && fresh(s)) {
        // The same rules; the library's latest version may have changed.
        ctx.policy_state(&name, |s| s.library = library);
        return Ok(());
    }
    // Replace only what this replica loaded under that name: a datasource may own it, and
    // then the create fails with PolicyExists (a NameConflict).
    let replace = ctx.policy_state(&name, |s| s.loaded.is_some());
    let (kind, statements, target) = (src.kind, src.statements.clone(), engine.clone());
    let committed = ctx
        .engine
        .change(true, move |before, txn| {
            let exists = before.policy_kind(&target).is_some();
            loader::stage(txn, &target, kind, &statements, replace && exists);
        })
        .await;
    match committed {
        Ok(_) => {}
        Err(ChangeError::Rejected(EngineError::PolicyExists(_))) if !replace => {
            return Err(LoadFailure::new("NameConflict", format!("`{engine}` is already the name of a datasource")));
        }
        Err(ChangeError::Unavailable(e)) => return Err(LoadFailure::new("EngineUnavailable", e.to_string())),
        Err(ChangeError::Rejected(e)) => {
            // The same version failing the same way again: the diagnosis is known.
            let known = ctx.policy_state(&name, |s| {
                s.diagnosed.as_ref().filter(|(d, first, _)| *d == digest && *first == e).map(|(_, _, f)| f.clone())
            });
            if let Some(f) = known {
                return Err(f);
            }
            // Diagnose on the engine thread, on a copy of the policies and rules without
            // their rows (whether rules are accepted never depends on rows), which the
            // failed commit left as they were.
            let (target, src, err) = (engine.clone(), src.clone(), e.clone());
            let f = ctx
                .engine
                .run(move |en| failure(&target, &src, en.without_rows(), &err))
                .await
                .unwrap_or_else(|u| LoadFailure::new("EngineUnavailable", u.to_string()));
            ctx.policy_state(&name, |s| s.diagnosed = Some((digest, e, f.clone())));
            return Err(f);
        }
    }
    // The library version this policy now runs is kept (`NAME.vVERSION`), so that it can run
    // it again after a restart even if the LibraryPolicy moves on by other hands than the
    // library sync's (which keeps the versions it replaces).
    if let Some(r) = library.as_ref().filter(|r| r.active.latest_version.is_none() && ctx.is_leader()) {
        let api: Api<LibraryPolicy> = Api::all(ctx.client.clone());
        let archive = archive_name(&r.name, &r.active.version);
        if let Err(e) = super::library::keep_version(&api, &r.name, &archive, &r.spec).await {
            tracing::warn!(policy = %name, error = %e, "the library version it runs could not be kept");
        }
    }
    ctx.policy_state(&name, |s| {
        s.loaded = Some(digest);
        s.diagnosed = None;
        s.library = library;
        s.refreshed = clock.then(Instant::now);
    });
    tracing::info!(policy = %name, "loaded");
    Ok(())
}

/// Reconcile one Policy.
pub async fn reconcile(policy: Arc<Policy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = tracing::debug_span!("reconcile", kind = "Policy", name = %policy.name_any());
    super::timed(&ctx, &*policy, tracing::Instrument::instrument(reconcile_inner(&policy, &ctx), span)).await
}

async fn reconcile_inner(policy: &Policy, ctx: &Context) -> Result<Action, Error> {
    let name = policy.name_any();
    if policy.meta().deletion_timestamp.is_some() {
        return cleanup(policy, ctx).await;
    }
    let leader = ctx.is_leader();
    if leader {
        super::set_finalizer(ctx, policy, FINALIZER, true).await.map_err(Error::Finalizer)?;
    }
    let failure = load(policy, ctx).await.err();
    if policy.spec.enforcement == Enforcement::Reactive {
        // A new generation lifts a pause of the policy's actions; a resync then asks for
        // what the rules ask for now.
        let generation = policy.meta().generation;
        let lifted = {
            let mut paused = lock(&ctx.actions.paused);
            let stale = paused.get(&name).is_some_and(|p| p.generation != generation);
            if stale {
                paused.remove(&name);
            }
            stale
        };
        if lifted || failure.is_none() {
            ctx.actions.resync.notify_one();
        }
    }
    if let Some(f) = &failure {
        tracing::warn!(policy = %name, reason = f.reason, message = %f.message, "not loaded");
    }
    ctx.policy_state(&name, |s| s.failure.clone_from(&failure));
    if !leader {
        // A standby keeps its engine warm, clock included.
        let clock = ctx.policy_state(&name, |s| s.refreshed.is_some());
        return Ok(if clock { Action::requeue(CLOCK_REFRESH) } else { Action::await_change() });
    }
    if !ctx.datasources_synced() {
        return Ok(Action::requeue(Duration::from_millis(300)));
    }
    // Ready as soon as the leader publishes (the readiness loop would say so within 500 ms).
    ctx.metrics.set_ready(true);
    publish(policy, ctx).await?;
    let again = if failure.as_ref().is_some_and(|f| f.reason.starts_with("Library")) {
        Duration::from_secs(10)
    } else if ctx.policy_state(&name, |s| s.refreshed.is_some()) {
        CLOCK_REFRESH
    } else {
        Duration::from_secs(300)
    };
    Ok(Action::requeue(again))
}

async fn cleanup(policy: &Policy, ctx: &Context) -> Result<Action, Error> {
    let name = policy.name_any();
    let engine = engine_name(&name);
    // Only what this policy loaded: a datasource may own the name.
    if ctx.policy_state(&name, |s| s.loaded.is_some())
        && let Err(e) = ctx.engine.remove(&engine).await
    {
        tracing::warn!(policy = %name, error = %e, "unload failed");
    }
    ctx.forget_policy(&name);
    ctx.metrics.violations.remove(&super::metrics::PolicyLabel { policy: name.clone() });
    if ctx.is_leader() && policy.finalizers().iter().any(|f| f == FINALIZER) {
        match reports::delete_all(&ctx.client, &name).await {
            Ok(()) => {}
            // No reports can exist (no CRDs), or none may be deleted: do not hold the deletion.
            Err(e) if Outage::of(Output::Reports, &e).is_some() => {
                tracing::warn!(policy = %name, error = %e, "reports not deleted");
            }
            Err(e) => return Err(Error::DeleteReports(e)),
        }
        super::set_finalizer(ctx, policy, FINALIZER, false).await.map_err(Error::Finalizer)?;
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
    // The committed view: never waits for the engine.
    let view = ctx.engine.view(&engine);
    let mut out: Vec<(String, Vec<Value>)> =
        view.iter().flat_map(|v| v.errors.iter()).map(|r| (reports::row_key(&row_text(r)), r.clone())).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

fn resource_of(
    policy: &Policy,
    library: Option<&Resolved>,
    row: &[Value],
    ctx: &Context,
) -> Option<congress_drivers::kubernetes::ObjectRef> {
    if let Some(spec) = policy.spec.report.as_ref().or(library.and_then(|l| l.spec.report.as_ref())) {
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
    ctx.engine.view(engine).map(|v| v.warnings.clone()).unwrap_or_default()
}

/// Write status, reports and events for `policy` (leader only). Status always; reports and
/// events when they can be written (see [`super::outputs`]): their outages show in the
/// status, which is written again when an outage starts or ends during this publish.
async fn publish(policy: &Policy, ctx: &Context) -> Result<(), Error> {
    let name = policy.name_any();
    // Read back what was reported before (first publish since start or since leading).
    if ctx.policy_state(&name, |s| s.book.is_none()) {
        match reports::load(&ctx.client, &name).await {
            Ok(existing) => {
                ctx.outputs.on(Output::Reports);
                let book = ReportBook::from_existing(existing);
                let seen = book.first_seen();
                ctx.policy_state(&name, |s| {
                    for (k, t) in seen {
                        s.first_seen.entry(k).or_insert(t);
                    }
                    s.book = Some(book);
                });
            }
            Err(e) => match Outage::of(Output::Reports, &e) {
                Some(outage) => ctx.outputs.off(Output::Reports, outage),
                None => return Err(Error::ReadReports(e)),
            },
        }
    }
    let rows = violations(policy, ctx);
    let now = now_rfc3339();
    let library = ctx.policy_state(&name, |s| s.library.clone());
    let category = policy
        .spec
        .category
        .clone()
        .or_else(|| library.as_ref().and_then(|l| l.spec.category.clone()))
        .unwrap_or_else(|| "congress".to_string());
    let severity = policy.spec.severity.or(library.as_ref().and_then(|l| l.spec.severity)).map(Severity::as_str);
    let list: Vec<Violation> = ctx.policy_state(&name, |s| {
        let current: BTreeSet<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
        s.first_seen.retain(|k, _| current.contains(k.as_str()));
        rows.iter()
            .map(|(key, row)| Violation {
                key: key.clone(),
                row: serde_json::Value::Array(row.iter().map(Value::to_json).collect()),
                resource: resource_of(policy, library.as_ref(), row, ctx),
                first_seen: s.first_seen.entry(key.clone()).or_insert_with(|| now.clone()).clone(),
                category: category.clone(),
                severity,
            })
            .collect()
    });
    // What changed since the last publish. Without a book read back from the API (reports
    // are off), the changes are still tracked for events, but nothing is written.
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
    let facts = StatusFacts {
        failure: failure.as_ref(),
        loaded,
        list: &list,
        warnings: warnings(&engine_name(&name), ctx),
        library: library.map(|l| l.active),
    };
    let first = status(policy, &old, &facts, ctx, changed);
    ctx.metrics.violations.get_or_create(&super::metrics::PolicyLabel { policy: name.clone() }).set(list.len() as i64);
    write_status(policy, ctx, &old, first.clone()).await?;
    // Reports: the parts that changed.
    if ctx.outputs.outage(Output::Reports).is_none() {
        for change in &changes {
            match reports::write(&ctx.client, &name, change).await {
                Ok(()) => ctx.policy_state(&name, |s| {
                    if let Some(b) = s.book.as_mut() {
                        b.written(change);
                    }
                }),
                Err(e) => {
                    // Read back from the API next time: some parts may have been written.
                    ctx.policy_state(&name, |s| s.book = None);
                    match Outage::of(Output::Reports, &e) {
                        Some(outage) => {
                            ctx.outputs.off(Output::Reports, outage);
                            break;
                        }
                        None => {
                            tracing::warn!(policy = %name, error = %e, "report write failed");
                            return Err(Error::WriteReport(e));
                        }
                    }
                }
            }
        }
    }
    emit_events(policy, ctx, &appeared, &cleared).await;
    let cause = if old.observed_generation == policy.meta().generation {
        "data changed".to_string()
    } else {
        format!("policy {name} changed (generation {})", policy.meta().generation.unwrap_or_default())
    };
    if let Err(e) = super::history::record(ctx, policy, &appeared, &cleared, &cause).await {
        tracing::warn!(policy = %name, error = %e, "history not recorded");
    }
    // An output went off or came back during this publish: say so now.
    let again = status(policy, &first, &facts, ctx, false);
    write_status(policy, ctx, &first, again).await
}

/// Server-side apply `status` unless it equals `old` (what this replica last wrote).
async fn write_status(policy: &Policy, ctx: &Context, old: &PolicyStatus, status: PolicyStatus) -> Result<(), Error> {
    if status == *old {
        return Ok(());
    }
    let name = policy.name_any();
    let api: Api<Policy> = Api::all(ctx.client.clone());
    let body = json!({"apiVersion": API_VERSION, "kind": "Policy", "status": status});
    if let Err(e) = api.patch_status(&name, &PatchParams::apply(reports::MANAGER).force(), &Patch::Apply(&body)).await {
        ctx.policy_state(&name, PolicyState::forget_published);
        return Err(Error::WriteStatus(e));
    }
    ctx.policy_state(&name, |s| s.status = Some(status));
    Ok(())
}

/// What a Policy's status is made of, apart from the conditions' history.
struct StatusFacts<'a> {
    failure: Option<&'a LoadFailure>,
    loaded: bool,
    list: &'a [Violation],
    warnings: Vec<String>,
    library: Option<ActiveLibrary>,
}

/// The condition telling whether `output` works.
fn output_condition(old: &PolicyStatus, ctx: &Context, output: Output, generation: Option<i64>) -> Condition {
    let (type_, ok) = match output {
        Output::Reports => ("Reports", "the policy's reports are up to date"),
        Output::Events => ("Events", "violations that appear and clear are recorded as events"),
    };
    match ctx.outputs.outage(output) {
        None => condition(old, type_, "True", "Written", ok, generation),
        Some(o) => condition(old, type_, "False", o.reason, &o.message, generation),
    }
}

fn status(policy: &Policy, old: &PolicyStatus, facts: &StatusFacts, ctx: &Context, changed: bool) -> PolicyStatus {
    let StatusFacts { failure, loaded, list, .. } = *facts;
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
        conditions: [
            accepted,
            ready,
            output_condition(old, ctx, Output::Reports, generation),
            output_condition(old, ctx, Output::Events, generation),
        ]
        .into_iter()
        .chain(actions_condition(policy, old, ctx))
        .chain(update_condition(facts.library.as_ref(), old, generation))
        .collect(),
        violations: list.len() as u64,
        violation_sample: sample,
        diagnostics: failure.map(|f| f.diagnostics.clone()).unwrap_or_default(),
        warnings: facts.warnings.clone(),
        last_evaluation_time: if changed || old.last_evaluation_time.is_none() {
            Some(now_rfc3339())
        } else {
            old.last_evaluation_time.clone()
        },
        observed_generation: generation,
        library: facts.library.clone(),
    }
}

/// For a `libraryRef` policy: whether its library has another version than the one it runs.
fn update_condition(library: Option<&ActiveLibrary>, old: &PolicyStatus, generation: Option<i64>) -> Option<Condition> {
    let l = library?;
    Some(match &l.latest_version {
        Some(latest) => condition(
            old,
            "UpdateAvailable",
            "True",
            "VersionAvailable",
            &format!(
                "LibraryPolicy {} is at version {latest}; this policy runs {} until `libraryRef.version` asks for another",
                l.name, l.version
            ),
            generation,
        ),
        None => condition(
            old,
            "UpdateAvailable",
            "False",
            "Current",
            &format!("this policy runs the current version ({}) of LibraryPolicy {}", l.version, l.name),
            generation,
        ),
    })
}

/// For a reactive policy: whether its actions are paused, and why.
fn actions_condition(policy: &Policy, old: &PolicyStatus, ctx: &Context) -> Option<Condition> {
    if policy.spec.enforcement != Enforcement::Reactive {
        return None;
    }
    let generation = policy.meta().generation;
    let paused = lock(&ctx.actions.paused).get(&policy.name_any()).filter(|p| p.generation == generation).cloned();
    let waiting = lock(&ctx.actions.waiting).get(&policy.name_any()).cloned();
    Some(match paused {
        _ if !ctx.actions.enabled => condition(
            old,
            "ActionsPaused",
            "True",
            "KillSwitch",
            "the operator runs with actions disabled: no ActionRequest is created or run",
            generation,
        ),
        Some(p) => condition(
            old,
            "ActionsPaused",
            "True",
            "TooManyActions",
            &format!(
                "one evaluation asked for {} actions, more than `spec.actions.maxPerCommit` ({}): none were \
                 requested; change the policy (its rules, or the cap) to resume",
                p.wanted, p.cap
            ),
            generation,
        ),
        None => match waiting {
            Some(names) => condition(
                old,
                "ActionsPaused",
                "True",
                "WaitingForDatasources",
                &format!("waiting for a complete listing of the datasources the policy reads: {}", names.join(", ")),
                generation,
            ),
            None => condition(
                old,
                "ActionsPaused",
                "False",
                "Active",
                "execute[...] rows become ActionRequests",
                generation,
            ),
        },
    })
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
        match super::events::publish(ctx, policy, type_, reason, &message).await {
            Ok(()) => {
                ctx.outputs.on(Output::Events);
            }
            Err(e) => match Outage::of(Output::Events, &e) {
                // Refused for good: the rest would be refused too.
                Some(outage) => {
                    ctx.outputs.off(Output::Events, outage);
                    break;
                }
                None => tracing::warn!(policy = %name, error = %e, "event not recorded"),
            },
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
    use congress_model::resources::{LibraryRef, RuleEntry};

    #[test]
    fn rules_that_read_the_clock_are_found() {
        let of = |text: &str| {
            let spec = PolicySpec { text: Some(text.into()), ..Default::default() };
            reads_clock(&statements(&spec, None).unwrap())
        };
        assert!(of("ok(x) :- exempt(x, e), builtin:now(t), builtin:datetime_lt(t, e)"));
        assert!(of("p(x) :- q(x)\nok(x) :- exempt(x, e), now(t), datetime_lt(t, e)"));
        assert!(!of("p(x) :- snow(x), known(x)"));
        assert!(!of("p(x) :- q(x)"));
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
        let lib = Resolved::current("lib", LibraryPolicySpec { text: Some("p(1)\nq(2)".into()), ..Default::default() });
        let spec = PolicySpec { library_ref: Some(LibraryRef::named("lib")), ..Default::default() };
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
