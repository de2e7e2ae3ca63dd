//! The operator's history of violations: when each row of a policy's `error` table appeared
//! and cleared, read by the API (`/v1/history`, `/v1/policies/{p}/history`, first-seen
//! times).
//!
//! Where it lives: one ConfigMap per policy, `congress-history-<policy>` in the operator's
//! namespace (label `app.kubernetes.io/managed-by: congress`, owned by its Policy so it goes
//! with it), data key `events.jsonl`, one [`HistoryRecord`] per line, oldest first. Why:
//! - it survives restarts and failover (it is in the API server, not in a replica), and
//!   every replica can read it, so a standby's API answers the same;
//! - it stays within the API server's object size limit (1 MiB, etcd's 1.5 MiB): each
//!   ConfigMap keeps at most [`MAX_BYTES`] (512 KiB), the oldest lines dropped first, and
//!   one policy's churn cannot push out another's history;
//! - it needs no CRD and no storage of its own, and reads are one GET (or one LIST).
//!
//! Only the leader writes, from the policy reconciler's publish (the violations that
//! appeared and cleared since its last publish, which it already computes for events):
//! read, append, trim, then replace guarded by the resourceVersion (a conflict is tried
//! once more; a failure is logged, never fails the reconcile: history is not enforcement).

use super::reports::Violation;
use super::{Context, kube_reason, now_rfc3339};
use crate::api::backend::{HistoryFilter, HistoryRecord};
use congress_model::resources::Policy;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ListParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// The most bytes of history kept per policy.
pub const MAX_BYTES: usize = 512 * 1024;
/// The data key of the history.
pub const KEY: &str = "events.jsonl";
/// The label naming the policy (resource name) a history ConfigMap belongs to.
pub const POLICY_LABEL: &str = "congress.dev/history-of";

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("reading the history of policy {policy}: {}", kube_reason(.source))]
    Read {
        policy: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the history of policy {policy}: {}", kube_reason(.source))]
    Write {
        policy: String,
        #[source]
        source: kube::Error,
    },
}

/// The ConfigMap of `policy`'s history (a valid name whatever the policy's length).
pub fn configmap_name(policy: &str) -> String {
    let name = format!("congress-history-{policy}");
    if name.len() <= 253 {
        return name;
    }
    let id = crate::api::convert::stable_id(&[policy]);
    format!("{}-{}", super::prefix(&name, 253 - 9).trim_end_matches(['-', '.']), &id[..8])
}

