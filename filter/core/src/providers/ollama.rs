//! Ollama's own API: `ollama_chat/` speaks `POST /api/chat`; `ollama/` speaks
//! `POST /api/generate`, a chat flattened into one prompt (and the system prompt) as LiteLLM
//! does; both embed with `POST /api/embed`. Streams are NDJSON, the last line `done: true`
//! with the token counts.
//!
//! Ollama's `stream` defaults to true, so every request says which it wants. Sampling
//! parameters go in `options`; images are base64 without the `data:` prefix (Ollama fetches
//! no URL); tool calls carry their arguments as a JSON object, not text. No key by default;
//! one configured (ollama.com, a proxy) goes as `Authorization: Bearer`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_config::{Endpoint, Provider};

use super::{
    bad_answer, error_message, provider_error, stream_cut, Ctx, ProviderRequest, Translator,
};
use crate::error::ApiError;
use crate::framing::{Frame, Framing};
use crate::openai::{
    embeddings_response, Answer, ChatRequest, CompletionRequest, Content, EmbeddingsRequest,
    FunctionCall, ImageUrl, Message, Role, StreamWriter, ToolCall, ToolChoice, Usage,
};

/// Ollama's model options a client may set at the top level (LiteLLM moves them into
/// `options`).
const OPTION_PARAMS: &[&str] = &[
    "num_ctx",
    "num_keep",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "num_thread",
    "use_mmap",
    "top_k",
    "min_p",
    "typical_p",
    "repeat_penalty",
    "repeat_last_n",
    "mirostat",
    "mirostat_eta",
    "mirostat_tau",
    "tfs_z",
    "penalize_newline",
];

/// `/api/generate`'s own fields a client may pass through.
const GENERATE_PARAMS: &[&str] = &["suffix", "raw", "template"];

/// Request fields the LiteLLM proxy consumes itself: never sent, never refused.
const PROXY_FIELDS: &[&str] = &["metadata"];

#[derive(Default)]
pub struct Ollama {
    /// The OpenAI stream being written (a streamed chat or completion).
    writer: Option<StreamWriter>,
    /// Tool calls written so far.
    tool_calls: u32,
    /// The stream's `done: true` line arrived.
    done: bool,
    /// The client asked for base64 embeddings.
    base64: bool,
}

impl Translator for Ollama {
    fn owned_headers(&self) -> &'static [&'static str] {
        &["authorization"]
    }

    fn request(&mut self, ctx: &Ctx, body: &[u8]) -> Result<ProviderRequest, ApiError> {
        let endpoint = ctx.info.endpoint;
        let chat = |body: &[u8]| match endpoint {
            Endpoint::Completions => CompletionRequest::parse_as_chat(body),
            _ => ChatRequest::parse(body),
        };
        let (path, body) = match (endpoint, ctx.deployment.provider) {
            (Endpoint::Embeddings, _) => ("/api/embed", self.embed_body(ctx, body)?),
            (_, Provider::Ollama) => ("/api/generate", self.generate_body(ctx, chat(body)?)?),
            _ => ("/api/chat", self.chat_body(ctx, chat(body)?)?),
        };
        Ok(ProviderRequest {
            path: format!("{}{path}", base_path(&ctx.deployment.base_path)),
            headers: ctx.credentials.bearer().into_iter().collect(),
            body,
        })
    }

    fn framing(&self) -> Framing {
        Framing::Ndjson
    }

    fn response(&mut self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        if ctx.info.endpoint == Endpoint::Embeddings {
            return self.embed_response(ctx, body);
        }
        let r: Line = serde_json::from_slice(body).map_err(|e| bad_answer(ctx, e))?;
        if let Some(error) = r.error {
            return Err(in_band_error(ctx, &error));
        }
        let tool_calls: Vec<ToolCall> = r
            .tool_calls()
            .iter()
            .enumerate()
            .map(|(i, c)| c.to_openai(ctx, i))
            .collect();
        let content = r.content().to_string();
        let answer = Answer {
            id: answer_id(ctx),
            content: (!content.is_empty() || tool_calls.is_empty()).then_some(content),
            reasoning: Some(r.thinking().to_string()).filter(|t| !t.is_empty()),
            finish_reason: finish_reason(r.done_reason.as_deref(), !tool_calls.is_empty()).into(),
            tool_calls,
            usage: r.usage(),
        };
        Ok(answer.to_openai(ctx.info.endpoint, ctx.answer_model(), ctx.created()))
    }

    fn stream_frame(
        &mut self,
        ctx: &Ctx,
        frame: &Frame,
        out: &mut Vec<u8>,
    ) -> Result<(), ApiError> {
        if self.done {
            return Ok(());
        }
        let line: Line = serde_json::from_str(&frame.data).map_err(|e| bad_answer(ctx, e))?;
        if let Some(error) = &line.error {
            return Err(in_band_error(ctx, error));
        }
        let writer = self.writer.get_or_insert_with(|| {
            let mut w =
                StreamWriter::new(ctx.info.endpoint, ctx.answer_model(), ctx.created(), false);
            w.set_id(&answer_id(ctx));
            w
        });
        writer.reasoning(out, line.thinking());
        writer.text(out, line.content());
        for call in line.tool_calls() {
            let c = call.to_openai(ctx, self.tool_calls as usize);
            writer.tool_call_start(out, self.tool_calls, &c.id, &c.function.name);
            writer.tool_call_arguments(out, self.tool_calls, &c.function.arguments);
            self.tool_calls += 1;
        }
        if line.done {
            writer.finish(finish_reason(
                line.done_reason.as_deref(),
                self.tool_calls > 0,
            ));
            writer.usage(line.usage());
            self.done = true;
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
        // `{"error": "model \"x\" not found, try pulling it first"}` and the like.
        let message = error_message(
            status,
            body,
            &[&["error"], &["error", "message"], &["message"]],
        );
        provider_error(ctx, status, headers, &message)
    }
}

