//! A strict fake of Ollama's API (`POST /api/chat`, `/api/generate`, `/api/embed`): it
//! checks the content type, the optional `Authorization: Bearer` key, and the body against
//! the API reference and `api/types.go` (known fields only, `stream` always said since
//! Ollama streams by default, messages by role with base64 images and tool calls whose
//! arguments are objects, tool results naming their function, known model options, `format`
//! and `think` values), and answers from the golden fixtures under tests/fixtures/ollama_chat/
//! and tests/fixtures/ollama/.
//!
//! What it answers depends on the request: the endpoint, a stream or not, tools (a first
//! call or the tool-result follow-up), an image, a format; a marker anywhere in the body
//! picks a failure ([`SERVER_ERROR`], [`STREAM_CUT`], [`STREAM_ERROR`]) and the model
//! [`MISSING_MODEL`] is not found. A key other than [`KEY`] is answered 401.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::fake::Recorded;
use crate::strict::{fixture, FakeReply, Handler};

/// The key a keyed deployment sends (Ollama needs none; a proxy or ollama.com does).
pub const KEY: &str = "ollama-fake-key-0007";
/// A model the fake has not pulled: 404.
pub const MISSING_MODEL: &str = "not-pulled";
/// The text of the chat and chat_stream fixtures.
pub const CHAT_TEXT: &str = "Hello! How can I help you today?";
/// The text of the tool_result fixture.
pub const TOOL_RESULT_TEXT: &str = "It is 18 degrees and sunny in Paris.";
/// The text of /api/generate's chat fixture.
pub const GENERATE_TEXT: &str = "The sky is blue because air scatters blue light more than red.";

/// Markers: put one in a message to make the fake fail that way.
pub const SERVER_ERROR: &str = "ollama-fail-500";
/// A stream that ends cleanly but without its done line.
pub const STREAM_CUT: &str = "ollama-stream-cut";
/// A stream with an error line.
pub const STREAM_ERROR: &str = "ollama-stream-error";

const CHAT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "format",
    "keep_alive",
    "tools",
    "options",
    "think",
    "truncate",
    "shift",
    "logprobs",
    "top_logprobs",
];

const GENERATE_FIELDS: &[&str] = &[
    "model",
    "prompt",
    "suffix",
    "system",
    "template",
    "context",
    "stream",
    "raw",
    "format",
    "keep_alive",
    "images",
    "options",
    "think",
    "truncate",
    "shift",
    "logprobs",
    "top_logprobs",
];

const EMBED_FIELDS: &[&str] = &[
    "model",
    "input",
    "keep_alive",
    "truncate",
    "dimensions",
    "options",
];

/// `Options` and `Runner` in api/types.go, and the Modelfile parameters the docs list.
const OPTIONS: &[&str] = &[
    "num_keep",
    "seed",
    "num_predict",
    "top_k",
    "top_p",
    "min_p",
    "typical_p",
    "repeat_last_n",
    "temperature",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "stop",
    "num_ctx",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "use_mmap",
    "num_thread",
    "draft_num_predict",
    "penalize_newline",
    "numa",
    "mirostat",
    "mirostat_eta",
    "mirostat_tau",
    "tfs_z",
];

const NDJSON: &str = "application/x-ndjson";

/// The fake's rules and answers.
pub fn handler() -> Handler {
    Arc::new(|r: &Recorded| answer(r))
}

fn answer(r: &Recorded) -> Result<FakeReply, String> {
    if r.method != "POST" || !matches!(r.uri.as_str(), "/api/chat" | "/api/generate" | "/api/embed")
    {
        return Err(format!(
            "Ollama serves POST /api/chat, /api/generate and /api/embed, not {} {}",
            r.method, r.uri
        ));
    }
    if !r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return Err("content-type must be application/json".into());
    }
    let key = match r.header("authorization") {
        None => None,
        Some(auth) => Some(
            auth.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, k)| k.trim().to_string())
                .ok_or_else(|| format!("authorization must be `Bearer <key>`, got {auth:?}"))?,
        ),
    };
    let body: Value = serde_json::from_slice(&r.body)
        .map_err(|e| format!("the body is not JSON ({e}): {}", r.body_text()))?;
    match r.uri.as_str() {
        "/api/chat" => check_chat(&body)?,
        "/api/generate" => check_generate(&body)?,
        _ => check_embed(&body)?,
    }
    if key.is_some_and(|k| k != KEY) {
        return Ok(error(401, "unauthorized"));
    }
    let model = body["model"].as_str().unwrap_or_default();
    if model == MISSING_MODEL {
        return Ok(error(
            404,
            &format!("model \"{model}\" not found, try pulling it first"),
        ));
    }
    let text = r.body_text();
    if text.contains(SERVER_ERROR) {
        return Ok(FakeReply::json(
            500,
            fixture("ollama_chat", "server_error", "provider_response.json"),
        ));
    }
    let stream = body["stream"] == true;
    match r.uri.as_str() {
        "/api/embed" => Ok(embeddings(&body)),
        "/api/generate" => {
            let completion = !body["prompt"]
                .as_str()
                .unwrap_or_default()
                .starts_with("### ");
            if stream {
                let case = if completion {
                    "completions_stream"
                } else {
                    "chat_stream"
                };
                let whole = fixture("ollama", case, "provider_stream.ndjson");
                return Ok(stream_reply(&whole, text.contains(STREAM_CUT)));
            }
            let case = if body.get("images").is_some() {
                "image"
            } else if completion {
                "completions"
            } else {
                "chat"
            };
            Ok(FakeReply::json(
                200,
                fixture("ollama", case, "provider_response.json"),
            ))
        }
        _ => {
            let has_tools = body["tools"].as_array().is_some_and(|t| !t.is_empty());
            let last = body["messages"]
                .as_array()
                .and_then(|m| m.last())
                .cloned()
                .unwrap_or(Value::Null);
            let answers_tool = last["role"] == "tool";
            if stream {
                if text.contains(STREAM_ERROR) {
                    let whole = fixture("ollama_chat", "stream_error", "provider_stream.ndjson");
                    return Ok(stream_reply(&whole, false));
                }
                let case = if has_tools && !answers_tool {
                    "chat_stream_tools"
                } else {
                    "chat_stream"
                };
                let whole = fixture("ollama_chat", case, "provider_stream.ndjson");
                return Ok(stream_reply(&whole, text.contains(STREAM_CUT)));
            }
            let case = if answers_tool {
                "tool_result"
            } else if has_tools {
                "chat_tools"
            } else if last.get("images").is_some() {
                "image"
            } else if body.get("format").is_some() || body.get("think").is_some() {
                "thinking_json_schema"
            } else {
                "chat"
            };
            Ok(FakeReply::json(
                200,
                fixture("ollama_chat", case, "provider_response.json"),
            ))
        }
    }
}

