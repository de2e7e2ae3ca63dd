//! Reactive enforcement, first half: `execute[...]` rows become ActionRequests.
//!
//! Every commit's changes of `execute[...]` tables come from the engine thread, in commit
//! order ([`super::engine::ExecuteDelta`]). For a policy whose `spec.enforcement` is
//! `reactive`, each row that *appears* becomes one ActionRequest; a row that disappears
//! marks its request's appearance as ended (label `congress.dev/row-present: "false"`), so
//! that the row coming back is a new appearance and a new request. This is Congress's
//! semantics (an action fires once per appearance of a row), made durable.
//!
//! An appearance ends only when this replica, leading, sees the row go. A resync creates the
//! requests of rows that hold and have none, but never ends an appearance because a row is
//! missing: a replica that has just loaded a policy, or just started reading a table, has
//! not read the rows yet, and ending their appearances would run their actions twice. The
//! cost is the other way round: a row that goes and comes back while no replica leads is
//! taken for the same appearance (an action is missed rather than repeated).
//!
//! A request's name is deterministic: the policy, a digest of the table and row, and the
//! appearance's number. Two replicas, a restart or a replay compute the same name, and the
//! API server refuses the second create: nothing runs twice. What the operator remembers
//! (the [`Ledger`]) is rebuilt from the requests themselves, and a resync compares a
//! policy's current `execute[...]` rows with its requests after a restart, on becoming
//! leader, when a policy changes, and every [`RESYNC`].
//!
//! Safety: only the leader creates; nothing is created or ended for a policy before every
//! datasource it reads (through the policies it reads) has delivered a complete listing (a
//! half-read cloud would fire actions it would not otherwise, or end appearances that did not
//! end); with the kill switch
//! (`--disable-actions`) nothing is; a commit that would create more than the policy's
//! `actions.maxPerCommit` creates none and pauses the policy's actions (its condition
//! `ActionsPaused`) until its spec changes.

use super::engine::ExecuteDelta;
use super::{Context, engine_name, lock, resource_name};
use congress_engine::Value;
use congress_model::resources::{
    API_VERSION, ActionArgs, ActionRequest, ActionRequestSpec, ActionSettings, ActionTrigger, Approval, Enforcement,
    Policy,
};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use md5::{Digest, Md5};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// How often every reactive policy is compared with its requests anyway.
pub const RESYNC: Duration = Duration::from_secs(60);
/// Label: whether the row that asked for a request is still there (`"true"`/`"false"`).
pub const ROW_PRESENT_LABEL: &str = "congress.dev/row-present";
/// Label: the policy that asked (when its name fits a label value).
pub const POLICY_LABEL: &str = "congress.dev/policy";
/// Label: the digest of the row (see [`row_hash`]).
pub const ROW_LABEL: &str = "congress.dev/row";
/// Requests created at once (API calls in flight).
const PARALLEL_CREATES: usize = 8;

/// One row of one execute table of one policy.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey {
    /// The policy's resource name.
    pub policy: String,
    pub hash: String,
}

