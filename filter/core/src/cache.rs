//! The response cache at the gateway: which requests share an answer (the key), what a
//! request's own controls ask for, and how a cached answer goes back to a client that asked
//! for a stream (and how a streamed answer is kept).
//!
//! The key is the SHA-256 of the endpoint, the model group and every body parameter that
//! changes the answer, canonicalised: object keys sorted at every depth and no whitespace,
//! so two clients that write the same request differently share it. `model` is replaced by
//! the group (an alias and its group share answers). Left out, because they change how an
//! answer is delivered, routed or accounted and not what it says: [`NOT_IN_KEY`].

use serde::Deserialize;
use serde_json::{json, Map, Value};
use switchyard_config::{
    CacheConfig, CacheKind, CacheMiss, CachePut, Endpoint, SemanticEntry, CACHE_QUEUE,
};

use crate::host::Host;

use crate::digest::sha256_hex;

/// Body fields that do not change the answer.
pub const NOT_IN_KEY: &[&str] = &[
    "model",
    "stream",
    "stream_options",
    "user",
    "metadata",
    "tags",
    "caching",
    "cache",
    "timeout",
    "stream_timeout",
    "request_timeout",
    "num_retries",
    "max_retries",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "drop_params",
    "mock_response",
];

/// The cache key of a request body (a JSON object) for `group`, under `namespace` if set
/// (`<namespace>:<hex>`, as LiteLLM prefixes it). None when the body is not a JSON object.
pub fn key(
    namespace: Option<&str>,
    endpoint: Endpoint,
    group: &str,
    body: &[u8],
) -> Option<String> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let mut canonical = String::with_capacity(body.len());
    canonical.push_str(endpoint.name());
    canonical.push('\n');
    canonical.push_str(group);
    canonical.push('\n');
    let mut names: Vec<&String> = fields
        .keys()
        .filter(|k| !NOT_IN_KEY.contains(&k.as_str()))
        .collect();
    names.sort();
    canonical.push('{');
    for (i, name) in names.into_iter().enumerate() {
        if i > 0 {
            canonical.push(',');
        }
        write_string(&mut canonical, name);
        canonical.push(':');
        if let Some(v) = fields.get(name) {
            write_canonical(&mut canonical, v);
        }
    }
    canonical.push('}');
    let hash = sha256_hex(canonical.as_bytes());
    Some(match namespace.filter(|n| !n.is_empty()) {
        Some(ns) => format!("{ns}:{hash}"),
        None => hash,
    })
}

/// `v` as JSON with every object's keys sorted.
fn write_canonical(out: &mut String, v: &Value) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_canonical(out, v);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push_str(&Value::from(s).to_string());
}

/// Bytes of answers the gateway's root context sends to the sidecar in one call, at most.
pub const MAX_PUT_BYTES: usize = 8 << 20;

/// Queues a fresh answer (OpenAI JSON, as the client got it) for the sidecar to keep, when
/// the request did not say `no-store`. The gateway's root context sends it on.
pub fn keep(host: &dyn Host, miss: &CacheMiss, answer: &[u8]) {
    let (Some(ttl_s), Ok(body)) = (miss.store_ttl_s, std::str::from_utf8(answer)) else {
        return;
    };
    if ttl_s == 0 {
        return;
    }
    let put = CachePut {
        key: miss.key.clone(),
        ttl_s,
        body: body.to_string(),
        semantic: miss.semantic.clone(),
    };
    if let Ok(bytes) = serde_json::to_vec(&put) {
        // No queue (no gateway started it): nothing is kept, the requests still go.
        let _ = host.enqueue(CACHE_QUEUE, &bytes);
    }
}

/// Takes queued answers, up to about [`MAX_PUT_BYTES`].
pub fn drain(host: &dyn Host) -> Vec<CachePut> {
    let mut out = Vec::new();
    let mut bytes = 0;
    while bytes < MAX_PUT_BYTES {
        let Some(item) = host.dequeue(CACHE_QUEUE) else {
            break;
        };
        bytes += item.len();
        if let Ok(put) = serde_json::from_slice(&item) {
            out.push(put);
        }
    }
    out
}

