//! LiteLLM's logging callbacks: where each request's event goes besides the spend logs and
//! the metrics. `generic_api` (a JSON list of LiteLLM's StandardLoggingPayload per batch, to
//! any URL), `langfuse` (its public ingestion API), `otel` (OTLP/HTTP traces with the GenAI
//! semantic conventions) and `file` (JSON lines).
//!
//! Delivery never slows or fails a request: the gateway hands events to the sidecar in
//! batches, each callback has its own bounded queue (events beyond it are dropped and
//! counted), and its own task sends them, retrying a failed batch with growing waits before
//! it gives the batch up (counted too).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use prometheus::CounterVec;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use switchyard_config::{ErrorClass, ProxyConfig, SpendEvent};
use tokio::sync::mpsc;

use crate::http::Https;
use crate::metrics::exception_class;

/// Events a callback holds at most while its endpoint is slow or down.
pub const QUEUE: usize = 10_000;
/// Events sent in one batch at most.
const BATCH: usize = 200;
/// Attempts at a batch before it is given up.
const ATTEMPTS: u32 = 5;
const FIRST_WAIT: Duration = Duration::from_millis(500);
const LONGEST_WAIT: Duration = Duration::from_secs(30);
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// What a callback may see of a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Privacy {
    /// `turn_off_message_logging`: prompts and answers are not logged.
    pub no_messages: bool,
    /// `redact_user_api_key_info`: nothing about the key, its user or team.
    pub no_key_info: bool,
}

/// Where one callback sends its events.
#[derive(Clone)]
enum Target {
    GenericApi {
        url: String,
        headers: Vec<(String, String)>,
    },
    Langfuse {
        url: String,
        authorization: String,
    },
    Otel {
        url: String,
        headers: Vec<(String, String)>,
    },
    File {
        path: std::path::PathBuf,
    },
}

/// Names the target only: its headers and Langfuse's authorization hold secrets.
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::GenericApi { url, .. } => write!(f, "generic_api to {url}"),
            Target::Langfuse { url, .. } => write!(f, "langfuse to {url}"),
            Target::Otel { url, .. } => write!(f, "otel to {url}"),
            Target::File { path } => write!(f, "file {}", path.display()),
        }
    }
}

struct Sink {
    name: &'static str,
    queue: mpsc::Sender<Arc<SpendEvent>>,
}

/// The configured callbacks; cheap to clone.
#[derive(Clone, Default)]
pub struct Callbacks {
    sinks: Arc<Vec<Sink>>,
    counts: Option<CounterVec>,
}

/// `k=v,k2=v2` (OTEL_EXPORTER_OTLP_HEADERS, GENERIC_LOGGER_HEADERS).
fn header_list(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_string(), v.trim().to_string()))
        })
        .collect()
}

