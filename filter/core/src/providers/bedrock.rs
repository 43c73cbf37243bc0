//! Amazon Bedrock: chat through the Converse API (`POST /model/{modelId}/converse`, and
//! `/converse-stream` answered as an AWS event stream), embeddings through InvokeModel
//! (`/model/{modelId}/invoke`) with the model family's own body (Amazon Titan, Cohere Embed).
//! Every request is SigV4-signed here (service `bedrock`, the deployment's region).
//!
//! LiteLLM's `bedrock_converse` mapping is the contract on the OpenAI side: system and
//! developer messages become `system` blocks, consecutive turns of one role are merged, tool
//! results go back in a user turn, `response_format` becomes a forced tool whose input is the
//! answer, and parameters Bedrock cannot take are refused (or dropped with drop_params).
//!
//! API reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
//! (the request and answer shapes here follow botocore's `bedrock-runtime` service model).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use switchyard_config::{Dialect, Endpoint};

use super::sigv4::{uri_encode, Signer};
use super::{
    bad_answer, error_message, provider_error, stream_cut, Credentials, Ctx, ProviderRequest,
    Translator,
};
use crate::error::ApiError;
use crate::framing::{Frame, Framing};
use crate::json::RawObject;
use crate::openai::portable_tool_call_id;
use crate::openai::{
    embeddings_response, Answer, ChatRequest, CompletionRequest, Content, EmbeddingsRequest,
    FunctionCall, Message, Part, Role, StreamWriter, ToolCall, ToolChoice, Usage,
};

/// The tool LiteLLM forces for `response_format` (its RESPONSE_FORMAT_TOOL_NAME).
const JSON_TOOL: &str = "json_tool_call";
/// Bedrock refuses a smaller thinking budget.
const MIN_THINKING_BUDGET: u64 = 1024;
/// What LiteLLM adds to a thinking budget for maxTokens when the client sets no max_tokens.
const DEFAULT_MAX_TOKENS: u64 = 4096;

#[derive(Default)]
pub struct Bedrock {
    /// `response_format` became the forced JSON tool: its input is the answer's content.
    json_mode: bool,
    /// Tool names Bedrock would refuse, renamed: (Bedrock's name, the client's).
    renamed: Vec<(String, String)>,
    embed: Option<Embed>,
    stream: Option<Stream>,
}

/// What an embeddings answer needs from its request.
struct Embed {
    family: EmbedFamily,
    base64: bool,
    /// Cohere on Bedrock reports no token count in its body: an estimate (4 bytes a token).
    estimated_tokens: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum EmbedFamily {
    Titan,
    Cohere,
}

struct Stream {
    writer: StreamWriter,
    /// Bedrock's content block index → what that block is.
    blocks: Vec<(u64, StreamBlock)>,
    next_tool: u32,
    /// messageStop arrived: the answer is complete.
    stopped: bool,
}

#[derive(Clone, Copy)]
enum StreamBlock {
    /// A tool call, by its index among the answer's calls.
    Tool(u32),
    /// The forced JSON tool of response_format: its input is text.
    Json,
}

impl Translator for Bedrock {
    fn owned_headers(&self) -> &'static [&'static str] {
        &[
            "authorization",
            "x-amz-date",
            "x-amz-content-sha256",
            "x-amz-security-token",
        ]
    }

    fn request(&mut self, ctx: &Ctx, body: &[u8]) -> Result<ProviderRequest, ApiError> {
        let model = model_id(&ctx.deployment.model);
        let (operation, body) = match ctx.info.endpoint {
            Endpoint::Embeddings => ("invoke", self.embeddings_body(ctx, model, body)?),
            endpoint => {
                let req = if endpoint == Endpoint::Completions {
                    CompletionRequest::parse_as_chat(body)?
                } else {
                    ChatRequest::parse(body)?
                };
                let converse = self.converse_body(ctx, model, &req)?;
                if ctx.info.stream {
                    self.stream = Some(Stream {
                        writer: {
                            let mut w = StreamWriter::new(
                                endpoint,
                                ctx.answer_model(),
                                ctx.created(),
                                req.include_usage(),
                            );
                            w.set_id(ctx.request_id);
                            w
                        },
                        blocks: Vec::new(),
                        next_tool: 0,
                        stopped: false,
                    });
                    ("converse-stream", converse)
                } else {
                    ("converse", converse)
                }
            }
        };
        signed(ctx, model, operation, body)
    }

    fn native(&mut self, ctx: &Ctx, body: &[u8]) -> Option<Result<ProviderRequest, ApiError>> {
        let model = model_id(&ctx.deployment.model);
        let messages = ctx.info.dialect == Dialect::Anthropic
            && ctx.info.endpoint == Endpoint::ChatCompletions
            && ctx
                .deployment
                .provider
                .speaks(model)
                .contains(&Dialect::Anthropic);
        if !messages {
            return None;
        }
        let operation = match ctx.info.stream {
            true => "invoke-with-response-stream",
            false => "invoke",
        };
        Some(invoke_body(ctx, body).and_then(|body| signed(ctx, model, operation, body)))
    }

    fn framing(&self) -> Framing {
        Framing::EventStream
    }

    fn response(&mut self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        if let Some(embed) = &self.embed {
            return embed.answer(ctx, body);
        }
        let r: ConverseResponse = serde_json::from_slice(body).map_err(|e| bad_answer(ctx, e))?;
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut tool_calls = Vec::new();
        for block in r.output.message.map(|m| m.content).unwrap_or_default() {
            if let Some(t) = block.text {
                text.push_str(&t);
            }
            if let Some(t) = block.reasoning_content.and_then(|r| r.reasoning_text) {
                reasoning.push_str(&t.text);
            }
            if let Some(u) = block.tool_use {
                tool_calls.push(ToolCall {
                    id: u.tool_use_id,
                    kind: "function".into(),
                    function: FunctionCall {
                        name: self.client_name(&u.name),
                        // The input's JSON as Bedrock wrote it (its key order kept).
                        arguments: u
                            .input
                            .map_or_else(|| "{}".to_string(), |i| compact(i.get())),
                    },
                });
            }
        }
        let mut finish_reason = finish_reason(&r.stop_reason);
        if self.json_mode && tool_calls.len() == 1 && tool_calls[0].function.name == JSON_TOOL {
            // The forced tool's input is the JSON answer (LiteLLM also unwraps a lone
            // "properties" object some models wrap it in).
            let call = tool_calls.remove(0);
            let args = call.function.arguments;
            text = match serde_json::from_str::<Map<String, Value>>(&args) {
                Ok(obj) if obj.len() == 1 => match obj.get("properties") {
                    Some(inner) if inner.is_object() => inner_json(&args).unwrap_or(args),
                    _ => args,
                },
                _ => args,
            };
            finish_reason = "stop";
        }
        let answer = Answer {
            // Converse answers carry no id: Envoy's request id stands in.
            id: ctx.request_id.to_string(),
            content: (!text.is_empty() || tool_calls.is_empty()).then_some(text),
            reasoning: (!reasoning.is_empty()).then_some(reasoning),
            tool_calls,
            finish_reason: finish_reason.into(),
            usage: usage(&r.usage),
        };
        Ok(answer.to_openai(ctx.info.endpoint, ctx.answer_model(), ctx.created()))
    }

