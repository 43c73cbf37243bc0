//! One translator per wire format (the provider table in switchyard-config names each
//! provider's wire). Each file has the same shape: request → provider request (path,
//! headers, body), provider response → OpenAI response, provider stream → OpenAI chunks,
//! provider error → OpenAI error. A translator is made fresh for each attempt and never
//! mutates its input, so retries stay safe; it may keep what it learns from the request
//! (the client's stream options, its tools) for the answer.

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub mod cohere;
pub mod gemini;
pub mod ollama;
pub mod openai;
pub mod sigv4;

use switchyard_config::{DeploymentConfig, RequestInfo, Wire};

use crate::error::{classify, kind_for_status, ApiError};
use crate::framing::{Frame, Framing};
use crate::openai::Usage;
use switchyard_config::ErrorClass;

/// What a translator sees of the attempt.
pub struct Ctx<'a> {
    pub deployment: &'a DeploymentConfig,
    pub info: &'a RequestInfo,
    pub credentials: &'a Credentials,
    /// When the attempt started, ms since the epoch (SigV4 signs it; answers' `created`).
    pub now_ms: u64,
    /// Parameters the provider cannot take are dropped rather than refused (drop_params:
    /// the deployment's, litellm_settings', or the request's).
    pub drop_params: bool,
    /// This attempt's `:authority` (the deployment's host, or a replica's).
    pub authority: &'a str,
    /// Envoy's `x-request-id` of the request (empty if none): the answer's id when the
    /// provider gives none.
    pub request_id: &'a str,
}

impl Ctx<'_> {
    /// The model name answers carry: the one the client asked for.
    pub fn answer_model(&self) -> &str {
        self.info.answer_model()
    }

    pub fn provider(&self) -> &'static str {
        self.deployment.provider.name()
    }

    /// `created` of an answer: seconds since the epoch.
    pub fn created(&self) -> u64 {
        self.now_ms / 1000
    }

    /// A parameter the provider cannot take: dropped with drop_params, else a 400 that says
    /// how to drop it (LiteLLM's UnsupportedParamsError).
    pub fn unsupported(&self, param: &str) -> Result<(), ApiError> {
        if self.drop_params {
            return Ok(());
        }
        Err(ApiError::bad_request(format!(
            "litellm.UnsupportedParamsError: {} does not support parameters: ['{param}'], for model={}. To drop it from the request, set `drop_params: true` in the request, in the deployment's litellm_params, or in litellm_settings.",
            self.provider(),
            self.deployment.model
        ))
        .with_param(param))
    }
}

/// A deployment's credentials, read from the VM's environment (or, for a minted Google
/// token, from shared data) for one attempt.
#[derive(Clone, Default)]
pub enum Credentials {
    #[default]
    None,
    Key(String),
    Aws {
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    },
    /// An OAuth access token (`Authorization: Bearer`).
    Token(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::None => "None",
            Credentials::Key(_) => "Key(<secret>)",
            Credentials::Aws { .. } => "Aws(<secret>)",
            Credentials::Token(_) => "Token(<secret>)",
        })
    }
}

impl Credentials {
    /// `Authorization: Bearer <key or token>`, when there is one.
    pub fn bearer(&self) -> Option<(String, String)> {
        match self {
            Credentials::Key(k) | Credentials::Token(k) => {
                Some(("authorization".into(), format!("Bearer {k}")))
            }
            _ => None,
        }
    }

    /// The key in a header of the provider's choosing (`api-key`, `x-api-key`, ...).
    pub fn key_header(&self, name: &str) -> Option<(String, String)> {
        match self {
            Credentials::Key(k) => Some((name.to_string(), k.clone())),
            _ => None,
        }
    }
}