/// The api_base's path without an endpoint path a config may carry (LiteLLM accepts
/// `http://host:11434/api/chat` as the api_base).
fn base_path(path: &str) -> &str {
    for suffix in ["/api/chat", "/api/generate", "/api/embed", "/api"] {
        if let Some(rest) = path.strip_suffix(suffix) {
            return rest;
        }
    }
    path
}

/// Ollama's answers carry no id: one from the attempt's clock.
/// Ollama's answers carry no id: Envoy's request id stands in (the clock without one).
fn answer_id(ctx: &Ctx) -> String {
    if ctx.request_id.is_empty() {
        format!("ollama-{}", ctx.now_ms)
    } else {
        ctx.request_id.to_string()
    }
}

/// OpenAI's finish_reason. Ollama says `stop` after tool calls too.
fn finish_reason(done_reason: Option<&str>, tool_calls: bool) -> &'static str {
    match done_reason {
        _ if tool_calls => "tool_calls",
        Some("length") => "length",
        _ => "stop",
    }
}

/// An error Ollama reported in a successful answer or mid-stream (`{"error": "..."}`).
fn in_band_error(ctx: &Ctx, message: &str) -> ApiError {
    ApiError::new(
        500,
        "internal_server_error",
        format!(
            "litellm.InternalServerError: {} reported an error: {message}",
            ctx.provider()
        ),
    )
}

// ---------------------------------------------------------------------------------------
// Requests

/// What `/api/chat` and `/api/generate` share: the sampling options and the switches.
#[derive(Serialize, Default)]
struct Shared {
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<Value>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    options: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    think: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_alive: Option<Value>,
}

#[derive(Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<OllamaMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<OllamaTool<'a>>,
    stream: bool,
    #[serde(flatten)]
    shared: Shared,
}

#[derive(Serialize)]
struct GenerateBody<'a> {
    model: &'a str,
    prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<&'a str>,
    stream: bool,
    #[serde(flatten)]
    shared: Shared,
    /// `/api/generate`'s own fields, as the client sent them.
    #[serde(flatten)]
    native: Map<String, Value>,
}

#[derive(Serialize)]
struct OllamaMessage<'a> {
    role: &'static str,
    content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<OllamaCall<'a>>,
    /// The function a tool result answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
struct OllamaCall<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    id: &'a str,
    function: OllamaCallFunction<'a>,
}

#[derive(Serialize)]
struct OllamaCallFunction<'a> {
    name: &'a str,
    /// A JSON object, not text.
    arguments: Value,
}

#[derive(Serialize)]
struct OllamaTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: OllamaFunction<'a>,
}

#[derive(Serialize)]
struct OllamaFunction<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: Value,
}

