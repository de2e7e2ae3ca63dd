//! Reactive enforcement, second half: the `ActionRequest` reconciler runs each request once,
//! on the one executor that owns it.
//!
//! A request's phase goes `Pending` (waiting for `spec.approved`) -> `Approved` (waiting for
//! its turn: the service's rate limit, a retry's backoff) -> `Running` -> `Succeeded` or
//! `Failed`. `Running` is written *before* the executor is called, so a request is run at
//! most once: one found `Running` that this process is not running (the operator stopped
//! mid-call, or another replica led) fails as `Interrupted` rather than run again. Only the
//! leader runs requests and writes their status (server-side apply, only when it changed).
//!
//! The service of `nova:servers.pause` is the Datasource named `nova`, and only its
//! executor is asked (Congress's unicast): no such Datasource, a driver that cannot act or
//! an action it does not offer fail at once, with the reason. Transient failures are tried
//! again with backoff, up to the request's `maxAttempts`; refusals (4xx) are not.
//!
//! The custom context (the policy's `context` and `contextSecretRef`, then the request's)
//! goes to the executor only: it is never logged, never in a status, event or metric.
//! Finished requests are deleted after the retention period once their row is gone (a
//! request whose row still holds is what says the action was already taken).

use super::reactor::ROW_PRESENT_LABEL;
use super::{Context, condition, engine_name, lock, now_rfc3339};
use congress_drivers::credentials::SecretValue;
use congress_drivers::execute::{ActionCall, ExecContext, Executor};
use congress_model::resources::{API_VERSION, ActionRequest, ActionRequestStatus, Condition, Phase, Policy, SecretRef};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The field manager of ActionRequest statuses.
pub const MANAGER: &str = "congress-actions";
/// A Secret named by a `contextSecretRef` lists the policies that may use it in this
/// annotation (comma-separated names, or `*`).
pub const CONTEXT_USERS_ANNOTATION: &str = "congress.dev/action-context";
/// Actions per minute on a service whose Datasource does not say.
pub const DEFAULT_PER_MINUTE: u32 = 60;
/// The longest an executor call may take before the request is failed (retried if it may).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest wait between tries.
const RETRY_CAP: Duration = Duration::from_secs(300);

/// What reactive enforcement shares between the reactor and this reconciler.
#[derive(Debug)]
pub struct Actions {
    /// False: the kill switch is on (nothing is created, nothing runs).
    pub enabled: bool,
    /// How long finished requests are kept.
    pub retention: Duration,
    /// Wakes the reactor for a resync.
    pub resync: Notify,
    pub policies: OnceLock<kube::runtime::reflector::Store<Policy>>,
    pub requests: OnceLock<kube::runtime::reflector::Store<ActionRequest>>,
    /// Policies whose actions are paused, by name.
    pub paused: Mutex<HashMap<String, super::reactor::Paused>>,
    /// Policies waiting for datasources (their names) to deliver a complete listing.
    pub waiting: Mutex<HashMap<String, Vec<String>>>,
    /// When this process created each request (for the delay metric).
    pub created_at: Mutex<HashMap<String, Instant>>,
    /// Rate limits by service.
    limits: Mutex<HashMap<String, RateLimiter>>,
    /// The status this replica last wrote, by request name (with the request's uid and the
    /// resourceVersion the write produced).
    written: Mutex<HashMap<String, Written>>,
    /// Outcomes of calls whose status could not be written yet, by request name.
    unwritten: Mutex<HashMap<String, (String, ActionRequestStatus)>>,
    /// Requests being executed by this process.
    running: Mutex<HashSet<String>>,
}

impl Actions {
    pub fn new(enabled: bool, retention: Duration) -> Actions {
        Actions {
            enabled,
            retention,
            resync: Notify::new(),
            policies: OnceLock::new(),
            requests: OnceLock::new(),
            paused: Mutex::default(),
            waiting: Mutex::default(),
            created_at: Mutex::default(),
            limits: Mutex::default(),
            written: Mutex::default(),
            unwritten: Mutex::default(),
            running: Mutex::default(),
        }
    }

