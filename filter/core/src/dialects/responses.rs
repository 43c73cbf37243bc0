//! OpenAI's Responses API as clients speak it (`POST /v1/responses`: Codex, the Agents SDK),
//! bridged to the chat format for the providers that have no Responses API: a request to a
//! chat request, a chat answer to a response object, chat chunks to the typed event
//! sequence with sequence numbers. (OpenAI and Azure deployments are bridged too for now;
//! passing the body to their own Responses API comes next.)

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{message, ChatSink, StreamBridge};
use crate::error::ApiError;
use crate::openai::{
    ChatRequest, Content, FunctionCall, FunctionDef, ImageUrl, Message, NamedFunction, Part,
    ResponseFormat, Role, StreamOptions, Tool, ToolCall, ToolChoice, Usage,
};

/// A Responses API request. Fields not mapped flow on as chat parameters of the same name.
#[derive(Debug, Deserialize)]
pub struct ResponsesRequest {
    pub model: String,
    pub input: Input,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub tools: Option<Vec<InTool>>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub text: Option<TextOptions>,
    #[serde(default)]
    pub reasoning: Option<Reasoning>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub previous_response_id: Option<String>,
    /// Switchyard keeps no responses: `store` is accepted and has no effect when bridged.
    #[serde(default)]
    pub store: Option<bool>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Input {
    Text(String),
    Items(Vec<AnyItem>),
}

/// An item with its `type`, or a message without one (`{"role": ..., "content": ...}`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum AnyItem {
    Typed(Item),
    Message(ItemMessage),
}

/// An input item: a message (`type` may be left out), a function call the model made, or
/// its output.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    Message(ItemMessage),
    FunctionCall {
        call_id: String,
        name: String,
        #[serde(default)]
        arguments: String,
    },
    FunctionCallOutput {
        call_id: String,
        output: Value,
    },
    /// Reasoning items of an earlier turn: a chat provider cannot take them back.
    Reasoning {},
}

