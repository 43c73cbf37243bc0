//! A strict fake of Anthropic's Messages API (`POST /v1/messages`): it checks the headers
//! (`x-api-key`, `anthropic-version`, JSON content type, no `authorization`) and the body
//! against the API reference (known top-level fields only, required `model`, `messages`
//! and `max_tokens`, each content block's shape by role, tool_use answered by tool_result,
//! tools defined when the conversation uses them, sampling ranges, the thinking budget),
//! and answers from the golden fixtures under tests/fixtures/anthropic/.
//!
//! What it answers depends on the request: a stream or not, tools (a first call or the
//! tool-result follow-up), JSON mode, an image, thinking; and a marker anywhere in the body
//! picks a failure ([`RATE_LIMITED`], [`OVERLOADED`], [`SERVER_ERROR`], [`TOO_LONG`],
//! [`STREAM_CUT`], [`STREAM_RESET`], [`STREAM_ERROR`]). A request with another key is answered 401, as the
//! real API does.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::fake::Recorded;
use crate::strict::{fixture, FakeReply, Handler};

/// The key the fake accepts (`x-api-key`).
pub const KEY: &str = "sk-ant-fake-key-0005";
pub const VERSION: &str = "2023-06-01";
/// The model the fixtures answer as.
pub const MODEL: &str = "claude-sonnet-4-5-20250929";
/// The text of the chat and chat_stream fixtures.
pub const CHAT_TEXT: &str = "Hello! How can I help you today?";
/// The seconds of `retry-after` with a 429.
pub const RETRY_AFTER: &str = "7";

/// Markers: put one in a message to make the fake fail that way.
pub const RATE_LIMITED: &str = "anthropic-fail-429";
pub const OVERLOADED: &str = "anthropic-fail-529";
pub const SERVER_ERROR: &str = "anthropic-fail-500";
pub const TOO_LONG: &str = "anthropic-fail-too-long";
/// A stream that ends cleanly but without message_stop (cut short by the provider).
pub const STREAM_CUT: &str = "anthropic-stream-cut";
/// A stream whose connection drops after a few events.
pub const STREAM_RESET: &str = "anthropic-stream-reset";
/// A stream that carries an `overloaded_error` event.
pub const STREAM_ERROR: &str = "anthropic-stream-error";

const TOP_LEVEL: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "metadata",
    "tools",
    "tool_choice",
    "thinking",
    "stream",
    "cache_control",
    "container",
    "context_management",
    "mcp_servers",
    "service_tier",
    "output_config",
    "inference_geo",
];

const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// The fake's rules and answers, accepting [`KEY`].
pub fn handler() -> Handler {
    Arc::new(|r: &Recorded| answer(r))
}

/// What `/v1/messages/count_tokens` answers.
pub const COUNTED_TOKENS: u64 = 42;

/// The fields `/v1/messages/count_tokens` takes (no max_tokens, no stream).
const COUNT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "mcp_servers",
    "context_management",
    "output_config",
];