    /// Forget what was written (another replica may have written since).
    pub fn forget_written(&self) {
        lock(&self.written).clear();
    }
}

/// A status as this replica wrote it.
#[derive(Clone, Debug)]
struct Written {
    uid: String,
    resource_version: Option<String>,
    status: ActionRequestStatus,
}

/// At most `per_minute` starts in any 60 seconds.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    starts: VecDeque<Instant>,
}

impl RateLimiter {
    const WINDOW: Duration = Duration::from_secs(60);

    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter { per_minute, starts: VecDeque::new() }
    }

    /// Take a start at `now`, or say how long until one is free (`None`: never, the limit
    /// is 0).
    pub fn try_start(&mut self, now: Instant) -> Result<(), Option<Duration>> {
        while self.starts.front().is_some_and(|t| now.duration_since(*t) >= Self::WINDOW) {
            self.starts.pop_front();
        }
        if self.per_minute == 0 {
            return Err(None);
        }
        if self.starts.len() < self.per_minute as usize {
            self.starts.push_back(now);
            return Ok(());
        }
        let oldest = self.starts.front().copied().unwrap_or(now);
        Err(Some(Self::WINDOW.saturating_sub(now.duration_since(oldest)).max(Duration::from_millis(10))))
    }

    /// Change the limit (the Datasource's spec changed), keeping the starts.
    pub fn set_limit(&mut self, per_minute: u32) {
        self.per_minute = per_minute;
    }
}

/// The delay before try `attempt + 1` after `attempt` transient failures: 1 s doubled per
/// failure, at most [`RETRY_CAP`].
pub fn retry_delay(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(16)).min(RETRY_CAP)
}

/// Who runs a service's actions.
pub enum Owner {
    Ready(Arc<dyn Executor>),
    /// No Datasource has that name.
    NoDatasource,
    /// The Datasource's driver cannot act (its kind has no executor).
    CannotAct(String),
    /// The driver is not running (yet): starting, or its configuration is broken.
    NotReady(String),
}

/// Why a reconcile failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing the status: {0}")]
    WriteStatus(#[source] kube::Error),
    #[error("deleting a finished request: {0}")]
    Delete(#[source] kube::Error),
    #[error("reading the request's policy or service: {0}")]
    Read(#[source] kube::Error),
}

impl super::ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::WriteStatus(_) => "WriteStatus",
            Error::Delete(_) => "Delete",
            Error::Read(_) => "Read",
        }
    }
}

pub async fn reconcile(request: Arc<ActionRequest>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = tracing::debug_span!("reconcile", kind = "ActionRequest", name = %request.name_any());
    super::timed(&ctx, &*request, tracing::Instrument::instrument(reconcile_inner(&request, &ctx), span)).await
}

/// The request's status: what this replica last wrote when it is about this very object
/// (the watch may not show it yet), else the object's.
fn current_status(request: &ActionRequest, ctx: &Context) -> ActionRequestStatus {
    let uid = request.meta().uid.clone().unwrap_or_default();
    lock(&ctx.actions.written)
        .get(&request.name_any())
        .filter(|w| w.uid == uid)
        .map(|w| w.status.clone())
        .or_else(|| request.status.clone())
        .unwrap_or_default()
}

/// The resourceVersion the request has after this replica's last write of it (else the
/// watched object's): the precondition of the `Running` write.
fn resource_version(request: &ActionRequest, ctx: &Context) -> Option<String> {
    let uid = request.meta().uid.clone().unwrap_or_default();
    lock(&ctx.actions.written)
        .get(&request.name_any())
        .filter(|w| w.uid == uid)
        .and_then(|w| w.resource_version.clone())
        .or_else(|| request.meta().resource_version.clone())
}

