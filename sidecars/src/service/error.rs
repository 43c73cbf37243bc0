//! Errors as values with their HTTP status, answered in the one OpenAI-shaped body the filter
//! and the sidecar share ([`switchyard_config::ErrorBody`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use switchyard_config::ErrorBody;

use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    /// OpenAI's `type` (`invalid_request_error`, ...), or LiteLLM's for its management API.
    pub kind: &'static str,
    pub message: String,
    /// The field at fault, when one is.
    pub param: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            param: None,
        }
    }

    fn on(mut self, param: &str) -> ApiError {
        self.param = Some(param.to_string());
        self
    }

    /// A bad OpenAI request (the demo model).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// A bad field in a management request: 400 naming it.
    pub fn invalid(param: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request_error", message).on(param)
    }

    /// What the request names does not exist: 404 naming the field.
    pub fn not_found(param: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found_error", message).on(param)
    }

    /// It exists already: 409 naming the field.
    pub fn conflict(param: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "bad_request_error", message).on(param)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "auth_error", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "auth_error", message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_db_connection", message)
    }

    /// Redis is not configured, or does not answer.
    pub fn redis_unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "redis_unavailable",
            message,
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            message,
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Unavailable(why) => {
                tracing::warn!("database unavailable: {why}");
                ApiError::unavailable(format!(
                    "the database is unavailable ({why}); keys and spend are served again as soon as it is back, and gateways keep using the keys they have cached"
                ))
            }
            StoreError::Failed(why) => {
                tracing::error!("database error: {why}");
                ApiError::internal(format!("database error: {why}"))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody::new(self.status.as_u16(), self.kind, self.message, self.param);
        (self.status, Json(body)).into_response()
    }
}