    fn stream_frame(
        &mut self,
        ctx: &Ctx,
        frame: &Frame,
        out: &mut Vec<u8>,
    ) -> Result<(), ApiError> {
        if frame.exception {
            return Err(stream_exception(ctx, frame));
        }
        let json_mode = self.json_mode;
        let renamed = &self.renamed;
        let Some(st) = self.stream.as_mut() else {
            return Err(bad_answer(
                ctx,
                "a stream for a request that asked for none",
            ));
        };
        let event = frame.event.as_deref().unwrap_or_default();
        match event {
            "contentBlockStart" => {
                let e: BlockStart = parse_event(ctx, event, &frame.data)?;
                if let Some(tool) = e.start.tool_use {
                    let name = client_name(renamed, &tool.name);
                    if json_mode && name == JSON_TOOL {
                        st.blocks.push((e.content_block_index, StreamBlock::Json));
                    } else {
                        let index = st.next_tool;
                        st.next_tool += 1;
                        st.blocks
                            .push((e.content_block_index, StreamBlock::Tool(index)));
                        st.writer
                            .tool_call_start(out, index, &tool.tool_use_id, &name);
                    }
                }
            }
            "contentBlockDelta" => {
                let e: BlockDelta = parse_event(ctx, event, &frame.data)?;
                if let Some(text) = &e.delta.text {
                    st.writer.text(out, text);
                }
                if let Some(r) = e.delta.reasoning_content.and_then(|r| r.text) {
                    st.writer.reasoning(out, &r);
                }
                if let Some(input) = e.delta.tool_use.map(|t| t.input) {
                    let block = st
                        .blocks
                        .iter()
                        .find(|(i, _)| *i == e.content_block_index)
                        .map(|(_, b)| *b);
                    match block {
                        Some(StreamBlock::Tool(index)) => {
                            st.writer.tool_call_arguments(out, index, &input)
                        }
                        Some(StreamBlock::Json) => st.writer.text(out, &input),
                        None => {
                            return Err(bad_answer(
                                ctx,
                                format!(
                                    "tool input for content block {} that never started",
                                    e.content_block_index
                                ),
                            ))
                        }
                    }
                }
            }
            "messageStop" => {
                let e: MessageStop = parse_event(ctx, event, &frame.data)?;
                let json_answer = st
                    .blocks
                    .iter()
                    .any(|(_, b)| matches!(b, StreamBlock::Json))
                    && st.next_tool == 0;
                st.writer.finish(if json_answer {
                    "stop"
                } else {
                    finish_reason(&e.stop_reason)
                });
                st.stopped = true;
            }
            "metadata" => {
                let e: Metadata = parse_event(ctx, event, &frame.data)?;
                st.writer.usage(usage(&e.usage));
            }
            // messageStart, contentBlockStop, and events newer than this translator.
            _ => {}
        }
        Ok(())
    }

    fn stream_end(&mut self, ctx: &Ctx, out: &mut Vec<u8>) -> Result<(), ApiError> {
        match self.stream.as_mut() {
            Some(st) if st.stopped => {
                st.writer.end(out);
                Ok(())
            }
            _ => Err(stream_cut(ctx)),
        }
    }

    fn stream_usage(&self) -> Option<Usage> {
        self.stream.as_ref().and_then(|s| s.writer.reported_usage())
    }

    fn error(&self, ctx: &Ctx, status: u16, headers: &[(String, String)], body: &[u8]) -> ApiError {
        // The exception's name is in `x-amzn-errortype` (`ThrottlingException:http://...`),
        // or a `__type` in the body (`com.amazon...#ValidationException`).
        let kind = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("x-amzn-errortype"))
            .map(|(_, v)| v.split(':').next().unwrap_or_default().trim().to_string())
            .or_else(|| {
                let v: Value = serde_json::from_slice(body).ok()?;
                let t = v.get("__type")?.as_str()?;
                Some(t.rsplit('#').next().unwrap_or(t).to_string())
            })
            .unwrap_or_default();
        let message = error_message(status, body, &[&["message"], &["Message"]]);
        let message = if kind.is_empty() {
            message
        } else {
            format!("{kind}: {message}")
        };
        provider_error(ctx, exception_status(&kind, status), headers, &message)
    }
}

impl Bedrock {
    /// The name the client gave a tool Bedrock knows by another.
    fn client_name(&self, name: &str) -> String {
        client_name(&self.renamed, name)
    }

    /// A tool name as Bedrock takes it (`[a-zA-Z][a-zA-Z0-9_-]*`), remembered when changed.
    fn bedrock_name(&mut self, name: &str) -> String {
        let mut out: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if !out.starts_with(|c: char| c.is_ascii_alphabetic()) {
            out.insert(0, 'a');
        }
        if out != name && !self.renamed.iter().any(|(b, _)| *b == out) {
            self.renamed.push((out.clone(), name.to_string()));
        }
        out
    }