/// The provider request for one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderRequest {
    /// `:path`, with its query.
    pub path: String,
    /// The headers the translator sets (credentials, version headers, its content type);
    /// the provider role adds the pseudo-headers, the length and what the client may pass.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub trait Translator {
    /// Request headers this provider's requests are made of: a client's header of one of
    /// these names never passes through (the role adds its own set on top).
    fn owned_headers(&self) -> &'static [&'static str] {
        &[]
    }

    /// The provider's own API for the client's (Anthropic's Messages API and its token count
    /// to Anthropic, the Responses API to OpenAI and Azure): the request with the client's
    /// body as it came, only `model` the deployment's; the answer then passes untouched
    /// (`dialects::passthrough`). None: the provider has no such API, the request is bridged
    /// through chat.
    fn native(&mut self, _ctx: &Ctx, _body: &[u8]) -> Option<Result<ProviderRequest, ApiError>> {
        None
    }

    /// The provider request from the OpenAI request body.
    fn request(&mut self, ctx: &Ctx, body: &[u8]) -> Result<ProviderRequest, ApiError>;

    /// How the provider frames a stream.
    fn framing(&self) -> Framing {
        Framing::Sse
    }

    /// The OpenAI response body from the provider's successful response body.
    fn response(&mut self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError>;

    /// Appends the OpenAI SSE bytes for one frame of the provider's stream to `out`. An
    /// error ends the stream: the role writes it as the final event.
    fn stream_frame(&mut self, ctx: &Ctx, frame: &Frame, out: &mut Vec<u8>)
        -> Result<(), ApiError>;

    /// The provider's stream ended: append what closes the OpenAI stream (finish, usage,
    /// `[DONE]`), or say why it is incomplete (cut off before the provider finished).
    fn stream_end(&mut self, ctx: &Ctx, out: &mut Vec<u8>) -> Result<(), ApiError>;

    /// The stream's usage so far, when the provider reported it.
    fn stream_usage(&self) -> Option<Usage>;

    /// The OpenAI error for a provider's error response (its headers: `retry-after`,
    /// `x-amzn-errortype`, ...).
    fn error(&self, ctx: &Ctx, status: u16, headers: &[(String, String)], body: &[u8]) -> ApiError;
}

/// The translator for a wire format, fresh for one attempt.
// Every translator is made by Default, whether it keeps state or not.
#[allow(clippy::default_constructed_unit_structs)]
pub fn translator(wire: Wire) -> Box<dyn Translator> {
    match wire {
        Wire::OpenAi => Box::new(openai::OpenAi::default()),
        Wire::Azure => Box::new(azure::Azure::default()),
        Wire::Anthropic => Box::new(anthropic::Anthropic::default()),
        Wire::Gemini => Box::new(gemini::Gemini::default()),
        Wire::Bedrock => Box::new(bedrock::Bedrock::default()),
        Wire::Cohere => Box::new(cohere::Cohere::default()),
        Wire::Ollama => Box::new(ollama::Ollama::default()),
    }
}

/// The client's error for a provider's error: the status the OpenAI SDKs map to the right
/// exception, LiteLLM's exception name and the provider's own message, and the provider's
/// `retry-after`.
pub fn provider_error(
    ctx: &Ctx,
    status: u16,
    headers: &[(String, String)],
    message: &str,
) -> ApiError {
    let provider = ctx.provider();
    let client_status = match status {
        400 | 401 | 403 | 404 | 408 | 409 | 413 | 422 | 429 => status,
        // Anthropic's "overloaded".
        529 => 503,
        s if (500..=599).contains(&s) => s,
        s if (400..=499).contains(&s) => 400,
        _ => 502,
    };
    let exception = match classify(client_status, message) {
        ErrorClass::ContextWindow => "ContextWindowExceededError",
        ErrorClass::ContentPolicy => "ContentPolicyViolationError",
        _ => match client_status {
            400 | 409 | 413 | 422 => "BadRequestError",
            401 => "AuthenticationError",
            403 => "PermissionDeniedError",
            404 => "NotFoundError",
            408 | 504 => "Timeout",
            429 => "RateLimitError",
            503 => "ServiceUnavailableError",
            500 => "InternalServerError",
            _ => "APIError",
        },
    };
    let mut err = ApiError::new(
        client_status,
        kind_for_status(client_status),
        format!("litellm.{exception}: {provider} returned {status}: {message}"),
    );
    err.retry_after_s = headers
        .iter()
        .find(|(n, _)| n == "retry-after")
        .and_then(|(_, v)| v.trim().parse().ok());
    err
}

