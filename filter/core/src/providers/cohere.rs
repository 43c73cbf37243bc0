//! Cohere's v2 API: chat (`POST /v2/chat`, streamed as SSE with named events) and embed
//! (`POST /v2/embed`), the key as `Authorization: Bearer`.
//!
//! v2 messages are close to OpenAI's (system, user, assistant with `tool_calls`, tool with
//! `tool_call_id`; text and `image_url` parts), so the mapping is mostly renaming: `top_p` →
//! `p`, `stop` → `stop_sequences`, `tool_choice` → `REQUIRED`/`NONE`. The model's tool plan
//! and thinking come back as `reasoning_content`, and an assistant message's
//! `reasoning_content` goes back as its `tool_plan`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_config::Endpoint;

use super::{
    bad_answer, error_message, provider_error, stream_cut, Ctx, ProviderRequest, Translator,
};
use crate::error::ApiError;
use crate::framing::Frame;
use crate::openai::{
    embeddings_response, Answer, ChatRequest, CompletionRequest, Content, EmbeddingsRequest,
    FunctionCall, Message, Role, StreamWriter, ToolCall, ToolChoice, Usage,
};

/// LiteLLM's default `input_type` for Cohere embeddings.
const DEFAULT_INPUT_TYPE: &str = "search_document";

/// Cohere's own chat parameters a client may pass through (LiteLLM forwards a provider's own
/// parameters as they are).
const NATIVE_CHAT_PARAMS: &[&str] = &[
    "k",
    "safety_mode",
    "documents",
    "citation_options",
    "strict_tools",
    "priority",
];

/// Cohere's own embed parameters a client may pass through.
const NATIVE_EMBED_PARAMS: &[&str] = &["input_type", "truncate", "max_tokens", "priority"];

/// Request fields the LiteLLM proxy consumes itself: never sent, never refused.
const PROXY_FIELDS: &[&str] = &["metadata"];

#[derive(Default)]
pub struct Cohere {
    /// The OpenAI stream being written (a streamed chat).
    writer: Option<StreamWriter>,
    /// Cohere's index of each tool call of the stream, in OpenAI's order.
    tool_indexes: Vec<u32>,
    /// The stream's message-end arrived.
    done: bool,
    /// The client asked for base64 embeddings.
    base64: bool,
}

