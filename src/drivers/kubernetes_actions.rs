//! The Kubernetes executor: what a `kubernetes` Datasource does when a policy asks it to act
//! on the cluster the operator runs in. Each action is one API request: `label`/`unlabel` and
//! `annotate`/`unannotate` (a JSON merge patch of `metadata`), `scale` (the scale
//! subresource), `cordon`/`uncordon` (a Node's `spec.unschedulable`) and `delete`.
//!
//! Kinds are resolved to resources by discovery, once per (group, version, kind). Every action
//! honours the call's dry run with the server's (`dryRun=All`), so a dry run is validated by
//! admission exactly as the real request would be. Arguments are checked before any request:
//! arguments that do not fit, and kinds the cluster does not serve (or cannot scale, or whose
//! scope does not match the namespace given), are [`ExecError::BadArguments`]; what the server
//! refuses maps by status (see [`KubernetesExecutor`]). The call's context is not used, and
//! nothing here logs.

use super::execute::{ActionCall, ActionInfo, ActionOutcome, ExecError, Executor};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::Scope;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

/// The field manager the server records for changes made by actions.
pub const FIELD_MANAGER: &str = "congress-actions";

/// The service name in [`ExecError::UnknownAction`] (the executor does not know its
/// Datasource's name; callers check [`Executor::offers`] first).
const SERVICE: &str = "kubernetes";

/// The actions offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Label,
    Unlabel,
    Annotate,
    Unannotate,
    Scale,
    Cordon,
    Uncordon,
    Delete,
}

const OBJECT: [&str; 4] = ["apiVersion", "kind", "namespace", "name"];

impl Action {
    const ALL: [Action; 8] = [
        Action::Label,
        Action::Unlabel,
        Action::Annotate,
        Action::Unannotate,
        Action::Scale,
        Action::Cordon,
        Action::Uncordon,
        Action::Delete,
    ];

    fn name(self) -> &'static str {
        match self {
            Action::Label => "label",
            Action::Unlabel => "unlabel",
            Action::Annotate => "annotate",
            Action::Unannotate => "unannotate",
            Action::Scale => "scale",
            Action::Cordon => "cordon",
            Action::Uncordon => "uncordon",
            Action::Delete => "delete",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Action::Label | Action::Annotate => &["apiVersion", "kind", "namespace", "name", "key", "value"],
            Action::Unlabel | Action::Unannotate => &["apiVersion", "kind", "namespace", "name", "key"],
            Action::Scale => &["apiVersion", "kind", "namespace", "name", "replicas"],
            Action::Cordon | Action::Uncordon => &["node"],
            Action::Delete => &OBJECT,
        }
    }

    fn description(self) -> &'static str {
        match self {
            Action::Label => "Set a label on an object (namespace \"\" for a cluster-scoped kind)",
            Action::Unlabel => "Remove a label from an object (absent already is not an error)",
            Action::Annotate => "Set an annotation on an object (namespace \"\" for a cluster-scoped kind)",
            Action::Unannotate => "Remove an annotation from an object (absent already is not an error)",
            Action::Scale => {
                "Set the replicas of a Deployment, StatefulSet, ReplicaSet (any kind with a scale subresource)"
            }
            Action::Cordon => "Mark a Node unschedulable",
            Action::Uncordon => "Mark a Node schedulable",
            Action::Delete => "Delete an object (already gone is not an error)",
        }
    }

    fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// Which metadata map a label-like action changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MetaField {
    Labels,
    Annotations,
}

impl MetaField {
    fn key(self) -> &'static str {
        match self {
            MetaField::Labels => "labels",
            MetaField::Annotations => "annotations",
        }
    }
}

/// An object named by an action's arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Target {
    group: String,
    version: String,
    kind: String,
    /// `None` for a cluster-scoped object (the argument was "").
    namespace: Option<String>,
    name: String,
}

impl Target {
    fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }
}

