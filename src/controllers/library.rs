//! The library sync: installs the shipped policy library (LibraryPolicy manifests, from the
//! ConfigMap the chart renders from `library/`, or from a directory) as LibraryPolicy
//! objects, and never overwrites one an administrator changed ("no overwrite").
//!
//! Each object the sync writes carries the digest of the spec it wrote
//! (`congress.dev/library-digest`). On every pass (leader only: at start, when the shipped
//! library or a LibraryPolicy changes, and every minute):
//!
//! - a shipped policy with no object is created;
//! - an object whose spec still has the digest the sync wrote (nobody changed it) is updated
//!   to the shipped spec when that differs: a `helm upgrade` with a newer library updates it;
//! - an object whose spec differs from what the sync wrote (customised, or made by hand) is
//!   left alone: its status says `Customized=True` and, when the shipped spec differs,
//!   `UpdateAvailable=True` with the shipped version;
//! - an object annotated `congress.dev/reinitialize: "true"` (`congress library reset`) is
//!   put back to the shipped spec on purpose, and the annotation removed.
//!
//! Before a version is replaced by another, it is kept as `NAME.vVERSION` (labelled with the
//! policy's name and version), so that Policies that activated it keep running it until they
//! ask for the new one. Shipped policies no longer in the library are left as they are.

use super::Context;
use congress_model::resources::library_policy::{
    ARCHIVE_OF_LABEL, ARCHIVE_VERSION_LABEL, REINITIALIZE_ANNOTATION, SHIPPED_DIGEST_ANNOTATION,
    SOURCE_DIGEST_ANNOTATION, archive_name, version_label,
};
use congress_model::resources::{API_VERSION, LibraryPolicy, LibraryPolicySpec, LibraryPolicyStatus};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The field manager of the sync's writes.
const MANAGER: &str = "congress-library";
/// A pass at least this often, whatever the watches say.
const RESYNC: Duration = Duration::from_secs(60);
/// At most one pass this often.
const MIN_GAP: Duration = Duration::from_secs(1);
/// The label on objects the sync created.
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "congress-library");

/// Where the shipped library is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LibrarySource {
    /// A ConfigMap whose values are LibraryPolicy manifests (the chart's `RELEASE-library`).
    ConfigMap { namespace: String, name: String },
    /// A directory of LibraryPolicy manifests, searched recursively.
    Dir(PathBuf),
}

impl std::str::FromStr for LibrarySource {
    type Err = String;

    /// `configmap:NAMESPACE/NAME` or `dir:PATH`.
    fn from_str(s: &str) -> Result<LibrarySource, String> {
        if let Some(rest) = s.strip_prefix("configmap:") {
            let (namespace, name) = rest
                .split_once('/')
                .filter(|(ns, n)| !ns.is_empty() && !n.is_empty())
                .ok_or_else(|| format!("`{s}`: expected configmap:NAMESPACE/NAME"))?;
            return Ok(LibrarySource::ConfigMap { namespace: namespace.into(), name: name.into() });
        }
        if let Some(path) = s.strip_prefix("dir:").filter(|p| !p.is_empty()) {
            return Ok(LibrarySource::Dir(PathBuf::from(path)));
        }
        Err(format!("`{s}`: expected configmap:NAMESPACE/NAME or dir:PATH"))
    }
}

/// Why a pass of the sync failed (it is tried again at the next one).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("reading ConfigMap {namespace}/{name}: {source}")]
    ReadConfigMap {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading {path}: {source}")]
    ReadDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("listing LibraryPolicies: {source}")]
    List {
        #[source]
        source: kube::Error,
    },
    #[error("LibraryPolicy {name}: {source}")]
    Write {
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl SyncError {
    fn reason(&self) -> &'static str {
        match self {
            SyncError::ReadConfigMap { .. } => "ReadConfigMap",
            SyncError::ReadDir { .. } => "ReadDir",
            SyncError::List { .. } => "List",
            SyncError::Write { .. } => "Write",
        }
    }
}