impl Translator for Cohere {
    fn owned_headers(&self) -> &'static [&'static str] {
        &["authorization"]
    }

    fn request(&mut self, ctx: &Ctx, body: &[u8]) -> Result<ProviderRequest, ApiError> {
        let (path, body) = match ctx.info.endpoint {
            Endpoint::Embeddings => ("/v2/embed", self.embed_body(ctx, body)?),
            Endpoint::ChatCompletions => {
                ("/v2/chat", self.chat_body(ctx, ChatRequest::parse(body)?)?)
            }
            Endpoint::Completions => (
                "/v2/chat",
                self.chat_body(ctx, CompletionRequest::parse_as_chat(body)?)?,
            ),
            Endpoint::CountTokens | Endpoint::StoredResponse => return Err(super::not_served(ctx)),
        };
        Ok(ProviderRequest {
            path: format!("{}{path}", base_path(&ctx.deployment.base_path)),
            headers: ctx.credentials.bearer().into_iter().collect(),
            body,
        })
    }

    fn response(&mut self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        if ctx.info.endpoint == Endpoint::Embeddings {
            return self.embed_response(ctx, body);
        }
        let r: ChatResponse = serde_json::from_slice(body).map_err(|e| bad_answer(ctx, e))?;
        let finish_reason = finish_reason(ctx, r.finish_reason.as_deref(), None)?;
        let mut content = String::new();
        let mut reasoning = r.message.tool_plan.unwrap_or_default();
        for item in r.message.content.unwrap_or_default() {
            match item {
                ContentItem::Text { text } => content.push_str(&text),
                ContentItem::Thinking { thinking } => reasoning.push_str(&thinking),
                ContentItem::Other => {}
            }
        }
        let tool_calls: Vec<ToolCall> = r
            .message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(|c| ToolCall {
                id: c.id,
                kind: "function".into(),
                function: FunctionCall {
                    name: c.function.name.unwrap_or_default(),
                    arguments: c.function.arguments.unwrap_or_default(),
                },
            })
            .collect();
        let answer = Answer {
            id: r.id,
            // A tool call's message has no text, as OpenAI's.
            content: (!content.is_empty() || tool_calls.is_empty()).then_some(content),
            reasoning: (!reasoning.is_empty()).then_some(reasoning),
            tool_calls,
            finish_reason: finish_reason.into(),
            usage: r.usage.unwrap_or_default().into_openai(),
        };
        Ok(answer.to_openai(ctx.info.endpoint, ctx.answer_model(), ctx.created()))
    }

    fn stream_frame(
        &mut self,
        ctx: &Ctx,
        frame: &Frame,
        out: &mut Vec<u8>,
    ) -> Result<(), ApiError> {
        if self.done || frame.data == "[DONE]" {
            return Ok(());
        }
        let event: Event = serde_json::from_str(&frame.data).map_err(|e| bad_answer(ctx, e))?;
        let writer = self.writer.get_or_insert_with(|| {
            StreamWriter::new(ctx.info.endpoint, ctx.answer_model(), ctx.created(), false)
        });
        match event {
            Event::MessageStart { id } => {
                if let Some(id) = id {
                    writer.set_id(&id);
                }
            }
            Event::ContentStart { delta } | Event::ContentDelta { delta } => {
                let content = delta
                    .and_then(|d| d.message)
                    .and_then(|m| m.content)
                    .and_then(OneOrMany::first);
                if let Some(c) = content {
                    writer.reasoning(out, c.thinking.as_deref().unwrap_or(""));
                    writer.text(out, c.text.as_deref().unwrap_or(""));
                }
            }
            Event::ToolPlanDelta { delta } => {
                if let Some(plan) = delta.and_then(|d| d.message).and_then(|m| m.tool_plan) {
                    writer.reasoning(out, &plan);
                }
            }
            Event::ToolCallStart { index, delta } => {
                let Some(call) = delta
                    .and_then(|d| d.message)
                    .and_then(|m| m.tool_calls)
                    .and_then(OneOrMany::first)
                else {
                    return Err(bad_answer(
                        ctx,
                        "a tool-call-start event without its tool call",
                    ));
                };
                let at = self.tool_indexes.len() as u32;
                self.tool_indexes.push(index.unwrap_or(at));
                let name = call.function.name.unwrap_or_default();
                writer.tool_call_start(out, at, call.id.as_deref().unwrap_or(""), &name);
                writer.tool_call_arguments(
                    out,
                    at,
                    call.function.arguments.as_deref().unwrap_or(""),
                );
            }
            Event::ToolCallDelta { index, delta } => {
                let arguments = delta
                    .and_then(|d| d.message)
                    .and_then(|m| m.tool_calls)
                    .and_then(OneOrMany::first)
                    .and_then(|c| c.function.arguments);
                // The call this delta continues: by Cohere's index, else the last one started.
                let at = match index {
                    Some(i) => self.tool_indexes.iter().position(|x| *x == i),
                    None => self.tool_indexes.len().checked_sub(1),
                };
                match (at, arguments) {
                    (Some(at), Some(arguments)) => {
                        writer.tool_call_arguments(out, at as u32, &arguments)
                    }
                    (None, _) => {
                        return Err(bad_answer(
                            ctx,
                            "a tool-call-delta event before its tool-call-start",
                        ))
                    }
                    _ => {}
                }
            }
            Event::MessageEnd { delta } => {
                let delta = delta.unwrap_or_default();
                let reason =
                    finish_reason(ctx, delta.finish_reason.as_deref(), delta.error.as_deref())?;
                writer.finish(reason);
                writer.usage(delta.usage.unwrap_or_default().into_openai());
                self.done = true;
            }
            Event::Other => {}
        }
        Ok(())
    }

    fn stream_end(&mut self, ctx: &Ctx, out: &mut Vec<u8>) -> Result<(), ApiError> {
        match self.writer.as_mut() {
            Some(writer) if self.done => {
                writer.end(out);
                Ok(())
            }
            _ => Err(stream_cut(ctx)),
        }
    }

    fn stream_usage(&self) -> Option<Usage> {
        self.writer.as_ref().and_then(StreamWriter::reported_usage)
    }

    fn error(&self, ctx: &Ctx, status: u16, headers: &[(String, String)], body: &[u8]) -> ApiError {
        let message = error_message(
            status,
            body,
            &[&["message"], &["error", "message"], &["error"], &["detail"]],
        );
        provider_error(ctx, status, headers, &message)
    }
}