#[derive(Debug, Deserialize)]
pub struct ItemMessage {
    pub role: String,
    pub content: ItemContent,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ItemContent {
    Text(String),
    Parts(Vec<ItemPart>),
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ItemPart {
    InputText {
        text: String,
    },
    OutputText {
        text: String,
    },
    InputImage {
        #[serde(default)]
        image_url: Option<String>,
    },
    Refusal {
        refusal: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub struct InTool {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub strict: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct TextOptions {
    #[serde(default)]
    pub format: Option<TextFormat>,
}

#[derive(Debug, Deserialize)]
pub struct TextFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub schema: Option<Value>,
    #[serde(default)]
    pub strict: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct Reasoning {
    #[serde(default)]
    pub effort: Option<String>,
}

/// Request fields of the Responses API alone (what to include in the answer, storage,
/// client bookkeeping): a chat provider gets none of them.
const RESPONSES_ONLY: &[&str] = &[
    "include",
    "store",
    "client_metadata",
    "truncation",
    "background",
    "conversation",
    "prompt",
    "max_tool_calls",
];

/// A Responses request as a chat request. What a chat provider cannot do is a 400 that
/// says so (a `previous_response_id`: Switchyard keeps no conversations; built-in tools).
pub fn to_chat(body: &[u8]) -> Result<ChatRequest, ApiError> {
    to_chat_dropping(body, false)
}

/// As [`to_chat`]; with `drop_params`, built-in tools (web search, tool namespaces, ...) are
/// left out instead of refused, as coding agents send them whatever the model.
pub fn to_chat_dropping(body: &[u8], drop_params: bool) -> Result<ChatRequest, ApiError> {
    let req: ResponsesRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid Responses API request: {e}")))?;
    if req.previous_response_id.is_some() {
        return Err(ApiError::bad_request(
            "previous_response_id: this model's provider has no Responses API and Switchyard keeps no conversations; send the whole conversation in `input` instead",
        )
        .with_param("previous_response_id"));
    }
    let mut messages = Vec::new();
    if let Some(i) = req.instructions.filter(|i| !i.is_empty()) {
        messages.push(message(Role::System, Some(Content::Text(i))));
    }
    match req.input {
        Input::Text(t) => messages.push(message(Role::User, Some(Content::Text(t)))),
        Input::Items(items) => {
            for (i, item) in items.into_iter().enumerate() {
                let item = match item {
                    AnyItem::Typed(t) => t,
                    AnyItem::Message(m) => Item::Message(m),
                };
                add_item(item, i, &mut messages)?;
            }
        }
    }
    let stream = req.stream.unwrap_or(false);
    let mut out = ChatRequest {
        model: req.model,
        messages,
        stream: Some(stream).filter(|s| *s),
        // response.completed carries the usage: the chunks must have it.
        stream_options: stream.then_some(StreamOptions {
            include_usage: Some(true),
        }),
        max_tokens: req.max_output_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        user: req.user,
        parallel_tool_calls: req.parallel_tool_calls,
        reasoning_effort: req.reasoning.and_then(|r| r.effort),
        extra: req
            .extra
            .into_iter()
            .filter(|(k, _)| !RESPONSES_ONLY.contains(&k.as_str()))
            .collect(),
        ..ChatRequest::default()
    };
    if let Some(tools) = req.tools {
        let mut chat_tools = Vec::with_capacity(tools.len());
        for (i, t) in tools.into_iter().enumerate() {
            match (t.kind.as_str(), t.name) {
                ("function", Some(name)) => chat_tools.push(Tool {
                    kind: "function".into(),
                    function: FunctionDef {
                        name,
                        description: t.description,
                        parameters: t.parameters,
                        strict: t.strict,
                    },
                    extra: Map::new(),
                }),
                _ if drop_params => {}
                (kind, _) => {
                    return Err(ApiError::bad_request(format!(
                        "tools[{i}]: a {kind:?} tool is built into OpenAI's Responses API; this model's provider takes function tools only. To leave such tools out (coding agents send them whatever the model), set `drop_params: true` in litellm_settings or the deployment's litellm_params."
                    ))
                    .with_param("tools"))
                }
            }
        }
        out.tools = Some(chat_tools);
    }
    out.tool_choice = match req.tool_choice {
        None => None,
        Some(Value::String(mode)) => Some(ToolChoice::Mode(mode)),
        Some(v) => match v.get("name").and_then(Value::as_str) {
            Some(name) => Some(ToolChoice::Named {
                kind: "function".into(),
                function: NamedFunction { name: name.into() },
            }),
            None => {
                return Err(ApiError::bad_request(format!(
                    "tool_choice {v} is not \"auto\", \"required\", \"none\" or a function"
                ))
                .with_param("tool_choice"))
            }
        },
    };
    if let Some(format) = req.text.and_then(|t| t.format) {
        out.response_format = match format.kind.as_str() {
            "text" => None,
            "json_object" => Some(response_format(json!({"type": "json_object"}))?),
            "json_schema" => Some(response_format(json!({
                "type": "json_schema",
                "json_schema": {"name": format.name.unwrap_or_else(|| "response".into()), "schema": format.schema, "strict": format.strict},
            }))?),
            other => {
                return Err(ApiError::bad_request(format!(
                    "text.format.type {other:?} is not text, json_object or json_schema"
                ))
                .with_param("text"))
            }
        };
    }
    Ok(out)
}

fn response_format(v: Value) -> Result<ResponseFormat, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(format!("text.format: {e}")))
}

fn add_item(item: Item, i: usize, out: &mut Vec<Message>) -> Result<(), ApiError> {
    match item {
        Item::Message(m) => {
            let role = match m.role.as_str() {
                "user" => Role::User,
                "assistant" => Role::Assistant,
                "system" => Role::System,
                "developer" => Role::Developer,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "input[{i}].role {other:?} is not user, assistant, system or developer"
                    ))
                    .with_param("input"))
                }
            };
            let content = match m.content {
                ItemContent::Text(t) => Content::Text(t),
                ItemContent::Parts(parts) => {
                    let mut out = Vec::with_capacity(parts.len());
                    for p in parts {
                        out.push(match p {
                            ItemPart::InputText { text } | ItemPart::OutputText { text } => {
                                Part::text(&text)
                            }
                            ItemPart::Refusal { refusal } => Part::text(&refusal),
                            ItemPart::InputImage {
                                image_url: Some(url),
                            } => Part {
                                kind: "image_url".into(),
                                text: None,
                                image_url: Some(ImageUrl::Url(url)),
                                extra: Map::new(),
                            },
                            ItemPart::InputImage { image_url: None } | ItemPart::Other => {
                                return Err(ApiError::bad_request(format!(
                                    "input[{i}]: only text and image (by URL) parts can be sent to this model's provider"
                                ))
                                .with_param("input"))
                            }
                        });
                    }
                    Content::Parts(out)
                }
            };
            out.push(message(role, Some(content)));
        }
        Item::FunctionCall {
            call_id,
            name,
            arguments,
        } => {
            let call = ToolCall {
                id: call_id,
                kind: "function".into(),
                function: FunctionCall { name, arguments },
            };
            // Calls made together are one assistant turn.
            match out.last_mut() {
                Some(last) if last.role == Role::Assistant && last.tool_calls.is_some() => {
                    last.tool_calls.get_or_insert_with(Vec::new).push(call);
                }
                _ => {
                    let mut m = message(Role::Assistant, None);
                    m.tool_calls = Some(vec![call]);
                    out.push(m);
                }
            }
        }
        Item::FunctionCallOutput { call_id, output } => {
            let text = match output {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let mut m = message(Role::Tool, Some(Content::Text(text)));
            m.tool_call_id = Some(call_id);
            out.push(m);
        }
        Item::Reasoning {} => {}
    }
    Ok(())
}

