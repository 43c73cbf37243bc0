//! The OpenAI API's shapes, as the full translators read requests and write answers: chat
//! completions (and legacy completions, served through chat), embeddings, stream chunks.
//! Requests keep the fields they do not name in `extra`, so a translator can refuse or pass
//! on what it does not know; answers are built from these types and serialised once.
//!
//! The OpenAI passthrough does not use them: it edits the JSON it must and nothing else.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_config::Endpoint;

use crate::error::ApiError;

// ---------------------------------------------------------------------------------------
// Requests

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ChatRequest {
    #[serde(default)]
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// `low`, `medium`, `high` (o-series; LiteLLM maps it to other providers' thinking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    /// LiteLLM's Anthropic-style thinking switch: `{"type": "enabled", "budget_tokens": n}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_bias: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatRequest {
    /// The body, parsed; a clear 400 when it is not a chat request.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("Invalid chat completions request: {e}")))
    }

    /// max_completion_tokens, else max_tokens.
    pub fn max_output_tokens(&self) -> Option<u64> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct StreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
}

/// `stop`: one string or several.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s.clone()],
            Stop::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    /// OpenAI's newer name for system instructions.
    Developer,
    User,
    Assistant,
    Tool,
    /// The legacy function-result role.
    Function,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Message {
    pub role: Role,
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A message's content: a string, or parts (text, images, ...).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

impl Content {
    /// The text parts, joined (images and other parts left out).
    pub fn text(&self) -> String {
        match self {
            Content::Text(t) => t.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join(""),
        }
    }

    /// The content as parts (a string is one text part).
    pub fn parts(&self) -> Vec<Part> {
        match self {
            Content::Text(t) => vec![Part::text(t)],
            Content::Parts(p) => p.clone(),
        }
    }
}

/// One content part. `kind` is OpenAI's `type`: `text`, `image_url`, `input_audio`, `file`;
/// the field named by it is set. `extra` keeps the rest (Anthropic's `cache_control`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<ImageUrl>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Part {
    pub fn text(t: &str) -> Part {
        Part {
            kind: "text".into(),
            text: Some(t.to_string()),
            image_url: None,
            extra: Map::new(),
        }
    }
}