/// The api_base's path without an endpoint path a config may carry (LiteLLM accepts
/// `https://api.cohere.com/v2/chat` as the api_base).
fn base_path(path: &str) -> &str {
    for suffix in [
        "/v2/chat",
        "/v2/embed",
        "/v1/chat",
        "/v1/embed",
        "/v2",
        "/v1",
    ] {
        if let Some(rest) = path.strip_suffix(suffix) {
            return rest;
        }
    }
    path
}

/// OpenAI's finish_reason for Cohere's; an ERROR or TIMEOUT finish is the provider's failure.
fn finish_reason(
    ctx: &Ctx,
    reason: Option<&str>,
    error: Option<&str>,
) -> Result<&'static str, ApiError> {
    let failed = |status: u16, kind: &'static str, what: &str| {
        ApiError::new(
            status,
            kind,
            format!(
                "{} could not finish the answer ({what}): {}. Retry the request.",
                ctx.provider(),
                error.unwrap_or("no detail given")
            ),
        )
    };
    match reason {
        Some("MAX_TOKENS") => Ok("length"),
        Some("TOOL_CALL") => Ok("tool_calls"),
        Some("ERROR_TOXIC") => Ok("content_filter"),
        Some("TIMEOUT") => Err(failed(504, "timeout", "TIMEOUT")),
        Some("ERROR") => Err(failed(500, "internal_server_error", "ERROR")),
        _ if error.is_some() => Err(failed(500, "internal_server_error", "error")),
        // COMPLETE, STOP_SEQUENCE, and whatever Cohere adds later.
        _ => Ok("stop"),
    }
}

// ---------------------------------------------------------------------------------------
// Chat requests

#[derive(Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<Msg<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<CohereTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'static str>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<CohereFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Thinking>,
    /// Cohere's own parameters, as the client sent them.
    #[serde(flatten)]
    native: Map<String, Value>,
}

#[derive(Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum Msg<'a> {
    System {
        content: String,
    },
    User {
        content: UserContent<'a>,
    },
    Assistant {
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        tool_calls: &'a [ToolCall],
        #[serde(skip_serializing_if = "Option::is_none")]
        tool_plan: Option<&'a str>,
    },
    Tool {
        tool_call_id: &'a str,
        content: UserContent<'a>,
    },
}

/// A string, or content blocks.
#[derive(Serialize)]
#[serde(untagged)]
enum UserContent<'a> {
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: CohereImage<'a> },
}

#[derive(Serialize)]
struct CohereImage<'a> {
    /// A web URL or a base64 data URL: Cohere takes both.
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

#[derive(Serialize)]
struct CohereTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: CohereFunction<'a>,
}

#[derive(Serialize)]
struct CohereFunction<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    /// Required by Cohere.
    parameters: Value,
}

#[derive(Serialize)]
struct CohereFormat {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    json_schema: Option<Value>,
}

#[derive(Serialize)]
struct Thinking {
    #[serde(rename = "type")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_budget: Option<u64>,
}

