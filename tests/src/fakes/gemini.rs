//! The Gemini fake: Google's generateContent API in both of its URL shapes, AI Studio
//! (`/v1beta/models/{model}:{method}`, key in `x-goog-api-key`) and Vertex AI
//! (`/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}`,
//! `Authorization: Bearer <token>`), with the embeddings of each (`batchEmbedContents`,
//! `predict`). It checks what the API reference requires (sources in
//! tests/fixtures/gemini/SOURCES.md): the credentials, `alt=sse` on streams, and every field
//! of the body (unknown fields and wrong shapes are refused, as Google's API refuses them),
//! and answers from the golden fixtures under tests/fixtures/gemini/ and vertex_ai/.
//!
//! What it answers depends on the request: a stream or not, tools (a function call), a
//! function response (the text after it), an image, or a marker in the body for a failure.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::fake::Recorded;
use crate::strict::{fixture, FakeReply, Handler};

/// The AI Studio key the fake accepts.
pub const API_KEY: &str = "gemini-fake-key-0005";
/// The Vertex AI access token the fake accepts.
pub const ACCESS_TOKEN: &str = "ya29.vertex-fake-token-0006";
pub const PROJECT: &str = "switchyard-test";
pub const LOCATION: &str = "us-central1";

/// Markers (anywhere in the request body) for the failure modes.
/// 429 RESOURCE_EXHAUSTED with a `retry-after: 7` header (and RetryInfo 7s).
pub const FAIL_429: &str = "gemini-fail-rate-limit";
/// 429 RESOURCE_EXHAUSTED with only Google's RetryInfo (`retryDelay: "4.2s"`), no header.
pub const FAIL_429_BODY: &str = "gemini-fail-retry-info";
/// 500 INTERNAL.
pub const FAIL_500: &str = "gemini-fail-internal";
/// 400 INVALID_ARGUMENT: the prompt exceeds the context window.
pub const FAIL_CONTEXT: &str = "gemini-fail-context";
/// A stream that ends after its first event, before any candidate finished.
pub const STREAM_CUT: &str = "gemini-stream-cut";
/// A stream whose connection drops after its first event.
pub const STREAM_RESET: &str = "gemini-stream-reset";
/// A stream that sends an error event after some text.
pub const STREAM_ERROR: &str = "gemini-stream-error";