/// The digest naming a row: the policy (its uid: a policy deleted and made again under the
/// same name starts its appearances afresh), table and values (10 hex digits of MD5: a name,
/// not a secret; a collision would merge two rows' appearances, at odds of 1 in 2^40 per pair).
pub fn row_hash(policy: &str, table: &str, row: &[Value]) -> String {
    let mut h = Md5::new();
    h.update(policy.as_bytes());
    h.update(b"\n");
    h.update(table.as_bytes());
    for v in row {
        h.update(b"\n");
        h.update(v.to_json().to_string().as_bytes());
    }
    let digest = h.finalize();
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

/// The name of the request for `appearance` of a row: `POLICY-HASH-N` (the policy's name
/// cut so that the whole is a valid object name).
pub fn request_name(policy: &str, hash: &str, appearance: u32) -> String {
    let head: String = policy.chars().take(200).collect();
    format!("{}-{hash}-{appearance}", head.trim_end_matches(['-', '.']))
}

/// The row as Congress prints it: `execute[nova:servers.pause("vm1")]`.
pub fn row_text(table: &str, row: &[Value]) -> String {
    let cells: Vec<String> = row.iter().map(Value::to_string).collect();
    format!("execute[{table}({})]", cells.join(", "))
}

/// The service and action of an execute table: `nova:servers.pause` is service `nova`; a
/// table without a service prefix belongs to the policy itself (Congress's rule).
pub fn service_and_action(policy: &str, table: &str) -> (String, String) {
    match table.split_once(':') {
        Some((s, a)) => (s.to_string(), a.to_string()),
        None => (policy.to_string(), table.to_string()),
    }
}

/// The latest appearance of each row the operator knows of, and whether it still holds.
#[derive(Debug, Default)]
pub struct Ledger {
    rows: HashMap<RowKey, Appearance>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appearance {
    pub number: u32,
    pub present: bool,
}

impl Ledger {
    /// The latest appearance of `key`: remembered, else read from `requests` (the requests
    /// as the API server has them).
    pub fn latest<'a>(
        &mut self,
        key: &RowKey,
        requests: impl Iterator<Item = &'a ActionRequest>,
    ) -> Option<Appearance> {
        if let Some(a) = self.rows.get(key) {
            return Some(*a);
        }
        let found = requests
            .filter(|r| r.spec.policy.as_deref() == Some(key.policy.as_str()))
            .filter_map(|r| {
                let t = r.spec.trigger.as_ref().filter(|t| t.row_hash == key.hash)?;
                let present = r.labels().get(ROW_PRESENT_LABEL).is_none_or(|v| v != "false");
                Some(Appearance { number: t.appearance, present })
            })
            .max_by_key(|a| a.number)?;
        self.rows.insert(key.clone(), found);
        Some(found)
    }

    pub fn record(&mut self, key: RowKey, appearance: Appearance) {
        self.rows.insert(key, appearance);
    }

    /// Forget everything (another replica may have written since).
    pub fn clear(&mut self) {
        self.rows.clear();
    }
}

/// A row that needs a request.
#[derive(Clone, Debug)]
struct Wanted {
    key: RowKey,
    table: String,
    row: Vec<Value>,
    appearance: u32,
}

/// Why a policy's actions are paused, as its status shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paused {
    /// The generation paused: a new one resumes.
    pub generation: Option<i64>,
    pub wanted: usize,
    pub cap: u32,
}

/// The reactor's task: turn execute deltas into requests until the channel closes.
pub async fn run(ctx: Arc<Context>, mut deltas: UnboundedReceiver<Vec<ExecuteDelta>>) {
    let mut ledger = Ledger::default();
    let mut unmarked: Vec<(RowKey, u32)> = Vec::new();
    let mut stale = true;
    let mut leading = ctx.is_leader();
    // Appearances are read back from the requests: not before they are listed.
    // Polled, not awaited: a store's readiness wakes only its latest waiter (kube-runtime's
    // `DelayedInit` keeps one waker), and the controller itself waits on it too.
    while let Some(store) = ctx.actions.requests.get()
        && futures::FutureExt::now_or_never(store.wait_until_ready()).is_none()
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut tick = tokio::time::interval(RESYNC);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let batch = tokio::select! {
            batch = deltas.recv() => match batch {
                Some(b) => Some(b),
                None => return,
            },
            _ = tick.tick() => None,
            () = ctx.actions.resync.notified() => None,
        };
        let leader = ctx.is_leader();
        if leader != leading {
            ledger.clear();
            unmarked.clear();
            stale = true;
            leading = leader;
        }
        if !leader {
            // What happens meanwhile is read from the engine once it may be acted on.
            stale = true;
            continue;
        }
        match batch {
            Some(batch) if !stale => {
                let mut by_policy: BTreeMap<String, Vec<ExecuteDelta>> = BTreeMap::new();
                for d in batch {
                    by_policy.entry(d.policy.clone()).or_default().push(d);
                }
                for (engine, deltas) in by_policy {
                    unmarked.extend(apply_deltas(&ctx, &mut ledger, &resource_name(&engine), deltas).await);
                }
            }
            _ => {
                resync_all(&ctx, &mut ledger).await;
                stale = false;
            }
        }
        if !unmarked.is_empty() {
            let again = std::mem::take(&mut unmarked);
            unmarked = end_appearances(&ctx, &mut ledger, again).await;
            if !unmarked.is_empty() {
                resync_later(&ctx);
            }
        }
    }
}

/// The reactive policies, as the Policy watch has them.
fn reactive(ctx: &Context, name: &str) -> Option<Arc<Policy>> {
    let store = ctx.actions.policies.get()?;
    let p = store.get(&ObjectRef::new(name))?;
    (p.spec.enforcement == Enforcement::Reactive && p.meta().deletion_timestamp.is_none()).then_some(p)
}