impl Ollama {
    fn start_stream(&mut self, ctx: &Ctx, req: &ChatRequest) -> bool {
        let stream = req.is_stream();
        if stream {
            let mut w = StreamWriter::new(
                ctx.info.endpoint,
                ctx.answer_model(),
                ctx.created(),
                req.include_usage(),
            );
            w.set_id(&answer_id(ctx));
            self.writer = Some(w);
        }
        stream
    }

    fn chat_body(&mut self, ctx: &Ctx, req: ChatRequest) -> Result<Vec<u8>, ApiError> {
        // Only /api/generate has fields of its own.
        let (shared, _) = shared(ctx, &req, &[])?;
        let messages = chat_messages(&req.messages)?;
        // Ollama has no tool_choice (LiteLLM drops it); "none" is kept by offering no tools.
        let offer_tools = !matches!(&req.tool_choice, Some(ToolChoice::Mode(m)) if m == "none");
        let tools = if offer_tools { tools(&req)? } else { vec![] };
        let body = ChatBody {
            model: &ctx.deployment.model,
            messages,
            tools,
            stream: self.start_stream(ctx, &req),
            shared,
        };
        serde_json::to_vec(&body)
            .map_err(|e| ApiError::internal(format!("Cannot write the Ollama request: {e}")))
    }

    fn generate_body(&mut self, ctx: &Ctx, req: ChatRequest) -> Result<Vec<u8>, ApiError> {
        // /api/generate calls no tools (LiteLLM refuses them for ollama/; ollama_chat/ has them).
        if req.tools.as_ref().is_some_and(|t| !t.is_empty()) {
            ctx.unsupported("tools")?;
        }
        if req.tool_choice.is_some() {
            ctx.unsupported("tool_choice")?;
        }
        let (shared, native) = shared(ctx, &req, GENERATE_PARAMS)?;
        let (prompt, system, images) = if ctx.info.endpoint == Endpoint::Completions {
            // The client's prompt, as it is.
            let prompt = req
                .messages
                .first()
                .and_then(|m| m.content.as_ref())
                .map(Content::text)
                .unwrap_or_default();
            (prompt, None, vec![])
        } else {
            flatten(&req.messages)?
        };
        let body = GenerateBody {
            model: &ctx.deployment.model,
            prompt,
            system,
            images,
            stream: self.start_stream(ctx, &req),
            shared,
            native,
        };
        serde_json::to_vec(&body)
            .map_err(|e| ApiError::internal(format!("Cannot write the Ollama request: {e}")))
    }

    fn embed_body(&mut self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        #[derive(Serialize)]
        struct EmbedBody<'a> {
            model: &'a str,
            input: Vec<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            dimensions: Option<u32>,
            #[serde(flatten)]
            native: Map<String, Value>,
        }
        let req = EmbeddingsRequest::parse(body)?;
        if req.user.is_some() {
            ctx.unsupported("user")?;
        }
        let mut native = Map::new();
        for (name, value) in &req.extra {
            match name.as_str() {
                "truncate" | "keep_alive" | "options" => {
                    native.insert(name.clone(), value.clone());
                }
                n if PROXY_FIELDS.contains(&n) => {}
                _ => ctx.unsupported(name)?,
            }
        }
        self.base64 = req.base64();
        let body = EmbedBody {
            model: &ctx.deployment.model,
            input: req.texts(ctx.provider())?,
            dimensions: req.dimensions,
            native,
        };
        serde_json::to_vec(&body)
            .map_err(|e| ApiError::internal(format!("Cannot write the Ollama request: {e}")))
    }

    fn embed_response(&self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        #[derive(Deserialize)]
        struct EmbedResponse {
            embeddings: Vec<Vec<f32>>,
            #[serde(default)]
            prompt_eval_count: Option<u64>,
        }
        let r: EmbedResponse = serde_json::from_slice(body).map_err(|e| bad_answer(ctx, e))?;
        Ok(embeddings_response(
            &r.embeddings,
            ctx.answer_model(),
            r.prompt_eval_count.unwrap_or(0),
            self.base64,
        ))
    }
}