/// The fake's rules and answers.
pub fn handler() -> Handler {
    Arc::new(handle)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Api {
    AiStudio,
    Vertex,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Method {
    Generate { stream: bool },
    BatchEmbed,
    Predict,
}

fn handle(r: &Recorded) -> Result<FakeReply, String> {
    if r.method != "POST" {
        return Err(format!("method {} (the API takes POST)", r.method));
    }
    let (api, model, method) = route(r)?;
    match r.header("content-type") {
        Some(ct) if ct.starts_with("application/json") => {}
        other => return Err(format!("content-type {other:?}, not application/json")),
    }
    let body: Value =
        serde_json::from_slice(&r.body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let text = r.body_text();
    match method {
        Method::Generate { stream } => {
            check_generate(&body, api)?;
            if let Some(reply) = failure(&text) {
                return Ok(reply);
            }
            Ok(if stream {
                stream_reply(&body, &text)
            } else {
                generate_reply(&body, api)
            })
        }
        Method::BatchEmbed => {
            let n = check_batch_embed(&body, &model)?;
            let dims = body["requests"][0]["outputDimensionality"].as_u64();
            let vectors = vectors(n, dims);
            let embeddings: Vec<Value> =
                vectors.into_iter().map(|v| json!({"values": v})).collect();
            Ok(FakeReply::json(
                200,
                json!({"embeddings": embeddings}).to_string(),
            ))
        }
        Method::Predict => {
            let n = check_predict(&body)?;
            let dims = body["parameters"]["outputDimensionality"].as_u64();
            let predictions: Vec<Value> = vectors(n, dims)
                .into_iter()
                .map(|v| {
                    json!({"embeddings": {"statistics": {"truncated": false, "token_count": 2}, "values": v}})
                })
                .collect();
            Ok(FakeReply::json(
                200,
                json!({"predictions": predictions, "metadata": {"billableCharacterCount": 10}})
                    .to_string(),
            ))
        }
    }
}

/// The API, model and method of the path, with the credentials each API takes.
fn route(r: &Recorded) -> Result<(Api, String, Method), String> {
    let path = r.path();
    let (resource, method) = path
        .rsplit_once(':')
        .ok_or_else(|| format!("no :method in the path {path}"))?;
    let (api, model) = if let Some(model) = resource.strip_prefix("/v1beta/models/") {
        if r.header("x-goog-api-key") != Some(API_KEY) {
            return Err(format!(
                "x-goog-api-key is {:?}, not the key",
                r.header("x-goog-api-key")
            ));
        }
        if r.header("authorization").is_some() {
            return Err("an authorization header beside the API key".into());
        }
        (Api::AiStudio, model)
    } else if let Some(rest) = resource.strip_prefix("/v1/projects/") {
        let want = format!("{PROJECT}/locations/{LOCATION}/publishers/google/models/");
        let model = rest.strip_prefix(&want).ok_or_else(|| {
            format!("the path {path} is not projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/...")
        })?;
        if r.header("authorization") != Some(format!("Bearer {ACCESS_TOKEN}").as_str()) {
            return Err(format!(
                "authorization is {:?}, not the bearer token",
                r.header("authorization")
            ));
        }
        if r.header("x-goog-api-key").is_some() {
            return Err("an x-goog-api-key header on Vertex AI".into());
        }
        (Api::Vertex, model)
    } else {
        return Err(format!("no such API path: {path}"));
    };
    if model.is_empty() || model.contains('/') {
        return Err(format!("bad model name {model:?}"));
    }
    let query = r.query();
    let method = match (api, method) {
        (_, "generateContent") => Method::Generate { stream: false },
        (_, "streamGenerateContent") => {
            if query != Some("alt=sse") {
                return Err(format!(
                    "streamGenerateContent without alt=sse (query {query:?})"
                ));
            }
            Method::Generate { stream: true }
        }
        (Api::AiStudio, "batchEmbedContents") => Method::BatchEmbed,
        (Api::Vertex, "predict") => Method::Predict,
        (_, other) => return Err(format!("no method {other} on {api:?}")),
    };
    if query.is_some() && !matches!(method, Method::Generate { stream: true }) {
        return Err(format!("a query {query:?} on {path}"));
    }
    Ok((api, model.to_string(), method))
}

// ---------------------------------------------------------------------------------------
// The rules of the API reference

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} is not an object: {v}"))
}

fn array<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, String> {
    v.as_array()
        .ok_or_else(|| format!("{what} is not an array: {v}"))
}

/// Refuses fields the type does not have.
fn only(o: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("unknown field {what}.{k}")),
        None => Ok(()),
    }
}

fn string(v: Option<&Value>, what: &str) -> Result<(), String> {
    match v {
        Some(Value::String(_)) => Ok(()),
        other => Err(format!("{what} must be a string, not {other:?}")),
    }
}

fn number(v: &Value, what: &str) -> Result<(), String> {
    if v.is_number() {
        Ok(())
    } else {
        Err(format!("{what} must be a number, not {v}"))
    }
}

fn integer(v: &Value, what: &str) -> Result<(), String> {
    if v.is_i64() || v.is_u64() {
        Ok(())
    } else {
        Err(format!("{what} must be an integer, not {v}"))
    }
}