/// What names a policy in row digests: its uid (its name when it has none, in tests).
fn identity(p: &Policy) -> String {
    p.meta().uid.clone().unwrap_or_else(|| p.name_any())
}

fn settings(p: &Policy) -> ActionSettings {
    p.spec.actions.clone().unwrap_or_default()
}

/// Whether `policy`'s actions are paused (a pause of an older generation is lifted).
fn paused(ctx: &Context, policy: &Policy) -> bool {
    let name = policy.name_any();
    let generation = policy.meta().generation;
    let mut map = lock(&ctx.actions.paused);
    match map.get(&name) {
        Some(p) if p.generation == generation => true,
        Some(_) => {
            map.remove(&name);
            false
        }
        None => false,
    }
}

fn pause(ctx: &Context, policy: &Policy, wanted: usize, cap: u32) {
    let name = policy.name_any();
    tracing::warn!(policy = %name, wanted, cap, "too many actions at once: the policy's actions are paused");
    lock(&ctx.actions.paused).insert(name.clone(), Paused { generation: policy.meta().generation, wanted, cap });
    ctx.metrics.actions_paused_total.get_or_create(&super::metrics::PolicyLabel { policy: name.clone() }).inc();
    ctx.trigger_policy(&name);
}

fn requests(ctx: &Context) -> Vec<Arc<ActionRequest>> {
    ctx.actions.requests.get().map(|s| s.state()).unwrap_or_default()
}

/// One commit's execute changes of one policy.
async fn apply_deltas(
    ctx: &Arc<Context>,
    ledger: &mut Ledger,
    policy_name: &str,
    deltas: Vec<ExecuteDelta>,
) -> Vec<(RowKey, u32)> {
    let Some(policy) = reactive(ctx, policy_name) else { return Vec::new() };
    if paused(ctx, &policy) || !ctx.actions.enabled || !ready(ctx, &policy).await {
        return Vec::new();
    }
    let existing = requests(ctx);
    let id = identity(&policy);
    let mut wanted = Vec::new();
    let mut ended = Vec::new();
    for d in &deltas {
        for row in &d.removed {
            let key = RowKey { policy: policy_name.to_string(), hash: row_hash(&id, &d.table, row) };
            if let Some(a) = ledger.latest(&key, existing.iter().map(|r| &**r)).filter(|a| a.present) {
                ended.push((key, a.number));
            }
        }
        for row in &d.added {
            let key = RowKey { policy: policy_name.to_string(), hash: row_hash(&id, &d.table, row) };
            match ledger.latest(&key, existing.iter().map(|r| &**r)) {
                Some(a) if a.present => {}
                latest => wanted.push(Wanted {
                    key,
                    table: d.table.clone(),
                    row: row.clone(),
                    appearance: latest.map_or(1, |a| a.number + 1),
                }),
            }
        }
    }
    let failed = end_appearances(ctx, ledger, ended).await;
    create_all(ctx, ledger, &policy, wanted).await;
    failed
}

/// Compare every reactive policy's current execute rows with its requests.
async fn resync_all(ctx: &Arc<Context>, ledger: &mut Ledger) {
    if !ctx.actions.enabled {
        return;
    }
    let Some(store) = ctx.actions.policies.get() else { return };
    for policy in store.state() {
        if policy.spec.enforcement == Enforcement::Reactive && policy.meta().deletion_timestamp.is_none() {
            resync(ctx, ledger, &policy).await;
        }
    }
}

async fn resync(ctx: &Arc<Context>, ledger: &mut Ledger, policy: &Policy) {
    if paused(ctx, policy) || !ready(ctx, policy).await {
        return;
    }
    let name = policy.name_any();
    let engine = engine_name(&name);
    let Ok(Ok(current)) = ctx.engine.run(move |e| e.execute_rows(&engine)).await else {
        return; // not loaded (yet): nothing is asked for
    };
    let existing = requests(ctx);
    let mut wanted = Vec::new();
    for (table, rows) in current {
        for row in rows {
            let key = RowKey { policy: name.clone(), hash: row_hash(&identity(policy), &table, &row) };
            match ledger.latest(&key, existing.iter().map(|r| &**r)) {
                Some(a) if a.present => {}
                latest => wanted.push(Wanted {
                    key,
                    table: table.clone(),
                    row,
                    appearance: latest.map_or(1, |a| a.number + 1),
                }),
            }
        }
    }
    create_all(ctx, ledger, policy, wanted).await;
}