fn answer(r: &Recorded) -> Result<FakeReply, String> {
    let counting = r.uri == "/v1/messages/count_tokens";
    if r.method != "POST" || (r.uri != "/v1/messages" && !counting) {
        return Err(format!(
            "Anthropic serves POST /v1/messages and /v1/messages/count_tokens, not {} {}",
            r.method, r.uri
        ));
    }
    let Some(key) = r.header("x-api-key") else {
        return Err("no x-api-key header".into());
    };
    if r.header("authorization").is_some() {
        return Err("an authorization header: Anthropic's key goes in x-api-key".into());
    }
    if r.header("anthropic-version") != Some(VERSION) {
        return Err(format!(
            "anthropic-version must be {VERSION}, got {:?}",
            r.header("anthropic-version")
        ));
    }
    if !r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return Err("content-type must be application/json".into());
    }
    let body: Value = serde_json::from_slice(&r.body)
        .map_err(|e| format!("the body is not JSON ({e}): {}", r.body_text()))?;
    if counting {
        keys(
            object(&body, "the body")?,
            "the body",
            COUNT_FIELDS,
            &["model", "messages"],
        )?;
        if key != KEY {
            return Ok(error(401, "authentication_error", "invalid x-api-key"));
        }
        return Ok(FakeReply::json(
            200,
            serde_json::json!({ "input_tokens": COUNTED_TOKENS }).to_string(),
        ));
    }
    check_body(&body)?;
    if key != KEY {
        return Ok(error(401, "authentication_error", "invalid x-api-key"));
    }

    let text = r.body_text();
    let stream = body["stream"] == Value::Bool(true);
    if text.contains(RATE_LIMITED) {
        return Ok(FakeReply::json(
            429,
            fixture("anthropic", "rate_limit", "provider_response.json"),
        )
        .with_header("retry-after", RETRY_AFTER)
        .with_header("anthropic-ratelimit-requests-remaining", "0"));
    }
    if text.contains(OVERLOADED) {
        return Ok(FakeReply::json(
            529,
            fixture("anthropic", "overloaded", "provider_response.json"),
        ));
    }
    if text.contains(SERVER_ERROR) {
        return Ok(error(500, "api_error", "Internal server error"));
    }
    if text.contains(TOO_LONG) {
        return Ok(FakeReply::json(
            400,
            fixture("anthropic", "context_window", "provider_response.json"),
        ));
    }

    let has_tools = body["tools"].as_array().is_some_and(|t| !t.is_empty());
    let json_tool = body["tool_choice"]["name"] == "json_tool_call";
    let thinking = body["thinking"]["type"] == "enabled";
    let last = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or(Value::Null);
    let answers_tools = blocks(&last).iter().any(|b| b["type"] == "tool_result");
    let has_image = blocks(&last).iter().any(|b| b["type"] == "image");

    if stream {
        if text.contains(STREAM_RESET) {
            // The message's start and some text, then the connection drops.
            let whole = fixture("anthropic", "stream_cut", "provider_stream.sse");
            let mut pieces = events(&whole);
            pieces.truncate(4);
            return Ok(FakeReply::Stream {
                content_type: "text/event-stream; charset=utf-8".into(),
                pieces,
                pause: None,
                cut: true,
            });
        }
        let case = if text.contains(STREAM_CUT) {
            "stream_cut"
        } else if text.contains(STREAM_ERROR) {
            "stream_error"
        } else if has_tools && !answers_tools {
            "stream_tools"
        } else if thinking {
            "stream_thinking"
        } else {
            "chat_stream"
        };
        let whole = fixture("anthropic", case, "provider_stream.sse");
        return Ok(FakeReply::stream(
            "text/event-stream; charset=utf-8",
            events(&whole),
        ));
    }
    let case = if json_tool {
        "json_mode"
    } else if has_tools && answers_tools {
        "tool_result"
    } else if has_tools {
        "chat_tools"
    } else if has_image {
        "image"
    } else if thinking {
        "usage_cache_thinking"
    } else {
        "chat"
    };
    Ok(FakeReply::json(
        200,
        fixture("anthropic", case, "provider_response.json"),
    ))
}

/// An Anthropic error answer.
pub fn error(status: u16, kind: &str, message: &str) -> FakeReply {
    FakeReply::json(
        status,
        serde_json::json!({"type": "error", "error": {"type": kind, "message": message}})
            .to_string(),
    )
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

/// A message's content as blocks (a string is one text block).
fn blocks(message: &Value) -> Vec<Value> {
    match &message["content"] {
        Value::String(s) => vec![serde_json::json!({"type": "text", "text": s})],
        Value::Array(a) => a.clone(),
        _ => Vec::new(),
    }
}

fn non_empty_str(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty())
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
        return Err(format!(
            "{what}: unknown field `{k}` (Extra inputs are not permitted)"
        ));
    }
    if let Some(k) = required.iter().find(|k| !o.contains_key(**k)) {
        return Err(format!("{what}: `{k}` is required"));
    }
    Ok(())
}

fn number_in(v: &Value, what: &str, low: f64, high: f64) -> Result<(), String> {
    match v.as_f64() {
        Some(n) if (low..=high).contains(&n) => Ok(()),
        _ => Err(format!(
            "{what} must be a number in [{low}, {high}], got {v}"
        )),
    }
}