/// `image_url`: `{"url": ..., "detail": ...}`, or (LiteLLM accepts it) the URL alone.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ImageUrl {
    Url(String),
    Object {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

impl ImageUrl {
    pub fn url(&self) -> &str {
        match self {
            ImageUrl::Url(u) | ImageUrl::Object { url: u, .. } => u,
        }
    }

    /// A `data:` URL as (media type, base64 data); None for other URLs.
    pub fn data(&self) -> Option<(&str, &str)> {
        let rest = self.url().strip_prefix("data:")?;
        let (meta, data) = rest.split_once(',')?;
        let media = meta.strip_suffix(";base64")?;
        Some((media, data))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Tool {
    #[serde(rename = "type", default = "function_kind")]
    pub kind: String,
    pub function: FunctionDef,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn function_kind() -> String {
    "function".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FunctionDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A JSON schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// `tool_choice`: `none`, `auto`, `required`, or one named function.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ToolChoice {
    Mode(String),
    Named {
        #[serde(rename = "type")]
        kind: String,
        function: NamedFunction,
    },
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NamedFunction {
    pub name: String,
}

/// A tool call, in an assistant message or an answer.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_kind")]
    pub kind: String,
    pub function: FunctionCall,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct FunctionCall {
    pub name: String,
    /// JSON text.
    #[serde(default)]
    pub arguments: String,
}

/// A tool call id as a provider with strict ids must see it: without the thought signature
/// Gemini's translator keeps in it (`<id>__thought__<signature>`, LiteLLM's convention), with
/// only `[A-Za-z0-9_-]`, at most 64 characters (Anthropic's and Bedrock's rules). The same id
/// always maps to the same result, so a call and its result still match.
pub fn portable_tool_call_id(id: &str) -> std::borrow::Cow<'_, str> {
    let id = id.split("__thought__").next().unwrap_or(id);
    let clean = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if id.len() <= 64 && id.chars().all(clean) {
        return std::borrow::Cow::Borrowed(id);
    }
    id.chars()
        .map(|c| if clean(c) { c } else { '_' })
        .take(64)
        .collect::<String>()
        .into()
}

/// `response_format`: `{"type": "text" | "json_object" | "json_schema", "json_schema": ...}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ResponseFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<JsonSchema>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct JsonSchema {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// A legacy completions request (`/v1/completions`). Providers without a text-completion
/// API serve it through chat: the prompt becomes one user message.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    #[serde(default)]
    pub model: String,
    pub prompt: Prompt,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    One(String),
    Many(Vec<String>),
}

impl CompletionRequest {
    /// As a chat request with the prompt as the user's message.
    pub fn parse_as_chat(body: &[u8]) -> Result<ChatRequest, ApiError> {
        let c: CompletionRequest = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("Invalid completions request: {e}")))?;
        let prompt =
            match c.prompt {
                Prompt::One(p) => p,
                Prompt::Many(mut v) if v.len() == 1 => v.remove(0),
                Prompt::Many(_) => return Err(ApiError::bad_request(
                    "This provider takes one prompt per completions request; send them one by one.",
                )
                .with_param("prompt")),
            };
        let mut rest = c.rest;
        rest.insert("model".into(), Value::String(c.model));
        rest.insert(
            "messages".into(),
            serde_json::json!([{"role": "user", "content": prompt}]),
        );
        serde_json::from_value(Value::Object(rest))
            .map_err(|e| ApiError::bad_request(format!("Invalid completions request: {e}")))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct EmbeddingsRequest {
    #[serde(default)]
    pub model: String,
    pub input: EmbeddingInput,
    #[serde(default)]
    pub dimensions: Option<u32>,
    /// `float` (the default) or `base64`.
    #[serde(default)]
    pub encoding_format: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    One(String),
    Many(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

impl EmbeddingsRequest {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let r: EmbeddingsRequest = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("Invalid embeddings request: {e}")))?;
        match r.encoding_format.as_deref() {
            None | Some("float") | Some("base64") => Ok(r),
            Some(other) => Err(ApiError::bad_request(format!(
                "encoding_format must be \"float\" or \"base64\", not \"{other}\"."
            ))
            .with_param("encoding_format")),
        }
    }

    /// The texts to embed; token arrays only reach OpenAI-compatible servers.
    pub fn texts(&self, provider: &str) -> Result<Vec<String>, ApiError> {
        match &self.input {
            EmbeddingInput::One(s) => Ok(vec![s.clone()]),
            EmbeddingInput::Many(v) => Ok(v.clone()),
            _ => Err(ApiError::bad_request(format!(
                "{provider} embeds text, not token arrays: send `input` as a string or a list of strings."
            ))
            .with_param("input")),
        }
    }

    pub fn base64(&self) -> bool {
        self.encoding_format.as_deref() == Some("base64")
    }
}

// ---------------------------------------------------------------------------------------
// Answers

/// The usage of an OpenAI answer (the rest of the body is skipped, not built).
pub fn usage_of(body: &[u8]) -> Option<Usage> {
    #[derive(Deserialize)]
    struct WithUsage {
        usage: Option<Usage>,
    }
    serde_json::from_slice::<WithUsage>(body).ok()?.usage
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
    /// Anthropic's prompt-cache writes and reads, as LiteLLM reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
}

impl Usage {
    /// Usage with the total filled in.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Usage {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            ..Usage::default()
        }
    }

    pub fn with_cached(mut self, cached_tokens: Option<u64>) -> Usage {
        if let Some(cached_tokens) = cached_tokens.filter(|c| *c > 0) {
            self.prompt_tokens_details = Some(PromptTokensDetails { cached_tokens });
        }
        self
    }

    pub fn with_reasoning(mut self, reasoning_tokens: Option<u64>) -> Usage {
        if let Some(reasoning_tokens) = reasoning_tokens.filter(|r| *r > 0) {
            self.completion_tokens_details = Some(CompletionTokensDetails { reasoning_tokens });
        }
        self
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    pub reasoning_tokens: u64,
}

/// A non-streamed chat answer, as a translator assembles it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// The provider's id for the answer (used as the completion's id).
    pub id: String,
    pub content: Option<String>,
    pub reasoning: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    /// OpenAI's finish_reason: `stop`, `length`, `tool_calls`, `content_filter`.
    pub finish_reason: String,
    pub usage: Usage,
}

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: &'a Usage,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    finish_reason: &'a str,
    logprobs: Option<()>,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tool_calls: &'a [ToolCall],
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
}

