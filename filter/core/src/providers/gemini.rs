//! Google's generateContent API: Gemini on AI Studio (`gemini/`, key in `x-goog-api-key`,
//! `/v1beta/models/{model}:generateContent`) and on Vertex AI (`vertex_ai/`, OAuth token,
//! `/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:...`).
//!
//! Chat: system and developer messages become `systemInstruction`; the others become
//! `contents` of roles `user` and `model`, consecutive turns of one role merged, tool results
//! as `functionResponse` parts of a user turn. OpenAI's parameters go to `generationConfig`,
//! tools to `functionDeclarations` (schemas cut down to what Gemini's `Schema` takes).
//! Streams ask for `alt=sse`: each event is a whole GenerateContentResponse and no event
//! marks the end, so a stream is complete once a candidate has said why it finished.
//! Embeddings: `batchEmbedContents` on AI Studio, `predict` on Vertex AI.
//!
//! LiteLLM is the contract for the OpenAI side: its finish reasons, usage (thoughts count
//! as completion tokens), reasoning budgets, and thought signatures carried in tool call ids
//! (`<id>__thought__<signature>`), so a conversation started through LiteLLM continues here.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_config::{Endpoint, Provider};

use super::{
    bad_answer, error_message, provider_error, stream_cut, Ctx, ProviderRequest, Translator,
};
use crate::error::ApiError;
use crate::framing::Frame;
use crate::openai::{
    embeddings_response, Answer, ChatRequest, CompletionRequest, Content, EmbeddingsRequest,
    FunctionCall, Message, Part, Role, StreamWriter, ToolCall, ToolChoice, Usage,
};

/// How a Gemini thought signature rides in an OpenAI tool call id (LiteLLM's separator).
const SIGNATURE_SEPARATOR: &str = "__thought__";
/// Gemini 3 refuses a function call in the history without a thought signature; Google
/// documents this value for calls it did not sign (another model's, or an id that lost it).
const DUMMY_SIGNATURE: &str = "skip_thought_signature_validator";
/// Deeper schemas (or a `$ref` that refers to itself) are refused rather than expanded.
const MAX_SCHEMA_DEPTH: usize = 32;

/// What the attempt learns from the request for the answer.
#[derive(Default)]
pub struct Gemini {
    include_usage: bool,
    /// Embeddings: the client asked for base64, and how many characters it sent (AI Studio
    /// reports no tokens for embeddings: about four characters make one).
    embed_base64: bool,
    embed_chars: u64,
    stream: Option<StreamState>,
}

struct StreamState {
    writer: StreamWriter,
    /// The base of the tool call ids (the provider's response id).
    id_base: Option<String>,
    tool_calls: u32,
    /// OpenAI's finish reason, once a candidate has finished.
    finish: Option<&'static str>,
}

impl Translator for Gemini {
    fn owned_headers(&self) -> &'static [&'static str] {
        &["x-goog-api-key", "authorization"]
    }

    fn request(&mut self, ctx: &Ctx, body: &[u8]) -> Result<ProviderRequest, ApiError> {
        let (method, stream, body) = match ctx.info.endpoint {
            Endpoint::Embeddings => {
                let (method, body) = self.embeddings_request(ctx, body)?;
                (method, false, body)
            }
            endpoint => {
                let req = if endpoint == Endpoint::Completions {
                    CompletionRequest::parse_as_chat(body)?
                } else {
                    ChatRequest::parse(body)?
                };
                self.include_usage = req.include_usage();
                let stream = req.is_stream();
                let body = chat_request(ctx, &req)?;
                let method = if stream {
                    "streamGenerateContent"
                } else {
                    "generateContent"
                };
                (method, stream, body)
            }
        };
        let headers = match ctx.deployment.provider {
            Provider::VertexAi => ctx.credentials.bearer(),
            _ => ctx.credentials.key_header("x-goog-api-key"),
        };
        Ok(ProviderRequest {
            path: path(ctx, method, stream)?,
            headers: headers.into_iter().collect(),
            body,
        })
    }

    fn response(&mut self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        if ctx.info.endpoint == Endpoint::Embeddings {
            return self.embeddings_answer(ctx, body);
        }
        let r: GenerateContentResponse =
            serde_json::from_slice(body).map_err(|e| bad_answer(ctx, e))?;
        if let Some(e) = r.error {
            return Err(in_band_error(ctx, &e));
        }
        let usage = r.usage_metadata.as_ref().map(usage).unwrap_or_default();
        let id = r.response_id.clone().unwrap_or_default();
        let id_base = r
            .response_id
            .clone()
            .unwrap_or_else(|| format!("{:x}", ctx.now_ms));
        let mut answers = Vec::with_capacity(r.candidates.len().max(1));
        let mut calls = 0;
        for candidate in &r.candidates {
            answers.push(Answer {
                id: id.clone(),
                usage: usage.clone(),
                ..candidate_answer(candidate, &id_base, &mut calls)
            });
        }
        if answers.is_empty() {
            // No candidates: the prompt was blocked (promptFeedback.blockReason), or nothing
            // was generated. LiteLLM answers content_filter without content for the first.
            let blocked = r.prompt_feedback.is_some_and(|f| f.block_reason.is_some());
            answers.push(Answer {
                id,
                finish_reason: if blocked { "content_filter" } else { "stop" }.into(),
                usage,
                ..Answer::default()
            });
        }
        Ok(choices(ctx, &answers))
    }

    fn stream_frame(
        &mut self,
        ctx: &Ctx,
        frame: &Frame,
        out: &mut Vec<u8>,
    ) -> Result<(), ApiError> {
        let data = frame.data.trim();
        if data.is_empty() {
            return Ok(());
        }
        let r: GenerateContentResponse =
            serde_json::from_str(data).map_err(|e| bad_answer(ctx, e))?;
        if let Some(e) = r.error {
            return Err(in_band_error(ctx, &e));
        }
        let include_usage = self.include_usage;
        let st = self.stream.get_or_insert_with(|| StreamState {
            writer: StreamWriter::new(
                ctx.info.endpoint,
                ctx.answer_model(),
                ctx.created(),
                include_usage,
            ),
            id_base: None,
            tool_calls: 0,
            finish: None,
        });
        if st.id_base.is_none() {
            if let Some(id) = &r.response_id {
                st.writer.set_id(id);
                st.id_base = Some(id.clone());
            }
        }
        if r.candidates.is_empty() && r.prompt_feedback.is_some_and(|f| f.block_reason.is_some()) {
            st.finish = Some("content_filter");
        }
        // n > 1 is refused for streams: one candidate.
        if let Some(candidate) = r.candidates.first() {
            for part in candidate.content.iter().flat_map(|c| &c.parts) {
                if let Some(text) = &part.text {
                    if part.thought == Some(true) {
                        st.writer.reasoning(out, text);
                    } else {
                        st.writer.text(out, text);
                    }
                }
                if let Some(call) = &part.function_call {
                    let base = st
                        .id_base
                        .clone()
                        .unwrap_or_else(|| format!("{:x}", ctx.now_ms));
                    let id = tool_call_id(&base, st.tool_calls, part.thought_signature.as_deref());
                    // Gemini sends each call whole: its start and all its arguments at once.
                    st.writer
                        .tool_call_start(out, st.tool_calls, &id, &call.name);
                    st.writer
                        .tool_call_arguments(out, st.tool_calls, &arguments(call));
                    st.tool_calls += 1;
                }
            }
            if let Some(reason) = &candidate.finish_reason {
                st.finish = Some(finish_reason(reason));
            }
        }
        if let Some(u) = &r.usage_metadata {
            st.writer.usage(usage(u));
        }
        Ok(())
    }

    fn stream_end(&mut self, ctx: &Ctx, out: &mut Vec<u8>) -> Result<(), ApiError> {
        let Some(st) = self.stream.as_mut() else {
            return Err(stream_cut(ctx));
        };
        let Some(reason) = st.finish else {
            return Err(stream_cut(ctx));
        };
        // Gemini says STOP after a function call; OpenAI says tool_calls.
        let reason = if st.tool_calls > 0 && reason == "stop" {
            "tool_calls"
        } else {
            reason
        };
        st.writer.finish(reason);
        st.writer.end(out);
        Ok(())
    }

    fn stream_usage(&self) -> Option<Usage> {
        self.stream.as_ref().and_then(|s| s.writer.reported_usage())
    }

    fn error(&self, ctx: &Ctx, status: u16, headers: &[(String, String)], body: &[u8]) -> ApiError {
        let detail = google_error(body);
        let message = detail
            .as_ref()
            .and_then(|e| e.message.clone())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| error_message(status, body, &[]));
        // AI Studio answers a bad key with 400 INVALID_ARGUMENT; LiteLLM makes it an
        // AuthenticationError.
        let bad_key = status == 400
            && (message.contains("API key not valid")
                || detail
                    .as_ref()
                    .is_some_and(|e| e.has_reason("API_KEY_INVALID")));
        if bad_key {
            return ApiError::unauthorized(format!(
                "litellm.AuthenticationError: {} returned {status}: {message}",
                ctx.provider()
            ));
        }
        let mut err = provider_error(ctx, status, headers, &message);
        if err.retry_after_s.is_none() {
            err.retry_after_s = detail.as_ref().and_then(GoogleError::retry_delay_s);
        }
        err
    }
}