/// The callback's target from the environment, or what it lacks.
fn target(name: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Target>, String> {
    let var = |names: &[&str]| names.iter().find_map(|n| env(n).filter(|v| !v.is_empty()));
    Ok(Some(match name {
        // Served without a target: /metrics is always on.
        "prometheus" => return Ok(None),
        "generic_api" => Target::GenericApi {
            url: var(&["GENERIC_LOGGER_ENDPOINT"]).ok_or(
                "the generic_api callback sends to GENERIC_LOGGER_ENDPOINT, which is not set",
            )?,
            headers: header_list(&var(&["GENERIC_LOGGER_HEADERS"]).unwrap_or_default()),
        },
        "langfuse" => {
            let (Some(public), Some(secret)) =
                (var(&["LANGFUSE_PUBLIC_KEY"]), var(&["LANGFUSE_SECRET_KEY"]))
            else {
                return Err(
                    "the langfuse callback needs LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY"
                        .into(),
                );
            };
            let host = var(&["LANGFUSE_HOST", "LANGFUSE_BASE_URL"])
                .unwrap_or_else(|| "https://cloud.langfuse.com".into());
            use base64::Engine;
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{public}:{secret}"));
            Target::Langfuse {
                url: format!("{}/api/public/ingestion", host.trim_end_matches('/')),
                authorization: format!("Basic {basic}"),
            }
        }
        "otel" => {
            let url = match var(&["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]) {
                Some(url) => url,
                None => {
                    let base = var(&["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_ENDPOINT"])
                        .unwrap_or_else(|| "http://localhost:4318".into());
                    let base = base.trim_end_matches('/');
                    match base.ends_with("/v1/traces") {
                        true => base.to_string(),
                        false => format!("{base}/v1/traces"),
                    }
                }
            };
            let headers = var(&["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_HEADERS"]).unwrap_or_default();
            Target::Otel {
                url,
                headers: header_list(&headers),
            }
        }
        "file" => Target::File {
            path: var(&["SWITCHYARD_LOG_FILE"])
                .unwrap_or_else(|| "switchyard-requests.jsonl".into())
                .into(),
        },
        other => {
            return Err(format!(
                "the {other} callback is not served by Switchyard (served: {})",
                switchyard_config::load::SERVED_CALLBACKS.join(", ")
            ))
        }
    }))
}

/// What each configured callback lacks in this environment.
pub fn problems(config: &ProxyConfig, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    config
        .litellm_settings
        .all_callbacks()
        .into_iter()
        // One not served is a load warning already.
        .filter(|name| switchyard_config::load::SERVED_CALLBACKS.contains(name))
        .filter_map(|name| target(name, env).err())
        .collect()
}

impl Callbacks {
    /// The callbacks the config names, each with its queue and task (on the current Tokio
    /// runtime). Fails with what a callback lacks (its endpoint, its keys).
    pub fn start(
        config: &ProxyConfig,
        env: &dyn Fn(&str) -> Option<String>,
        counts: CounterVec,
    ) -> Result<Callbacks, String> {
        let ls = &config.litellm_settings;
        let privacy = Privacy {
            no_messages: ls.turn_off_message_logging == Some(true),
            no_key_info: ls.redact_user_api_key_info == Some(true),
        };
        let mut sinks = Vec::new();
        for name in ls.all_callbacks() {
            let Some(target) = target(name, env)? else {
                continue;
            };
            let name: &'static str = match name {
                "generic_api" => "generic_api",
                "langfuse" => "langfuse",
                "otel" => "otel",
                _ => "file",
            };
            let (queue, rx) = mpsc::channel(QUEUE);
            tokio::spawn(deliver(name, target, privacy, rx, counts.clone()));
            sinks.push(Sink { name, queue });
        }
        Ok(Callbacks {
            sinks: Arc::new(sinks),
            counts: Some(counts),
        })
    }

    /// Whether any callback is on.
    pub fn any(&self) -> bool {
        !self.sinks.is_empty()
    }

    /// Hands events to every callback; a full queue drops them (counted), never waits.
    pub fn send(&self, events: &[&SpendEvent]) {
        if self.sinks.is_empty() {
            return;
        }
        let shared: Vec<Arc<SpendEvent>> = events.iter().map(|e| Arc::new((*e).clone())).collect();
        for sink in self.sinks.iter() {
            for e in &shared {
                if sink.queue.try_send(Arc::clone(e)).is_err() {
                    count(&self.counts, sink.name, "dropped", 1);
                }
            }
        }
    }
}

fn count(counts: &Option<CounterVec>, name: &str, outcome: &str, n: usize) {
    if let Some(c) = counts {
        c.with_label_values(&[name, outcome]).inc_by(n as f64);
    }
}

/// A callback's task: takes batches off its queue and sends them until the queue closes.
async fn deliver(
    name: &'static str,
    target: Target,
    privacy: Privacy,
    mut rx: mpsc::Receiver<Arc<SpendEvent>>,
    counts: CounterVec,
) {
    let client = crate::http::https();
    let counts = Some(counts);
    let mut batch: Vec<Arc<SpendEvent>> = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut wait = FIRST_WAIT;
        let mut attempt = 1;
        loop {
            match send_batch(&target, client.as_ref(), privacy, &batch).await {
                Ok(()) => {
                    count(&counts, name, "delivered", batch.len());
                    break;
                }
                Err(e) if attempt >= ATTEMPTS => {
                    tracing::warn!(
                        "the {name} callback gave up {} events after {ATTEMPTS} attempts: {e}",
                        batch.len()
                    );
                    count(&counts, name, "failed", batch.len());
                    break;
                }
                Err(e) => {
                    tracing::debug!("the {name} callback will try again in {wait:?}: {e}");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(LONGEST_WAIT);
                    attempt += 1;
                }
            }
        }
        batch.clear();
    }
}