/// One LibraryPolicy of the shipped library.
#[derive(Clone, Debug, PartialEq)]
pub struct Shipped {
    pub name: String,
    pub spec: LibraryPolicySpec,
}

/// The LibraryPolicies in manifest `text` (from `origin`, for messages): each document of
/// kind LibraryPolicy, validated; other documents are skipped; a document that is not a
/// valid LibraryPolicy is a problem (returned, not fatal: the rest is installed).
pub fn parse_manifests(origin: &str, text: &str) -> (Vec<Shipped>, Vec<String>) {
    use serde::Deserialize;
    let (mut out, mut problems) = (Vec::new(), Vec::new());
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value = match serde_json::Value::deserialize(doc) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{origin} (document {}): not YAML: {e}", i + 1));
                break;
            }
        };
        if value.is_null() || value.get("kind").and_then(|k| k.as_str()) != Some("LibraryPolicy") {
            continue;
        }
        if value.get("apiVersion").and_then(|k| k.as_str()) != Some(API_VERSION) {
            problems.push(format!("{origin} (document {}): apiVersion must be {API_VERSION}", i + 1));
            continue;
        }
        match serde_json::from_value::<LibraryPolicy>(value) {
            Ok(lp) => {
                let name = lp.name_any();
                if name.is_empty() {
                    problems.push(format!("{origin} (document {}): metadata.name is missing", i + 1));
                } else if let Err(m) = lp.spec.validate() {
                    problems.push(format!("{origin} (document {}): LibraryPolicy {name}: {m}", i + 1));
                } else {
                    out.push(Shipped { name, spec: lp.spec });
                }
            }
            Err(e) => problems.push(format!("{origin} (document {}): not a LibraryPolicy: {e}", i + 1)),
        }
    }
    (out, problems)
}

/// The shipped library: its policies (by name; a name given twice keeps the first) and the
/// problems found reading it.
pub async fn read_source(client: &Client, source: &LibrarySource) -> Result<(Vec<Shipped>, Vec<String>), SyncError> {
    let mut files: Vec<(String, String)> = Vec::new();
    match source {
        LibrarySource::ConfigMap { namespace, name } => {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
            let cm = api.get_opt(name).await.map_err(|source| SyncError::ReadConfigMap {
                namespace: namespace.clone(),
                name: name.clone(),
                source,
            })?;
            // A missing ConfigMap is an empty library (the chart installs it with the operator).
            for (key, text) in cm.and_then(|c| c.data).unwrap_or_default() {
                files.push((format!("ConfigMap {namespace}/{name} key {key}"), text));
            }
        }
        LibrarySource::Dir(dir) => {
            // Blocking file reads, off the async workers.
            let dir = dir.clone();
            let read = tokio::task::spawn_blocking(move || read_dir(&dir)).await;
            files = read.unwrap_or_else(|e| {
                Err(SyncError::ReadDir { path: String::new(), source: std::io::Error::other(e.to_string()) })
            })?;
        }
    }
    let (mut shipped, mut problems) = (Vec::<Shipped>::new(), Vec::new());
    for (origin, text) in files {
        let (found, bad) = parse_manifests(&origin, &text);
        problems.extend(bad);
        for s in found {
            if shipped.iter().any(|x| x.name == s.name) {
                problems.push(format!("{origin}: LibraryPolicy {} is shipped twice; the first is kept", s.name));
            } else {
                shipped.push(s);
            }
        }
    }
    Ok((shipped, problems))
}

/// Every `*.yaml`/`*.yml` file under `dir`, in path order, with its text.
fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, SyncError> {
    let mut paths = Vec::new();
    walk(dir, &mut paths).map_err(|source| SyncError::ReadDir { path: dir.display().to_string(), source })?;
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .map_err(|source| SyncError::ReadDir { path: p.display().to_string(), source })?;
            Ok((p.display().to_string(), text))
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

/// What one pass would do with one shipped policy, given the object in the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// No object: create it.
    Create,
    /// The object has the shipped spec.
    UpToDate,
    /// Write the shipped spec (keeping the old version as an archive when the version
    /// changes); `reinitialize`: on purpose, over a customisation.
    Update { archive: Option<String>, reinitialize: bool },
    /// Customised, and the shipped spec differs: left alone.
    Keep,
}