/// The options and switches of a chat or generate request, and the `allowed` fields of the
/// endpoint's own that the client sent. Anything else Ollama cannot take is refused (or
/// dropped with drop_params).
fn shared(
    ctx: &Ctx,
    req: &ChatRequest,
    allowed: &[&str],
) -> Result<(Shared, Map<String, Value>), ApiError> {
    if req.n.is_some_and(|n| n > 1) {
        ctx.unsupported("n")?;
    }
    let unsupported = [
        ("logprobs", req.logprobs.is_some()),
        ("top_logprobs", req.top_logprobs.is_some()),
        ("logit_bias", req.logit_bias.is_some()),
        ("parallel_tool_calls", req.parallel_tool_calls.is_some()),
    ];
    for (name, present) in unsupported {
        if present {
            ctx.unsupported(name)?;
        }
    }
    let mut s = Shared::default();
    let mut set = |name: &str, value: Option<Value>| {
        if let Some(v) = value {
            s.options.insert(name.to_string(), v);
        }
    };
    set("temperature", req.temperature.map(Value::from));
    set("top_p", req.top_p.map(Value::from));
    set("num_predict", req.max_output_tokens().map(Value::from));
    set("stop", req.stop.as_ref().map(|s| Value::from(s.to_vec())));
    set("seed", req.seed.map(Value::from));
    set("presence_penalty", req.presence_penalty.map(Value::from));
    set("frequency_penalty", req.frequency_penalty.map(Value::from));
    s.format = match &req.response_format {
        None => None,
        Some(f) => match f.kind.as_str() {
            "text" => None,
            "json_object" => Some(Value::from("json")),
            "json_schema" => Some(
                f.json_schema
                    .as_ref()
                    .and_then(|s| s.schema.clone())
                    .unwrap_or_else(|| Value::from("json")),
            ),
            other => {
                return Err(ApiError::bad_request(format!(
                    "response_format.type must be \"text\", \"json_object\" or \"json_schema\", not \"{other}\"."
                ))
                .with_param("response_format"))
            }
        },
    };
    // LiteLLM's mapping: gpt-oss takes a level; other models think or not.
    s.think = match (&req.reasoning_effort, &req.thinking) {
        (Some(effort), _) if ctx.deployment.model.starts_with("gpt-oss") => {
            Some(Value::from(effort.as_str()))
        }
        (Some(effort), _) => Some(Value::from(matches!(
            effort.as_str(),
            "low" | "medium" | "high"
        ))),
        (None, Some(t)) => Some(Value::from(
            t.get("type").and_then(Value::as_str) == Some("enabled"),
        )),
        (None, None) => None,
    };
    let mut native = Map::new();
    for (name, value) in &req.extra {
        match name.as_str() {
            n if OPTION_PARAMS.contains(&n) => {
                s.options.insert(name.clone(), value.clone());
            }
            // Ollama's own `options`, `format`, `think` and `keep_alive` win over the mapped ones.
            "options" => {
                if let Some(options) = value.as_object() {
                    s.options
                        .extend(options.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
            "format" => s.format = Some(value.clone()),
            "think" => s.think = Some(value.clone()),
            "keep_alive" => s.keep_alive = Some(value.clone()),
            n if allowed.contains(&n) => {
                native.insert(name.clone(), value.clone());
            }
            n if PROXY_FIELDS.contains(&n) => {}
            _ => ctx.unsupported(name)?,
        }
    }
    Ok((s, native))
}

fn tools(req: &ChatRequest) -> Result<Vec<OllamaTool<'_>>, ApiError> {
    req.tools
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.kind != "function" {
                return Err(ApiError::bad_request(format!(
                    "tools[{i}] is of type `{}`: Ollama takes function tools only.",
                    t.kind
                ))
                .with_param(&format!("tools[{i}]")));
            }
            Ok(OllamaTool {
                kind: "function",
                function: OllamaFunction {
                    name: &t.function.name,
                    description: t.function.description.as_deref(),
                    parameters: t
                        .function
                        .parameters
                        .clone()
                        .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
                },
            })
        })
        .collect()
}

/// The OpenAI messages as `/api/chat`'s.
fn chat_messages(messages: &[Message]) -> Result<Vec<OllamaMessage<'_>>, ApiError> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let param = format!("messages[{i}]");
            let (text, images) = text_and_images(m, &param)?;
            let mut out = OllamaMessage {
                role: "user",
                content: text,
                thinking: None,
                images,
                tool_calls: vec![],
                tool_name: None,
                tool_call_id: None,
            };
            match m.role {
                Role::System | Role::Developer => out.role = "system",
                Role::User => {}
                Role::Assistant => {
                    out.role = "assistant";
                    out.thinking = m
                        .extra
                        .get("reasoning_content")
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty());
                    out.tool_calls = assistant_calls(m, &param)?;
                }
                Role::Tool | Role::Function => {
                    out.role = "tool";
                    out.tool_call_id = m.tool_call_id.as_deref();
                    // Ollama names the function a result answers: find it by the call's id.
                    out.tool_name = m
                        .tool_call_id
                        .as_deref()
                        .and_then(|id| called_function(&messages[..i], id))
                        .or(m.name.as_deref());
                }
            }
            Ok(out)
        })
        .collect()
}