#[derive(Serialize)]
struct TextCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [TextChoice<'a>; 1],
    usage: &'a Usage,
}

#[derive(Serialize)]
struct TextChoice<'a> {
    index: u32,
    text: &'a str,
    finish_reason: &'a str,
    logprobs: Option<()>,
}

impl Answer {
    /// The OpenAI body for the endpoint the client called: a chat completion, or a text
    /// completion for `/v1/completions`.
    pub fn to_openai(&self, endpoint: Endpoint, model: &str, created: u64) -> Vec<u8> {
        let id = completion_id(&self.id);
        let bytes = if endpoint == Endpoint::Completions {
            serde_json::to_vec(&TextCompletion {
                id: &id,
                object: "text_completion",
                created,
                model,
                choices: [TextChoice {
                    index: 0,
                    text: self.content.as_deref().unwrap_or(""),
                    finish_reason: &self.finish_reason,
                    logprobs: None,
                }],
                usage: &self.usage,
            })
        } else {
            serde_json::to_vec(&ChatCompletion {
                id: &id,
                object: "chat.completion",
                created,
                model,
                choices: [Choice {
                    index: 0,
                    message: AssistantMessage {
                        role: "assistant",
                        content: self.content.as_deref(),
                        tool_calls: &self.tool_calls,
                        reasoning_content: self.reasoning.as_deref(),
                    },
                    finish_reason: &self.finish_reason,
                    logprobs: None,
                }],
                usage: &self.usage,
            })
        };
        bytes.unwrap_or_default()
    }
}

/// `chatcmpl-<provider id>`: an id the client can quote to the provider.
fn completion_id(provider_id: &str) -> String {
    if provider_id.is_empty() {
        "chatcmpl-switchyard".to_string()
    } else if provider_id.starts_with("chatcmpl-") {
        provider_id.to_string()
    } else {
        format!("chatcmpl-{provider_id}")
    }
}

/// Writes a translated stream as OpenAI chunks. A translator calls it as the provider's
/// events arrive; [`StreamWriter::end`] writes the finish chunk with the usage, the usage
/// chunk when the client asked for it (`stream_options.include_usage`), and `[DONE]`.
///
/// The finish chunk is held until the end because providers report usage after the finish
/// reason (Anthropic, Bedrock); without `include_usage` the usage rides on the finish chunk,
/// so spend is always known and no client meets a chunk without choices it did not ask for.
#[derive(Debug)]
pub struct StreamWriter {
    id: String,
    created: u64,
    model: String,
    /// `/v1/completions` streams text_completion objects.
    text_completion: bool,
    include_usage: bool,
    role_sent: bool,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    ended: bool,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<ChunkChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<&'a Usage>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<Delta<'a>>,
    /// Text completions carry `text` instead of a delta.
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    finish_reason: Option<&'a str>,
    logprobs: Option<()>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallDelta<'a>; 1]>,
    /// LiteLLM's `thinking_blocks`: a provider's whole reasoning block (with its signature),
    /// which the client sends back in the assistant message.
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_blocks: Option<[&'a Value; 1]>,
}

#[derive(Serialize)]
struct ToolCallDelta<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDelta<'a>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<&'a str>,
}