/// The policy a request runs as: from the Policy watch, else (the watch may not have
/// listed it yet, just after a start) from the API server.
async fn policy_of(ctx: &Context, request: &ActionRequest) -> Result<Option<Arc<Policy>>, Error> {
    let Some(name) = request.spec.policy.as_ref() else { return Ok(None) };
    if name.is_empty() || name.len() > 253 {
        return Ok(None);
    }
    if let Some(p) = ctx.actions.policies.get().and_then(|s| s.get(&ObjectRef::new(name))) {
        return Ok(Some(p));
    }
    let api: Api<Policy> = Api::all(ctx.client.clone());
    Ok(api.get_opt(name).await.map_err(Error::Read)?.map(Arc::new))
}

/// Whether Datasource `name` exists: from the watch, else from the API server.
async fn datasource_exists(ctx: &Context, name: &str) -> Result<bool, Error> {
    if name.is_empty() || name.len() > 253 {
        return Ok(false);
    }
    if let Some(d) = ctx.datasource_store.get().and_then(|s| s.get(&ObjectRef::new(name))) {
        return Ok(d.meta().deletion_timestamp.is_none());
    }
    let api: Api<congress_model::resources::Datasource> = Api::all(ctx.client.clone());
    Ok(api.get_opt(name).await.map_err(Error::Read)?.is_some_and(|d| d.meta().deletion_timestamp.is_none()))
}

