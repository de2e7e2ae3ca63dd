//! The API's errors, in Congress's shape: an HTTP status and the body
//! `{"error": {"message", "error_code", "error_data"}}`. The numeric codes are Congress's
//! (`congress/api/error_codes.py`) where it has one, so its clients show the same thing.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A failed request: what to answer.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    /// Congress's error code (1002 `rule_syntax`, ...), or 0 when Congress has none.
    pub code: u32,
    /// A stable cause, counted in `congress_api_errors_total`.
    pub reason: &'static str,
    pub message: String,
    pub data: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, code: u32, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, reason, message: message.into(), data: Value::Null }
    }

    pub fn with_data(mut self, data: Value) -> ApiError {
        self.data = data;
        self
    }

    /// 400: a rule that does not parse or is refused by analysis (Congress's `rule_syntax`).
    pub fn rule_syntax(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, 1002, "rule_syntax", message)
    }

    /// 400: a request Congress would refuse as malformed.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, 1000, "bad_request", message)
    }

    /// 404: no such policy (Congress's `policy_not_exist`).
    pub fn no_policy(name: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, 1020, "policy_not_exist", format!("Policy {name} does not exist"))
    }

    /// 404: anything else that is not there.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, 1021, "not_found", message)
    }

    /// 409: a name or rule that exists already.
    pub fn conflict(reason: &'static str, message: impl Into<String>) -> ApiError {
        let code = if reason == "rule_already_exists" { 1008 } else { 1009 };
        ApiError::new(StatusCode::CONFLICT, code, reason, message)
    }

    /// 500 (Congress's status for a failed simulate or execute).
    pub fn internal(reason: &'static str, message: impl Into<String>) -> ApiError {
        let code = match reason {
            "simulate_error" => 1004,
            "execute_error" => 1016,
            _ => 1001,
        };
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, reason, message)
    }

    /// 503: the engine, the database or the cluster cannot answer now.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, 1001, "unavailable", message)
    }

    /// 501: a method the resource does not support.
    pub fn not_implemented(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_IMPLEMENTED, 1001, "not_implemented", message)
    }

    pub fn body(&self) -> Value {
        json!({"error": {"message": self.message, "error_code": self.code, "error_data": self.data}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        response.extensions_mut().insert(ErrorReason(self.reason));
        response
    }
}

/// The reason of an error response, read by the metrics layer.
#[derive(Clone, Copy, Debug)]
pub struct ErrorReason(pub &'static str);

impl From<crate::controllers::engine::EngineUnavailable> for ApiError {
    fn from(e: crate::controllers::engine::EngineUnavailable) -> ApiError {
        ApiError::unavailable(e.to_string())
    }
}

impl From<congress_engine::EngineError> for ApiError {
    fn from(e: congress_engine::EngineError) -> ApiError {
        use congress_engine::EngineError as E;
        match &e {
            E::Syntax { .. } | E::Analysis { .. } => ApiError::rule_syntax(e.to_string()),
            E::NoSuchPolicy(p) => ApiError::no_policy(p),
            E::RuleExists { .. } => ApiError::conflict("rule_already_exists", e.to_string()),
            E::PolicyExists(_) => ApiError::conflict("policy_exists", e.to_string()),
            E::MultipleRules(_) => ApiError::new(StatusCode::BAD_REQUEST, 1003, "multiple_rules", e.to_string()),
            E::RuleNotPermitted { .. } | E::SystemPolicy(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, 1019, "rule_not_permitted", e.to_string())
            }
            E::NoSuchTable { .. } | E::NoSuchRule { .. } | E::NoProof(_) => ApiError::not_found(e.to_string()),
            _ => ApiError::bad_request(e.to_string()),
        }
    }
}
