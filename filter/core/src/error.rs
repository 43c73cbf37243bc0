//! The one error type the filter knows: an HTTP status and an OpenAI-shaped body.

use serde::Serialize;

/// An error the client sees: `{"error": {"message", "type", "param", "code"}}` with `code` the
/// status as a string, as the LiteLLM proxy sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    /// OpenAI's `type` (`invalid_request_error`, `auth_error`, ...).
    pub kind: &'static str,
    pub param: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: String,
}

impl ApiError {
    pub fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind,
            param: None,
        }
    }

    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_string());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "auth_error", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found_error", message)
    }

    pub fn too_large(limit: u64) -> Self {
        Self::new(
            413,
            "invalid_request_error",
            format!(
                "Request body is larger than the limit of {} bytes ({} MB). Send a smaller request, or raise general_settings.max_request_size_mb.",
                limit,
                limit / (1024 * 1024)
            ),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal_server_error", message)
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        let body = Body {
            error: Inner {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.status.to_string(),
            },
        };
        // Serialising a struct of strings cannot fail; fall back to a fixed body to stay panic-free.
        serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"error\":{\"message\":\"internal error\",\"type\":\"internal_server_error\",\"param\":null,\"code\":\"500\"}}".to_vec())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

/// The OpenAI error `type` LiteLLM reports for a status.
pub fn kind_for_status(status: u16) -> &'static str {
    match status {
        400 | 404 | 409 | 413 | 422 => "invalid_request_error",
        401 => "auth_error",
        403 => "permission_error",
        408 | 504 => "timeout",
        429 => "rate_limit_error",
        502 | 503 => "service_unavailable",
        _ => "internal_server_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_openai_shaped_with_string_code() {
        let e = ApiError::bad_request("bad \"thing\"").with_param("model");
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap_or_default();
        assert_eq!(v["error"]["message"], "bad \"thing\"");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "model");
        assert_eq!(v["error"]["code"], "400");
    }

    #[test]
    fn param_is_null_when_absent() {
        let v: serde_json::Value =
            serde_json::from_slice(&ApiError::unauthorized("x").body()).unwrap_or_default();
        assert!(v["error"]["param"].is_null());
        assert_eq!(v["error"]["code"], "401");
    }
}