/// The Responses API's usage from a chat usage.
fn usage(u: Option<&Value>) -> Value {
    let n = |p: &str| {
        u.and_then(|u| u.pointer(p))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let (input, output) = (n("/prompt_tokens"), n("/completion_tokens"));
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": n("/prompt_tokens_details/cached_tokens")},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": n("/completion_tokens_details/reasoning_tokens")},
        "total_tokens": input + output,
    })
}

/// What starts the id Switchyard hands out for a response a provider stored: the id names the
/// deployment that holds it and the provider's own id, so that a later
/// `previous_response_id`, `GET` or `DELETE` goes back there. (OpenAI's ids are hex after
/// `resp_`, so none starts so.)
const STORED_PREFIX: &str = "resp_sy1";

/// The id a client gets for a response `deployment` stored as `id`.
pub fn stored_id(deployment: &str, id: &str) -> String {
    use base64::Engine;
    let encoded =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{deployment}\n{id}"));
    format!("{STORED_PREFIX}{encoded}")
}

/// The deployment and the provider's own id in an id from [`stored_id`]. None for any other
/// id, and for a provider id that is not a plain token (it goes into the provider's path).
pub fn parse_stored_id(id: &str) -> Option<(String, String)> {
    use base64::Engine;
    let encoded = id.strip_prefix(STORED_PREFIX)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (deployment, id) = text.split_once('\n')?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    (!deployment.is_empty() && plain(id)).then(|| (deployment.to_string(), id.to_string()))
}

/// A Responses usage object as chat usage (of an answer passed on untouched).
pub(crate) fn usage_to_chat(u: &Value) -> Usage {
    let n = |p: &str| u.pointer(p).and_then(Value::as_u64);
    let cached = n("/input_tokens_details/cached_tokens");
    let reasoning = n("/output_tokens_details/reasoning_tokens");
    Usage::new(
        n("/input_tokens").unwrap_or(0),
        n("/output_tokens").unwrap_or(0),
    )
    .with_cached(cached)
    .with_reasoning(reasoning)
}

/// A response object around `output`.
fn response(id: &str, model: &str, created_at: u64, status: &str, output: Vec<Value>) -> Value {
    json!({
        "id": id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": null,
        "incomplete_details": if status == "incomplete" { json!({"reason": "max_output_tokens"}) } else { Value::Null },
        "model": model,
        "output": output,
        "parallel_tool_calls": true,
        "tool_choice": "auto",
        "tools": [],
        "usage": null,
    })
}

fn response_id(id: &str) -> String {
    format!("resp_{}", id.trim_start_matches("chatcmpl-"))
}

fn text_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "type": "message", "id": id, "status": status, "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    })
}

fn call_item(call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({
        "type": "function_call", "id": format!("fc_{call_id}"), "call_id": call_id,
        "name": name, "arguments": arguments, "status": status,
    })
}