/// `Pod default/web-1`, `Node n1`.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// A call, checked: everything needed to make the request.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Request {
    /// Set (`value: Some`) or remove a label or annotation.
    Meta {
        field: MetaField,
        target: Target,
        key: String,
        value: Option<String>,
    },
    Scale {
        target: Target,
        replicas: i32,
    },
    Cordon {
        node: String,
        unschedulable: bool,
    },
    Delete {
        target: Target,
    },
}

fn bad(action: &str, message: impl Into<String>) -> ExecError {
    ExecError::BadArguments { action: action.to_string(), message: message.into() }
}

/// The arguments of `call`, in the order of `names`: each given by position or by name, not
/// both, none missing, none extra.
fn arguments<'a>(call: &'a ActionCall, names: &[&str]) -> Result<Vec<&'a Value>, ExecError> {
    let action = call.action.as_str();
    if call.positional.len() > names.len() {
        return Err(bad(
            action,
            format!("takes {} arguments ({}), got {}", names.len(), names.join(", "), call.positional.len()),
        ));
    }
    if let Some(unknown) = call.named.keys().find(|k| !names.contains(&k.as_str())) {
        return Err(bad(action, format!("no argument named `{unknown}` (arguments: {})", names.join(", "))));
    }
    names
        .iter()
        .enumerate()
        .map(|(i, name)| match (call.positional.get(i), call.named.get(*name)) {
            (Some(_), Some(_)) => Err(bad(action, format!("`{name}` is given both by position and by name"))),
            (Some(v), None) | (None, Some(v)) => Ok(v),
            (None, None) => Err(bad(action, format!("`{name}` is missing (arguments: {})", names.join(", ")))),
        })
        .collect()
}

/// A string argument.
fn text(action: &str, name: &str, value: &Value) -> Result<String, ExecError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(bad(action, format!("`{name}` must be a string, not {}", json_type(other)))),
    }
}

/// A label or annotation value: a string, or a number or boolean written as one.
fn value_text(action: &str, value: &Value) -> Result<String, ExecError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(bad(action, format!("`value` must be a string, not {}", json_type(other)))),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A name the server can be asked about: not empty, no `/` (it would change the URL's path).
fn object_name(action: &str, arg: &str, value: &Value) -> Result<String, ExecError> {
    let name = text(action, arg, value)?;
    if name.is_empty() {
        return Err(bad(action, format!("`{arg}` is empty")));
    }
    if name.contains('/') || name == "." || name == ".." {
        return Err(bad(action, format!("`{arg}` `{name}` is not a valid object name")));
    }
    Ok(name)
}

/// The number of replicas: a non-negative integer (that fits an int32), or a string of one.
fn replicas(action: &str, value: &Value) -> Result<i32, ExecError> {
    let wrong = || bad(action, format!("`replicas` must be a non-negative integer, not {value}"));
    let n: i64 = match value {
        Value::Number(n) => n.as_i64().ok_or_else(wrong)?,
        Value::String(s) => s.trim().parse().map_err(|_| wrong())?,
        _ => return Err(wrong()),
    };
    if n < 0 {
        return Err(wrong());
    }
    i32::try_from(n).map_err(|_| bad(action, format!("`replicas` {n} is more than {}", i32::MAX)))
}

/// The object named by the first four arguments: apiVersion, kind, namespace, name.
fn target(action: &str, args: &[&Value]) -> Result<Target, ExecError> {
    let [api_version, kind, namespace, name, ..] = args else {
        return Err(bad(action, "an object needs apiVersion, kind, namespace and name"));
    };
    let api_version = text(action, "apiVersion", api_version)?;
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) if !g.is_empty() && !v.is_empty() && !v.contains('/') => (g, v),
        None if !api_version.is_empty() => ("", api_version.as_str()),
        _ => return Err(bad(action, format!("`apiVersion` `{api_version}` is not `version` or `group/version`"))),
    };
    let kind = text(action, "kind", kind)?;
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(bad(action, format!("`kind` `{kind}` is not a kind (letters and digits, e.g. `Pod`)")));
    }
    let namespace = text(action, "namespace", namespace)?;
    let namespace =
        if namespace.is_empty() { None } else { Some(object_name(action, "namespace", &json!(namespace))?) };
    Ok(Target {
        group: group.to_string(),
        version: version.to_string(),
        kind,
        namespace,
        name: object_name(action, "name", name)?,
    })
}

