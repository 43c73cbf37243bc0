//! Anthropic's Messages API (`POST /v1/messages`), as LiteLLM maps OpenAI chat onto it.
//!
//! Request: system and developer messages become `system` (blocks when a part carries
//! `cache_control`), tool results become `tool_result` blocks of a user turn, assistant tool
//! calls `tool_use` blocks, consecutive turns of one role are merged; `max_tokens` is always
//! sent; `response_format` is a forced tool (`json_tool_call`) whose input is the answer.
//! Answer and stream: text, tool calls, thinking (`reasoning_content` and `thinking_blocks`,
//! whose signatures the client sends back), finish reason, and usage with prompt-cache reads
//! and writes counted in the prompt, as LiteLLM reports them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use switchyard_config::{Dialect, Endpoint};

use super::{
    bad_answer, error_message, provider_error, stream_cut, Ctx, ProviderRequest, Translator,
};
use crate::error::ApiError;
use crate::framing::Frame;
use crate::openai::portable_tool_call_id;
use crate::openai::{
    Answer, ChatRequest, Content, FunctionCall, ImageUrl, Message, Part, Role, Stop, StreamWriter,
    ToolCall, ToolChoice, Usage,
};

/// The API version every request names (`anthropic-version`).
const VERSION: &str = "2023-06-01";
/// LiteLLM's name for the forced tool that carries a JSON answer (`response_format`).
const JSON_TOOL: &str = "json_tool_call";
/// max_tokens for a model not in [`default_max_tokens`]'s list, and what LiteLLM adds to a
/// thinking budget when the client sets no max_tokens (its DEFAULT_MAX_TOKENS).
const FALLBACK_MAX_TOKENS: u64 = 4096;

/// OpenAI parameters Anthropic has no equivalent for (besides the typed ones): refused, or
/// dropped with drop_params, unless null or false.
const UNSUPPORTED: &[&str] = &[
    "modalities",
    "audio",
    "prediction",
    "functions",
    "function_call",
    "web_search_options",
    "verbosity",
    "store",
    "prompt_cache_key",
    "safety_identifier",
];

/// Request fields that are LiteLLM's own (logging, spend tags, caching, guardrails): the
/// proxy consumes them, no provider sees them.
const LITELLM_ONLY: &[&str] = &[
    "metadata",
    "tags",
    "litellm_metadata",
    "caching",
    "cache",
    "guardrails",
];

#[derive(Default)]
pub struct Anthropic {
    /// The request asked for JSON (`response_format`): the forced tool's input is the answer.
    json_mode: bool,
    stream: Option<Stream>,
}

impl Translator for Anthropic {
    fn owned_headers(&self) -> &'static [&'static str] {
        &["x-api-key", "anthropic-version", "anthropic-beta"]
    }

    fn native(&mut self, ctx: &Ctx, body: &[u8]) -> Option<Result<ProviderRequest, ApiError>> {
        let path = match (ctx.info.dialect, ctx.info.endpoint) {
            (_, Endpoint::CountTokens) => "/v1/messages/count_tokens",
            (Dialect::Anthropic, Endpoint::ChatCompletions) => "/v1/messages",
            _ => return None,
        };
        Some(
            super::openai::request_body(ctx, body).map(|body| ProviderRequest {
                path: format!("{}{path}", base_path(ctx)),
                headers: headers(ctx),
                body,
            }),
        )
    }

    fn request(&mut self, ctx: &Ctx, body: &[u8]) -> Result<ProviderRequest, ApiError> {
        if ctx.info.endpoint != Endpoint::ChatCompletions {
            return Err(ApiError::bad_request(format!(
                "anthropic serves chat completions only, not {}.",
                ctx.info.endpoint.name()
            )));
        }
        let req = ChatRequest::parse(body)?;
        let built = build(ctx, &req)?;
        self.json_mode = built.json_mode;
        if req.is_stream() {
            self.stream = Some(Stream::new(StreamWriter::new(
                ctx.info.endpoint,
                ctx.answer_model(),
                ctx.created(),
                req.include_usage(),
            )));
        }
        let body = serde_json::to_vec(&built.body)
            .map_err(|e| ApiError::internal(format!("Cannot write the Anthropic request: {e}")))?;
        Ok(ProviderRequest {
            path: format!("{}/v1/messages", base_path(ctx)),
            headers: headers(ctx),
            body,
        })
    }

    fn response(&mut self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let msg: MessageOut =
            serde_json::from_slice(body).map_err(|e| bad_answer(ctx, format!("{e}")))?;
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut thinking_blocks = Vec::new();
        let mut tool_calls = Vec::new();
        for raw in &msg.content {
            let block: BlockOut =
                serde_json::from_str(raw.get()).map_err(|e| bad_answer(ctx, e))?;
            match block {
                BlockOut::Text { text: t } => text.push_str(&t),
                BlockOut::ToolUse { id, name } => tool_calls.push(ToolCall {
                    id,
                    kind: "function".into(),
                    function: FunctionCall {
                        name,
                        arguments: tool_arguments(raw).map_err(|e| bad_answer(ctx, e))?,
                    },
                }),
                BlockOut::Thinking {
                    thinking,
                    signature,
                } => {
                    reasoning.push_str(&thinking);
                    thinking_blocks.push(
                        json!({"type": "thinking", "thinking": thinking, "signature": signature}),
                    );
                }
                BlockOut::RedactedThinking { data } => {
                    thinking_blocks.push(json!({"type": "redacted_thinking", "data": data}));
                }
                BlockOut::Other => {}
            }
        }
        let mut finish_reason = finish_reason(msg.stop_reason.as_deref()).to_string();
        // JSON mode: the forced tool's input is the answer (LiteLLM's json_mode).
        if let [call] = tool_calls.as_mut_slice() {
            if self.json_mode && call.function.name == JSON_TOOL {
                text = std::mem::take(&mut call.function.arguments);
                tool_calls.clear();
                finish_reason = "stop".into();
            }
        }
        let answer = Answer {
            id: msg.id,
            content: (!text.is_empty()).then_some(text),
            reasoning: (!reasoning.is_empty()).then_some(reasoning),
            tool_calls,
            finish_reason,
            usage: msg.usage.to_openai(),
        };
        let out = answer.to_openai(ctx.info.endpoint, ctx.answer_model(), ctx.created());
        if thinking_blocks.is_empty() {
            return Ok(out);
        }
        // LiteLLM's `thinking_blocks` beside `reasoning_content`: the client sends them back
        // (signatures intact) in the assistant message of the next turn.
        let mut v: Value = serde_json::from_slice(&out).map_err(|e| bad_answer(ctx, e))?;
        if let Some(message) = v
            .get_mut("choices")
            .and_then(|c| c.get_mut(0))
            .and_then(|c| c.get_mut("message"))
            .and_then(Value::as_object_mut)
        {
            message.insert("thinking_blocks".into(), Value::Array(thinking_blocks));
        }
        serde_json::to_vec(&v).map_err(|e| bad_answer(ctx, e))
    }

    fn stream_frame(
        &mut self,
        ctx: &Ctx,
        frame: &Frame,
        out: &mut Vec<u8>,
    ) -> Result<(), ApiError> {
        let json_mode = self.json_mode;
        let Some(stream) = self.stream.as_mut() else {
            return Err(bad_answer(ctx, "a stream to a request that asked for none"));
        };
        stream.frame(ctx, json_mode, frame, out)
    }

    fn stream_end(&mut self, ctx: &Ctx, _: &mut Vec<u8>) -> Result<(), ApiError> {
        match &self.stream {
            Some(s) if s.done => Ok(()),
            _ => Err(stream_cut(ctx)),
        }
    }

    fn stream_usage(&self) -> Option<Usage> {
        self.stream.as_ref().and_then(|s| s.writer.reported_usage())
    }

    fn error(&self, ctx: &Ctx, status: u16, headers: &[(String, String)], body: &[u8]) -> ApiError {
        // {"type": "error", "error": {"type": "rate_limit_error", "message": "..."}}
        let message = error_message(status, body, &[&["error", "message"], &["message"]]);
        provider_error(ctx, status, headers, &message)
    }
}