/// The name of the function an earlier assistant message called with this id.
fn called_function<'a>(earlier: &'a [Message], id: &str) -> Option<&'a str> {
    earlier
        .iter()
        .rev()
        .filter_map(|m| m.tool_calls.as_deref())
        .flatten()
        .find(|c| c.id == id)
        .map(|c| c.function.name.as_str())
}

/// An assistant message's tool calls, their arguments parsed into the object Ollama takes.
fn assistant_calls<'a>(m: &'a Message, param: &str) -> Result<Vec<OllamaCall<'a>>, ApiError> {
    m.tool_calls
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(j, c)| {
            Ok(OllamaCall {
                id: &c.id,
                function: OllamaCallFunction {
                    name: &c.function.name,
                    arguments: arguments(&c.function.arguments).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "{param}.tool_calls[{j}].function.arguments is not a JSON object: Ollama needs the arguments as JSON."
                        ))
                        .with_param(param)
                    })?,
                },
            })
        })
        .collect()
}

/// A tool call's arguments as a JSON object (empty text is no arguments).
fn arguments(text: &str) -> Option<Value> {
    if text.trim().is_empty() {
        return Some(Value::Object(Map::new()));
    }
    serde_json::from_str::<Value>(text)
        .ok()
        .filter(Value::is_object)
}

/// A message's text parts joined, and its images as base64 (Ollama's form). Ollama fetches no
/// URL: an image must come inline, as a data URL.
fn text_and_images<'a>(m: &'a Message, param: &str) -> Result<(String, Vec<&'a str>), ApiError> {
    let parts = match &m.content {
        None => return Ok((String::new(), vec![])),
        Some(Content::Text(t)) => return Ok((t.clone(), vec![])),
        Some(Content::Parts(parts)) => parts,
    };
    let mut text = String::new();
    let mut images = Vec::new();
    for p in parts {
        match (p.kind.as_str(), &p.text, &p.image_url) {
            ("text", Some(t), _) => text.push_str(t),
            ("image_url", _, Some(image)) => images.push(inline_image(image, param)?),
            (kind, _, _) => {
                return Err(ApiError::bad_request(format!(
                    "{param}: Ollama takes text and image_url content parts, not `{kind}`."
                ))
                .with_param(param))
            }
        }
    }
    Ok((text, images))
}

fn inline_image<'a>(image: &'a ImageUrl, param: &str) -> Result<&'a str, ApiError> {
    image.data().map(|(_, data)| data).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{param}: Ollama takes images inline, not by URL: send the image as a base64 data URL (data:image/png;base64,...)."
        ))
        .with_param(param)
    })
}

/// A chat as `/api/generate`'s prompt, system prompt and images, as LiteLLM flattens it for
/// `ollama/`: consecutive user and tool messages under `### User:`, assistant messages (their
/// tool calls as JSON) under `### Assistant:`; system messages become the system prompt.
fn flatten(messages: &[Message]) -> Result<(String, Option<String>, Vec<&str>), ApiError> {
    fn flush(prompt: &mut String, run: Option<(&str, String)>) {
        if let Some((who, text)) = run.filter(|(_, t)| !t.is_empty()) {
            prompt.push_str("### ");
            prompt.push_str(who);
            prompt.push_str(":\n");
            prompt.push_str(&text);
            prompt.push_str("\n\n");
        }
    }
    let mut prompt = String::new();
    let mut system: Vec<String> = Vec::new();
    let mut images = Vec::new();
    let mut run: Option<(&str, String)> = None;
    for (i, m) in messages.iter().enumerate() {
        let param = format!("messages[{i}]");
        let (mut text, found) = text_and_images(m, &param)?;
        images.extend(found);
        let who = match m.role {
            Role::System | Role::Developer => {
                flush(&mut prompt, run.take());
                system.push(text);
                continue;
            }
            Role::User | Role::Tool | Role::Function => "User",
            Role::Assistant => {
                let calls = assistant_calls(m, &param)?;
                if !calls.is_empty() {
                    let calls: Vec<Value> = calls
                        .into_iter()
                        .map(|c| {
                            serde_json::json!({"id": c.id, "type": "function",
                                "function": {"name": c.function.name, "arguments": c.function.arguments}})
                        })
                        .collect();
                    text.push_str("Tool Calls: ");
                    text.push_str(&serde_json::to_string_pretty(&calls).unwrap_or_default());
                }
                "Assistant"
            }
        };
        match &mut run {
            Some((current, t)) if *current == who => t.push_str(&text),
            _ => {
                flush(&mut prompt, run.take());
                run = Some((who, text));
            }
        }
    }
    flush(&mut prompt, run);
    let system = Some(system.join("\n")).filter(|s| !s.is_empty());
    Ok((prompt, system, images))
}