impl Gemini {
    fn embeddings_request(
        &mut self,
        ctx: &Ctx,
        body: &[u8],
    ) -> Result<(&'static str, Vec<u8>), ApiError> {
        let req = EmbeddingsRequest::parse(body)?;
        let texts = req.texts(ctx.provider())?;
        self.embed_base64 = req.base64();
        self.embed_chars = texts.iter().map(|t| t.chars().count() as u64).sum();
        let extra_str = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| req.extra.get(*n).and_then(Value::as_str))
        };
        let task_type = extra_str(&["task_type", "taskType"]);
        let title = extra_str(&["title"]);
        let body = if ctx.deployment.provider == Provider::VertexAi {
            let instances: Vec<VertexInstance> = texts
                .iter()
                .map(|content| VertexInstance {
                    content,
                    task_type,
                    title,
                })
                .collect();
            serde_json::to_vec(&PredictRequest {
                instances,
                parameters: req.dimensions.map(|d| PredictParameters {
                    output_dimensionality: d,
                }),
            })
        } else {
            let model = model_resource(&ctx.deployment.model);
            let requests: Vec<EmbedContentRequest> = texts
                .iter()
                .map(|text| EmbedContentRequest {
                    model: &model,
                    content: GContent {
                        role: None,
                        parts: vec![GPart::text(text)],
                    },
                    output_dimensionality: req.dimensions,
                    task_type,
                    title,
                })
                .collect();
            serde_json::to_vec(&BatchEmbedRequest { requests })
        };
        let body =
            body.map_err(|e| ApiError::internal(format!("cannot write the request: {e}")))?;
        let method = if ctx.deployment.provider == Provider::VertexAi {
            "predict"
        } else {
            "batchEmbedContents"
        };
        Ok((method, body))
    }

    fn embeddings_answer(&self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let (vectors, tokens) = if ctx.deployment.provider == Provider::VertexAi {
            let r: PredictResponse =
                serde_json::from_slice(body).map_err(|e| bad_answer(ctx, e))?;
            let tokens = r
                .predictions
                .iter()
                .filter_map(|p| p.embeddings.statistics.as_ref())
                .map(|s| s.token_count.max(0.0).round() as u64)
                .sum();
            let vectors = r
                .predictions
                .into_iter()
                .map(|p| p.embeddings.values)
                .collect();
            (vectors, tokens)
        } else {
            let r: BatchEmbedResponse =
                serde_json::from_slice(body).map_err(|e| bad_answer(ctx, e))?;
            let tokens = r
                .usage_metadata
                .map(|u| u.prompt_token_count)
                .filter(|t| *t > 0)
                .unwrap_or(self.embed_chars.div_ceil(4));
            let vectors: Vec<Vec<f32>> = r.embeddings.into_iter().map(|e| e.values).collect();
            (vectors, tokens)
        };
        Ok(embeddings_response(
            &vectors,
            ctx.answer_model(),
            tokens,
            self.embed_base64,
        ))
    }
}

/// `:path` of a model method (`generateContent`, `predict`, ...).
fn path(ctx: &Ctx, method: &str, stream: bool) -> Result<String, ApiError> {
    let d = ctx.deployment;
    let model = &d.model;
    let mut path = if d.provider == Provider::VertexAi {
        let project = d.params.project.as_deref().ok_or_else(|| {
            ApiError::internal(format!(
                "Deployment {} (vertex_ai/{model}) has no Google Cloud project: set vertex_project in its litellm_params, or VERTEXAI_PROJECT.",
                d.id
            ))
        })?;
        let location = d.params.location.as_deref().unwrap_or("us-central1");
        // A tuned model deployed to an endpoint is named by the endpoint's number.
        let resource = if !model.is_empty() && model.bytes().all(|b| b.is_ascii_digit()) {
            format!("endpoints/{model}")
        } else {
            format!("publishers/google/models/{model}")
        };
        format!(
            "{}/v1/projects/{project}/locations/{location}/{resource}:{method}",
            d.base_path
        )
    } else {
        format!("{}/v1beta/{}:{method}", d.base_path, model_resource(model))
    };
    if stream {
        path.push_str("?alt=sse");
    }
    Ok(path)
}

/// AI Studio's name of a model: `models/{model}`, or the name as given when it already has
/// a collection (`tunedModels/...`).
fn model_resource(model: &str) -> String {
    if model.contains('/') {
        model.to_string()
    } else {
        format!("models/{model}")
    }
}

// ---------------------------------------------------------------------------------------
// The request

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateContentRequest {
    contents: Vec<GContent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<GContent>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<GTool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<GenerationConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    safety_settings: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_content: Option<Value>,
    /// Vertex AI only: billing labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<Value>,
}

/// A turn (`Content`): its role (`user` or `model`) and parts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    #[serde(default)]
    parts: Vec<GPart>,
}

/// One part of a turn: exactly one of text, inline data, file data, function call or
/// function response (with `thought` and `thoughtSignature` beside).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GPart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thought: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inline_data: Option<Blob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file_data: Option<FileData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    function_call: Option<GFunctionCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    function_response: Option<GFunctionResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thought_signature: Option<String>,
}