// ---------------------------------------------------------------------------------------
// Request

/// The api_base's path; one that already ends in /v1 is not doubled.
fn base_path<'c>(ctx: &Ctx<'c>) -> &'c str {
    ctx.deployment.base_path.trim_end_matches("/v1")
}

/// The key, the API version, and the beta flags the client asked for (`anthropic-beta`, or
/// LiteLLM's `x-pass-anthropic-beta`).
fn headers(ctx: &Ctx) -> Vec<(String, String)> {
    let mut headers = Vec::with_capacity(3);
    headers.extend(ctx.credentials.key_header("x-api-key"));
    headers.push(("anthropic-version".into(), VERSION.into()));
    let client = &ctx.info.client;
    let beta = client.anthropic_beta.as_ref().or_else(|| {
        client
            .pass
            .iter()
            .find(|(n, _)| n == "anthropic-beta")
            .map(|(_, v)| v)
    });
    if let Some(beta) = beta {
        headers.push(("anthropic-beta".into(), beta.clone()));
    }
    headers
}

/// The Messages API request body, borrowing from the OpenAI request.
#[derive(Serialize)]
struct MessagesRequest<'a> {
    model: &'a str,
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<System<'a>>,
    max_tokens: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolDef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ToolChoiceOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    /// What the client sent that OpenAI does not define (Anthropic's own `top_k`,
    /// `cache_control`, `container`, ...): passed on, as LiteLLM does.
    #[serde(flatten)]
    extra: BTreeMap<&'a str, &'a Value>,
}

#[derive(Serialize)]
struct Turn<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum System<'a> {
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

#[derive(Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a Value>,
    },
    Image {
        source: Source<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a Value>,
    },
    Document {
        source: Source<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a Value>,
    },
    ToolUse {
        id: std::borrow::Cow<'a, str>,
        name: &'a str,
        input: Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a Value>,
    },
    ToolResult {
        tool_use_id: std::borrow::Cow<'a, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<ToolResultContent<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a Value>,
    },
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    RedactedThinking {
        data: &'a str,
    },
}

impl<'a> Block<'a> {
    fn text(text: &'a str) -> Block<'a> {
        Block::Text {
            text,
            cache_control: None,
        }
    }

    /// Marks the block as a prompt-cache breakpoint, where the block can be one.
    fn set_cache_control(&mut self, value: &'a Value) {
        match self {
            Block::Text { cache_control, .. }
            | Block::Image { cache_control, .. }
            | Block::Document { cache_control, .. }
            | Block::ToolUse { cache_control, .. }
            | Block::ToolResult { cache_control, .. } => *cache_control = Some(value),
            Block::Thinking { .. } | Block::RedactedThinking { .. } => {}
        }
    }
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Source<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(untagged)]
enum ToolResultContent<'a> {
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

#[derive(Serialize)]
struct ToolDef<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<&'a Value>,
}

#[derive(Serialize, Debug, PartialEq)]
struct ToolChoiceOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disable_parallel_tool_use: Option<bool>,
}

struct Built<'a> {
    body: MessagesRequest<'a>,
    json_mode: bool,
}

/// The Messages API request for an OpenAI chat request.
fn build<'a>(ctx: &Ctx<'a>, req: &'a ChatRequest) -> Result<Built<'a>, ApiError> {
    refuse_unsupported(ctx, req)?;

    let (system, messages) = convert_messages(&req.messages)?;

    let mut tools = Vec::new();
    for tool in req.tools.iter().flatten() {
        if tool.kind != "function" {
            return Err(ApiError::bad_request(format!(
                "anthropic takes function tools, not `{}` tools.",
                tool.kind
            ))
            .with_param("tools"));
        }
        tools.push(ToolDef {
            name: &tool.function.name,
            description: tool.function.description.as_deref(),
            input_schema: input_schema(tool.function.parameters.as_ref()),
            cache_control: tool.extra.get("cache_control"),
        });
    }
    let mut tool_choice = tool_choice(req.tool_choice.as_ref(), req.parallel_tool_calls)?;

    let thinking = thinking(req)?;
    let thinking_enabled = thinking
        .as_ref()
        .is_some_and(|t| t.get("type").and_then(Value::as_str) == Some("enabled"));
    let budget = thinking
        .as_ref()
        .and_then(|t| t.get("budget_tokens"))
        .and_then(Value::as_u64);

    // JSON answers through a forced tool, as LiteLLM does (Anthropic refuses forced tool
    // use while thinking, so then the tool is only offered).
    let mut json_mode = false;
    if let Some(schema) = json_schema(req)? {
        tools.push(schema);
        if !thinking_enabled {
            tool_choice = Some(ToolChoiceOut {
                kind: "tool",
                name: Some(JSON_TOOL),
                disable_parallel_tool_use: None,
            });
        }
        json_mode = true;
    }
    if tools.is_empty() {
        if messages
            .iter()
            .flat_map(|t| &t.content)
            .any(|b| matches!(b, Block::ToolUse { .. } | Block::ToolResult { .. }))
        {
            // Anthropic refuses tool_use and tool_result blocks in a request without tools.
            return Err(ApiError::bad_request(
                "litellm.UnsupportedParamsError: Anthropic doesn't support tool calling without `tools=` param specified. Pass `tools=` with the tools the conversation used.",
            )
            .with_param("tools"));
        }
        // tool_choice (or parallel_tool_calls) without tools means nothing to Anthropic.
        tool_choice = None;
    }

    let max_tokens = req
        .max_output_tokens()
        .or(budget.map(|b| b + FALLBACK_MAX_TOKENS))
        .unwrap_or_else(|| default_max_tokens(&ctx.deployment.model));

    let stop_sequences = match &req.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s.as_str()],
        Some(Stop::Many(v)) => v.iter().map(String::as_str).collect(),
    }
    .into_iter()
    // Anthropic refuses whitespace-only stop sequences; LiteLLM drops them with drop_params.
    .filter(|s| !(ctx.drop_params && s.trim().is_empty()))
    .collect();

    // LiteLLM's metadata.user_id wins over `user`; neither when it looks like an email or a
    // phone number, which Anthropic refuses.
    let user_id = req
        .extra
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
        .or(req.user.as_deref())
        .filter(|u| valid_user_id(u));

    let extra = req
        .extra
        .iter()
        .filter(|(k, v)| match k.as_str() {
            k if LITELLM_ONLY.contains(&k) || UNSUPPORTED.contains(&k) => false,
            // Anthropic's own tiers pass; OpenAI's were refused above, or are dropped.
            "service_tier" => anthropic_service_tier(v),
            _ => true,
        })
        .map(|(k, v)| (k.as_str(), v))
        .collect();

    Ok(Built {
        body: MessagesRequest {
            model: &ctx.deployment.model,
            messages,
            system,
            max_tokens,
            stop_sequences,
            temperature: req.temperature,
            top_p: req.top_p,
            metadata: user_id.map(|user_id| Metadata { user_id }),
            tools,
            tool_choice,
            thinking,
            stream: req.is_stream(),
            extra,
        },
        json_mode,
    })
}

