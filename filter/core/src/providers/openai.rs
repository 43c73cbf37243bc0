//! OpenAI and every OpenAI-compatible server (groq, together_ai, mistral, deepseek, fireworks_ai,
//! openrouter, xai, perplexity, vLLM, LM Studio, a custom api_base): same schema, so the body
//! passes through with only `model` changed; the answer gets the model name the client asked for.

use serde::de::IgnoredAny;
use switchyard_config::{Dialect, Provider};

use super::{provider_error, stream_cut, Ctx, ProviderRequest, Translator};
use crate::error::ApiError;
use crate::framing::Frame;
use crate::json::{replace_str_member, with_str_member, RawObject};
use crate::openai::{StreamOptions, Usage};

/// The passthrough keeps what it learns from the stream: whether it ended properly, its
/// usage, and whether the usage chunk is Switchyard's to keep (the client did not ask).
#[derive(Default)]
pub struct OpenAi {
    done: bool,
    usage: Option<Usage>,
    hide_usage_chunk: bool,
}

impl Translator for OpenAi {
    fn owned_headers(&self) -> &'static [&'static str] {
        &["authorization", "openai-organization"]
    }

    fn native(&mut self, ctx: &Ctx, body: &[u8]) -> Option<Result<ProviderRequest, ApiError>> {
        if ctx.info.dialect != Dialect::Responses
            || !ctx
                .deployment
                .provider
                .speaks(&ctx.deployment.model)
                .contains(&Dialect::Responses)
        {
            return None;
        }
        let base = &ctx.deployment.base_path;
        // A stored response: no body, its path from the client's.
        if let Some(stored) = &ctx.info.stored {
            return Some(Ok(ProviderRequest {
                path: format!("{base}/responses/{stored}"),
                headers: self.headers(ctx),
                body: Vec::new(),
            }));
        }
        Some(request_body(ctx, body).map(|body| ProviderRequest {
            path: format!("{base}/responses"),
            headers: self.headers(ctx),
            body,
        }))
    }

    fn request(&mut self, ctx: &Ctx, body: &[u8]) -> Result<ProviderRequest, ApiError> {
        let d = ctx.deployment;
        let mut path = String::with_capacity(d.base_path.len() + ctx.info.endpoint.path().len());
        path.push_str(&d.base_path);
        path.push_str(ctx.info.endpoint.path());
        let headers = self.headers(ctx);
        // Spend needs the usage of a stream too: OpenAI and Azure send it when asked. The
        // usage chunk then goes to Switchyard only, unless the client asked for it as well.
        let body = if ctx.info.stream
            && matches!(ctx.deployment.provider, Provider::Openai | Provider::Azure)
        {
            let (body, added) = stream_with_usage(ctx, body)?;
            self.hide_usage_chunk = added;
            body
        } else {
            request_body(ctx, body)?
        };
        Ok(ProviderRequest {
            path,
            headers,
            body,
        })
    }

    fn response(&mut self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        set_model(body, ctx.answer_model()).map_err(|e| {
            ApiError::new(
                502,
                "api_error",
                format!(
                    "{} returned a response that is not a JSON object: {e}",
                    ctx.provider()
                ),
            )
        })
    }

    fn stream_frame(
        &mut self,
        ctx: &Ctx,
        frame: &Frame,
        out: &mut Vec<u8>,
    ) -> Result<(), ApiError> {
        let data = frame.data.as_str();
        if data == "[DONE]" || data.starts_with("{\"error\"") {
            self.done = true;
        } else if data.contains("\"usage\"") {
            #[derive(serde::Deserialize)]
            struct Chunk {
                usage: Option<Usage>,
                #[serde(default)]
                choices: Vec<IgnoredAny>,
            }
            if let Ok(chunk) = serde_json::from_str::<Chunk>(data) {
                if let Some(usage) = chunk.usage {
                    self.usage = Some(usage);
                    if self.hide_usage_chunk && chunk.choices.is_empty() {
                        return Ok(());
                    }
                }
            }
        }
        rewrite_chunk(ctx.answer_model(), frame, out);
        Ok(())
    }

    fn stream_end(&mut self, ctx: &Ctx, _: &mut Vec<u8>) -> Result<(), ApiError> {
        if self.done {
            Ok(())
        } else {
            Err(stream_cut(ctx))
        }
    }

    fn stream_usage(&self) -> Option<Usage> {
        self.usage.clone()
    }

    fn error(&self, ctx: &Ctx, status: u16, headers: &[(String, String)], body: &[u8]) -> ApiError {
        openai_style_error(ctx, status, headers, body)
    }
}

impl OpenAi {
    /// The key, and the organization (the deployment's, or the client's when allowed).
    fn headers(&self, ctx: &Ctx) -> Vec<(String, String)> {
        let mut headers = Vec::with_capacity(2);
        headers.extend(ctx.credentials.bearer());
        if let Some(org) = ctx.deployment.organization.as_ref().or(ctx
            .info
            .client
            .openai_org
            .as_ref())
        {
            headers.push(("openai-organization".into(), org.clone()));
        }
        headers
    }
}

/// The OpenAI request body for the deployment: only `model` changes.
pub(crate) fn request_body(ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    set_model(body, &ctx.deployment.model)
        .map_err(|e| ApiError::bad_request(format!("Request body is not a JSON object: {e}")))
}