/// A metadata key: not empty (its syntax is the server's to check).
fn key(action: &str, value: &Value) -> Result<String, ExecError> {
    let key = text(action, "key", value)?;
    if key.is_empty() {
        return Err(bad(action, "`key` is empty"));
    }
    Ok(key)
}

/// Check `call`'s action and arguments; no request is made.
fn parse(call: &ActionCall) -> Result<Request, ExecError> {
    let Some(action) = Action::parse(&call.action) else {
        return Err(ExecError::UnknownAction { service: SERVICE.to_string(), action: call.action.clone() });
    };
    let name = call.action.as_str();
    let args = arguments(call, action.args())?;
    Ok(match action {
        Action::Label | Action::Annotate | Action::Unlabel | Action::Unannotate => {
            let field = if matches!(action, Action::Label | Action::Unlabel) {
                MetaField::Labels
            } else {
                MetaField::Annotations
            };
            let value = match args.get(5) {
                Some(v) => Some(value_text(name, v)?),
                None => None,
            };
            Request::Meta { field, target: target(name, &args)?, key: key(name, args[4])?, value }
        }
        Action::Scale => Request::Scale { target: target(name, &args)?, replicas: replicas(name, args[4])? },
        Action::Cordon | Action::Uncordon => {
            Request::Cordon { node: object_name(name, "node", args[0])?, unschedulable: action == Action::Cordon }
        }
        Action::Delete => Request::Delete { target: target(name, &args)? },
    })
}

/// A kind the cluster serves, as discovery found it.
#[derive(Clone, Debug)]
struct Resolved {
    resource: ApiResource,
    namespaced: bool,
    scalable: bool,
}

/// One request, for the messages of its errors.
struct Attempt<'a> {
    /// The RBAC verb.
    verb: &'static str,
    /// The RBAC resource: `pods`, `deployments/scale`.
    resource: String,
    group: &'a str,
    namespace: Option<&'a str>,
    /// What was tried: `label Pod default/web-1`.
    summary: String,
}

/// Map a failed request to an [`ExecError`]: 401/403 -> Unauthorized (naming the verb and
/// resource), 408/409/429/5xx and failures to reach the server -> Transient, any other 4xx
/// (404 included) -> Refused.
fn api_error(attempt: &Attempt<'_>, err: kube::Error) -> ExecError {
    let Attempt { verb, resource, group, namespace, summary } = attempt;
    let summary = summary.clone();
    let on = match (group.is_empty(), namespace) {
        (true, Some(ns)) => format!("`{resource}` in namespace `{ns}`"),
        (true, None) => format!("`{resource}`"),
        (false, Some(ns)) => format!("`{resource}` of API group `{group}` in namespace `{ns}`"),
        (false, None) => format!("`{resource}` of API group `{group}`"),
    };
    match err {
        kube::Error::Api(status) => {
            let code = status.code;
            let message = if status.message.is_empty() { status.reason.clone() } else { status.message.clone() };
            match code {
                401 => ExecError::Unauthorized(format!(
                    "{summary}: the API server did not accept the credentials for `{verb}` on {on} (401): {message}"
                )),
                403 => ExecError::Unauthorized(format!("{summary}: RBAC refused `{verb}` on {on} (403): {message}")),
                404 => ExecError::Refused { summary, status: code, message: format!("not found: {message}") },
                408 | 409 | 429 => ExecError::Transient { summary, message: format!("{code}: {message}") },
                400..=499 => ExecError::Refused { summary, status: code, message },
                _ => ExecError::Transient { summary, message: format!("the API server failed ({code}): {message}") },
            }
        }
        kube::Error::Auth(e) => ExecError::Unauthorized(format!("{summary}: no usable credentials: {e}")),
        kube::Error::BuildRequest(e) => {
            ExecError::BadArguments { action: summary, message: format!("no request can be made of them: {e}") }
        }
        other => ExecError::Transient { summary, message: format!("the API server could not be reached: {other}") },
    }
}