/// OpenAI parameters Anthropic cannot take: a 400 naming the first, or dropped with
/// drop_params. Values that ask for nothing (n=1, penalties of 0, logprobs=false) pass.
fn refuse_unsupported(ctx: &Ctx, req: &ChatRequest) -> Result<(), ApiError> {
    // Anthropic's names for what the OpenAI request says its own way: the translation sets
    // them, so the client's would be sent twice.
    for (name, instead) in [("system", "a system message"), ("stop_sequences", "`stop`")] {
        if req.extra.contains_key(name) {
            return Err(ApiError::bad_request(format!(
                "`{name}` is Anthropic's parameter, not OpenAI's: send it as {instead}."
            ))
            .with_param(name));
        }
    }
    let asks = |v: Option<f64>| v.is_some_and(|v| v != 0.0);
    if req.n.is_some_and(|n| n > 1) {
        ctx.unsupported("n")?;
    }
    if asks(req.presence_penalty) {
        ctx.unsupported("presence_penalty")?;
    }
    if asks(req.frequency_penalty) {
        ctx.unsupported("frequency_penalty")?;
    }
    if req.seed.is_some() {
        ctx.unsupported("seed")?;
    }
    if req
        .logit_bias
        .as_ref()
        .is_some_and(|v| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty()))
    {
        ctx.unsupported("logit_bias")?;
    }
    if req.logprobs == Some(true) {
        ctx.unsupported("logprobs")?;
    }
    if req.top_logprobs.is_some_and(|n| n > 0) {
        ctx.unsupported("top_logprobs")?;
    }
    for name in UNSUPPORTED {
        if req
            .extra
            .get(*name)
            .is_some_and(|v| !v.is_null() && *v != Value::Bool(false))
        {
            ctx.unsupported(name)?;
        }
    }
    if let Some(tier) = req.extra.get("service_tier") {
        if !tier.is_null() && !anthropic_service_tier(tier) {
            ctx.unsupported("service_tier")?;
        }
    }
    Ok(())
}

/// A `service_tier` value Anthropic knows (OpenAI's `default`, `flex`, ... it does not).
fn anthropic_service_tier(v: &Value) -> bool {
    matches!(v.as_str(), Some("auto" | "standard_only"))
}

/// The system prompt and the conversation turns.
fn convert_messages(messages: &[Message]) -> Result<(Option<System<'_>>, Vec<Turn<'_>>), ApiError> {
    let mut system: Vec<Block> = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let (role, mut blocks) = match m.role {
            Role::System | Role::Developer => {
                let mut blocks = system_blocks(m, i)?;
                cache_last(m, &mut blocks);
                system.extend(blocks);
                continue;
            }
            Role::User => ("user", user_blocks(m, i)?),
            Role::Assistant => ("assistant", assistant_blocks(m, i)?),
            Role::Tool => ("user", vec![tool_result(m, i)?]),
            Role::Function => {
                return Err(ApiError::bad_request(format!(
                    "messages[{i}]: the legacy `function` role is not supported for anthropic; send tool results as `tool` messages with a tool_call_id."
                ))
                .with_param("messages"))
            }
        };
        cache_last(m, &mut blocks);
        if blocks.is_empty() {
            continue;
        }
        // Turns alternate, and every tool result must be in the user turn right after the
        // calls: consecutive messages of one role (several tool results, a tool result and
        // the user's text) become one turn.
        match turns.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => turns.push(Turn {
                role,
                content: blocks,
            }),
        }
    }
    let system = match system.as_slice() {
        [] => None,
        [Block::Text {
            text,
            cache_control: None,
        }] => Some(System::Text(text)),
        _ => Some(System::Blocks(system)),
    };
    Ok((system, turns))
}

/// A message-level `cache_control` (LiteLLM's) marks the message's last block.
fn cache_last<'a>(m: &'a Message, blocks: &mut [Block<'a>]) {
    if let (Some(cc), Some(last)) = (m.extra.get("cache_control"), blocks.last_mut()) {
        last.set_cache_control(cc);
    }
}

fn bad_part(i: usize, why: String) -> ApiError {
    ApiError::bad_request(format!("messages[{i}]: {why}")).with_param("messages")
}

fn system_blocks(m: &Message, i: usize) -> Result<Vec<Block<'_>>, ApiError> {
    match &m.content {
        None => Ok(Vec::new()),
        Some(Content::Text(t)) => Ok(non_empty(t).map(Block::text).into_iter().collect()),
        Some(Content::Parts(parts)) => parts
            .iter()
            .filter(|p| p.kind != "text" || p.text.as_deref().is_some_and(|t| !t.is_empty()))
            .map(|p| match (p.kind.as_str(), &p.text) {
                ("text", Some(text)) => Ok(Block::Text {
                    text,
                    cache_control: p.extra.get("cache_control"),
                }),
                (kind, _) => Err(bad_part(
                    i,
                    format!("system messages take text parts, not `{kind}`."),
                )),
            })
            .collect(),
    }
}

fn non_empty(t: &str) -> Option<&str> {
    (!t.is_empty()).then_some(t)
}

fn user_blocks(m: &Message, i: usize) -> Result<Vec<Block<'_>>, ApiError> {
    match &m.content {
        None => Ok(Vec::new()),
        Some(Content::Text(t)) => Ok(non_empty(t).map(Block::text).into_iter().collect()),
        Some(Content::Parts(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                if let Some(block) = part_block(p, i)? {
                    out.push(block);
                }
            }
            Ok(out)
        }
    }
}