    fn converse_body(
        &mut self,
        ctx: &Ctx,
        model: &str,
        req: &ChatRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let family = Family::of(model);
        let mut additional = Map::new();
        let mut top_level = Map::new();

        // OpenAI parameters the Converse API has no place for (LiteLLM refuses them too).
        let unsupported = [
            ("n", req.n.is_some_and(|n| n != 1)),
            ("presence_penalty", req.presence_penalty.is_some()),
            ("frequency_penalty", req.frequency_penalty.is_some()),
            ("seed", req.seed.is_some()),
            ("logprobs", req.logprobs == Some(true)),
            ("top_logprobs", req.top_logprobs.is_some()),
            ("logit_bias", req.logit_bias.is_some()),
            ("user", req.user.is_some()),
            // Bedrock models call tools in parallel as they see fit.
            (
                "parallel_tool_calls",
                req.parallel_tool_calls == Some(false),
            ),
        ];
        for (param, set) in unsupported {
            if set {
                ctx.unsupported(param)?;
            }
        }
        for (name, value) in &req.extra {
            match name.as_str() {
                "top_k" => {
                    if family.is("anthropic.") {
                        additional.insert("top_k".into(), value.clone());
                    } else if family.is("amazon.nova") {
                        additional.insert("inferenceConfig".into(), json!({"topK": value}));
                    } else {
                        ctx.unsupported(name)?;
                    }
                }
                // Converse fields LiteLLM passes through as given.
                "guardrailConfig" | "performanceConfig" | "requestMetadata" | "serviceTier" => {
                    top_level.insert(name.clone(), value.clone());
                }
                "service_tier" => match value.as_str() {
                    Some("auto") | Some("default") => {
                        top_level.insert("serviceTier".into(), json!({"type": "default"}));
                    }
                    Some(tier @ ("flex" | "priority")) => {
                        top_level.insert("serviceTier".into(), json!({"type": tier}));
                    }
                    _ => ctx.unsupported(name)?,
                },
                // LiteLLM's own request metadata (for its logging): never sent to a provider.
                "metadata" => {}
                _ => ctx.unsupported(name)?,
            }
        }

        let mut inference = InferenceConfig {
            max_tokens: req.max_output_tokens(),
            temperature: req.temperature,
            top_p: req.top_p,
            stop_sequences: req
                .stop
                .as_ref()
                .map(|s| s.to_vec().into_iter().filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
        };

        // Thinking: Anthropic's switch as the client gave it, or reasoning_effort mapped as
        // LiteLLM maps it per model family.
        let mut thinking = None;
        if let Some(t) = &req.thinking {
            if family.thinks() {
                thinking = Some(t.clone());
            } else {
                ctx.unsupported("thinking")?;
            }
        }
        if let Some(effort) = req.reasoning_effort.as_deref() {
            if family.is("openai.gpt-oss") || model.contains("gpt-oss") {
                additional.insert("reasoning_effort".into(), json!(effort));
            } else if model.contains("nova-2-lite") {
                if !matches!(effort, "low" | "medium" | "high") {
                    return Err(ApiError::bad_request(format!(
                        "reasoning_effort must be low, medium or high for {model}, not {effort:?}."
                    ))
                    .with_param("reasoning_effort"));
                }
                additional.insert(
                    "reasoningConfig".into(),
                    json!({"type": "enabled", "maxReasoningEffort": effort}),
                );
            } else if family.thinks() {
                let budget = match effort {
                    "none" | "disable" => None,
                    "minimal" | "low" => Some(1024),
                    "medium" => Some(2048),
                    "high" => Some(4096),
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "reasoning_effort must be minimal, low, medium or high, not {other:?}."
                        ))
                        .with_param("reasoning_effort"))
                    }
                };
                if let Some(budget) = budget {
                    thinking = Some(json!({"type": "enabled", "budget_tokens": budget}));
                }
            } else {
                ctx.unsupported("reasoning_effort")?;
            }
        }
        let thinking_on = thinking
            .as_ref()
            .is_some_and(|t| t.get("type").and_then(Value::as_str) == Some("enabled"));
        if let Some(mut t) = thinking {
            if let Some(budget) = t.get("budget_tokens").and_then(Value::as_u64) {
                let budget = budget.max(MIN_THINKING_BUDGET);
                t["budget_tokens"] = json!(budget);
                if thinking_on && inference.max_tokens.is_none() {
                    inference.max_tokens = Some(budget + DEFAULT_MAX_TOKENS);
                }
            }
            additional.insert("thinking".into(), t);
        }

        // Tools, tool_choice and response_format (a forced tool).
        let mut tools = Vec::new();
        for tool in req.tools.iter().flatten() {
            if tool.kind != "function" {
                return Err(ApiError::bad_request(format!(
                    "Bedrock takes function tools only, not tools of type {:?}.",
                    tool.kind
                ))
                .with_param("tools"));
            }
            let name = self.bedrock_name(&tool.function.name);
            tools.push(ToolSpec::new(
                name,
                tool.function.description.clone(),
                tool.function.parameters.clone(),
            ));
        }
        if !tools.is_empty() && !family.takes_tools() {
            ctx.unsupported("tools")?;
            tools.clear();
        }
        let mut choice = match &req.tool_choice {
            None => None,
            Some(ToolChoice::Mode(mode)) => match mode.as_str() {
                "auto" => family.forces_tools().then(|| json!({"auto": {}})),
                "required" => {
                    if family.forces_tools() {
                        Some(json!({"any": {}}))
                    } else {
                        ctx.unsupported("tool_choice")?;
                        None
                    }
                }
                // No tool may be called: Bedrock has no such choice, so no tools are sent,
                // unless the conversation has tool calls (Bedrock then wants the tools).
                "none" => {
                    if has_tool_blocks(&req.messages) {
                        ctx.unsupported("tool_choice")?;
                    } else {
                        tools.clear();
                    }
                    None
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "tool_choice must be \"none\", \"auto\", \"required\" or a named function, not {other:?}."
                    ))
                    .with_param("tool_choice"))
                }
            },
            Some(ToolChoice::Named { function, .. }) => {
                if family.forces_tools() {
                    Some(json!({"tool": {"name": self.bedrock_name(&function.name)}}))
                } else {
                    ctx.unsupported("tool_choice")?;
                    None
                }
            }
        };
        if let Some(format) = &req.response_format {
            if format.kind == "json_object" || format.kind == "json_schema" {
                let schema = format.json_schema.as_ref();
                tools.push(ToolSpec::new(
                    JSON_TOOL.into(),
                    schema.and_then(|s| s.description.clone()),
                    Some(
                        schema
                            .and_then(|s| s.schema.clone())
                            .unwrap_or_else(|| json!({"type": "object", "additionalProperties": true, "properties": {}})),
                    ),
                ));
                if family.forces_tools() && !thinking_on {
                    choice = Some(json!({"tool": {"name": JSON_TOOL}}));
                }
                self.json_mode = true;
            }
        }
        // A model that thinks cannot be forced to call a tool: LiteLLM makes it auto.
        if thinking_on && choice.as_ref().is_some_and(|c| c.get("auto").is_none()) {
            choice = Some(json!({"auto": {}}));
        }

        let (system, messages) = self.messages(&req.messages)?;
        if tools.is_empty() && has_tool_blocks(&req.messages) {
            return Err(ApiError::bad_request(
                "Bedrock needs the tools (`tools=`) of a conversation with tool calls or tool results: send them with every request.",
            )
            .with_param("tools"));
        }
        let body = ConverseRequest {
            messages,
            system,
            inference_config: inference,
            tool_config: (!tools.is_empty()).then_some(ToolConfig {
                tools,
                tool_choice: choice,
            }),
            additional_model_request_fields: additional,
            top_level,
        };
        serde_json::to_vec(&body).map_err(|e| ApiError::internal(format!("bedrock request: {e}")))
    }

    /// The system blocks and the conversation, consecutive turns of one role merged (Bedrock
    /// wants them alternating), tool results in the user's turn.
    fn messages(&mut self, messages: &[Message]) -> Result<(Vec<Block>, Vec<Turn>), ApiError> {
        let mut system = Vec::new();
        let mut turns: Vec<Turn> = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let cache_point = m.extra.contains_key("cache_control");
            match m.role {
                Role::System | Role::Developer => {
                    for part in m.content.iter().flat_map(Content::parts) {
                        if part.kind == "text" {
                            let text = part.text.clone().unwrap_or_default();
                            if !text.trim().is_empty() {
                                system.push(Block::Text(text));
                                if part.extra.contains_key("cache_control") || cache_point {
                                    system.push(Block::cache_point());
                                }
                            }
                        }
                    }
                }
                Role::User => {
                    let mut blocks = Vec::new();
                    for part in m.content.iter().flat_map(Content::parts) {
                        content_block(&part, i, &mut blocks)?;
                    }
                    if cache_point && !blocks.is_empty() {
                        blocks.push(Block::cache_point());
                    }
                    push_turn(&mut turns, "user", blocks);
                }
                Role::Tool => {
                    let id = m.tool_call_id.clone().ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "messages[{i}] is a tool result without tool_call_id: give the id of the tool call it answers."
                        ))
                        .with_param("messages")
                    })?;
                    let text = m.content.as_ref().map(Content::text).unwrap_or_default();
                    push_turn(
                        &mut turns,
                        "user",
                        vec![Block::ToolResult {
                            tool_use_id: portable_tool_call_id(&id).into_owned(),
                            content: vec![json!({"text": text})],
                        }],
                    );
                }
                Role::Function => {
                    return Err(ApiError::bad_request(format!(
                        "messages[{i}] has the legacy role \"function\": send tool results as role \"tool\" with the tool_call_id."
                    ))
                    .with_param("messages"))
                }
                Role::Assistant => {
                    let mut blocks = Vec::new();
                    for part in m.content.iter().flat_map(Content::parts) {
                        content_block(&part, i, &mut blocks)?;
                    }
                    for call in m.tool_calls.iter().flatten() {
                        let args = call.function.arguments.trim();
                        let args = if args.is_empty() { "{}" } else { args };
                        // Checked JSON, sent as the client wrote it.
                        let input = RawValue::from_string(args.to_string()).map_err(|e| {
                            ApiError::bad_request(format!(
                                "messages[{i}]: the arguments of tool call {} are not JSON ({e}).",
                                call.id
                            ))
                            .with_param("messages")
                        })?;
                        blocks.push(Block::ToolUse {
                            tool_use_id: portable_tool_call_id(&call.id).into_owned(),
                            name: self.bedrock_name(&call.function.name),
                            input,
                        });
                    }
                    push_turn(&mut turns, "assistant", blocks);
                }
            }
        }
        Ok((system, turns))
    }

    fn embeddings_body(
        &mut self,
        ctx: &Ctx,
        model: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        let req = EmbeddingsRequest::parse(body)?;
        let texts = req.texts("Bedrock")?;
        let base = Family::of(model).base;
        if req.user.is_some() {
            ctx.unsupported("user")?;
        }
        let mut out = Map::new();
        let family = if base.starts_with("amazon.titan-embed") {
            for name in req.extra.keys() {
                ctx.unsupported(name)?;
            }
            let [text] = texts.as_slice() else {
                return Err(ApiError::bad_request(format!(
                    "Amazon Titan embeddings take one input per request and this one has {}: send them one by one, or use a Cohere Embed model on Bedrock (up to 96 inputs a request).",
                    texts.len()
                ))
                .with_param("input"));
            };
            out.insert("inputText".into(), json!(text));
            if base.starts_with("amazon.titan-embed-text-v2") {
                if let Some(d) = req.dimensions {
                    out.insert("dimensions".into(), json!(d));
                }
                out.insert("normalize".into(), json!(true));
            } else if base.starts_with("amazon.titan-embed-image") {
                if let Some(d) = req.dimensions {
                    out.insert(
                        "embeddingConfig".into(),
                        json!({"outputEmbeddingLength": d}),
                    );
                }
            } else if req.dimensions.is_some() {
                ctx.unsupported("dimensions")?;
            }
            EmbedFamily::Titan
        } else if base.starts_with("cohere.embed") {
            out.insert("texts".into(), json!(texts));
            let mut input_type = json!("search_document");
            for (name, value) in &req.extra {
                match name.as_str() {
                    "input_type" => input_type = value.clone(),
                    "truncate" => {
                        out.insert("truncate".into(), value.clone());
                    }
                    _ => ctx.unsupported(name)?,
                }
            }
            out.insert("input_type".into(), input_type);
            if let Some(d) = req.dimensions {
                if base.starts_with("cohere.embed-v4") {
                    out.insert("output_dimension".into(), json!(d));
                } else {
                    ctx.unsupported("dimensions")?;
                }
            }
            EmbedFamily::Cohere
        } else {
            return Err(ApiError::bad_request(format!(
                "Switchyard embeds with Amazon Titan and Cohere Embed models on Bedrock; {model} is neither. Use a model id such as amazon.titan-embed-text-v2:0 or cohere.embed-english-v3."
            ))
            .with_param("model"));
        };
        self.embed = Some(Embed {
            family,
            base64: req.base64(),
            estimated_tokens: texts.iter().map(|t| (t.len() as u64).div_ceil(4)).sum(),
        });
        serde_json::to_vec(&out).map_err(|e| ApiError::internal(format!("bedrock request: {e}")))
    }
}