/// GenerateContentRequest.
fn check_generate(body: &Value, api: Api) -> Result<(), String> {
    let o = object(body, "the body")?;
    let mut fields = vec![
        "contents",
        "tools",
        "toolConfig",
        "safetySettings",
        "systemInstruction",
        "generationConfig",
        "cachedContent",
    ];
    if api == Api::Vertex {
        fields.push("labels");
    }
    only(o, &fields, "GenerateContentRequest")?;
    let contents = array(o.get("contents").ok_or("contents is required")?, "contents")?;
    if contents.is_empty() {
        return Err("contents is empty".into());
    }
    let mut previous: Option<&Map<String, Value>> = None;
    for (i, c) in contents.iter().enumerate() {
        let c = check_content(c, &format!("contents[{i}]"))?;
        let role = c.get("role").and_then(Value::as_str).unwrap_or("user");
        if !["user", "model"].contains(&role) {
            return Err(format!("contents[{i}].role {role:?} is not user or model"));
        }
        if let Some(p) = previous {
            if p.get("role").and_then(Value::as_str).unwrap_or("user") == role {
                return Err(format!("contents[{i}] has the role of the turn before it"));
            }
        }
        check_function_responses(c, previous, i)?;
        previous = Some(c);
    }
    if let Some(s) = o.get("systemInstruction") {
        let s = check_content(s, "systemInstruction")?;
        for p in s["parts"].as_array().into_iter().flatten() {
            string(p.get("text"), "systemInstruction.parts[].text")?;
        }
    }
    let declared = match o.get("tools") {
        Some(t) => check_tools(t)?,
        None => Vec::new(),
    };
    if let Some(tc) = o.get("toolConfig") {
        check_tool_config(tc, &declared)?;
    }
    if let Some(g) = o.get("generationConfig") {
        check_generation_config(g)?;
    }
    if let Some(s) = o.get("safetySettings") {
        for (i, s) in array(s, "safetySettings")?.iter().enumerate() {
            let s = object(s, "a safety setting")?;
            only(
                s,
                &["category", "threshold", "method"],
                &format!("safetySettings[{i}]"),
            )?;
        }
    }
    Ok(())
}

/// Content: `{role?, parts: [Part]}` with at least one part.
fn check_content<'a>(c: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    let o = object(c, what)?;
    only(o, &["role", "parts"], what)?;
    let parts = array(
        o.get("parts").ok_or(format!("{what}.parts is required"))?,
        what,
    )?;
    if parts.is_empty() {
        return Err(format!("{what}.parts is empty"));
    }
    for (i, p) in parts.iter().enumerate() {
        check_part(p, &format!("{what}.parts[{i}]"))?;
    }
    Ok(o)
}