async fn reconcile_inner(request: &ActionRequest, ctx: &Context) -> Result<Action, Error> {
    if !ctx.actions.enabled || !ctx.is_leader() || request.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = request.name_any();
    // An outcome not written yet is written first: it is what happened.
    let uid = request.meta().uid.clone().unwrap_or_default();
    let pending = lock(&ctx.actions.unwritten).remove(&name).filter(|(u, _)| *u == uid);
    if let Some((_, outcome)) = pending {
        write_outcome(request, ctx, outcome.clone()).await?;
        let again = if outcome.phase.is_some_and(Phase::is_finished) {
            ctx.actions.retention.max(Duration::from_secs(1))
        } else {
            Duration::from_millis(100)
        };
        return Ok(Action::requeue(again));
    }
    let old = current_status(request, ctx);
    let mut status = old.clone();
    status.policy.clone_from(&request.spec.policy);
    status.observed_generation = request.meta().generation;
    let generation = request.meta().generation;
    match old.phase {
        Some(p) if p.is_finished() => return collect(request, ctx, &old).await,
        Some(Phase::Running) if !lock(&ctx.actions.running).contains(&name) => {
            let message = "the operator stopped while the action ran: it may or may not have happened, and is not \
                           run again";
            fail(&mut status, "Interrupted", message, generation);
            return write(request, ctx, &old, status).await.map(|()| Action::await_change());
        }
        Some(Phase::Running) => return Ok(Action::await_change()),
        _ => {}
    }
    // Denied by a person: never run.
    if request.spec.denied {
        deny(&mut status, generation);
        tracing::info!(request = %name, action = %request.spec.name, "denied");
        write(request, ctx, &old, status).await?;
        return Ok(Action::requeue(ctx.actions.retention.max(Duration::from_secs(1))));
    }
    if status.explanation.is_none() && request.spec.trigger.is_some() {
        status.explanation = explanation(request, ctx).await;
    }
    // Validate: the policy it runs as, the owner of the action.
    let policy = policy_of(ctx, request).await?;
    if let (Some(p), None) = (&request.spec.policy, &policy) {
        fail(&mut status, "UnknownPolicy", &format!("no Policy named `{p}`"), generation);
        return write(request, ctx, &old, status).await.map(|()| Action::await_change());
    }
    let Some((service, action)) = request.spec.name.split_once(':') else {
        fail(&mut status, "InvalidName", "`spec.name` must be `service:action`", generation);
        return write(request, ctx, &old, status).await.map(|()| Action::await_change());
    };
    let exists = datasource_exists(ctx, service).await?;
    let executor = match ctx.owner(service, exists) {
        Owner::Ready(e) => e,
        Owner::NoDatasource => {
            let message = format!(
                "no Datasource named `{service}`: the service of `{}` is the Datasource of that name",
                request.spec.name
            );
            fail(&mut status, "UnknownService", &message, generation);
            return write(request, ctx, &old, status).await.map(|()| Action::await_change());
        }
        Owner::CannotAct(why) => {
            fail(&mut status, "NotExecutable", &why, generation);
            return write(request, ctx, &old, status).await.map(|()| Action::await_change());
        }
        Owner::NotReady(why) => {
            wait(&mut status, request, "WaitingForService", &format!("Datasource `{service}`: {why}"), generation);
            write(request, ctx, &old, status).await?;
            return Ok(Action::requeue(Duration::from_secs(10)));
        }
    };
    if !executor.offers(action) {
        let offered: Vec<String> = executor.actions().into_iter().map(|a| a.name).collect();
        let message = format!("service `{service}` offers no action `{action}` (it offers: {})", offered.join(", "));
        fail(&mut status, "UnknownAction", &message, generation);
        return write(request, ctx, &old, status).await.map(|()| Action::await_change());
    }
    if !request.spec.approved {
        wait(
            &mut status,
            request,
            "WaitingForApproval",
            "set `spec.approved: true` (`congress approve NAME`)",
            generation,
        );
        return write(request, ctx, &old, status).await.map(|()| Action::await_change());
    }
    // Its turn: a retry's backoff, then the service's rate limit.
    if let Some(next) = status.next_attempt_time.as_deref().and_then(parse_time) {
        let left = (next - chrono::Utc::now()).to_std().unwrap_or_default();
        if !left.is_zero() {
            wait(&mut status, request, "Retrying", old.last_error.as_deref().unwrap_or("retrying"), generation);
            write(request, ctx, &old, status).await?;
            return Ok(Action::requeue(left));
        }
    }
    if let Err(wait_for) = ctx.take_turn(service) {
        let message = match wait_for {
            Some(_) => format!("Datasource `{service}` allows no more actions this minute"),
            None => format!("Datasource `{service}` allows no actions (`actionsPerMinute: 0`)"),
        };
        wait(&mut status, request, "RateLimited", &message, generation);
        write(request, ctx, &old, status).await?;
        return Ok(Action::requeue(wait_for.unwrap_or(Duration::from_secs(60))));
    }
    // The context, before anything is on record: a Secret that cannot be read just now is
    // waited for; one that is missing or refuses this request fails it.
    let context = match context(ctx, request, policy.as_deref()).await {
        Ok(c) => c,
        Err(("ContextSecretUnreadable", message)) => {
            wait(&mut status, request, "ContextSecretUnreadable", &message, generation);
            write(request, ctx, &old, status).await?;
            return Ok(Action::requeue(Duration::from_secs(10)));
        }
        Err((reason, message)) => {
            fail(&mut status, reason, &message, generation);
            return write(request, ctx, &old, status).await.map(|()| Action::await_change());
        }
    };
    // Running is on record before the call, written onto the version of the request this
    // replica last saw, and only while it leads: a request is never run twice.
    if !ctx.is_leader() {
        return Ok(Action::await_change());
    }
    let settings = policy.as_ref().and_then(|p| p.spec.actions.clone()).unwrap_or_default();
    let max_attempts = request.spec.max_attempts.unwrap_or_else(|| settings.max_attempts()).clamp(1, 100);
    status.phase = Some(Phase::Running);
    status.attempts += 1;
    status.next_attempt_time = None;
    status.start_time.get_or_insert_with(now_rfc3339);
    status.conditions = vec![
        condition(&old, "Approved", "True", "Approved", "approved", generation),
        condition(&old, "Succeeded", "Unknown", "Running", &format!("attempt {}", status.attempts), generation),
    ];
    apply_status(request, ctx, status.clone(), resource_version(request, ctx)).await?;
    let running = status.clone();
    if !ctx.is_leader() {
        // Lost the lease in between: the new leader finds it Running and fails it as
        // Interrupted; it was not called here.
        return Ok(Action::await_change());
    }
    let outcome = execute(ctx, request, &executor, service, action, context).await;
    match outcome {
        Ok(summary) => {
            status.phase = Some(Phase::Succeeded);
            status.completion_time = Some(now_rfc3339());
            status.result = Some(summary);
            status.last_error = None;
            status.conditions = vec![
                condition(&running, "Approved", "True", "Approved", "approved", generation),
                condition(&running, "Succeeded", "True", "Succeeded", "the action ran", generation),
            ];
            tracing::info!(request = %name, action = %request.spec.name, dry_run = request.spec.dry_run, "action succeeded");
        }
        Err((reason, message, retryable)) if retryable && status.attempts < max_attempts => {
            let delay = retry_delay(status.attempts);
            status.phase = Some(Phase::Approved);
            status.last_error = Some(format!("{reason}: {message}"));
            status.next_attempt_time = Some(time_after(delay));
            status.conditions = vec![
                condition(&running, "Approved", "True", "Approved", "approved", generation),
                condition(&running, "Succeeded", "Unknown", "Retrying", &format!("{reason}: {message}"), generation),
            ];
            tracing::warn!(
                request = %name,
                reason,
                message = %message,
                attempt = status.attempts,
                retry_in = ?delay,
                "action failed; will retry"
            );
            write_outcome(request, ctx, status).await?;
            return Ok(Action::requeue(delay));
        }
        Err((reason, message, _)) => {
            tracing::warn!(request = %name, reason, message = %message, attempts = status.attempts, "action failed");
            fail(&mut status, reason, &message, generation);
        }
    }
    write_outcome(request, ctx, status).await?;
    Ok(Action::requeue(ctx.actions.retention.max(Duration::from_secs(1))))
}