/// A request's own cache controls: LiteLLM's `caching` and `cache: {...}` body parameters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Controls {
    /// `false`: neither read nor keep; `true`: cache even when cache_params.mode is
    /// default_off.
    #[serde(default)]
    pub caching: Option<bool>,
    #[serde(default)]
    pub cache: Option<RequestCache>,
}

/// `cache: {...}` in a request, with LiteLLM's meanings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RequestCache {
    /// Do not answer from the cache (the fresh answer is still kept).
    #[serde(default, rename = "no-cache")]
    pub no_cache: bool,
    /// Do not keep this answer.
    #[serde(default, rename = "no-store")]
    pub no_store: bool,
    /// Seconds to keep this answer.
    #[serde(default)]
    pub ttl: Option<f64>,
    /// Only a cached answer at most this many seconds old will do.
    #[serde(default, rename = "s-maxage")]
    pub s_maxage: Option<f64>,
    /// Keys under this namespace instead of cache_params.namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// With cache_params.mode default_off: cache this request.
    #[serde(default, rename = "use-cache")]
    pub use_cache: bool,
}

/// What the cache does for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Look for an answer (else only keep the fresh one).
    pub lookup: bool,
    /// Only answers stored at most this long ago (s-maxage).
    pub max_age_s: Option<u64>,
    /// The key, how long to keep the fresh answer, and what a semantic cache indexes.
    pub miss: CacheMiss,
    /// A semantic cache's threshold (None: exact).
    pub similarity_threshold: Option<f64>,
}

/// The cache's plan for a request to `group` (None: the cache has nothing to do with it).
pub fn plan(
    cfg: &CacheConfig,
    endpoint: Endpoint,
    group: &str,
    body: &[u8],
    controls: &Controls,
) -> Option<Plan> {
    let supported = match endpoint {
        Endpoint::ChatCompletions => cfg.chat,
        Endpoint::Completions => cfg.completions,
        Endpoint::Embeddings => cfg.embeddings,
        Endpoint::CountTokens | Endpoint::StoredResponse => false,
    };
    let asked =
        controls.caching == Some(true) || controls.cache.as_ref().is_some_and(|c| c.use_cache);
    if !supported || controls.caching == Some(false) || (cfg.default_off && !asked) {
        return None;
    }
    let request = controls.cache.clone().unwrap_or_default();
    let seconds = |s: f64| s.max(0.0).min(u64::MAX as f64).round() as u64;
    let namespace = request
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| cfg.namespace.clone());
    let key = key(namespace.as_deref(), endpoint, group, body)?;
    let store_ttl_s = (!request.no_store).then(|| request.ttl.map_or(cfg.ttl_s, seconds));
    if request.no_cache && store_ttl_s.is_none() {
        return None;
    }
    let (semantic, similarity_threshold) = match &cfg.kind {
        CacheKind::Semantic {
            embedding_model,
            similarity_threshold,
        } if endpoint != Endpoint::Embeddings => match prompt_text(body) {
            Some(prompt) => (
                Some(SemanticEntry {
                    group: group.to_string(),
                    namespace,
                    prompt,
                    embedding_model: embedding_model.clone(),
                }),
                Some(*similarity_threshold),
            ),
            None => (None, None),
        },
        _ => (None, None),
    };
    Some(Plan {
        lookup: !request.no_cache,
        max_age_s: request.s_maxage.map(seconds),
        miss: CacheMiss {
            key,
            store_ttl_s,
            semantic,
        },
        similarity_threshold,
    })
}

/// What a semantic cache compares: the text of a chat's messages (role and content, one per
/// line) or a completion's prompt.
fn prompt_text(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Prompted {
        #[serde(default)]
        messages: Option<Vec<Value>>,
        #[serde(default)]
        prompt: Option<Value>,
    }
    let p: Prompted = serde_json::from_slice(body).ok()?;
    let mut out = String::new();
    for m in p.messages.iter().flatten() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        out.push_str(role);
        out.push_str(": ");
        text_of(m.get("content").unwrap_or(&Value::Null), &mut out);
        out.push('\n');
    }
    if let Some(prompt) = &p.prompt {
        text_of(prompt, &mut out);
    }
    (!out.trim().is_empty()).then_some(out)
}

