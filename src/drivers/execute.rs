//! Executors: what a driver does when asked to act (Congress's `ExecutionDriver`). A
//! Datasource whose driver can act offers an [`Executor`]; an ActionRequest for
//! `service:action` is sent to the one executor of the Datasource named `service`, never to
//! several (the seed's unicast), and an action it does not offer fails before any call.
//!
//! An executor receives the action's arguments and an [`ExecContext`]: the custom context of
//! the policy (or of the request), whose values are secret by default. `os.auth` replaces
//! the driver's credentials for that one call; `header.NAME` keys are sent as headers; the
//! context never reaches a log, a status or an error (its values print as `<hidden>`).

use crate::credentials::SecretValue;
use futures::future::BoxFuture;
use std::collections::BTreeMap;

/// One action to run.
#[derive(Clone, Debug, Default)]
pub struct ActionCall {
    /// The action, without its service: `servers.pause`.
    pub action: String,
    pub positional: Vec<serde_json::Value>,
    pub named: BTreeMap<String, serde_json::Value>,
    /// Validate, change nothing (the server's dry-run where there is one).
    pub dry_run: bool,
    pub context: ExecContext,
}

/// The custom context of one call (seed 002).
#[derive(Clone, Debug, Default)]
pub struct ExecContext {
    /// `os.auth`: credentials (JSON: `auth_url`, `username`, `password`, `project_name`,
    /// `user_domain_name`, `project_domain_name`, or `application_credential_id` and
    /// `application_credential_secret`, or `token`) that replace the driver's for this call.
    pub os_auth: Option<SecretValue>,
    /// Every other key. `header.NAME` keys are sent as the header `NAME`.
    pub values: BTreeMap<String, SecretValue>,
}

impl ExecContext {
    /// Split a context's keys: `os.auth` is taken out, the rest kept.
    pub fn new(mut values: BTreeMap<String, SecretValue>) -> ExecContext {
        let os_auth = values.remove(OS_AUTH);
        ExecContext { os_auth, values }
    }

    /// The headers the context asks for (`header.NAME` keys), as (NAME, value).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &SecretValue)> {
        self.values.iter().filter_map(|(k, v)| Some((k.strip_prefix(HEADER_PREFIX)?, v)))
    }
}

/// The context key whose value replaces the driver's credentials for one call.
pub const OS_AUTH: &str = "os.auth";
/// Context keys with this prefix are sent as headers.
pub const HEADER_PREFIX: &str = "header.";

/// What an executor says it offers (`GET /v1/data-sources/<ds>/actions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionInfo {
    /// `servers.pause`; a trailing `*` offers a family (`servers.*`).
    pub name: String,
    /// The positional arguments' names.
    pub args: Vec<String>,
    pub description: String,
}

impl ActionInfo {
    /// Whether `action` is this one, or of this family.
    pub fn matches(&self, action: &str) -> bool {
        match self.name.strip_suffix('*') {
            Some(prefix) => action.len() > prefix.len() && action.starts_with(prefix),
            None => self.name == action,
        }
    }
}

/// What a successful call did, for the ActionRequest's status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionOutcome {
    /// One line: `POST servers/vm1/action: 202 Accepted`, `patched Pod ns/p (dry run)`.
    pub summary: String,
}

/// Why an action failed. [`ExecError::retryable`] says whether trying again may help.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The service offers no such action.
    #[error("service `{service}` offers no action `{action}`")]
    UnknownAction { service: String, action: String },
    /// The arguments do not fit the action (too few, wrong type).
    #[error("bad arguments for `{action}`: {message}")]
    BadArguments { action: String, message: String },
    /// The context is unusable (`os.auth` is not valid JSON credentials, a header name is
    /// invalid). Says which key, never its value.
    #[error("bad context key `{key}`: {message}")]
    BadContext { key: String, message: String },
    /// Authentication failed (Keystone refused the credentials, the service said 401/403).
    #[error("authentication failed: {0}")]
    Unauthorized(String),
    /// The service refused the request (a 4xx other than 401/403/408/429): not retried.
    #[error("{summary}: the service refused it ({status}): {message}")]
    Refused { summary: String, status: u16, message: String },
    /// The service failed or could not be reached (5xx, 408, 429, a timeout, a reset): retried.
    #[error("{summary}: {message}")]
    Transient { summary: String, message: String },
    /// The driver cannot act at all (misconfigured; the Datasource's condition says why).
    #[error("the driver cannot act: {0}")]
    Unavailable(String),
}

impl ExecError {
    /// Whether a later try may succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, ExecError::Transient { .. } | ExecError::Unavailable(_))
    }

    /// The cause, CamelCase: the condition reason and metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            ExecError::UnknownAction { .. } => "UnknownAction",
            ExecError::BadArguments { .. } => "BadArguments",
            ExecError::BadContext { .. } => "BadContext",
            ExecError::Unauthorized(_) => "Unauthorized",
            ExecError::Refused { .. } => "Refused",
            ExecError::Transient { .. } => "Transient",
            ExecError::Unavailable(_) => "Unavailable",
        }
    }
}

/// A driver that can act. Calls may run concurrently; each is independent.
pub trait Executor: Send + Sync + std::fmt::Debug + 'static {
    /// The actions offered.
    fn actions(&self) -> Vec<ActionInfo>;

    /// Run `call` once. Idempotent where the service allows it (pausing a paused server
    /// is not an error).
    fn execute(&self, call: ActionCall) -> BoxFuture<'_, Result<ActionOutcome, ExecError>>;

    /// Whether `action` is offered.
    fn offers(&self, action: &str) -> bool {
        self.actions().iter().any(|a| a.matches(action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_match_their_members_only() {
        let family = ActionInfo { name: "servers.*".into(), ..Default::default() };
        assert!(family.matches("servers.lock"));
        assert!(!family.matches("servers."));
        assert!(!family.matches("ports.update"));
        let one = ActionInfo { name: "servers.pause".into(), ..Default::default() };
        assert!(one.matches("servers.pause") && !one.matches("servers.pause2"));
    }

    #[test]
    fn the_context_splits_auth_from_headers_and_hides_both() {
        let ctx = ExecContext::new(BTreeMap::from([
            ("os.auth".to_string(), SecretValue::new("{\"token\":\"t0ps3cret\"}")),
            ("header.X-Correlation-ID".to_string(), SecretValue::new("canary-42")),
            ("other".to_string(), SecretValue::new("v")),
        ]));
        assert!(ctx.os_auth.is_some());
        assert!(!ctx.values.contains_key("os.auth"));
        let headers: Vec<_> = ctx.headers().map(|(k, v)| (k, v.expose())).collect();
        assert_eq!(headers, vec![("X-Correlation-ID", "canary-42")]);
        let printed = format!("{ctx:?}");
        assert!(!printed.contains("t0ps3cret") && !printed.contains("canary-42"), "{printed}");
    }
}
