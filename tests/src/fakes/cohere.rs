//! A strict fake of Cohere's v2 API (`POST /v2/chat`, `POST /v2/embed`): it checks the
//! headers (`Authorization: Bearer`, a JSON content type) and the body against the API
//! reference (known top-level fields only, required fields, each message's shape by role,
//! tool results answering an earlier tool call, tools and tool_choice, parameter ranges,
//! embed's input_type and embedding_types), and answers from the golden fixtures under
//! tests/fixtures/cohere/.
//!
//! What it answers depends on the request: a stream or not, tools (a first call or the
//! tool-result follow-up), an image, a response format; a marker anywhere in the body picks
//! a failure ([`RATE_LIMITED`], [`SERVER_ERROR`], [`TOO_LONG`], [`STREAM_CUT`],
//! [`STREAM_ERROR`]). Another key is answered 401, as the real API does.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::fake::Recorded;
use crate::strict::{fixture, FakeReply, Handler};

/// The key the fake accepts.
pub const KEY: &str = "co-fake-key-0006";
/// The text of the chat and chat_stream fixtures.
pub const CHAT_TEXT: &str = "Hello! How can I help you today?";
/// The text of the tool_result fixture.
pub const TOOL_RESULT_TEXT: &str = "It is 18 degrees and sunny in Paris.";
/// The text of the image fixture.
pub const IMAGE_TEXT: &str = "A single red pixel.";
/// The seconds of `retry-after` with a 429.
pub const RETRY_AFTER: &str = "7";

/// Markers: put one in a message to make the fake fail that way.
pub const RATE_LIMITED: &str = "cohere-fail-429";
pub const SERVER_ERROR: &str = "cohere-fail-503";
pub const TOO_LONG: &str = "cohere-fail-too-long";
/// A stream that ends cleanly but without message-end.
pub const STREAM_CUT: &str = "cohere-stream-cut";
/// A stream whose message-end says ERROR.
pub const STREAM_ERROR: &str = "cohere-stream-error";

const CHAT_FIELDS: &[&str] = &[
    "stream",
    "model",
    "messages",
    "tools",
    "strict_tools",
    "documents",
    "citation_options",
    "response_format",
    "safety_mode",
    "max_tokens",
    "stop_sequences",
    "temperature",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "k",
    "p",
    "logprobs",
    "tool_choice",
    "thinking",
    "priority",
];

const EMBED_FIELDS: &[&str] = &[
    "texts",
    "images",
    "model",
    "input_type",
    "inputs",
    "max_tokens",
    "output_dimension",
    "embedding_types",
    "truncate",
    "priority",
];

/// The fake's rules and answers, accepting [`KEY`].
pub fn handler() -> Handler {
    Arc::new(|r: &Recorded| answer(r))
}

fn answer(r: &Recorded) -> Result<FakeReply, String> {
    let chat = match (r.method.as_str(), r.uri.as_str()) {
        ("POST", "/v2/chat") => true,
        ("POST", "/v2/embed") => false,
        _ => {
            return Err(format!(
                "Cohere's v2 API serves POST /v2/chat and POST /v2/embed, not {} {}",
                r.method, r.uri
            ))
        }
    };
    let Some(auth) = r.header("authorization") else {
        return Err("no authorization header".into());
    };
    let key = auth
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, k)| k.trim())
        .ok_or_else(|| format!("authorization must be `Bearer <key>`, got {auth:?}"))?;
    if !r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return Err("content-type must be application/json".into());
    }
    let body: Value = serde_json::from_slice(&r.body)
        .map_err(|e| format!("the body is not JSON ({e}): {}", r.body_text()))?;
    if chat {
        check_chat(&body)?;
    } else {
        check_embed(&body)?;
    }
    if key != KEY {
        return Ok(FakeReply::json(
            401,
            fixture("cohere", "auth_error", "provider_response.json"),
        ));
    }
    let text = r.body_text();
    if text.contains(RATE_LIMITED) {
        return Ok(FakeReply::json(
            429,
            fixture("cohere", "rate_limit", "provider_response.json"),
        )
        .with_header("retry-after", RETRY_AFTER));
    }
    if text.contains(SERVER_ERROR) {
        return Ok(FakeReply::json(
            503,
            fixture("cohere", "server_error", "provider_response.json"),
        ));
    }
    if text.contains(TOO_LONG) {
        return Ok(FakeReply::json(
            400,
            fixture("cohere", "context_window", "provider_response.json"),
        ));
    }
    if !chat {
        return Ok(embeddings(&body));
    }

    let has_tools =
        body["tools"].as_array().is_some_and(|t| !t.is_empty()) && body["tool_choice"] != "NONE";
    let last = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or(Value::Null);
    if body["stream"] == true {
        let case = if text.contains(STREAM_CUT) {
            "stream_cut"
        } else if text.contains(STREAM_ERROR) {
            "stream_error"
        } else if has_tools && last["role"] != "tool" {
            "chat_stream_tools"
        } else {
            "chat_stream"
        };
        let whole = fixture("cohere", case, "provider_stream.sse");
        return Ok(FakeReply::stream("text/event-stream", events(&whole)));
    }
    let has_image = last["content"]
        .as_array()
        .is_some_and(|b| b.iter().any(|b| b["type"] == "image_url"));
    let case = if last["role"] == "tool" {
        "tool_result"
    } else if has_tools {
        "chat_tools"
    } else if has_image {
        "image"
    } else if body.get("response_format").is_some() {
        "json_schema"
    } else {
        "chat"
    };
    Ok(FakeReply::json(
        200,
        fixture("cohere", case, "provider_response.json"),
    ))
}