/// Run the executor with the request's arguments and context; the error is (reason,
/// message, retryable).
async fn execute(
    ctx: &Context,
    request: &ActionRequest,
    executor: &Arc<dyn Executor>,
    service: &str,
    action: &str,
    context: ExecContext,
) -> Result<String, (&'static str, String, bool)> {
    let name = request.name_any();
    let call = ActionCall {
        action: action.to_string(),
        positional: request.spec.args.positional.clone(),
        named: request.spec.args.named.clone(),
        dry_run: request.spec.dry_run,
        context,
    };
    if let Some(created) = lock(&ctx.actions.created_at).remove(&name) {
        ctx.metrics.action_delay_seconds.observe(created.elapsed().as_secs_f64());
    }
    lock(&ctx.actions.running).insert(name.clone());
    let started = Instant::now();
    let result = tokio::time::timeout(CALL_TIMEOUT, executor.execute(call)).await;
    lock(&ctx.actions.running).remove(&name);
    ctx.metrics.action_seconds.observe(started.elapsed().as_secs_f64());
    let outcome = match result {
        Ok(Ok(o)) => Ok(o.summary),
        Ok(Err(e)) => Err((e.reason(), e.to_string(), e.retryable())),
        // The request was most likely sent: trying again could act twice.
        Err(_) => Err((
            "OutcomeUnknown",
            format!(
                "no answer within {} s: the action may or may not have happened, and is not tried again",
                CALL_TIMEOUT.as_secs()
            ),
            false,
        )),
    };
    let result = match &outcome {
        Ok(_) => "Succeeded",
        Err((reason, _, _)) => reason,
    };
    ctx.metrics
        .action_executions
        .get_or_create(&super::metrics::ActionLabel { service: service.to_string(), result: result.to_string() })
        .inc();
    outcome
}