impl Cohere {
    fn chat_body(&mut self, ctx: &Ctx, req: ChatRequest) -> Result<Vec<u8>, ApiError> {
        if req.n.is_some_and(|n| n > 1) {
            ctx.unsupported("n")?;
        }
        // Cohere cannot take these; LiteLLM refuses them for Cohere too.
        let unsupported = [
            ("logprobs", req.logprobs.is_some()),
            ("top_logprobs", req.top_logprobs.is_some()),
            ("logit_bias", req.logit_bias.is_some()),
            ("parallel_tool_calls", req.parallel_tool_calls.is_some()),
            ("reasoning_effort", req.reasoning_effort.is_some()),
        ];
        for (name, present) in unsupported {
            if present {
                ctx.unsupported(name)?;
            }
        }
        let mut native = Map::new();
        for (name, value) in &req.extra {
            if NATIVE_CHAT_PARAMS.contains(&name.as_str()) {
                native.insert(name.clone(), value.clone());
            } else if name == "top_k" {
                native.insert("k".into(), value.clone());
            } else if !PROXY_FIELDS.contains(&name.as_str()) {
                ctx.unsupported(name)?;
            }
        }
        let messages = req
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| message(i, m))
            .collect::<Result<Vec<_>, _>>()?;
        let (tools, tool_choice) = tools(&req)?;
        let response_format = match &req.response_format {
            None => None,
            Some(f) => match f.kind.as_str() {
                "text" => None,
                "json_object" => Some(CohereFormat {
                    kind: "json_object",
                    json_schema: None,
                }),
                "json_schema" => Some(CohereFormat {
                    kind: "json_object",
                    json_schema: f.json_schema.as_ref().and_then(|s| s.schema.clone()),
                }),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "response_format.type must be \"text\", \"json_object\" or \"json_schema\", not \"{other}\"."
                    ))
                    .with_param("response_format"))
                }
            },
        };
        let stream = req.is_stream();
        if stream {
            self.writer = Some(StreamWriter::new(
                ctx.info.endpoint,
                ctx.answer_model(),
                ctx.created(),
                req.include_usage(),
            ));
        }
        let body = ChatBody {
            model: &ctx.deployment.model,
            messages,
            tools,
            tool_choice,
            stream,
            max_tokens: req.max_output_tokens(),
            temperature: req.temperature,
            p: req.top_p,
            stop_sequences: req.stop.as_ref().map(|s| s.to_vec()),
            seed: req.seed,
            frequency_penalty: req.frequency_penalty,
            presence_penalty: req.presence_penalty,
            response_format,
            thinking: thinking(req.thinking.as_ref())?,
            native,
        };
        serde_json::to_vec(&body)
            .map_err(|e| ApiError::internal(format!("Cannot write the Cohere request: {e}")))
    }

    fn embed_body(&mut self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        #[derive(Serialize)]
        struct EmbedBody<'a> {
            model: &'a str,
            texts: Vec<String>,
            /// Floats, whatever the client asked: base64 is encoded here, as OpenAI does.
            embedding_types: [&'static str; 1],
            #[serde(skip_serializing_if = "Option::is_none")]
            output_dimension: Option<u32>,
            #[serde(flatten)]
            native: Map<String, Value>,
        }
        let req = EmbeddingsRequest::parse(body)?;
        if req.user.is_some() {
            ctx.unsupported("user")?;
        }
        let mut native = Map::new();
        native.insert(
            "input_type".into(),
            Value::String(DEFAULT_INPUT_TYPE.into()),
        );
        for (name, value) in &req.extra {
            if NATIVE_EMBED_PARAMS.contains(&name.as_str()) {
                native.insert(name.clone(), value.clone());
            } else if !PROXY_FIELDS.contains(&name.as_str()) {
                ctx.unsupported(name)?;
            }
        }
        self.base64 = req.base64();
        let body = EmbedBody {
            model: &ctx.deployment.model,
            texts: req.texts(ctx.provider())?,
            embedding_types: ["float"],
            output_dimension: req.dimensions,
            native,
        };
        serde_json::to_vec(&body)
            .map_err(|e| ApiError::internal(format!("Cannot write the Cohere request: {e}")))
    }

    fn embed_response(&self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        #[derive(Deserialize)]
        struct EmbedResponse {
            embeddings: Embeddings,
            #[serde(default)]
            meta: Option<Meta>,
        }
        #[derive(Deserialize)]
        struct Embeddings {
            #[serde(default, rename = "float")]
            floats: Option<Vec<Vec<f32>>>,
        }
        #[derive(Deserialize)]
        struct Meta {
            #[serde(default)]
            billed_units: Option<Units>,
            #[serde(default)]
            tokens: Option<Units>,
        }
        let r: EmbedResponse = serde_json::from_slice(body).map_err(|e| bad_answer(ctx, e))?;
        let vectors = r
            .embeddings
            .floats
            .ok_or_else(|| bad_answer(ctx, "no float embeddings in the answer"))?;
        let tokens = r
            .meta
            .and_then(|m| m.billed_units.or(m.tokens))
            .map_or(0, |u| count(u.input_tokens));
        Ok(embeddings_response(
            &vectors,
            ctx.answer_model(),
            tokens,
            self.base64,
        ))
    }
}