/// `existing` lines with `new` ones appended, the oldest dropped until the whole is at most
/// `max` bytes (a line is never cut).
pub fn append_bounded(existing: &str, new: &[String], max: usize) -> String {
    let mut lines: Vec<&str> = existing.lines().filter(|l| !l.trim().is_empty()).collect();
    lines.extend(new.iter().map(String::as_str));
    let mut total: usize = lines.iter().map(|l| l.len() + 1).sum();
    let mut start = 0;
    while total > max && start < lines.len() {
        total -= lines[start].len() + 1;
        start += 1;
    }
    let mut out = String::with_capacity(total);
    for l in &lines[start..] {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// The records of a history text, oldest first (unreadable lines are skipped).
pub fn parse(text: &str) -> Vec<HistoryRecord> {
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Milliseconds since the epoch of an RFC 3339 time.
fn millis(at: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(at).ok().map(|d| d.timestamp_millis())
}

/// `records` (oldest first) that pass `filter`, newest first, at most `filter.limit`.
pub fn select(records: Vec<HistoryRecord>, filter: &HistoryFilter) -> Vec<HistoryRecord> {
    let mut out: Vec<HistoryRecord> = records
        .into_iter()
        .filter(|r| filter.policy.as_deref().is_none_or(|p| r.policy == p))
        .filter(|r| {
            let at = millis(&r.at);
            filter.since_ms.is_none_or(|s| at.is_some_and(|a| a >= s))
                && filter.until_ms.is_none_or(|u| at.is_some_and(|a| a <= u))
        })
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse(millis(&r.at)));
    if filter.limit > 0 {
        out.truncate(filter.limit);
    }
    out
}

/// When each row present according to `records` (oldest first) last appeared.
pub fn first_seen(records: &[HistoryRecord]) -> HashMap<String, String> {
    let mut seen = HashMap::new();
    for r in records {
        match r.change.as_str() {
            "appeared" => {
                seen.insert(r.row.clone(), r.at.clone());
            }
            _ => {
                seen.remove(&r.row);
            }
        }
    }
    seen
}

/// Every policy's history (or `policy`'s, a resource name), oldest first.
pub async fn read(ctx: &Context, policy: Option<&str>) -> Result<Vec<HistoryRecord>, HistoryError> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let maps = match policy {
        Some(p) => api
            .get_opt(&configmap_name(p))
            .await
            .map_err(|source| HistoryError::Read { policy: p.to_string(), source })?
            .into_iter()
            .collect::<Vec<_>>(),
        None => {
            api.list(&ListParams::default().labels(POLICY_LABEL))
                .await
                .map_err(|source| HistoryError::Read { policy: "*".into(), source })?
                .items
        }
    };
    let mut records: Vec<HistoryRecord> =
        maps.iter().flat_map(|m| parse(m.data.as_ref().and_then(|d| d.get(KEY)).map_or("", String::as_str))).collect();
    records.sort_by_key(|r| millis(&r.at));
    Ok(records)
}

/// Record that `appeared` appeared and `cleared` (row keys) cleared in `policy`, because of
/// `cause`. Leader only.
pub async fn record(
    ctx: &Context,
    policy: &Policy,
    appeared: &[&Violation],
    cleared: &[&String],
    cause: &str,
) -> Result<(), HistoryError> {
    if appeared.is_empty() && cleared.is_empty() {
        return Ok(());
    }
    let name = policy.name_any();
    let engine = super::engine_name(&name);
    let at = now_rfc3339();
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let cm_name = configmap_name(&name);
    let mut tries = 0;
    loop {
        tries += 1;
        let existing =
            api.get_opt(&cm_name).await.map_err(|source| HistoryError::Read { policy: name.clone(), source })?;
        let text =
            existing.as_ref().and_then(|m| m.data.as_ref()).and_then(|d| d.get(KEY)).cloned().unwrap_or_default();
        // A cleared row's values: those it appeared with.
        let known: HashMap<String, Value> = parse(&text).into_iter().map(|r| (r.row, r.data)).collect();
        let mut lines = Vec::new();
        for v in appeared {
            let r = HistoryRecord {
                at: at.clone(),
                policy: engine.clone(),
                row: v.key.clone(),
                data: v.row.clone(),
                change: "appeared".into(),
                cause: cause.to_string(),
            };
            lines.push(serde_json::to_string(&r).unwrap_or_default());
        }
        for key in cleared {
            let r = HistoryRecord {
                at: at.clone(),
                policy: engine.clone(),
                row: (*key).clone(),
                data: known.get(*key).cloned().unwrap_or(Value::Null),
                change: "cleared".into(),
                cause: cause.to_string(),
            };
            lines.push(serde_json::to_string(&r).unwrap_or_default());
        }
        let data = append_bounded(&text, &lines, MAX_BYTES);
        let result = match existing {
            Some(mut m) => {
                m.data.get_or_insert_with(BTreeMap::new).insert(KEY.into(), data);
                api.replace(&cm_name, &PostParams::default(), &m).await.map(|_| ())
            }
            None => {
                let owner = policy.meta().uid.clone().map(|uid| OwnerReference {
                    api_version: congress_model::resources::API_VERSION.into(),
                    kind: "Policy".into(),
                    name: name.clone(),
                    uid,
                    ..OwnerReference::default()
                });
                let m: ConfigMap = serde_json::from_value(json!({
                    "metadata": {
                        "name": cm_name,
                        "namespace": ctx.namespace,
                        "labels": {"app.kubernetes.io/managed-by": "congress", POLICY_LABEL: super::prefix(&name, 63)},
                        "ownerReferences": owner.into_iter().collect::<Vec<_>>(),
                    },
                    "data": {KEY: data},
                }))
                .unwrap_or_default();
                api.create(&PostParams::default(), &m).await.map(|_| ())
            }
        };
        match result {
            Ok(()) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 && tries < 3 => continue,
            Err(source) => return Err(HistoryError::Write { policy: name, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(at: &str, row: &str, change: &str) -> HistoryRecord {
        HistoryRecord {
            at: at.into(),
            policy: "p".into(),
            row: row.into(),
            data: json!([1]),
            change: change.into(),
            cause: "data changed".into(),
        }
    }

    #[test]
    fn the_oldest_lines_go_first_and_lines_are_never_cut() {
        let old = "a1\nb22\n";
        assert_eq!(append_bounded(old, &["c333".into()], 100), "a1\nb22\nc333\n");
        assert_eq!(append_bounded(old, &["c333".into()], 9), "b22\nc333\n");
        assert_eq!(append_bounded(old, &["c333".into()], 5), "c333\n");
        assert_eq!(append_bounded("", &["toolong".into()], 3), "");
        assert!(append_bounded(&"x\n".repeat(400_000), &["y".into()], MAX_BYTES).len() <= MAX_BYTES);
    }

    #[test]
    fn records_round_trip_and_filter_newest_first() {
        let lines: Vec<String> = [
            rec("2026-01-01T00:00:00Z", "error(1)", "appeared"),
            rec("2026-01-02T00:00:00Z", "error(2)", "appeared"),
            rec("2026-01-03T00:00:00Z", "error(1)", "cleared"),
        ]
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
        let text = append_bounded("", &lines, MAX_BYTES) + "not json\n";
        let all = parse(&text);
        assert_eq!(all.len(), 3);
        let seen = first_seen(&all);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen["error(2)"], "2026-01-02T00:00:00Z");
        let f = HistoryFilter { since_ms: millis("2026-01-02T00:00:00Z"), limit: 10, ..Default::default() };
        let picked = select(all.clone(), &f);
        assert_eq!(picked.iter().map(|r| r.row.as_str()).collect::<Vec<_>>(), ["error(1)", "error(2)"]);
        assert_eq!(picked[0].change, "cleared");
        let f = HistoryFilter { policy: Some("q".into()), ..Default::default() };
        assert!(select(all.clone(), &f).is_empty());
        assert_eq!(select(all, &HistoryFilter { limit: 1, ..Default::default() }).len(), 1);
    }

    #[test]
    fn configmap_names_stay_valid() {
        assert_eq!(configmap_name("p"), "congress-history-p");
        let long = configmap_name(&"a".repeat(253));
        assert!(long.len() <= 253, "{}", long.len());
        assert_ne!(long, configmap_name(&format!("{}b", "a".repeat(252))));
    }
}