impl StreamWriter {
    /// `model` is the name the client asked for; `id` the provider's (may be set later).
    pub fn new(endpoint: Endpoint, model: &str, created: u64, include_usage: bool) -> Self {
        StreamWriter {
            id: completion_id(""),
            created,
            model: model.to_string(),
            text_completion: endpoint == Endpoint::Completions,
            include_usage,
            role_sent: false,
            finish_reason: None,
            usage: None,
            ended: false,
        }
    }

    pub fn set_id(&mut self, provider_id: &str) {
        self.id = completion_id(provider_id);
    }

    /// Text the model wrote.
    pub fn text(&mut self, out: &mut Vec<u8>, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.text_completion {
            self.write_text(out, Some(text), None);
        } else {
            self.delta(
                out,
                Delta {
                    content: Some(text),
                    ..Delta::default()
                },
            );
        }
    }

    /// Reasoning (thinking) text, as LiteLLM's `reasoning_content`.
    pub fn reasoning(&mut self, out: &mut Vec<u8>, text: &str) {
        if text.is_empty() || self.text_completion {
            return;
        }
        self.delta(
            out,
            Delta {
                reasoning_content: Some(text),
                ..Delta::default()
            },
        );
    }

    /// A whole reasoning block (LiteLLM's `thinking_blocks`), once it is complete.
    pub fn thinking_block(&mut self, out: &mut Vec<u8>, block: &Value) {
        if self.text_completion {
            return;
        }
        self.delta(
            out,
            Delta {
                thinking_blocks: Some([block]),
                ..Delta::default()
            },
        );
    }

    /// A tool call starts: its position among the answer's calls, id and function name.
    pub fn tool_call_start(&mut self, out: &mut Vec<u8>, index: u32, id: &str, name: &str) {
        self.tool_delta(out, index, Some(id), Some(name), Some(""));
    }

    /// More of a tool call's arguments (JSON text, in pieces).
    pub fn tool_call_arguments(&mut self, out: &mut Vec<u8>, index: u32, arguments: &str) {
        if !arguments.is_empty() {
            self.tool_delta(out, index, None, None, Some(arguments));
        }
    }

    fn tool_delta(
        &mut self,
        out: &mut Vec<u8>,
        index: u32,
        id: Option<&str>,
        name: Option<&str>,
        arguments: Option<&str>,
    ) {
        if self.text_completion {
            return;
        }
        self.delta(
            out,
            Delta {
                tool_calls: Some([ToolCallDelta {
                    index,
                    id,
                    kind: id.map(|_| "function"),
                    function: FunctionDelta { name, arguments },
                }]),
                ..Delta::default()
            },
        );
    }

    /// The answer is complete: OpenAI's finish_reason (written at the end, with the usage).
    pub fn finish(&mut self, reason: &str) {
        self.finish_reason = Some(reason.to_string());
    }

    pub fn finished(&self) -> bool {
        self.finish_reason.is_some()
    }

    /// Usage as the provider reports it (the last report wins).
    pub fn usage(&mut self, usage: Usage) {
        self.usage = Some(usage);
    }

    /// The usage the provider reported so far.
    pub fn reported_usage(&self) -> Option<Usage> {
        self.usage.clone()
    }