impl GPart {
    fn text(text: &str) -> GPart {
        GPart {
            text: Some(text.to_string()),
            ..GPart::default()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Blob {
    mime_type: String,
    data: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileData {
    mime_type: String,
    file_uri: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GFunctionCall {
    name: String,
    #[serde(default)]
    args: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GFunctionResponse {
    name: String,
    response: Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GTool {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    function_declarations: Vec<FunctionDeclaration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    google_search: Option<Value>,
}

#[derive(Serialize)]
struct FunctionDeclaration {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig {
    function_calling_config: FunctionCallingConfig,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingConfig {
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_function_names: Option<Vec<String>>,
}

#[derive(Serialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidate_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<ThinkingConfig>,
}

#[derive(Serialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    include_thoughts: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_budget: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_level: Option<&'static str>,
}

/// How a model takes `reasoning_effort`: Gemini 2.5 by a token budget, Gemini 3 and later
/// by a level; earlier models and Gemma do not think.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Thinking {
    None,
    Budget,
    Level,
}

fn thinking_kind(model: &str) -> Thinking {
    let m = model.to_ascii_lowercase();
    if m.contains("gemma") {
        return Thinking::None;
    }
    let Some(rest) = m
        .find("gemini-")
        .and_then(|at| m.get(at + "gemini-".len()..))
    else {
        return Thinking::Budget;
    };
    let version: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    match major {
        // `gemini-flash-latest` and other names without a version: the current models.
        0 => Thinking::Budget,
        1 => Thinking::None,
        2 if version.starts_with("2.5") => Thinking::Budget,
        2 => Thinking::None,
        _ => Thinking::Level,
    }
}

/// `thinkingConfig` for `reasoning_effort`, with LiteLLM's budgets and levels.
fn reasoning_config(effort: &str, model: &str, kind: Thinking) -> Result<ThinkingConfig, ApiError> {
    let m = model.to_ascii_lowercase();
    let budget = |b: i64, include: bool| ThinkingConfig {
        include_thoughts: Some(include),
        thinking_budget: Some(b),
        thinking_level: None,
    };
    let level = |l: &'static str, include: bool| ThinkingConfig {
        include_thoughts: Some(include),
        thinking_budget: None,
        thinking_level: Some(l),
    };
    let flash3 = m.contains("gemini-3-flash") || m.contains("gemini-3.1-flash");
    let config = match (kind, effort) {
        (Thinking::Level, "minimal") => level(if flash3 { "minimal" } else { "low" }, true),
        (Thinking::Level, "low") => level("low", true),
        (Thinking::Level, "medium") => {
            let medium = flash3 || m.contains("gemini-3.1-pro");
            level(if medium { "medium" } else { "high" }, true)
        }
        (Thinking::Level, "high") => level("high", true),
        // Gemini 3 cannot stop thinking: its least, without the thoughts.
        (Thinking::Level, "none" | "disable") => {
            level(if flash3 { "minimal" } else { "low" }, false)
        }
        (_, "minimal") => {
            let b = if m.contains("gemini-2.5-flash-lite") {
                512
            } else if m.contains("gemini-2.5-pro") {
                128
            } else if m.contains("gemini-2.5-flash") {
                1
            } else {
                128
            };
            budget(b, true)
        }
        (_, "low") => budget(1024, true),
        (_, "medium") => budget(2048, true),
        (_, "high") => budget(4096, true),
        (_, "none" | "disable") => budget(0, false),
        (_, other) => {
            return Err(ApiError::bad_request(format!(
            "reasoning_effort must be one of minimal, low, medium, high or none, not \"{other}\"."
        ))
            .with_param("reasoning_effort"))
        }
    };
    Ok(config)
}

/// `thinkingConfig` for LiteLLM's Anthropic-style `thinking: {"type", "budget_tokens"}`.
fn thinking_config(thinking: &Value, kind: Thinking) -> ThinkingConfig {
    let enabled = thinking.get("type").and_then(Value::as_str) == Some("enabled");
    let budget = thinking.get("budget_tokens").and_then(Value::as_i64);
    let include = enabled && budget != Some(0);
    match kind {
        Thinking::Level => ThinkingConfig {
            include_thoughts: Some(include && budget.is_some()),
            ..ThinkingConfig::default()
        },
        _ => ThinkingConfig {
            include_thoughts: Some(include),
            thinking_budget: budget.filter(|_| enabled),
            thinking_level: None,
        },
    }
}

/// The generateContent body for a chat request.
fn chat_request(ctx: &Ctx, req: &ChatRequest) -> Result<Vec<u8>, ApiError> {
    let model = &ctx.deployment.model;
    let kind = thinking_kind(model);

    // OpenAI parameters Gemini has no place for.
    if req.logit_bias.is_some() {
        ctx.unsupported("logit_bias")?;
    }
    // Gemini's logprobs have no place in the answers Switchyard writes.
    if req.logprobs == Some(true) {
        ctx.unsupported("logprobs")?;
    }
    if req.top_logprobs.is_some() {
        ctx.unsupported("top_logprobs")?;
    }
    for name in ["prediction", "audio", "functions", "function_call"] {
        if req.extra.get(name).is_some_and(|v| !v.is_null()) {
            ctx.unsupported(name)?;
        }
    }
    if let Some(modalities) = req.extra.get("modalities").and_then(Value::as_array) {
        if modalities.iter().any(|m| m != "text") {
            ctx.unsupported("modalities")?;
        }
    }
    let n = req.n.unwrap_or(1);
    let mut candidate_count = (n > 1).then_some(n);
    if n > 1 && req.is_stream() {
        // A stream carries one choice here.
        ctx.unsupported("n")?;
        candidate_count = None;
    }
    let tools = req.tools.as_deref().unwrap_or_default();
    if req.parallel_tool_calls == Some(false) && tools.len() > 1 {
        // Gemini may call several functions at once; it cannot be told not to.
        ctx.unsupported("parallel_tool_calls")?;
    }
    // Gemini 3 takes no penalties (LiteLLM refuses them).
    let mut presence_penalty = req.presence_penalty;
    let mut frequency_penalty = req.frequency_penalty;
    if kind == Thinking::Level {
        if presence_penalty.take().is_some() {
            ctx.unsupported("presence_penalty")?;
        }
        if frequency_penalty.take().is_some() {
            ctx.unsupported("frequency_penalty")?;
        }
    }

    let mut thinking = None;
    if let Some(effort) = &req.reasoning_effort {
        if kind == Thinking::None {
            ctx.unsupported("reasoning_effort")?;
        } else {
            thinking = Some(reasoning_config(effort, model, kind)?);
        }
    }
    if let Some(t) = req.thinking.as_ref().filter(|t| !t.is_null()) {
        if kind == Thinking::None {
            ctx.unsupported("thinking")?;
        } else {
            thinking = Some(thinking_config(t, kind));
        }
    }

    let (response_mime_type, response_schema) = match &req.response_format {
        None => (None, None),
        Some(f) => match f.kind.as_str() {
            "text" => (Some("text/plain"), None),
            "json_object" => (Some("application/json"), None),
            "json_schema" => {
                let schema = match f.json_schema.as_ref().and_then(|s| s.schema.as_ref()) {
                    Some(s) => Some(gemini_schema(s).map_err(|why| {
                        ApiError::bad_request(format!(
                            "response_format.json_schema.schema cannot be sent to {}: {why}",
                            ctx.provider()
                        ))
                        .with_param("response_format")
                    })?),
                    None => None,
                };
                (Some("application/json"), schema)
            }
            other => {
                return Err(ApiError::bad_request(format!(
                "response_format.type must be text, json_object or json_schema, not \"{other}\"."
            ))
                .with_param("response_format"))
            }
        },
    };

    let generation_config = GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: ["top_k", "topK"]
            .iter()
            .find_map(|k| req.extra.get(*k).filter(|v| v.is_number()).cloned()),
        candidate_count,
        max_output_tokens: req.max_output_tokens(),
        stop_sequences: req.stop.as_ref().map(|s| s.to_vec()),
        presence_penalty,
        frequency_penalty,
        seed: req.seed,
        response_mime_type,
        response_schema,
        thinking_config: thinking,
    };

    let (system_instruction, contents) = contents(ctx, &req.messages, kind)?;
    if contents.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{} needs at least one user or assistant message besides the system messages.",
            ctx.provider()
        ))
        .with_param("messages"));
    }

    let mut g_tools = Vec::new();
    if !tools.is_empty() {
        let mut declarations = Vec::with_capacity(tools.len());
        for tool in tools {
            let f = &tool.function;
            let parameters = match &f.parameters {
                Some(p) => gemini_schema(p).map_err(|why| {
                    ApiError::bad_request(format!(
                        "The parameters of tool {} cannot be sent to {}: {why}",
                        f.name,
                        ctx.provider()
                    ))
                    .with_param("tools")
                })?,
                None => Value::Null,
            };
            declarations.push(FunctionDeclaration {
                name: f.name.clone(),
                description: f.description.clone(),
                // Gemini refuses an object schema without properties: a function without
                // parameters says so by having none.
                parameters: Some(parameters).filter(has_parameters),
            });
        }
        g_tools.push(GTool {
            function_declarations: declarations,
            google_search: None,
        });
    }
    if req
        .extra
        .get("web_search_options")
        .is_some_and(Value::is_object)
    {
        // LiteLLM's mapping: Google Search grounding (it takes no options).
        g_tools.push(GTool {
            function_declarations: Vec::new(),
            google_search: Some(Value::Object(Map::new())),
        });
    }
    let tool_config = match &req.tool_choice {
        Some(choice) if !tools.is_empty() => Some(tool_config(choice)?),
        _ => None,
    };

    let extra = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| req.extra.get(*n).filter(|v| !v.is_null()).cloned())
    };
    let body = GenerateContentRequest {
        contents,
        system_instruction,
        tools: g_tools,
        tool_config,
        generation_config: Some(generation_config).filter(|g| *g != GenerationConfig::default()),
        safety_settings: extra(&["safety_settings", "safetySettings"]),
        cached_content: extra(&["cached_content", "cachedContent"]),
        labels: if ctx.deployment.provider == Provider::VertexAi {
            extra(&["labels"])
        } else {
            None
        },
    };
    serde_json::to_vec(&body)
        .map_err(|e| ApiError::internal(format!("cannot write the request: {e}")))
}

/// Whether a cleaned parameters schema declares any parameter.
fn has_parameters(schema: &Value) -> bool {
    match schema {
        Value::Null => false,
        Value::Object(o) => o
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty()),
        _ => true,
    }
}