/// One OpenAI message as Cohere's; `i` is its position, for error messages.
fn message(i: usize, m: &Message) -> Result<Msg<'_>, ApiError> {
    let param = format!("messages[{i}]");
    Ok(match m.role {
        Role::System | Role::Developer => Msg::System {
            content: m.content.as_ref().map(Content::text).unwrap_or_default(),
        },
        Role::User => Msg::User {
            content: user_content(m.content.as_ref(), &param)?,
        },
        Role::Assistant => {
            let tool_calls = m.tool_calls.as_deref().unwrap_or_default();
            let text = m.content.as_ref().map(Content::text).filter(|t| !t.is_empty());
            Msg::Assistant {
                content: text,
                tool_calls,
                // The plan Cohere wrote before its calls, as the client got it back.
                tool_plan: m
                    .extra
                    .get("reasoning_content")
                    .and_then(Value::as_str)
                    .filter(|p| !p.is_empty() && !tool_calls.is_empty()),
            }
        }
        Role::Tool => {
            let Some(id) = m.tool_call_id.as_deref() else {
                return Err(ApiError::bad_request(format!(
                    "{param} is a tool message without tool_call_id: name the tool call it answers."
                ))
                .with_param(&param));
            };
            Msg::Tool {
                tool_call_id: id,
                content: match &m.content {
                    Some(Content::Parts(_)) => UserContent::Blocks(
                        text_parts(m.content.as_ref(), &param)?
                            .into_iter()
                            .map(|text| Block::Text { text })
                            .collect(),
                    ),
                    Some(Content::Text(t)) => UserContent::Text(t),
                    None => UserContent::Text(""),
                },
            }
        }
        Role::Function => {
            return Err(ApiError::bad_request(format!(
                "{param}: Cohere takes tool results as `tool` messages with a tool_call_id, not the legacy `function` role."
            ))
            .with_param(&param))
        }
    })
}

/// A user message's content: its string, or text and image blocks.
fn user_content<'a>(
    content: Option<&'a Content>,
    param: &str,
) -> Result<UserContent<'a>, ApiError> {
    let parts = match content {
        None => return Ok(UserContent::Text("")),
        Some(Content::Text(t)) => return Ok(UserContent::Text(t)),
        Some(Content::Parts(parts)) => parts,
    };
    parts
        .iter()
        .map(|p| match (p.kind.as_str(), &p.text, &p.image_url) {
            ("text", Some(text), _) => Ok(Block::Text { text }),
            ("image_url", _, Some(image)) => Ok(Block::ImageUrl {
                image_url: CohereImage {
                    url: image.url(),
                    detail: match image {
                        crate::openai::ImageUrl::Object { detail, .. } => detail.as_deref(),
                        crate::openai::ImageUrl::Url(_) => None,
                    },
                },
            }),
            (kind, _, _) => Err(ApiError::bad_request(format!(
                "{param}: Cohere takes text and image_url content parts, not `{kind}`."
            ))
            .with_param(param)),
        })
        .collect::<Result<_, _>>()
        .map(UserContent::Blocks)
}

/// The text parts of a content that may only hold text.
fn text_parts<'a>(content: Option<&'a Content>, param: &str) -> Result<Vec<&'a str>, ApiError> {
    match content {
        None => Ok(vec![]),
        Some(Content::Text(t)) => Ok(vec![t]),
        Some(Content::Parts(parts)) => parts
            .iter()
            .map(|p| match (p.kind.as_str(), &p.text) {
                ("text", Some(text)) => Ok(text.as_str()),
                (kind, _) => Err(ApiError::bad_request(format!(
                    "{param}: this message may only hold text parts for Cohere, not `{kind}`."
                ))
                .with_param(param)),
            })
            .collect(),
    }
}

