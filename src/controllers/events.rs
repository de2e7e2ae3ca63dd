//! Kubernetes Events about congress objects, written through the core `v1` Events API in
//! its classic form (no `eventTime`). A cluster-scoped object's events are then accepted in
//! `default` (checked against kube-apiserver v1.20.2): with `eventTime` set, as the
//! `events.k8s.io/v1` API and kube-runtime's recorder write them, the server wants them in
//! `kube-system` and refuses them in any other namespace.

use super::Context;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Resource, ResourceExt};

/// Where events about cluster-scoped objects are kept.
pub const NAMESPACE: &str = "default";

/// Record one event about `obj` (a cluster-scoped congress object).
pub async fn publish<K>(ctx: &Context, obj: &K, type_: &str, reason: &str, message: &str) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()>,
{
    let now = Timestamp::now();
    let name = obj.name_any();
    let involved = ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: Some(name.clone()),
        uid: obj.meta().uid.clone(),
        resource_version: obj.meta().resource_version.clone(),
        ..Default::default()
    };
    let event = Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{:x}", now.as_nanosecond())),
            namespace: Some(NAMESPACE.into()),
            ..Default::default()
        },
        involved_object: involved,
        type_: Some(type_.into()),
        reason: Some(reason.into()),
        message: Some(message.into()),
        count: Some(1),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        action: Some("Evaluate".into()),
        reporting_component: Some("congress-operator".into()),
        reporting_instance: Some(ctx.identity.clone()),
        source: Some(EventSource { component: Some("congress-operator".into()), host: None }),
        ..Default::default()
    };
    let api: Api<Event> = Api::namespaced(ctx.client.clone(), NAMESPACE);
    api.create(&PostParams::default(), &event).await.map(|_| ())
}
