//! The `kubernetes` driver: watches kinds of the cluster the operator runs in (kube-runtime's
//! watcher: a list, then a watch, relisted on expiry; never polled) and turns each object
//! into rows through a [`Translator`]. Events are taken in batches (all that are ready, up
//! to [`BATCH`]) and each batch is one engine transaction. Objects seen are recorded in an
//! [`ObjectIndex`] by uid, so reports can point a violation row at the object it names.

use super::rowset::RowSet;
use super::translate::{TableRows, Translator};
use super::{DriverStatus, Sink};
use congress_model::resources::{KubernetesSource, WatchedResource};
use futures::StreamExt;
use hashbrown::HashMap;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::{WatchStreamExt, watcher};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// At most this many watch events go into one transaction.
pub const BATCH: usize = 2048;

/// A Kubernetes object a row can point at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
}

/// Every watched object by uid (shared by all `kubernetes` datasources).
#[derive(Debug, Default)]
pub struct ObjectIndex(RwLock<std::collections::HashMap<String, ObjectRef>>);

// Locks are taken the operator's one way (`controllers::lock`): a panic while one was held
// leaves a map of plain entries, each written whole, so the lock is recovered, not failed on.
impl ObjectIndex {
    pub fn get(&self, uid: &str) -> Option<ObjectRef> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).get(uid).cloned()
    }
    fn insert(&self, r: ObjectRef) {
        self.0.write().unwrap_or_else(PoisonError::into_inner).insert(r.uid.clone(), r);
    }
    fn remove(&self, uid: &str) {
        self.0.write().unwrap_or_else(PoisonError::into_inner).remove(uid);
    }
}