/// A user (or tool result) content part: text, an image, or a file (PDF or image).
fn part_block(p: &Part, i: usize) -> Result<Option<Block<'_>>, ApiError> {
    let cache_control = p.extra.get("cache_control");
    let block = match p.kind.as_str() {
        "text" => match p.text.as_deref().and_then(non_empty) {
            Some(text) => Block::Text {
                text,
                cache_control,
            },
            None => return Ok(None),
        },
        "image_url" => {
            let Some(image) = &p.image_url else {
                return Err(bad_part(i, "an image_url part without image_url.".into()));
            };
            Block::Image {
                source: image_source(image, i)?,
                cache_control,
            }
        }
        "file" => {
            let data_url = p
                .extra
                .get("file")
                .and_then(|f| f.get("file_data"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let Some((media_type, data)) = data_url_parts(data_url) else {
                return Err(bad_part(
                    i,
                    "anthropic takes files as `file.file_data`, a base64 data URL (a PDF or an image); file ids are not supported.".into(),
                ));
            };
            let source = Source::Base64 { media_type, data };
            if media_type.starts_with("image/") {
                Block::Image {
                    source,
                    cache_control,
                }
            } else if media_type == "application/pdf" {
                Block::Document {
                    source,
                    cache_control,
                }
            } else {
                return Err(bad_part(
                    i,
                    format!("anthropic takes PDF and image files, not {media_type}."),
                ));
            }
        }
        other => {
            return Err(bad_part(
                i,
                format!("anthropic does not take `{other}` content parts; send text, image_url or file parts."),
            ))
        }
    };
    Ok(Some(block))
}

/// `data:<media type>;base64,<data>` as (media type, data).
fn data_url_parts(url: &str) -> Option<(&str, &str)> {
    let (meta, data) = url.strip_prefix("data:")?.split_once(',')?;
    Some((meta.strip_suffix(";base64")?, data))
}

/// Images: a base64 data URL as a base64 source, an http(s) URL as a url source.
fn image_source(image: &ImageUrl, i: usize) -> Result<Source<'_>, ApiError> {
    let url = image.url();
    if let Some((media_type, data)) = image.data() {
        return Ok(Source::Base64 { media_type, data });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(Source::Url { url });
    }
    Err(bad_part(
        i,
        "anthropic takes images as https URLs or base64 data URLs (data:image/png;base64,...)."
            .into(),
    ))
}

fn assistant_blocks(m: &Message, i: usize) -> Result<Vec<Block<'_>>, ApiError> {
    let mut out = Vec::new();
    // Thinking comes first, exactly as the model wrote it (its signature is checked).
    if let Some(blocks) = m.extra.get("thinking_blocks").filter(|v| !v.is_null()) {
        let Some(blocks) = blocks.as_array() else {
            return Err(bad_part(i, "thinking_blocks must be a list.".into()));
        };
        for b in blocks {
            out.push(thinking_block(b, i)?);
        }
    }
    match &m.content {
        None => {}
        Some(Content::Text(t)) => out.extend(non_empty(t).map(Block::text)),
        Some(Content::Parts(parts)) => {
            for p in parts {
                match p.kind.as_str() {
                    "text" => {
                        if let Some(text) = p.text.as_deref().and_then(non_empty) {
                            out.push(Block::Text {
                                text,
                                cache_control: p.extra.get("cache_control"),
                            });
                        }
                    }
                    // LiteLLM's assistant content may carry the thinking blocks as parts.
                    "thinking" | "redacted_thinking" => out.push(owned_thinking_block(p, i)?),
                    other => {
                        return Err(bad_part(
                            i,
                            format!("assistant messages take text parts, not `{other}`."),
                        ))
                    }
                }
            }
        }
    }
    for call in m.tool_calls.iter().flatten() {
        out.push(Block::ToolUse {
            id: portable_tool_call_id(&call.id),
            name: &call.function.name,
            input: tool_input(&call.function.arguments, i)?,
            cache_control: None,
        });
    }
    Ok(out)
}

/// A thinking block the client sends back (LiteLLM's `thinking_blocks` entry).
fn thinking_block(b: &Value, i: usize) -> Result<Block<'_>, ApiError> {
    let field = |name| b.get(name).and_then(Value::as_str);
    match field("type") {
        Some("thinking") => Ok(Block::Thinking {
            thinking: field("thinking").unwrap_or_default(),
            signature: field("signature").ok_or_else(|| {
                bad_part(
                    i,
                    "a thinking block without its signature: send the thinking_blocks back as they came.".into(),
                )
            })?,
        }),
        Some("redacted_thinking") => Ok(Block::RedactedThinking {
            data: field("data").ok_or_else(|| {
                bad_part(i, "a redacted_thinking block without its data.".into())
            })?,
        }),
        _ => Err(bad_part(
            i,
            "thinking_blocks entries are {\"type\": \"thinking\", ...} or {\"type\": \"redacted_thinking\", ...}.".into(),
        )),
    }
}

/// A thinking block sent as an assistant content part.
fn owned_thinking_block(p: &Part, i: usize) -> Result<Block<'_>, ApiError> {
    let field = |name| p.extra.get(name).and_then(Value::as_str);
    if p.kind == "redacted_thinking" {
        return Ok(Block::RedactedThinking {
            data: field("data")
                .ok_or_else(|| bad_part(i, "a redacted_thinking part without its data.".into()))?,
        });
    }
    Ok(Block::Thinking {
        thinking: field("thinking").unwrap_or_default(),
        signature: field("signature").ok_or_else(|| {
            bad_part(
                i,
                "a thinking part without its signature: send it back as it came.".into(),
            )
        })?,
    })
}

/// A tool call's arguments (JSON text) as the `tool_use` input object.
fn tool_input(arguments: &str, i: usize) -> Result<Value, ApiError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(bad_part(
            i,
            "a tool call's arguments must be a JSON object.".into(),
        )),
    }
}

fn tool_result(m: &Message, i: usize) -> Result<Block<'_>, ApiError> {
    let Some(tool_use_id) = m.tool_call_id.as_deref() else {
        return Err(bad_part(
            i,
            "a tool message needs the tool_call_id it answers.".into(),
        ));
    };
    let content = match &m.content {
        None => None,
        Some(Content::Text(t)) => non_empty(t).map(ToolResultContent::Text),
        Some(Content::Parts(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for p in parts {
                blocks.extend(part_block(p, i)?);
            }
            (!blocks.is_empty()).then_some(ToolResultContent::Blocks(blocks))
        }
    };
    Ok(Block::ToolResult {
        tool_use_id: portable_tool_call_id(tool_use_id),
        content,
        cache_control: None,
    })
}

/// A function's parameters as Anthropic's input_schema, which must be an object schema.
fn input_schema(parameters: Option<&Value>) -> Value {
    match parameters {
        Some(Value::Object(o)) => {
            let mut o = o.clone();
            if o.get("type").and_then(Value::as_str) != Some("object") {
                o.insert("type".into(), Value::String("object".into()));
                o.entry("properties")
                    .or_insert_with(|| Value::Object(Map::new()));
            }
            Value::Object(o)
        }
        _ => json!({"type": "object", "properties": {}}),
    }
}

/// OpenAI's tool_choice and parallel_tool_calls as Anthropic's tool_choice (LiteLLM's map).
fn tool_choice(
    choice: Option<&ToolChoice>,
    parallel: Option<bool>,
) -> Result<Option<ToolChoiceOut<'_>>, ApiError> {
    let mode = |kind| ToolChoiceOut {
        kind,
        name: None,
        disable_parallel_tool_use: None,
    };
    let mut out = match choice {
        None => None,
        Some(ToolChoice::Mode(m)) => Some(match m.as_str() {
            "auto" => mode("auto"),
            "required" | "any" => mode("any"),
            "none" => mode("none"),
            other => {
                return Err(ApiError::bad_request(format!(
                    "tool_choice must be \"auto\", \"required\", \"none\" or a named function, not \"{other}\"."
                ))
                .with_param("tool_choice"))
            }
        }),
        Some(ToolChoice::Named { function, .. }) => Some(ToolChoiceOut {
            kind: "tool",
            name: Some(&function.name),
            disable_parallel_tool_use: None,
        }),
    };
    if let Some(parallel) = parallel {
        match &mut out {
            Some(c) if c.kind == "none" => {}
            Some(c) => c.disable_parallel_tool_use = Some(!parallel),
            None => {
                out = Some(ToolChoiceOut {
                    disable_parallel_tool_use: Some(!parallel),
                    ..mode("auto")
                })
            }
        }
    }
    Ok(out)
}