/// Whether the object's spec is no longer what the sync wrote: the digest of the spec as the
/// API server stored it at the sync's last write is in [`SHIPPED_DIGEST_ANNOTATION`] (as
/// stored, so a server that writes a spec back differently, e.g. `1.0` as `1`, does not make
/// every object look customised).
pub fn customized(live: &LibraryPolicy) -> bool {
    live.annotations().get(SHIPPED_DIGEST_ANNOTATION) != Some(&live.spec.digest())
}

/// Whether the object holds what the sync installed from this shipped spec.
fn installed_from(live: &LibraryPolicy, shipped: &Shipped) -> bool {
    live.annotations().get(SOURCE_DIGEST_ANNOTATION) == Some(&shipped.spec.digest())
}

/// The plan for `shipped` given `live` (the object of that name, if any). An object that is
/// customised but equal to the shipped spec (reverted, or applied by hand) is adopted: marked
/// as shipped, so later upgrades update it.
pub fn plan(shipped: &Shipped, live: Option<&LibraryPolicy>) -> Plan {
    let Some(live) = live else { return Plan::Create };
    let reinitialize = live.annotations().get(REINITIALIZE_ANNOTATION).is_some_and(|v| v == "true");
    let same = live.spec.digest() == shipped.spec.digest();
    let archive = (!same && live.spec.version() != shipped.spec.version())
        .then(|| archive_name(&shipped.name, live.spec.version()));
    if reinitialize {
        return Plan::Update { archive, reinitialize };
    }
    match (customized(live), installed_from(live, shipped)) {
        (false, true) => Plan::UpToDate,
        (false, false) => Plan::Update { archive, reinitialize },
        (true, _) if same => Plan::Update { archive: None, reinitialize },
        (true, _) => Plan::Keep,
    }
}

/// The status the sync gives an object after its plan.
fn status_of(
    old: Option<&LibraryPolicyStatus>,
    shipped: &Shipped,
    plan: &Plan,
    generation: Option<i64>,
) -> LibraryPolicyStatus {
    let old = old.cloned().unwrap_or_default();
    let cond = |type_: &str, status: &str, reason: &str, message: String| {
        super::condition(&old, type_, status, reason, &message, generation)
    };
    let v = shipped.spec.version();
    let (customized, update) = match plan {
        Plan::Keep => (
            cond(
                "Customized",
                "True",
                "Changed",
                "the spec differs from the shipped one: upgrades leave it alone".into(),
            ),
            cond(
                "UpdateAvailable",
                "True",
                "ShippedVersionDiffers",
                format!("the shipped library has version {v}; `congress library reset {}` takes it", shipped.name),
            ),
        ),
        _ => (
            cond("Customized", "False", "Shipped", format!("the shipped version {v}")),
            cond("UpdateAvailable", "False", "UpToDate", format!("the shipped version {v} is installed")),
        ),
    };
    LibraryPolicyStatus { conditions: vec![customized, update], shipped_version: Some(v.to_string()) }
}

/// What a pass did, for logs and tests.
#[derive(Debug, Default)]
pub struct Outcome {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub archived: Vec<String>,
    pub kept: Vec<String>,
    /// Reinitialise requests on LibraryPolicies the library does not ship, dropped.
    pub dropped_requests: Vec<String>,
    /// Shipped policies that could not be written this pass (the others were).
    pub failed: Vec<SyncError>,
}

fn object(name: &str, spec: &LibraryPolicySpec, labels: BTreeMap<String, String>) -> LibraryPolicy {
    let mut lp = LibraryPolicy::new(name, spec.clone());
    lp.metadata = ObjectMeta { name: Some(name.to_string()), labels: Some(labels), ..Default::default() };
    lp
}

fn write_error(name: &str) -> impl Fn(kube::Error) -> SyncError {
    let name = name.to_string();
    move |source| SyncError::Write { name: name.clone(), source }
}

