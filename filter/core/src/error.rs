//! The one error type the filter knows: an HTTP status and an OpenAI-shaped body.

use serde::Serialize;
use switchyard_config::ErrorClass;

/// An error the client sees: `{"error": {"message", "type", "param", "code"}}` with `code` the
/// status as a string, as the LiteLLM proxy sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    /// OpenAI's `type` (`invalid_request_error`, `auth_error`, ...).
    pub kind: &'static str,
    pub param: Option<String>,
    /// Seconds the client should wait before retrying (a `retry-after` header).
    pub retry_after_s: Option<u64>,
    /// More response headers (a rate limit's `x-ratelimit-*`).
    pub headers: Vec<(&'static str, String)>,
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
            retry_after_s: None,
            headers: Vec::new(),
        }
    }

    /// The headers the error's response carries besides its content-type.
    pub fn response_headers(&self) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = self
            .retry_after_s
            .map(|s| ("retry-after", s.to_string()))
            .into_iter()
            .collect();
        out.extend(self.headers.iter().cloned());
        out
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

/// LiteLLM's class of a provider error, from its status and message.
pub fn classify(status: u16, message: &str) -> ErrorClass {
    let lower = message.to_ascii_lowercase();
    let mentions = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    match status {
        401 | 403 => ErrorClass::Authentication,
        404 => ErrorClass::NotFound,
        408 | 504 => ErrorClass::Timeout,
        429 => ErrorClass::RateLimit,
        400..=499 if mentions(CONTEXT_WINDOW) => ErrorClass::ContextWindow,
        400..=499 if mentions(CONTENT_POLICY) => ErrorClass::ContentPolicy,
        400..=499 => ErrorClass::BadRequest,
        _ => ErrorClass::InternalServer,
    }
}

/// How providers say a prompt does not fit the model's context window.
const CONTEXT_WINDOW: &[&str] = &[
    "context_length_exceeded",
    "context length",
    "context window",
    "maximum context",
    "prompt is too long",
    // Anthropic, when the prompt and max_tokens together do not fit.
    "exceed context limit",
    "input is too long",
    "too many tokens",
    // Bedrock (Titan): "Too many input tokens. Max input tokens: 8192, ..."
    "too many input tokens",
    "reduce the length of the messages",
    "exceeds the maximum number of tokens",
    "token limit",
];

/// How providers say a request was refused by a content policy.
const CONTENT_POLICY: &[&str] = &[
    "content_policy_violation",
    "content policy",
    "content_filter",
    "content management policy",
    "responsible ai",
    "safety system",
];

/// `text` with every secret replaced by `[redacted]` (providers echo keys in errors).
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "[redacted]");
        }
    }
    out
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
    fn classes_as_litellm_names_them() {
        assert_eq!(
            classify(400, "This model's maximum context length is 8192 tokens"),
            ErrorClass::ContextWindow
        );
        assert_eq!(
            classify(400, "prompt is too long: 210000 tokens > 200000 maximum"),
            ErrorClass::ContextWindow
        );
        assert_eq!(classify(400, "The response was filtered due to the prompt triggering Azure OpenAI's content management policy"), ErrorClass::ContentPolicy);
        assert_eq!(classify(400, "invalid temperature"), ErrorClass::BadRequest);
        assert_eq!(classify(401, ""), ErrorClass::Authentication);
        assert_eq!(classify(429, "context length"), ErrorClass::RateLimit);
        assert_eq!(classify(503, ""), ErrorClass::InternalServer);
        assert_eq!(classify(504, ""), ErrorClass::Timeout);
    }

    #[test]
    fn secrets_are_scrubbed() {
        let secrets = vec!["sk-provider-secret-1".to_string(), "short".to_string()];
        assert_eq!(
            scrub(
                "Incorrect API key provided: sk-provider-secret-1.",
                &secrets
            ),
            "Incorrect API key provided: [redacted]."
        );
        assert_eq!(
            scrub("short words", &secrets),
            "short words",
            "too short to be a key"
        );
    }

    #[test]
    fn param_is_null_when_absent() {
        let v: serde_json::Value =
            serde_json::from_slice(&ApiError::unauthorized("x").body()).unwrap_or_default();
        assert!(v["error"]["param"].is_null());
        assert_eq!(v["error"]["code"], "401");
    }
}
