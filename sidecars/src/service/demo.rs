//! The built-in demo model: a small OpenAI-compatible server, the api_base of the
//! `switchyard_demo/...` provider, so `switchyard up --model switchyard_demo/any` works with
//! no provider key. Its replies say plainly that no LLM was called.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::ApiError;

/// Pause between streamed tokens, so clients see them arrive one by one.
const TOKEN_DELAY: Duration = Duration::from_millis(20);
const DEFAULT_DIMENSIONS: usize = 8;
const MAX_DIMENSIONS: usize = 4096;

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Debug, Deserialize)]
struct ChatRequest {
    #[serde(default)]
    model: String,
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Debug, Deserialize)]
struct ChatMessage {
    role: String,
    /// A string, an array of content parts, or null.
    #[serde(default)]
    content: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct CompletionRequest {
    #[serde(default)]
    model: String,
    /// A string, an array of strings, an array of token ids or an array of such arrays.
    #[serde(default)]
    prompt: Option<Value>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Debug, Deserialize)]
struct EmbeddingRequest {
    #[serde(default)]
    model: String,
    input: Value,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<usize>,
}

/// `POST /demo/v1/chat/completions`
pub async fn chat_completions(body: Bytes) -> Result<Response, ApiError> {
    let req: ChatRequest = parse(&body)?;
    let said = req
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| content_text(m.content.as_ref()))
        .unwrap_or_default();
    let reply = reply_text(&said);
    let prompt_tokens: u64 = req
        .messages
        .iter()
        .map(|m| count_words(&content_text(m.content.as_ref())))
        .sum();
    let usage = usage(prompt_tokens, count_words(&reply));
    let id = new_id("chatcmpl");
    let created = unix_now();
    let model = req.model;

    if !req.stream.unwrap_or(false) {
        return Ok(Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": null,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": reply, "refusal": null},
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": usage,
        }))
        .into_response());
    }

    let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
    let chunk = |delta: Value, finish_reason: Value| {
        let mut c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": null,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        // With include_usage, OpenAI sends `usage: null` on every chunk but the last.
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let mut events = vec![Event::now(chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    ))];
    for token in split_tokens(&reply) {
        events.push(Event::after_delay(chunk(
            json!({"content": token}),
            Value::Null,
        )));
    }
    events.push(Event::now(chunk(json!({}), json!("stop"))));
    if include_usage {
        events.push(Event::now(usage_chunk(
            &id,
            "chat.completion.chunk",
            created,
            &model,
            usage,
        )));
    }
    Ok(sse(events))
}

/// `POST /demo/v1/completions` (legacy text completions): one choice per prompt.
pub async fn completions(body: Bytes) -> Result<Response, ApiError> {
    let req: CompletionRequest = parse(&body)?;
    let prompts = prompts(req.prompt.as_ref())?;
    let replies: Vec<String> = prompts.iter().map(|p| reply_text(&p.text)).collect();
    let prompt_tokens: u64 = prompts.iter().map(|p| p.tokens).sum();
    let completion_tokens: u64 = replies.iter().map(|r| count_words(r)).sum();
    let usage = usage(prompt_tokens, completion_tokens);
    let id = new_id("cmpl");
    let created = unix_now();
    let model = req.model;

    if !req.stream.unwrap_or(false) {
        let choices: Vec<Value> = replies
            .iter()
            .enumerate()
            .map(|(i, text)| {
                json!({"text": text, "index": i, "logprobs": null, "finish_reason": "stop"})
            })
            .collect();
        return Ok(Json(json!({
            "id": id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "system_fingerprint": null,
            "choices": choices,
            "usage": usage,
        }))
        .into_response());
    }

    let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
    let chunk = |index: usize, text: &str, finish_reason: Value| {
        let mut c = json!({
            "id": id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "system_fingerprint": null,
            "choices": [{"text": text, "index": index, "logprobs": null, "finish_reason": finish_reason}],
        });
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let mut events = Vec::new();
    for (index, reply) in replies.iter().enumerate() {
        for token in split_tokens(reply) {
            events.push(Event::after_delay(chunk(index, token, Value::Null)));
        }
        events.push(Event::now(chunk(index, "", json!("stop"))));
    }
    if include_usage {
        events.push(Event::now(usage_chunk(
            &id,
            "text_completion",
            created,
            &model,
            usage,
        )));
    }
    Ok(sse(events))
}

/// `POST /demo/v1/embeddings`: small deterministic unit vectors derived from each input.
pub async fn embeddings(body: Bytes) -> Result<Response, ApiError> {
    let req: EmbeddingRequest = parse(&body)?;
    let inputs = embedding_inputs(&req.input)?;
    let dimensions = match req.dimensions {
        None => DEFAULT_DIMENSIONS,
        Some(d) if (1..=MAX_DIMENSIONS).contains(&d) => d,
        Some(d) => {
            return Err(ApiError::bad_request(format!(
                "dimensions must be between 1 and {MAX_DIMENSIONS}, got {d}"
            )))
        }
    };
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "encoding_format must be \"float\" or \"base64\", got {other:?}"
            )))
        }
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let vector = embed(&input.key, dimensions);
            let embedding = if base64 {
                // OpenAI's base64 format: the little-endian f32 array, base64-encoded.
                let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let prompt_tokens: u64 = inputs.iter().map(|i| i.tokens).sum();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": req.model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }))
    .into_response())
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::bad_request(format!("Invalid request body: {e}"))
        } else {
            ApiError::bad_request(format!("Request body is not valid JSON: {e}"))
        }
    })
}

