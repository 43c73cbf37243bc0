//! Anthropic's Messages API as clients speak it (`POST /v1/messages`: Claude Code, the
//! anthropic SDKs), bridged to the OpenAI chat format every translator takes, and the
//! answers back: a request to a chat request, a chat answer to a message, chat chunks to
//! Anthropic's event sequence, an error to Anthropic's error shape.
//!
//! (Anthropic deployments are bridged too for now, through their chat translator; passing
//! the client's body to them untouched, so nothing is lost, comes next.)

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{message, ChatSink, StreamBridge};
use crate::error::ApiError;
use crate::openai::{
    ChatRequest, Content, FunctionCall, FunctionDef, ImageUrl, Message, NamedFunction, Part, Role,
    Stop, StreamOptions, Tool, ToolCall, ToolChoice,
};

/// A Messages API request. Fields Switchyard does not map are kept (`extra`) and passed on
/// as chat parameters of the same name.
#[derive(Debug, Deserialize)]
pub struct MessagesRequest {
    pub model: String,
    pub messages: Vec<InMessage>,
    #[serde(default)]
    pub system: Option<InContent>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub tools: Option<Vec<InTool>>,
    #[serde(default)]
    pub tool_choice: Option<InToolChoice>,
    #[serde(default)]
    pub metadata: Option<InMetadata>,
    #[serde(default)]
    pub thinking: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
pub struct InMessage {
    pub role: InRole,
    pub content: InContent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InRole {
    User,
    Assistant,
}

/// A string, or content blocks.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum InContent {
    Text(String),
    Blocks(Vec<InBlock>),
}

impl InContent {
    fn blocks(self) -> Vec<InBlock> {
        match self {
            InContent::Text(text) => vec![InBlock::Text {
                text,
                rest: Map::new(),
            }],
            InContent::Blocks(b) => b,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InBlock {
    Text {
        text: String,
        /// `cache_control` and the like, kept on the part.
        #[serde(flatten)]
        rest: Map<String, Value>,
    },
    Image {
        source: InSource,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default)]
        content: Option<InContent>,
        #[serde(default)]
        is_error: bool,
    },
    Thinking {
        thinking: String,
        #[serde(default)]
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InSource {
    Base64 { media_type: String, data: String },
    Url { url: String },
}

#[derive(Debug, Deserialize)]
pub struct InTool {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub input_schema: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct InToolChoice {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub disable_parallel_tool_use: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct InMetadata {
    #[serde(default)]
    pub user_id: Option<String>,
}

/// A Messages request as the chat request every translator takes. Refuses, with a 400 that
/// names the block, what a chat request cannot carry.
pub fn to_chat(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let req: MessagesRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid Messages API request: {e}")))?;
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = req.system {
        let parts = text_parts(system.blocks(), "system")?;
        messages.push(message(Role::System, Some(Content::Parts(parts))));
    }
    for (i, m) in req.messages.into_iter().enumerate() {
        match m.role {
            InRole::User => user_turn(m.content.blocks(), i, &mut messages)?,
            InRole::Assistant => messages.push(assistant_turn(m.content.blocks(), i)?),
        }
    }
    let stream = req.stream.unwrap_or(false);
    let mut out = ChatRequest {
        model: req.model,
        messages,
        stream: Some(stream).filter(|s| *s),
        // Anthropic's message_delta carries the usage: the chunks must have it.
        stream_options: stream.then_some(StreamOptions {
            include_usage: Some(true),
        }),
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req.stop_sequences.map(Stop::Many),
        thinking: req.thinking,
        user: req.metadata.and_then(|m| m.user_id),
        extra: req.extra,
        ..ChatRequest::default()
    };
    if let Some(tools) = req.tools {
        out.tools = Some(
            tools
                .into_iter()
                .map(|t| Tool {
                    kind: "function".into(),
                    function: FunctionDef {
                        name: t.name,
                        description: t.description,
                        parameters: t.input_schema,
                        strict: None,
                    },
                    extra: Map::new(),
                })
                .collect(),
        );
    }
    if let Some(choice) = req.tool_choice {
        out.parallel_tool_calls = choice.disable_parallel_tool_use.map(|d| !d);
        out.tool_choice = Some(match (choice.kind.as_str(), choice.name) {
            ("auto", _) => ToolChoice::Mode("auto".into()),
            ("any", _) => ToolChoice::Mode("required".into()),
            ("none", _) => ToolChoice::Mode("none".into()),
            ("tool", Some(name)) => ToolChoice::Named {
                kind: "function".into(),
                function: NamedFunction { name },
            },
            (other, _) => {
                return Err(ApiError::bad_request(format!(
                    "tool_choice.type {other:?} is not one of auto, any, tool (with a name), none"
                ))
                .with_param("tool_choice"))
            }
        });
    }
    Ok(out)
}

fn unsupported(block: &str, at: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{at}: a {block} block cannot be sent to this provider through the Messages API bridge"
    ))
}

/// Text blocks (a system prompt, a tool result) as chat parts.
fn text_parts(blocks: Vec<InBlock>, at: &str) -> Result<Vec<Part>, ApiError> {
    blocks
        .into_iter()
        .map(|b| match b {
            InBlock::Text { text, rest } => Ok(text_part(text, rest)),
            InBlock::Image { source } => Ok(image_part(source)),
            _ => Err(unsupported("non-text", at)),
        })
        .collect()
}

fn text_part(text: String, rest: Map<String, Value>) -> Part {
    Part {
        kind: "text".into(),
        text: Some(text),
        image_url: None,
        extra: rest,
    }
}

fn image_part(source: InSource) -> Part {
    let url = match source {
        InSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        InSource::Url { url } => url,
    };
    Part {
        kind: "image_url".into(),
        text: None,
        image_url: Some(ImageUrl::Url(url)),
        extra: Map::new(),
    }
}

/// A user turn: its tool results become tool messages (first, as the calls they answer came
/// just before), the rest one user message.
fn user_turn(blocks: Vec<InBlock>, i: usize, out: &mut Vec<Message>) -> Result<(), ApiError> {
    let at = format!("messages[{i}]");
    let mut parts = Vec::new();
    for b in blocks {
        match b {
            InBlock::Text { text, rest } => parts.push(text_part(text, rest)),
            InBlock::Image { source } => parts.push(image_part(source)),
            InBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => {
                let mut text = match content {
                    None => String::new(),
                    Some(c) => Content::Parts(text_parts(c.blocks(), &at)?).text(),
                };
                if is_error {
                    text = format!("Error: {text}");
                }
                let mut m = message(Role::Tool, Some(Content::Text(text)));
                m.tool_call_id = Some(tool_use_id);
                out.push(m);
            }
            InBlock::ToolUse { .. } => return Err(unsupported("tool_use", &at)),
            InBlock::Thinking { .. } | InBlock::RedactedThinking { .. } => {
                return Err(unsupported("thinking", &at))
            }
            InBlock::Other => return Err(unsupported("unknown", &at)),
        }
    }
    if !parts.is_empty() {
        out.push(message(Role::User, Some(Content::Parts(parts))));
    }
    Ok(())
}

/// An assistant turn: text, tool calls, and thinking blocks (as LiteLLM's `thinking_blocks`,
/// which the translators that take thinking read back).
fn assistant_turn(blocks: Vec<InBlock>, i: usize) -> Result<Message, ApiError> {
    let at = format!("messages[{i}]");
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut thinking = Vec::new();
    for b in blocks {
        match b {
            InBlock::Text { text: t, .. } => text.push_str(&t),
            InBlock::ToolUse { id, name, input } => calls.push(ToolCall {
                id,
                kind: "function".into(),
                function: FunctionCall {
                    name,
                    arguments: input.to_string(),
                },
            }),
            InBlock::Thinking {
                thinking: t,
                signature,
            } => thinking.push(json!({"type": "thinking", "thinking": t, "signature": signature})),
            InBlock::RedactedThinking { data } => {
                thinking.push(json!({"type": "redacted_thinking", "data": data}))
            }
            InBlock::Image { .. } | InBlock::ToolResult { .. } | InBlock::Other => {
                return Err(unsupported("non-text", &at))
            }
        }
    }
    let mut m = message(
        Role::Assistant,
        (!text.is_empty() || calls.is_empty()).then_some(Content::Text(text)),
    );
    if !calls.is_empty() {
        m.tool_calls = Some(calls);
    }
    if !thinking.is_empty() {
        m.extra
            .insert("thinking_blocks".into(), Value::Array(thinking));
    }
    Ok(m)
}

/// Anthropic's stop reason for a chat finish reason.
fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// A message id as Anthropic writes them.
fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_string()
    } else {
        format!("msg_{id}")
    }
}

/// Anthropic's usage from a chat usage (`prompt_tokens` include cached ones; Anthropic
/// counts them apart).
fn usage(u: Option<&Value>) -> Value {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let prompt = n(u.and_then(|u| u.get("prompt_tokens")));
    let cached = n(u.and_then(|u| u.pointer("/prompt_tokens_details/cached_tokens")));
    json!({
        "input_tokens": prompt.saturating_sub(cached),
        "output_tokens": n(u.and_then(|u| u.get("completion_tokens"))),
        "cache_read_input_tokens": cached,
    })
}

/// A chat answer (OpenAI JSON) as a Messages API answer for `model`.
pub fn from_answer(answer: &[u8], model: &str) -> Result<Vec<u8>, ApiError> {
    let a: Value = serde_json::from_slice(answer)
        .map_err(|e| ApiError::internal(format!("the provider's answer did not parse: {e}")))?;
    let choice = a.pointer("/choices/0").cloned().unwrap_or(Value::Null);
    let msg = choice.get("message").cloned().unwrap_or(Value::Null);
    let mut content = Vec::new();
    for t in msg
        .get("thinking_blocks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        content.push(t.clone());
    }
    if let Some(text) = msg
        .get("content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let args = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}");
        content.push(json!({
            "type": "tool_use",
            "id": call.get("id").cloned().unwrap_or(Value::Null),
            "name": call.pointer("/function/name").cloned().unwrap_or(Value::Null),
            // Arguments a model wrote that are not JSON still reach the client, as a string.
            "input": serde_json::from_str::<Value>(args).unwrap_or_else(|_| Value::String(args.into())),
        }));
    }
    let out = json!({
        "id": message_id(a.get("id").and_then(Value::as_str).unwrap_or("switchyard")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason").and_then(Value::as_str)),
        "stop_sequence": null,
        "usage": usage(a.get("usage")),
    });
    serde_json::to_vec(&out).map_err(|e| ApiError::internal(e.to_string()))
}

/// An error in Anthropic's shape, so the anthropic SDK raises the matching exception.
pub fn error_body(e: &ApiError) -> Vec<u8> {
    let kind = match e.status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 | 503 => "overloaded_error",
        _ => "api_error",
    };
    let body = json!({"type": "error", "error": {"type": kind, "message": e.message}});
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Tokens an image or a document is counted as (their bytes say little of their tokens).
const MEDIA_TOKENS: u64 = 1_000;

/// `/v1/messages/count_tokens` for a model whose deployments cannot count: an estimate from
/// the text of the system prompt, the messages and the tools (about four characters a
/// token, a few tokens a message, a flat count per image or document), in Anthropic's
/// answer shape.
pub fn estimate_tokens(body: &[u8]) -> Vec<u8> {
    fn walk(v: &Value, chars: &mut u64, media: &mut u64) {
        match v {
            Value::String(s) => *chars += s.chars().count() as u64,
            Value::Array(items) => items.iter().for_each(|i| walk(i, chars, media)),
            Value::Object(o) => match o.get("type").and_then(Value::as_str) {
                Some("image" | "document") => *media += 1,
                _ => o
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "type" | "cache_control" | "id"))
                    .for_each(|(_, v)| walk(v, chars, media)),
            },
            _ => {}
        }
    }
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let (mut chars, mut media) = (0, 0);
    for field in ["system", "messages", "tools"] {
        if let Some(v) = request.get(field) {
            walk(v, &mut chars, &mut media);
        }
    }
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .map_or(0, |m| m.len() as u64);
    let tokens = chars.div_ceil(4) + 3 * messages + MEDIA_TOKENS * media;
    serde_json::to_vec(&json!({ "input_tokens": tokens })).unwrap_or_default()
}