/// A chat answer (OpenAI JSON) as a response object for `model`.
pub fn from_answer(answer: &[u8], model: &str) -> Result<Vec<u8>, ApiError> {
    let a: Value = serde_json::from_slice(answer)
        .map_err(|e| ApiError::internal(format!("the provider's answer did not parse: {e}")))?;
    let id = response_id(a.get("id").and_then(Value::as_str).unwrap_or("switchyard"));
    let choice = a.pointer("/choices/0").cloned().unwrap_or(Value::Null);
    let msg = choice.get("message").cloned().unwrap_or(Value::Null);
    let mut output = Vec::new();
    if let Some(text) = msg
        .get("content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        output.push(text_item(&format!("msg_{id}"), text, "completed"));
    }
    for call in msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let s = |p: &str| call.pointer(p).and_then(Value::as_str).unwrap_or_default();
        output.push(call_item(
            s("/id"),
            s("/function/name"),
            s("/function/arguments"),
            "completed",
        ));
    }
    let status = match choice.get("finish_reason").and_then(Value::as_str) {
        Some("length") => "incomplete",
        _ => "completed",
    };
    let created = a.get("created").and_then(Value::as_u64).unwrap_or(0);
    let mut r = response(&id, model, created, status, output);
    r["usage"] = usage(a.get("usage"));
    serde_json::to_vec(&r).map_err(|e| ApiError::internal(e.to_string()))
}

/// What is being streamed: the text item, or a function call (its chat index).
#[derive(Debug, Clone, PartialEq)]
enum Open {
    Text {
        id: String,
        text: String,
    },
    Call {
        index: u64,
        call_id: String,
        name: String,
        arguments: String,
    },
}

/// Chat chunks to the Responses API's typed events, each with its sequence number:
/// response.created, response.in_progress, then per output item output_item.added,
/// (content_part.added, output_text.delta..., output_text.done, content_part.done) or
/// function_call_arguments.delta... / .done, output_item.done; then response.completed with
/// the whole response and its usage. A chat error event becomes an `error` event.
pub fn stream(model: &str, created_at: u64) -> StreamBridge {
    StreamBridge::new(Box::new(Events {
        model: model.to_string(),
        created_at,
        id: None,
        seq: 0,
        open: None,
        done: Vec::new(),
    }))
}

/// What the Responses stream has written so far.
#[derive(Debug)]
struct Events {
    model: String,
    created_at: u64,
    id: Option<String>,
    seq: u64,
    open: Option<Open>,
    /// The output items done.
    done: Vec<Value>,
}

impl ChatSink for Events {
    fn start(&mut self, chat_id: Option<&str>, out: &mut Vec<u8>) {
        self.id = Some(response_id(chat_id.unwrap_or("switchyard")));
        let r = self.snapshot("in_progress");
        self.emit(out, "response.created", json!({"response": r.clone()}));
        self.emit(out, "response.in_progress", json!({"response": r}));
    }

    fn text(&mut self, t: &str, out: &mut Vec<u8>) {
        if !matches!(self.open, Some(Open::Text { .. })) {
            self.close(out);
            let id = format!("msg_{}", self.id.as_deref().unwrap_or_default());
            let at = self.output_index();
            self.emit(out, "response.output_item.added", json!({"output_index": at, "item": {
                "type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []}}));
            self.emit(
                out,
                "response.content_part.added",
                json!({"item_id": id, "output_index": at, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []}}),
            );
            self.open = Some(Open::Text {
                id,
                text: String::new(),
            });
        }
        let at = self.output_index();
        let id = match &mut self.open {
            Some(Open::Text { id, text }) => {
                text.push_str(t);
                id.clone()
            }
            _ => return,
        };
        self.emit(
            out,
            "response.output_text.delta",
            json!({"item_id": id, "output_index": at, "content_index": 0, "delta": t}),
        );
    }

    fn tool_call(&mut self, call: &Value, out: &mut Vec<u8>) {
        let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let same = matches!(&self.open, Some(Open::Call { index: i, .. }) if *i == index);
        if !same {
            self.close(out);
            let call_id = call
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let name = call
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let at = self.output_index();
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": at,
                "item": call_item(&call_id, &name, "", "in_progress")}),
            );
            self.open = Some(Open::Call {
                index,
                call_id,
                name,
                arguments: String::new(),
            });
        }
        let Some(args) = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        else {
            return;
        };
        let at = self.output_index();
        let item_id = match &mut self.open {
            Some(Open::Call {
                call_id, arguments, ..
            }) => {
                arguments.push_str(args);
                format!("fc_{call_id}")
            }
            _ => return,
        };
        self.emit(
            out,
            "response.function_call_arguments.delta",
            json!({"item_id": item_id, "output_index": at, "delta": args}),
        );
    }

    fn error(&mut self, err: &Value, out: &mut Vec<u8>) {
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("error");
        let code = err.get("code").cloned().unwrap_or(Value::Null);
        self.emit(
            out,
            "error",
            json!({"code": code, "message": message, "param": null}),
        );
    }