fn tool_config(choice: &ToolChoice) -> Result<ToolConfig, ApiError> {
    let (mode, names) = match choice {
        ToolChoice::Mode(m) => match m.as_str() {
            "auto" => ("AUTO", None),
            "none" => ("NONE", None),
            "required" => ("ANY", None),
            other => {
                return Err(ApiError::bad_request(format!(
                    "tool_choice must be auto, none, required or a function, not \"{other}\"."
                ))
                .with_param("tool_choice"))
            }
        },
        ToolChoice::Named { function, .. } => ("ANY", Some(vec![function.name.clone()])),
    };
    Ok(ToolConfig {
        function_calling_config: FunctionCallingConfig {
            mode,
            allowed_function_names: names,
        },
    })
}

/// The system instruction and the turns of a conversation.
fn contents(
    ctx: &Ctx,
    messages: &[Message],
    kind: Thinking,
) -> Result<(Option<GContent>, Vec<GContent>), ApiError> {
    let mut system = Vec::new();
    let mut turns: Vec<GContent> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        match m.role {
            Role::System | Role::Developer => {
                let text = m.content.as_ref().map(Content::text).unwrap_or_default();
                if !text.is_empty() {
                    system.push(GPart::text(&text));
                }
            }
            Role::User => {
                let parts = match &m.content {
                    Some(c) => user_parts(ctx, c)?,
                    None => Vec::new(),
                };
                push_turn(&mut turns, "user", parts);
            }
            Role::Assistant => push_turn(&mut turns, "model", model_parts(m)?),
            Role::Tool | Role::Function => {
                let part = function_response(messages.get(..i).unwrap_or_default(), m)?;
                push_turn(&mut turns, "user", vec![part]);
            }
        }
    }
    if kind == Thinking::Level {
        for turn in turns
            .iter_mut()
            .filter(|t| t.role.as_deref() == Some("model"))
        {
            if let Some(first) = turn.parts.iter_mut().find(|p| p.function_call.is_some()) {
                if first.thought_signature.is_none() {
                    first.thought_signature = Some(DUMMY_SIGNATURE.to_string());
                }
            }
        }
    }
    let system = (!system.is_empty()).then_some(GContent {
        role: None,
        parts: system,
    });
    Ok((system, turns))
}

/// Adds parts to the conversation: to the last turn when it has the same role (Gemini wants
/// turns that alternate), else as a new turn.
fn push_turn(turns: &mut Vec<GContent>, role: &str, parts: Vec<GPart>) {
    if parts.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role.as_deref() == Some(role) => last.parts.extend(parts),
        _ => turns.push(GContent {
            role: Some(role.to_string()),
            parts,
        }),
    }
}

fn user_parts(ctx: &Ctx, content: &Content) -> Result<Vec<GPart>, ApiError> {
    let parts = match content {
        Content::Text(t) if t.is_empty() => return Ok(Vec::new()),
        Content::Text(t) => return Ok(vec![GPart::text(t)]),
        Content::Parts(parts) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        match p.kind.as_str() {
            "text" => {
                if let Some(t) = p.text.as_deref().filter(|t| !t.is_empty()) {
                    out.push(GPart::text(t));
                }
            }
            "image_url" => {
                let url = p.image_url.as_ref().map(|u| u.url()).unwrap_or_default();
                out.push(media_part(ctx, url, None, "image_url")?);
            }
            "input_audio" => out.push(audio_part(ctx, p)?),
            "file" => out.push(file_part(ctx, p)?),
            other => {
                return Err(ApiError::bad_request(format!(
                    "{} cannot take message content of type \"{other}\": send text, image_url, input_audio or file parts.",
                    ctx.provider()
                ))
                .with_param("messages"))
            }
        }
    }
    Ok(out)
}

/// A data URL as inline data; an `http(s)://` or `gs://` URL as file data, its media type
/// `mime`, else guessed from the extension (`fallback` when it says nothing).
fn media_part(ctx: &Ctx, url: &str, mime: Option<&str>, param: &str) -> Result<GPart, ApiError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let Some((meta, data)) = rest.split_once(',') else {
            return Err(bad_media(ctx, param));
        };
        let media = meta
            .strip_suffix(";base64")
            .ok_or_else(|| bad_media(ctx, param))?;
        // `data:image/png;charset=x;base64,...`: the type is the first piece.
        let media = media.split(';').next().unwrap_or(media);
        return Ok(GPart {
            inline_data: Some(Blob {
                mime_type: mime.unwrap_or(media).to_string(),
                data: data.to_string(),
            }),
            ..GPart::default()
        });
    }
    if ["https://", "http://", "gs://"]
        .iter()
        .any(|s| url.starts_with(s))
    {
        let fallback = if param == "image_url" {
            "image/jpeg"
        } else {
            "application/octet-stream"
        };
        return Ok(GPart {
            file_data: Some(FileData {
                mime_type: mime
                    .or_else(|| mime_from_extension(url))
                    .unwrap_or(fallback)
                    .to_string(),
                file_uri: url.to_string(),
            }),
            ..GPart::default()
        });
    }
    Err(bad_media(ctx, param))
}

fn bad_media(ctx: &Ctx, param: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{param} must be a base64 data: URL, or an https:// or gs:// URL {} can read.",
        ctx.provider()
    ))
    .with_param("messages")
}

/// The media type a URL's extension names (Gemini's documented image, audio, video and
/// document types).
fn mime_from_extension(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "ogg" => "audio/ogg",
        "aac" => "audio/aac",
        "mp4" => "video/mp4",
        "mov" => "video/mov",
        "mpeg" | "mpg" => "video/mpeg",
        "webm" => "video/webm",
        "avi" => "video/avi",
        "wmv" => "video/wmv",
        "flv" => "video/flv",
        _ => return None,
    })
}

/// `{"type": "input_audio", "input_audio": {"data": <base64>, "format": "wav"}}`.
fn audio_part(ctx: &Ctx, p: &Part) -> Result<GPart, ApiError> {
    let audio = p.extra.get("input_audio");
    let data = audio.and_then(|a| a.get("data")).and_then(Value::as_str);
    let format = audio
        .and_then(|a| a.get("format"))
        .and_then(Value::as_str)
        .unwrap_or("wav");
    let Some(data) = data else {
        return Err(ApiError::bad_request(format!(
            "input_audio needs base64 data for {}.",
            ctx.provider()
        ))
        .with_param("messages"));
    };
    Ok(GPart {
        inline_data: Some(Blob {
            mime_type: format!("audio/{format}"),
            data: data.to_string(),
        }),
        ..GPart::default()
    })
}

/// `{"type": "file", "file": {"file_data": <data URL>} | {"file_id": <URI>, "format"}}`.
fn file_part(ctx: &Ctx, p: &Part) -> Result<GPart, ApiError> {
    let file = p.extra.get("file");
    let field = |name: &str| file.and_then(|f| f.get(name)).and_then(Value::as_str);
    let format = field("format");
    match (field("file_data"), field("file_id")) {
        (Some(data), _) => media_part(ctx, data, format, "file.file_data"),
        (None, Some(uri)) => media_part(ctx, uri, format, "file.file_id"),
        (None, None) => Err(ApiError::bad_request(
            "A file part needs file.file_data (a data: URL) or file.file_id (a URI).",
        )
        .with_param("messages")),
    }
}

/// An assistant message as model parts: its text, then its tool calls as function calls
/// (with the thought signature their id carries).
fn model_parts(m: &Message) -> Result<Vec<GPart>, ApiError> {
    let mut parts = Vec::new();
    let text = m.content.as_ref().map(Content::text).unwrap_or_default();
    if !text.is_empty() {
        parts.push(GPart::text(&text));
    }
    for call in m.tool_calls.iter().flatten() {
        let (_, signature) = split_signature(&call.id);
        parts.push(GPart {
            function_call: Some(GFunctionCall {
                name: call.function.name.clone(),
                args: Some(call_args(&call.function.name, &call.function.arguments)?),
            }),
            thought_signature: signature.map(str::to_string),
            ..GPart::default()
        });
    }
    // The legacy `function_call` of an assistant message.
    if let Some(call) = m
        .extra
        .get("function_call")
        .and_then(|v| serde_json::from_value::<FunctionCall>(v.clone()).ok())
    {
        parts.push(GPart {
            function_call: Some(GFunctionCall {
                args: Some(call_args(&call.name, &call.arguments)?),
                name: call.name,
            }),
            ..GPart::default()
        });
    }
    Ok(parts)
}