/// The embeddings fixture's vectors, one per text asked for (cycling), its meta with the
/// billed tokens counted for these texts.
fn embeddings(body: &Value) -> FakeReply {
    let whole: Value =
        serde_json::from_slice(&fixture("cohere", "embeddings", "provider_response.json"))
            .unwrap_or_default();
    let vectors = whole["embeddings"]["float"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let texts = body["texts"].as_array().cloned().unwrap_or_default();
    let floats: Vec<Value> = (0..texts.len())
        .map(|i| vectors[i % vectors.len().max(1)].clone())
        .collect();
    let mut answer = whole.clone();
    answer["texts"] = Value::Array(texts.clone());
    answer["embeddings"] = json!({ "float": floats });
    answer["meta"]["billed_units"]["input_tokens"] = json!(2 * texts.len());
    FakeReply::json(200, answer.to_string())
}

/// An SSE body in pieces as a server flushes them: one event each, the first split in two
/// (so the gateway meets an event cut across reads).
fn events(whole: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(whole);
    let mut pieces: Vec<Vec<u8>> = text
        .split_inclusive("\n\n")
        .map(|e| e.as_bytes().to_vec())
        .collect();
    if let Some(first) = pieces.first().cloned() {
        let (a, b) = first.split_at(first.len() / 2);
        pieces.splice(0..1, [a.to_vec(), b.to_vec()]);
    }
    pieces
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

fn number_in(o: &Map<String, Value>, field: &str, low: f64, high: f64) -> Result<(), String> {
    match o.get(field) {
        None => Ok(()),
        Some(v) => match v.as_f64() {
            Some(n) if (low..=high).contains(&n) => Ok(()),
            _ => Err(format!(
                "{field} must be a number in [{low}, {high}], got {v}"
            )),
        },
    }
}

fn non_empty_str(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty())
}

fn check_chat(body: &Value) -> Result<(), String> {
    let o = object(body, "the body")?;
    keys(o, "the body", CHAT_FIELDS, &["model", "messages"])?;
    if !non_empty_str(&body["model"]) {
        return Err("model must be a non-empty string".into());
    }
    if let Some(v) = o.get("stream") {
        v.as_bool().ok_or("stream must be a boolean")?;
    }
    number_in(o, "temperature", 0.0, 1.0)?;
    number_in(o, "p", 0.01, 0.99)?;
    number_in(o, "k", 0.0, 500.0)?;
    number_in(o, "frequency_penalty", 0.0, 1.0)?;
    number_in(o, "presence_penalty", 0.0, 1.0)?;
    for field in ["max_tokens", "seed"] {
        if let Some(v) = o.get(field) {
            v.as_u64()
                .ok_or_else(|| format!("{field} must be a non-negative integer, got {v}"))?;
        }
    }
    if o.get("max_tokens").is_some_and(|v| v.as_u64() == Some(0)) {
        return Err("max_tokens must be at least 1".into());
    }
    if let Some(v) = o.get("stop_sequences") {
        let all = v.as_array().ok_or("stop_sequences must be a list")?;
        if all.len() > 5 || all.iter().any(|s| !s.is_string()) {
            return Err(format!("stop_sequences: up to 5 strings, got {v}"));
        }
    }
    if let Some(f) = o.get("response_format") {
        let fo = object(f, "response_format")?;
        match f["type"].as_str() {
            Some("text") => keys(fo, "response_format", &["type"], &[])?,
            Some("json_object") => {
                keys(fo, "response_format", &["type", "json_schema"], &[])?;
                if let Some(s) = fo.get("json_schema") {
                    object(s, "response_format.json_schema")?;
                }
            }
            _ => {
                return Err(format!(
                    "response_format.type must be text or json_object: {f}"
                ))
            }
        }
    }
    if let Some(t) = o.get("thinking") {
        let to = object(t, "thinking")?;
        keys(to, "thinking", &["type", "token_budget"], &["type"])?;
        if !matches!(t["type"].as_str(), Some("enabled" | "disabled")) {
            return Err(format!("thinking.type must be enabled or disabled: {t}"));
        }
        if to
            .get("token_budget")
            .is_some_and(|b| b.as_u64().is_none_or(|b| b == 0))
        {
            return Err("thinking.token_budget must be a positive integer".into());
        }
    }
    let tools = check_tools(body)?;
    if let Some(choice) = o.get("tool_choice") {
        if !matches!(choice.as_str(), Some("REQUIRED" | "NONE")) {
            return Err(format!(
                "tool_choice must be REQUIRED or NONE, got {choice}"
            ));
        }
        if tools.is_empty() {
            return Err("tool_choice needs the tools parameter".into());
        }
    }
    check_messages(body)
}

/// The tools' names.
fn check_tools(body: &Value) -> Result<Vec<String>, String> {
    let Some(v) = body.get("tools") else {
        return Ok(Vec::new());
    };
    let mut names = Vec::new();
    for t in v.as_array().ok_or("tools must be a list")? {
        let o = object(t, "a tool")?;
        keys(o, "a tool", &["type", "function"], &["type", "function"])?;
        if t["type"] != "function" {
            return Err(format!("a tool's type must be function: {t}"));
        }
        let f = object(&t["function"], "a tool's function")?;
        keys(
            f,
            "a tool's function",
            &["name", "description", "parameters"],
            &["name", "parameters"],
        )?;
        if !non_empty_str(&f["name"]) {
            return Err(format!("a tool's function needs a name: {t}"));
        }
        object(&f["parameters"], "a tool's parameters")?;
        names.push(f["name"].as_str().unwrap_or_default().to_string());
    }
    Ok(names)
}

fn check_messages(body: &Value) -> Result<(), String> {
    let messages = body["messages"]
        .as_array()
        .filter(|m| !m.is_empty())
        .ok_or("messages must be a non-empty list")?;
    let mut call_ids: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let what = format!("messages[{i}]");
        let o = object(m, &what)?;
        match m["role"].as_str() {
            Some("system") => {
                keys(o, &what, &["role", "content"], &["content"])?;
                check_text_content(&m["content"], &what, &["text"])?;
            }
            Some("user") => {
                keys(o, &what, &["role", "content"], &["content"])?;
                check_user_content(&m["content"], &what)?;
            }
            Some("assistant") => {
                keys(
                    o,
                    &what,
                    &["role", "content", "tool_calls", "tool_plan", "citations"],
                    &[],
                )?;
                if let Some(c) = o.get("content") {
                    check_text_content(c, &what, &["text", "thinking"])?;
                }
                if let Some(p) = o.get("tool_plan") {
                    p.as_str()
                        .ok_or_else(|| format!("{what}.tool_plan must be a string"))?;
                }
                let calls = o.get("tool_calls").map(|c| c.as_array());
                if !o.contains_key("content") && calls.flatten().is_none_or(|c| c.is_empty()) {
                    return Err(format!(
                        "{what}: an assistant message needs content or tool_calls"
                    ));
                }
                if let Some(calls) = calls {
                    for c in calls.ok_or_else(|| format!("{what}.tool_calls must be a list"))? {
                        let co = object(c, "a tool call")?;
                        keys(
                            co,
                            "a tool call",
                            &["id", "type", "function"],
                            &["id", "function"],
                        )?;
                        if co.get("type").is_some_and(|t| t != "function")
                            || !non_empty_str(&c["id"])
                        {
                            return Err(format!(
                                "{what}: a tool call needs an id and type function: {c}"
                            ));
                        }
                        let f = object(&c["function"], "a tool call's function")?;
                        keys(
                            f,
                            "a tool call's function",
                            &["name", "arguments"],
                            &["name", "arguments"],
                        )?;
                        let args = f["arguments"].as_str().ok_or_else(|| {
                            format!("{what}: a tool call's arguments are JSON text")
                        })?;
                        serde_json::from_str::<Value>(args).map_err(|e| {
                            format!("{what}: a tool call's arguments are not JSON ({e})")
                        })?;
                        call_ids.push(c["id"].as_str().unwrap_or_default().to_string());
                    }
                }
            }
            Some("tool") => {
                keys(
                    o,
                    &what,
                    &["role", "tool_call_id", "content"],
                    &["tool_call_id", "content"],
                )?;
                let id = m["tool_call_id"].as_str().unwrap_or_default();
                if !call_ids.iter().any(|c| c == id) {
                    return Err(format!(
                        "{what}: tool_call_id {id:?} answers no earlier tool call"
                    ));
                }
                check_text_content(&m["content"], &what, &["text", "document"])?;
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

/// A string, or blocks of these types.
fn check_text_content(content: &Value, what: &str, types: &[&str]) -> Result<(), String> {
    match content {
        Value::String(_) => Ok(()),
        Value::Array(blocks) => {
            for b in blocks {
                let bo = object(b, "a content block")?;
                let kind = b["type"].as_str().unwrap_or_default();
                if !types.contains(&kind) {
                    return Err(format!(
                        "{what}: content blocks here are {types:?}, not {b}"
                    ));
                }
                let field = if kind == "document" { "document" } else { kind };
                keys(bo, "a content block", &["type", field], &["type", field])?;
            }
            Ok(())
        }
        other => Err(format!(
            "{what}.content must be a string or a list: {other}"
        )),
    }
}

fn check_user_content(content: &Value, what: &str) -> Result<(), String> {
    let Value::Array(blocks) = content else {
        return check_text_content(content, what, &["text"]);
    };
    for b in blocks {
        let bo = object(b, "a content block")?;
        match b["type"].as_str() {
            Some("text") => keys(bo, "a text block", &["type", "text"], &["type", "text"])?,
            Some("image_url") => {
                keys(
                    bo,
                    "an image block",
                    &["type", "image_url"],
                    &["type", "image_url"],
                )?;
                let io = object(&b["image_url"], "image_url")?;
                keys(io, "image_url", &["url", "detail"], &["url"])?;
                let url = b["image_url"]["url"].as_str().unwrap_or_default();
                if !(url.starts_with("data:image/")
                    || url.starts_with("https://")
                    || url.starts_with("http://"))
                {
                    return Err(format!(
                        "{what}: an image url is a web URL or a base64 data URI"
                    ));
                }
                if io
                    .get("detail")
                    .is_some_and(|d| !matches!(d.as_str(), Some("auto" | "low" | "high")))
                {
                    return Err(format!(
                        "{what}: image_url.detail must be auto, low or high"
                    ));
                }
            }
            _ => {
                return Err(format!(
                    "{what}: user content blocks are text or image_url: {b}"
                ))
            }
        }
    }
    Ok(())
}

fn check_embed(body: &Value) -> Result<(), String> {
    let o = object(body, "the body")?;
    // v2 requires input_type and embedding_types.
    keys(
        o,
        "the body",
        EMBED_FIELDS,
        &["model", "input_type", "embedding_types"],
    )?;
    if !non_empty_str(&body["model"]) {
        return Err("model must be a non-empty string".into());
    }
    if !matches!(
        body["input_type"].as_str(),
        Some("search_document" | "search_query" | "classification" | "clustering" | "image")
    ) {
        return Err(format!(
            "input_type is not one of Cohere's: {}",
            body["input_type"]
        ));
    }
    let types = body["embedding_types"]
        .as_array()
        .filter(|t| !t.is_empty())
        .ok_or("embedding_types must be a non-empty list")?;
    if types.iter().any(|t| {
        !matches!(
            t.as_str(),
            Some("float" | "int8" | "uint8" | "binary" | "ubinary" | "base64")
        )
    }) {
        return Err(format!(
            "embedding_types has an unknown type: {}",
            body["embedding_types"]
        ));
    }
    body["texts"]
        .as_array()
        .filter(|t| !t.is_empty() && t.len() <= 96 && t.iter().all(Value::is_string))
        .ok_or("texts must be a list of 1 to 96 strings")?;
    if let Some(d) = o.get("output_dimension") {
        if !matches!(d.as_u64(), Some(256 | 512 | 1024 | 1536)) {
            return Err(format!(
                "output_dimension must be 256, 512, 1024 or 1536, got {d}"
            ));
        }
    }
    if let Some(t) = o.get("truncate") {
        if !matches!(t.as_str(), Some("NONE" | "START" | "END")) {
            return Err(format!("truncate must be NONE, START or END, got {t}"));
        }
    }
    Ok(())
}