/// The tools and Cohere's tool_choice. Cohere forces "some tool" (REQUIRED) or none; a named
/// function is forced by offering only that tool, with REQUIRED.
fn tools(req: &ChatRequest) -> Result<(Vec<CohereTool<'_>>, Option<&'static str>), ApiError> {
    let all = req.tools.as_deref().unwrap_or_default();
    let mut only: Option<&str> = None;
    let choice = match &req.tool_choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "auto" => None,
            "none" => Some("NONE"),
            "required" => Some("REQUIRED"),
            other => {
                return Err(ApiError::bad_request(format!(
                    "tool_choice must be \"auto\", \"none\", \"required\" or a function, not \"{other}\"."
                ))
                .with_param("tool_choice"))
            }
        },
        Some(ToolChoice::Named { function, .. }) => {
            if !all.iter().any(|t| t.function.name == function.name) {
                return Err(ApiError::bad_request(format!(
                    "tool_choice names the function `{}`, which is not among the request's tools.",
                    function.name
                ))
                .with_param("tool_choice"));
            }
            only = Some(&function.name);
            Some("REQUIRED")
        }
    };
    let mut tools = Vec::with_capacity(all.len());
    for (i, t) in all.iter().enumerate() {
        if t.kind != "function" {
            return Err(ApiError::bad_request(format!(
                "tools[{i}] is of type `{}`: Cohere takes function tools only.",
                t.kind
            ))
            .with_param(&format!("tools[{i}]")));
        }
        if only.is_some_and(|name| name != t.function.name) {
            continue;
        }
        tools.push(CohereTool {
            kind: "function",
            function: CohereFunction {
                name: &t.function.name,
                description: t.function.description.as_deref(),
                parameters: t
                    .function
                    .parameters
                    .clone()
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
            },
        });
    }
    // Without tools there is nothing to force or forbid.
    Ok((tools, choice.filter(|_| !all.is_empty())))
}

/// LiteLLM's Anthropic-style `thinking` (`{"type": "enabled", "budget_tokens": n}`) as
/// Cohere's (`{"type": "enabled", "token_budget": n}`).
fn thinking(value: Option<&Value>) -> Result<Option<Thinking>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let kind = value.get("type").and_then(Value::as_str);
    match kind {
        Some(kind @ ("enabled" | "disabled")) => Ok(Some(Thinking {
            kind: kind.to_string(),
            token_budget: value
                .get("budget_tokens")
                .or_else(|| value.get("token_budget"))
                .and_then(Value::as_u64),
        })),
        _ => Err(ApiError::bad_request(
            "thinking must be {\"type\": \"enabled\" or \"disabled\", \"budget_tokens\": n}.",
        )
        .with_param("thinking")),
    }
}

// ---------------------------------------------------------------------------------------
// Answers

#[derive(Deserialize)]
struct ChatResponse {
    #[serde(default)]
    id: String,
    #[serde(default)]
    finish_reason: Option<String>,
    message: AssistantResponse,
    #[serde(default)]
    usage: Option<CohereUsage>,
}

#[derive(Deserialize)]
struct AssistantResponse {
    #[serde(default)]
    content: Option<Vec<ContentItem>>,
    #[serde(default)]
    tool_calls: Option<Vec<ResponseToolCall>>,
    #[serde(default)]
    tool_plan: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ContentItem {
    Text {
        #[serde(default)]
        text: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct ResponseToolCall {
    #[serde(default)]
    id: String,
    #[serde(default)]
    function: ResponseFunction,
}

#[derive(Deserialize, Default)]
struct ResponseFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize, Default)]
struct CohereUsage {
    #[serde(default)]
    billed_units: Option<Units>,
    #[serde(default)]
    tokens: Option<Units>,
    #[serde(default)]
    cached_tokens: Option<f64>,
}

/// Token counts: Cohere's schema types them as numbers, so they may carry a fraction.
#[derive(Deserialize, Default)]
struct Units {
    #[serde(default)]
    input_tokens: Option<f64>,
    #[serde(default)]
    output_tokens: Option<f64>,
}

fn count(n: Option<f64>) -> u64 {
    n.filter(|n| n.is_finite() && *n > 0.0)
        .map_or(0, |n| n as u64)
}

impl CohereUsage {
    /// The tokens the model saw and wrote (`tokens`), else the billed ones, as LiteLLM reads them.
    fn into_openai(self) -> Usage {
        let units = self.tokens.or(self.billed_units).unwrap_or_default();
        Usage::new(count(units.input_tokens), count(units.output_tokens))
            .with_cached(Some(count(self.cached_tokens)))
    }
}

// ---------------------------------------------------------------------------------------
// Streams

#[derive(Deserialize)]
#[serde(tag = "type")]
enum Event {
    #[serde(rename = "message-start")]
    MessageStart {
        #[serde(default)]
        id: Option<String>,
    },
    #[serde(rename = "content-start")]
    ContentStart {
        #[serde(default)]
        delta: Option<Delta>,
    },
    #[serde(rename = "content-delta")]
    ContentDelta {
        #[serde(default)]
        delta: Option<Delta>,
    },
    #[serde(rename = "tool-plan-delta")]
    ToolPlanDelta {
        #[serde(default)]
        delta: Option<Delta>,
    },
    #[serde(rename = "tool-call-start")]
    ToolCallStart {
        #[serde(default)]
        index: Option<u32>,
        #[serde(default)]
        delta: Option<Delta>,
    },
    #[serde(rename = "tool-call-delta")]
    ToolCallDelta {
        #[serde(default)]
        index: Option<u32>,
        #[serde(default)]
        delta: Option<Delta>,
    },
    #[serde(rename = "message-end")]
    MessageEnd {
        #[serde(default)]
        delta: Option<EndDelta>,
    },
    /// content-end, tool-call-end, citation-start, citation-end, debug, and what comes later.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    message: Option<DeltaMessage>,
}

#[derive(Deserialize)]
struct DeltaMessage {
    #[serde(default)]
    content: Option<OneOrMany<DeltaContent>>,
    #[serde(default)]
    tool_plan: Option<String>,
    /// One call in tool-call-start and tool-call-delta.
    #[serde(default)]
    tool_calls: Option<OneOrMany<DeltaToolCall>>,
}

/// Cohere documents one object in these deltas; a list (as message-start carries) is read
/// too rather than breaking the stream.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn first(self) -> Option<T> {
        match self {
            OneOrMany::One(t) => Some(t),
            OneOrMany::Many(v) => v.into_iter().next(),
        }
    }
}