/// Whether every datasource `policy` reads (through the policies it reads) has delivered a
/// complete listing: actions taken on a half-read cloud are not undone. A policy that waits
/// says so in its status (`ActionsPaused`, `WaitingForDatasources`) and is resynced once
/// they are in.
async fn ready(ctx: &Arc<Context>, policy: &Policy) -> bool {
    let name = policy.name_any();
    let engine = engine_name(&name);
    // Each datasource it reads, with the tables of it that policies read.
    let read = ctx
        .engine
        .run(move |e| {
            e.datasources_read(&engine).map(|names| {
                names
                    .into_iter()
                    .map(|d| {
                        let tables = e
                            .schema(&d)
                            .map(|s| s.keys().filter(|t| e.is_read(&d, t)).cloned().collect())
                            .unwrap_or_default();
                        (d, tables)
                    })
                    .collect::<Vec<(String, Vec<String>)>>()
            })
        })
        .await;
    let Ok(Ok(read)) = read else { return false };
    let waiting = ctx.datasources_not_loaded(&read);
    let changed = {
        let mut map = lock(&ctx.actions.waiting);
        let before = map.get(&name).cloned().unwrap_or_default();
        if waiting.is_empty() {
            map.remove(&name);
        } else {
            map.insert(name.clone(), waiting.clone());
        }
        before != waiting
    };
    if changed {
        ctx.trigger_policy(&name);
    }
    if waiting.is_empty() {
        return true;
    }
    resync_later(ctx);
    false
}

/// Mark the requests of appearances that ended (label `row-present: "false"`); the ledger
/// records the end at once. Returns the marks that could not be written, to try again.
async fn end_appearances(ctx: &Context, ledger: &mut Ledger, ended: Vec<(RowKey, u32)>) -> Vec<(RowKey, u32)> {
    let api: Api<ActionRequest> = Api::all(ctx.client.clone());
    let mut failed = Vec::new();
    for (key, number) in ended {
        ledger.record(key.clone(), Appearance { number, present: false });
        let name = request_name(&key.policy, &key.hash, number);
        let patch = serde_json::json!({"metadata": {"labels": {ROW_PRESENT_LABEL: "false"}}});
        match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => tracing::info!(request = %name, "the row that asked for it is gone"),
            // Deleted by hand: the appearance has ended anyway.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                tracing::warn!(request = %name, error = %e, "could not mark the row as gone; will try again");
                failed.push((key, number));
            }
        }
    }
    failed
}

/// Ask for a resync in a while (after a failed create: not at once, or a request the API
/// server refuses for good would be asked for in a loop).
fn resync_later(ctx: &Arc<Context>) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(RETRY_AFTER).await;
        ctx.actions.resync.notify_one();
    });
}

/// How long after a failed create or mark the reactor tries again.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// Create the requests for `wanted` rows of `policy`, unless they are more than its cap.
async fn create_all(ctx: &Arc<Context>, ledger: &mut Ledger, policy: &Policy, wanted: Vec<Wanted>) {
    if wanted.is_empty() {
        return;
    }
    let settings = settings(policy);
    let cap = settings.max_per_commit();
    if wanted.len() > cap as usize {
        pause(ctx, policy, wanted.len(), cap);
        return;
    }
    use futures::StreamExt;
    let results: Vec<(Wanted, Option<u32>)> = futures::stream::iter(wanted)
        .map(|w| async {
            let made = create(ctx, policy, &settings, &w).await;
            (w, made)
        })
        .buffer_unordered(PARALLEL_CREATES)
        .collect()
        .await;
    for (w, made) in results {
        match made {
            Some(number) => ledger.record(w.key, Appearance { number, present: true }),
            None => resync_later(ctx),
        }
    }
}