/// The text in a content value: a string, or the text parts of a list.
fn text_of(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Array(parts) => {
            for p in parts {
                match p {
                    Value::String(s) => out.push_str(s),
                    other => {
                        if let Some(t) = other.get("text").and_then(Value::as_str) {
                            out.push_str(t);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// A cached (non-streamed) answer as the SSE stream a streaming client expects: per choice,
/// one chunk with the whole message and one with its finish reason; the usage chunk when
/// the client asked for it (`stream_options.include_usage`); then `[DONE]`. None when the
/// body is not an answer of this endpoint.
pub fn as_stream(endpoint: Endpoint, body: &[u8], include_usage: bool) -> Option<Vec<u8>> {
    let answer: Map<String, Value> = serde_json::from_slice(body).ok()?;
    let choices = answer.get("choices")?.as_array()?;
    let (object, chat) = match endpoint {
        Endpoint::ChatCompletions => ("chat.completion.chunk", true),
        Endpoint::Completions => ("text_completion", false),
        Endpoint::Embeddings | Endpoint::CountTokens | Endpoint::StoredResponse => return None,
    };
    let mut head = Map::new();
    for field in ["id", "created", "model", "system_fingerprint"] {
        if let Some(v) = answer.get(field) {
            head.insert(field.to_string(), v.clone());
        }
    }
    head.insert("object".into(), object.into());
    let chunk = |choices: Value| {
        let mut c = head.clone();
        c.insert("choices".into(), choices);
        c
    };
    let mut out = Vec::with_capacity(body.len() + 256);
    let mut event = |v: &Map<String, Value>| {
        out.extend_from_slice(b"data: ");
        // Serialising a map of JSON values cannot fail.
        out.extend_from_slice(&serde_json::to_vec(v).unwrap_or_default());
        out.extend_from_slice(b"\n\n");
    };
    for (i, choice) in choices.iter().enumerate() {
        let index = choice.get("index").cloned().unwrap_or(json!(i));
        let finish = choice.get("finish_reason").cloned().unwrap_or(Value::Null);
        if chat {
            let mut delta = choice
                .get("message")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            // Stream deltas number their tool calls.
            if let Some(Value::Array(calls)) = delta.get_mut("tool_calls") {
                for (n, call) in calls.iter_mut().enumerate() {
                    if let Value::Object(c) = call {
                        c.insert("index".into(), json!(n));
                    }
                }
            }
            event(&chunk(
                json!([{"index": index, "delta": delta, "finish_reason": null}]),
            ));
            event(&chunk(
                json!([{"index": index, "delta": {}, "finish_reason": finish}]),
            ));
        } else {
            let text = choice.get("text").cloned().unwrap_or_else(|| json!(""));
            event(&chunk(
                json!([{"index": index, "text": text, "logprobs": null, "finish_reason": finish}]),
            ));
        }
    }
    if include_usage {
        if let Some(usage) = answer.get("usage") {
            let mut c = chunk(json!([]));
            c.insert("usage".into(), usage.clone());
            event(&c);
        }
    }
    out.extend_from_slice(b"data: [DONE]\n\n");
    Some(out)
}

/// Puts a streamed answer back together (from the OpenAI chunks the client got) so it can
/// be kept as one answer: text and tool calls joined per choice, the last finish reason and
/// usage. Bounded: past `max_bytes` of events it gives up (the answer is not kept).
#[derive(Debug, Default)]
pub struct Assembler {
    head: Map<String, Value>,
    choices: Vec<Choice>,
    usage: Option<Value>,
    bytes: usize,
    max_bytes: usize,
    /// An event that did not parse, or too much: nothing to keep.
    spoiled: bool,
    events: crate::framing::sse::Parser,
}

#[derive(Debug, Default)]
struct Choice {
    role: Option<Value>,
    content: Option<String>,
    text: Option<String>,
    tool_calls: Vec<Map<String, Value>>,
    finish_reason: Option<Value>,
}

impl Assembler {
    pub fn new(max_bytes: usize) -> Assembler {
        Assembler {
            max_bytes,
            ..Assembler::default()
        }
    }

    /// The bytes sent to the client, in order.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.spoiled {
            return;
        }
        self.bytes += bytes.len();
        if self.bytes > self.max_bytes {
            self.spoiled = true;
            return;
        }
        for frame in self.events.push(bytes) {
            self.data(frame.data.as_bytes());
        }
    }

    fn data(&mut self, data: &[u8]) {
        if data == b"[DONE]" {
            return;
        }
        let Ok(Value::Object(chunk)) = serde_json::from_slice::<Value>(data) else {
            self.spoiled = true;
            return;
        };
        if chunk.contains_key("error") {
            self.spoiled = true;
            return;
        }
        for field in ["id", "created", "model", "system_fingerprint"] {
            if let Some(v) = chunk.get(field).filter(|v| !v.is_null()) {
                self.head.insert(field.to_string(), v.clone());
            }
        }
        if let Some(u) = chunk.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(u.clone());
        }
        for c in chunk
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let i = c.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
            if i > 1024 {
                self.spoiled = true;
                return;
            }
            if self.choices.len() <= i {
                self.choices.resize_with(i + 1, Choice::default);
            }
            let choice = &mut self.choices[i];
            if let Some(f) = c.get("finish_reason").filter(|f| !f.is_null()) {
                choice.finish_reason = Some(f.clone());
            }
            if let Some(t) = c.get("text").and_then(Value::as_str) {
                choice.text.get_or_insert_with(String::new).push_str(t);
            }
            let Some(delta) = c.get("delta") else {
                continue;
            };
            if let Some(r) = delta.get("role").filter(|r| !r.is_null()) {
                choice.role = Some(r.clone());
            }
            if let Some(t) = delta.get("content").and_then(Value::as_str) {
                choice.content.get_or_insert_with(String::new).push_str(t);
            }
            for call in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                merge_tool_call(&mut choice.tool_calls, call);
            }
        }
    }

    /// The whole answer as a non-streamed one of `endpoint`; None when nothing complete
    /// arrived.
    pub fn finish(self, endpoint: Endpoint) -> Option<Vec<u8>> {
        if self.spoiled
            || self.choices.is_empty()
            || self.choices.iter().any(|c| c.finish_reason.is_none())
        {
            return None;
        }
        let mut answer = self.head;
        let chat = endpoint == Endpoint::ChatCompletions;
        answer.insert(
            "object".into(),
            if chat {
                "chat.completion"
            } else {
                "text_completion"
            }
            .into(),
        );
        let choices: Vec<Value> = self
            .choices
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if chat {
                    let mut message = Map::new();
                    message.insert("role".into(), c.role.unwrap_or_else(|| "assistant".into()));
                    message.insert("content".into(), c.content.map_or(Value::Null, Value::from));
                    if !c.tool_calls.is_empty() {
                        let calls = c.tool_calls.into_iter().map(Value::Object).collect();
                        message.insert("tool_calls".into(), Value::Array(calls));
                    }
                    json!({"index": i, "message": message, "finish_reason": c.finish_reason})
                } else {
                    json!({"index": i, "text": c.text.unwrap_or_default(), "logprobs": null, "finish_reason": c.finish_reason})
                }
            })
            .collect();
        answer.insert("choices".into(), Value::Array(choices));
        if let Some(u) = self.usage {
            answer.insert("usage".into(), u);
        }
        serde_json::to_vec(&answer).ok()
    }
}