// ---------------------------------------------------------------------------------------
// Answers: one shape for `/api/chat` and `/api/generate`, whole or one stream line.

#[derive(Deserialize)]
struct Line {
    /// `/api/chat`.
    #[serde(default)]
    message: Option<LineMessage>,
    /// `/api/generate`.
    #[serde(default)]
    response: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<LineCall>>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct LineMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<LineCall>>,
}

#[derive(Deserialize)]
struct LineCall {
    #[serde(default)]
    id: Option<String>,
    function: LineFunction,
}

#[derive(Deserialize)]
struct LineFunction {
    #[serde(default)]
    name: String,
    #[serde(default)]
    arguments: Value,
}

impl Line {
    fn content(&self) -> &str {
        self.message
            .as_ref()
            .and_then(|m| m.content.as_deref())
            .or(self.response.as_deref())
            .unwrap_or("")
    }

    fn thinking(&self) -> &str {
        self.message
            .as_ref()
            .and_then(|m| m.thinking.as_deref())
            .or(self.thinking.as_deref())
            .unwrap_or("")
    }

    fn tool_calls(&self) -> &[LineCall] {
        self.message
            .as_ref()
            .and_then(|m| m.tool_calls.as_deref())
            .or(self.tool_calls.as_deref())
            .unwrap_or_default()
    }

    fn usage(&self) -> Usage {
        Usage::new(
            self.prompt_eval_count.unwrap_or(0),
            self.eval_count.unwrap_or(0),
        )
    }
}

impl LineCall {
    /// As OpenAI's: the arguments as JSON text, an id made up when Ollama sent none.
    fn to_openai(&self, ctx: &Ctx, index: usize) -> ToolCall {
        let arguments = match &self.function.arguments {
            Value::String(s) => s.clone(),
            Value::Null => "{}".to_string(),
            v => v.to_string(),
        };
        ToolCall {
            id: self
                .id
                .clone()
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| format!("call_{:x}_{index}", ctx.now_ms)),
            kind: "function".into(),
            function: FunctionCall {
                name: self.function.name.clone(),
                arguments,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::providers::tests::{ctx, ctx_for};
    use crate::providers::Credentials;

    fn request(
        provider: Provider,
        endpoint: Endpoint,
        body: Value,
    ) -> Result<(String, Value), ApiError> {
        let (d, i) = ctx_for(provider, endpoint, "");
        let r = Ollama::default().request(
            &ctx(&d, &i, &Credentials::None),
            body.to_string().as_bytes(),
        )?;
        assert!(r.headers.is_empty(), "no key, no authorization");
        Ok((r.path, serde_json::from_slice(&r.body).unwrap()))
    }

    fn frame(data: &str) -> Frame {
        Frame {
            data: data.into(),
            ..Frame::default()
        }
    }

    #[test]
    fn chat_puts_sampling_in_options_and_always_says_stream() {
        let (path, b) = request(
            Provider::OllamaChat,
            Endpoint::ChatCompletions,
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 5, "temperature": 0.1, "stop": ["x"], "num_ctx": 4096,
                "response_format": {"type": "json_object"}, "keep_alive": "1m"}),
        )
        .unwrap();
        assert_eq!(path, "/api/chat");
        assert_eq!(b["stream"], false);
        assert_eq!(
            b["options"],
            serde_json::json!({"num_predict": 5, "temperature": 0.1, "stop": ["x"], "num_ctx": 4096})
        );
        assert_eq!(b["format"], "json");
        assert_eq!(b["keep_alive"], "1m");
    }