/// Part: exactly one kind of data, with `thought` and `thoughtSignature` beside it.
fn check_part(p: &Value, what: &str) -> Result<(), String> {
    const DATA: &[&str] = &[
        "text",
        "inlineData",
        "fileData",
        "functionCall",
        "functionResponse",
        "executableCode",
        "codeExecutionResult",
    ];
    let o = object(p, what)?;
    let mut fields = DATA.to_vec();
    fields.extend(["thought", "thoughtSignature", "videoMetadata"]);
    only(o, &fields, what)?;
    let kinds: Vec<&str> = DATA
        .iter()
        .copied()
        .filter(|k| o.contains_key(*k))
        .collect();
    if kinds.len() != 1 {
        return Err(format!(
            "{what} must hold one kind of data, holds {kinds:?}"
        ));
    }
    if let Some(t) = o.get("text") {
        string(Some(t), &format!("{what}.text"))?;
    }
    if let Some(b) = o.get("inlineData") {
        let b = object(b, "inlineData")?;
        only(b, &["mimeType", "data"], &format!("{what}.inlineData"))?;
        string(b.get("mimeType"), "inlineData.mimeType")?;
        let data = b.get("data").and_then(Value::as_str).unwrap_or_default();
        let base64 = |c: char| c.is_ascii_alphanumeric() || "+/=-_".contains(c);
        if data.is_empty() || !data.chars().all(base64) {
            return Err(format!("{what}.inlineData.data is not base64"));
        }
    }
    if let Some(f) = o.get("fileData") {
        let f = object(f, "fileData")?;
        only(
            f,
            &["mimeType", "fileUri", "displayName"],
            &format!("{what}.fileData"),
        )?;
        string(f.get("fileUri"), "fileData.fileUri")?;
    }
    if let Some(f) = o.get("functionCall") {
        let f = object(f, "functionCall")?;
        only(f, &["id", "name", "args"], &format!("{what}.functionCall"))?;
        string(f.get("name"), "functionCall.name")?;
        if let Some(args) = f.get("args") {
            object(args, "functionCall.args")?;
        }
    }
    if let Some(f) = o.get("functionResponse") {
        let f = object(f, "functionResponse")?;
        only(
            f,
            &[
                "id",
                "name",
                "response",
                "parts",
                "willContinue",
                "scheduling",
            ],
            &format!("{what}.functionResponse"),
        )?;
        string(f.get("name"), "functionResponse.name")?;
        object(
            f.get("response")
                .ok_or("functionResponse.response is required")?,
            "functionResponse.response",
        )?;
    }
    if let Some(t) = o.get("thought") {
        if !t.is_boolean() {
            return Err(format!("{what}.thought is not a boolean"));
        }
    }
    if let Some(s) = o.get("thoughtSignature") {
        string(Some(s), &format!("{what}.thoughtSignature"))?;
    }
    Ok(())
}