/// Ollama's error body.
fn error(status: u16, message: &str) -> FakeReply {
    FakeReply::json(status, json!({ "error": message }).to_string())
}

/// An NDJSON stream a line at a time; `cut` leaves out the done line (the stream still ends
/// cleanly, as a server that gave up would end it).
fn stream_reply(whole: &[u8], cut: bool) -> FakeReply {
    let text = String::from_utf8_lossy(whole);
    let mut pieces: Vec<Vec<u8>> = text
        .split_inclusive('\n')
        .map(|l| l.as_bytes().to_vec())
        .collect();
    if cut {
        pieces.retain(|l| !String::from_utf8_lossy(l).contains("\"done\":true"));
    }
    FakeReply::stream(NDJSON, pieces)
}

/// The embeddings fixture's vectors, one per input (cycling).
fn embeddings(body: &Value) -> FakeReply {
    let whole: Value = serde_json::from_slice(&fixture(
        "ollama_chat",
        "embeddings",
        "provider_response.json",
    ))
    .unwrap_or_default();
    let vectors = whole["embeddings"].as_array().cloned().unwrap_or_default();
    let inputs = match &body["input"] {
        Value::Array(a) => a.len(),
        _ => 1,
    };
    let mut answer = whole.clone();
    answer["model"] = body["model"].clone();
    answer["embeddings"] = Value::Array(
        (0..inputs)
            .map(|i| vectors[i % vectors.len().max(1)].clone())
            .collect(),
    );
    answer["prompt_eval_count"] = json!(8 * inputs);
    FakeReply::json(200, answer.to_string())
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} must be an object: {v}"))
}

/// Only these keys, and these of them required.
fn keys(
    o: &Map<String, Value>,
    what: &str,
    allowed: &[&str],
    required: &[&str],
) -> Result<(), String> {
    if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("{what}: unknown field `{k}`"));
    }
    if let Some(k) = required.iter().find(|k| !o.contains_key(**k)) {
        return Err(format!("{what}: `{k}` is required"));
    }
    Ok(())
}

/// What /api/chat and /api/generate share: the model, `stream` said, options, format, think.
fn check_shared(o: &Map<String, Value>) -> Result<(), String> {
    if o["model"].as_str().is_none_or(|m| m.is_empty()) {
        return Err("model must be a non-empty string".into());
    }
    // Ollama streams unless told not to: a gateway must always say which it wants.
    match o.get("stream") {
        Some(Value::Bool(_)) => {}
        _ => return Err("stream must be sent, as a boolean (Ollama streams by default)".into()),
    }
    if let Some(options) = o.get("options") {
        let opts = object(options, "options")?;
        keys(opts, "options", OPTIONS, &[])?;
        for (k, v) in opts {
            let ok = match k.as_str() {
                "stop" => v.as_array().is_some_and(|s| s.iter().all(Value::is_string)),
                "use_mmap" | "penalize_newline" | "numa" => v.is_boolean(),
                _ => v.is_number(),
            };
            if !ok {
                return Err(format!("options.{k} has the wrong type: {v}"));
            }
        }
    }
    if let Some(f) = o.get("format") {
        if f != "json" && !f.is_object() {
            return Err(format!("format must be \"json\" or a JSON schema, got {f}"));
        }
    }
    if let Some(t) = o.get("think") {
        if !t.is_boolean() && !matches!(t.as_str(), Some("low" | "medium" | "high" | "max")) {
            return Err(format!(
                "think must be a boolean or low/medium/high/max, got {t}"
            ));
        }
    }
    Ok(())
}