    #[test]
    fn tool_results_name_their_function_and_arguments_become_objects() {
        let (_, b) = request(
            Provider::OllamaChat,
            Endpoint::ChatCompletions,
            serde_json::json!({"model": "m", "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]}),
        )
        .unwrap();
        assert_eq!(
            b["messages"][1]["tool_calls"][0]["function"]["arguments"],
            serde_json::json!({"city": "Paris"})
        );
        assert_eq!(b["messages"][2]["tool_name"], "get_weather");
        let e = request(
            Provider::OllamaChat,
            Endpoint::ChatCompletions,
            serde_json::json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "not json"}}]}]}),
        )
        .unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn images_must_be_inline() {
        let image = |url: &str| {
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is it?"}, {"type": "image_url", "image_url": {"url": url}}]}]})
        };
        let (_, b) = request(
            Provider::OllamaChat,
            Endpoint::ChatCompletions,
            image("data:image/png;base64,iVBORw0K"),
        )
        .unwrap();
        assert_eq!(b["messages"][0]["images"], serde_json::json!(["iVBORw0K"]));
        let e = request(
            Provider::OllamaChat,
            Endpoint::ChatCompletions,
            image("https://example.com/cat.png"),
        )
        .unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (400, Some("messages[0]")));
        assert!(e.message.contains("data URL"), "{}", e.message);
    }

    #[test]
    fn generate_flattens_the_chat_and_takes_no_tools() {
        let (path, b) = request(
            Provider::Ollama,
            Endpoint::ChatCompletions,
            serde_json::json!({"model": "m", "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi"}, {"role": "user", "content": " there"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "bye"}]}),
        )
        .unwrap();
        assert_eq!(path, "/api/generate");
        assert_eq!(
            b["prompt"],
            "### User:\nhi there\n\n### Assistant:\nhello\n\n### User:\nbye\n\n"
        );
        assert_eq!(b["system"], "be brief");
        let (_, b) = request(
            Provider::Ollama,
            Endpoint::Completions,
            serde_json::json!({"model": "m", "prompt": "Once upon", "suffix": "end"}),
        )
        .unwrap();
        assert_eq!(
            (b["prompt"].as_str(), b["suffix"].as_str()),
            (Some("Once upon"), Some("end"))
        );
        let e = request(
            Provider::Ollama,
            Endpoint::ChatCompletions,
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "function", "function": {"name": "f"}}]}),
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools"));
    }

    #[test]
    fn tool_calls_finish_as_tool_calls_and_errors_end_the_stream() {
        let (d, i) = ctx_for(Provider::OllamaChat, Endpoint::ChatCompletions, "");
        let c = Credentials::None;
        let cx = ctx(&d, &i, &c);
        let mut t = Ollama::default();
        let mut out = Vec::new();
        t.stream_frame(&cx, &frame(r#"{"message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{"a":1}}}]},"done":false}"#), &mut out).unwrap();
        t.stream_frame(&cx, &frame(r#"{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":4}"#), &mut out).unwrap();
        t.stream_end(&cx, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(r#""arguments":"{\"a\":1}""#), "{text}");
        assert!(text.contains(r#""finish_reason":"tool_calls""#), "{text}");
        assert!(text.contains(r#""total_tokens":7"#), "{text}");

        let mut t = Ollama::default();
        let e = t
            .stream_frame(
                &cx,
                &frame(r#"{"error":"an error was encountered while running the model"}"#),
                &mut Vec::new(),
            )
            .unwrap_err();
        assert!(
            e.message.contains("while running the model"),
            "{}",
            e.message
        );
        assert_eq!(t.stream_end(&cx, &mut Vec::new()).unwrap_err().status, 502);
    }

    #[test]
    fn a_missing_model_is_not_found_with_ollamas_words() {
        let (d, i) = ctx_for(Provider::OllamaChat, Endpoint::ChatCompletions, "");
        let c = Credentials::None;
        let e = Ollama::default().error(
            &ctx(&d, &i, &c),
            404,
            &[],
            br#"{"error":"model \"llama9\" not found, try pulling it first"}"#,
        );
        assert_eq!(e.status, 404);
        assert!(e.message.contains("NotFoundError"), "{}", e.message);
        assert!(e.message.contains("try pulling it first"), "{}", e.message);
        assert_eq!(base_path("/api/chat"), "");
    }
}