/// The request for one appearance of one row.
pub fn build_request(
    policy: &Policy,
    settings: &ActionSettings,
    table: &str,
    row: &[Value],
    appearance: u32,
) -> ActionRequest {
    let name = policy.name_any();
    let hash = row_hash(&identity(policy), table, row);
    let (service, action) = service_and_action(&engine_name(&name), table);
    let mut labels =
        BTreeMap::from([(ROW_LABEL.to_string(), hash.clone()), (ROW_PRESENT_LABEL.to_string(), "true".to_string())]);
    if name.len() <= 63 {
        labels.insert(POLICY_LABEL.to_string(), name.clone());
    }
    let owner = policy.meta().uid.clone().map(|uid| k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        api_version: API_VERSION.to_string(),
        kind: "Policy".to_string(),
        name: name.clone(),
        uid,
        controller: Some(true),
        block_owner_deletion: Some(false),
    });
    ActionRequest {
        metadata: ObjectMeta {
            name: Some(request_name(&name, &hash, appearance)),
            labels: Some(labels),
            owner_references: owner.map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: ActionRequestSpec {
            name: format!("{}:{action}", resource_name(&service)),
            args: ActionArgs { positional: row.iter().map(Value::to_json).collect(), named: BTreeMap::new() },
            options: BTreeMap::new(),
            approved: settings.approval == Approval::Automatic,
            denied: false,
            policy: Some(name.clone()),
            dry_run: settings.dry_run,
            context: BTreeMap::new(),
            context_secret_ref: None,
            max_attempts: Some(settings.max_attempts()),
            trigger: Some(ActionTrigger { row: row_text(table, row), row_hash: hash, appearance }),
        },
        status: None,
    }
}

/// Create the request for one appearance; the appearance it holds afterwards (None: the
/// API server could not be asked). A request of that name that exists already is this
/// appearance (another replica, a replay) unless its row was marked gone: then the
/// appearance known here was stale, and the next number is tried.
async fn create(ctx: &Context, policy: &Policy, settings: &ActionSettings, w: &Wanted) -> Option<u32> {
    let api: Api<ActionRequest> = Api::all(ctx.client.clone());
    let mut appearance = w.appearance;
    for _ in 0..MAX_STALE_APPEARANCES {
        let request = build_request(policy, settings, &w.table, &w.row, appearance);
        let name = request.name_any();
        match api.create(&PostParams::default(), &request).await {
            Ok(_) => {
                tracing::info!(request = %name, policy = %policy.name_any(), action = %request.spec.name, "action requested");
                ctx.metrics
                    .actions_created
                    .get_or_create(&super::metrics::PolicyLabel { policy: policy.name_any() })
                    .inc();
                lock(&ctx.actions.created_at).insert(name, std::time::Instant::now());
                return Some(appearance);
            }
            Err(kube::Error::Api(s)) if s.code == 409 => match api.get_opt(&name).await {
                Ok(Some(existing)) if existing.labels().get(ROW_PRESENT_LABEL).is_some_and(|v| v == "false") => {
                    appearance += 1;
                }
                Ok(_) => return Some(appearance),
                Err(e) => {
                    tracing::warn!(request = %name, error = %e, "could not read the existing action request");
                    return None;
                }
            },
            Err(e) => {
                tracing::warn!(request = %name, error = %e, "could not create the action request");
                return None;
            }
        }
    }
    None
}

/// Ended appearances skipped at most, when what is known of a row is stale.
const MAX_STALE_APPEARANCES: u32 = 16;

#[cfg(test)]
mod tests {
    use super::*;
    use congress_model::resources::PolicySpec;

    fn policy(name: &str, settings: ActionSettings) -> Policy {
        let mut p = Policy::new(
            name,
            PolicySpec { enforcement: Enforcement::Reactive, actions: Some(settings), ..PolicySpec::default() },
        );
        p.metadata.uid = Some("uid-1".into());
        p
    }

    #[test]
    fn names_are_deterministic_valid_and_distinct_per_row_and_appearance() {
        let row = vec![Value::str("vm-1")];
        let a = row_hash("p", "nova:servers.pause", &row);
        assert_eq!(a, row_hash("p", "nova:servers.pause", &row));
        assert_eq!(a.len(), 10);
        assert_ne!(a, row_hash("p", "nova:servers.stop", &row));
        assert_ne!(a, row_hash("q", "nova:servers.pause", &row));
        assert_ne!(a, row_hash("p", "nova:servers.pause", &[Value::str("vm-2")]));
        // A string and a number that print alike are different rows.
        assert_ne!(row_hash("p", "t", &[Value::str("1")]), row_hash("p", "t", &[Value::Int(1)]));
        assert_eq!(request_name("p", &a, 1), format!("p-{a}-1"));
        assert_ne!(request_name("p", &a, 1), request_name("p", &a, 2));
        let long = "x".repeat(253);
        assert!(request_name(&long, &a, 99).len() <= 253);
    }