#[derive(Deserialize)]
struct DeltaContent {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
}

#[derive(Deserialize)]
struct DeltaToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: ResponseFunction,
}

#[derive(Deserialize, Default)]
struct EndDelta {
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    usage: Option<CohereUsage>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::providers::tests::{ctx, ctx_for};
    use crate::providers::Credentials;
    use switchyard_config::Provider;

    fn body(t: &mut Cohere, endpoint: Endpoint, request: Value) -> (String, Value) {
        let (d, i) = ctx_for(Provider::Cohere, endpoint, "");
        let key = Credentials::Key("co-key".into());
        let r = t
            .request(&ctx(&d, &i, &key), request.to_string().as_bytes())
            .unwrap();
        assert_eq!(
            r.headers,
            [("authorization".to_string(), "Bearer co-key".to_string())]
        );
        (r.path, serde_json::from_slice(&r.body).unwrap())
    }

    fn frame(data: &str) -> Frame {
        Frame {
            data: data.into(),
            ..Frame::default()
        }
    }

    #[test]
    fn parameters_are_renamed_and_a_named_function_is_forced() {
        let (path, b) = body(
            &mut Cohere::default(),
            Endpoint::ChatCompletions,
            serde_json::json!({
                "model": "fast", "top_p": 0.5, "stop": "END", "max_completion_tokens": 9, "top_k": 3,
                "messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}],
                "tools": [
                    {"type": "function", "function": {"name": "a"}},
                    {"type": "function", "function": {"name": "b", "parameters": {"type": "object"}}}
                ],
                "tool_choice": {"type": "function", "function": {"name": "b"}},
                "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
            }),
        );
        assert_eq!(path, "/v2/chat");
        assert_eq!(b["p"], 0.5);
        assert_eq!(b["k"], 3);
        assert_eq!(b["stop_sequences"], serde_json::json!(["END"]));
        assert_eq!(b["max_tokens"], 9);
        assert_eq!(b["stream"], false);
        assert_eq!(
            b["messages"][0],
            serde_json::json!({"role": "system", "content": "be brief"})
        );
        assert_eq!(b["tool_choice"], "REQUIRED");
        assert_eq!(b["tools"].as_array().unwrap().len(), 1);
        assert_eq!(b["tools"][0]["function"]["name"], "b");
        assert_eq!(
            b["response_format"],
            serde_json::json!({"type": "json_object", "json_schema": {"type": "object"}})
        );
    }