fn check_body(body: &Value) -> Result<(), String> {
    let o = object(body, "the body")?;
    keys(
        o,
        "the body",
        TOP_LEVEL,
        &["model", "messages", "max_tokens"],
    )?;
    if !non_empty_str(&body["model"]) {
        return Err("model must be a non-empty string".into());
    }
    let max_tokens = body["max_tokens"]
        .as_u64()
        .filter(|n| *n >= 1)
        .ok_or("max_tokens must be an integer ≥ 1")?;
    for (field, low, high) in [("temperature", 0.0, 1.0), ("top_p", 0.0, 1.0)] {
        if let Some(v) = o.get(field) {
            number_in(v, field, low, high)?;
        }
    }
    if let Some(v) = o.get("top_k") {
        v.as_u64().ok_or("top_k must be a positive integer")?;
    }
    if let Some(v) = o.get("stream") {
        v.as_bool().ok_or("stream must be a boolean")?;
    }
    if let Some(v) = o.get("stop_sequences") {
        let all = v.as_array().ok_or("stop_sequences must be a list")?;
        if all
            .iter()
            .any(|s| s.as_str().is_none_or(|s| s.trim().is_empty()))
        {
            return Err("stop_sequences must be strings with non-whitespace".into());
        }
    }
    if let Some(v) = o.get("metadata") {
        let m = object(v, "metadata")?;
        keys(m, "metadata", &["user_id"], &[])?;
        if !m["user_id"].is_string() && !m["user_id"].is_null() {
            return Err("metadata.user_id must be a string".into());
        }
    }
    match o.get("system") {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(blocks)) => {
            for b in blocks {
                let bo = object(b, "a system block")?;
                keys(
                    bo,
                    "a system block",
                    &["type", "text", "cache_control", "citations"],
                    &["type", "text"],
                )?;
                if b["type"] != "text" || !non_empty_str(&b["text"]) {
                    return Err(format!("system blocks are non-empty text blocks: {b}"));
                }
            }
        }
        Some(other) => return Err(format!("system must be a string or text blocks: {other}")),
    }

    let tools = check_tools(body)?;
    let thinking = check_thinking(body, max_tokens)?;
    if let Some(choice) = o.get("tool_choice") {
        let c = object(choice, "tool_choice")?;
        keys(
            c,
            "tool_choice",
            &["type", "name", "disable_parallel_tool_use"],
            &["type"],
        )?;
        match c["type"].as_str() {
            Some("auto" | "any" | "none") if !c.contains_key("name") => {}
            Some("tool")
                if c["name"]
                    .as_str()
                    .is_some_and(|n| tools.iter().any(|t| t == n)) => {}
            _ => {
                return Err(format!(
                    "tool_choice {choice} is not auto, any, none or one of the tools"
                ))
            }
        }
        if tools.is_empty() {
            return Err("tool_choice may only be specified while providing tools".into());
        }
        if thinking && matches!(c["type"].as_str(), Some("any" | "tool")) {
            return Err("Thinking may not be enabled when tool_choice forces tool use.".into());
        }
    }
    check_messages(body, !tools.is_empty())
}