    fn end(&mut self, finish: Option<&str>, chat_usage: Option<&Value>, out: &mut Vec<u8>) {
        self.close(out);
        let status = if finish == Some("length") {
            "incomplete"
        } else {
            "completed"
        };
        let mut r = self.snapshot(status);
        r["output"] = Value::Array(self.done.clone());
        r["usage"] = usage(chat_usage);
        self.emit(out, "response.completed", json!({"response": r}));
    }
}

impl Events {
    fn snapshot(&self, status: &str) -> Value {
        response(
            self.id.as_deref().unwrap_or("resp_switchyard"),
            &self.model,
            self.created_at,
            status,
            Vec::new(),
        )
    }

    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        out.extend_from_slice(&serde_json::to_vec(&data).unwrap_or_default());
        out.extend_from_slice(b"\n\n");
    }

    fn output_index(&self) -> usize {
        self.done.len()
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        let at = self.output_index();
        let item = match self.open.take() {
            None => return,
            Some(Open::Text { id, text }) => {
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                self.emit(
                    out,
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": at, "content_index": 0, "text": text}),
                );
                self.emit(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": at, "content_index": 0, "part": part}),
                );
                text_item(&id, &text, "completed")
            }
            Some(Open::Call {
                call_id,
                name,
                arguments,
                ..
            }) => {
                self.emit(out, "response.function_call_arguments.done", json!({"item_id": format!("fc_{call_id}"), "output_index": at, "arguments": arguments}));
                call_item(&call_id, &name, &arguments, "completed")
            }
        };
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": at, "item": item.clone()}),
        );
        self.done.push(item);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn chat(body: Value) -> Value {
        serde_json::to_value(to_chat(&serde_json::to_vec(&body).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn a_coding_agents_request_goes_to_chat_without_what_only_openai_has() {
        // What Codex sends: function tools, a tool namespace and web search, and fields of
        // the Responses API alone.
        let body =
            br#"{"model":"m","input":"x","store":false,"include":["reasoning.encrypted_content"],
            "client_metadata":{"a":"b"},"prompt_cache_key":"k","tools":[
            {"type":"function","name":"exec_command","parameters":{"type":"object"}},
            {"type":"namespace","name":"multi_agent_v1","tools":[]},
            {"type":"web_search","external_web_access":false}]}"#;
        let e = to_chat(body).unwrap_err();
        assert!(e.message.contains("drop_params"), "{}", e.message);
        let chat = to_chat_dropping(body, true).unwrap();
        let names: Vec<&str> = chat
            .tools
            .iter()
            .flatten()
            .map(|t| t.function.name.as_str())
            .collect();
        assert_eq!(names, ["exec_command"]);
        let v = serde_json::to_value(&chat).unwrap();
        for gone in ["store", "include", "client_metadata"] {
            assert!(v.get(gone).is_none(), "{gone}: {v}");
        }
        assert_eq!(v["prompt_cache_key"], "k", "chat takes it too");
    }

    #[test]
    fn stored_ids_name_their_deployment_and_refuse_what_is_not_a_plain_id() {
        let id = stored_id("gpt-4o-east", "resp_67cc");
        assert!(id.starts_with("resp_"), "{id}");
        assert_eq!(
            parse_stored_id(&id),
            Some(("gpt-4o-east".to_string(), "resp_67cc".to_string()))
        );
        assert_eq!(parse_stored_id("resp_67ccd2bed1ec8190"), None);
        assert_eq!(parse_stored_id(&stored_id("d", "../../files")), None);
        assert_eq!(parse_stored_id(&stored_id("", "resp_1")), None);
        assert_eq!(parse_stored_id("resp_sy1%%%"), None);
    }

    #[test]
    fn a_string_input_with_instructions() {
        let v = chat(
            json!({"model": "m", "input": "Hi", "instructions": "Be brief.", "max_output_tokens": 50,
            "reasoning": {"effort": "low"}, "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}}}),
        );
        assert_eq!(
            v["messages"],
            json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
        );
        assert_eq!(
            (v["max_tokens"].as_u64(), v["reasoning_effort"].as_str()),
            (Some(50), Some("low"))
        );
        assert_eq!(v["response_format"]["type"], "json_schema");
        assert_eq!(v["response_format"]["json_schema"]["name"], "x");
    }

    #[test]
    fn items_with_function_calls_and_their_outputs() {
        let v = chat(json!({"model": "m", "stream": true,
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris and Rome?"}]},
                {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{\"city\":\"Paris\"}"},
                {"type": "function_call", "call_id": "c2", "name": "weather", "arguments": "{\"city\":\"Rome\"}"},
                {"type": "function_call_output", "call_id": "c1", "output": "18C"},
                {"type": "function_call_output", "call_id": "c2", "output": {"temp": 22}},
                {"type": "reasoning", "id": "r1", "summary": []},
            ],
            "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "weather"},
        }));
        let m = v["messages"].as_array().unwrap();
        assert_eq!(m.len(), 4, "{m:?}");
        assert_eq!(
            m[1]["tool_calls"].as_array().unwrap().len(),
            2,
            "one assistant turn"
        );
        assert_eq!(
            (
                m[2]["role"].as_str(),
                m[2]["tool_call_id"].as_str(),
                m[2]["content"].as_str()
            ),
            (Some("tool"), Some("c1"), Some("18C"))
        );
        assert_eq!(m[3]["content"], r#"{"temp":22}"#);
        assert_eq!(v["tools"][0]["function"]["name"], "weather");
        assert_eq!(v["tool_choice"]["function"]["name"], "weather");
        assert_eq!(v["stream_options"]["include_usage"], true);
    }

    #[test]
    fn what_a_chat_provider_cannot_do_is_a_clear_400() {
        let e =
            to_chat(br#"{"model":"m","input":"x","previous_response_id":"resp_1"}"#).unwrap_err();
        assert_eq!(
            (e.status, e.param.as_deref()),
            (400, Some("previous_response_id"))
        );
        let e =
            to_chat(br#"{"model":"m","input":"x","tools":[{"type":"web_search"}]}"#).unwrap_err();
        assert!(e.message.contains("web_search"), "{}", e.message);
    }

    #[test]
    fn a_chat_answer_becomes_a_response() {
        let answer = json!({"id": "chatcmpl-9", "created": 7, "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Checking.", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 4}});
        let r: Value = serde_json::from_slice(
            &from_answer(&serde_json::to_vec(&answer).unwrap(), "gpt-x").unwrap(),
        )
        .unwrap();
        assert_eq!(
            (r["id"].as_str(), r["object"].as_str(), r["status"].as_str()),
            (Some("resp_9"), Some("response"), Some("completed"))
        );
        assert_eq!(r["output"][0]["content"][0]["text"], "Checking.");
        assert_eq!(r["output"][1]["type"], "function_call");
        assert_eq!(r["output"][1]["call_id"], "c1");
        assert_eq!(r["usage"]["total_tokens"], 14);
    }

    fn chat_stream() -> Vec<u8> {
        let chunks = [
            json!({"id": "chatcmpl-5", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]}),
            json!({"id": "chatcmpl-5", "choices": [{"index": 0, "delta": {"content": "lo"}}]}),
            json!({"id": "chatcmpl-5", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{\"a\""}}]}}]}),
            json!({"id": "chatcmpl-5", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}, "finish_reason": "tool_calls"}]}),
            json!({"id": "chatcmpl-5", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}),
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

    fn events(sse: &[u8]) -> Vec<Value> {
        String::from_utf8(sse.to_vec())
            .unwrap()
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| serde_json::from_str(e.split_once("\ndata: ").unwrap().1).unwrap())
            .collect()
    }

    #[test]
    fn chat_chunks_become_typed_events_at_every_split() {
        let input = chat_stream();
        let mut whole = Vec::new();
        let mut b = stream("gpt-x", 7);
        b.push(&input, &mut whole);
        b.finish(&mut whole);
        let ev = events(&whole);
        let kinds: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (i, e) in ev.iter().enumerate() {
            assert_eq!(e["sequence_number"], i, "{e}");
        }
        assert_eq!(ev[6]["text"], "Hello");
        assert_eq!(ev[12]["arguments"], "{\"a\":1}");
        assert_eq!(ev[9]["output_index"], 1);
        let done = &ev[14]["response"];
        assert_eq!(
            (done["id"].as_str(), done["status"].as_str()),
            (Some("resp_5"), Some("completed"))
        );
        assert_eq!(done["output"].as_array().unwrap().len(), 2);
        assert_eq!(done["usage"]["total_tokens"], 5);
        for split in 1..input.len() {
            let mut out = Vec::new();
            let mut b = stream("gpt-x", 7);
            b.push(&input[..split], &mut out);
            b.push(&input[split..], &mut out);
            b.finish(&mut out);
            assert_eq!(out, whole, "split at {split}");
        }
    }
}