    #[test]
    fn unsupported_parameters_are_refused_unless_dropped() {
        let (d, i) = ctx_for(Provider::Cohere, Endpoint::ChatCompletions, "");
        let c = Credentials::None;
        let mut cx = ctx(&d, &i, &c);
        let req = br#"{"model":"fast","messages":[{"role":"user","content":"hi"}],"logit_bias":{"1":2},"user":"u","metadata":{"a":1}}"#;
        let e = Cohere::default().request(&cx, req).unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (400, Some("logit_bias")));
        cx.drop_params = true;
        let r = Cohere::default().request(&cx, req).unwrap();
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(
            b.get("logit_bias").is_none() && b.get("user").is_none() && b.get("metadata").is_none()
        );
    }

    #[test]
    fn an_endpoint_path_in_the_api_base_is_not_doubled() {
        assert_eq!(base_path("/v2/chat"), "");
        assert_eq!(base_path("/proxy/cohere/v1"), "/proxy/cohere");
        assert_eq!(base_path("/proxy"), "/proxy");
    }

    #[test]
    fn finish_reasons_and_failures() {
        let (d, i) = ctx_for(Provider::Cohere, Endpoint::ChatCompletions, "");
        let c = Credentials::None;
        let cx = ctx(&d, &i, &c);
        assert_eq!(finish_reason(&cx, Some("COMPLETE"), None).unwrap(), "stop");
        assert_eq!(
            finish_reason(&cx, Some("STOP_SEQUENCE"), None).unwrap(),
            "stop"
        );
        assert_eq!(
            finish_reason(&cx, Some("MAX_TOKENS"), None).unwrap(),
            "length"
        );
        assert_eq!(
            finish_reason(&cx, Some("TOOL_CALL"), None).unwrap(),
            "tool_calls"
        );
        assert_eq!(
            finish_reason(&cx, Some("TIMEOUT"), None)
                .unwrap_err()
                .status,
            504
        );
        let e = finish_reason(&cx, Some("ERROR"), Some("model crashed")).unwrap_err();
        assert_eq!(e.status, 500);
        assert!(e.message.contains("model crashed"), "{}", e.message);
    }

    #[test]
    fn a_stream_without_message_end_is_cut_and_tool_deltas_follow_their_call() {
        let (d, i) = ctx_for(Provider::Cohere, Endpoint::ChatCompletions, "");
        let c = Credentials::None;
        let cx = ctx(&d, &i, &c);
        let mut t = Cohere::default();
        let mut out = Vec::new();
        t.stream_frame(
            &cx,
            &frame(r#"{"type":"message-start","id":"m1"}"#),
            &mut out,
        )
        .unwrap();
        t.stream_frame(
            &cx,
            &frame(r#"{"type":"tool-call-start","index":3,"delta":{"message":{"tool_calls":{"id":"c1","type":"function","function":{"name":"f","arguments":""}}}}}"#),
            &mut out,
        )
        .unwrap();
        t.stream_frame(
            &cx,
            &frame(r#"{"type":"tool-call-delta","index":3,"delta":{"message":{"tool_calls":{"function":{"arguments":"{}"}}}}}"#),
            &mut out,
        )
        .unwrap();
        // A list where Cohere documents one object is read, not a broken stream.
        t.stream_frame(
            &cx,
            &frame(r#"{"type":"content-start","index":0,"delta":{"message":{"content":[{"type":"text","text":"ok"}],"tool_calls":[]}}}"#),
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains(r#""content":"ok""#), "{text}");
        assert!(
            text.contains(r#""tool_calls":[{"index":0,"id":"c1""#),
            "{text}"
        );
        assert!(text.contains(r#""arguments":"{}""#), "{text}");
        assert_eq!(t.stream_end(&cx, &mut out).unwrap_err().status, 502);
        assert!(t
            .stream_frame(
                &cx,
                &frame(r#"{"type":"tool-call-delta","index":9,"delta":{}}"#),
                &mut out
            )
            .is_err());
    }

    #[test]
    fn embeddings_ask_for_floats_and_default_the_input_type() {
        let (path, b) = body(
            &mut Cohere::default(),
            Endpoint::Embeddings,
            serde_json::json!({"model": "e", "input": "hi", "dimensions": 256, "encoding_format": "base64"}),
        );
        assert_eq!(path, "/v2/embed");
        assert_eq!(
            b,
            serde_json::json!({"model": "provider-model", "texts": ["hi"], "input_type": "search_document",
                "embedding_types": ["float"], "output_dimension": 256})
        );
    }
}