/// Why the driver cannot start.
#[derive(Debug, thiserror::Error)]
pub enum KubernetesDriverError {
    #[error("`{api_version}` is not `group/version` or `version`")]
    BadApiVersion { api_version: String },
    #[error("{kind} ({api_version}) is not served by the API server: {source}")]
    Discovery { api_version: String, kind: String, source: kube::Error },
    #[error(transparent)]
    Mapping(#[from] super::translate::MappingError),
}

/// The validated translators of a `kubernetes` datasource, one per watched resource.
pub fn translators(source: &KubernetesSource) -> Result<Vec<Translator>, KubernetesDriverError> {
    Ok(Translator::many(source.resources.iter().map(|r| &r.table))?)
}

fn gvk(r: &WatchedResource) -> Result<GroupVersionKind, KubernetesDriverError> {
    let bad = || KubernetesDriverError::BadApiVersion { api_version: r.api_version.clone() };
    let (group, version) = match r.api_version.split_once('/') {
        Some((g, v)) if !g.is_empty() && !v.is_empty() && !v.contains('/') => (g, v),
        Some(_) => return Err(bad()),
        None if !r.api_version.is_empty() => ("", r.api_version.as_str()),
        None => return Err(bad()),
    };
    Ok(GroupVersionKind::gvk(group, version, &r.kind))
}

/// Resolve the resource (plural name) by discovery, unless `plural` is given.
pub async fn api_resource(client: &Client, r: &WatchedResource) -> Result<ApiResource, KubernetesDriverError> {
    let gvk = gvk(r)?;
    if let Some(plural) = &r.plural {
        return Ok(ApiResource::from_gvk_with_plural(&gvk, plural));
    }
    kube::discovery::pinned_kind(client, &gvk).await.map(|(ar, _)| ar).map_err(|source| {
        KubernetesDriverError::Discovery { api_version: r.api_version.clone(), kind: r.kind.clone(), source }
    })
}

/// Per watched resource: the rows each object produced, and the listing in progress.
#[derive(Default)]
struct ResourceState {
    objects: HashMap<String, TableRows>,
    relisting: Option<HashMap<String, TableRows>>,
    synced: bool,
}

/// Watch every resource of `source` and keep datasource `engine_name`'s tables equal to
/// what the objects translate to, until the task is dropped.
pub async fn run(
    client: Client,
    engine_name: String,
    source: KubernetesSource,
    sink: Arc<dyn Sink>,
    index: Arc<ObjectIndex>,
    status: watch::Sender<DriverStatus>,
) -> Result<(), KubernetesDriverError> {
    let translators = translators(&source)?;
    let mut streams = Vec::new();
    for (i, r) in source.resources.iter().enumerate() {
        let ar = api_resource(&client, r).await?;
        let api: Api<DynamicObject> = match &r.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        let mut config = watcher::Config::default();
        if let Some(sel) = &r.label_selector {
            config = config.labels(sel);
        }
        let stream = watcher(api, config).default_backoff().map(move |e| (i, e));
        streams.push(stream.boxed());
    }
    let tables = translators.iter().flat_map(Translator::tables);
    let mut rows = RowSet::new(tables);
    let mut states: Vec<ResourceState> = (0..translators.len()).map(|_| ResourceState::default()).collect();
    let mut events = futures::stream::select_all(streams).ready_chunks(BATCH);
    let mut errors = 0u64;
    let mut last_error = None;
    while let Some(batch) = events.next().await {
        let started = Instant::now();
        for (i, event) in batch {
            let (r, t, state) = (&source.resources[i], &translators[i], &mut states[i]);
            match event {
                Ok(event) => on_event(event, r, t, state, &mut rows, &index),
                Err(e) => {
                    errors += 1;
                    tracing::warn!(datasource = %engine_name, kind = %r.kind, error = %e, "watch failed; retrying");
                    last_error = Some(format!("watching {} ({}): {e}", r.kind, r.api_version));
                }
            }
        }
        if rows.is_dirty() {
            let changes = rows.take_changes();
            if !changes.is_empty() {
                if let Err(e) = sink.apply(&engine_name, changes).await {
                    errors += 1;
                    tracing::error!(datasource = %engine_name, error = %e, "engine rejected a batch");
                    last_error = Some(format!("engine rejected a batch: {e}"));
                } else {
                    last_error = None;
                }
            }
        }
        let synced = states.iter().all(|s| s.synced);
        let lag = started.elapsed();
        status.send_modify(|s| {
            s.synced = synced;
            s.rows = rows.rows_per_table().clone();
            s.last_sync = Some(congress_model::now_rfc3339());
            s.last_error.clone_from(&last_error);
            s.errors = errors;
            s.lag_seconds = lag.as_secs_f64();
        });
    }
    Ok(())
}

fn object_ref(obj: &DynamicObject, r: &WatchedResource) -> Option<ObjectRef> {
    Some(ObjectRef {
        api_version: r.api_version.clone(),
        kind: r.kind.clone(),
        namespace: obj.metadata.namespace.clone(),
        name: obj.metadata.name.clone()?,
        uid: obj.metadata.uid.clone()?,
    })
}

fn translate(obj: &DynamicObject, t: &Translator) -> TableRows {
    match serde_json::to_value(obj) {
        Ok(v) => t.translate(&v),
        Err(_) => TableRows::new(),
    }
}

fn replace(rows: &mut RowSet, old: Option<TableRows>, new: Option<&TableRows>) {
    for (table, list) in old.into_iter().flatten() {
        for row in list {
            rows.remove(&table, row);
        }
    }
    for (table, list) in new.into_iter().flatten() {
        for row in list {
            rows.add(table, row.clone());
        }
    }
}

fn on_event(
    event: watcher::Event<DynamicObject>,
    r: &WatchedResource,
    t: &Translator,
    state: &mut ResourceState,
    rows: &mut RowSet,
    index: &ObjectIndex,
) {
    match event {
        watcher::Event::Apply(obj) => {
            let Some(oref) = object_ref(&obj, r) else { return };
            let new = translate(&obj, t);
            replace(rows, state.objects.remove(&oref.uid), Some(&new));
            state.objects.insert(oref.uid.clone(), new);
            index.insert(oref);
        }
        watcher::Event::Delete(obj) => {
            let Some(uid) = obj.metadata.uid.as_deref() else { return };
            replace(rows, state.objects.remove(uid), None);
            index.remove(uid);
        }
        watcher::Event::Init => state.relisting = Some(HashMap::new()),
        watcher::Event::InitApply(obj) => {
            let Some(oref) = object_ref(&obj, r) else { return };
            let new = translate(&obj, t);
            state.relisting.get_or_insert_with(HashMap::new).insert(oref.uid.clone(), new);
            index.insert(oref);
        }
        watcher::Event::InitDone => {
            let listed = state.relisting.take().unwrap_or_default();
            let old = std::mem::take(&mut state.objects);
            for (uid, old_rows) in old {
                if !listed.contains_key(&uid) {
                    index.remove(&uid);
                }
                replace(rows, Some(old_rows), None);
            }
            for new in listed.values() {
                replace(rows, None, Some(new));
            }
            state.objects = listed;
            state.synced = true;
        }
    }
}

/// How long to wait before restarting a driver that could not start.
pub const RESTART_DELAY: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;
    use congress_model::resources::{ColumnMapping, TableMapping};