fn check_images(v: &Value, what: &str) -> Result<(), String> {
    let images = v
        .as_array()
        .ok_or_else(|| format!("{what}.images must be a list"))?;
    for image in images {
        let data = image
            .as_str()
            .ok_or_else(|| format!("{what}: an image is a base64 string"))?;
        if data.starts_with("data:") || data.starts_with("http") {
            return Err(format!(
                "{what}: an image is raw base64, without a data: prefix or a URL"
            ));
        }
        let base64 = data
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        if data.is_empty() || data.len() % 4 != 0 || !base64 {
            return Err(format!("{what}: an image is not base64: {data:.40}"));
        }
    }
    Ok(())
}

fn check_chat(body: &Value) -> Result<(), String> {
    let o = object(body, "the body")?;
    keys(o, "the body", CHAT_FIELDS, &["model", "messages"])?;
    check_shared(o)?;
    let mut tools = Vec::new();
    if let Some(v) = o.get("tools") {
        for t in v.as_array().ok_or("tools must be a list")? {
            let to = object(t, "a tool")?;
            keys(
                to,
                "a tool",
                &["type", "items", "function"],
                &["type", "function"],
            )?;
            let f = object(&t["function"], "a tool's function")?;
            keys(
                f,
                "a tool's function",
                &["name", "description", "parameters"],
                &["name", "parameters"],
            )?;
            if t["type"] != "function" || f["name"].as_str().is_none_or(|n| n.is_empty()) {
                return Err(format!("a tool is a named function: {t}"));
            }
            if t["function"]["parameters"]["type"] != "object" {
                return Err(format!("a tool's parameters are an object schema: {t}"));
            }
            tools.push(f["name"].as_str().unwrap_or_default().to_string());
        }
    }
    let messages = body["messages"]
        .as_array()
        .ok_or("messages must be a list")?;
    let mut called: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let what = format!("messages[{i}]");
        let mo = object(m, &what)?;
        keys(
            mo,
            &what,
            &[
                "role",
                "content",
                "thinking",
                "images",
                "tool_calls",
                "tool_name",
                "tool_call_id",
            ],
            &["role"],
        )?;
        if let Some(c) = mo.get("content") {
            c.as_str()
                .ok_or_else(|| format!("{what}.content is a string, got {c}"))?;
        }
        if let Some(images) = mo.get("images") {
            check_images(images, &what)?;
        }
        match m["role"].as_str() {
            Some("system" | "user") => {}
            Some("assistant") => {
                if let Some(calls) = mo.get("tool_calls") {
                    for c in calls
                        .as_array()
                        .ok_or_else(|| format!("{what}.tool_calls must be a list"))?
                    {
                        let co = object(c, "a tool call")?;
                        keys(co, "a tool call", &["id", "function"], &["function"])?;
                        let f = object(&c["function"], "a tool call's function")?;
                        keys(
                            f,
                            "a tool call's function",
                            &["index", "name", "arguments"],
                            &["name", "arguments"],
                        )?;
                        if !f["arguments"].is_object() {
                            return Err(format!(
                                "{what}: a tool call's arguments are a JSON object, not {}",
                                f["arguments"]
                            ));
                        }
                        called.push(f["name"].as_str().unwrap_or_default().to_string());
                    }
                }
            }
            Some("tool") => {
                let name = m["tool_name"].as_str().unwrap_or_default();
                if !called.iter().any(|c| c == name) {
                    return Err(format!(
                        "{what}: a tool result must name (tool_name) a function called before, got {name:?}"
                    ));
                }
            }
            _ => {
                return Err(format!(
                    "{what}: role must be system, user, assistant or tool: {m}"
                ))
            }
        }
    }
    Ok(())
}

fn check_generate(body: &Value) -> Result<(), String> {
    let o = object(body, "the body")?;
    keys(o, "the body", GENERATE_FIELDS, &["model", "prompt"])?;
    check_shared(o)?;
    for field in ["prompt", "suffix", "system", "template"] {
        if let Some(v) = o.get(field) {
            v.as_str()
                .ok_or_else(|| format!("{field} must be a string, got {v}"))?;
        }
    }
    if let Some(images) = o.get("images") {
        check_images(images, "the body")?;
    }
    Ok(())
}

fn check_embed(body: &Value) -> Result<(), String> {
    let o = object(body, "the body")?;
    keys(o, "the body", EMBED_FIELDS, &["model", "input"])?;
    let ok = match &body["input"] {
        Value::String(_) => true,
        Value::Array(a) => !a.is_empty() && a.iter().all(Value::is_string),
        _ => false,
    };
    if !ok {
        return Err(format!(
            "input must be a string or a list of strings, got {}",
            body["input"]
        ));
    }
    if let Some(d) = o.get("dimensions") {
        d.as_u64()
            .filter(|d| *d > 0)
            .ok_or_else(|| format!("dimensions must be a positive integer, got {d}"))?;
    }
    Ok(())
}