/// A tool call's arguments as Gemini's `args` object.
fn call_args(name: &str, arguments: &str) -> Result<Value, ApiError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(ApiError::bad_request(format!(
            "The arguments of the assistant's call to {name} are not a JSON object; send the tool call as the model wrote it."
        ))
        .with_param("messages")),
    }
}

/// A tool result as a `functionResponse`: the function's name from the assistant's call
/// with the same id, the result as an object (a JSON object as it is, else
/// `{"content": <text>}`).
fn function_response(earlier: &[Message], m: &Message) -> Result<GPart, ApiError> {
    let id = m.tool_call_id.as_deref();
    let name = earlier
        .iter()
        .rev()
        .filter(|p| p.role == Role::Assistant)
        .flat_map(|p| p.tool_calls.iter().flatten())
        .find(|c| id.is_some_and(|id| c.id == id))
        .map(|c| c.function.name.clone())
        .or_else(|| m.name.clone())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "The tool message with tool_call_id {} answers no tool call of an earlier assistant message; send the assistant message with its tool_calls first.",
                id.unwrap_or("(none)")
            ))
            .with_param("messages")
        })?;
    let text = m.content.as_ref().map(Content::text).unwrap_or_default();
    let response = match serde_json::from_str::<Value>(text.trim()) {
        Ok(v @ Value::Object(_)) => v,
        _ => serde_json::json!({ "content": text }),
    };
    Ok(GPart {
        function_response: Some(GFunctionResponse { name, response }),
        ..GPart::default()
    })
}

/// A tool call id and the thought signature it carries, if any.
fn split_signature(id: &str) -> (&str, Option<&str>) {
    match id.split_once(SIGNATURE_SEPARATOR) {
        Some((base, signature)) if !signature.is_empty() => (base, Some(signature)),
        _ => (id, None),
    }
}

/// The id of an answer's `n`th tool call, with the call's thought signature.
fn tool_call_id(base: &str, n: u32, signature: Option<&str>) -> String {
    match signature {
        Some(s) => format!("call_{base}_{n}{SIGNATURE_SEPARATOR}{s}"),
        None => format!("call_{base}_{n}"),
    }
}

// ---------------------------------------------------------------------------------------
// Schemas

/// A JSON schema as Gemini's `Schema` (an OpenAPI subset) takes it, as LiteLLM makes it:
/// `$ref`s inlined from `$defs`, `null` alternatives and `["x", "null"]` types as
/// `nullable`, `oneOf` as `anyOf`, a string `const` as a one-value `enum`, formats Gemini
/// does not know dropped, and every keyword it refuses (`additionalProperties`, `$schema`,
/// `title`, `strict`, ...) left out.
fn gemini_schema(schema: &Value) -> Result<Value, String> {
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .and_then(Value::as_object);
    clean_schema(schema, defs, 0)
}

/// Keywords of Gemini's `Schema` kept as they are.
const SCHEMA_KEPT: &[&str] = &[
    "description",
    "enum",
    "required",
    "nullable",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minProperties",
    "maxProperties",
    "example",
    "default",
    "propertyOrdering",
];

fn clean_schema(
    schema: &Value,
    defs: Option<&Map<String, Value>>,
    depth: usize,
) -> Result<Value, String> {
    if depth > MAX_SCHEMA_DEPTH {
        return Err(format!(
            "it nests deeper than {MAX_SCHEMA_DEPTH} levels (or a $ref refers to itself)"
        ));
    }
    let Some(obj) = schema.as_object() else {
        return Ok(schema.clone());
    };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        let target = defs
            .and_then(|d| d.get(name))
            .ok_or_else(|| format!("$ref {r} names no definition in $defs"))?;
        let mut resolved = clean_schema(target, defs, depth + 1)?;
        if let (Value::Object(out), Some(d)) = (&mut resolved, obj.get("description")) {
            out.insert("description".into(), d.clone());
        }
        return Ok(resolved);
    }
    let mut out = Map::new();
    let mut nullable = false;
    let mut single = None;
    for (key, value) in obj {
        match key.as_str() {
            "type" => match value {
                Value::Array(types) => {
                    nullable |= types.iter().any(|t| t == "null");
                    if let Some(t) = types.iter().find(|t| *t != "null") {
                        out.insert("type".into(), t.clone());
                    }
                }
                Value::String(t) if t == "null" => nullable = true,
                t => {
                    out.insert("type".into(), t.clone());
                }
            },
            "properties" => {
                if let Some(props) = value.as_object() {
                    let mut cleaned = Map::new();
                    for (name, prop) in props {
                        cleaned.insert(name.clone(), clean_schema(prop, defs, depth + 1)?);
                    }
                    out.insert("properties".into(), Value::Object(cleaned));
                }
            }
            "items" => {
                out.insert("items".into(), clean_schema(value, defs, depth + 1)?);
            }
            "anyOf" | "oneOf" => {
                let mut kept = Vec::new();
                for option in value.as_array().into_iter().flatten() {
                    if option == &serde_json::json!({"type": "null"}) {
                        nullable = true;
                    } else {
                        kept.push(clean_schema(option, defs, depth + 1)?);
                    }
                }
                if kept.len() == 1 {
                    single = kept.pop();
                } else if !kept.is_empty() {
                    out.insert("anyOf".into(), Value::Array(kept));
                }
            }
            "const" if value.is_string() => {
                out.insert("enum".into(), Value::Array(vec![value.clone()]));
            }
            k if SCHEMA_KEPT.contains(&k) => {
                out.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
    // `anyOf: [X, null]` (an optional X): X itself, nullable.
    if let Some(Value::Object(only)) = single {
        for (k, v) in only {
            out.entry(k).or_insert(v);
        }
    }
    if let Some(format) = obj.get("format").and_then(Value::as_str) {
        let known = match out
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
        {
            Some(t) if t == "string" => ["enum", "date-time"].contains(&format),
            Some(t) if t == "number" => ["float", "double"].contains(&format),
            Some(t) if t == "integer" => ["int32", "int64"].contains(&format),
            _ => false,
        };
        if known {
            out.insert("format".into(), Value::String(format.into()));
        }
    }
    if !out.contains_key("type") {
        if out.contains_key("properties") {
            out.insert("type".into(), "object".into());
        } else if obj.get("const").is_some_and(Value::is_string) {
            out.insert("type".into(), "string".into());
        }
    }
    if nullable {
        out.insert("nullable".into(), Value::Bool(true));
    }
    Ok(Value::Object(out))
}

// ---------------------------------------------------------------------------------------
// The answer

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct GenerateContentResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    response_id: Option<String>,
    /// An error inside a stream (Vertex AI sends them with status 200).
    #[serde(default)]
    error: Option<GoogleError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<GContent>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    total_token_count: u64,
    #[serde(default)]
    cached_content_token_count: Option<u64>,
    #[serde(default)]
    thoughts_token_count: Option<u64>,
}

/// OpenAI's usage, as LiteLLM reports Gemini's: thoughts count as completion tokens (and as
/// reasoning tokens), cached content as cached prompt tokens.
fn usage(m: &UsageMetadata) -> Usage {
    let prompt = m.prompt_token_count;
    let mut completion = m.candidates_token_count;
    let thoughts = m.thoughts_token_count.unwrap_or(0);
    // candidatesTokenCount leaves the thoughts out unless prompt + candidates == total.
    if thoughts > 0 && prompt + completion != m.total_token_count {
        completion += thoughts;
    }
    let total = if m.total_token_count > 0 {
        m.total_token_count
    } else {
        prompt + completion
    };
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: total,
        ..Usage::default()
    }
    .with_cached(m.cached_content_token_count)
    .with_reasoning(m.thoughts_token_count)
}

/// OpenAI's finish_reason for Gemini's (LiteLLM's table; unknown reasons are `stop`).
fn finish_reason(reason: &str) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY"
        | "RECITATION"
        | "LANGUAGE"
        | "OTHER"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION"
        | "IMAGE_OTHER"
        | "NO_IMAGE" => "content_filter",
        _ => "stop",
    }
}