/// The context of a request: the policy's `context`, its Secret's keys, then the request's
/// own (later keys win). An error names the Secret and the key, never a value.
async fn context(
    ctx: &Context,
    request: &ActionRequest,
    policy: Option<&Policy>,
) -> Result<ExecContext, (&'static str, String)> {
    // Who made the request decides whose secrets it may use: one the reactor made (it has a
    // trigger and is owned by its policy) gets its policy's Secret; one made by hand, which
    // anyone allowed to create ActionRequests could point at any service, only Secrets that
    // say `*`.
    let by_policy = request.spec.trigger.is_some()
        && policy.is_some_and(|p| {
            request.owner_references().iter().any(|o| o.kind == "Policy" && Some(&o.uid) == p.meta().uid.as_ref())
        });
    let user = if by_policy { request.spec.policy.clone().unwrap_or_default() } else { String::new() };
    let mut values: BTreeMap<String, SecretValue> = BTreeMap::new();
    if let Some(p) = policy {
        values.extend(p.spec.context.iter().map(|(k, v)| (k.clone(), SecretValue::new(v.clone()))));
        if let (Some(r), true) = (&p.spec.context_secret_ref, by_policy) {
            values.extend(secret_values(ctx, r, &user).await?);
        }
    }
    values.extend(request.spec.context.iter().map(|(k, v)| (k.clone(), SecretValue::new(v.clone()))));
    if let Some(r) = &request.spec.context_secret_ref {
        values.extend(secret_values(ctx, r, &user).await?);
    }
    Ok(ExecContext::new(values))
}

/// The keys of a context Secret that lists `user` (a policy name) or `*` in its annotation.
async fn secret_values(
    ctx: &Context,
    r: &SecretRef,
    user: &str,
) -> Result<Vec<(String, SecretValue)>, (&'static str, String)> {
    let who = if user.is_empty() { "requests made by hand".to_string() } else { format!("policy `{user}`") };
    let data = super::listed_secret(ctx, r, CONTEXT_USERS_ANNOTATION, user, &who).await.map_err(|(why, m)| {
        let reason = match why {
            "NotFound" => "ContextSecretNotFound",
            "Unreadable" => "ContextSecretUnreadable",
            _ => "ContextSecretNotAllowed",
        };
        (reason, m)
    })?;
    data.into_iter()
        .map(|(key, bytes)| match String::from_utf8(bytes) {
            Ok(v) => Ok((key, SecretValue::new(v))),
            Err(_) => Err(("BadContext", format!("Secret {} key `{key}` is not UTF-8", r.name))),
        })
        .collect()
}

/// The proof of the request's row, if it still holds.
async fn explanation(request: &ActionRequest, ctx: &Context) -> Option<String> {
    let trigger = request.spec.trigger.as_ref()?;
    let policy = engine_name(request.spec.policy.as_ref()?);
    let row = trigger.row.clone();
    let proof = ctx.engine.run(move |e| e.explain(&policy, &row)).await.ok()?;
    let text = match proof {
        Ok(p) => congress_engine::render_proof(&p),
        Err(e) => format!("not explained: {e}"),
    };
    Some(super::prefix(&text, 8000).to_string())
}

fn fail(status: &mut ActionRequestStatus, reason: &str, message: &str, generation: Option<i64>) {
    let old = status.clone();
    status.phase = Some(Phase::Failed);
    status.completion_time = Some(now_rfc3339());
    status.next_attempt_time = None;
    status.last_error = Some(format!("{reason}: {message}"));
    let approved = old.conditions.iter().find(|c| c.type_ == "Approved").cloned();
    status.conditions = approved
        .into_iter()
        .chain([condition(&old, "Succeeded", "False", reason, message, generation)])
        .collect::<Vec<Condition>>();
}

/// Refused by a person (`spec.denied`): finished, not run.
fn deny(status: &mut ActionRequestStatus, generation: Option<i64>) {
    let old = status.clone();
    status.phase = Some(Phase::Denied);
    status.completion_time = Some(now_rfc3339());
    status.next_attempt_time = None;
    status.conditions = vec![
        condition(&old, "Approved", "False", "Denied", "denied (`spec.denied: true`)", generation),
        condition(&old, "Succeeded", "False", "Denied", "denied: the action was not run", generation),
    ];
}

/// Not run yet: `Pending` until approved, then `Approved`.
fn wait(
    status: &mut ActionRequestStatus,
    request: &ActionRequest,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    let old = status.clone();
    let approved = request.spec.approved;
    status.phase = Some(if approved { Phase::Approved } else { Phase::Pending });
    status.conditions = vec![
        if approved {
            condition(&old, "Approved", "True", "Approved", "approved", generation)
        } else {
            condition(&old, "Approved", "False", reason, message, generation)
        },
        condition(&old, "Succeeded", "Unknown", reason, message, generation),
    ];
}