/// A turn of function responses answers the model's turn before it: one response per call,
/// for the functions it called.
fn check_function_responses(
    turn: &Map<String, Value>,
    previous: Option<&Map<String, Value>>,
    i: usize,
) -> Result<(), String> {
    let names = |c: &Map<String, Value>, field: &str| -> Vec<String> {
        c["parts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.get(field)?.get("name")?.as_str().map(str::to_string))
            .collect()
    };
    let mut responses = names(turn, "functionResponse");
    if responses.is_empty() {
        return Ok(());
    }
    let mut calls = previous
        .map(|p| names(p, "functionCall"))
        .unwrap_or_default();
    responses.sort();
    calls.sort();
    if responses != calls {
        return Err(format!(
            "contents[{i}] answers calls {responses:?}, but the turn before it called {calls:?} (the number of function response parts must equal the number of function call parts)"
        ));
    }
    Ok(())
}

/// Tools; returns the declared function names.
fn check_tools(tools: &Value) -> Result<Vec<String>, String> {
    let mut declared = Vec::new();
    for (i, t) in array(tools, "tools")?.iter().enumerate() {
        let t = object(t, "a tool")?;
        only(
            t,
            &[
                "functionDeclarations",
                "googleSearch",
                "googleSearchRetrieval",
                "codeExecution",
                "urlContext",
            ],
            &format!("tools[{i}]"),
        )?;
        if t.is_empty() {
            return Err(format!("tools[{i}] is empty"));
        }
        for (j, f) in t
            .get("functionDeclarations")
            .map(|f| array(f, "functionDeclarations"))
            .transpose()?
            .into_iter()
            .flatten()
            .enumerate()
        {
            let what = format!("tools[{i}].functionDeclarations[{j}]");
            let f = object(f, &what)?;
            only(
                f,
                &[
                    "name",
                    "description",
                    "parameters",
                    "parametersJsonSchema",
                    "response",
                    "behavior",
                ],
                &what,
            )?;
            let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
            let valid = !name.is_empty()
                && name.len() <= 64
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
            if !valid {
                return Err(format!("{what}.name {name:?} is not a valid function name"));
            }
            if let Some(p) = f.get("parameters") {
                check_schema(p, &format!("{what}.parameters"))?;
                let props = p.get("properties").and_then(Value::as_object);
                if props.is_none_or(|p| p.is_empty()) {
                    return Err(format!(
                        "{what}.parameters.properties: should be non-empty for OBJECT type"
                    ));
                }
            }
            declared.push(name.to_string());
        }
    }
    Ok(declared)
}

/// Schema: Gemini's OpenAPI subset, nothing else.
fn check_schema(s: &Value, what: &str) -> Result<(), String> {
    let o = object(s, what)?;
    only(
        o,
        &[
            "type",
            "format",
            "title",
            "description",
            "nullable",
            "enum",
            "maxItems",
            "minItems",
            "properties",
            "required",
            "minProperties",
            "maxProperties",
            "minLength",
            "maxLength",
            "pattern",
            "example",
            "anyOf",
            "propertyOrdering",
            "default",
            "items",
            "minimum",
            "maximum",
        ],
        what,
    )?;
    if let Some(t) = o.get("type") {
        let t = t.as_str().unwrap_or_default().to_ascii_lowercase();
        if !["string", "number", "integer", "boolean", "array", "object"].contains(&t.as_str()) {
            return Err(format!("{what}.type {t:?} is not a Gemini type"));
        }
        if let Some(f) = o.get("format").and_then(Value::as_str) {
            let ok = match t.as_str() {
                "string" => ["enum", "date-time"].contains(&f),
                "number" => ["float", "double"].contains(&f),
                "integer" => ["int32", "int64"].contains(&f),
                _ => false,
            };
            if !ok {
                return Err(format!("{what}.format {f:?} is not supported for type {t}"));
            }
        }
    }
    for (name, p) in o
        .get("properties")
        .map(|p| object(p, "properties"))
        .transpose()?
        .into_iter()
        .flatten()
    {
        check_schema(p, &format!("{what}.properties.{name}"))?;
    }
    if let Some(items) = o.get("items") {
        check_schema(items, &format!("{what}.items"))?;
    }
    for (i, a) in o
        .get("anyOf")
        .map(|a| array(a, "anyOf"))
        .transpose()?
        .into_iter()
        .flatten()
        .enumerate()
    {
        check_schema(a, &format!("{what}.anyOf[{i}]"))?;
    }
    Ok(())
}

fn check_tool_config(tc: &Value, declared: &[String]) -> Result<(), String> {
    let o = object(tc, "toolConfig")?;
    only(
        o,
        &["functionCallingConfig", "retrievalConfig"],
        "toolConfig",
    )?;
    let Some(f) = o.get("functionCallingConfig") else {
        return Ok(());
    };
    let f = object(f, "functionCallingConfig")?;
    only(
        f,
        &["mode", "allowedFunctionNames"],
        "functionCallingConfig",
    )?;
    let mode = f.get("mode").and_then(Value::as_str).unwrap_or("AUTO");
    if !["AUTO", "ANY", "NONE", "VALIDATED"].contains(&mode) {
        return Err(format!("functionCallingConfig.mode {mode:?}"));
    }
    if declared.is_empty() {
        return Err("functionCallingConfig without function declarations".into());
    }
    if let Some(names) = f.get("allowedFunctionNames") {
        if mode != "ANY" && mode != "VALIDATED" {
            return Err("allowedFunctionNames is only for mode ANY".into());
        }
        for n in array(names, "allowedFunctionNames")? {
            if !n.as_str().is_some_and(|n| declared.iter().any(|d| d == n)) {
                return Err(format!(
                    "allowedFunctionNames names {n}, which is not declared"
                ));
            }
        }
    }
    Ok(())
}

fn check_generation_config(g: &Value) -> Result<(), String> {
    let o = object(g, "generationConfig")?;
    only(
        o,
        &[
            "stopSequences",
            "responseMimeType",
            "responseSchema",
            "responseJsonSchema",
            "responseModalities",
            "candidateCount",
            "maxOutputTokens",
            "temperature",
            "topP",
            "topK",
            "seed",
            "presencePenalty",
            "frequencyPenalty",
            "responseLogprobs",
            "logprobs",
            "speechConfig",
            "thinkingConfig",
            "mediaResolution",
        ],
        "generationConfig",
    )?;
    for k in [
        "temperature",
        "topP",
        "topK",
        "presencePenalty",
        "frequencyPenalty",
    ] {
        if let Some(v) = o.get(k) {
            number(v, k)?;
        }
    }
    for k in ["candidateCount", "maxOutputTokens", "seed"] {
        if let Some(v) = o.get(k) {
            integer(v, k)?;
        }
    }
    if let Some(s) = o.get("stopSequences") {
        let s = array(s, "stopSequences")?;
        if s.len() > 5 || !s.iter().all(Value::is_string) {
            return Err("stopSequences takes up to 5 strings".into());
        }
    }
    if let Some(m) = o.get("responseMimeType") {
        let m = m.as_str().unwrap_or_default();
        if !["text/plain", "application/json", "text/x.enum"].contains(&m) {
            return Err(format!("responseMimeType {m:?}"));
        }
    }
    if let Some(s) = o.get("responseSchema") {
        if o.get("responseMimeType").and_then(Value::as_str) != Some("application/json") {
            return Err("responseSchema without responseMimeType application/json".into());
        }
        check_schema(s, "responseSchema")?;
    }
    if let Some(t) = o.get("thinkingConfig") {
        let t = object(t, "thinkingConfig")?;
        only(
            t,
            &["includeThoughts", "thinkingBudget", "thinkingLevel"],
            "thinkingConfig",
        )?;
        if t.contains_key("thinkingBudget") && t.contains_key("thinkingLevel") {
            return Err("thinkingConfig has both thinkingBudget and thinkingLevel".into());
        }
    }
    Ok(())
}

/// batchEmbedContents; returns how many embeddings it asks for.
fn check_batch_embed(body: &Value, model: &str) -> Result<usize, String> {
    let o = object(body, "the body")?;
    only(o, &["requests"], "BatchEmbedContentsRequest")?;
    let requests = array(o.get("requests").ok_or("requests is required")?, "requests")?;
    if requests.is_empty() {
        return Err("requests is empty".into());
    }
    for (i, r) in requests.iter().enumerate() {
        let what = format!("requests[{i}]");
        let r = object(r, &what)?;
        only(
            r,
            &[
                "model",
                "content",
                "taskType",
                "title",
                "outputDimensionality",
            ],
            &what,
        )?;
        if r.get("model").and_then(Value::as_str) != Some(format!("models/{model}").as_str()) {
            return Err(format!(
                "{what}.model must be models/{model}, as in the path"
            ));
        }
        check_content(
            r.get("content")
                .ok_or(format!("{what}.content is required"))?,
            &what,
        )?;
        if let Some(d) = r.get("outputDimensionality") {
            integer(d, "outputDimensionality")?;
        }
    }
    Ok(requests.len())
}

/// Vertex AI's text embeddings `predict`; returns how many embeddings it asks for.
fn check_predict(body: &Value) -> Result<usize, String> {
    let o = object(body, "the body")?;
    only(o, &["instances", "parameters"], "PredictRequest")?;
    let instances = array(
        o.get("instances").ok_or("instances is required")?,
        "instances",
    )?;
    if instances.is_empty() {
        return Err("instances is empty".into());
    }
    for (i, inst) in instances.iter().enumerate() {
        let what = format!("instances[{i}]");
        let inst = object(inst, &what)?;
        only(inst, &["content", "task_type", "title"], &what)?;
        string(inst.get("content"), &format!("{what}.content"))?;
    }
    if let Some(p) = o.get("parameters") {
        let p = object(p, "parameters")?;
        only(p, &["autoTruncate", "outputDimensionality"], "parameters")?;
    }
    Ok(instances.len())
}

// ---------------------------------------------------------------------------------------
// Answers

fn failure(text: &str) -> Option<FakeReply> {
    let file = |case: &str| fixture("gemini", case, "provider_response.json");
    if text.contains(FAIL_429_BODY) {
        let body = json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "4.2s"}]}});
        return Some(FakeReply::json(429, body.to_string()));
    }
    if text.contains(FAIL_429) {
        let mut body: Value = serde_json::from_slice(&file("error_rate_limit")).ok()?;
        body["error"]["details"][2]["retryDelay"] = json!("7s");
        return Some(FakeReply::json(429, body.to_string()).with_header("retry-after", "7"));
    }
    if text.contains(FAIL_500) {
        let body = json!({"error": {"code": 500, "message": "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
            "status": "INTERNAL"}});
        return Some(FakeReply::json(500, body.to_string()));
    }
    if text.contains(FAIL_CONTEXT) {
        return Some(FakeReply::json(400, file("error_context_window")));
    }
    None
}