/// Offers `label`, `unlabel`, `annotate`, `unannotate`, `scale`, `cordon`, `uncordon` and
/// `delete` on the cluster of its client, with the client's rights.
///
/// Errors: arguments that do not fit, a kind the cluster does not serve (unknown apiVersion or
/// kind), a namespace given for a cluster-scoped kind (or missing for a namespaced one), and
/// `scale` of a kind without a scale subresource are [`ExecError::BadArguments`], found before
/// the object is touched. From the server: 401/403 -> [`ExecError::Unauthorized`] (the message
/// names the verb and resource refused); 404 -> [`ExecError::Refused`] (except for `delete`,
/// where the object being gone already is success); 408, 409, 429, 5xx and a server out of
/// reach -> [`ExecError::Transient`]; any other 4xx (400, 422: invalid) -> Refused.
pub struct KubernetesExecutor {
    client: Client,
    /// Discovery's answers, by (group, version, kind).
    kinds: Mutex<HashMap<(String, String, String), Resolved>>,
}

impl fmt::Debug for KubernetesExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self.kinds.lock().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("KubernetesExecutor").field("kinds_cached", &cached).finish_non_exhaustive()
    }
}

fn suffix(dry_run: bool) -> &'static str {
    if dry_run { " (server dry run)" } else { "" }
}

impl KubernetesExecutor {
    pub fn new(client: Client) -> KubernetesExecutor {
        KubernetesExecutor { client, kinds: Mutex::new(HashMap::new()) }
    }

    fn cache_key(target: &Target) -> (String, String, String) {
        (target.group.clone(), target.version.clone(), target.kind.clone())
    }

    fn forget(&self, target: &Target) {
        self.kinds.lock().unwrap_or_else(PoisonError::into_inner).remove(&Self::cache_key(target));
    }

    /// The resource of `target`'s kind (by discovery, cached), its scope checked against the
    /// namespace given.
    async fn resolve(&self, action: &str, target: &Target) -> Result<Resolved, ExecError> {
        let key = Self::cache_key(target);
        let cached = self.kinds.lock().unwrap_or_else(PoisonError::into_inner).get(&key).cloned();
        let resolved = match cached {
            Some(r) => r,
            None => {
                let gvk = GroupVersionKind::gvk(&target.group, &target.version, &target.kind);
                let not_served = || {
                    bad(action, format!("the cluster serves no kind `{}` in `{}`", target.kind, target.api_version()))
                };
                let (resource, caps) = match kube::discovery::pinned_kind(&self.client, &gvk).await {
                    Ok(found) => found,
                    Err(kube::Error::Discovery(_)) => return Err(not_served()),
                    Err(kube::Error::Api(s)) if s.code == 404 => return Err(not_served()),
                    Err(e) => {
                        let path = if target.group.is_empty() {
                            format!("/api/{}", target.version)
                        } else {
                            format!("/apis/{}", target.api_version())
                        };
                        let attempt = Attempt {
                            verb: "get",
                            resource: format!("discovery {path}"),
                            group: "",
                            namespace: None,
                            summary: format!("{action} {target}: discovery of `{}`", target.api_version()),
                        };
                        return Err(api_error(&attempt, e));
                    }
                };
                let resolved = Resolved {
                    namespaced: caps.scope == Scope::Namespaced,
                    scalable: caps.subresources.iter().any(|(sub, _)| sub.plural == "scale"),
                    resource,
                };
                self.kinds.lock().unwrap_or_else(PoisonError::into_inner).insert(key, resolved.clone());
                resolved
            }
        };
        match (&target.namespace, resolved.namespaced) {
            (None, true) => Err(bad(action, format!("`{}` is namespaced: `namespace` must name one", target.kind))),
            (Some(_), false) => {
                Err(bad(action, format!("`{}` is cluster-scoped: `namespace` must be \"\"", target.kind)))
            }
            _ => Ok(resolved),
        }
    }