/// One pass over `shipped` against the cluster. Each shipped policy is handled on its own:
/// one the API server refuses is reported in [`Outcome::failed`], and the rest are written.
pub async fn sync(client: &Client, shipped: &[Shipped]) -> Result<Outcome, SyncError> {
    let api: Api<LibraryPolicy> = Api::all(client.clone());
    let mut live: BTreeMap<String, LibraryPolicy> = api
        .list(&ListParams::default())
        .await
        .map_err(|source| SyncError::List { source })?
        .items
        .into_iter()
        .map(|lp| (lp.name_any(), lp))
        .collect();
    let mut out = Outcome::default();
    for s in shipped {
        if let Err(e) = sync_one(&api, s, live.remove(&s.name), &mut out).await {
            out.failed.push(e);
        }
    }
    // A re-initialise request on a LibraryPolicy the library does not ship cannot be met:
    // drop it, so that it does not overwrite the object if a later library ships its name.
    for (name, lp) in live {
        if lp.annotations().contains_key(REINITIALIZE_ANNOTATION) && !lp.labels().contains_key(ARCHIVE_OF_LABEL) {
            let patch = json!({"metadata": {"annotations": {REINITIALIZE_ANNOTATION: null}}});
            match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => out.dropped_requests.push(name),
                Err(e) => out.failed.push(write_error(&name)(e)),
            }
        }
    }
    Ok(out)
}

async fn sync_one(
    api: &Api<LibraryPolicy>,
    s: &Shipped,
    live: Option<LibraryPolicy>,
    out: &mut Outcome,
) -> Result<(), SyncError> {
    let write = write_error(&s.name);
    let plan = plan(s, live.as_ref());
    let digest = s.spec.digest();
    let written = match (&plan, live) {
        (Plan::Create, _) => {
            let mut lp = object(&s.name, &s.spec, BTreeMap::from([(MANAGED_BY.0.into(), MANAGED_BY.1.into())]));
            lp.annotations_mut().insert(SHIPPED_DIGEST_ANNOTATION.into(), digest.clone());
            lp.annotations_mut().insert(SOURCE_DIGEST_ANNOTATION.into(), digest);
            match api.create(&PostParams::default(), &lp).await {
                Ok(created) => {
                    out.created.push(s.name.clone());
                    Some(created)
                }
                // Made meanwhile (another writer): the next pass sees it.
                Err(kube::Error::Api(e)) if e.code == 409 => None,
                Err(e) => return Err(write(e)),
            }
        }
        (Plan::Update { archive, .. }, Some(live)) => {
            if let Some(archive) = archive {
                keep_version(api, &s.name, archive, &live.spec).await?;
                out.archived.push(archive.clone());
            }
            let mut next = live.clone();
            next.spec = s.spec.clone();
            next.status = None;
            next.annotations_mut().insert(SHIPPED_DIGEST_ANNOTATION.into(), digest.clone());
            next.annotations_mut().insert(SOURCE_DIGEST_ANNOTATION.into(), digest);
            next.annotations_mut().remove(REINITIALIZE_ANNOTATION);
            // The resourceVersion makes this a compare-and-swap: a change made since the
            // read gets 409, and the next pass looks again.
            match api.replace(&s.name, &PostParams::default(), &next).await {
                Ok(replaced) => {
                    out.updated.push(s.name.clone());
                    Some(replaced)
                }
                Err(kube::Error::Api(e)) if e.code == 409 => None,
                Err(e) => return Err(write(e)),
            }
        }
        (Plan::Keep, live) => {
            out.kept.push(s.name.clone());
            live
        }
        (_, live) => live,
    };
    let Some(mut obj) = written else { return Ok(()) };
    // Record the digest of the spec as the server stored it (see [`customized`]).
    let stored = obj.spec.digest();
    if matches!(plan, Plan::Create | Plan::Update { .. })
        && obj.annotations().get(SHIPPED_DIGEST_ANNOTATION) != Some(&stored)
    {
        tracing::debug!(policy = %s.name, "the API server stored the spec differently from how it was written");
        let patch = json!({"metadata": {"annotations": {SHIPPED_DIGEST_ANNOTATION: stored}}});
        obj = api.patch(&s.name, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(&write)?;
    }
    let status = status_of(obj.status.as_ref(), s, &plan, obj.metadata.generation);
    if obj.status.as_ref() != Some(&status) {
        let body = json!({"apiVersion": API_VERSION, "kind": "LibraryPolicy", "status": status});
        api.patch_status(&s.name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body)).await.map_err(&write)?;
    }
    Ok(())
}