/// Whether the last turn answers function calls, and whether the request offers tools.
fn conversation(body: &Value) -> (bool, bool, bool) {
    let last = body["contents"]
        .as_array()
        .and_then(|c| c.last())
        .cloned()
        .unwrap_or_default();
    let parts = last["parts"].as_array().cloned().unwrap_or_default();
    let answers_calls = parts.iter().any(|p| p.get("functionResponse").is_some());
    let media = parts
        .iter()
        .any(|p| p.get("inlineData").is_some() || p.get("fileData").is_some());
    let tools = body["tools"].as_array().is_some_and(|t| !t.is_empty())
        && body["toolConfig"]["functionCallingConfig"]["mode"] != "NONE";
    (answers_calls, tools, media)
}

fn generate_reply(body: &Value, api: Api) -> FakeReply {
    let (answers_calls, tools, media) = conversation(body);
    let (provider, case) = if answers_calls {
        ("gemini", "tool_result")
    } else if tools {
        ("gemini", "chat_tools")
    } else if media {
        ("gemini", "image")
    } else if api == Api::Vertex {
        ("vertex_ai", "chat")
    } else {
        ("gemini", "chat")
    };
    FakeReply::json(200, fixture(provider, case, "provider_response.json"))
}

fn stream_reply(body: &Value, text: &str) -> FakeReply {
    let (_, tools, _) = conversation(body);
    let (case, cut) = if text.contains(STREAM_RESET) {
        ("stream_cut", true)
    } else if text.contains(STREAM_CUT) {
        ("stream_cut", false)
    } else if text.contains(STREAM_ERROR) {
        ("stream_inband_error", false)
    } else if tools {
        ("chat_stream_tools", false)
    } else {
        ("chat_stream", false)
    };
    let sse = String::from_utf8_lossy(&fixture("gemini", case, "provider_stream.sse")).into_owned();
    // One event per write, as Google flushes them.
    let pieces = sse
        .split_inclusive("\r\n\r\n")
        .map(|e| e.as_bytes().to_vec())
        .collect();
    match FakeReply::stream("text/event-stream", pieces) {
        FakeReply::Stream {
            content_type,
            pieces,
            pause,
            ..
        } => FakeReply::Stream {
            content_type,
            pieces,
            pause,
            cut,
        },
        other => other,
    }
}

/// `n` embeddings from the fixture's first one, `dims` long when asked.
fn vectors(n: usize, dims: Option<u64>) -> Vec<Vec<f64>> {
    let base: Value =
        serde_json::from_slice(&fixture("gemini", "embeddings", "provider_response.json"))
            .unwrap_or_default();
    let first: Vec<f64> = base["embeddings"][0]["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .collect();
    let len = dims.map_or(first.len(), |d| d as usize);
    (0..n)
        .map(|i| {
            (0..len)
                .map(|j| {
                    first.get(j % first.len().max(1)).copied().unwrap_or(0.0) + i as f64 / 100.0
                })
                .collect()
        })
        .collect()
}