fn reply_text(said: &str) -> String {
    let said = said.trim();
    if said.is_empty() {
        "This is Switchyard's demo model: no LLM was called. You said nothing.".to_string()
    } else {
        format!("This is Switchyard's demo model: no LLM was called. You said: {said}")
    }
}

/// The text of a message's content: a string, or the text parts of a content array.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// Token usage, counted as whitespace-separated words.
fn count_words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn usage(prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    })
}

/// Splits text into word tokens, each carrying the whitespace before it (as OpenAI's tokens
/// do), so the tokens concatenate back to exactly the text.
fn split_tokens(text: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut start = 0;
    let mut prev_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() && prev_word {
            tokens.push(&text[start..i]);
            start = i;
        }
        prev_word = !c.is_whitespace();
    }
    if start < text.len() {
        tokens.push(&text[start..]);
    }
    tokens
}

struct Prompt {
    text: String,
    tokens: u64,
}

/// The prompts of a legacy completion request.
fn prompts(prompt: Option<&Value>) -> Result<Vec<Prompt>, ApiError> {
    let text = |s: &str| Prompt {
        text: s.to_string(),
        tokens: count_words(s),
    };
    let ids = |ids: &[Value]| Prompt {
        text: format!("{} token ids", ids.len()),
        tokens: ids.len() as u64,
    };
    match prompt {
        None | Some(Value::Null) => Ok(vec![text("")]),
        Some(Value::String(s)) => Ok(vec![text(s)]),
        Some(Value::Array(items)) if items.iter().all(Value::is_number) => Ok(vec![ids(items)]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(text(s)),
                Value::Array(inner) if inner.iter().all(Value::is_number) => Ok(ids(inner)),
                _ => Err(invalid_prompt()),
            })
            .collect(),
        Some(_) => Err(invalid_prompt()),
    }
}

fn invalid_prompt() -> ApiError {
    ApiError {
        param: Some("prompt".to_string()),
        ..ApiError::bad_request(
            "prompt must be a string, an array of strings, an array of token ids or an array of token id arrays",
        )
    }
}

struct EmbeddingInput {
    /// What the vector is derived from.
    key: String,
    tokens: u64,
}

fn embedding_inputs(input: &Value) -> Result<Vec<EmbeddingInput>, ApiError> {
    let text = |s: &str| EmbeddingInput {
        key: s.to_string(),
        tokens: count_words(s),
    };
    let ids = |v: &Value, n: usize| EmbeddingInput {
        key: v.to_string(),
        tokens: n as u64,
    };
    let inputs = match input {
        Value::String(s) => vec![text(s)],
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_number) => {
            vec![ids(input, items.len())]
        }
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(text(s)),
                Value::Array(inner) if inner.iter().all(Value::is_number) => {
                    Ok(ids(item, inner.len()))
                }
                _ => Err(invalid_input()),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(invalid_input()),
    };
    if inputs.is_empty() {
        return Err(ApiError {
            param: Some("input".to_string()),
            ..ApiError::bad_request("input must not be empty")
        });
    }
    Ok(inputs)
}

fn invalid_input() -> ApiError {
    ApiError {
        param: Some("input".to_string()),
        ..ApiError::bad_request(
            "input must be a string, an array of strings, an array of token ids or an array of token id arrays",
        )
    }
}

/// A deterministic unit vector for `key`: FNV-1a seeds a splitmix64 sequence (both stable
/// across Rust versions, unlike std's hasher).
fn embed(key: &str, dimensions: usize) -> Vec<f32> {
    let mut state = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    // Uniform in [-1, 1).
    let raw: Vec<f64> = (0..dimensions)
        .map(|_| (next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        .collect();
    let norm = raw
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    raw.iter().map(|x| (x / norm) as f32).collect()
}

/// One server-sent event, sent now or after [`TOKEN_DELAY`].
struct Event {
    delay: bool,
    data: Value,
}

impl Event {
    fn now(data: Value) -> Event {
        Event { delay: false, data }
    }
    fn after_delay(data: Value) -> Event {
        Event { delay: true, data }
    }
}

/// An SSE response: each event as `data: <json>`, then `data: [DONE]`.
fn sse(events: Vec<Event>) -> Response {
    let frames = events
        .into_iter()
        .map(|e| (e.delay, format!("data: {}\n\n", e.data)))
        .chain(std::iter::once((false, "data: [DONE]\n\n".to_string())));
    let stream = futures_util::stream::iter(frames).then(|(delay, frame)| async move {
        if delay {
            tokio::time::sleep(TOKEN_DELAY).await;
        }
        Ok::<_, Infallible>(Bytes::from(frame))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A unique enough id (`chatcmpl-…`): the time and a process-wide counter.
fn new_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-demo{nanos:x}{n:x}")
}

/// The last chunk of a stream asked with `stream_options.include_usage`: no choices, the usage.
fn usage_chunk(id: &str, object: &str, created: u64, model: &str, usage: Value) -> Value {
    json!({
        "id": id,
        "object": object,
        "created": created,
        "model": model,
        "system_fingerprint": null,
        "choices": [],
        "usage": usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_concatenate_to_the_text() {
        for text in ["", "a", "  lead and  double\nnewline ", "one two", "x  "] {
            assert_eq!(split_tokens(text).concat(), text);
        }
        assert_eq!(split_tokens("a b  c"), vec!["a", " b", "  c"]);
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embed("hello", 8);
        assert_eq!(a, embed("hello", 8));
        assert_ne!(a, embed("hello!", 8));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }

    #[test]
    fn content_parts_are_read() {
        let v = json!([{"type": "text", "text": "hi"}, {"type": "image_url"}, {"type": "text", "text": "there"}]);
        assert_eq!(content_text(Some(&v)), "hi there");
    }
}