/// An OpenAI model list (`/v1/models`) as Anthropic's, for clients that send
/// `anthropic-version` (Claude Code lists models this way).
pub fn models_list(openai_list: &[u8]) -> Vec<u8> {
    let list: Value = serde_json::from_slice(openai_list).unwrap_or(Value::Null);
    let data: Vec<Value> = list
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("id").and_then(Value::as_str))
        .map(|id| {
            json!({"type": "model", "id": id, "display_name": id, "created_at": "2023-03-01T00:00:00Z"})
        })
        .collect();
    let first = data.first().map(|m| m["id"].clone()).unwrap_or(Value::Null);
    let last = data.last().map(|m| m["id"].clone()).unwrap_or(Value::Null);
    serde_json::to_vec(
        &json!({"data": data, "has_more": false, "first_id": first, "last_id": last}),
    )
    .unwrap_or_default()
}

/// Which block is open in the stream being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    /// A tool call: its index in the chat chunks.
    Tool(u64),
}

/// Chat chunks (the OpenAI SSE a translator writes) to Anthropic's event sequence:
/// message_start, content_block_start / _delta / _stop per block, message_delta with the
/// stop reason and usage, message_stop; a chat error event becomes an `error` event.
pub fn stream(model: &str) -> StreamBridge {
    StreamBridge::new(Box::new(Events {
        model: model.to_string(),
        open: None,
        next_index: 0,
    }))
}