    #[test]
    fn a_request_carries_the_row_the_policy_and_the_approval() {
        let p =
            policy("bad-flavors", ActionSettings { approval: Approval::Manual, dry_run: true, ..Default::default() });
        let r = build_request(&p, &settings(&p), "nova:servers.pause", &[Value::str("vm-1")], 2);
        assert_eq!(r.spec.name, "nova:servers.pause");
        assert_eq!(r.spec.args.positional, vec![serde_json::json!("vm-1")]);
        assert!(!r.spec.approved && r.spec.dry_run);
        assert_eq!(r.spec.policy.as_deref(), Some("bad-flavors"));
        let t = r.spec.trigger.clone().unwrap();
        assert_eq!((t.row.as_str(), t.appearance), ("execute[nova:servers.pause(\"vm-1\")]", 2));
        assert_eq!(r.name_any(), request_name("bad-flavors", &t.row_hash, 2));
        assert_eq!(r.labels().get(ROW_PRESENT_LABEL).map(String::as_str), Some("true"));
        assert_eq!(r.labels().get(POLICY_LABEL).map(String::as_str), Some("bad-flavors"));
        let owner = &r.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Policy", "uid-1"));
        // Automatic approval: created approved.
        let auto = policy("p", ActionSettings::default());
        assert!(build_request(&auto, &settings(&auto), "nova:servers.pause", &[], 1).spec.approved);
    }

    /// A policy deleted and made again (same name, new uid) starts its appearances afresh:
    /// the requests its first life left behind are not taken for its own.
    #[test]
    fn a_policy_made_again_names_its_requests_anew() {
        let first = policy("p", ActionSettings::default());
        let mut again = first.clone();
        again.metadata.uid = Some("uid-2".into());
        let row = [Value::str("vm-1")];
        let a = build_request(&first, &settings(&first), "nova:servers.pause", &row, 1);
        let b = build_request(&again, &settings(&again), "nova:servers.pause", &row, 1);
        assert_ne!(a.name_any(), b.name_any());
        let key = RowKey { policy: "p".into(), hash: b.spec.trigger.clone().unwrap().row_hash };
        assert_eq!(Ledger::default().latest(&key, [a].iter()), None);
    }

    #[test]
    fn a_table_without_a_service_belongs_to_the_policy() {
        assert_eq!(service_and_action("p", "nova:servers.pause"), ("nova".into(), "servers.pause".into()));
        assert_eq!(service_and_action("my_ds", "act"), ("my_ds".into(), "act".into()));
        let p = policy("my-ds", ActionSettings::default());
        assert_eq!(build_request(&p, &settings(&p), "act", &[], 1).spec.name, "my-ds:act");
    }

    /// Appearances are read back from the requests (a restart), and the ledger then wins.
    #[test]
    fn the_ledger_reads_the_latest_appearance_back_from_the_requests() {
        let p = policy("p", ActionSettings::default());
        let row = [Value::str("vm-1")];
        let first = build_request(&p, &settings(&p), "nova:servers.pause", &row, 1);
        let mut second = build_request(&p, &settings(&p), "nova:servers.pause", &row, 2);
        let mut ended = first.clone();
        ended.labels_mut().insert(ROW_PRESENT_LABEL.into(), "false".into());
        let key = RowKey { policy: "p".into(), hash: row_hash("uid-1", "nova:servers.pause", &row) };
        let mut ledger = Ledger::default();
        assert_eq!(ledger.latest(&key, [].iter()), None);
        let mut ledger = Ledger::default();
        assert_eq!(ledger.latest(&key, [ended.clone()].iter()), Some(Appearance { number: 1, present: false }));
        second.labels_mut().insert(ROW_PRESENT_LABEL.into(), "true".into());
        let mut ledger = Ledger::default();
        assert_eq!(ledger.latest(&key, [ended, second].iter()), Some(Appearance { number: 2, present: true }));
        ledger.record(key.clone(), Appearance { number: 2, present: false });
        assert_eq!(ledger.latest(&key, [].iter()), Some(Appearance { number: 2, present: false }));
        // Another policy's request for the same hash is not this row.
        let other = build_request(&policy("q", ActionSettings::default()), &ActionSettings::default(), "t", &row, 7);
        let mut ledger = Ledger::default();
        let q_key = RowKey { policy: "p".into(), hash: other.spec.trigger.clone().unwrap().row_hash };
        assert_eq!(ledger.latest(&q_key, [other].iter()), None);
    }
}
