//! The admission webhook's answer to one AdmissionReview: the admitted object (and the
//! object it replaces) become rows through its `kubernetes` Datasource's mapping, the change
//! is simulated on the engine (on the engine thread: no other change or query sees it, and
//! nothing persists), and the rows it would add to the `error` table of a `proactive` Policy
//! decide: `deny` refuses with the rows and their reasons, `warn` allows with a warning per
//! row, `audit` allows and records. Existing violations never block an unrelated change.

use super::super::Context;
use super::super::metrics::{AdmissionLabel, AdmissionViolationLabel};
use congress_drivers::admission::{self, NewViolation};
use congress_model::engine_name;
use congress_model::resources::{AdmissionAction, Datasource, Enforcement, Policy};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::{Resource, ResourceExt};
use std::collections::BTreeSet;
use std::time::Instant;

/// At most this many bytes of message in a denial (the API server passes it to the client).
pub const MAX_MESSAGE: usize = 4000;
/// At most this many characters per warning (longer ones may be truncated by clients).
pub const MAX_WARNING: usize = 250;
/// At most this many warnings.
pub const MAX_WARNINGS: usize = 10;

/// What the webhook is configured with.
#[derive(Clone, Debug, Default)]
pub struct ReviewSettings {
    /// Namespaces whose objects are never checked (the operator's own, `kube-system`).
    pub excluded_namespaces: BTreeSet<String>,
}

/// The decision for a set of new violations.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    /// For a denial: the rows of `deny` policies and why (bounded by [`MAX_MESSAGE`]).
    pub message: String,
    /// For `warn` policies: one warning per row.
    pub warnings: Vec<String>,
    /// For `audit` policies: the rows, recorded only.
    pub audited: Vec<String>,
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// What `violations` decide, each policy acting as `action` says.
pub fn decide(violations: &[NewViolation], action: impl Fn(&str) -> AdmissionAction) -> Decision {
    let action = &action;
    let by = |a: AdmissionAction| violations.iter().filter(move |v| action(&v.policy) == a);
    let denied: Vec<&NewViolation> = by(AdmissionAction::Deny).collect();
    let mut message = String::new();
    for (i, v) in denied.iter().enumerate() {
        let reason = v.reason.replace('\n', " ");
        let entry = format!("{}{}: {} ({})", if i == 0 { "" } else { "; " }, v.policy, v.text, reason);
        if message.len() + entry.len() > MAX_MESSAGE {
            let rest = format!("; and {} more", denied.len() - i);
            message = clip(&message, MAX_MESSAGE - rest.len());
            message.push_str(&rest);
            break;
        }
        message.push_str(&entry);
    }
    let mut warnings: Vec<String> =
        by(AdmissionAction::Warn).map(|v| clip(&format!("{}: {}", v.policy, v.text), MAX_WARNING)).collect();
    if warnings.len() > MAX_WARNINGS {
        let more = warnings.len() - (MAX_WARNINGS - 1);
        warnings.truncate(MAX_WARNINGS - 1);
        warnings.push(format!("and {more} more violations"));
    }
    let audited = by(AdmissionAction::Audit).map(|v| format!("{}: {}", v.policy, v.text)).collect();
    Decision { allowed: denied.is_empty(), message, warnings, audited }
}

/// The proactive policies, by engine name, with their admission action.
fn proactive(ctx: &Context) -> Vec<(String, AdmissionAction)> {
    let Some(store) = ctx.actions.policies.get() else { return Vec::new() };
    store
        .state()
        .iter()
        .filter(|p| p.spec.enforcement == Enforcement::Proactive && p.meta().deletion_timestamp.is_none())
        .map(|p| (engine_name(&p.name_any()), action_of(p)))
        .collect()
}

fn action_of(p: &Policy) -> AdmissionAction {
    p.spec.admission.as_ref().map(|a| a.action).unwrap_or_default()
}

/// The `kubernetes` Datasources, `(engine name, source)`.
fn kubernetes_sources(ctx: &Context) -> Vec<(String, congress_model::resources::KubernetesSource)> {
    let Some(store) = ctx.datasource_store.get() else { return Vec::new() };
    store
        .state()
        .iter()
        .filter(|d: &&std::sync::Arc<Datasource>| d.spec.driver == "kubernetes")
        .filter_map(|d| Some((engine_name(&d.name_any()), d.spec.kubernetes.clone()?)))
        .collect()
}

/// Why a review could not be answered: the API server then applies the webhook's
/// `failurePolicy`.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("the engine is unavailable: {0}")]
    Engine(String),
    #[error("the object's rows do not fit its datasource's tables: {0}")]
    Rows(String),
}

