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
    ARCHIVE_OF_LABEL, ARCHIVE_VERSION_LABEL, REINITIALIZE_ANNOTATION, SHIPPED_DIGEST_ANNOTATION, archive_name,
};
use congress_model::resources::{API_VERSION, LibraryPolicy, LibraryPolicySpec, LibraryPolicyStatus};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
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

/// Whether the object's spec is what the sync last wrote.
pub fn customized(live: &LibraryPolicy) -> bool {
    live.annotations().get(SHIPPED_DIGEST_ANNOTATION) != Some(&live.spec.digest())
}

/// The plan for `shipped` given `live` (the object of that name, if any). An object that is
/// customised but equal to the shipped spec (reverted, or applied by hand) is adopted: marked
/// as shipped, so later upgrades update it.
pub fn plan(shipped: &Shipped, live: Option<&LibraryPolicy>) -> Plan {
    let Some(live) = live else { return Plan::Create };
    let reinitialize = live.annotations().get(REINITIALIZE_ANNOTATION).is_some_and(|v| v == "true");
    let differs = live.spec.digest() != shipped.spec.digest();
    let archive = (differs && live.spec.version() != shipped.spec.version())
        .then(|| archive_name(&shipped.name, live.spec.version()));
    if reinitialize {
        return Plan::Update { archive, reinitialize };
    }
    match (customized(live), differs) {
        (false, false) => Plan::UpToDate,
        (false, true) => Plan::Update { archive, reinitialize },
        (true, false) => Plan::Update { archive: None, reinitialize },
        (true, true) => Plan::Keep,
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
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub archived: Vec<String>,
    pub kept: Vec<String>,
}

fn object(name: &str, spec: &LibraryPolicySpec, labels: BTreeMap<String, String>) -> LibraryPolicy {
    let mut lp = LibraryPolicy::new(name, spec.clone());
    lp.metadata = ObjectMeta { name: Some(name.to_string()), labels: Some(labels), ..Default::default() };
    lp
}

/// One pass over `shipped` against the cluster.
pub async fn sync(client: &Client, shipped: &[Shipped]) -> Result<Outcome, SyncError> {
    let api: Api<LibraryPolicy> = Api::all(client.clone());
    let mut out = Outcome::default();
    let write = |name: &str| {
        let name = name.to_string();
        move |source| SyncError::Write { name: name.clone(), source }
    };
    for s in shipped {
        let live = api.get_opt(&s.name).await.map_err(write(&s.name))?;
        let plan = plan(s, live.as_ref());
        let digest = s.spec.digest();
        let written = match (&plan, live) {
            (Plan::Create, _) => {
                let mut lp = object(&s.name, &s.spec, BTreeMap::from([(MANAGED_BY.0.into(), MANAGED_BY.1.into())]));
                lp.annotations_mut().insert(SHIPPED_DIGEST_ANNOTATION.into(), digest);
                match api.create(&PostParams::default(), &lp).await {
                    Ok(created) => {
                        out.created.push(s.name.clone());
                        Some(created)
                    }
                    // Made meanwhile (another writer): the next pass sees it.
                    Err(kube::Error::Api(e)) if e.code == 409 => None,
                    Err(e) => return Err(write(&s.name)(e)),
                }
            }
            (Plan::Update { archive, .. }, Some(live)) => {
                if let Some(archive) = archive {
                    let labels = BTreeMap::from([
                        (ARCHIVE_OF_LABEL.to_string(), s.name.clone()),
                        (ARCHIVE_VERSION_LABEL.to_string(), live.spec.version().to_string()),
                        (MANAGED_BY.0.into(), MANAGED_BY.1.into()),
                    ]);
                    match api.create(&PostParams::default(), &object(archive, &live.spec, labels)).await {
                        Ok(_) => out.archived.push(archive.clone()),
                        Err(kube::Error::Api(e)) if e.code == 409 => {}
                        Err(e) => return Err(write(archive)(e)),
                    }
                }
                let mut next = live.clone();
                next.spec = s.spec.clone();
                next.status = None;
                next.annotations_mut().insert(SHIPPED_DIGEST_ANNOTATION.into(), digest);
                next.annotations_mut().remove(REINITIALIZE_ANNOTATION);
                // The resourceVersion makes this a compare-and-swap: a change made since the
                // read gets 409, and the next pass looks again.
                match api.replace(&s.name, &PostParams::default(), &next).await {
                    Ok(replaced) => {
                        out.updated.push(s.name.clone());
                        Some(replaced)
                    }
                    Err(kube::Error::Api(e)) if e.code == 409 => None,
                    Err(e) => return Err(write(&s.name)(e)),
                }
            }
            (Plan::Keep, live) => {
                out.kept.push(s.name.clone());
                live
            }
            (_, live) => live,
        };
        let Some(obj) = written else { continue };
        let status = status_of(obj.status.as_ref(), s, &plan, obj.metadata.generation);
        if obj.status.as_ref() != Some(&status) {
            let body = json!({"apiVersion": API_VERSION, "kind": "LibraryPolicy", "status": status});
            api.patch_status(&s.name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body))
                .await
                .map_err(write(&s.name))?;
        }
    }
    Ok(out)
}