    fn api(&self, resolved: &Resolved, target: &Target) -> Api<DynamicObject> {
        match &target.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resolved.resource),
            None => Api::all_with(self.client.clone(), &resolved.resource),
        }
    }

    async fn run(&self, action: &str, request: Request, dry_run: bool) -> Result<ActionOutcome, ExecError> {
        let pp = PatchParams { dry_run, field_manager: Some(FIELD_MANAGER.to_string()), ..PatchParams::default() };
        let summary = match request {
            Request::Meta { field, target, key, value } => {
                let resolved = self.resolve(action, &target).await?;
                let mut change = serde_json::Map::new();
                change.insert(key.clone(), value.clone().map_or(Value::Null, Value::String));
                let mut metadata = serde_json::Map::new();
                metadata.insert(field.key().to_string(), Value::Object(change));
                let patch = json!({ "metadata": metadata });
                let attempt = Attempt {
                    verb: "patch",
                    resource: resolved.resource.plural.clone(),
                    group: &resolved.resource.group,
                    namespace: target.namespace.as_deref(),
                    summary: format!("{action} {target}"),
                };
                let done = self.api(&resolved, &target).patch(&target.name, &pp, &Patch::Merge(&patch)).await;
                if let Err(e) = done {
                    if matches!(&e, kube::Error::Api(s) if s.code == 404) {
                        self.forget(&target);
                    }
                    return Err(api_error(&attempt, e));
                }
                match (field, value) {
                    (MetaField::Labels, Some(v)) => format!("labelled {target} {key}={v}"),
                    (MetaField::Annotations, Some(v)) => format!("annotated {target} {key}={v}"),
                    (MetaField::Labels, None) => format!("removed label {key} from {target}"),
                    (MetaField::Annotations, None) => format!("removed annotation {key} from {target}"),
                }
            }
            Request::Scale { target, replicas } => {
                let resolved = self.resolve(action, &target).await?;
                if !resolved.scalable {
                    return Err(bad(
                        action,
                        format!("`{}` of `{}` has no scale subresource", target.kind, target.api_version()),
                    ));
                }
                let attempt = Attempt {
                    verb: "patch",
                    resource: format!("{}/scale", resolved.resource.plural),
                    group: &resolved.resource.group,
                    namespace: target.namespace.as_deref(),
                    summary: format!("{action} {target}"),
                };
                let patch = json!({"spec": {"replicas": replicas}});
                let done = self.api(&resolved, &target).patch_scale(&target.name, &pp, &Patch::Merge(&patch)).await;
                if let Err(e) = done {
                    if matches!(&e, kube::Error::Api(s) if s.code == 404) {
                        self.forget(&target);
                    }
                    return Err(api_error(&attempt, e));
                }
                format!("scaled {target} to {replicas} replicas")
            }
            Request::Cordon { node, unschedulable } => {
                let attempt = Attempt {
                    verb: "patch",
                    resource: "nodes".to_string(),
                    group: "",
                    namespace: None,
                    summary: format!("{action} Node {node}"),
                };
                let patch = json!({"spec": {"unschedulable": unschedulable}});
                let nodes: Api<Node> = Api::all(self.client.clone());
                nodes.patch(&node, &pp, &Patch::Merge(&patch)).await.map_err(|e| api_error(&attempt, e))?;
                if unschedulable { format!("cordoned Node {node}") } else { format!("uncordoned Node {node}") }
            }
            Request::Delete { target } => {
                let resolved = self.resolve(action, &target).await?;
                let attempt = Attempt {
                    verb: "delete",
                    resource: resolved.resource.plural.clone(),
                    group: &resolved.resource.group,
                    namespace: target.namespace.as_deref(),
                    summary: format!("{action} {target}"),
                };
                let dp = DeleteParams { dry_run, ..DeleteParams::default() };
                match self.api(&resolved, &target).delete(&target.name, &dp).await {
                    Ok(_) => format!("deleted {target}"),
                    Err(kube::Error::Api(s)) if s.code == 404 => format!("{target} already gone"),
                    Err(e) => return Err(api_error(&attempt, e)),
                }
            }
        };
        Ok(ActionOutcome { summary: format!("{summary}{}", suffix(dry_run)) })
    }
}