/// A candidate stopped by a safety filter: LiteLLM answers it without content.
fn flagged(reason: &str) -> bool {
    matches!(
        reason,
        "SAFETY"
            | "RECITATION"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT"
    )
}

/// A function call's arguments as JSON text.
fn arguments(call: &GFunctionCall) -> String {
    match &call.args {
        Some(args) if !args.is_null() => args.to_string(),
        _ => "{}".to_string(),
    }
}

/// One candidate as a choice: text, thoughts as reasoning, function calls as tool calls
/// (numbered across the answer by `calls`).
fn candidate_answer(c: &Candidate, id_base: &str, calls: &mut u32) -> Answer {
    let raw = c.finish_reason.as_deref().unwrap_or("STOP");
    if flagged(raw) {
        return Answer {
            finish_reason: "content_filter".into(),
            ..Answer::default()
        };
    }
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for part in c.content.iter().flat_map(|c| &c.parts) {
        if let Some(t) = &part.text {
            if part.thought == Some(true) {
                reasoning.push_str(t);
            } else {
                text.push_str(t);
            }
        }
        if let Some(call) = &part.function_call {
            tool_calls.push(ToolCall {
                id: tool_call_id(id_base, *calls, part.thought_signature.as_deref()),
                kind: "function".into(),
                function: FunctionCall {
                    name: call.name.clone(),
                    arguments: arguments(call),
                },
            });
            *calls += 1;
        }
    }
    let finish_reason = if tool_calls.is_empty() {
        finish_reason(raw)
    } else {
        "tool_calls"
    };
    Answer {
        content: (!text.is_empty()).then_some(text),
        reasoning: (!reasoning.is_empty()).then_some(reasoning),
        tool_calls,
        finish_reason: finish_reason.into(),
        ..Answer::default()
    }
}

/// The OpenAI answer with one choice per candidate (`n`).
fn choices(ctx: &Ctx, answers: &[Answer]) -> Vec<u8> {
    let endpoint = ctx.info.endpoint;
    let write = |a: &Answer| a.to_openai(endpoint, ctx.answer_model(), ctx.created());
    let Some((first, rest)) = answers.split_first() else {
        return Vec::new();
    };
    let first = write(first);
    if rest.is_empty() {
        return first;
    }
    let Ok(mut body) = serde_json::from_slice::<Value>(&first) else {
        return first;
    };
    for (i, a) in rest.iter().enumerate() {
        if let Ok(mut other) = serde_json::from_slice::<Value>(&write(a)) {
            let mut choice = other["choices"][0].take();
            choice["index"] = Value::from(i + 1);
            if let Some(list) = body["choices"].as_array_mut() {
                list.push(choice);
            }
        }
    }
    serde_json::to_vec(&body).unwrap_or(first)
}

// ---------------------------------------------------------------------------------------
// Errors

/// Google's error: `{"error": {"code", "message", "status", "details": [...]}}`.
#[derive(Deserialize, Default)]
struct GoogleError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    details: Vec<Value>,
}

impl GoogleError {
    /// The wait a `google.rpc.RetryInfo` detail asks for (`"retryDelay": "17s"`), rounded up.
    fn retry_delay_s(&self) -> Option<u64> {
        self.details
            .iter()
            .filter(|d| {
                d.get("@type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"))
            })
            .find_map(|d| d.get("retryDelay").and_then(Value::as_str))
            .and_then(|s| s.trim().strip_suffix('s')?.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| s.ceil() as u64)
    }

    /// Whether a `google.rpc.ErrorInfo` detail gives this reason.
    fn has_reason(&self, reason: &str) -> bool {
        self.details
            .iter()
            .any(|d| d.get("reason").and_then(Value::as_str) == Some(reason))
    }
}

/// The error of an error body: an object, or (Vertex AI's streams) a list of them.
fn google_error(body: &[u8]) -> Option<GoogleError> {
    #[derive(Deserialize)]
    struct Wrapper {
        error: GoogleError,
    }
    if let Ok(w) = serde_json::from_slice::<Wrapper>(body) {
        return Some(w.error);
    }
    serde_json::from_slice::<Vec<Wrapper>>(body)
        .ok()?
        .into_iter()
        .next()
        .map(|w| w.error)
}

/// An error the provider sent inside a stream (or a successful answer).
fn in_band_error(ctx: &Ctx, e: &GoogleError) -> ApiError {
    let status = e
        .code
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..=599).contains(c))
        .unwrap_or(500);
    let message = match (&e.status, &e.message) {
        (_, Some(m)) if !m.is_empty() => m.clone(),
        (Some(s), _) => s.clone(),
        _ => "an error without a message".to_string(),
    };
    let mut err = provider_error(ctx, status, &[], &message);
    err.retry_after_s = e.retry_delay_s();
    err
}

// ---------------------------------------------------------------------------------------
// Embeddings

#[derive(Serialize)]
struct BatchEmbedRequest<'a> {
    requests: Vec<EmbedContentRequest<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmbedContentRequest<'a> {
    model: &'a str,
    content: GContent,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimensionality: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchEmbedResponse {
    #[serde(default)]
    embeddings: Vec<Values>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
}

#[derive(Deserialize)]
struct Values {
    #[serde(default)]
    values: Vec<f32>,
}

#[derive(Serialize)]
struct PredictRequest<'a> {
    instances: Vec<VertexInstance<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<PredictParameters>,
}

/// Vertex AI's text embedding instance (its field names are snake_case).
#[derive(Serialize)]
struct VertexInstance<'a> {
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PredictParameters {
    output_dimensionality: u32,
}

#[derive(Deserialize)]
struct PredictResponse {
    #[serde(default)]
    predictions: Vec<Prediction>,
}

#[derive(Deserialize)]
struct Prediction {
    embeddings: VertexEmbedding,
}

#[derive(Deserialize)]
struct VertexEmbedding {
    #[serde(default)]
    values: Vec<f32>,
    #[serde(default)]
    statistics: Option<Statistics>,
}

#[derive(Deserialize)]
struct Statistics {
    #[serde(default)]
    token_count: f64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::providers::tests::{ctx, ctx_for};
    use crate::providers::Credentials;
    use serde_json::json;
    use switchyard_config::DeploymentConfig;

    fn gemini(model: &str) -> (DeploymentConfig, switchyard_config::RequestInfo) {
        let (mut d, i) = ctx_for(Provider::Gemini, Endpoint::ChatCompletions, "");
        d.model = model.into();
        (d, i)
    }

    fn vertex(model: &str) -> (DeploymentConfig, switchyard_config::RequestInfo) {
        let (mut d, i) = ctx_for(Provider::VertexAi, Endpoint::ChatCompletions, "");
        d.model = model.into();
        d.params.project = Some("proj".into());
        d.params.location = Some("europe-west4".into());
        (d, i)
    }

    /// The provider request for `body`, as JSON, and its path.
    fn send(
        d: &DeploymentConfig,
        i: &switchyard_config::RequestInfo,
        body: Value,
    ) -> (String, Value) {
        let key = Credentials::Key("k".into());
        let r = Gemini::default()
            .request(&ctx(d, i, &key), body.to_string().as_bytes())
            .unwrap();
        (r.path, serde_json::from_slice(&r.body).unwrap())
    }

    fn refused(d: &DeploymentConfig, i: &switchyard_config::RequestInfo, body: Value) -> ApiError {
        let key = Credentials::Key("k".into());
        Gemini::default()
            .request(&ctx(d, i, &key), body.to_string().as_bytes())
            .unwrap_err()
    }

    #[test]
    fn paths_and_credentials_for_ai_studio_and_vertex() {
        let (d, i) = gemini("gemini-2.5-flash");
        let key = Credentials::Key("g-key".into());
        let r = Gemini::default()
            .request(
                &ctx(&d, &i, &key),
                br#"{"messages":[{"role":"user","content":"hi"}],"stream":true}"#,
            )
            .unwrap();
        assert_eq!(
            r.path,
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            r.headers,
            [("x-goog-api-key".to_string(), "g-key".to_string())]
        );

        let (d, i) = vertex("gemini-2.5-pro");
        let token = Credentials::Token("ya29.t".into());
        let r = Gemini::default()
            .request(
                &ctx(&d, &i, &token),
                br#"{"messages":[{"role":"user","content":"hi"}]}"#,
            )
            .unwrap();
        assert_eq!(
            r.path,
            "/v1/projects/proj/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent"
        );
        assert_eq!(
            r.headers,
            [("authorization".to_string(), "Bearer ya29.t".to_string())]
        );

        let (d, i) = vertex("1234567890");
        let (path, _) = send(&d, &i, json!({"messages":[{"role":"user","content":"hi"}]}));
        assert_eq!(
            path,
            "/v1/projects/proj/locations/europe-west4/endpoints/1234567890:generateContent"
        );
        let (d, i) = gemini("tunedModels/my-tune");
        let (path, _) = send(&d, &i, json!({"messages":[{"role":"user","content":"hi"}]}));
        assert_eq!(path, "/v1beta/tunedModels/my-tune:generateContent");
    }