impl Embed {
    fn answer(&self, ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let (vectors, tokens) = match self.family {
            EmbedFamily::Titan => {
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Titan {
                    embedding: Vec<f32>,
                    #[serde(default)]
                    input_text_token_count: u64,
                }
                let t: Titan = serde_json::from_slice(body).map_err(|e| bad_answer(ctx, e))?;
                (vec![t.embedding], t.input_text_token_count)
            }
            EmbedFamily::Cohere => {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Embeddings {
                    Floats(Vec<Vec<f32>>),
                    ByType { float: Vec<Vec<f32>> },
                }
                #[derive(Deserialize)]
                struct Cohere {
                    embeddings: Embeddings,
                }
                let c: Cohere = serde_json::from_slice(body).map_err(|e| bad_answer(ctx, e))?;
                let vectors = match c.embeddings {
                    Embeddings::Floats(v) | Embeddings::ByType { float: v } => v,
                };
                (vectors, self.estimated_tokens)
            }
        };
        Ok(embeddings_response(
            &vectors,
            ctx.answer_model(),
            tokens,
            self.base64,
        ))
    }
}

/// The request for a Bedrock runtime operation on `model`: signed with SigV4 (or a Bedrock API
/// key as a bearer).
fn signed(
    ctx: &Ctx,
    model: &str,
    operation: &str,
    body: Vec<u8>,
) -> Result<ProviderRequest, ApiError> {
    let path = format!(
        "{}/model/{}/{operation}",
        ctx.deployment.base_path,
        uri_encode(model)
    );
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    match ctx.credentials {
        Credentials::Aws {
            access_key_id,
            secret_access_key,
            session_token,
        } => {
            let signer = Signer {
                access_key_id,
                secret_access_key,
                session_token: session_token.as_deref(),
                region: ctx.deployment.params.region.as_deref().unwrap_or("us-east-1"),
                service: "bedrock",
            };
            let mut signed = vec![("host".to_string(), ctx.authority.to_string())];
            signed.extend(headers.iter().cloned());
            headers.extend(signer.sign("POST", &path, &signed, &body, ctx.now_ms));
        }
        // A Bedrock API key (bearer token) needs no signature.
        Credentials::Key(_) | Credentials::Token(_) => headers.extend(ctx.credentials.bearer()),
        Credentials::None => {
            return Err(ApiError::unauthorized(format!(
                "No AWS credentials for deployment {} (bedrock/{}): set aws_access_key_id and aws_secret_access_key in its litellm_params, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in Envoy's environment.",
                ctx.deployment.id, ctx.deployment.model
            )))
        }
    }
    Ok(ProviderRequest {
        path,
        headers,
        body,
    })
}

/// Beta flags of Anthropic's API that Claude on Bedrock takes (`anthropic_beta` in the body);
/// the others a client sends are left out.
const BEDROCK_BETAS: &[&str] = &[
    "computer-use-2024-10-22",
    "computer-use-2025-01-24",
    "token-efficient-tools-2025-02-19",
    "interleaved-thinking-2025-05-14",
    "output-128k-2025-02-19",
    "dev-full-thinking-2025-05-14",
    "context-1m-2025-08-07",
    "context-management-2025-06-27",
    "effort-2025-11-24",
    "tool-search-tool-2025-10-19",
    "tool-examples-2025-10-29",
];

/// An Anthropic Messages request as InvokeModel takes it for Claude: the same body without
/// `model` and `stream` (the path says them), with Bedrock's `anthropic_version` and the
/// beta flags Bedrock knows.
fn invoke_body(ctx: &Ctx, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut obj = RawObject::parse(body)
        .map_err(|e| ApiError::bad_request(format!("Request body is not a JSON object: {e}")))?;
    obj.remove("model");
    obj.remove("stream");
    if obj.get("anthropic_version").is_none() {
        obj.set_str("anthropic_version", "bedrock-2023-05-31");
    }
    let betas: Vec<&str> = ctx
        .info
        .client
        .anthropic_beta
        .iter()
        .flat_map(|b| b.split(','))
        .map(str::trim)
        .filter(|b| BEDROCK_BETAS.contains(b))
        .collect();
    if !betas.is_empty() {
        if let Ok(raw) = serde_json::value::to_raw_value(&betas) {
            obj.set_raw("anthropic_beta", raw);
        }
    }
    Ok(obj.to_vec())
}

/// The model id Bedrock knows: LiteLLM's `bedrock/converse/<id>` (and `bedrock/invoke/<id>`,
/// which Switchyard serves through Converse as well) name the route, not the model.
fn model_id(model: &str) -> &str {
    model
        .strip_prefix("converse/")
        .or_else(|| model.strip_prefix("invoke/"))
        .unwrap_or(model)
}

/// What a model id says of the model's family, for the parameters it takes.
struct Family<'a> {
    /// The id without a cross-region inference profile's prefix (`us.`, `eu.`, ...).
    base: &'a str,
    /// An ARN (provisioned throughput, an application inference profile): the family is
    /// unknown, so everything is let through, as LiteLLM does.
    arn: bool,
}

impl<'a> Family<'a> {
    fn of(model: &'a str) -> Family<'a> {
        const REGIONS: &[&str] = &[
            "us.", "eu.", "apac.", "us-gov.", "global.", "jp.", "au.", "ca.", "ap.",
        ];
        let base = REGIONS
            .iter()
            .find_map(|r| model.strip_prefix(r))
            .unwrap_or(model);
        Family {
            base,
            arn: model.starts_with("arn:"),
        }
    }

    fn is(&self, prefix: &str) -> bool {
        self.base.starts_with(prefix)
    }

    /// Models that take tools (Bedrock's "Supported models and model features").
    fn takes_tools(&self) -> bool {
        const NO_TOOLS: &[&str] = &[
            "amazon.titan",
            "ai21.j2",
            "meta.llama2",
            "meta.llama3-8b",
            "meta.llama3-70b",
            "cohere.command-text",
            "cohere.command-light-text",
            "mistral.mistral-7b",
            "mistral.mixtral",
        ];
        self.arn || !NO_TOOLS.iter().any(|p| self.is(p))
    }

    /// Models that take a toolChoice of `any` or a named tool (auto is their default).
    fn forces_tools(&self) -> bool {
        self.arn
            || self.is("anthropic.")
            || self.is("amazon.nova")
            || self.is("mistral.mistral-large")
    }

    /// Models that take Anthropic's `thinking` switch.
    fn thinks(&self) -> bool {
        self.arn || self.is("anthropic.") || self.is("deepseek.r1")
    }
}

fn client_name(renamed: &[(String, String)], name: &str) -> String {
    renamed
        .iter()
        .find(|(b, _)| b == name)
        .map_or_else(|| name.to_string(), |(_, c)| c.clone())
}

fn has_tool_blocks(messages: &[Message]) -> bool {
    messages
        .iter()
        .any(|m| m.role == Role::Tool || m.tool_calls.as_ref().is_some_and(|c| !c.is_empty()))
}

fn push_turn(turns: &mut Vec<Turn>, role: &'static str, blocks: Vec<Block>) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => last.content.extend(blocks),
        _ => turns.push(Turn {
            role,
            content: blocks,
        }),
    }
}