/// A stream request with `stream_options.include_usage` set; true when Switchyard set it
/// (the client did not ask).
fn stream_with_usage(ctx: &Ctx, body: &[u8]) -> Result<(Vec<u8>, bool), ApiError> {
    let bad = |e: serde_json::Error| {
        ApiError::bad_request(format!("Request body is not a JSON object: {e}"))
    };
    let mut obj = RawObject::parse(body).map_err(bad)?;
    obj.set_str("model", &ctx.deployment.model);
    let asked = obj
        .get("stream_options")
        .and_then(|v| serde_json::from_str::<StreamOptions>(v.get()).ok())
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    if !asked {
        if let Ok(raw) =
            serde_json::value::to_raw_value(&serde_json::json!({"include_usage": true}))
        {
            obj.set_raw("stream_options", raw);
        }
    }
    Ok((obj.to_vec(), !asked))
}

/// Replaces the top-level `model` of a JSON object.
pub(crate) fn set_model(body: &[u8], model: &str) -> Result<Vec<u8>, serde_json::Error> {
    with_str_member(body, "model", model)
}

/// Re-emits an OpenAI stream event with the client's model name; `[DONE]` and anything that is
/// not a JSON object pass through unchanged.
pub(crate) fn rewrite_chunk(model: &str, frame: &Frame, out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: ");
    let data = frame.data.as_bytes();
    match replace_str_member(data, "model", model) {
        Ok(Some(rewritten)) => out.extend_from_slice(&rewritten),
        _ => out.extend_from_slice(data),
    }
    out.extend_from_slice(b"\n\n");
}

/// usage.total_tokens of an OpenAI answer or chunk.
pub fn total_tokens(body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Usage {
        total_tokens: Option<u64>,
    }
    #[derive(serde::Deserialize)]
    struct WithUsage {
        usage: Option<Usage>,
    }
    serde_json::from_slice::<WithUsage>(body)
        .ok()?
        .usage?
        .total_tokens
}

/// Maps an error answer in OpenAI's shape (`{"error": {"message", "type", ...}}`, or anything
/// else) to the client's error, keeping the provider's message.
pub(crate) fn openai_style_error(
    ctx: &Ctx,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> ApiError {
    #[derive(serde::Deserialize)]
    struct Wrapper {
        error: Detail,
    }
    #[derive(serde::Deserialize)]
    struct Detail {
        #[serde(default)]
        param: Option<String>,
    }
    let message = super::error_message(
        status,
        body,
        &[&["error", "message"], &["message"], &["detail"]],
    );
    let mut err = provider_error(ctx, status, headers, &message);
    err.param = serde_json::from_slice::<Wrapper>(body)
        .ok()
        .and_then(|w| w.error.param);
    err
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::providers::tests::{ctx, ctx_for};
    use crate::providers::Credentials;
    use switchyard_config::{Endpoint, Provider};

    #[test]
    fn path_model_and_key() {
        let (mut d, i) = ctx_for(Provider::Groq, Endpoint::ChatCompletions, "/openai/v1");
        d.organization = Some("org-1".into());
        let key = Credentials::Key("sk-k".into());
        let ctx = ctx(&d, &i, &key);
        let r = OpenAi::default()
            .request(&ctx, br#"{"model":"fast","messages":[]}"#)
            .unwrap();
        assert_eq!(r.path, "/openai/v1/chat/completions");
        assert_eq!(r.body, br#"{"model":"provider-model","messages":[]}"#);
        assert_eq!(
            r.headers,
            [
                ("authorization".to_string(), "Bearer sk-k".to_string()),
                ("openai-organization".to_string(), "org-1".to_string())
            ]
        );
        let resp = OpenAi::default()
            .response(&ctx, br#"{"id":"x","model":"provider-model-2024"}"#)
            .unwrap();
        assert_eq!(resp, br#"{"id":"x","model":"fast"}"#);
    }

    #[test]
    fn stream_chunks_get_the_requested_model_and_a_cut_is_noticed() {
        let (d, i) = ctx_for(Provider::Openai, Endpoint::ChatCompletions, "/v1");
        let ctx = ctx(&d, &i, &Credentials::None);
        let mut out = Vec::new();
        let mut t = OpenAi::default();
        let frame = |data: &str| Frame {
            data: data.into(),
            ..Frame::default()
        };
        t.stream_frame(
            &ctx,
            &frame(r#"{"id":"c","model":"m","choices":[]}"#),
            &mut out,
        )
        .unwrap();
        assert!(t.stream_end(&ctx, &mut out).is_err(), "no [DONE] yet");
        t.stream_frame(
            &ctx,
            &frame(r#"{"id":"c","model":"m","choices":[],"usage":{"total_tokens":9}}"#),
            &mut out,
        )
        .unwrap();
        t.stream_frame(&ctx, &frame("[DONE]"), &mut out).unwrap();
        assert!(t.stream_end(&ctx, &mut out).is_ok());
        assert_eq!(t.stream_usage().map(|u| u.total_tokens), Some(9));
        assert!(String::from_utf8(out)
            .unwrap()
            .starts_with("data: {\"id\":\"c\",\"model\":\"fast\",\"choices\":[]}\n\ndata: "));
    }

    #[test]
    fn errors_keep_the_provider_message() {
        let (d, i) = ctx_for(Provider::Openai, Endpoint::ChatCompletions, "/v1");
        let ctx = ctx(&d, &i, &Credentials::None);
        let t = OpenAi::default();
        let e = t.error(&ctx, 400, &[], br#"{"error":{"message":"max_tokens is too large","type":"invalid_request_error","param":"max_tokens","code":null}}"#);
        assert_eq!(e.status, 400);
        assert!(
            e.message.contains("max_tokens is too large"),
            "{}",
            e.message
        );
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
        let e = t.error(&ctx, 429, &[], b"slow down");
        assert_eq!((e.status, e.kind), (429, "rate_limit_error"));
        assert!(e.message.contains("slow down"));
        assert_eq!(t.error(&ctx, 418, &[], b"").status, 400);
        assert_eq!(t.error(&ctx, 503, &[], b"").status, 503);
    }
}
