//! OpenAI and every OpenAI-compatible server (groq, together_ai, mistral, deepseek, fireworks_ai,
//! openrouter, xai, perplexity, vLLM, LM Studio, a custom api_base): same schema, so the body
//! passes through with only `model` changed; the answer gets the model name the client asked for.

use super::{Ctx, Translator};
use crate::error::{kind_for_status, ApiError};
use crate::json::{replace_str_member, with_str_member};
use crate::sse::Event;

pub struct OpenAi;

impl Translator for OpenAi {
    fn path(&self, ctx: &Ctx) -> String {
        let mut path =
            String::with_capacity(ctx.deployment.base_path.len() + ctx.info.endpoint.path().len());
        path.push_str(&ctx.deployment.base_path);
        path.push_str(ctx.info.endpoint.path());
        path
    }

    fn request(&self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        set_model(body, &ctx.deployment.model)
            .map_err(|e| ApiError::bad_request(format!("Request body is not a JSON object: {e}")))
    }

    fn response(&self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        set_model(body, ctx.info.answer_model()).map_err(|e| {
            ApiError::new(
                502,
                "api_error",
                format!(
                    "{} returned a response that is not a JSON object: {e}",
                    ctx.deployment.provider.name()
                ),
            )
        })
    }

    fn stream_event(&mut self, ctx: &Ctx, event: &Event, out: &mut Vec<u8>) {
        rewrite_chunk(ctx.info.answer_model(), event, out)
    }

    fn error(&self, ctx: &Ctx, status: u16, body: &[u8]) -> ApiError {
        openai_style_error(ctx, status, body)
    }
}

/// Replaces the top-level `model` of a JSON object.
pub(crate) fn set_model(body: &[u8], model: &str) -> Result<Vec<u8>, serde_json::Error> {
    with_str_member(body, "model", model)
}

/// Re-emits an OpenAI stream event with the client's model name; `[DONE]` and anything that is
/// not a JSON object pass through unchanged.
pub(crate) fn rewrite_chunk(model: &str, event: &Event, out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: ");
    let data = event.data.as_bytes();
    match replace_str_member(data, "model", model) {
        Ok(Some(rewritten)) => out.extend_from_slice(&rewritten),
        _ => out.extend_from_slice(data),
    }
    out.extend_from_slice(b"\n\n");
}

/// Maps an error answer in OpenAI's shape (`{"error": {"message", "type", ...}}`, or anything
/// else) to the client's error, keeping the provider's message.
pub(crate) fn openai_style_error(ctx: &Ctx, status: u16, body: &[u8]) -> ApiError {
    #[derive(serde::Deserialize)]
    struct Wrapper {
        error: Detail,
    }
    #[derive(serde::Deserialize)]
    struct Detail {
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        param: Option<String>,
    }
    let provider = ctx.deployment.provider.name();
    let (message, param) = match serde_json::from_slice::<Wrapper>(body) {
        Ok(w) => (w.error.message, w.error.param),
        Err(_) => (None, None),
    };
    let message = message.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            format!("HTTP {status} with an empty body")
        } else {
            text.chars().take(2000).collect()
        }
    });
    let mut err = mapped_error(provider, status, &message);
    err.param = param;
    err
}

/// The client's error for a provider status: LiteLLM's exception names in the message, the
/// status the OpenAI SDKs map to the right exception.
pub(crate) fn mapped_error(provider: &str, status: u16, message: &str) -> ApiError {
    let client_status = match status {
        400 | 401 | 403 | 404 | 408 | 409 | 413 | 422 | 429 => status,
        s if (500..=599).contains(&s) => s,
        s if (400..=499).contains(&s) => 400,
        _ => 502,
    };
    let exception = match client_status {
        400 | 409 | 413 | 422 => "BadRequestError",
        401 => "AuthenticationError",
        403 => "PermissionDeniedError",
        404 => "NotFoundError",
        408 | 504 => "Timeout",
        429 => "RateLimitError",
        503 => "ServiceUnavailableError",
        _ => "APIError",
    };
    ApiError::new(
        client_status,
        kind_for_status(client_status),
        format!("litellm.{exception}: {provider} returned {status}: {message}"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::providers::tests::ctx_for;
    use switchyard_config::{Endpoint, Provider};

    #[test]
    fn path_and_model() {
        let (d, i) = ctx_for(Provider::Groq, Endpoint::ChatCompletions, "/openai/v1");
        let ctx = Ctx {
            deployment: &d,
            info: &i,
        };
        assert_eq!(OpenAi.path(&ctx), "/openai/v1/chat/completions");
        let out = OpenAi
            .request(&ctx, br#"{"model":"fast","messages":[]}"#)
            .unwrap();
        assert_eq!(out, br#"{"model":"provider-model","messages":[]}"#);
        let resp = OpenAi
            .response(&ctx, br#"{"id":"x","model":"provider-model-2024"}"#)
            .unwrap();
        assert_eq!(resp, br#"{"id":"x","model":"fast"}"#);
    }

    #[test]
    fn stream_chunks_get_the_requested_model() {
        let (d, i) = ctx_for(Provider::Openai, Endpoint::ChatCompletions, "/v1");
        let ctx = Ctx {
            deployment: &d,
            info: &i,
        };
        let mut out = Vec::new();
        let mut t = OpenAi;
        t.stream_event(
            &ctx,
            &Event {
                event: None,
                data: r#"{"id":"c","model":"m","choices":[]}"#.into(),
            },
            &mut out,
        );
        t.stream_event(
            &ctx,
            &Event {
                event: None,
                data: "[DONE]".into(),
            },
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "data: {\"id\":\"c\",\"model\":\"fast\",\"choices\":[]}\n\ndata: [DONE]\n\n"
        );
    }

    #[test]
    fn errors_keep_the_provider_message() {
        let (d, i) = ctx_for(Provider::Openai, Endpoint::ChatCompletions, "/v1");
        let ctx = Ctx {
            deployment: &d,
            info: &i,
        };
        let e = OpenAi.error(&ctx, 400, br#"{"error":{"message":"max_tokens is too large","type":"invalid_request_error","param":"max_tokens","code":null}}"#);
        assert_eq!(e.status, 400);
        assert!(
            e.message.contains("max_tokens is too large"),
            "{}",
            e.message
        );
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
        let e = OpenAi.error(&ctx, 429, b"slow down");
        assert_eq!((e.status, e.kind), (429, "rate_limit_error"));
        assert!(e.message.contains("slow down"));
        assert_eq!(OpenAi.error(&ctx, 418, b"").status, 400);
        assert_eq!(OpenAi.error(&ctx, 503, b"").status, 503);
    }
}