/// A content part as Bedrock blocks: text, an inline image, a cache point after a part with
/// `cache_control`.
fn content_block(part: &Part, i: usize, out: &mut Vec<Block>) -> Result<(), ApiError> {
    match part.kind.as_str() {
        "text" => {
            let text = part.text.clone().unwrap_or_default();
            // Bedrock refuses blank text blocks.
            if text.trim().is_empty() {
                return Ok(());
            }
            out.push(Block::Text(text));
        }
        "image_url" => {
            let Some(image) = &part.image_url else {
                return Err(ApiError::bad_request(format!(
                    "messages[{i}]: an image_url part without its image_url."
                ))
                .with_param("messages"));
            };
            let Some((media, data)) = image.data() else {
                return Err(ApiError::bad_request(format!(
                    "messages[{i}]: Bedrock takes images inline only. Send the image as a data URL (data:image/png;base64,...); Switchyard does not fetch image URLs."
                ))
                .with_param("messages"));
            };
            let format = match media.to_ascii_lowercase().as_str() {
                "image/png" => "png",
                "image/jpeg" | "image/jpg" => "jpeg",
                "image/gif" => "gif",
                "image/webp" => "webp",
                other => {
                    return Err(ApiError::bad_request(format!(
                        "messages[{i}]: Bedrock takes png, jpeg, gif and webp images, not {other}."
                    ))
                    .with_param("messages"))
                }
            };
            out.push(Block::Image {
                format: format.into(),
                source: json!({"bytes": data}),
            });
        }
        other => {
            return Err(ApiError::bad_request(format!(
            "messages[{i}]: Bedrock through Switchyard takes text and image parts, not {other:?}."
        ))
            .with_param("messages"))
        }
    }
    if part.extra.contains_key("cache_control") {
        out.push(Block::cache_point());
    }
    Ok(())
}

/// The text of the lone member of a JSON object (`{"properties": {...}}` → `{...}`), its
/// key order kept.
fn inner_json(object: &str) -> Option<String> {
    let members: Vec<(String, &RawValue)> =
        serde_json::from_str::<std::collections::BTreeMap<String, &RawValue>>(object)
            .ok()?
            .into_iter()
            .collect();
    match members.as_slice() {
        [(_, raw)] => Some(compact(raw.get())),
        _ => None,
    }
}

/// JSON text without the whitespace between tokens, its key order kept (serde_json's maps
/// here sort their keys).
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if c.is_ascii_whitespace() {
            continue;
        }
        out.push(c);
    }
    out
}

/// OpenAI's finish_reason for Bedrock's stopReason.
fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop",
    }
}

/// LiteLLM's usage: the prompt counts the cached tokens read and written too.
fn usage(u: &TokenUsage) -> Usage {
    let prompt = u.input_tokens
        + u.cache_read_input_tokens.unwrap_or(0)
        + u.cache_write_input_tokens.unwrap_or(0);
    Usage {
        cache_read_input_tokens: u.cache_read_input_tokens,
        cache_creation_input_tokens: u.cache_write_input_tokens,
        ..Usage::new(prompt, u.output_tokens)
    }
    .with_cached(u.cache_read_input_tokens)
}

/// The status a Bedrock exception stands for, for the client (and the router).
fn exception_status(kind: &str, status: u16) -> u16 {
    match kind {
        "ThrottlingException" | "ModelNotReadyException" | "ServiceQuotaExceededException" => 429,
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignatureException"
        | "MissingAuthenticationTokenException"
        | "ExpiredTokenException" => 401,
        "AccessDeniedException" => 403,
        "ResourceNotFoundException" => 404,
        "ValidationException" => 400,
        "ModelTimeoutException" => 408,
        // 424: the model failed, not the request.
        "ModelErrorException" | "ModelStreamErrorException" | "InternalServerException" => 500,
        "ServiceUnavailableException" => 503,
        _ => status,
    }
}

/// An exception inside a stream (`:message-type` exception): the error that ends it.
fn stream_exception(ctx: &Ctx, frame: &Frame) -> ApiError {
    let kind = frame.event.as_deref().unwrap_or("exception");
    let status = match kind {
        "throttlingException" => 429,
        "validationException" => 400,
        "serviceUnavailableException" => 503,
        _ => 500,
    };
    let mut message = error_message(status, frame.data.as_bytes(), &[&["message"], &["Message"]]);
    // A model stream error says what the model itself reported.
    if let Some(original) = serde_json::from_str::<Value>(&frame.data)
        .ok()
        .and_then(|v| v.get("originalMessage")?.as_str().map(str::to_string))
    {
        message = format!("{message} ({original})");
    }
    provider_error(ctx, status, &[], &format!("{kind}: {message}"))
}

fn parse_event<'d, T: Deserialize<'d>>(
    ctx: &Ctx,
    event: &str,
    data: &'d str,
) -> Result<T, ApiError> {
    serde_json::from_str(data).map_err(|e| bad_answer(ctx, format!("its {event} event: {e}")))
}

// ---------------------------------------------------------------------------------------
// The Converse API's shapes (botocore's bedrock-runtime model).

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConverseRequest {
    messages: Vec<Turn>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<Block>,
    #[serde(skip_serializing_if = "InferenceConfig::is_empty")]
    inference_config: InferenceConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    additional_model_request_fields: Map<String, Value>,
    /// guardrailConfig, performanceConfig, requestMetadata, serviceTier, as given.
    #[serde(flatten)]
    top_level: Map<String, Value>,
}

#[derive(Serialize)]
struct Turn {
    role: &'static str,
    content: Vec<Block>,
}

/// A content block (and a system block: text or a cache point).
#[derive(Serialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
enum Block {
    Text(String),
    Image {
        format: String,
        source: Value,
    },
    ToolUse {
        tool_use_id: String,
        name: String,
        input: Box<RawValue>,
    },
    ToolResult {
        tool_use_id: String,
        content: Vec<Value>,
    },
    CachePoint {
        #[serde(rename = "type")]
        kind: &'static str,
    },
}

impl Block {
    fn cache_point() -> Block {
        Block::CachePoint { kind: "default" }
    }
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct InferenceConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<String>,
}