/// Server-side apply `status` unless it equals `old`.
async fn write(
    request: &ActionRequest,
    ctx: &Context,
    old: &ActionRequestStatus,
    status: ActionRequestStatus,
) -> Result<(), Error> {
    if status == *old {
        return Ok(());
    }
    apply_status(request, ctx, status, None).await
}

/// Server-side apply `status`; with `precondition`, only onto that resourceVersion (a 409
/// means another writer got there first: this replica's view is stale).
async fn apply_status(
    request: &ActionRequest,
    ctx: &Context,
    status: ActionRequestStatus,
    precondition: Option<String>,
) -> Result<(), Error> {
    let name = request.name_any();
    let api: Api<ActionRequest> = Api::all(ctx.client.clone());
    let mut body = serde_json::json!({"apiVersion": API_VERSION, "kind": "ActionRequest", "status": status});
    if let Some(rv) = precondition {
        body["metadata"] = serde_json::json!({"resourceVersion": rv});
    }
    let written = match api.patch_status(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body)).await {
        Ok(o) => o,
        Err(e) => {
            lock(&ctx.actions.written).remove(&name);
            return Err(Error::WriteStatus(e));
        }
    };
    let uid = request.meta().uid.clone().unwrap_or_default();
    let resource_version = written.meta().resource_version.clone();
    lock(&ctx.actions.written).insert(name, Written { uid, resource_version, status });
    Ok(())
}

/// Write the outcome of a call; when that fails, keep it to write at the next reconcile
/// (rather than take the request for interrupted and lose what happened).
async fn write_outcome(request: &ActionRequest, ctx: &Context, status: ActionRequestStatus) -> Result<(), Error> {
    let name = request.name_any();
    match apply_status(request, ctx, status.clone(), None).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let uid = request.meta().uid.clone().unwrap_or_default();
            lock(&ctx.actions.unwritten).insert(name, (uid, status));
            Err(e)
        }
    }
}

/// A finished request: deleted once the retention period is over and its row is gone.
async fn collect(request: &ActionRequest, ctx: &Context, status: &ActionRequestStatus) -> Result<Action, Error> {
    let finished = status.completion_time.as_deref().and_then(parse_time).unwrap_or_else(chrono::Utc::now);
    let age = (chrono::Utc::now() - finished).to_std().unwrap_or_default();
    let row_gone =
        request.spec.trigger.is_none() || request.labels().get(ROW_PRESENT_LABEL).is_some_and(|v| v == "false");
    if age < ctx.actions.retention {
        return Ok(Action::requeue(ctx.actions.retention - age + Duration::from_secs(1)));
    }
    if !row_gone {
        // Kept while its row holds: it is the record that the action was taken.
        return Ok(Action::requeue(Duration::from_secs(600)));
    }
    let api: Api<ActionRequest> = Api::all(ctx.client.clone());
    match api.delete(&request.name_any(), &DeleteParams::default()).await {
        Ok(_) => {
            lock(&ctx.actions.written).remove(&request.name_any());
            lock(&ctx.actions.created_at).remove(&request.name_any());
            tracing::info!(request = %request.name_any(), "finished request collected");
            Ok(Action::await_change())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Action::await_change()),
        Err(e) => Err(Error::Delete(e)),
    }
}

fn parse_time(t: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(t).ok().map(|t| t.with_timezone(&chrono::Utc))
}