/// Run the sync while this replica leads: a pass at start, when the source or a
/// LibraryPolicy changes, and every [`RESYNC`].
pub async fn run(ctx: Arc<Context>, source: LibrarySource) {
    let client = ctx.client.clone();
    let libraries = watcher(Api::<LibraryPolicy>::all(client.clone()), watcher::Config::default()).boxed();
    let configmaps = match &source {
        LibrarySource::ConfigMap { namespace, name } => watcher(
            Api::<ConfigMap>::namespaced(client.clone(), namespace),
            watcher::Config::default().fields(&format!("metadata.name={name}")),
        )
        .map(|_| ())
        .boxed(),
        LibrarySource::Dir(_) => futures::stream::pending().boxed(),
    };
    let mut changes = futures::stream::select(libraries.map(|_| ()), configmaps);
    let mut leader = ctx.leader_updates();
    let mut last_problems: Vec<String> = Vec::new();
    loop {
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
                Err(e) => {
                    tracing::warn!(error = %e, reason = e.reason(), "library sync failed");
                    ctx.metrics
                        .reconcile_errors
                        .get_or_create(&super::metrics::ErrorLabel {
                            kind: "LibrarySync".into(),
                            reason: e.reason().into(),
                        })
                        .inc();
                }
            }
        }
        // Wait for a change (coalescing a burst), a leadership change, or the resync.
        tokio::select! {
            _ = changes.next() => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                while let Some(Some(_)) = futures::FutureExt::now_or_never(changes.next()) {}
            }
            _ = leader.changed() => {}
            _ = tokio::time::sleep(RESYNC) => {}
        }
    }
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

    fn live(version: &str, text: &str, digest_of: Option<&Shipped>) -> LibraryPolicy {
        let s = shipped(version, text);
        let mut lp = object("lib", &s.spec, BTreeMap::new());
        if let Some(d) = digest_of {
            lp.annotations_mut().insert(SHIPPED_DIGEST_ANNOTATION.into(), d.spec.digest());
        }
        lp
    }

    #[test]
    fn untouched_objects_follow_the_shipped_library_and_customised_ones_stay() {
        let v1 = shipped("1.0.0", "p(1)");
        let v2 = shipped("2.0.0", "p(2)");
        assert_eq!(plan(&v1, None), Plan::Create);
        // Written by the sync and unchanged since.
        assert_eq!(plan(&v1, Some(&live("1.0.0", "p(1)", Some(&v1)))), Plan::UpToDate);
        assert_eq!(
            plan(&v2, Some(&live("1.0.0", "p(1)", Some(&v1)))),
            Plan::Update { archive: Some("lib.v1.0.0".into()), reinitialize: false }
        );
        // The same version with other rules: updated in place, nothing to archive.
        let v1b = shipped("1.0.0", "p(3)");
        assert_eq!(
            plan(&v1b, Some(&live("1.0.0", "p(1)", Some(&v1)))),
            Plan::Update { archive: None, reinitialize: false }
        );
        // Customised (the spec no longer has the digest written): left alone.
        let custom = live("1.0.0", "p(99)", Some(&v1));
        assert_eq!(plan(&v2, Some(&custom)), Plan::Keep);
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