/// What the Anthropic stream has written so far.
#[derive(Debug)]
struct Events {
    model: String,
    open: Option<Open>,
    /// The index of the open (or next) content block.
    next_index: u64,
}

impl ChatSink for Events {
    fn start(&mut self, id: Option<&str>, out: &mut Vec<u8>) {
        let start = json!({
            "type": "message_start",
            "message": {
                "id": message_id(id.unwrap_or("switchyard")),
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            },
        });
        emit(out, "message_start", &start);
        // Anthropic's streams carry pings; the first follows message_start.
        emit(out, "ping", &json!({"type": "ping"}));
    }

    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        let block = json!({"type": "thinking", "thinking": ""});
        self.open_block(Open::Thinking, block, out);
        self.delta(json!({"type": "thinking_delta", "thinking": text}), out);
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        self.open_block(Open::Text, json!({"type": "text", "text": ""}), out);
        self.delta(json!({"type": "text_delta", "text": text}), out);
    }

    fn tool_call(&mut self, call: &Value, out: &mut Vec<u8>) {
        let i = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        if self.open != Some(Open::Tool(i)) {
            let block = json!({
                "type": "tool_use",
                "id": call.get("id").cloned().unwrap_or(Value::Null),
                "name": call.pointer("/function/name").cloned().unwrap_or(Value::Null),
                "input": {},
            });
            self.open_block(Open::Tool(i), block, out);
        }
        if let Some(args) = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            let delta = json!({"type": "input_json_delta", "partial_json": args});
            self.delta(delta, out);
        }
    }

    fn error(&mut self, err: &Value, out: &mut Vec<u8>) {
        let status = err
            .get("code")
            .and_then(|c| c.as_str().and_then(|s| s.parse().ok()).or(c.as_u64()))
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(500);
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("error");
        let e = ApiError::new(status, "api_error", message);
        out.extend_from_slice(b"event: error\ndata: ");
        out.extend_from_slice(&error_body(&e));
        out.extend_from_slice(b"\n\n");
    }

    fn end(&mut self, finish: Option<&str>, chat_usage: Option<&Value>, out: &mut Vec<u8>) {
        self.close(out);
        let delta = json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(finish), "stop_sequence": null},
            "usage": usage(chat_usage),
        });
        emit(out, "message_delta", &delta);
        emit(out, "message_stop", &json!({"type": "message_stop"}));
    }
}