    /// Ends the stream: the finish chunk, the usage, `[DONE]`. Once only.
    pub fn end(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.ended = true;
        let reason = self.finish_reason.clone().unwrap_or_else(|| "stop".into());
        let usage = self.usage.clone().unwrap_or_default();
        let usage_on_finish = (!self.include_usage).then_some(&usage);
        if self.text_completion {
            self.chunk(
                out,
                vec![ChunkChoice {
                    index: 0,
                    delta: None,
                    text: Some(""),
                    finish_reason: Some(&reason),
                    logprobs: None,
                }],
                usage_on_finish,
            );
        } else {
            let role = self.role();
            self.chunk(
                out,
                vec![ChunkChoice {
                    index: 0,
                    delta: Some(Delta {
                        role,
                        ..Delta::default()
                    }),
                    text: None,
                    finish_reason: Some(&reason),
                    logprobs: None,
                }],
                usage_on_finish,
            );
        }
        if self.include_usage {
            self.chunk(out, Vec::new(), Some(&usage));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    fn role(&mut self) -> Option<&'static str> {
        let first = !self.role_sent;
        self.role_sent = true;
        first.then_some("assistant")
    }

    fn delta(&mut self, out: &mut Vec<u8>, mut delta: Delta) {
        delta.role = self.role();
        self.chunk(
            out,
            vec![ChunkChoice {
                index: 0,
                delta: Some(delta),
                text: None,
                finish_reason: None,
                logprobs: None,
            }],
            None,
        );
    }

    fn write_text(&mut self, out: &mut Vec<u8>, text: Option<&str>, reason: Option<&str>) {
        self.chunk(
            out,
            vec![ChunkChoice {
                index: 0,
                delta: None,
                text,
                finish_reason: reason,
                logprobs: None,
            }],
            None,
        );
    }

    fn chunk(&self, out: &mut Vec<u8>, choices: Vec<ChunkChoice>, usage: Option<&Usage>) {
        let chunk = Chunk {
            id: &self.id,
            object: if self.text_completion {
                "text_completion"
            } else {
                "chat.completion.chunk"
            },
            created: self.created,
            model: &self.model,
            choices,
            usage,
        };
        out.extend_from_slice(b"data: ");
        // Serialising these types cannot fail.
        let _ = serde_json::to_writer(&mut *out, &chunk);
        out.extend_from_slice(b"\n\n");
    }
}

/// An embeddings answer, in the encoding the client asked for. The floats are written as
/// f32 (the way providers send them), not widened to f64 digits.
pub fn embeddings_response(
    vectors: &[Vec<f32>],
    model: &str,
    prompt_tokens: u64,
    base64: bool,
) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(untagged)]
    enum Embedding<'a> {
        Floats(&'a [f32]),
        Base64(String),
    }
    #[derive(Serialize)]
    struct Data<'a> {
        object: &'static str,
        index: usize,
        embedding: Embedding<'a>,
    }
    #[derive(Serialize)]
    struct List<'a> {
        object: &'static str,
        data: Vec<Data<'a>>,
        model: &'a str,
        usage: Value,
    }
    let data = vectors
        .iter()
        .enumerate()
        .map(|(index, v)| Data {
            object: "embedding",
            index,
            embedding: if base64 {
                // OpenAI's base64 is the little-endian f32 bytes.
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                Embedding::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Embedding::Floats(v)
            },
        })
        .collect();
    serde_json::to_vec(&List {
        object: "list",
        data,
        model,
        usage: serde_json::json!({"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}),
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn chunks(out: &[u8]) -> Vec<Value> {
        String::from_utf8(out.to_vec())
            .unwrap()
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    }

    #[test]
    fn requests_parse_with_every_shape_openai_allows() {
        let r = ChatRequest::parse(
            br#"{"model":"m","messages":[
                {"role":"developer","content":"be brief"},
                {"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}},
                    {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
                {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
                {"role":"tool","tool_call_id":"c1","content":"42"}],
              "stop":"x","tool_choice":{"type":"function","function":{"name":"f"}},
              "stream":true,"stream_options":{"include_usage":true},"vendor_thing":1}"#,
        )
        .unwrap();
        assert_eq!(r.messages[0].role, Role::Developer);
        let Some(Content::Parts(parts)) = &r.messages[1].content else {
            panic!()
        };
        assert_eq!(parts[0].extra["cache_control"]["type"], "ephemeral");
        assert_eq!(
            parts[1].image_url.as_ref().unwrap().data(),
            Some(("image/png", "AAAA"))
        );
        assert_eq!(r.stop.as_ref().unwrap().to_vec(), ["x"]);
        assert!(r.is_stream() && r.include_usage());
        assert_eq!(r.extra["vendor_thing"], 1);
        assert!(ChatRequest::parse(br#"{"messages":[{"role":"wizard"}]}"#).is_err());
    }

    #[test]
    fn tool_call_ids_travel_between_providers() {
        assert_eq!(portable_tool_call_id("toolu_01A"), "toolu_01A");
        assert_eq!(
            portable_tool_call_id("call_r_0__thought__c2ln+/="),
            "call_r_0"
        );
        assert_eq!(portable_tool_call_id("call.1:x"), "call_1_x");
        assert_eq!(portable_tool_call_id(&"a".repeat(100)).len(), 64);
    }

    #[test]
    fn completions_become_chat() {
        let r =
            CompletionRequest::parse_as_chat(br#"{"model":"m","prompt":"say hi","max_tokens":5}"#)
                .unwrap();
        assert_eq!(r.messages[0].content.as_ref().unwrap().text(), "say hi");
        assert_eq!(r.max_tokens, Some(5));
    }

    #[test]
    fn answers_as_chat_and_text_completions() {
        let a = Answer {
            id: "msg_1".into(),
            content: Some("hi".into()),
            finish_reason: "stop".into(),
            usage: Usage::new(3, 2).with_cached(Some(1)),
            ..Answer::default()
        };
        let v: Value =
            serde_json::from_slice(&a.to_openai(Endpoint::ChatCompletions, "fast", 7)).unwrap();
        assert_eq!(v["id"], "chatcmpl-msg_1");
        assert_eq!(v["choices"][0]["message"]["content"], "hi");
        assert_eq!(v["usage"]["total_tokens"], 5);
        assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 1);
        let v: Value =
            serde_json::from_slice(&a.to_openai(Endpoint::Completions, "fast", 7)).unwrap();
        assert_eq!(v["object"], "text_completion");
        assert_eq!(v["choices"][0]["text"], "hi");
    }

    #[test]
    fn streams_end_with_finish_usage_and_done() {
        let mut w = StreamWriter::new(Endpoint::ChatCompletions, "fast", 1, false);
        let mut out = Vec::new();
        w.text(&mut out, "he");
        w.tool_call_start(&mut out, 0, "call_1", "f");
        w.tool_call_arguments(&mut out, 0, "{\"a\":");
        w.finish("tool_calls");
        w.usage(Usage::new(5, 7));
        w.end(&mut out);
        w.end(&mut out);
        let c = chunks(&out);
        assert_eq!(c.len(), 4);
        assert_eq!(c[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(c[0]["choices"][0]["delta"]["content"], "he");
        assert!(c[1]["choices"][0]["delta"].get("role").is_none());
        assert_eq!(c[1]["choices"][0]["delta"]["tool_calls"][0]["id"], "call_1");
        assert_eq!(
            c[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":"
        );
        assert_eq!(c[3]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(c[3]["usage"]["total_tokens"], 12);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("data: [DONE]\n\n"));

        let mut w = StreamWriter::new(Endpoint::ChatCompletions, "fast", 1, true);
        let mut out = Vec::new();
        w.finish("stop");
        w.usage(Usage::new(1, 1));
        w.end(&mut out);
        let c = chunks(&out);
        assert!(c[0].get("usage").is_none());
        assert_eq!(c[1]["choices"], serde_json::json!([]));
        assert_eq!(c[1]["usage"]["total_tokens"], 2);
    }

    #[test]
    fn embeddings_in_either_encoding() {
        let v: Value =
            serde_json::from_slice(&embeddings_response(&[vec![1.0, -2.5]], "e", 4, false))
                .unwrap();
        assert_eq!(v["data"][0]["embedding"], serde_json::json!([1.0, -2.5]));
        let v: Value =
            serde_json::from_slice(&embeddings_response(&[vec![1.0]], "e", 4, true)).unwrap();
        assert_eq!(v["data"][0]["embedding"], "AACAPw==");
        assert_eq!(v["usage"]["prompt_tokens"], 4);
        let text = String::from_utf8(embeddings_response(&[vec![-0.0143]], "e", 1, false)).unwrap();
        assert!(text.contains("[-0.0143]"), "f32 digits, not f64's: {text}");
    }
}