/// The tools' names.
fn check_tools(body: &Value) -> Result<Vec<String>, String> {
    let Some(v) = body.get("tools") else {
        return Ok(Vec::new());
    };
    let mut names = Vec::new();
    for t in v.as_array().ok_or("tools must be a list")? {
        let o = object(t, "a tool")?;
        keys(
            o,
            "a tool",
            &[
                "name",
                "description",
                "input_schema",
                "cache_control",
                "type",
            ],
            &["name", "input_schema"],
        )?;
        let name = t["name"].as_str().unwrap_or_default();
        if name.is_empty()
            || name.len() > 128
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "tools.name must match ^[a-zA-Z0-9_-]{{1,128}}$: {name:?}"
            ));
        }
        if let Some(d) = o.get("description") {
            d.as_str().ok_or("tools.description must be a string")?;
        }
        if t["input_schema"]["type"] != "object" {
            return Err(format!("tools.input_schema.type must be \"object\": {t}"));
        }
        if names.iter().any(|n| n == name) {
            return Err(format!("tool names must be unique: {name}"));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// Whether thinking is enabled.
fn check_thinking(body: &Value, max_tokens: u64) -> Result<bool, String> {
    let Some(t) = body.get("thinking") else {
        return Ok(false);
    };
    let o = object(t, "thinking")?;
    match t["type"].as_str() {
        Some("enabled") => {
            keys(
                o,
                "thinking",
                &["type", "budget_tokens", "display"],
                &["budget_tokens"],
            )?;
            let budget = t["budget_tokens"].as_u64().unwrap_or(0);
            if budget < 1024 || budget >= max_tokens {
                return Err(format!(
                    "thinking.budget_tokens must be ≥ 1024 and less than max_tokens ({max_tokens}), got {budget}"
                ));
            }
            Ok(true)
        }
        Some("disabled") => {
            keys(o, "thinking", &["type"], &[])?;
            Ok(false)
        }
        _ => Err(format!("thinking.type must be enabled or disabled: {t}")),
    }
}

fn check_messages(body: &Value, tools: bool) -> Result<(), String> {
    let messages = body["messages"]
        .as_array()
        .ok_or("messages must be a list")?;
    // tool_use ids of the previous assistant turn, which the next user turn must answer.
    let mut pending: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let what = format!("messages.{i}");
        let o = object(m, &what)?;
        keys(o, &what, &["role", "content"], &["role", "content"])?;
        let role = m["role"].as_str().unwrap_or_default();
        if role != "user" && role != "assistant" {
            return Err(format!(
                "{what}.role must be user or assistant, got {:?}",
                m["role"]
            ));
        }
        let blocks = match &m["content"] {
            Value::String(s) if !s.is_empty() => Vec::new(),
            Value::Array(a) if !a.is_empty() => a.clone(),
            other => {
                return Err(format!(
                    "{what}.content must be a non-empty string or list: {other}"
                ))
            }
        };
        let answered: Vec<&str> = blocks
            .iter()
            .filter(|b| b["type"] == "tool_result")
            .filter_map(|b| b["tool_use_id"].as_str())
            .collect();
        if !pending.is_empty()
            && (role != "user" || pending.iter().any(|id| !answered.contains(&id.as_str())))
        {
            return Err(format!(
                "{what}: tool_use ids were found without tool_result blocks immediately after: {pending:?}"
            ));
        }
        if let Some(id) = answered.iter().find(|id| !pending.iter().any(|p| p == *id)) {
            return Err(format!(
                "{what}: unexpected tool_use_id found in tool_result blocks: {id}. Each tool_result block must have a corresponding tool_use block in the previous message."
            ));
        }
        // tool_result blocks come first in their message.
        if let Some(first_other) = blocks.iter().position(|b| b["type"] != "tool_result") {
            if blocks[first_other..]
                .iter()
                .any(|b| b["type"] == "tool_result")
            {
                return Err(format!("{what}: tool_result blocks must come first"));
            }
        }
        pending.clear();
        for (j, b) in blocks.iter().enumerate() {
            let what = format!("{what}.content.{j}");
            check_block(b, role, &what)?;
            if b["type"] == "tool_use" {
                pending.extend(b["id"].as_str().map(str::to_string));
            }
            if !tools && matches!(b["type"].as_str(), Some("tool_use" | "tool_result")) {
                return Err(
                    "Requests which include `tool_use` or `tool_result` blocks must define tools."
                        .into(),
                );
            }
        }
    }
    if !pending.is_empty() {
        return Err(format!(
            "the conversation ends with tool_use blocks no tool_result answers: {pending:?}"
        ));
    }
    Ok(())
}

fn check_block(b: &Value, role: &str, what: &str) -> Result<(), String> {
    let o = object(b, what)?;
    let kind = b["type"].as_str().unwrap_or_default();
    let by_user = role == "user";
    match kind {
        "text" => {
            keys(
                o,
                what,
                &["type", "text", "cache_control", "citations"],
                &["text"],
            )?;
            if !non_empty_str(&b["text"]) {
                return Err(format!("{what}: text content blocks must be non-empty"));
            }
        }
        "image" if by_user => {
            keys(o, what, &["type", "source", "cache_control"], &["source"])?;
            check_source(&b["source"], what, IMAGE_TYPES)?;
        }
        "document" if by_user => {
            keys(
                o,
                what,
                &[
                    "type",
                    "source",
                    "cache_control",
                    "title",
                    "context",
                    "citations",
                ],
                &["source"],
            )?;
            // A document is a PDF (base64 or url) or plain text.
            if b["source"]["type"] == "text" {
                keys(
                    object(&b["source"], what)?,
                    what,
                    &["type", "media_type", "data"],
                    &["media_type", "data"],
                )?;
                if b["source"]["media_type"] != "text/plain" || !b["source"]["data"].is_string() {
                    return Err(format!("{what}: a text source is text/plain data"));
                }
            } else {
                check_source(&b["source"], what, &["application/pdf"])?;
            }
        }
        "tool_result" if by_user => {
            keys(
                o,
                what,
                &[
                    "type",
                    "tool_use_id",
                    "content",
                    "is_error",
                    "cache_control",
                ],
                &["tool_use_id"],
            )?;
            match &b["content"] {
                Value::Null | Value::String(_) => {}
                Value::Array(parts) => {
                    for (k, p) in parts.iter().enumerate() {
                        if !matches!(p["type"].as_str(), Some("text" | "image")) {
                            return Err(format!(
                                "{what}.content.{k}: tool results hold text and images"
                            ));
                        }
                        check_block(p, "user", &format!("{what}.content.{k}"))?;
                    }
                }
                other => {
                    return Err(format!(
                        "{what}: tool_result content must be a string or list: {other}"
                    ))
                }
            }
        }
        "tool_use" if !by_user => {
            keys(
                o,
                what,
                &["type", "id", "name", "input", "cache_control"],
                &["id", "name", "input"],
            )?;
            if !b["input"].is_object() {
                return Err(format!("{what}: tool_use.input must be an object"));
            }
        }
        "thinking" if !by_user => {
            keys(
                o,
                what,
                &["type", "thinking", "signature"],
                &["thinking", "signature"],
            )?;
        }
        "redacted_thinking" if !by_user => {
            keys(o, what, &["type", "data"], &["data"])?;
        }
        _ => {
            return Err(format!(
                "{what}: a {role} message cannot hold a `{kind}` block"
            ))
        }
    }
    Ok(())
}