/// Keep `spec` as the archived version `archive` of library policy `name`: created, or
/// replaced when an archive of that name holds something else (the content Policies run for
/// a version is the one the LibraryPolicy had when it moved on).
pub async fn keep_version(
    api: &Api<LibraryPolicy>,
    name: &str,
    archive: &str,
    spec: &LibraryPolicySpec,
) -> Result<(), SyncError> {
    let labels = BTreeMap::from([
        (ARCHIVE_OF_LABEL.to_string(), name.to_string()),
        (ARCHIVE_VERSION_LABEL.to_string(), version_label(spec.version())),
        (MANAGED_BY.0.into(), MANAGED_BY.1.into()),
    ]);
    let write = write_error(archive);
    match api.create(&PostParams::default(), &object(archive, spec, labels)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let mut existing = api.get(archive).await.map_err(&write)?;
            if existing.spec.digest() == spec.digest() {
                return Ok(());
            }
            existing.spec = spec.clone();
            existing.status = None;
            api.replace(archive, &PostParams::default(), &existing).await.map_err(&write)?;
            Ok(())
        }
        Err(e) => Err(write(e)),
    }
}

/// Run the sync while this replica leads: a pass at start, when the source or a
/// LibraryPolicy changes, and every [`RESYNC`].
pub async fn run(ctx: Arc<Context>, source: LibrarySource) {
    use kube::runtime::WatchStreamExt;
    let client = ctx.client.clone();
    // Watch errors (no RBAC, no CRD) back off instead of waking the loop at once, and are
    // logged; any event, or an error, is a reason to look again.
    let libraries = watcher(Api::<LibraryPolicy>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .map(logged("LibraryPolicy"))
        .boxed();
    let configmaps = match &source {
        LibrarySource::ConfigMap { namespace, name } => watcher(
            Api::<ConfigMap>::namespaced(client.clone(), namespace),
            watcher::Config::default().fields(&format!("metadata.name={name}")),
        )
        .default_backoff()
        .map(logged("ConfigMap"))
        .boxed(),
        LibrarySource::Dir(_) => futures::stream::pending().boxed(),
    };
    let mut changes = futures::stream::select(libraries, configmaps);
    let mut leader = ctx.leader_updates();
    let mut last_problems: Vec<String> = Vec::new();
    loop {
        let started = tokio::time::Instant::now();
        if ctx.is_leader() {
            match pass(&ctx, &source).await {
                Ok(problems) => {
                    if problems != last_problems {
                        for p in &problems {
                            tracing::warn!(problem = %p, "shipped library policy not installed");
                        }
                    }
                    last_problems = problems;
                }
                Err(e) => count_failure(&ctx, &e),
            }
        }
        // Wait for a change (coalescing a burst), a leadership change, or the resync; at
        // most one pass a second, whatever the watches say.
        tokio::select! {
            _ = changes.next() => {
                tokio::time::sleep_until(started + MIN_GAP).await;
                while let Some(Some(_)) = futures::FutureExt::now_or_never(changes.next()) {}
            }
            _ = leader.changed() => {}
            _ = tokio::time::sleep(RESYNC) => {}
        }
    }
}

/// Log a watch's errors; its events become `()`.
fn logged<T>(what: &'static str) -> impl FnMut(Result<T, watcher::Error>) {
    move |event| {
        if let Err(e) = &event {
            tracing::warn!(watch = what, error = %e, "library sync watch failed");
        }
    }
}

fn count_failure(ctx: &Context, e: &SyncError) {
    tracing::warn!(error = %e, reason = e.reason(), "library sync failed");
    let label = super::metrics::ErrorLabel { kind: "LibrarySync".into(), reason: e.reason().into() };
    ctx.metrics.reconcile_errors.get_or_create(&label).inc();
}

async fn pass(ctx: &Context, source: &LibrarySource) -> Result<Vec<String>, SyncError> {
    let (shipped, problems) = read_source(&ctx.client, source).await?;
    let out = sync(&ctx.client, &shipped).await?;
    if !out.created.is_empty() || !out.updated.is_empty() || !out.archived.is_empty() {
        tracing::info!(
            created = ?out.created,
            updated = ?out.updated,
            archived = ?out.archived,
            customized = ?out.kept,
            "library installed"
        );
    }
    for name in &out.dropped_requests {
        tracing::warn!(policy = %name, "re-initialise asked for a LibraryPolicy the library does not ship: request dropped");
    }
    for e in &out.failed {
        count_failure(ctx, e);
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(version: &str, text: &str) -> Shipped {
        Shipped {
            name: "lib".into(),
            spec: LibraryPolicySpec { version: Some(version.into()), text: Some(text.into()), ..Default::default() },
        }
    }

    /// An object holding `version`/`text`; `installed`: written by the sync from that shipped
    /// spec (its spec as stored then being `stored`, by default the spec it holds now).
    fn live(version: &str, text: &str, installed: Option<(&Shipped, Option<&LibraryPolicySpec>)>) -> LibraryPolicy {
        let s = shipped(version, text);
        let mut lp = object("lib", &s.spec, BTreeMap::new());
        if let Some((from, stored)) = installed {
            let stored = stored.unwrap_or(&s.spec).digest();
            lp.annotations_mut().insert(SHIPPED_DIGEST_ANNOTATION.into(), stored);
            lp.annotations_mut().insert(SOURCE_DIGEST_ANNOTATION.into(), from.spec.digest());
        }
        lp
    }

    #[test]
    fn untouched_objects_follow_the_shipped_library_and_customised_ones_stay() {
        let v1 = shipped("1.0.0", "p(1)");
        let v2 = shipped("2.0.0", "p(2)");
        assert_eq!(plan(&v1, None), Plan::Create);
        // Written by the sync and unchanged since.
        let installed = live("1.0.0", "p(1)", Some((&v1, None)));
        assert_eq!(plan(&v1, Some(&installed)), Plan::UpToDate);
        assert_eq!(
            plan(&v2, Some(&installed)),
            Plan::Update { archive: Some("lib.v1.0.0".into()), reinitialize: false }
        );
        // The same version with other rules: updated in place, nothing to archive.
        let v1b = shipped("1.0.0", "p(3)");
        assert_eq!(plan(&v1b, Some(&installed)), Plan::Update { archive: None, reinitialize: false });
        // Customised (the spec no longer has the digest written): left alone, whatever ships.
        let mut custom = installed.clone();
        custom.spec.text = Some("p(99)".into());
        assert_eq!(plan(&v2, Some(&custom)), Plan::Keep);
        assert_eq!(plan(&v1, Some(&custom)), Plan::Keep);
        // Made by hand (no digest), the same as shipped: adopted (marked as shipped).
        assert_eq!(plan(&v1, Some(&live("1.0.0", "p(1)", None))), Plan::Update { archive: None, reinitialize: false });
        // Re-initialised on purpose: the shipped spec wins, the customised version is kept.
        let mut asked = custom.clone();
        asked.annotations_mut().insert(REINITIALIZE_ANNOTATION.into(), "true".into());
        assert_eq!(plan(&v2, Some(&asked)), Plan::Update { archive: Some("lib.v1.0.0".into()), reinitialize: true });
        // Asked to re-initialise what already is the shipped spec: the mark is written again.
        let mut same = live("2.0.0", "p(2)", None);
        same.annotations_mut().insert(REINITIALIZE_ANNOTATION.into(), "true".into());
        assert_eq!(plan(&v2, Some(&same)), Plan::Update { archive: None, reinitialize: true });
    }

    #[test]
    fn a_spec_the_server_stores_differently_is_not_a_customisation() {
        // The server gave back `p(1) ` for `p(1)` (say, a number written differently): the
        // digest recorded is the stored one, so the object is installed and up to date.
        let v1 = shipped("1.0.0", "p(1)");
        let stored = live("1.0.0", "p(1) ", None).spec;
        let installed = live("1.0.0", "p(1) ", Some((&v1, Some(&stored))));
        assert!(!customized(&installed));
        assert_eq!(plan(&v1, Some(&installed)), Plan::UpToDate);
        // A newer shipped version still updates it.
        let v2 = shipped("2.0.0", "p(2)");
        assert_eq!(
            plan(&v2, Some(&installed)),
            Plan::Update { archive: Some("lib.v1.0.0".into()), reinitialize: false }
        );
    }

    #[test]
    fn statuses_say_customised_and_update_available() {
        let v2 = shipped("2.0.0", "p(2)");
        let s = status_of(None, &v2, &Plan::Keep, Some(3));
        let get = |t: &str| s.conditions.iter().find(|c| c.type_ == t).unwrap();
        assert_eq!(get("Customized").status, "True");
        assert_eq!(get("UpdateAvailable").status, "True");
        assert!(get("UpdateAvailable").message.contains("2.0.0"));
        assert_eq!(s.shipped_version.as_deref(), Some("2.0.0"));
        let s = status_of(Some(&s), &v2, &Plan::UpToDate, Some(3));
        assert!(s.conditions.iter().all(|c| c.status == "False"));
    }

    #[test]
    fn manifests_are_read_and_bad_ones_reported_without_stopping_the_rest() {
        let text = "apiVersion: congress.dev/v1alpha1\nkind: LibraryPolicy\nmetadata: {name: a}\nspec: {version: 1.0.0, text: 'p(1)'}\n---\napiVersion: congress.dev/v1alpha1\nkind: Datasource\nmetadata: {name: d}\nspec: {driver: nova}\n---\napiVersion: congress.dev/v1alpha1\nkind: LibraryPolicy\nmetadata: {name: b}\nspec: {version: 1.0.0}\n---\napiVersion: congress.dev/v1alpha1\nkind: LibraryPolicy\nmetadata: {name: c}\nspec: {text: 'p(1)', parameters: [{table: t, columns: [{name: x, type: integer}], default: [[no]]}]}\n";
        let (ok, problems) = parse_manifests("f.yaml", text);
        assert_eq!(ok.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["a"]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("document 3") && problems[0].contains("`rules` or `text`"), "{problems:?}");
        assert!(problems[1].contains("document 4") && problems[1].contains("parameters.t[0]"), "{problems:?}");
        let (_, problems) = parse_manifests("g.yaml", "kind: [\n");
        assert!(problems[0].contains("not YAML"), "{problems:?}");
    }

    #[test]
    fn a_directory_source_reads_every_manifest_below_it() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/b.yaml"), "kind: Datasource\n").unwrap();
        std::fs::write(d.path().join("a.yml"), "kind: LibraryPolicy\n").unwrap();
        std::fs::write(d.path().join("notes.txt"), "not read").unwrap();
        let files = read_dir(d.path()).unwrap();
        let names: Vec<&str> = files.iter().map(|(p, _)| p.rsplit('/').next().unwrap()).collect();
        assert_eq!(names, ["a.yml", "b.yaml"]);
        let e = read_dir(&d.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn sources_parse() {
        assert_eq!(
            "configmap:ns/lib".parse::<LibrarySource>(),
            Ok(LibrarySource::ConfigMap { namespace: "ns".into(), name: "lib".into() })
        );
        assert_eq!("dir:/x".parse::<LibrarySource>(), Ok(LibrarySource::Dir("/x".into())));
        assert!("configmap:ns".parse::<LibrarySource>().is_err());
        assert!("x".parse::<LibrarySource>().is_err());
    }
}