impl Events {
    fn open_block(&mut self, kind: Open, block: Value, out: &mut Vec<u8>) {
        if self.open == Some(kind) {
            return;
        }
        self.close(out);
        let start = json!({"type": "content_block_start", "index": self.next_index, "content_block": block});
        emit(out, "content_block_start", &start);
        self.open = Some(kind);
    }

    fn delta(&self, delta: Value, out: &mut Vec<u8>) {
        let event =
            json!({"type": "content_block_delta", "index": self.next_index, "delta": delta});
        emit(out, "content_block_delta", &event);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open.take().is_some() {
            let stop = json!({"type": "content_block_stop", "index": self.next_index});
            emit(out, "content_block_stop", &stop);
            self.next_index += 1;
        }
    }
}

fn emit(out: &mut Vec<u8>, event: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(&serde_json::to_vec(data).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_request_with_system_tools_results_and_images_becomes_a_chat_request() {
        let body = json!({
            "model": "claude-sonnet",
            "max_tokens": 1024,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this picture, and the weather?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "I should call the tool.", "signature": "sig"},
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {"type": "text", "text": "Thanks"},
                ]},
            ],
            "tools": [{"name": "weather", "description": "Weather now", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "stop_sequences": ["END"],
            "metadata": {"user_id": "u-1"},
            "top_k": 5,
            "stream": true,
        });
        let chat = to_chat(&serde_json::to_vec(&body).unwrap()).unwrap();
        let v = serde_json::to_value(&chat).unwrap();
        assert_eq!(v["messages"][0]["role"], "system");
        assert_eq!(
            v["messages"][0]["content"][0]["cache_control"]["type"],
            "ephemeral"
        );
        assert_eq!(
            v["messages"][1]["content"][1]["image_url"],
            "data:image/png;base64,iVBO"
        );
        let assistant = &v["messages"][2];
        assert_eq!(assistant["content"], "Let me look.");
        assert_eq!(
            assistant["tool_calls"][0]["function"]["arguments"],
            r#"{"city":"Paris"}"#
        );
        assert_eq!(assistant["thinking_blocks"][0]["signature"], "sig");
        assert_eq!(v["messages"][3]["role"], "tool");
        assert_eq!(v["messages"][3]["tool_call_id"], "toolu_1");
        assert_eq!(v["messages"][3]["content"], "18C");
        assert_eq!(v["messages"][4]["content"][0]["text"], "Thanks");
        assert_eq!(v["tools"][0]["function"]["parameters"]["type"], "object");
        assert_eq!(v["tool_choice"], "required");
        assert_eq!(v["parallel_tool_calls"], false);
        assert_eq!(v["stop"], json!(["END"]));
        assert_eq!(v["user"], "u-1");
        assert_eq!(v["top_k"], 5, "unknown fields flow on");
        assert_eq!(v["stream_options"]["include_usage"], true);
    }

    #[test]
    fn what_a_chat_request_cannot_carry_is_a_clear_400() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":[{"type":"tool_use","id":"x","name":"f","input":{}}]}]}"#;
        let e = to_chat(body).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(
            e.message.contains("messages[0]") && e.message.contains("tool_use"),
            "{}",
            e.message
        );
        assert_eq!(to_chat(b"{}").unwrap_err().status, 400);
    }

    #[test]
    fn a_chat_answer_becomes_a_message() {
        let answer = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Checking.",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}],
            }}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37, "prompt_tokens_details": {"cached_tokens": 10}},
        });
        let m: Value = serde_json::from_slice(
            &from_answer(&serde_json::to_vec(&answer).unwrap(), "claude-x").unwrap(),
        )
        .unwrap();
        assert_eq!(m["id"], "msg_chatcmpl-1");
        assert_eq!(
            (m["type"].as_str(), m["model"].as_str()),
            (Some("message"), Some("claude-x"))
        );
        assert_eq!(
            m["content"][0],
            json!({"type": "text", "text": "Checking."})
        );
        assert_eq!(m["content"][1]["input"], json!({"city": "Paris"}));
        assert_eq!(m["stop_reason"], "tool_use");
        assert_eq!(
            m["usage"],
            json!({"input_tokens": 20, "output_tokens": 7, "cache_read_input_tokens": 10})
        );
    }

    #[test]
    fn token_counts_are_estimated_from_text_messages_and_media() {
        let body = json!({
            "model": "m",
            "system": "abcd",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "12345678", "cache_control": {"type": "ephemeral"}},
                    {"type": "image", "source": {"type": "base64", "data": "QUFBQUFBQUFBQUFB"}},
                ]},
                {"role": "assistant", "content": "abcd"},
            ],
        });
        let out: Value =
            serde_json::from_slice(&estimate_tokens(&serde_json::to_vec(&body).unwrap())).unwrap();
        // "user" and "assistant" count too: (4 + 4 + 8 + 9 + 4) / 4 = 8, 2 messages, 1 image.
        assert_eq!(out, json!({"input_tokens": 8 + 6 + MEDIA_TOKENS}));
    }

    #[test]
    fn errors_take_anthropics_shape() {
        let body: Value =
            serde_json::from_slice(&error_body(&ApiError::unauthorized("bad key"))).unwrap();
        assert_eq!(
            body,
            json!({"type": "error", "error": {"type": "authentication_error", "message": "bad key"}})
        );
    }

    fn chat_stream() -> Vec<u8> {
        let chunks = [
            json!({"id": "c1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
            json!({"id": "c1", "choices": [{"index": 0, "delta": {"content": "Hel"}}]}),
            json!({"id": "c1", "choices": [{"index": 0, "delta": {"content": "lo"}}]}),
            json!({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]}}]}),
            json!({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]}}]}),
            json!({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}}]}),
            json!({"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            json!({"id": "c1", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}),
        ];
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(&serde_json::to_vec(&c).unwrap());
            out.extend_from_slice(b"\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        out
    }

    fn events(sse: &[u8]) -> Vec<(String, Value)> {
        String::from_utf8(sse.to_vec())
            .unwrap()
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (name, data) = e.split_once('\n').unwrap();
                (
                    name.trim_start_matches("event: ").to_string(),
                    serde_json::from_str(data.trim_start_matches("data: ")).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn chat_chunks_become_anthropics_event_sequence_at_every_split() {
        let input = chat_stream();
        let mut whole = Vec::new();
        let mut b = stream("claude-x");
        b.push(&input, &mut whole);
        b.finish(&mut whole);
        let names: Vec<String> = events(&whole).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        let ev = events(&whole);
        assert_eq!(ev[0].1["message"]["model"], "claude-x");
        assert_eq!(ev[1].1, json!({"type": "ping"}));
        assert_eq!(ev[6].1["content_block"]["type"], "tool_use");
        assert_eq!(ev[6].1["index"], 1);
        assert_eq!(ev[8].1["delta"]["partial_json"], "1}");
        assert_eq!(ev[10].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(ev[10].1["usage"]["output_tokens"], 3);
        // The same events whatever the chunks' boundaries.
        for split in 1..input.len() {
            let mut out = Vec::new();
            let mut b = stream("claude-x");
            b.push(&input[..split], &mut out);
            b.push(&input[split..], &mut out);
            b.finish(&mut out);
            assert_eq!(out, whole, "split at {split}");
        }
    }

    #[test]
    fn a_chat_error_event_becomes_an_error_event() {
        let mut out = Vec::new();
        let mut b = stream("m");
        b.push(b"data: {\"error\":{\"message\":\"slow down\",\"type\":\"rate_limit_error\",\"code\":\"429\"}}\n\n", &mut out);
        b.finish(&mut out);
        let ev = events(&out);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].0, "error");
        assert_eq!(ev[0].1["error"]["type"], "rate_limit_error");
    }

    #[test]
    fn a_model_list_in_anthropics_shape() {
        let openai = br#"{"object":"list","data":[{"id":"fast","object":"model"},{"id":"claude","object":"model"}]}"#;
        let v: Value = serde_json::from_slice(&models_list(openai)).unwrap();
        assert_eq!(
            v["data"][0],
            json!({"type": "model", "id": "fast", "display_name": "fast", "created_at": "2023-03-01T00:00:00Z"})
        );
        assert_eq!(
            (
                v["first_id"].as_str(),
                v["last_id"].as_str(),
                v["has_more"].as_bool()
            ),
            (Some("fast"), Some("claude"), Some(false))
        );
    }
}