/// Answer one request.
pub async fn review(
    ctx: &Context,
    settings: &ReviewSettings,
    req: &AdmissionRequest<DynamicObject>,
) -> Result<AdmissionResponse, ReviewError> {
    let started = Instant::now();
    let response = AdmissionResponse::from(req);
    let skip = matches!(req.operation, Operation::Connect)
        || req.namespace.as_ref().is_some_and(|ns| settings.excluded_namespaces.contains(ns));
    let policies = if skip { Vec::new() } else { proactive(ctx) };
    if policies.is_empty() {
        count(ctx, "allowed", started);
        return Ok(response);
    }
    let json = |o: &Option<DynamicObject>| o.as_ref().and_then(|o| serde_json::to_value(o).ok());
    let (old, new) = (json(&req.old_object), json(&req.object));
    let mappings = admission::mappings(&kubernetes_sources(ctx)).map_err(|e| ReviewError::Rows(e.to_string()))?;
    let changes = admission::row_changes(&mappings, old.as_ref(), new.as_ref());
    if changes.is_empty() {
        count(ctx, "allowed", started);
        return Ok(response);
    }
    let names: Vec<String> = policies.iter().map(|(n, _)| n.clone()).collect();
    let violations = ctx
        .engine
        .run(move |e| admission::new_violations(e, &changes, &names))
        .await
        .map_err(|e| ReviewError::Engine(e.to_string()))?
        .map_err(|e| ReviewError::Rows(e.to_string()))?;
    let action = |p: &str| policies.iter().find(|(n, _)| n == p).map_or(AdmissionAction::Deny, |(_, a)| *a);
    for v in &violations {
        let label = AdmissionViolationLabel { policy: v.policy.clone(), action: action(&v.policy).as_str().into() };
        ctx.metrics.admission_violations.get_or_create(&label).inc();
    }
    let d = decide(&violations, action);
    for row in &d.audited {
        tracing::info!(uid = %req.uid, operation = ?req.operation, name = %req.name, dry_run = req.dry_run, violation = %row, "admission audit");
    }
    let result = if !d.allowed {
        "denied"
    } else if d.warnings.is_empty() {
        "allowed"
    } else {
        "warned"
    };
    count(ctx, result, started);
    let mut response = if d.allowed { response } else { response.deny(&d.message) };
    if !d.allowed {
        response.result.code = 403;
        response.result.reason = "Forbidden".into();
    }
    if !d.warnings.is_empty() {
        response.warnings = Some(d.warnings);
    }
    Ok(response)
}

fn count(ctx: &Context, result: &str, started: Instant) {
    ctx.metrics.admission_reviews.get_or_create(&AdmissionLabel { result: result.into() }).inc();
    ctx.metrics.admission_seconds.observe(started.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;
    use congress_engine::Value;

    fn v(policy: &str, row: &str) -> NewViolation {
        NewViolation {
            policy: policy.into(),
            row: vec![Value::str(row)],
            text: format!("error(\"{row}\")"),
            proof: String::new(),
            reason: "by error(x) :- p(x)\nfrom p(\"x\")".into(),
        }
    }

    fn mode(p: &str) -> AdmissionAction {
        match p {
            "w" => AdmissionAction::Warn,
            "a" => AdmissionAction::Audit,
            _ => AdmissionAction::Deny,
        }
    }

    #[test]
    fn deny_warn_and_audit_decide_as_their_policies_say() {
        let d = decide(&[v("w", "1"), v("a", "2")], mode);
        assert!(d.allowed);
        assert_eq!(d.warnings, ["w: error(\"1\")"]);
        assert_eq!(d.audited, ["a: error(\"2\")"]);
        let d = decide(&[v("d", "3"), v("w", "1")], mode);
        assert!(!d.allowed);
        assert_eq!(d.message, "d: error(\"3\") (by error(x) :- p(x) from p(\"x\"))");
        assert!(decide(&[], mode).allowed);
    }

    #[test]
    fn messages_and_warnings_stay_within_their_bounds() {
        let many: Vec<NewViolation> = (0..500).map(|i| v("d", &format!("row-{i:04}-{}", "x".repeat(40)))).collect();
        let d = decide(&many, mode);
        assert!(d.message.len() <= MAX_MESSAGE, "{}", d.message.len());
        assert!(d.message.ends_with(" more"), "{}", &d.message[d.message.len() - 40..]);
        let warned: Vec<NewViolation> = (0..30).map(|i| v("w", &format!("{i}-{}", "é".repeat(300)))).collect();
        let d = decide(&warned, mode);
        assert_eq!(d.warnings.len(), MAX_WARNINGS);
        assert!(d.warnings.iter().all(|w| w.len() <= MAX_WARNING));
        assert_eq!(d.warnings.last().map(String::as_str), Some("and 21 more violations"));
    }
}
