//! Prometheus metrics and the operator's HTTP endpoints: `/metrics` (OpenMetrics text),
//! `/healthz` (the process serves) and `/readyz` (every datasource has synced once, so the
//! engine holds the cluster's state).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabel {
    pub policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    pub kind: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DatasourceLabel {
    pub datasource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DatasourceReasonLabel {
    pub datasource: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub service: String,
    /// `Succeeded`, or the cause of the failure.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabel {
    /// `allowed`, `denied`, `warned` or `error`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionViolationLabel {
    pub policy: String,
    /// `deny`, `warn` or `audit`.
    pub action: String,
}

fn poll_latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 4.0, 10))
}

fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 10))
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    /// Rows in each policy's `error` table.
    pub violations: Family<PolicyLabel, Gauge>,
    /// Time to commit one engine transaction (evaluation included).
    pub evaluation_seconds: Histogram,
    /// Time of one reconcile, per kind.
    pub reconcile_seconds: Family<KindLabel, Histogram, fn() -> Histogram>,
    /// Failed reconciles per kind and cause.
    pub reconcile_errors: Family<ErrorLabel, Counter>,
    /// Errors per datasource (watch failures, rejected batches).
    pub sync_errors: Family<DatasourceLabel, Counter>,
    /// Seconds the last batch of each datasource took from its first event to its commit.
    pub sync_lag_seconds: Family<DatasourceLabel, Gauge<f64, AtomicU64>>,
    /// Time of each good poll of a polled datasource (fetch, translate, diff, commit).
    pub poll_seconds: Family<DatasourceLabel, Histogram, fn() -> Histogram>,
    /// Rows added plus removed by polls.
    pub poll_rows_changed: Family<DatasourceLabel, Counter>,
    /// Failed polls per datasource and cause.
    pub poll_failures: Family<DatasourceReasonLabel, Counter>,
    /// 1 while this replica holds the leader lease.
    pub leader: Gauge,
    /// ActionRequests created per policy.
    pub actions_created: Family<PolicyLabel, Counter>,
    /// Times a policy's actions were paused for asking too many at once.
    pub actions_paused_total: Family<PolicyLabel, Counter>,
    /// Executor calls per service and result.
    pub action_executions: Family<ActionLabel, Counter>,
    /// Time of each executor call.
    pub action_seconds: Histogram,
    /// Time from an ActionRequest's creation to its executor call (requests this replica made).
    pub action_delay_seconds: Histogram,
    /// 0 while the kill switch is on.
    pub actions_enabled: Gauge,
    pub admission_reviews: Family<AdmissionLabel, Counter>,
    pub admission_violations: Family<AdmissionViolationLabel, Counter>,
    pub admission_seconds: Histogram,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("congress");
        let violations = Family::<PolicyLabel, Gauge>::default();
        registry.register("policy_violations", "Rows in each policy's error table", violations.clone());
        let evaluation_seconds = latency();
        registry.register(
            "evaluation_duration_seconds",
            "Time to commit one engine transaction, evaluation included",
            evaluation_seconds.clone(),
        );
        let reconcile_seconds = Family::<KindLabel, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        registry.register("reconcile_duration_seconds", "Time of one reconcile", reconcile_seconds.clone());
        let reconcile_errors = Family::<ErrorLabel, Counter>::default();
        registry.register("reconcile_errors", "Failed reconciles per kind and cause", reconcile_errors.clone());
        let sync_errors = Family::<DatasourceLabel, Counter>::default();
        registry.register("datasource_sync_errors", "Datasource watch and apply errors", sync_errors.clone());
        let sync_lag_seconds = Family::<DatasourceLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "datasource_sync_lag_seconds",
            "Seconds the last batch took from its first event to its commit",
            sync_lag_seconds.clone(),
        );
        let poll_seconds = Family::<DatasourceLabel, Histogram, fn() -> Histogram>::new_with_constructor(poll_latency);
        registry.register(
            "datasource_poll_seconds",
            "Time of each good poll: fetch, translate, diff, commit",
            poll_seconds.clone(),
        );
        let poll_rows_changed = Family::<DatasourceLabel, Counter>::default();
        registry.register(
            "datasource_poll_rows_changed",
            "Rows added plus removed by polls",
            poll_rows_changed.clone(),
        );
        let poll_failures = Family::<DatasourceReasonLabel, Counter>::default();
        registry.register("datasource_poll_failures", "Failed polls per datasource and cause", poll_failures.clone());
        let leader = Gauge::default();
        registry.register("leader", "1 while this replica holds the leader lease", leader.clone());
        let actions_created = Family::<PolicyLabel, Counter>::default();
        registry.register("actions_created", "ActionRequests created per policy", actions_created.clone());
        let actions_paused_total = Family::<PolicyLabel, Counter>::default();
        registry.register(
            "actions_paused",
            "Times a policy's actions were paused for asking too many at once",
            actions_paused_total.clone(),
        );
        let action_executions = Family::<ActionLabel, Counter>::default();
        registry.register("action_executions", "Executor calls per service and result", action_executions.clone());
        let action_seconds = poll_latency();
        registry.register("action_duration_seconds", "Time of each executor call", action_seconds.clone());
        let action_delay_seconds = poll_latency();
        registry.register(
            "action_delay_seconds",
            "Time from an ActionRequest's creation to its executor call",
            action_delay_seconds.clone(),
        );
        let actions_enabled = Gauge::default();
        registry.register("actions_enabled", "0 while the kill switch is on", actions_enabled.clone());
        let admission_reviews = Family::<AdmissionLabel, Counter>::default();
        registry.register("admission_reviews", "Admission reviews answered, by result", admission_reviews.clone());
        let admission_violations = Family::<AdmissionViolationLabel, Counter>::default();
        registry.register(
            "admission_violations",
            "New violations found at admission, per policy and action",
            admission_violations.clone(),
        );
        let admission_seconds = latency();
        registry.register(
            "admission_review_duration_seconds",
            "Time to answer one admission review (rows, simulation, proof)",
            admission_seconds.clone(),
        );
        Metrics {
            admission_reviews,
            admission_violations,
            admission_seconds,
            actions_created,
            actions_paused_total,
            action_executions,
            action_seconds,
            action_delay_seconds,
            actions_enabled,
            poll_seconds,
            poll_rows_changed,
            poll_failures,
            registry,
            violations,
            evaluation_seconds,
            reconcile_seconds,
            reconcile_errors,
            sync_errors,
            sync_lag_seconds,
            leader,
            ready: AtomicBool::new(false),
        }
    }

    /// The metrics in OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// The HTTP routes.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(serve_ready))
        .with_state(metrics)
}

