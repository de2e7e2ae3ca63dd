//! Kubernetes Events about congress objects, written through the core `v1` Events API in
//! its classic form (no `eventTime`). A cluster-scoped object's events are then accepted in
//! `default` (checked against kube-apiserver v1.20.2): with `eventTime` set, as the
//! `events.k8s.io/v1` API and kube-runtime's recorder write them, the server wants them in
//! `kube-system` and refuses them in any other namespace.
//!
//! Each policy's events go through an [`EventBudget`], so a flood of violations is summed up
//! rather than recorded one event each.

use super::Context;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Resource, ResourceExt};
use std::time::{Duration, Instant};

/// Where events about cluster-scoped objects are kept.
pub const NAMESPACE: &str = "default";
/// Events per policy: a burst of this many, then one per [`EVENT_REFILL`].
const EVENT_BURST: f64 = 10.0;
const EVENT_REFILL: Duration = Duration::from_secs(6);

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