    #[test]
    fn turns_merge_and_tool_results_find_their_function() {
        let (d, i) = gemini("gemini-2.5-flash");
        let (_, body) = send(
            &d,
            &i,
            json!({"messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
                {"role": "user", "content": "Weather in Paris"},
                {"role": "user", "content": "and Rome?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_a__thought__c2ln", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
                {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
                {"role": "tool", "tool_call_id": "call_a__thought__c2ln", "content": "{\"temp\": 18}"},
                {"role": "user", "content": "Thanks"}
            ]}),
        );
        assert_eq!(
            body["systemInstruction"],
            json!({"parts": [{"text": "Be brief."}, {"text": "Use metric units."}]})
        );
        assert_eq!(
            body["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Weather in Paris"}, {"text": "and Rome?"}]},
                {"role": "model", "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"},
                    {"functionCall": {"name": "get_time", "args": {}}}]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_time", "response": {"content": "12:00"}}},
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 18}}},
                    {"text": "Thanks"}]}
            ])
        );
        // A result for a call nobody made is refused with what to do.
        let e = refused(
            &d,
            &i,
            json!({"messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nope", "content": "1"}]}),
        );
        assert_eq!((e.status, e.param.as_deref()), (400, Some("messages")));
        assert!(e.message.contains("nope"), "{}", e.message);
    }

    #[test]
    fn gemini_3_gets_a_signature_on_unsigned_calls() {
        let (d, i) = gemini("gemini-3-pro-preview");
        let (_, body) = send(
            &d,
            &i,
            json!({"messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                    {"id": "toolu_2", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "a"},
                {"role": "tool", "tool_call_id": "toolu_2", "content": "b"}
            ]}),
        );
        let parts = &body["contents"][1]["parts"];
        assert_eq!(parts[0]["thoughtSignature"], DUMMY_SIGNATURE);
        assert!(parts[1].get("thoughtSignature").is_none());
    }

    #[test]
    fn images_become_inline_or_file_data() {
        let (d, i) = gemini("gemini-2.5-flash");
        let (_, body) = send(
            &d,
            &i,
            json!({"messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": "https://example.com/cat.webp?size=2"},
                {"type": "image_url", "image_url": {"url": "gs://bucket/dog"}},
                {"type": "file", "file": {"file_id": "gs://bucket/report.pdf"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "mp3"}}
            ]}]}),
        );
        assert_eq!(
            body["contents"][0]["parts"],
            json!([
                {"text": "What is this?"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp?size=2"}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://bucket/dog"}},
                {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/report.pdf"}},
                {"inlineData": {"mimeType": "audio/mp3", "data": "UklGRg=="}}
            ])
        );
        let e = refused(
            &d,
            &i,
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]}),
        );
        assert_eq!(e.status, 400);
    }

    #[test]
    fn parameters_map_to_generation_config() {
        let (d, i) = gemini("gemini-2.5-flash");
        let (_, body) = send(
            &d,
            &i,
            json!({"messages": [{"role": "user", "content": "x"}],
                "temperature": 0.2, "top_p": 0.9, "top_k": 40, "max_completion_tokens": 100, "max_tokens": 5,
                "stop": "END", "presence_penalty": 0.1, "frequency_penalty": 0.3, "seed": 7, "n": 2,
                "reasoning_effort": "low", "user": "u-1", "metadata": {"x": 1},
                "safety_settings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
                "response_format": {"type": "json_schema", "json_schema": {"name": "r", "strict": true, "schema": {
                    "type": "object", "additionalProperties": false, "$schema": "x",
                    "properties": {"a": {"type": "string", "title": "A"}}, "required": ["a"]}}}}),
        );
        assert_eq!(
            body["generationConfig"],
            json!({"temperature": 0.2, "topP": 0.9, "topK": 40, "candidateCount": 2, "maxOutputTokens": 100,
                "stopSequences": ["END"], "presencePenalty": 0.1, "frequencyPenalty": 0.3, "seed": 7,
                "responseMimeType": "application/json",
                "responseSchema": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                "thinkingConfig": {"includeThoughts": true, "thinkingBudget": 1024}})
        );
        assert_eq!(body["safetySettings"][0]["threshold"], "BLOCK_NONE");
        assert!(body.get("user").is_none() && body.get("metadata").is_none());
    }

    #[test]
    fn thinking_by_budget_level_or_not_at_all() {
        let config = |model: &str, effort: &str| {
            let (d, i) = gemini(model);
            send(
                &d,
                &i,
                json!({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": effort}),
            )
            .1["generationConfig"]["thinkingConfig"]
                .clone()
        };
        assert_eq!(
            config("gemini-2.5-pro", "minimal"),
            json!({"includeThoughts": true, "thinkingBudget": 128})
        );
        assert_eq!(
            config("gemini-2.5-flash-lite", "minimal")["thinkingBudget"],
            512
        );
        assert_eq!(config("gemini-2.5-flash", "high")["thinkingBudget"], 4096);
        assert_eq!(
            config("gemini-2.5-flash", "none"),
            json!({"includeThoughts": false, "thinkingBudget": 0})
        );
        assert_eq!(
            config("gemini-3-pro-preview", "medium"),
            json!({"includeThoughts": true, "thinkingLevel": "high"})
        );
        assert_eq!(
            config("gemini-3-flash-preview", "minimal")["thinkingLevel"],
            "minimal"
        );
        let (d, i) = gemini("gemini-2.0-flash");
        let e = refused(
            &d,
            &i,
            json!({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "low"}),
        );
        assert_eq!(e.param.as_deref(), Some("reasoning_effort"));
        // Gemini 3 takes no penalties.
        let (d, i) = gemini("gemini-3-pro-preview");
        let e = refused(
            &d,
            &i,
            json!({"messages": [{"role": "user", "content": "x"}], "presence_penalty": 0.5}),
        );
        assert!(
            e.message.contains("UnsupportedParamsError"),
            "{}",
            e.message
        );
        let (mut d, i) = gemini("gemini-3-pro-preview");
        d.drop_params = true;
        let key = Credentials::Key("k".into());
        let mut c = ctx(&d, &i, &key);
        c.drop_params = true;
        let r = Gemini::default()
            .request(&c, br#"{"messages":[{"role":"user","content":"x"}],"presence_penalty":0.5,"logit_bias":{"1":2}}"#)
            .unwrap();
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(body.get("generationConfig").is_none(), "{body}");
    }

    #[test]
    fn tools_and_tool_choice() {
        let (d, i) = gemini("gemini-2.5-flash");
        let weather = json!({"type": "function", "function": {"name": "get_weather", "description": "d", "strict": true,
            "parameters": {"type": "object", "additionalProperties": false, "properties": {
                "city": {"type": "string", "format": "uri"},
                "when": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
                "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
                "place": {"$ref": "#/$defs/Place"}},
                "required": ["city"],
                "$defs": {"Place": {"type": "object", "properties": {"lat": {"type": "number", "format": "double"}}}}}}});
        let now = json!({"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}});
        let (_, body) = send(
            &d,
            &i,
            json!({"messages": [{"role": "user", "content": "x"}], "tools": [weather, now],
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}),
        );
        assert_eq!(
            body["tools"],
            json!([{"functionDeclarations": [
                {"name": "get_weather", "description": "d", "parameters": {"type": "object", "properties": {
                    "city": {"type": "string"},
                    "when": {"type": "string", "format": "date-time", "nullable": true},
                    "unit": {"type": "string", "enum": ["c", "f"], "nullable": true},
                    "place": {"type": "object", "properties": {"lat": {"type": "number", "format": "double"}}}},
                    "required": ["city"]}},
                {"name": "now"}]}])
        );
        assert_eq!(
            body["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
        );
        let (_, body) = send(
            &d,
            &i,
            json!({"messages": [{"role": "user", "content": "x"}], "tools": [now], "tool_choice": "required"}),
        );
        assert_eq!(
            body["toolConfig"]["functionCallingConfig"],
            json!({"mode": "ANY"})
        );
        let cyclic = json!({"$ref": "#/$defs/N", "$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}}});
        assert!(gemini_schema(&cyclic).is_err());
    }

    fn answer(
        d: &DeploymentConfig,
        i: &switchyard_config::RequestInfo,
        request: Value,
        body: Value,
    ) -> Value {
        let key = Credentials::Key("k".into());
        let c = ctx(d, i, &key);
        let mut t = Gemini::default();
        t.request(&c, request.to_string().as_bytes()).unwrap();
        serde_json::from_slice(&t.response(&c, body.to_string().as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn answers_with_thoughts_tool_calls_usage_and_several_candidates() {
        let (d, i) = gemini("gemini-2.5-flash");
        let ask = json!({"messages": [{"role": "user", "content": "x"}]});
        let v = answer(
            &d,
            &i,
            ask.clone(),
            json!({"candidates": [{"content": {"role": "model", "parts": [
                    {"text": "Let me think.", "thought": true},
                    {"text": "Calling."},
                    {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "U0lH"}]},
                    "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 27,
                    "thoughtsTokenCount": 12, "cachedContentTokenCount": 4},
                "responseId": "resp1"}),
        );
        let message = &v["choices"][0]["message"];
        assert_eq!(v["id"], "chatcmpl-resp1");
        assert_eq!(message["content"], "Calling.");
        assert_eq!(message["reasoning_content"], "Let me think.");
        assert_eq!(
            message["tool_calls"][0]["id"],
            "call_resp1_0__thought__U0lH"
        );
        assert_eq!(
            message["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 10, "completion_tokens": 17, "total_tokens": 27,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": {"reasoning_tokens": 12}})
        );
        let v = answer(
            &d,
            &i,
            ask.clone(),
            json!({"candidates": [
                {"content": {"parts": [{"text": "A"}]}, "finishReason": "STOP", "index": 0},
                {"content": {"parts": [{"text": "B"}]}, "finishReason": "MAX_TOKENS", "index": 1}],
                "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 2, "totalTokenCount": 3}}),
        );
        assert_eq!(v["choices"][1]["message"]["content"], "B");
        assert_eq!(v["choices"][1]["index"], 1);
        assert_eq!(v["choices"][1]["finish_reason"], "length");
        // Safety stops and blocked prompts: content_filter without content, as LiteLLM.
        let v = answer(
            &d,
            &i,
            ask.clone(),
            json!({"candidates": [{"content": {"parts": [{"text": "partial"}]}, "finishReason": "SAFETY"}]}),
        );
        assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
        let v = answer(
            &d,
            &i,
            ask,
            json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}}),
        );
        assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(v["usage"]["total_tokens"], 7);
    }

    fn frame(data: &str) -> Frame {
        Frame {
            data: data.into(),
            ..Frame::default()
        }
    }

    #[test]
    fn streams_finish_only_when_gemini_said_why() {
        let (mut d, mut i) = gemini("gemini-2.5-flash");
        d.model = "gemini-2.5-flash".into();
        i.stream = true;
        let key = Credentials::Key("k".into());
        let c = ctx(&d, &i, &key);
        let mut t = Gemini::default();
        t.request(
            &c,
            br#"{"messages":[{"role":"user","content":"x"}],"stream":true}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        t.stream_frame(&c, &frame(r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{}}}],"role":"model"}}],"responseId":"r9"}"#), &mut out)
            .unwrap();
        assert!(
            t.stream_end(&c, &mut Vec::new()).is_err(),
            "no finishReason yet: cut"
        );
        t.stream_frame(&c, &frame(r#"{"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":4,"totalTokenCount":7},"responseId":"r9"}"#), &mut out)
            .unwrap();
        t.stream_end(&c, &mut out).unwrap();
        assert_eq!(t.stream_usage().map(|u| u.total_tokens), Some(7));
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(r#""id":"call_r9_0""#), "{text}");
        assert!(text.contains(r#""finish_reason":"tool_calls""#), "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"));

        let mut t = Gemini::default();
        t.request(
            &c,
            br#"{"messages":[{"role":"user","content":"x"}],"stream":true}"#,
        )
        .unwrap();
        let e = t
            .stream_frame(
                &c,
                &frame(r#"{"error":{"code":429,"message":"Resource exhausted.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"2.5s"}]}}"#),
                &mut Vec::new(),
            )
            .unwrap_err();
        assert_eq!((e.status, e.retry_after_s), (429, Some(3)));
        assert!(e.message.contains("Resource exhausted."), "{}", e.message);
    }

    #[test]
    fn errors_keep_the_message_and_the_wait() {
        let (d, i) = gemini("gemini-2.5-flash");
        let c = ctx(&d, &i, &Credentials::None);
        let t = Gemini::default();
        let e = t.error(
            &c,
            429,
            &[],
            br#"{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"17s"}]}}"#,
        );
        assert_eq!((e.status, e.retry_after_s), (429, Some(17)));
        assert!(e.message.contains("You exceeded your current quota."));
        let e = t.error(
            &c,
            429,
            &[("retry-after".into(), "3".into())],
            br#"[{"error":{"code":429,"message":"m"}}]"#,
        );
        assert_eq!(e.retry_after_s, Some(3));
        let e = t.error(
            &c,
            400,
            &[],
            br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#,
        );
        assert_eq!(e.status, 401);
        let e = t.error(
            &c,
            400,
            &[],
            br#"{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#,
        );
        assert!(
            e.message.contains("ContextWindowExceededError"),
            "{}",
            e.message
        );
        assert_eq!(t.error(&c, 503, &[], b"").status, 503);
    }

    #[test]
    fn embeddings_on_both_apis() {
        let (mut d, mut i) = gemini("text-embedding-004");
        i.endpoint = Endpoint::Embeddings;
        d.model = "text-embedding-004".into();
        let key = Credentials::Key("k".into());
        let c = ctx(&d, &i, &key);
        let mut t = Gemini::default();
        let r = t
            .request(&c, br#"{"model":"e","input":["ab","cdef"],"dimensions":2,"task_type":"RETRIEVAL_QUERY"}"#)
            .unwrap();
        assert_eq!(
            r.path,
            "/v1beta/models/text-embedding-004:batchEmbedContents"
        );
        assert_eq!(
            serde_json::from_slice::<Value>(&r.body).unwrap(),
            json!({"requests": [
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "ab"}]}, "outputDimensionality": 2, "taskType": "RETRIEVAL_QUERY"},
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "cdef"}]}, "outputDimensionality": 2, "taskType": "RETRIEVAL_QUERY"}]})
        );
        let v: Value = serde_json::from_slice(
            &t.response(
                &c,
                br#"{"embeddings":[{"values":[0.5,1]},{"values":[1,0.5]}]}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(v["data"][1]["embedding"], json!([1.0, 0.5]));
        assert_eq!(
            v["usage"]["prompt_tokens"], 2,
            "six characters: about two tokens"
        );

        let (mut d, mut i) = vertex("text-embedding-005");
        i.endpoint = Endpoint::Embeddings;
        let c = ctx(&d, &i, &key);
        let mut t = Gemini::default();
        let r = t
            .request(&c, br#"{"model":"e","input":"ab","dimensions":2}"#)
            .unwrap();
        assert!(
            r.path
                .ends_with("/publishers/google/models/text-embedding-005:predict"),
            "{}",
            r.path
        );
        assert_eq!(
            serde_json::from_slice::<Value>(&r.body).unwrap(),
            json!({"instances": [{"content": "ab"}], "parameters": {"outputDimensionality": 2}})
        );
        let v: Value = serde_json::from_slice(
            &t.response(&c, br#"{"predictions":[{"embeddings":{"values":[0.25,0.75],"statistics":{"token_count":3,"truncated":false}}}]}"#)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(v["usage"]["prompt_tokens"], 3);
        d.params.project = None;
        let c = ctx(&d, &i, &key);
        assert_eq!(
            Gemini::default()
                .request(&c, br#"{"input":"a"}"#)
                .unwrap_err()
                .status,
            500
        );
    }
}
