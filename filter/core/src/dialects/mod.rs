//! The APIs clients speak besides OpenAI's chat completions, bridged to and from the chat
//! format the translators take (issue 10): Anthropic's Messages API and OpenAI's Responses
//! API. Each file has the same shape: request → chat request, chat answer → answer, chat
//! chunks → the API's event sequence, error → the API's error.

pub mod anthropic;
pub mod passthrough;
pub mod responses;

use serde_json::Value;
use switchyard_config::Dialect;

use crate::error::ApiError;
use crate::framing::sse::Parser;
use crate::openai::{Content, Message, Role};

/// A bridged API's request as a chat request (None: it is one already). With `drop_params`,
/// what chat cannot carry (the Responses API's built-in tools) is left out rather than
/// refused.
pub fn to_chat(
    dialect: Dialect,
    body: &[u8],
    drop_params: bool,
) -> Result<Option<Vec<u8>>, ApiError> {
    let chat = match dialect {
        Dialect::Chat => return Ok(None),
        Dialect::Anthropic => anthropic::to_chat(body)?,
        Dialect::Responses => responses::to_chat_dropping(body, drop_params)?,
    };
    serde_json::to_vec(&chat)
        .map(Some)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// A chat answer as a client of `dialect` reads it (`model`: the name it asked for).
pub fn from_answer(dialect: Dialect, chat: Vec<u8>, model: &str) -> Result<Vec<u8>, ApiError> {
    match dialect {
        Dialect::Chat => Ok(chat),
        Dialect::Anthropic => anthropic::from_answer(&chat, model),
        Dialect::Responses => responses::from_answer(&chat, model),
    }
}

/// An error as a client of `dialect` reads it.
pub fn error_body(dialect: Dialect, e: &ApiError) -> Vec<u8> {
    match dialect {
        // The Responses API's errors are OpenAI's.
        Dialect::Chat | Dialect::Responses => e.body(),
        Dialect::Anthropic => anthropic::error_body(e),
    }
}

/// The API a path speaks.
pub fn of_path(path: &str) -> Dialect {
    let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
    match path {
        "/v1/messages" | "/messages" | "/v1/messages/count_tokens" | "/messages/count_tokens" => {
            Dialect::Anthropic
        }
        "/v1/responses" | "/responses" => Dialect::Responses,
        _ => Dialect::Chat,
    }
}

/// The pieces of a chat stream, in order, as a bridge writes them in its API's events.
pub trait ChatSink: std::fmt::Debug {
    /// Before any other piece: the first chunk's id.
    fn start(&mut self, chat_id: Option<&str>, out: &mut Vec<u8>);
    fn reasoning(&mut self, _text: &str, _out: &mut Vec<u8>) {}
    fn text(&mut self, text: &str, out: &mut Vec<u8>);
    /// A piece of a tool call, as OpenAI streams it (`index`; `id` and `name` first, then
    /// pieces of `arguments`).
    fn tool_call(&mut self, call: &Value, out: &mut Vec<u8>);
    /// The stream failed (a chat error event): nothing follows.
    fn error(&mut self, error: &Value, out: &mut Vec<u8>);
    /// The stream ended, with its finish reason and usage.
    fn end(&mut self, finish: Option<&str>, usage: Option<&Value>, out: &mut Vec<u8>);
}

/// A bridged API's stream: the chat SSE a translator writes in, the API's events out.
#[derive(Debug)]
pub struct StreamBridge {
    chunks: ChatChunks,
    sink: Box<dyn ChatSink>,
}

impl StreamBridge {
    pub fn new(sink: Box<dyn ChatSink>) -> StreamBridge {
        StreamBridge {
            chunks: ChatChunks::default(),
            sink,
        }
    }

    /// The bridge for a client of `dialect` (None: chat needs none), answering as `model`.
    pub fn of(dialect: Dialect, model: &str, now_ms: u64) -> Option<StreamBridge> {
        match dialect {
            Dialect::Chat => None,
            Dialect::Anthropic => Some(anthropic::stream(model)),
            Dialect::Responses => Some(responses::stream(model, now_ms / 1000)),
        }
    }

    /// Chat SSE bytes in (split anywhere), the API's events out.
    pub fn push(&mut self, chat: &[u8], out: &mut Vec<u8>) {
        self.chunks.push(chat, self.sink.as_mut(), out);
    }

    /// The chat stream ended (or was cut short): what is open is closed, in order.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.chunks.finish(self.sink.as_mut(), out);
    }
}

/// Reads the chat SSE a translator wrote, split anywhere, and hands its pieces to a sink.
#[derive(Debug, Default)]
pub struct ChatChunks {
    events: Parser,
    started: bool,
    finished: bool,
    finish: Option<String>,
    usage: Option<Value>,
}

impl ChatChunks {
    pub fn push(&mut self, chat: &[u8], sink: &mut dyn ChatSink, out: &mut Vec<u8>) {
        for frame in self.events.push(chat) {
            self.data(frame.data.as_bytes(), sink, out);
        }
    }

    /// The chat stream is over (`[DONE]`, or cut short): the sink closes what is open.
    pub fn finish(&mut self, sink: &mut dyn ChatSink, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.start(None, sink, out);
        sink.end(self.finish.as_deref(), self.usage.as_ref(), out);
    }

    fn start(&mut self, id: Option<&str>, sink: &mut dyn ChatSink, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            sink.start(id, out);
        }
    }

    fn data(&mut self, data: &[u8], sink: &mut dyn ChatSink, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        if data == b"[DONE]" {
            self.finish(sink, out);
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        if let Some(err) = chunk.get("error") {
            self.finished = true;
            sink.error(err, out);
            return;
        }
        self.start(chunk.get("id").and_then(Value::as_str), sink, out);
        if let Some(u) = chunk.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(u.clone());
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            return;
        };
        if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(f.to_string());
        }
        let Some(delta) = choice.get("delta") else {
            return;
        };
        let text = |field: &str| {
            delta
                .get(field)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
        };
        if let Some(t) = text("reasoning_content") {
            sink.reasoning(t, out);
        }
        if let Some(t) = text("content") {
            sink.text(t, out);
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            sink.tool_call(call, out);
        }
    }
}

/// A chat message with only a role and content.
fn message(role: Role, content: Option<Content>) -> Message {
    Message {
        role,
        content,
        name: None,
        tool_calls: None,
        tool_call_id: None,
        extra: serde_json::Map::new(),
    }
}