fn time_after(d: Duration) -> String {
    let at = chrono::Utc::now() + chrono::Duration::from_std(d).unwrap_or_default();
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Context {
    /// Who runs the actions of `service` (a Datasource's name), given whether it `exists`.
    pub fn owner(&self, service: &str, exists: bool) -> Owner {
        if !exists {
            return Owner::NoDatasource;
        }
        let drivers = lock(&self.drivers);
        match drivers.get(service) {
            None => Owner::NotReady("its driver is starting".into()),
            Some(h) => h.owner(),
        }
    }

    /// A start on `service`'s rate limit, or how long to wait for one.
    fn take_turn(&self, service: &str) -> Result<(), Option<Duration>> {
        let per_minute = self
            .datasource_store
            .get()
            .and_then(|s| s.get(&ObjectRef::new(service)))
            .and_then(|d| d.spec.actions_per_minute)
            .unwrap_or(DEFAULT_PER_MINUTE);
        let mut limits = lock(&self.actions.limits);
        let limiter = limits.entry(service.to_string()).or_insert_with(|| RateLimiter::new(per_minute));
        limiter.set_limit(per_minute);
        limiter.try_start(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use congress_drivers::execute::ExecError;

    #[test]
    fn the_rate_limit_allows_n_starts_in_any_minute() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(3);
        assert!(l.try_start(t0).is_ok());
        assert!(l.try_start(t0 + Duration::from_secs(1)).is_ok());
        assert!(l.try_start(t0 + Duration::from_secs(2)).is_ok());
        // The fourth waits until the first start is a minute old.
        let wait = l.try_start(t0 + Duration::from_secs(3)).unwrap_err().unwrap();
        assert_eq!(wait, Duration::from_secs(57));
        assert!(l.try_start(t0 + Duration::from_secs(60)).is_ok());
        assert!(l.try_start(t0 + Duration::from_secs(60)).is_err());
        // A limit of 0 never starts; raising it takes effect at once.
        let mut zero = RateLimiter::new(0);
        assert_eq!(zero.try_start(t0), Err(None));
        zero.set_limit(1);
        assert!(zero.try_start(t0).is_ok());
    }

    #[test]
    fn retries_back_off_exponentially_up_to_a_cap() {
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(2), Duration::from_secs(2));
        assert_eq!(retry_delay(5), Duration::from_secs(16));
        assert_eq!(retry_delay(40), RETRY_CAP);
        assert_eq!(retry_delay(0), Duration::from_secs(1));
    }

    #[test]
    fn failing_keeps_the_approval_and_says_why() {
        let mut s = ActionRequestStatus {
            conditions: vec![Condition {
                type_: "Approved".into(),
                status: "True".into(),
                reason: "Approved".into(),
                ..Condition::default()
            }],
            ..ActionRequestStatus::default()
        };
        fail(&mut s, "UnknownService", "no Datasource named `nova`", Some(3));
        assert_eq!(s.phase, Some(Phase::Failed));
        assert_eq!(s.last_error.as_deref(), Some("UnknownService: no Datasource named `nova`"));
        assert!(s.completion_time.is_some());
        let succeeded = s.conditions.iter().find(|c| c.type_ == "Succeeded").unwrap();
        assert_eq!((succeeded.status.as_str(), succeeded.reason.as_str()), ("False", "UnknownService"));
        assert_eq!(succeeded.observed_generation, Some(3));
        assert!(s.conditions.iter().any(|c| c.type_ == "Approved" && c.status == "True"));
    }

    #[test]
    fn waiting_is_pending_until_approved() {
        let mut r = ActionRequest::new("r", Default::default());
        let mut s = ActionRequestStatus::default();
        wait(&mut s, &r, "WaitingForApproval", "approve it", Some(1));
        assert_eq!(s.phase, Some(Phase::Pending));
        r.spec.approved = true;
        wait(&mut s, &r, "RateLimited", "later", Some(2));
        assert_eq!(s.phase, Some(Phase::Approved));
        assert!(s.conditions.iter().any(|c| c.type_ == "Approved" && c.status == "True"));
    }

    #[test]
    fn an_exec_error_reason_decides_the_retry() {
        let t = ExecError::Transient { summary: "POST x".into(), message: "503".into() };
        let r = ExecError::Refused { summary: "POST x".into(), status: 404, message: "no server".into() };
        assert!(t.retryable() && !r.retryable());
    }
}