/// `/healthz` and `/readyz` only (the operator's API serves `/metrics` itself, with the
/// API's metrics added: see [`encode_with`]).
pub fn health_router(metrics: Arc<Metrics>) -> Router {
    Router::new().route("/healthz", get(|| async { "ok" })).route("/readyz", get(serve_ready)).with_state(metrics)
}

/// The operator's metrics followed by `more` (another registry's OpenMetrics text), as one
/// exposition: a single `# EOF`, at the end.
pub fn encode_with(m: &Metrics, more: &str) -> impl IntoResponse + use<> {
    let mine = m.encode();
    let mine = mine.trim_end().strip_suffix("# EOF").unwrap_or(&mine).to_string();
    let mut text = mine;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(more);
    if !text.trim_end().ends_with("# EOF") {
        text.push_str("# EOF\n");
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
}

async fn serve_metrics(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.encode())
}

async fn serve_ready(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    if m.is_ready() { (StatusCode::OK, "ok") } else { (StatusCode::SERVICE_UNAVAILABLE, "datasources not synced") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_encode_with_labels() {
        let m = Metrics::new();
        m.violations.get_or_create(&PolicyLabel { policy: "registry".into() }).set(3);
        m.sync_errors.get_or_create(&DatasourceLabel { datasource: "kube".into() }).inc();
        m.reconcile_seconds.get_or_create(&KindLabel { kind: "Policy".into() }).observe(0.01);
        m.reconcile_errors.get_or_create(&ErrorLabel { kind: "Policy".into(), reason: "WriteStatus".into() }).inc();
        m.poll_seconds.get_or_create(&DatasourceLabel { datasource: "nova".into() }).observe(0.2);
        m.poll_failures
            .get_or_create(&DatasourceReasonLabel { datasource: "nova".into(), reason: "Timeout".into() })
            .inc();
        m.action_executions.get_or_create(&ActionLabel { service: "nova".into(), result: "Refused".into() }).inc();
        let text = m.encode();
        assert!(text.contains("congress_action_executions_total{service=\"nova\",result=\"Refused\"} 1"), "{text}");
        assert!(text.contains("congress_datasource_poll_seconds_count{datasource=\"nova\"} 1"), "{text}");
        assert!(
            text.contains("congress_datasource_poll_failures_total{datasource=\"nova\",reason=\"Timeout\"} 1"),
            "{text}"
        );
        assert!(text.contains("congress_policy_violations{policy=\"registry\"} 3"), "{text}");
        assert!(text.contains("congress_datasource_sync_errors_total{datasource=\"kube\"} 1"), "{text}");
        assert!(text.contains("congress_reconcile_duration_seconds_count{kind=\"Policy\"} 1"), "{text}");
        assert!(text.contains("congress_reconcile_errors_total{kind=\"Policy\",reason=\"WriteStatus\"} 1"), "{text}");
    }
}