impl InferenceConfig {
    fn is_empty(&self) -> bool {
        self.max_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig {
    tools: Vec<ToolSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolSpec {
    tool_spec: ToolSpecBody,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolSpecBody {
    name: String,
    description: String,
    input_schema: Value,
}

impl ToolSpec {
    /// Bedrock refuses an empty description (LiteLLM gives the name) and wants an object
    /// schema.
    fn new(name: String, description: Option<String>, parameters: Option<Value>) -> ToolSpec {
        let mut schema = parameters.unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        if let Some(obj) = schema.as_object_mut() {
            obj.entry("type").or_insert_with(|| json!("object"));
        }
        ToolSpec {
            tool_spec: ToolSpecBody {
                description: description
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| name.clone()),
                name,
                input_schema: json!({ "json": schema }),
            },
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseResponse {
    output: ConverseOutput,
    #[serde(default)]
    stop_reason: String,
    #[serde(default)]
    usage: TokenUsage,
}

#[derive(Deserialize)]
struct ConverseOutput {
    #[serde(default)]
    message: Option<OutMessage>,
}

#[derive(Deserialize)]
struct OutMessage {
    #[serde(default)]
    content: Vec<OutBlock>,
}

/// An answer's content block; blocks of other kinds (citations, ...) are skipped.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutBlock {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_use: Option<OutToolUse>,
    #[serde(default)]
    reasoning_content: Option<OutReasoning>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutToolUse {
    tool_use_id: String,
    name: String,
    #[serde(default)]
    input: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutReasoning {
    #[serde(default)]
    reasoning_text: Option<ReasoningText>,
}

#[derive(Deserialize)]
struct ReasoningText {
    #[serde(default)]
    text: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TokenUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_write_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStart {
    #[serde(default)]
    content_block_index: u64,
    start: BlockStartKind,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStartKind {
    #[serde(default)]
    tool_use: Option<ToolUseStart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUseStart {
    tool_use_id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDelta {
    #[serde(default)]
    content_block_index: u64,
    delta: DeltaKind,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeltaKind {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_use: Option<ToolUseDelta>,
    #[serde(default)]
    reasoning_content: Option<ReasoningDelta>,
}

#[derive(Deserialize)]
struct ToolUseDelta {
    #[serde(default)]
    input: String,
}

#[derive(Deserialize)]
struct ReasoningDelta {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageStop {
    #[serde(default)]
    stop_reason: String,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    usage: TokenUsage,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::framing::eventstream;
    use crate::framing::Decoder;
    use crate::providers::tests::{ctx, ctx_for};
    use switchyard_config::{DeploymentConfig, Provider, RequestInfo};

    fn aws() -> Credentials {
        Credentials::Aws {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("session-token".into()),
        }
    }

    fn setup(model: &str, endpoint: Endpoint, stream: bool) -> (DeploymentConfig, RequestInfo) {
        let (mut d, mut i) = ctx_for(Provider::Bedrock, endpoint, "");
        d.model = model.into();
        d.authority = "bedrock-runtime.eu-west-1.amazonaws.com".into();
        d.params.region = Some("eu-west-1".into());
        i.stream = stream;
        (d, i)
    }

    const CLAUDE: &str = "us.anthropic.claude-3-5-sonnet-20241022-v2:0";

    /// The provider request's body as JSON, with the translator that made it.
    fn converse(model: &str, body: Value) -> Result<(Bedrock, Value), ApiError> {
        converse_with(model, body, false)
    }

    fn converse_with(model: &str, body: Value, drop: bool) -> Result<(Bedrock, Value), ApiError> {
        let (d, i) = setup(model, Endpoint::ChatCompletions, false);
        let c = aws();
        let mut cx = ctx(&d, &i, &c);
        cx.drop_params = drop;
        let mut t = Bedrock::default();
        let r = t.request(&cx, body.to_string().as_bytes())?;
        Ok((t, serde_json::from_slice(&r.body).unwrap()))
    }

    #[test]
    fn path_is_encoded_and_the_request_signed() {
        let (d, i) = setup(CLAUDE, Endpoint::ChatCompletions, true);
        let c = aws();
        let r = Bedrock::default()
            .request(
                &ctx(&d, &i, &c),
                br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
            )
            .unwrap();
        assert_eq!(
            r.path,
            "/model/us.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse-stream"
        );
        let get = |n: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("content-type"), Some("application/json"));
        assert_eq!(get("x-amz-date"), Some("20231114T221320Z"));
        assert_eq!(get("x-amz-security-token"), Some("session-token"));
        assert_eq!(
            get("x-amz-content-sha256"),
            Some(crate::digest::sha256_hex(&r.body).as_str())
        );
        assert!(get("authorization").unwrap().starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="
        ));
        // The route prefixes of LiteLLM's model names are not part of the id.
        assert_eq!(
            model_id("converse/meta.llama3-1-8b-instruct-v1:0"),
            "meta.llama3-1-8b-instruct-v1:0"
        );
        assert_eq!(
            uri_encode(model_id(
                "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc"
            )),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabc"
        );
    }

    #[test]
    fn credentials_missing_or_a_bearer_key() {
        let (d, i) = setup(CLAUDE, Endpoint::ChatCompletions, false);
        let body = br#"{"messages":[{"role":"user","content":"hi"}]}"#;
        let e = Bedrock::default()
            .request(&ctx(&d, &i, &Credentials::None), body)
            .err()
            .unwrap();
        assert_eq!(e.status, 401);
        assert!(e.message.contains("aws_access_key_id"), "{}", e.message);
        let key = Credentials::Key("bedrock-api-key".into());
        let r = Bedrock::default()
            .request(&ctx(&d, &i, &key), body)
            .unwrap();
        assert!(r
            .headers
            .contains(&("authorization".into(), "Bearer bedrock-api-key".into())));
        assert!(!r.headers.iter().any(|(n, _)| n == "x-amz-date"));
    }

    #[test]
    fn messages_merge_roles_and_carry_tools() {
        let (t, b) = converse(
            CLAUDE,
            json!({"messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "and kind", "cache_control": {"type": "ephemeral"}}]},
                {"role": "user", "content": "one"},
                {"role": "user", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": "  "},
                    {"type": "image_url", "image_url": {"url": "data:image/jpg;base64,AAAA"}}]},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get.weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]},
                {"role": "user", "content": "thanks"}],
             "tools": [
                {"type": "function", "function": {"name": "get.weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
                {"type": "function", "function": {"name": "now", "description": "The time"}}],
             "max_tokens": 100, "temperature": 0.5, "top_p": 0.9, "stop": "END"}),
        )
        .unwrap();
        assert_eq!(
            b["system"],
            json!([{"text": "be brief"}, {"text": "and kind"}, {"cachePoint": {"type": "default"}}])
        );
        assert_eq!(
            b["messages"],
            json!([
                {"role": "user", "content": [{"text": "one"}, {"text": "two"},
                    {"image": {"format": "jpeg", "source": {"bytes": "AAAA"}}}]},
                {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}},
                    {"toolUse": {"toolUseId": "call_2", "name": "now", "input": {}}}]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "call_1", "content": [{"text": "18C"}]}},
                    {"toolResult": {"toolUseId": "call_2", "content": [{"text": "noon"}]}},
                    {"text": "thanks"}]}
            ])
        );
        assert_eq!(
            b["toolConfig"],
            json!({"tools": [
                {"toolSpec": {"name": "get_weather", "description": "get_weather",
                    "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}},
                {"toolSpec": {"name": "now", "description": "The time",
                    "inputSchema": {"json": {"type": "object", "properties": {}}}}}]})
        );
        assert_eq!(
            b["inferenceConfig"],
            json!({"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]})
        );
        assert!(b.get("additionalModelRequestFields").is_none());
        assert_eq!(t.client_name("get_weather"), "get.weather");
    }

    #[test]
    fn tool_calls_need_their_tools_and_images_their_bytes() {
        let history = json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "x"}]);
        let e = converse(CLAUDE, json!({"messages": history}))
            .err()
            .unwrap();
        assert!(e.message.contains("tools"), "{}", e.message);
        let e = converse(
            CLAUDE,
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}),
        )
        .err().unwrap();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("data URL"), "{}", e.message);
        let e = converse(
            CLAUDE,
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AA"}}]}]}),
        )
        .err().unwrap();
        assert!(e.message.contains("image/tiff"), "{}", e.message);
    }

    #[test]
    fn tool_choice_as_litellm_maps_it() {
        let tools = json!([{"type": "function", "function": {"name": "f"}}]);
        let msgs = json!([{"role": "user", "content": "hi"}]);
        let choice = |model: &str, c: Value| {
            converse(
                model,
                json!({"messages": msgs, "tools": tools, "tool_choice": c}),
            )
            .map(|(_, b)| b["toolConfig"].clone())
        };
        assert_eq!(
            choice(CLAUDE, json!("auto")).unwrap()["toolChoice"],
            json!({"auto": {}})
        );
        assert_eq!(
            choice(CLAUDE, json!("required")).unwrap()["toolChoice"],
            json!({"any": {}})
        );
        assert_eq!(
            choice(
                CLAUDE,
                json!({"type": "function", "function": {"name": "f"}})
            )
            .unwrap()["toolChoice"],
            json!({"tool": {"name": "f"}})
        );
        // none: the model may call no tool, so it gets none.
        assert_eq!(choice(CLAUDE, json!("none")).unwrap(), Value::Null);
        // Llama takes tools but no forced choice; auto is its default.
        let llama = "meta.llama3-1-70b-instruct-v1:0";
        assert!(choice(llama, json!("auto"))
            .unwrap()
            .get("toolChoice")
            .is_none());
        let e = choice(llama, json!("required")).err().unwrap();
        assert!(e.message.contains("['tool_choice']"), "{}", e.message);
        // Titan text takes no tools at all.
        let e = choice("amazon.titan-text-express-v1", json!("auto"))
            .err()
            .unwrap();
        assert_eq!(e.param.as_deref(), Some("tools"));
        let (_, b) = converse_with(
            "amazon.titan-text-express-v1",
            json!({"messages": msgs, "tools": tools}),
            true,
        )
        .unwrap();
        assert!(b.get("toolConfig").is_none());
    }

    #[test]
    fn response_format_is_a_forced_tool_and_the_answer_its_input() {
        let (mut t, b) = converse(
            CLAUDE,
            json!({"messages": [{"role": "user", "content": "json please"}],
                   "response_format": {"type": "json_schema", "json_schema": {"name": "person", "description": "A person",
                       "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}}}),
        )
        .unwrap();
        assert_eq!(
            b["toolConfig"],
            json!({"tools": [{"toolSpec": {"name": "json_tool_call", "description": "A person",
                "inputSchema": {"json": {"type": "object", "properties": {"name": {"type": "string"}}}}}}],
                "toolChoice": {"tool": {"name": "json_tool_call"}}})
        );
        let (d, i) = setup(CLAUDE, Endpoint::ChatCompletions, false);
        let c = aws();
        let out = t
            .response(
                &ctx(&d, &i, &c),
                br#"{"output":{"message":{"role":"assistant","content":[{"toolUse":{"toolUseId":"t1","name":"json_tool_call","input":{"name":"Ada"}}}]}},
                     "stopReason":"tool_use","usage":{"inputTokens":5,"outputTokens":3,"totalTokens":8},"metrics":{"latencyMs":10}}"#,
            )
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "{\"name\":\"Ada\"}");
        assert!(v["choices"][0]["message"].get("tool_calls").is_none());
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        // json_object: any object.
        let (_, b) = converse(
            CLAUDE,
            json!({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}),
        )
        .unwrap();
        assert_eq!(
            b["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"],
            json!({"type": "object", "additionalProperties": true, "properties": {}})
        );
        let (_, b) = converse(
            CLAUDE,
            json!({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "text"}}),
        )
        .unwrap();
        assert!(b.get("toolConfig").is_none());
    }

    #[test]
    fn thinking_top_k_and_unsupported_parameters() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        let (_, b) = converse(
            CLAUDE,
            json!({"messages": msgs, "reasoning_effort": "low", "top_k": 5,
                   "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required"}),
        )
        .unwrap();
        assert_eq!(
            b["additionalModelRequestFields"],
            json!({"thinking": {"type": "enabled", "budget_tokens": 1024}, "top_k": 5})
        );
        assert_eq!(b["inferenceConfig"]["maxTokens"], 1024 + 4096);
        // A thinking model cannot be forced to call a tool.
        assert_eq!(b["toolConfig"]["toolChoice"], json!({"auto": {}}));
        let (_, b) = converse(
            CLAUDE,
            json!({"messages": msgs, "thinking": {"type": "enabled", "budget_tokens": 10}, "max_tokens": 3000}),
        )
        .unwrap();
        assert_eq!(
            b["additionalModelRequestFields"]["thinking"]["budget_tokens"],
            1024
        );
        assert_eq!(b["inferenceConfig"]["maxTokens"], 3000);
        let (_, b) = converse(
            "us.amazon.nova-pro-v1:0",
            json!({"messages": msgs, "top_k": 9}),
        )
        .unwrap();
        assert_eq!(
            b["additionalModelRequestFields"],
            json!({"inferenceConfig": {"topK": 9}})
        );

        let mistral = "mistral.mistral-large-2407-v1:0";
        for (param, value) in [
            ("presence_penalty", json!(0.5)),
            ("seed", json!(1)),
            ("n", json!(2)),
            ("top_k", json!(3)),
            ("reasoning_effort", json!("high")),
            ("user", json!("u")),
            ("vendor_knob", json!(true)),
        ] {
            let mut body = json!({"messages": msgs});
            body[param] = value;
            let e = converse(mistral, body.clone()).err().unwrap();
            assert_eq!(
                (e.status, e.param.as_deref()),
                (400, Some(param)),
                "{param}"
            );
            assert!(e.message.contains("drop_params"), "{}", e.message);
            let (_, b) = converse_with(mistral, body, true).unwrap();
            assert!(b.get(param).is_none() && b.get("additionalModelRequestFields").is_none());
        }
        // What is harmless passes: n=1, logprobs false, parallel tool calls.
        converse(
            mistral,
            json!({"messages": msgs, "n": 1, "logprobs": false, "parallel_tool_calls": true}),
        )
        .unwrap();
        let (_, b) = converse(
            mistral,
            json!({"messages": msgs, "guardrailConfig": {"guardrailIdentifier": "g", "guardrailVersion": "1"}, "service_tier": "flex"}),
        )
        .unwrap();
        assert_eq!(b["guardrailConfig"]["guardrailIdentifier"], "g");
        assert_eq!(b["serviceTier"], json!({"type": "flex"}));
    }

    fn answer(body: &str) -> Value {
        let (d, i) = setup(CLAUDE, Endpoint::ChatCompletions, false);
        let c = aws();
        let mut t = Bedrock::default();
        t.renamed.push(("get_weather".into(), "get.weather".into()));
        serde_json::from_slice(&t.response(&ctx(&d, &i, &c), body.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn json_is_compacted_in_its_own_order() {
        assert_eq!(
            inner_json(r#"{"properties": {"z": 1, "a": [true]}}"#).as_deref(),
            Some(r#"{"z":1,"a":[true]}"#)
        );
        assert_eq!(
            compact("{ \"b\" : [1, 2],\n \"a\": \"x y \\\" z\" }"),
            "{\"b\":[1,2],\"a\":\"x y \\\" z\"}"
        );
    }

    #[test]
    fn answers_with_tools_reasoning_and_cache_usage() {
        let v = answer(
            r#"{"output":{"message":{"role":"assistant","content":[
                {"reasoningContent":{"reasoningText":{"text":"Weather needs a tool.","signature":"sig"}}},
                {"text":"Let me check."},
                {"toolUse":{"toolUseId":"tooluse_1","name":"get_weather","input":{"city":"Paris"}}}]}},
              "stopReason":"tool_use",
              "usage":{"inputTokens":10,"outputTokens":20,"totalTokens":330,"cacheReadInputTokens":200,"cacheWriteInputTokens":100},
              "metrics":{"latencyMs":100}}"#,
        );
        let m = &v["choices"][0]["message"];
        assert_eq!(m["content"], "Let me check.");
        assert_eq!(m["reasoning_content"], "Weather needs a tool.");
        assert_eq!(
            m["tool_calls"],
            json!([{"id": "tooluse_1", "type": "function", "function": {"name": "get.weather", "arguments": "{\"city\":\"Paris\"}"}}])
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 310, "completion_tokens": 20, "total_tokens": 330,
                   "prompt_tokens_details": {"cached_tokens": 200},
                   "cache_creation_input_tokens": 100, "cache_read_input_tokens": 200})
        );
        for (stop, finish) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("guardrail_intervened", "content_filter"),
            ("content_filtered", "content_filter"),
        ] {
            let v = answer(&format!(
                r#"{{"output":{{"message":{{"role":"assistant","content":[{{"text":"x"}}]}}}},"stopReason":"{stop}","usage":{{"inputTokens":1,"outputTokens":1,"totalTokens":2}},"metrics":{{"latencyMs":1}}}}"#
            ));
            assert_eq!(v["choices"][0]["finish_reason"], finish, "{stop}");
        }
    }

    fn frames(events: &[(&str, Value)]) -> Vec<Frame> {
        let mut bytes = Vec::new();
        for (kind, payload) in events {
            let headers: Vec<(&str, &str)> = if let Some(exception) = kind.strip_prefix('!') {
                vec![
                    (":exception-type", exception),
                    (":message-type", "exception"),
                ]
            } else {
                vec![(":event-type", kind), (":message-type", "event")]
            };
            bytes.extend(eventstream::encode(
                &headers,
                payload.to_string().as_bytes(),
            ));
        }
        Decoder::new(Framing::EventStream).push(&bytes).unwrap()
    }

    fn run_stream(t: &mut Bedrock, events: &[(&str, Value)]) -> (Result<(), ApiError>, Vec<Value>) {
        let (d, mut i) = setup(CLAUDE, Endpoint::ChatCompletions, true);
        i.stream = true;
        let c = aws();
        let cx = ctx(&d, &i, &c);
        let mut out = Vec::new();
        let mut result = Ok(());
        for f in frames(events) {
            result = t.stream_frame(&cx, &f, &mut out);
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = t.stream_end(&cx, &mut out);
        }
        let chunks = String::from_utf8(out)
            .unwrap()
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        (result, chunks)
    }

    fn streaming(body: Value) -> Bedrock {
        let (d, i) = setup(CLAUDE, Endpoint::ChatCompletions, true);
        let c = aws();
        let mut t = Bedrock::default();
        t.request(&ctx(&d, &i, &c), body.to_string().as_bytes())
            .unwrap();
        t
    }

    #[test]
    fn streams_text_tools_and_usage() {
        let mut t = streaming(json!({"messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "get.weather"}}]}));
        let (r, c) = run_stream(
            &mut t,
            &[
                ("messageStart", json!({"role": "assistant"})),
                (
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"text": "Checking."}}),
                ),
                ("contentBlockStop", json!({"contentBlockIndex": 0})),
                (
                    "contentBlockStart",
                    json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu_1", "name": "get_weather"}}}),
                ),
                (
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\":"}}}),
                ),
                (
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Paris\"}"}}}),
                ),
                ("contentBlockStop", json!({"contentBlockIndex": 1})),
                ("messageStop", json!({"stopReason": "tool_use"})),
                (
                    "metadata",
                    json!({"usage": {"inputTokens": 7, "outputTokens": 9, "totalTokens": 16}, "metrics": {"latencyMs": 5}}),
                ),
            ],
        );
        r.unwrap();
        assert_eq!(c[0]["choices"][0]["delta"]["content"], "Checking.");
        let call = &c[1]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(
            (call["index"].clone(), call["id"].clone()),
            (json!(0), json!("tu_1"))
        );
        assert_eq!(call["function"]["name"], "get.weather");
        assert_eq!(
            c[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
            "{\"city\":"
        );
        let last = c.last().unwrap();
        assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(last["usage"]["total_tokens"], 16);
        assert_eq!(t.stream_usage().map(|u| u.total_tokens), Some(16));
    }

    #[test]
    fn stream_errors_cuts_and_json_mode() {
        let body = json!({"messages": [{"role": "user", "content": "hi"}]});
        let mut t = streaming(body.clone());
        let (r, c) = run_stream(
            &mut t,
            &[
                ("messageStart", json!({"role": "assistant"})),
                (
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
                ),
            ],
        );
        assert_eq!(c.len(), 1);
        let e = r.err().unwrap();
        assert_eq!(e.status, 502);
        assert!(
            e.message.contains("before it was complete"),
            "{}",
            e.message
        );

        for (exception, status) in [
            ("throttlingException", 429),
            ("validationException", 400),
            ("modelStreamErrorException", 500),
            ("serviceUnavailableException", 503),
        ] {
            let mut t = streaming(body.clone());
            let (r, _) = run_stream(
                &mut t,
                &[
                    ("messageStart", json!({"role": "assistant"})),
                    (&format!("!{exception}"), json!({"message": "it broke"})),
                ],
            );
            let e = r.err().unwrap();
            assert_eq!(e.status, status, "{exception}");
            assert!(
                e.message.contains(&format!("{exception}: it broke")),
                "{}",
                e.message
            );
        }

        let mut t = streaming(json!({"messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_object"}}));
        let (r, c) = run_stream(
            &mut t,
            &[
                (
                    "contentBlockStart",
                    json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": "json_tool_call"}}}),
                ),
                (
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{\"a\":1}"}}}),
                ),
                ("messageStop", json!({"stopReason": "tool_use"})),
            ],
        );
        r.unwrap();
        assert_eq!(c[0]["choices"][0]["delta"]["content"], "{\"a\":1}");
        assert_eq!(c[1]["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn errors_by_exception_type() {
        let (d, i) = setup(CLAUDE, Endpoint::ChatCompletions, false);
        let c = aws();
        let cx = ctx(&d, &i, &c);
        let t = Bedrock::default();
        let h = |kind: &str| {
            vec![
                (
                    "x-amzn-errortype".to_string(),
                    format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
                ),
                ("retry-after".to_string(), "3".to_string()),
            ]
        };
        let e = t.error(
            &cx,
            429,
            &h("ThrottlingException"),
            br#"{"message":"Too many requests, please wait before trying again."}"#,
        );
        assert_eq!((e.status, e.retry_after_s), (429, Some(3)));
        assert!(e.message.starts_with("litellm.RateLimitError: bedrock returned 429: ThrottlingException: Too many requests"), "{}", e.message);
        let e = t.error(
            &cx,
            400,
            &h("ValidationException"),
            br#"{"message":"Input is too long for requested model."}"#,
        );
        assert!(
            e.message.contains("ContextWindowExceededError"),
            "{}",
            e.message
        );
        let e = t.error(&cx, 400, &h("ValidationException"), br#"{"message":"400 Bad Request: Too many input tokens. Max input tokens: 8192, request input token count: 9000"}"#);
        assert!(
            e.message.contains("ContextWindowExceededError"),
            "{}",
            e.message
        );
        assert_eq!(
            t.error(
                &cx,
                403,
                &h("AccessDeniedException"),
                br#"{"message":"no"}"#
            )
            .status,
            403
        );
        assert_eq!(
            t.error(
                &cx,
                403,
                &h("UnrecognizedClientException"),
                br#"{"message":"The security token included in the request is invalid."}"#
            )
            .status,
            401
        );
        assert_eq!(
            t.error(&cx, 424, &h("ModelErrorException"), br#"{"message":"x"}"#)
                .status,
            500
        );
        assert_eq!(
            t.error(&cx, 408, &h("ModelTimeoutException"), br#"{"message":"x"}"#)
                .status,
            408
        );
        assert_eq!(t.error(&cx, 503, &[], br#"{"__type":"com.amazon.coral#ServiceUnavailableException","Message":"busy"}"#).message,
            "litellm.ServiceUnavailableError: bedrock returned 503: ServiceUnavailableException: busy");
    }

    #[test]
    fn embeddings_per_model_family() {
        let embed = |model: &str, body: Value, drop: bool| {
            let (d, i) = setup(model, Endpoint::Embeddings, false);
            let c = aws();
            let mut cx = ctx(&d, &i, &c);
            cx.drop_params = drop;
            let mut t = Bedrock::default();
            t.request(&cx, body.to_string().as_bytes()).map(|r| {
                assert!(r.path.ends_with("/invoke"), "{}", r.path);
                (t, serde_json::from_slice::<Value>(&r.body).unwrap())
            })
        };
        let (mut t, b) = embed(
            "amazon.titan-embed-text-v2:0",
            json!({"input": "hello", "dimensions": 256}),
            false,
        )
        .unwrap();
        assert_eq!(
            b,
            json!({"inputText": "hello", "dimensions": 256, "normalize": true})
        );
        let (d, i) = setup("amazon.titan-embed-text-v2:0", Endpoint::Embeddings, false);
        let c = aws();
        let v: Value = serde_json::from_slice(
            &t.response(&ctx(&d, &i, &c), br#"{"embedding":[0.5,-1.0],"inputTextTokenCount":3,"embeddingsByType":{"float":[0.5,-1.0]}}"#).unwrap(),
        )
        .unwrap();
        assert_eq!(v["data"][0]["embedding"], json!([0.5, -1.0]));
        assert_eq!(v["usage"]["prompt_tokens"], 3);

        let e = embed(
            "amazon.titan-embed-text-v2:0",
            json!({"input": ["a", "b"]}),
            false,
        )
        .err()
        .unwrap();
        assert!(e.message.contains("one input per request"), "{}", e.message);
        let e = embed(
            "amazon.titan-embed-text-v1",
            json!({"input": "a", "dimensions": 8}),
            false,
        )
        .err()
        .unwrap();
        assert_eq!(e.param.as_deref(), Some("dimensions"));

        let (mut t, b) = embed("cohere.embed-english-v3", json!({"input": ["first text", "second"], "input_type": "search_query", "encoding_format": "base64"}), false).unwrap();
        assert_eq!(
            b,
            json!({"texts": ["first text", "second"], "input_type": "search_query"})
        );
        let (d, i) = setup("cohere.embed-english-v3", Endpoint::Embeddings, false);
        let v: Value = serde_json::from_slice(
            &t.response(&ctx(&d, &i, &c), br#"{"embeddings":[[1.0],[2.0]],"id":"x","response_type":"embeddings_floats","texts":["first text","second"]}"#).unwrap(),
        )
        .unwrap();
        assert_eq!(v["data"][0]["embedding"], "AACAPw==");
        assert_eq!(v["data"][1]["index"], 1);
        assert_eq!(v["usage"]["prompt_tokens"], 3 + 2);
        let (mut t, _) = embed(
            "cohere.embed-v4:0",
            json!({"input": "x", "dimensions": 256}),
            false,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(
            &t.response(
                &ctx(&d, &i, &c),
                br#"{"embeddings":{"float":[[0.25]]},"response_type":"embeddings_by_type"}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(v["data"][0]["embedding"], json!([0.25]));
        assert!(embed(
            "meta.llama3-1-8b-instruct-v1:0",
            json!({"input": "x"}),
            false
        )
        .is_err());
    }
}
