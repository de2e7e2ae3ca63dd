//! Reactive enforcement in `congress serve`: each appearance of an `execute[...]` row of a
//! `reactive` policy becomes one ActionRequest (kept in the database), run by the data
//! source's driver once approved: at once when the policy's approval is `automatic`,
//! after a person approves it (API or dashboard) when it is `manual` or the server runs
//! with `--manual-approval`. A request may be denied instead. An action asked for by hand
//! (`?action=execute`) is a request approved by the asker, run at once.

use super::Standalone;
use super::store::Store;
use crate::api::backend::ActionView;
use crate::api::convert::stable_id;
use crate::api::error::ApiError;
use crate::api::extensions::print_row;
use crate::controllers::engine::ExecuteDelta;
use congress_drivers::execute::ActionCall;
use congress_model::resources::{ActionArgs, Approval, Enforcement};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::mpsc::UnboundedReceiver;

/// The most ActionRequests kept in memory and shown (the oldest finished ones go first).
const KEEP: usize = 10_000;

pub struct Actions {
    store: Arc<Store>,
    manual: bool,
    /// Newest first.
    list: Mutex<Vec<ActionView>>,
    /// Appearances seen per (policy, table, row): a row that goes and comes back is a new
    /// appearance, and a new request.
    appearances: Mutex<HashMap<String, u32>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn finished(phase: &str) -> bool {
    matches!(phase, "Succeeded" | "Failed" | "Denied")
}

impl Actions {
    pub fn new(store: Arc<Store>, manual: bool) -> Actions {
        let mut list: Vec<ActionView> =
            store.actions().unwrap_or_default().into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect();
        list.reverse();
        Actions { store, manual, list: Mutex::new(list), appearances: Mutex::new(HashMap::new()) }
    }

    pub fn list(&self) -> Vec<ActionView> {
        lock(&self.list).clone()
    }

    fn save(&self, view: &ActionView) {
        let created = chrono::DateTime::parse_from_rfc3339(&view.created).map_or(0, |d| d.timestamp_millis());
        if let Err(e) = self.store.put_action(&view.id, created, &serde_json::json!(view)) {
            tracing::error!(error = %e, request = %view.id, "ActionRequest not saved");
        }
        let mut list = lock(&self.list);
        match list.iter_mut().find(|v| v.id == view.id) {
            Some(v) => *v = view.clone(),
            None => list.insert(0, view.clone()),
        }
        if list.len() > KEEP {
            list.truncate(KEEP);
        }
    }

    /// Follow the engine's `execute[...]` changes.
    pub fn start(self: &Arc<Self>, backend: Weak<Standalone>, mut deltas: UnboundedReceiver<Vec<ExecuteDelta>>) {
        let me = self.clone();
        tokio::spawn(async move {
            while let Some(batch) = deltas.recv().await {
                let Some(backend) = backend.upgrade() else { return };
                for d in batch {
                    me.on_delta(&backend, d).await;
                }
            }
        });
    }

    async fn on_delta(self: &Arc<Self>, backend: &Arc<Standalone>, d: ExecuteDelta) {
        let Some(policy) = backend.reactive(&d.policy) else { return };
        if policy.spec.enforcement != Enforcement::Reactive {
            return;
        }
        let manual = self.manual || policy.spec.actions.as_ref().is_some_and(|a| a.approval == Approval::Manual);
        for row in &d.removed {
            let key = format!("{}\u{0}{}", d.policy, print_row(&d.table, row));
            lock(&self.appearances).entry(key).and_modify(|n| *n += 1).or_insert(1);
        }
        for row in d.added {
            let printed = print_row(&d.table, &row);
            let key = format!("{}\u{0}{printed}", d.policy);
            let n = *lock(&self.appearances).entry(key).or_insert(0);
            let id = stable_id(&[&d.policy, &printed, &n.to_string()]);
            if lock(&self.list).iter().any(|v| v.id == id) {
                continue;
            }
            let view = ActionView {
                id,
                name: d.table.clone(),
                args: ActionArgs { positional: row.iter().map(|v| v.to_json()).collect(), named: Default::default() },
                policy: Some(d.policy.clone()),
                phase: if manual { "Pending" } else { "Approved" }.into(),
                approved: !manual,
                created: congress_model::now_rfc3339(),
                message: None,
            };
            self.save(&view);
            if !manual {
                let (me, backend) = (self.clone(), backend.clone());
                tokio::spawn(async move { me.run(&backend, view).await });
            }
        }
    }

    /// Run an approved request with its service's driver.
    async fn run(&self, backend: &Standalone, mut view: ActionView) -> ActionView {
        view.phase = "Running".into();
        self.save(&view);
        let (service, action) = view.name.split_once(':').unwrap_or((view.name.as_str(), ""));
        let outcome = match backend.executor(service) {
            Err(why) => Err(why),
            Ok(x) => {
                let call = ActionCall {
                    action: action.to_string(),
                    positional: view.args.positional.clone(),
                    named: view.args.named.clone(),
                    ..Default::default()
                };
                x.execute(call).await.map(|o| o.summary).map_err(|e| e.to_string())
            }
        };
        match outcome {
            Ok(summary) => {
                view.phase = "Succeeded".into();
                view.message = Some(summary);
            }
            Err(why) => {
                tracing::warn!(request = %view.id, action = %view.name, error = %why, "action failed");
                view.phase = "Failed".into();
                view.message = Some(why);
            }
        }
        self.save(&view);
        view
    }

    /// `?action=execute`: run `name` (`service:action`) now.
    pub async fn by_hand(
        &self,
        backend: &Standalone,
        name: &str,
        args: ActionArgs,
        policy: Option<&str>,
    ) -> Result<ActionView, ApiError> {
        if !name.contains(':') {
            return Err(ApiError::bad_request(format!(
                "action `{name}`: name it `service:action`, e.g. nova:servers.pause"
            )));
        }
        let created = congress_model::now_rfc3339();
        let view = ActionView {
            id: stable_id(&[name, &created, &uuid::Uuid::new_v4().to_string()]),
            name: name.to_string(),
            args,
            policy: policy.map(str::to_string),
            phase: "Approved".into(),
            approved: true,
            created,
            message: Some("asked for by hand".into()),
        };
        self.save(&view);
        let done = self.run(backend, view).await;
        if done.phase == "Failed" {
            return Err(ApiError::internal("execute_error", done.message.clone().unwrap_or_default())
                .with_data(serde_json::json!(done)));
        }
        Ok(done)
    }

    /// Approve (and run) or deny a pending request.
    pub async fn decide(&self, backend: &Standalone, id: &str, approve: bool) -> Result<ActionView, ApiError> {
        let found = lock(&self.list).iter().find(|v| v.id == id).cloned();
        let mut view = found.ok_or_else(|| ApiError::not_found(format!("no ActionRequest {id}")))?;
        if finished(&view.phase) {
            return Err(ApiError::conflict(
                "action_finished",
                format!(
                    "ActionRequest {id} has finished ({}): it cannot be {}",
                    view.phase,
                    if approve { "approved" } else { "denied" }
                ),
            ));
        }
        if view.phase != "Pending" {
            return Err(ApiError::conflict("action_started", format!("ActionRequest {id} is {} already", view.phase)));
        }
        if !approve {
            view.phase = "Denied".into();
            view.message = Some("denied".into());
            self.save(&view);
            return Ok(view);
        }
        view.approved = true;
        view.phase = "Approved".into();
        self.save(&view);
        Ok(self.run(backend, view).await)
    }
}