/// `thinking` as the client sent it, else `reasoning_effort` as LiteLLM maps it to a budget.
fn thinking(req: &ChatRequest) -> Result<Option<Value>, ApiError> {
    if let Some(t) = req.thinking.as_ref().filter(|t| !t.is_null()) {
        return Ok(Some(t.clone()));
    }
    let budget = match req.reasoning_effort.as_deref() {
        None | Some("none") => return Ok(None),
        // Anthropic's smallest budget is 1024.
        Some("minimal" | "low") => 1024,
        Some("medium") => 2048,
        Some("high") => 4096,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "reasoning_effort must be \"low\", \"medium\" or \"high\" (or \"minimal\", \"none\"), not \"{other}\"."
            ))
            .with_param("reasoning_effort"))
        }
    };
    Ok(Some(json!({"type": "enabled", "budget_tokens": budget})))
}

/// The forced tool of `response_format` json_object / json_schema (None for text).
fn json_schema(req: &ChatRequest) -> Result<Option<ToolDef<'_>>, ApiError> {
    let Some(format) = &req.response_format else {
        return Ok(None);
    };
    let schema = match format.kind.as_str() {
        "text" => return Ok(None),
        "json_object" => None,
        "json_schema" => format.json_schema.as_ref(),
        other => {
            return Err(ApiError::bad_request(format!(
                "response_format.type must be \"text\", \"json_object\" or \"json_schema\", not \"{other}\"."
            ))
            .with_param("response_format"))
        }
    };
    let input_schema = match schema.and_then(|s| s.schema.as_ref()) {
        Some(Value::Object(o)) => {
            let mut s = Map::new();
            s.insert("type".into(), Value::String("object".into()));
            s.extend(o.iter().map(|(k, v)| (k.clone(), v.clone())));
            Value::Object(s)
        }
        // Any object: Anthropic refuses a schema without properties.
        _ => json!({"type": "object", "additionalProperties": true, "properties": {}}),
    };
    Ok(Some(ToolDef {
        name: JSON_TOOL,
        description: schema.and_then(|s| s.description.as_deref()),
        input_schema,
        cache_control: None,
    }))
}

/// max_tokens when the client sets none. Anthropic requires it; LiteLLM sends the model's
/// maximum output (Anthropic's models overview: Opus 4.5, Sonnet 4 and 4.5, Haiku 4.5 and
/// Sonnet 3.7 write up to 64K tokens, Opus 4 and 4.1 32K, the 3.5 models 8192, the 3 models
/// 4096), and 4096 (LiteLLM's DEFAULT_ANTHROPIC_CHAT_MAX_TOKENS) for a model it does not
/// know. Newer models of a listed family get the family's figure, which they allow.
fn default_max_tokens(model: &str) -> u64 {
    const LIMITS: &[(&str, u64)] = &[
        ("claude-opus-4-5", 64_000),
        ("claude-opus-4", 32_000),
        ("claude-sonnet-4", 64_000),
        ("claude-haiku-4", 64_000),
        ("claude-3-7-sonnet", 64_000),
        ("claude-3-5-", 8_192),
        ("claude-3-", 4_096),
    ];
    LIMITS
        .iter()
        .find(|(prefix, _)| model.starts_with(prefix))
        .map_or(FALLBACK_MAX_TOKENS, |(_, n)| *n)
}

/// Anthropic refuses an email address or a phone number as metadata.user_id; LiteLLM then
/// leaves it out.
fn valid_user_id(user: &str) -> bool {
    let email = user
        .split_once('@')
        .is_some_and(|(name, domain)| !name.is_empty() && domain.contains('.'));
    let phone = user.len() >= 7
        && user.chars().any(|c| c.is_ascii_digit())
        && user
            .chars()
            .all(|c| c.is_ascii_digit() || " ()-+".contains(c));
    !user.is_empty() && !email && !phone
}

// ---------------------------------------------------------------------------------------
// Answer

#[derive(Deserialize)]
struct MessageOut {
    #[serde(default)]
    id: String,
    /// Raw, so a tool's input keeps the order of its keys (a JSON answer's fields).
    #[serde(default)]
    content: Vec<Box<RawValue>>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: UsageOut,
}

/// A content block of an answer (or of a stream's content_block_start).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockOut {
    Text {
        #[serde(default)]
        text: String,
    },
    /// Its `input` is read by [`tool_arguments`].
    ToolUse { id: String, name: String },
    Thinking {
        #[serde(default)]
        thinking: String,
        #[serde(default)]
        signature: String,
    },
    RedactedThinking {
        #[serde(default)]
        data: String,
    },
    /// Server tool blocks, citations' documents, what comes next: not OpenAI's.
    #[serde(other)]
    Other,
}

/// A tool_use block's input as OpenAI's arguments: the JSON text as Anthropic wrote it.
fn tool_arguments(block: &RawValue) -> Result<String, serde_json::Error> {
    #[derive(Deserialize)]
    struct Input<'a> {
        #[serde(borrow, default)]
        input: Option<&'a RawValue>,
    }
    let input: Input = serde_json::from_str(block.get())?;
    Ok(input.input.map_or("{}", RawValue::get).to_string())
}

/// LiteLLM's usage for an Anthropic usage object (of an answer passed on untouched).
pub(crate) fn usage_of(usage: &Value) -> Usage {
    UsageOut::deserialize(usage).unwrap_or_default().to_openai()
}

/// Anthropic's usage (a stream's message_delta repeats only what changed).
#[derive(Deserialize, Default, Clone)]
struct UsageOut {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize, Default, Clone)]
struct OutputDetails {
    #[serde(default)]
    thinking_tokens: Option<u64>,
}

impl UsageOut {
    /// Takes what a later report says.
    fn update(&mut self, later: UsageOut) {
        self.input_tokens = later.input_tokens.or(self.input_tokens);
        self.output_tokens = later.output_tokens.or(self.output_tokens);
        self.cache_creation_input_tokens = later
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
        self.cache_read_input_tokens = later
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
        self.output_tokens_details = later
            .output_tokens_details
            .or(self.output_tokens_details.take());
    }

    /// LiteLLM's usage: the prompt counts cache writes and reads (Anthropic's input_tokens
    /// counts neither), cached_tokens are the reads, and both are reported on their own.
    fn to_openai(&self) -> Usage {
        let created = self.cache_creation_input_tokens;
        let read = self.cache_read_input_tokens;
        let prompt = self.input_tokens.unwrap_or(0) + created.unwrap_or(0) + read.unwrap_or(0);
        Usage {
            cache_creation_input_tokens: created,
            cache_read_input_tokens: read,
            ..Usage::new(prompt, self.output_tokens.unwrap_or(0))
                .with_cached(read)
                .with_reasoning(
                    self.output_tokens_details
                        .as_ref()
                        .and_then(|d| d.thinking_tokens),
                )
        }
    }
}

/// OpenAI's finish_reason for Anthropic's stop_reason.
fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, pause_turn
        _ => "stop",
    }
}

// ---------------------------------------------------------------------------------------
// Stream