/// A provider error body's message: the first of the JSON paths that holds a string, else
/// the body's text (cut to 2000 characters), else a note that it was empty.
pub fn error_message(status: u16, body: &[u8], paths: &[&[&str]]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        for path in paths {
            let mut at = &v;
            for key in *path {
                at = &at[*key];
            }
            if let Some(s) = at.as_str().filter(|s| !s.is_empty()) {
                return s.to_string();
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        format!("HTTP {status} with an empty body")
    } else {
        text.chars().take(2000).collect()
    }
}

/// An endpoint the gateway never plans on this deployment (its provider does not serve it).
pub fn not_served(ctx: &Ctx) -> ApiError {
    ApiError::bad_request(format!(
        "{} does not serve {}.",
        ctx.provider(),
        ctx.info.endpoint.name()
    ))
}

/// The provider's stream ended before the provider said it was complete.
pub fn stream_cut(ctx: &Ctx) -> ApiError {
    ApiError::new(
        502,
        "api_error",
        format!(
            "{} ended the stream before it was complete. Retry the request.",
            ctx.provider()
        ),
    )
}

/// The provider answered something that is not what its API documents.
pub fn bad_answer(ctx: &Ctx, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        502,
        "api_error",
        format!(
            "{} returned an answer Switchyard cannot read: {why}",
            ctx.provider()
        ),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use switchyard_config::{Auth, DeploymentConfig, Endpoint, Provider, RequestInfo};

    /// A deployment serving model_name "fast" with provider model "provider-model".
    pub fn ctx_for(
        provider: Provider,
        endpoint: Endpoint,
        base_path: &str,
    ) -> (DeploymentConfig, RequestInfo) {
        (
            DeploymentConfig {
                system_prompt: None,
                id: "d1".into(),
                group: "fast".into(),
                provider,
                model: "provider-model".into(),
                scheme: "https".into(),
                authority: "api.example.com".into(),
                base_path: base_path.into(),
                auth: Auth::Key { env: "KEY".into() },
                params: Default::default(),
                organization: None,
                headers: vec![],
                defaults: Default::default(),
                drop_params: false,
                prices: Default::default(),
            },
            RequestInfo {
                endpoint,
                requested_model: "fast".into(),
                group: "fast".into(),
                ..crate::testing::info(&["d1"])
            },
        )
    }

    /// A context over a deployment and request, with a key and a fixed clock.
    pub fn ctx<'a>(
        d: &'a DeploymentConfig,
        i: &'a RequestInfo,
        credentials: &'a Credentials,
    ) -> Ctx<'a> {
        Ctx {
            deployment: d,
            info: i,
            credentials,
            now_ms: 1_700_000_000_000,
            drop_params: false,
            authority: &d.authority,
            request_id: "",
        }
    }

    #[test]
    fn errors_name_litellm_exceptions_and_keep_retry_after() {
        let (d, i) = ctx_for(Provider::Anthropic, Endpoint::ChatCompletions, "");
        let c = Credentials::None;
        let ctx = ctx(&d, &i, &c);
        let e = provider_error(&ctx, 429, &[("retry-after".into(), "7".into())], "slow");
        assert_eq!((e.status, e.retry_after_s), (429, Some(7)));
        assert!(e
            .message
            .starts_with("litellm.RateLimitError: anthropic returned 429: slow"));
        let e = provider_error(&ctx, 400, &[], "prompt is too long: 300000 tokens");
        assert!(
            e.message.contains("ContextWindowExceededError"),
            "{}",
            e.message
        );
        assert_eq!(provider_error(&ctx, 529, &[], "Overloaded").status, 503);
        assert_eq!(
            error_message(
                400,
                br#"{"error":{"message":"m"}}"#,
                &[&["error", "message"]]
            ),
            "m"
        );
        assert_eq!(error_message(500, b"", &[]), "HTTP 500 with an empty body");
    }
}