async fn send_batch(
    target: &Target,
    client: Option<&Https>,
    privacy: Privacy,
    batch: &[Arc<SpendEvent>],
) -> Result<(), String> {
    let (url, headers, body) = match target {
        Target::File { path } => return append_lines(path, privacy, batch).await,
        Target::GenericApi { url, headers } => {
            let payloads: Vec<Value> = batch.iter().map(|e| standard_payload(e, privacy)).collect();
            (url, headers.clone(), Value::Array(payloads))
        }
        Target::Langfuse { url, authorization } => (
            url,
            vec![("authorization".to_string(), authorization.clone())],
            langfuse_batch(batch, privacy),
        ),
        Target::Otel { url, headers } => (url, headers.clone(), otlp_traces(batch)),
    };
    let client = client.ok_or("no HTTP client (no TLS roots on this machine)")?;
    let body = serde_json::to_vec(&body).map_err(|e| format!("cannot write the batch: {e}"))?;
    let mut request = hyper::Request::post(url.as_str()).header("content-type", "application/json");
    for (k, v) in &headers {
        request = request.header(k.as_str(), v.as_str());
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("bad callback URL {url}: {e}"))?;
    let (status, answer) = crate::http::call(client, request, SEND_TIMEOUT).await?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!(
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&answer)
                .chars()
                .take(200)
                .collect::<String>()
        ))
    }
}