/// A streamed tool call's piece, joined to the call with its index (arguments appended).
fn merge_tool_call(calls: &mut Vec<Map<String, Value>>, piece: &Value) {
    let Some(piece) = piece.as_object() else {
        return;
    };
    let i = piece.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
    if i > 1024 {
        return;
    }
    if calls.len() <= i {
        calls.resize_with(i + 1, Map::new);
    }
    let call = &mut calls[i];
    for (k, v) in piece {
        match (k.as_str(), v) {
            ("index", _) | (_, Value::Null) => {}
            ("function", Value::Object(f)) => {
                let function = call
                    .entry("function")
                    .or_insert_with(|| json!({"name": "", "arguments": ""}));
                for (fk, fv) in f {
                    if let (Some(Value::String(old)), Some(add)) =
                        (function.get_mut(fk), fv.as_str())
                    {
                        old.push_str(add);
                    } else if let Value::Object(fm) = function {
                        fm.insert(fk.clone(), fv.clone());
                    }
                }
            }
            _ => {
                call.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat_key(body: &str) -> String {
        key(None, Endpoint::ChatCompletions, "gpt-4o", body.as_bytes()).unwrap_or_default()
    }

    #[test]
    fn order_and_whitespace_do_not_matter() {
        let a = chat_key(
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.2}"#,
        );
        let b = chat_key(
            r#"{ "temperature": 0.2,
                 "messages": [ { "content": "hi", "role": "user" } ],
                 "model": "gpt4-alias" }"#,
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn what_changes_the_answer_changes_the_key() {
        let base = r#"{"messages":[{"role":"user","content":"hi"}]}"#;
        let k = chat_key(base);
        for other in [
            r#"{"messages":[{"role":"user","content":"hello"}]}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"temperature":1}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function"}]}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"seed":7}"#,
        ] {
            assert_ne!(chat_key(other), k, "{other}");
        }
        assert_ne!(
            key(
                None,
                Endpoint::ChatCompletions,
                "other-group",
                base.as_bytes()
            ),
            Some(k.clone()),
            "the group"
        );
        assert_ne!(
            key(None, Endpoint::Completions, "gpt-4o", base.as_bytes()),
            Some(k.clone()),
            "the endpoint"
        );
    }

    #[test]
    fn delivery_routing_and_accounting_fields_do_not() {
        let k = chat_key(r#"{"messages":[{"role":"user","content":"hi"}]}"#);
        let same = chat_key(
            r#"{"messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},
                "user":"eu-1","metadata":{"a":1},"num_retries":3,"timeout":5,"fallbacks":["x"],
                "cache":{"ttl":60},"caching":true}"#,
        );
        assert_eq!(same, k);
    }

    #[test]
    fn namespaces_prefix_the_key() {
        let body = br#"{"messages":[]}"#;
        let plain = key(None, Endpoint::ChatCompletions, "g", body).unwrap();
        let spaced = key(Some("team-a"), Endpoint::ChatCompletions, "g", body).unwrap();
        assert_eq!(spaced, format!("team-a:{plain}"));
        assert_eq!(key(None, Endpoint::ChatCompletions, "g", b"[1]"), None);
    }

    fn cfg() -> CacheConfig {
        CacheConfig {
            kind: CacheKind::Exact,
            ttl_s: 600,
            namespace: None,
            chat: true,
            completions: true,
            embeddings: false,
            default_off: false,
        }
    }

    fn controls(json: &str) -> Controls {
        serde_json::from_str(json).unwrap()
    }

    const BODY: &[u8] = br#"{"messages":[{"role":"user","content":"hi"}]}"#;

    #[test]
    fn controls_mean_what_they_mean_in_litellm() {
        let c = cfg();
        let p = |json: &str| plan(&c, Endpoint::ChatCompletions, "g", BODY, &controls(json));
        let plain = p("{}").unwrap();
        assert!(plain.lookup);
        assert_eq!((plain.miss.store_ttl_s, plain.max_age_s), (Some(600), None));
        assert_eq!(p(r#"{"caching":false}"#), None);
        let no_cache = p(r#"{"cache":{"no-cache":true}}"#).unwrap();
        assert!(!no_cache.lookup && no_cache.miss.store_ttl_s == Some(600));
        let no_store = p(r#"{"cache":{"no-store":true}}"#).unwrap();
        assert!(no_store.lookup && no_store.miss.store_ttl_s.is_none());
        assert_eq!(p(r#"{"cache":{"no-store":true,"no-cache":true}}"#), None);
        assert_eq!(
            p(r#"{"cache":{"ttl":5}}"#).unwrap().miss.store_ttl_s,
            Some(5)
        );
        assert_eq!(
            p(r#"{"cache":{"s-maxage":30}}"#).unwrap().max_age_s,
            Some(30)
        );
        let spaced = p(r#"{"cache":{"namespace":"t"}}"#).unwrap();
        assert_eq!(spaced.miss.key, format!("t:{}", plain.miss.key));
        // Not a supported call type.
        assert_eq!(
            plan(
                &c,
                Endpoint::Embeddings,
                "g",
                br#"{"input":"x"}"#,
                &Controls::default()
            ),
            None
        );
        // default_off: only when asked.
        let off = CacheConfig {
            default_off: true,
            ..cfg()
        };
        assert_eq!(
            plan(
                &off,
                Endpoint::ChatCompletions,
                "g",
                BODY,
                &Controls::default()
            ),
            None
        );
        assert!(plan(
            &off,
            Endpoint::ChatCompletions,
            "g",
            BODY,
            &controls(r#"{"cache":{"use-cache":true}}"#)
        )
        .is_some());
    }

    #[test]
    fn a_semantic_cache_indexes_the_prompt() {
        let c = CacheConfig {
            kind: CacheKind::Semantic {
                embedding_model: "emb".into(),
                similarity_threshold: 0.9,
            },
            ..cfg()
        };
        let body = br#"{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi there"}]}]}"#;
        let p = plan(
            &c,
            Endpoint::ChatCompletions,
            "g",
            body,
            &Controls::default(),
        )
        .unwrap();
        let s = p.miss.semantic.unwrap();
        assert_eq!(s.prompt, "system: be brief\nuser: hi there\n");
        assert_eq!((s.group.as_str(), s.embedding_model.as_str()), ("g", "emb"));
        assert_eq!(p.similarity_threshold, Some(0.9));
    }

    const ANSWER: &str = r#"{"id":"c1","object":"chat.completion","created":7,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!","tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;

    #[test]
    fn a_cached_answer_streams_and_a_stream_is_kept_whole() {
        let sse = as_stream(Endpoint::ChatCompletions, ANSWER.as_bytes(), true).unwrap();
        let text = String::from_utf8(sse.clone()).unwrap();
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        assert_eq!(
            text.matches("data: ").count(),
            4,
            "message, finish, usage, done: {text}"
        );
        assert!(text.contains(r#""object":"chat.completion.chunk""#));
        assert!(text.contains(r#""index":0,"type":"function""#) || text.contains(r#""index":0"#));
        // Back together, in pieces of any size, it is the same answer.
        let mut a = Assembler::new(1 << 20);
        for piece in sse.chunks(7) {
            a.push(piece);
        }
        let whole: Value =
            serde_json::from_slice(&a.finish(Endpoint::ChatCompletions).unwrap()).unwrap();
        let original: Value = serde_json::from_str(ANSWER).unwrap();
        assert_eq!(whole["choices"][0]["message"]["content"], "Hello!");
        assert_eq!(
            whole["choices"][0]["message"]["tool_calls"][0]["function"],
            original["choices"][0]["message"]["tool_calls"][0]["function"]
        );
        assert_eq!(whole["usage"], original["usage"]);
        assert_eq!(whole["object"], "chat.completion");
        // Without the usage chunk when not asked for.
        let quiet = String::from_utf8(
            as_stream(Endpoint::ChatCompletions, ANSWER.as_bytes(), false).unwrap(),
        )
        .unwrap();
        assert!(!quiet.contains("usage"));
    }

    #[test]
    fn the_assembler_joins_deltas_and_refuses_what_it_cannot_keep() {
        let mut a = Assembler::new(1 << 20);
        a.push(b"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"He\"}}]}\n\n");
        a.push(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"t\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\"}}]}}]}\n\n");
        a.push(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"llo\",\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\":1}\"}}]},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
        let whole: Value =
            serde_json::from_slice(&a.finish(Endpoint::ChatCompletions).unwrap()).unwrap();
        assert_eq!(whole["choices"][0]["message"]["content"], "Hello");
        assert_eq!(
            whole["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        // Unfinished, an error event, or too large: nothing to keep.
        let mut cut = Assembler::new(1 << 20);
        cut.push(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n");
        assert_eq!(cut.finish(Endpoint::ChatCompletions), None);
        let mut err = Assembler::new(1 << 20);
        err.push(b"data: {\"error\":{\"message\":\"boom\"}}\n\n");
        assert_eq!(err.finish(Endpoint::ChatCompletions), None);
        let mut big = Assembler::new(10);
        big.push(ANSWER.as_bytes());
        assert_eq!(big.finish(Endpoint::ChatCompletions), None);
    }
}