fn check_source(s: &Value, what: &str, media_types: &[&str]) -> Result<(), String> {
    let o = object(s, &format!("{what}.source"))?;
    match s["type"].as_str() {
        Some("base64") => {
            keys(
                o,
                what,
                &["type", "media_type", "data"],
                &["media_type", "data"],
            )?;
            let media = s["media_type"].as_str().unwrap_or_default();
            if !media_types.contains(&media) {
                return Err(format!(
                    "{what}: media_type must be one of {media_types:?}, got {media:?}"
                ));
            }
            if !s["data"]
                .as_str()
                .is_some_and(|d| !d.is_empty() && !d.contains(','))
            {
                return Err(format!("{what}: source.data must be the base64 data alone"));
            }
        }
        Some("url") => {
            keys(o, what, &["type", "url"], &["url"])?;
            if !s["url"]
                .as_str()
                .is_some_and(|u| u.starts_with("https://") || u.starts_with("http://"))
            {
                return Err(format!("{what}: source.url must be an http(s) URL"));
            }
        }
        _ => return Err(format!("{what}: source.type must be base64 or url: {s}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(body: Value, key: &str) -> Recorded {
        Recorded {
            method: "POST".into(),
            uri: "/v1/messages".into(),
            headers: vec![
                ("x-api-key".into(), key.into()),
                ("anthropic-version".into(), VERSION.into()),
                ("content-type".into(), "application/json".into()),
            ],
            body: body.to_string().into_bytes(),
        }
    }

    /// Every golden provider request is one the fake accepts.
    #[test]
    fn accepts_every_golden_request() {
        let dir = crate::artefacts::repo_root().join("tests/fixtures/anthropic");
        for case in std::fs::read_dir(dir).unwrap().flatten() {
            let Ok(bytes) = std::fs::read(case.path().join("provider_request.json")) else {
                continue;
            };
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            let r = recorded(body, KEY);
            assert!(
                answer(&r).is_ok(),
                "{}: {:?}",
                case.path().display(),
                answer(&r).err()
            );
        }
    }

    #[test]
    fn refuses_what_the_api_refuses() {
        let ok = serde_json::json!({"model": MODEL, "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]});
        assert!(answer(&recorded(ok.clone(), KEY)).is_ok());
        let mut bad = ok.clone();
        bad["presence_penalty"] = 0.5.into();
        assert!(answer(&recorded(bad, KEY)).is_err());
        let mut bad = ok.clone();
        bad.as_object_mut().unwrap().remove("max_tokens");
        assert!(answer(&recorded(bad, KEY)).is_err());
        let mut bad = ok.clone();
        bad["messages"] = serde_json::json!([{"role": "system", "content": "x"}]);
        assert!(answer(&recorded(bad, KEY)).is_err());
        let mut bad = ok.clone();
        bad["messages"] = serde_json::json!([{"role": "user", "content": "x"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": "no result"}]);
        bad["tools"] = serde_json::json!([{"name": "f", "input_schema": {"type": "object"}}]);
        assert!(answer(&recorded(bad, KEY)).is_err());
        match answer(&recorded(ok, "wrong")).unwrap() {
            FakeReply::Body { status, .. } => assert_eq!(status, 401),
            other => panic!("{other:?}"),
        }
    }
}