impl Executor for KubernetesExecutor {
    fn actions(&self) -> Vec<ActionInfo> {
        Action::ALL
            .into_iter()
            .map(|a| ActionInfo {
                name: a.name().to_string(),
                args: a.args().iter().map(|s| s.to_string()).collect(),
                description: a.description().to_string(),
            })
            .collect()
    }

    fn execute(&self, call: ActionCall) -> BoxFuture<'_, Result<ActionOutcome, ExecError>> {
        Box::pin(async move {
            let request = parse(&call)?;
            // The context is not used by this executor (and so never reaches a log or error).
            let ActionCall { action, dry_run, .. } = call;
            self.run(&action, request, dry_run).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use std::collections::BTreeMap;

    fn call(action: &str, positional: Vec<Value>) -> ActionCall {
        ActionCall { action: action.to_string(), positional, ..ActionCall::default() }
    }

    fn strs(args: &[&str]) -> Vec<Value> {
        args.iter().map(|s| json!(s)).collect()
    }

    fn bad_message(result: Result<Request, ExecError>) -> String {
        match result {
            Err(ExecError::BadArguments { message, .. }) => message,
            other => panic!("expected BadArguments, got {other:?}"),
        }
    }

    fn pod(namespace: Option<&str>) -> Target {
        Target {
            group: String::new(),
            version: "v1".into(),
            kind: "Pod".into(),
            namespace: namespace.map(str::to_string),
            name: "web-1".into(),
        }
    }

    #[test]
    fn positional_and_named_arguments_make_the_same_request() {
        let args = ["v1", "Pod", "default", "web-1", "congress.dev/quarantine", "true"];
        let by_position = parse(&call("label", strs(&args))).unwrap();
        let names = Action::Label.args();
        let named: BTreeMap<String, Value> = names.iter().zip(args).map(|(n, v)| (n.to_string(), json!(v))).collect();
        let by_name = parse(&ActionCall { action: "label".into(), named, ..ActionCall::default() }).unwrap();
        let want = Request::Meta {
            field: MetaField::Labels,
            target: pod(Some("default")),
            key: "congress.dev/quarantine".into(),
            value: Some("true".into()),
        };
        assert_eq!(by_position, want);
        assert_eq!(by_name, want);
        // Some by position, the rest by name.
        let mixed = ActionCall {
            action: "label".into(),
            positional: strs(&args[..4]),
            named: BTreeMap::from([("key".into(), json!(args[4])), ("value".into(), json!(true))]),
            ..ActionCall::default()
        };
        assert_eq!(parse(&mixed).unwrap(), want);
    }

    #[test]
    fn each_action_parses_into_its_request() {
        let unlabel = parse(&call("unannotate", strs(&["apps/v1", "Deployment", "ns", "web", "note"]))).unwrap();
        let Request::Meta { field, target, key, value } = unlabel else { panic!("{unlabel:?}") };
        assert_eq!((field, key.as_str(), value), (MetaField::Annotations, "note", None));
        assert_eq!(
            (target.group.as_str(), target.version.as_str(), target.api_version()),
            ("apps", "v1", "apps/v1".into())
        );
        assert_eq!(target.to_string(), "Deployment ns/web");
        let node = parse(&call("delete", strs(&["v1", "Node", "", "n1"]))).unwrap();
        assert_eq!(node, Request::Delete { target: Target { kind: "Node".into(), name: "n1".into(), ..pod(None) } });
        assert_eq!(
            parse(&call("uncordon", strs(&["n1"]))).unwrap(),
            Request::Cordon { node: "n1".into(), unschedulable: false }
        );
        assert_eq!(
            parse(&call("cordon", strs(&["n1"]))).unwrap(),
            Request::Cordon { node: "n1".into(), unschedulable: true }
        );
        let scale = |r: Value| {
            let mut args = strs(&["apps/v1", "Deployment", "ns", "web"]);
            args.push(r);
            parse(&call("scale", args))
        };
        for (given, want) in [(json!(3), 3), (json!("3"), 3), (json!(0), 0), (json!(" 7 "), 7)] {
            match scale(given.clone()).unwrap() {
                Request::Scale { replicas, .. } => assert_eq!(replicas, want, "{given}"),
                other => panic!("{other:?}"),
            }
        }
        for given in [json!(-1), json!("-1"), json!("three"), json!(2.5), json!("2.5"), json!(1u64 << 40), json!(null)]
        {
            let message = bad_message(scale(given.clone()));
            assert!(message.contains("replicas"), "{given}: {message}");
        }
        // A label value may be a number or a boolean.
        let Request::Meta { value, .. } =
            parse(&call("label", vec![json!("v1"), json!("Pod"), json!("d"), json!("p"), json!("k"), json!(5)]))
                .unwrap()
        else {
            panic!()
        };
        assert_eq!(value.as_deref(), Some("5"));
    }

    #[test]
    fn arguments_that_do_not_fit_are_bad_arguments_naming_the_problem() {
        let cases: Vec<(ActionCall, &str)> = vec![
            (call("label", strs(&["v1", "Pod", "default", "web-1", "k"])), "`value` is missing"),
            (call("cordon", vec![]), "`node` is missing"),
            (call("cordon", strs(&["n1", "n2"])), "takes 1 arguments (node), got 2"),
            (call("delete", strs(&["v1", "Pod", "default", ""])), "`name` is empty"),
            (call("delete", strs(&["v1", "Pod", "default", "a/b"])), "not a valid object name"),
            (call("delete", strs(&["v1", "Pod", "a/b", "web"])), "not a valid object name"),
            (call("delete", strs(&["a/b/c", "Pod", "default", "web"])), "`apiVersion` `a/b/c`"),
            (call("delete", strs(&["", "Pod", "default", "web"])), "`apiVersion` ``"),
            (call("delete", strs(&["/v1", "Pod", "default", "web"])), "`apiVersion` `/v1`"),
            (call("delete", strs(&["v1", "", "default", "web"])), "`kind` ``"),
            (call("delete", strs(&["v1", "pods/log", "default", "web"])), "is not a kind"),
            (
                call("delete", vec![json!("v1"), json!(1), json!("d"), json!("p")]),
                "`kind` must be a string, not a number",
            ),
            (call("unlabel", strs(&["v1", "Pod", "default", "web", ""])), "`key` is empty"),
            (
                call("label", vec![json!("v1"), json!("Pod"), json!("d"), json!("p"), json!("k"), json!([1])]),
                "not an array",
            ),
            (
                ActionCall {
                    action: "cordon".into(),
                    positional: strs(&["n1"]),
                    named: BTreeMap::from([("node".into(), json!("n2"))]),
                    ..ActionCall::default()
                },
                "`node` is given both by position and by name",
            ),
            (
                ActionCall {
                    action: "cordon".into(),
                    named: BTreeMap::from([("nodes".into(), json!("n2"))]),
                    ..ActionCall::default()
                },
                "no argument named `nodes`",
            ),
        ];
        for (c, words) in cases {
            let message = bad_message(parse(&c));
            assert!(message.contains(words), "{c:?}: {message}");
        }
        let unknown = parse(&call("reboot", vec![]));
        assert!(matches!(&unknown, Err(ExecError::UnknownAction { action, .. }) if action == "reboot"), "{unknown:?}");
    }

    #[test]
    fn the_actions_are_listed_with_their_arguments() {
        let listed: Vec<(String, Vec<String>)> = Action::ALL
            .into_iter()
            .map(|a| (a.name().to_string(), a.args().iter().map(|s| s.to_string()).collect()))
            .collect();
        let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["label", "unlabel", "annotate", "unannotate", "scale", "cordon", "uncordon", "delete"]);
        assert_eq!(listed[4].1, ["apiVersion", "kind", "namespace", "name", "replicas"]);
        for a in Action::ALL {
            assert_eq!(Action::parse(a.name()), Some(a));
        }
    }

    fn status(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, "Reason").with_code(code).boxed())
    }

    #[test]
    fn server_answers_map_to_errors_by_status() {
        let attempt = Attempt {
            verb: "patch",
            resource: "deployments/scale".into(),
            group: "apps",
            namespace: Some("default"),
            summary: "scale Deployment default/web".into(),
        };
        match api_error(&attempt, status(403, "forbidden")) {
            ExecError::Unauthorized(m) => {
                assert!(
                    m.contains(
                        "RBAC refused `patch` on `deployments/scale` of API group `apps` in namespace `default`"
                    ),
                    "{m}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(api_error(&attempt, status(401, "x")), ExecError::Unauthorized(m) if m.contains("`patch`")));
        for code in [408, 409, 429, 500, 503] {
            let e = api_error(&attempt, status(code, "x"));
            assert!(e.retryable(), "{code}: {e:?}");
        }
        for code in [400, 404, 422] {
            let e = api_error(&attempt, status(code, "bad"));
            assert!(matches!(&e, ExecError::Refused { status, .. } if *status == code), "{code}: {e:?}");
            assert!(!e.retryable());
        }
        let e = api_error(&attempt, status(404, "deployments.apps \"web\" not found"));
        assert!(
            e.to_string().starts_with("scale Deployment default/web: the service refused it (404): not found"),
            "{e}"
        );
        let unreachable = api_error(&attempt, kube::Error::LinesCodecMaxLineLengthExceeded);
        assert!(unreachable.retryable());
    }

    /// A client of a port where nothing listens: no mock, and any request made fails.
    fn unreachable() -> KubernetesExecutor {
        let config = kube::Config::new("http://127.0.0.1:1".parse().expect("a URL"));
        KubernetesExecutor::new(Client::try_from(config).expect("a client"))
    }

    #[tokio::test]
    async fn bad_arguments_fail_before_any_request_and_an_unreachable_server_is_transient() {
        let ex = unreachable();
        let listed: Vec<String> = ex.actions().into_iter().map(|a| a.name).collect();
        assert_eq!(listed, ["label", "unlabel", "annotate", "unannotate", "scale", "cordon", "uncordon", "delete"]);
        assert!(ex.offers("scale") && !ex.offers("scale2"));
        let bad_call = call("label", strs(&["v1", "Pod", "default", "web-1", "k"]));
        assert!(matches!(ex.execute(bad_call).await, Err(ExecError::BadArguments { .. })));
        for c in [call("cordon", strs(&["n1"])), call("delete", strs(&["v1", "Pod", "default", "web-1"]))] {
            let e = ex.execute(c.clone()).await.expect_err("nothing listens");
            assert!(e.retryable(), "{c:?}: {e:?}");
            assert!(e.to_string().starts_with(&format!("{} ", c.action)), "{e}");
        }
        assert!(format!("{ex:?}").contains("kinds_cached: 0"));
    }

    #[test]
    fn dry_runs_say_so() {
        assert_eq!(suffix(true), " (server dry run)");
        assert_eq!(suffix(false), "");
    }
}