async fn append_lines(
    path: &std::path::Path,
    privacy: Privacy,
    batch: &[Arc<SpendEvent>],
) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let mut text = Vec::new();
    for e in batch {
        serde_json::to_writer(&mut text, &standard_payload(e, privacy))
            .map_err(|e| format!("cannot write an event: {e}"))?;
        text.push(b'\n');
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    file.write_all(&text)
        .await
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn iso(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// What the client asked for in OpenAI's terms (GenAI's `gen_ai.operation.name`).
fn operation(endpoint: &str) -> &'static str {
    match crate::service::call_type(endpoint).as_str() {
        "aembedding" => "embeddings",
        "atext_completion" => "text_completion",
        _ => "chat",
    }
}

/// LiteLLM's StandardLoggingPayload for an event (the fields it has).
pub fn standard_payload(e: &SpendEvent, privacy: Privacy) -> Value {
    let success = e.status == "success";
    let metadata = metadata(e, privacy);
    let completion_start = e.ttft_ms.map(|t| secs(e.attempt_start_ms + t));
    let error = (!success).then(|| {
        json!({
            "error_code": e.http_status.to_string(),
            "error_class": exception_class(e.http_status, e.error_class),
            "error_message": e.error,
        })
    });
    json!({
        "id": e.request_id,
        "trace_id": e.request_id,
        "call_type": crate::service::call_type(&e.endpoint),
        "status": e.status,
        "response_cost": e.cost,
        "total_tokens": e.prompt_tokens + e.completion_tokens,
        "prompt_tokens": e.prompt_tokens,
        "completion_tokens": e.completion_tokens,
        "startTime": secs(e.start_ms),
        "endTime": secs(e.end_ms),
        "completionStartTime": completion_start.unwrap_or(secs(e.end_ms)),
        "response_time": secs(e.end_ms.saturating_sub(e.start_ms)),
        "model": model_of(e),
        "model_id": e.deployment,
        "model_group": e.model_group,
        "requested_model": e.requested_model,
        "custom_llm_provider": e.provider,
        "api_base": e.api_base,
        "metadata": metadata,
        "cache_hit": e.cache_hit,
        "stream": e.stream,
        "error_str": if success { Value::Null } else { json!(e.error) },
        "error_information": error,
        "messages": content(e.messages.clone(), privacy),
        "response": content(e.response.clone(), privacy),
        "request_tags": e.metadata.get("tags").cloned().unwrap_or(json!([])),
        "hidden_params": {
            "api_base": e.api_base,
            "response_cost": e.cost,
            "litellm_overhead_time_ms": (e.attempt_start_ms > 0)
                .then(|| e.end_ms.saturating_sub(e.start_ms).saturating_sub(e.llm_api_ms)),
            "retries": e.retries,
            "fallbacks": e.fallbacks,
        },
    })
}

/// The assistant's message of an OpenAI answer (what Langfuse shows as a generation's output),
/// else the answer as logged.
fn answer_message(answer: Option<&Value>) -> Option<Value> {
    let a = answer?;
    Some(
        a.pointer("/choices/0/message")
            .cloned()
            .unwrap_or_else(|| a.clone()),
    )
}

/// A prompt or an answer as a callback may see it.
fn content(logged: Option<Value>, privacy: Privacy) -> Value {
    match privacy.no_messages {
        true => json!("redacted-by-litellm"),
        false => logged.unwrap_or(Value::Null),
    }
}

/// The model that answered, else the one asked for.
fn model_of(e: &SpendEvent) -> &str {
    if e.model.is_empty() {
        &e.requested_model
    } else {
        &e.model
    }
}

/// LiteLLM's metadata of a logged request: who sent it (unless redacted) and its own.
fn metadata(e: &SpendEvent, privacy: Privacy) -> Map<String, Value> {
    let mut metadata = Map::new();
    if !privacy.no_key_info {
        metadata.insert("user_api_key_hash".into(), json!(e.key_hash));
        metadata.insert("user_api_key_alias".into(), json!(e.key_alias));
        metadata.insert("user_api_key_team_id".into(), json!(e.team_id));
        metadata.insert("user_api_key_user_id".into(), json!(e.user_id));
        metadata.insert("user_api_key_end_user_id".into(), json!(e.end_user));
    }
    metadata.insert(
        "requester_metadata".into(),
        Value::Object(e.metadata.clone()),
    );
    metadata
}

/// Langfuse's ingestion batch: a trace and a generation per request.
fn langfuse_batch(batch: &[Arc<SpendEvent>], privacy: Privacy) -> Value {
    let mut items = Vec::with_capacity(batch.len() * 2);
    for e in batch {
        let success = e.status == "success";
        let user = match privacy.no_key_info {
            true => None,
            false => e.end_user.clone().or_else(|| e.user_id.clone()),
        };
        let tags = e.metadata.get("tags").cloned().unwrap_or(json!([]));
        items.push(json!({
            "id": format!("{}-trace", e.request_id),
            "timestamp": iso(e.start_ms),
            "type": "trace-create",
            "body": {
                "id": e.request_id,
                "timestamp": iso(e.start_ms),
                "name": format!("litellm-{}", crate::service::call_type(&e.endpoint)),
                "userId": user,
                "tags": tags,
                "input": content(e.messages.clone(), privacy),
                "output": content(answer_message(e.response.as_ref()), privacy),
            },
        }));
        let mut metadata = metadata(e, privacy);
        metadata.insert("model_group".into(), json!(e.model_group));
        metadata.insert("model_id".into(), json!(e.deployment));
        metadata.insert("cache_hit".into(), json!(e.cache_hit));
        items.push(json!({
            "id": format!("{}-generation", e.request_id),
            "timestamp": iso(e.end_ms),
            "type": "generation-create",
            "body": {
                "id": e.request_id,
                "traceId": e.request_id,
                "name": format!("litellm-{}", crate::service::call_type(&e.endpoint)),
                "startTime": iso(e.start_ms),
                "endTime": iso(e.end_ms),
                "completionStartTime": e.ttft_ms.map(|t| iso(e.attempt_start_ms + t)),
                "model": model_of(e),
                "input": content(e.messages.clone(), privacy),
                "output": content(answer_message(e.response.as_ref()), privacy),
                "usage": {
                    "input": e.prompt_tokens,
                    "output": e.completion_tokens,
                    "total": e.prompt_tokens + e.completion_tokens,
                    "unit": "TOKENS",
                    "totalCost": e.cost,
                },
                "level": if success { "DEFAULT" } else { "ERROR" },
                "statusMessage": if success { Value::Null } else { json!(e.error) },
                "metadata": metadata,
            },
        }));
    }
    json!({ "batch": items })
}

/// 16 hex bytes (a trace id) or 8 (a span id) from the request id: the same request gives
/// the same ids, however often its batch is sent.
fn ids(request_id: &str, what: &str, bytes: usize) -> String {
    let digest = Sha256::digest(format!("{request_id}/{what}").as_bytes());
    digest
        .iter()
        .take(bytes)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn attr(key: &str, value: Value) -> Value {
    let v = match value {
        Value::String(s) => json!({"stringValue": s}),
        Value::Bool(b) => json!({"boolValue": b}),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({"intValue": n.to_string()}),
        Value::Number(n) => json!({"doubleValue": n}),
        other => json!({"stringValue": other.to_string()}),
    };
    json!({"key": key, "value": v})
}

fn nanos(ms: u64) -> String {
    (u128::from(ms) * 1_000_000).to_string()
}

/// OTLP/HTTP JSON: a trace per request (a server span), with a client span per attempt at a
/// provider, as the GenAI semantic conventions name them.
fn otlp_traces(batch: &[Arc<SpendEvent>]) -> Value {
    const SERVER: u8 = 2;
    const CLIENT: u8 = 3;
    const OK: u8 = 1;
    const ERROR: u8 = 2;
    let mut spans = Vec::new();
    for e in batch {
        let trace = ids(&e.request_id, "trace", 16);
        let root = ids(&e.request_id, "request", 8);
        let op = operation(&e.endpoint);
        let success = e.status == "success";
        let mut attrs = vec![
            attr("gen_ai.operation.name", json!(op)),
            attr("gen_ai.request.model", json!(e.requested_model)),
            attr("http.response.status_code", json!(e.http_status)),
            attr("litellm.request_id", json!(e.request_id)),
            attr("litellm.model_group", json!(e.model_group)),
            attr("litellm.cache_hit", json!(e.cache_hit)),
            attr("litellm.response_cost", json!(e.cost)),
        ];
        if !e.provider.is_empty() {
            attrs.push(attr("gen_ai.system", json!(e.provider)));
        }
        if !e.model.is_empty() {
            attrs.push(attr("gen_ai.response.model", json!(e.model)));
        }
        if e.prompt_tokens + e.completion_tokens > 0 {
            attrs.push(attr("gen_ai.usage.input_tokens", json!(e.prompt_tokens)));
            attrs.push(attr(
                "gen_ai.usage.output_tokens",
                json!(e.completion_tokens),
            ));
        }
        if !success {
            attrs.push(attr(
                "error.type",
                json!(exception_class(e.http_status, e.error_class)),
            ));
        }
        let status = |ok: bool, message: Option<&String>| match ok {
            true => json!({"code": OK}),
            false => json!({"code": ERROR, "message": message.cloned().unwrap_or_default()}),
        };
        spans.push(json!({
            "traceId": trace,
            "spanId": root,
            "name": format!("{op} {}", e.requested_model),
            "kind": SERVER,
            "startTimeUnixNano": nanos(e.start_ms),
            "endTimeUnixNano": nanos(e.end_ms),
            "attributes": attrs,
            "status": status(success, e.error.as_ref()),
        }));
        let client_span =
            |n: usize,
             (provider, model, api_base, start, end): (&str, &str, &str, u64, u64),
             failure: Option<(u16, ErrorClass)>| {
                let mut attrs = vec![
                    attr("gen_ai.operation.name", json!(op)),
                    attr("gen_ai.system", json!(provider)),
                    attr("gen_ai.request.model", json!(model)),
                    attr("server.address", json!(api_base)),
                ];
                if let Some((status, class)) = failure {
                    attrs.push(attr("http.response.status_code", json!(status)));
                    attrs.push(attr(
                        "error.type",
                        json!(exception_class(status, Some(class))),
                    ));
                }
                json!({
                    "traceId": trace,
                    "spanId": ids(&e.request_id, &format!("attempt-{n}"), 8),
                    "parentSpanId": root,
                    "name": format!("{op} {model}"),
                    "kind": CLIENT,
                    "startTimeUnixNano": nanos(start),
                    "endTimeUnixNano": nanos(end),
                    "attributes": attrs,
                    "status": status(failure.is_none(), None),
                })
            };
        for (n, a) in e.failed_attempts.iter().enumerate() {
            spans.push(client_span(
                n,
                (&a.provider, &a.model, &a.api_base, a.start_ms, a.end_ms),
                Some((a.http_status, a.error_class)),
            ));
        }
        if e.attempt_start_ms > 0 {
            let mut span = client_span(
                e.failed_attempts.len(),
                (
                    &e.provider,
                    &e.model,
                    &e.api_base,
                    e.attempt_start_ms,
                    e.end_ms,
                ),
                (!success).then_some((e.http_status, e.error_class.unwrap_or_default())),
            );
            if let Some(attrs) = span["attributes"].as_array_mut() {
                attrs.push(attr("gen_ai.response.model", json!(e.model)));
                attrs.push(attr("gen_ai.usage.input_tokens", json!(e.prompt_tokens)));
                attrs.push(attr(
                    "gen_ai.usage.output_tokens",
                    json!(e.completion_tokens),
                ));
            }
            spans.push(span);
        }
    }
    json!({"resourceSpans": [{
        "resource": {"attributes": [attr("service.name", json!("switchyard"))]},
        "scopeSpans": [{"scope": {"name": "switchyard", "version": env!("CARGO_PKG_VERSION")}, "spans": spans}],
    }]})
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use switchyard_config::AttemptLog;

    fn event() -> SpendEvent {
        SpendEvent {
            request_id: "req-1".into(),
            key_hash: "h".into(),
            key_alias: Some("k".into()),
            requested_model: "gpt".into(),
            model_group: "gpt".into(),
            deployment: "d2".into(),
            provider: "openai".into(),
            model: "gpt-4o".into(),
            endpoint: "chat completions".into(),
            prompt_tokens: 10,
            completion_tokens: 4,
            cost: 0.01,
            start_ms: 1_000,
            end_ms: 2_000,
            attempt_start_ms: 1_500,
            llm_api_ms: 450,
            ttft_ms: Some(100),
            status: "success".into(),
            http_status: 200,
            failed_attempts: vec![AttemptLog {
                deployment: "d1".into(),
                provider: "azure".into(),
                model: "gpt-4o".into(),
                start_ms: 1_010,
                end_ms: 1_400,
                http_status: 429,
                error_class: ErrorClass::RateLimit,
                ..AttemptLog::default()
            }],
            ..SpendEvent::default()
        }
    }

    #[test]
    fn the_standard_payload_keeps_or_redacts_as_told() {
        let p = standard_payload(&event(), Privacy::default());
        assert_eq!(p["id"], "req-1");
        assert_eq!(p["call_type"], "acompletion");
        assert_eq!(p["total_tokens"], 14);
        assert_eq!(p["metadata"]["user_api_key_alias"], "k");
        assert_eq!(p["completionStartTime"], 1.6);
        assert_eq!(p["hidden_params"]["litellm_overhead_time_ms"], 550);
        let private = standard_payload(
            &event(),
            Privacy {
                no_messages: true,
                no_key_info: true,
            },
        );
        assert_eq!(private["messages"], "redacted-by-litellm");
        assert!(private["metadata"].get("user_api_key_hash").is_none());
    }

    #[test]
    fn a_trace_has_the_request_and_each_attempt() {
        let t = otlp_traces(&[Arc::new(event())]);
        let spans = t["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .unwrap();
        assert_eq!(
            spans.len(),
            3,
            "the request, the failed attempt, the answering one"
        );
        assert_eq!(spans[0]["name"], "chat gpt");
        assert_eq!(spans[0]["traceId"].as_str().unwrap().len(), 32);
        assert_eq!(spans[1]["parentSpanId"], spans[0]["spanId"]);
        assert_eq!(spans[1]["status"]["code"], 2);
        assert_eq!(spans[2]["startTimeUnixNano"], "1500000000");
        let attrs = |s: &Value| s["attributes"].as_array().unwrap().clone();
        assert!(attrs(&spans[1]).contains(&attr("error.type", json!("RateLimitError"))));
        assert!(attrs(&spans[2]).contains(&attr("gen_ai.system", json!("openai"))));
        assert!(attrs(&spans[0]).contains(&attr("gen_ai.usage.input_tokens", json!(10))));
        // The same request gives the same ids when its batch is sent again.
        assert_eq!(otlp_traces(&[Arc::new(event())]), t);
    }

    #[test]
    fn langfuse_gets_a_trace_and_a_generation() {
        let b = langfuse_batch(&[Arc::new(event())], Privacy::default());
        let items = b["batch"].as_array().unwrap();
        assert_eq!(items[0]["type"], "trace-create");
        assert_eq!(items[1]["type"], "generation-create");
        assert_eq!(items[1]["body"]["traceId"], "req-1");
        assert_eq!(items[1]["body"]["usage"]["total"], 14);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_dead_endpoint_holds_a_bounded_queue_and_the_rest_is_counted() {
        let mut config = ProxyConfig::default();
        config.litellm_settings.callbacks = vec!["generic_api".into()];
        let env = |n: &str| (n == "GENERIC_LOGGER_ENDPOINT").then(|| "http://127.0.0.1:1/".into());
        let metrics = crate::metrics::Metrics::new(false).unwrap();
        let callbacks = Callbacks::start(&config, &env, metrics.callback_events()).unwrap();
        assert!(callbacks.any());
        let events: Vec<SpendEvent> = (0..QUEUE + 50).map(|_| event()).collect();
        // The delivery task has not run yet (one thread): the queue takes QUEUE events.
        callbacks.send(&events.iter().collect::<Vec<_>>());
        let dropped = metrics
            .callback_events()
            .with_label_values(&["generic_api", "dropped"])
            .get();
        assert_eq!(dropped, 50.0);
    }

    #[test]
    fn targets_come_from_litellms_variables() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |n: &str| {
                vars.iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            }
        };
        let Some(Target::Otel { url, headers }) = target(
            "otel",
            &env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "a=1, b=2"),
            ]),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(url, "http://c:4318/v1/traces");
        assert_eq!(
            headers,
            [("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        let err = target("langfuse", &env(&[("LANGFUSE_PUBLIC_KEY", "pk")])).unwrap_err();
        assert!(err.contains("LANGFUSE_SECRET_KEY"), "{err}");
        assert!(target("generic_api", &env(&[]))
            .unwrap_err()
            .contains("GENERIC_LOGGER_ENDPOINT"));
        assert!(target("prometheus", &env(&[])).unwrap().is_none());
        assert!(target("datadog", &env(&[]))
            .unwrap_err()
            .contains("not served"));
    }
}