/// One event of Anthropic's stream (the SSE event name repeats `type`).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: BlockOut,
    },
    ContentBlockDelta {
        index: u32,
        delta: DeltaIn,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        #[serde(default)]
        delta: MessageDeltaIn,
        #[serde(default)]
        usage: Option<UsageOut>,
    },
    MessageStop,
    Ping,
    Error {
        error: ErrorIn,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    id: String,
    #[serde(default)]
    usage: UsageOut,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum DeltaIn {
    TextDelta {
        #[serde(default)]
        text: String,
    },
    InputJsonDelta {
        #[serde(default)]
        partial_json: String,
    },
    ThinkingDelta {
        #[serde(default)]
        thinking: String,
    },
    SignatureDelta {
        #[serde(default)]
        signature: String,
    },
    /// citations_delta and what comes next.
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
struct MessageDeltaIn {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct ErrorIn {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
}

/// A content block being streamed.
enum Open {
    Text,
    /// A tool call: its position among the answer's calls; whether arguments came; whether it
    /// is the JSON-mode tool, streamed as text.
    Tool {
        index: u32,
        arguments: bool,
        json: bool,
    },
    Thinking {
        thinking: String,
        signature: String,
    },
    Redacted {
        data: String,
    },
    Other,
}

struct Stream {
    writer: StreamWriter,
    /// Open blocks by Anthropic's index.
    open: Vec<(u32, Open)>,
    /// Tool calls started (OpenAI's tool call index is the position among them).
    tools: u32,
    /// The JSON-mode tool was streamed as text.
    json_text: bool,
    usage: UsageOut,
    stop_reason: Option<String>,
    /// message_stop came: the stream is complete.
    done: bool,
}

impl Stream {
    fn new(writer: StreamWriter) -> Stream {
        Stream {
            writer,
            open: Vec::new(),
            tools: 0,
            json_text: false,
            usage: UsageOut::default(),
            stop_reason: None,
            done: false,
        }
    }

    fn frame(
        &mut self,
        ctx: &Ctx,
        json_mode: bool,
        frame: &Frame,
        out: &mut Vec<u8>,
    ) -> Result<(), ApiError> {
        if self.done {
            return Ok(());
        }
        let event: Event = serde_json::from_str(&frame.data)
            .map_err(|e| bad_answer(ctx, format!("a stream event: {e}")))?;
        match event {
            Event::MessageStart { message } => {
                self.writer.set_id(&message.id);
                self.usage.update(message.usage);
                self.writer.usage(self.usage.to_openai());
            }
            Event::ContentBlockStart {
                index,
                content_block,
            } => {
                let open = match content_block {
                    BlockOut::Text { text } => {
                        self.writer.text(out, &text);
                        Open::Text
                    }
                    BlockOut::ToolUse { name, .. } if json_mode && name == JSON_TOOL => {
                        self.json_text = true;
                        Open::Tool {
                            index: 0,
                            arguments: false,
                            json: true,
                        }
                    }
                    BlockOut::ToolUse { id, name, .. } => {
                        let index = self.tools;
                        self.tools += 1;
                        self.writer.tool_call_start(out, index, &id, &name);
                        Open::Tool {
                            index,
                            arguments: false,
                            json: false,
                        }
                    }
                    BlockOut::Thinking {
                        thinking,
                        signature,
                    } => {
                        self.writer.reasoning(out, &thinking);
                        Open::Thinking {
                            thinking,
                            signature,
                        }
                    }
                    BlockOut::RedactedThinking { data } => Open::Redacted { data },
                    BlockOut::Other => Open::Other,
                };
                self.open.retain(|(i, _)| *i != index);
                self.open.push((index, open));
            }
            Event::ContentBlockDelta { index, delta } => {
                let Some((_, open)) = self.open.iter_mut().find(|(i, _)| *i == index) else {
                    return Err(bad_answer(
                        ctx,
                        format!("a delta for content block {index}, which never started"),
                    ));
                };
                match (open, delta) {
                    (_, DeltaIn::TextDelta { text }) => self.writer.text(out, &text),
                    (
                        Open::Tool {
                            index,
                            arguments,
                            json,
                        },
                        DeltaIn::InputJsonDelta { partial_json },
                    ) => {
                        *arguments |= !partial_json.is_empty();
                        if *json {
                            self.writer.text(out, &partial_json);
                        } else {
                            self.writer.tool_call_arguments(out, *index, &partial_json);
                        }
                    }
                    (Open::Thinking { thinking, .. }, DeltaIn::ThinkingDelta { thinking: t }) => {
                        self.writer.reasoning(out, &t);
                        thinking.push_str(&t);
                    }
                    (
                        Open::Thinking { signature, .. },
                        DeltaIn::SignatureDelta { signature: s },
                    ) => {
                        signature.push_str(&s);
                    }
                    _ => {}
                }
            }
            Event::ContentBlockStop { index } => {
                let Some(at) = self.open.iter().position(|(i, _)| *i == index) else {
                    return Ok(());
                };
                match self.open.remove(at).1 {
                    // A call without arguments: "{}", which every client can parse.
                    Open::Tool {
                        arguments: false,
                        json: true,
                        ..
                    } => self.writer.text(out, "{}"),
                    Open::Tool {
                        index,
                        arguments: false,
                        json: false,
                    } => self.writer.tool_call_arguments(out, index, "{}"),
                    Open::Thinking {
                        thinking,
                        signature,
                    } => self.writer.thinking_block(
                        out,
                        &json!({"type": "thinking", "thinking": thinking, "signature": signature}),
                    ),
                    Open::Redacted { data } => self
                        .writer
                        .thinking_block(out, &json!({"type": "redacted_thinking", "data": data})),
                    _ => {}
                }
            }
            Event::MessageDelta { delta, usage } => {
                if delta.stop_reason.is_some() {
                    self.stop_reason = delta.stop_reason;
                }
                if let Some(usage) = usage {
                    self.usage.update(usage);
                    self.writer.usage(self.usage.to_openai());
                }
            }
            Event::MessageStop => {
                let mut reason = finish_reason(self.stop_reason.as_deref());
                // JSON mode: the forced tool was the answer, written as text.
                if self.json_text && self.tools == 0 && reason == "tool_calls" {
                    reason = "stop";
                }
                self.writer.finish(reason);
                self.writer.end(out);
                self.done = true;
            }
            Event::Error { error } => return Err(stream_error(ctx, &error)),
            Event::Ping | Event::Other => {}
        }
        Ok(())
    }
}

/// An error event in the stream: the status Anthropic gives that error type over HTTP.
fn stream_error(ctx: &Ctx, error: &ErrorIn) -> ApiError {
    let status = match error.kind.as_str() {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    };
    let message = if error.message.is_empty() {
        error.kind.as_str()
    } else {
        error.message.as_str()
    };
    provider_error(ctx, status, &[], message)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::providers::tests::{ctx, ctx_for};
    use crate::providers::Credentials;
    use switchyard_config::Provider;

    fn request(body: Value) -> Result<(ProviderRequest, Value), ApiError> {
        request_with(body, "", false)
    }

    fn request_with(
        body: Value,
        base: &str,
        drop_params: bool,
    ) -> Result<(ProviderRequest, Value), ApiError> {
        let (mut d, i) = ctx_for(Provider::Anthropic, Endpoint::ChatCompletions, base);
        d.model = "claude-sonnet-4-5-20250929".into();
        let key = Credentials::Key("sk-ant-test".into());
        let mut c = ctx(&d, &i, &key);
        c.drop_params = drop_params;
        let r = Anthropic::default().request(&c, body.to_string().as_bytes())?;
        let v = serde_json::from_slice(&r.body).unwrap();
        Ok((r, v))
    }

    fn msgs(v: Value) -> Value {
        json!({"model": "fast", "messages": v})
    }

    #[test]
    fn path_headers_and_an_api_base_ending_in_v1() {
        let (r, v) = request(msgs(json!([{"role": "user", "content": "hi"}]))).unwrap();
        assert_eq!(r.path, "/v1/messages");
        assert_eq!(
            r.headers,
            [
                ("x-api-key".to_string(), "sk-ant-test".to_string()),
                ("anthropic-version".to_string(), "2023-06-01".to_string())
            ]
        );
        assert_eq!(v["max_tokens"], 64_000, "the model's max output");
        assert_eq!(v["messages"][0]["content"][0]["text"], "hi");
        let (r, _) = request_with(
            msgs(json!([{"role": "user", "content": "hi"}])),
            "/v1",
            false,
        )
        .unwrap();
        assert_eq!(r.path, "/v1/messages");
        let (r, _) = request_with(
            msgs(json!([{"role": "user", "content": "hi"}])),
            "/anthropic",
            false,
        )
        .unwrap();
        assert_eq!(r.path, "/anthropic/v1/messages");
    }

    #[test]
    fn max_tokens_defaults_by_model_family() {
        assert_eq!(default_max_tokens("claude-3-haiku-20240307"), 4096);
        assert_eq!(default_max_tokens("claude-3-5-haiku-20241022"), 8192);
        assert_eq!(default_max_tokens("claude-3-7-sonnet-20250219"), 64_000);
        assert_eq!(default_max_tokens("claude-opus-4-1-20250805"), 32_000);
        assert_eq!(default_max_tokens("claude-opus-4-5-20251101"), 64_000);
        assert_eq!(default_max_tokens("claude-haiku-4-5"), 64_000);
        assert_eq!(default_max_tokens("my-fine-tune"), 4096);
        // A thinking budget without max_tokens: the budget plus 4096, as LiteLLM.
        let (_, v) = request(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "reasoning_effort": "medium"}),
        )
        .unwrap();
        assert_eq!(
            v["thinking"],
            json!({"type": "enabled", "budget_tokens": 2048})
        );
        assert_eq!(v["max_tokens"], 2048 + 4096);
        let (_, v) = request(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "max_completion_tokens": 10, "max_tokens": 20}),
        )
        .unwrap();
        assert_eq!(v["max_tokens"], 10);
    }

    #[test]
    fn system_lifted_turns_merged_and_tools_mapped() {
        let (_, v) = request(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "weather in Paris and Rome?"},
                {"role": "developer", "content": "use tools"},
                {"role": "user", "content": "please"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "21C"}]},
                {"role": "user", "content": "thanks"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"properties": {"city": {"type": "string"}}}}}],
            "tool_choice": "required",
            "parallel_tool_calls": false,
            "stop": "END",
            "user": "user-42",
            "top_k": 5
        }))
        .unwrap();
        assert_eq!(
            v["system"],
            json!([{"type": "text", "text": "be brief"}, {"type": "text", "text": "use tools"}])
        );
        let roles: Vec<&str> = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "assistant", "user"]);
        assert_eq!(v["messages"][0]["content"].as_array().unwrap().len(), 2);
        assert_eq!(
            v["messages"][1]["content"][1],
            json!({"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}})
        );
        assert_eq!(
            v["messages"][2]["content"],
            json!([
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "21C"}]},
                {"type": "text", "text": "thanks"}
            ])
        );
        assert_eq!(
            v["tools"][0]["input_schema"],
            json!({"type": "object", "properties": {"city": {"type": "string"}}})
        );
        assert_eq!(
            v["tool_choice"],
            json!({"type": "any", "disable_parallel_tool_use": true})
        );
        assert_eq!(v["stop_sequences"], json!(["END"]));
        assert_eq!(v["metadata"], json!({"user_id": "user-42"}));
        assert_eq!(v["top_k"], 5);
    }

    #[test]
    fn tool_choice_as_litellm_maps_it() {
        let named = ToolChoice::Named {
            kind: "function".into(),
            function: crate::openai::NamedFunction { name: "f".into() },
        };
        assert_eq!(
            tool_choice(Some(&named), Some(true)).unwrap(),
            Some(ToolChoiceOut {
                kind: "tool",
                name: Some("f"),
                disable_parallel_tool_use: Some(false)
            })
        );
        let none = ToolChoice::Mode("none".into());
        assert_eq!(
            tool_choice(Some(&none), Some(false))
                .unwrap()
                .unwrap()
                .disable_parallel_tool_use,
            None
        );
        assert_eq!(
            tool_choice(None, Some(false)).unwrap().unwrap().kind,
            "auto"
        );
        assert!(tool_choice(Some(&ToolChoice::Mode("sometimes".into())), None).is_err());
        // Tool calls in the conversation need the tools.
        let e = request(msgs(json!([
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "t", "content": "1"}
        ])))
        .unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("tools"), "{}", e.message);
    }

    #[test]
    fn images_cache_control_and_thinking_blocks_round_trip() {
        let (_, v) = request(msgs(json!([
            {"role": "system", "content": [{"type": "text", "text": "long doc", "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": "https://example.com/cat.jpg"},
                {"type": "text", "text": "what is it?"}]},
            {"role": "assistant", "content": "a cat", "thinking_blocks": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig=="},
                {"type": "redacted_thinking", "data": "opaque"}]},
            {"role": "user", "content": "sure?", "cache_control": {"type": "ephemeral"}}
        ])))
        .unwrap();
        assert_eq!(
            v["system"],
            json!([{"type": "text", "text": "long doc", "cache_control": {"type": "ephemeral"}}])
        );
        assert_eq!(
            v["messages"][0]["content"][0]["source"],
            json!({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="})
        );
        assert_eq!(
            v["messages"][0]["content"][1]["source"],
            json!({"type": "url", "url": "https://example.com/cat.jpg"})
        );
        assert_eq!(
            v["messages"][1]["content"],
            json!([
                {"type": "thinking", "thinking": "hmm", "signature": "sig=="},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "a cat"}
            ])
        );
        assert_eq!(
            v["messages"][2]["content"][0]["cache_control"],
            json!({"type": "ephemeral"})
        );
        let e = request(msgs(json!([{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}])))
        .unwrap_err();
        assert_eq!(e.status, 400);
        let e = request(msgs(json!([{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]}])))
        .unwrap_err();
        assert!(e.message.contains("input_audio"), "{}", e.message);
    }

    #[test]
    fn unsupported_parameters_refused_or_dropped_and_litellm_fields_kept_back() {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "presence_penalty": 0.5, "seed": 7, "n": 1, "logprobs": false,
            "metadata": {"user_id": "u-1", "trace": "t"}, "tags": ["a"]});
        let e = request(body.clone()).unwrap_err();
        assert_eq!(
            (e.status, e.param.as_deref()),
            (400, Some("presence_penalty"))
        );
        assert!(
            e.message.contains("UnsupportedParamsError"),
            "{}",
            e.message
        );
        let (_, v) = request_with(body, "", true).unwrap();
        assert!(v.get("presence_penalty").is_none() && v.get("seed").is_none());
        assert!(v.get("n").is_none() && v.get("tags").is_none());
        assert_eq!(v["metadata"], json!({"user_id": "u-1"}));
        let e = request(json!({"model": "m", "messages": [], "system": "x"})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("system"));
        let e = request(json!({"model": "m", "messages": [], "service_tier": "flex"})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("service_tier"));
        let (_, v) =
            request(json!({"model": "m", "messages": [], "service_tier": "auto"})).unwrap();
        assert_eq!(v["service_tier"], "auto");
        assert!(valid_user_id("user-42") && valid_user_id("5f0c2a"));
        assert!(!valid_user_id("a@b.com") && !valid_user_id("+1 (555) 123-4567"));
    }

    #[test]
    fn json_mode_forces_the_tool_and_answers_its_input() {
        let (d, i) = ctx_for(Provider::Anthropic, Endpoint::ChatCompletions, "");
        let key = Credentials::Key("k".into());
        let c = ctx(&d, &i, &key);
        let mut t = Anthropic::default();
        let r = t
            .request(
                &c,
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                    "response_format": {"type": "json_schema", "json_schema": {"name": "p",
                        "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}}})
                .to_string()
                .as_bytes(),
            )
            .unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            v["tool_choice"],
            json!({"type": "tool", "name": "json_tool_call"})
        );
        assert_eq!(v["tools"][0]["name"], "json_tool_call");
        let out = t
            .response(
                &c,
                br#"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"tool_use","id":"toolu_1","name":"json_tool_call","input":{"a":1}}],"stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4}}"#,
            )
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "{\"a\":1}");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert!(v["choices"][0]["message"].get("tool_calls").is_none());
    }

    #[test]
    fn usage_counts_cache_writes_and_reads_in_the_prompt() {
        let u: UsageOut = serde_json::from_value(json!({"input_tokens": 10, "output_tokens": 5,
            "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000,
            "output_tokens_details": {"thinking_tokens": 3}}))
        .unwrap();
        let u = u.to_openai();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (1110, 5, 1115)
        );
        assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, 1000);
        assert_eq!(u.completion_tokens_details.unwrap().reasoning_tokens, 3);
        assert_eq!(
            (u.cache_creation_input_tokens, u.cache_read_input_tokens),
            (Some(100), Some(1000))
        );
        assert_eq!(finish_reason(Some("refusal")), "content_filter");
        assert_eq!(finish_reason(Some("stop_sequence")), "stop");
        assert_eq!(finish_reason(Some("max_tokens")), "length");
        assert_eq!(finish_reason(None), "stop");
    }

    fn stream(t: &mut Anthropic, c: &Ctx, events: &[Value]) -> (String, Result<(), ApiError>) {
        let mut out = Vec::new();
        let mut result = Ok(());
        for e in events {
            let frame = Frame {
                event: e["type"].as_str().map(str::to_string),
                data: e.to_string(),
                exception: false,
            };
            result = t.stream_frame(c, &frame, &mut out);
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = t.stream_end(c, &mut out);
        }
        (String::from_utf8(out).unwrap(), result)
    }

    #[test]
    fn stream_tool_calls_are_indexed_among_tools_and_a_cut_is_an_error() {
        let (d, mut i) = ctx_for(Provider::Anthropic, Endpoint::ChatCompletions, "");
        i.stream = true;
        let key = Credentials::Key("k".into());
        let c = ctx(&d, &i, &key);
        let mut t = Anthropic::default();
        t.request(
            &c,
            br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}],
                "tools":[{"type":"function","function":{"name":"now"}}]}"#,
        )
        .unwrap();
        let events = [
            json!({"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 9, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me check."}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 20}}),
        ];
        let (out, result) = stream(&mut t, &c, &events);
        assert!(result.is_err(), "no message_stop: cut");
        assert!(
            out.contains(r#""tool_calls":[{"index":0,"id":"toolu_1""#),
            "{out}"
        );
        assert!(out.contains(r#""arguments":"{}""#), "{out}");
        assert_eq!(t.stream_usage().map(|u| u.total_tokens), Some(29));
        let (out, result) = stream(&mut t, &c, &[json!({"type": "message_stop"})]);
        assert!(result.is_ok());
        assert!(out.contains(r#""finish_reason":"tool_calls""#), "{out}");
        assert!(out.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn stream_in_json_mode_writes_the_forced_tool_as_text() {
        let (d, mut i) = ctx_for(Provider::Anthropic, Endpoint::ChatCompletions, "");
        i.stream = true;
        let key = Credentials::Key("k".into());
        let c = ctx(&d, &i, &key);
        let mut t = Anthropic::default();
        t.request(
            &c,
            br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}],
                "response_format":{"type":"json_object"}}"#,
        )
        .unwrap();
        let events = [
            json!({"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 9}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "json_tool_call", "input": {}}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"a\": "}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}}),
            json!({"type": "message_stop"}),
        ];
        let (out, result) = stream(&mut t, &c, &events);
        assert!(result.is_ok());
        assert!(!out.contains("tool_calls"), "{out}");
        assert!(out.contains(r#""content":"{\"a\": ""#), "{out}");
        assert!(out.contains(r#""finish_reason":"stop""#), "{out}");
    }

    #[test]
    fn stream_error_events_fail_with_the_status_of_their_type() {
        let (d, mut i) = ctx_for(Provider::Anthropic, Endpoint::ChatCompletions, "");
        i.stream = true;
        let key = Credentials::Key("k".into());
        let c = ctx(&d, &i, &key);
        let mut t = Anthropic::default();
        t.request(
            &c,
            br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}"#,
        )
        .unwrap();
        let (_, result) = stream(
            &mut t,
            &c,
            &[
                json!({"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 1}}}),
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            ],
        );
        let e = result.unwrap_err();
        assert_eq!(e.status, 503);
        assert!(e.message.contains("Overloaded"), "{}", e.message);
    }

    #[test]
    fn errors_keep_the_message_and_retry_after() {
        let (d, i) = ctx_for(Provider::Anthropic, Endpoint::ChatCompletions, "");
        let c = ctx(&d, &i, &Credentials::None);
        let t = Anthropic::default();
        let e = t.error(
            &c,
            429,
            &[("retry-after".into(), "12".into())],
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#,
        );
        assert_eq!((e.status, e.retry_after_s), (429, Some(12)));
        assert!(e.message.contains("per-minute rate limit"), "{}", e.message);
        let e = t.error(
            &c,
            400,
            &[],
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"}}"#,
        );
        assert!(
            e.message.contains("ContextWindowExceededError"),
            "{}",
            e.message
        );
        // The prompt fits, but not with max_tokens (Claude 3.7 and later refuse, not shrink).
        let e = t.error(
            &c,
            400,
            &[],
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000, decrease input length or `max_tokens` and try again"}}"#,
        );
        assert!(
            e.message.contains("ContextWindowExceededError"),
            "{}",
            e.message
        );
        assert_eq!(t.error(&c, 529, &[], b"").status, 503);
    }
}