    fn resource(api_version: &str) -> WatchedResource {
        WatchedResource {
            api_version: api_version.into(),
            kind: "Pod".into(),
            table: TableMapping {
                table: "pods".into(),
                columns: vec![ColumnMapping {
                    name: "name".into(),
                    path: "metadata.name".into(),
                    ..Default::default()
                }],
                children: vec![],
            },
            ..Default::default()
        }
    }

    #[test]
    fn api_versions_split_into_group_and_version() {
        assert_eq!(gvk(&resource("v1")).unwrap(), GroupVersionKind::gvk("", "v1", "Pod"));
        assert_eq!(gvk(&resource("apps/v1")).unwrap(), GroupVersionKind::gvk("apps", "v1", "Pod"));
        for bad in ["", "/v1", "apps/", "a/b/c"] {
            assert!(gvk(&resource(bad)).is_err(), "{bad:?}");
        }
    }

    fn pod(uid: &str, name: &str) -> DynamicObject {
        let mut o = DynamicObject::new(name, &ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "Pod")));
        o.metadata.uid = Some(uid.into());
        o.metadata.namespace = Some("default".into());
        o
    }

    #[test]
    fn a_relist_removes_what_disappeared_and_keeps_the_rest() {
        let r = resource("v1");
        let t = Translator::new(&r.table).unwrap();
        let (mut state, mut rows, index) = (ResourceState::default(), RowSet::default(), ObjectIndex::default());
        on_event(watcher::Event::Apply(pod("1", "a")), &r, &t, &mut state, &mut rows, &index);
        on_event(watcher::Event::Apply(pod("2", "b")), &r, &t, &mut state, &mut rows, &index);
        assert_eq!(rows.take_changes()[0].added.len(), 2);
        assert_eq!(index.get("1").unwrap().name, "a");
        on_event(watcher::Event::Init, &r, &t, &mut state, &mut rows, &index);
        on_event(watcher::Event::InitApply(pod("2", "b")), &r, &t, &mut state, &mut rows, &index);
        on_event(watcher::Event::InitApply(pod("3", "c")), &r, &t, &mut state, &mut rows, &index);
        on_event(watcher::Event::InitDone, &r, &t, &mut state, &mut rows, &index);
        let c = rows.take_changes();
        assert_eq!(c[0].added, vec![vec![congress_engine::Value::str("c")]]);
        assert_eq!(c[0].removed, vec![vec![congress_engine::Value::str("a")]]);
        assert!(state.synced);
        assert!(index.get("1").is_none() && index.get("3").is_some());
        on_event(watcher::Event::Delete(pod("3", "c")), &r, &t, &mut state, &mut rows, &index);
        assert_eq!(rows.take_changes()[0].removed.len(), 1);
        assert_eq!(rows.rows_per_table()["pods"], 1);
    }
}
