//! A fake OpenAI-compatible provider: an axum server on its own thread and runtime (so it
//! outlives any one test's runtime and can be shared), on a free port of 127.0.0.1.
//!
//! It answers OpenAI's paths (`.../chat/completions`, `.../completions`, `.../embeddings`,
//! `GET .../models`) under any prefix, so it also stands for Azure
//! (`/openai/deployments/{deployment}/chat/completions?api-version=...`), Groq
//! (`/openai/v1/...`), vLLM and the rest. Answers are replayed from the fixture files under
//! tests/fixtures/openai/. Every request is recorded; the [`Mode`] makes it fail on demand.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use futures_util::StreamExt as _;
use serde_json::{json, Value};

pub const CHAT_COMPLETION: &str = include_str!("../fixtures/openai/chat_completion.json");
pub const CHAT_COMPLETION_STREAM: &str =
    include_str!("../fixtures/openai/chat_completion_stream.sse");
pub const COMPLETION: &str = include_str!("../fixtures/openai/completion.json");
pub const EMBEDDINGS: &str = include_str!("../fixtures/openai/embeddings.json");
pub const MODELS: &str = include_str!("../fixtures/openai/models.json");
pub const ERROR_400: &str = include_str!("../fixtures/openai/error_400.json");
pub const ERROR_401: &str = include_str!("../fixtures/openai/error_401.json");
pub const ERROR_429: &str = include_str!("../fixtures/openai/error_429.json");
pub const ERROR_503: &str = include_str!("../fixtures/openai/error_503.json");

/// The assistant text of the chat fixtures (whole, and streamed deltas joined).
pub const CHAT_CONTENT: &str = "Hello! How can I help you today?";
/// The `model` the fixtures carry: the provider's own name, never the client's model_name.
pub const PROVIDER_CHAT_MODEL: &str = "gpt-4o-mini-2024-07-18";

/// How a fake answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Replays the fixtures.
    Ok,
    /// Answers every request with this status and an OpenAI-style error body (the fixture
    /// error_<status>.json where there is one).
    Status(u16),
    /// Waits this long, then answers as `Ok` (for timeouts).
    Slow(Duration),
    /// As `Ok`, but waits this long before each event of a stream.
    StreamDelay(Duration),
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, as sent (`/v1/chat/completions`, `/openai/deployments/d/chat/completions?api-version=...`).
    pub uri: String,
    /// Names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }

    pub fn query(&self) -> Option<&str> {
        self.uri.split_once('?').map(|(_, q)| q)
    }

    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Names of the headers starting with `prefix` (lowercase).
    pub fn headers_starting_with(&self, prefix: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(n, _)| n.as_str())
            .collect()
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the fake provider received a body that is not JSON ({e}): {}",
                self.body_text()
            )
        })
    }
}

struct Shared {
    mode: Mutex<Mode>,
    requests: Mutex<Vec<Recorded>>,
    served: AtomicU64,
}

pub struct FakeProvider {
    port: u16,
    shared: Arc<Shared>,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl FakeProvider {
    /// A fake answering from the fixtures.
    pub fn start() -> FakeProvider {
        FakeProvider::with_mode(Mode::Ok)
    }

    pub fn with_mode(mode: Mode) -> FakeProvider {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("fake provider: cannot bind");
        listener
            .set_nonblocking(true)
            .expect("fake provider: cannot set non-blocking");
        let port = listener
            .local_addr()
            .expect("bound socket has an address")
            .port();
        let shared = Arc::new(Shared {
            mode: Mutex::new(mode),
            requests: Mutex::new(Vec::new()),
            served: AtomicU64::new(0),
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-provider-{port}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("fake provider: cannot build a runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("fake provider: cannot use the listener");
                    let app = Router::new().fallback(handle).with_state(state);
                    // Not a graceful shutdown: a slow or streaming answer must not hold up
                    // the end of a test. Dropping the runtime closes every connection.
                    tokio::select! {
                        result = axum::serve(listener, app) => {
                            if let Err(e) = result {
                                eprintln!("fake provider on port {port} failed: {e}");
                            }
                        }
                        _ = stop_rx => {}
                    }
                });
            })
            .expect("fake provider: cannot spawn its thread");
        FakeProvider {
            port,
            shared,
            stop: Mutex::new(Some(stop_tx)),
            thread: Mutex::new(Some(thread)),
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.shared.mode) = mode;
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port><path>`, e.g. `url("/v1")` for an api_base.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// Everything received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.requests).clone()
    }

    pub fn count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// The requests whose body contains `marker` (see [`crate::marker`]): how a test finds
    /// its own requests on a fake that parallel tests share.
    pub fn find(&self, marker: &str) -> Vec<Recorded> {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| contains(&r.body, marker.as_bytes()))
            .cloned()
            .collect()
    }

    /// The one request carrying `marker`; panics if there is none or more than one.
    pub fn only(&self, marker: &str) -> Recorded {
        let mut found = self.find(marker);
        match found.len() {
            1 => found.remove(0),
            n => panic!(
                "expected the fake provider on port {} to receive exactly one request carrying {marker:?}, it received {n} (of {} in total: {:?})",
                self.port,
                self.count(),
                self.requests().iter().map(|r| format!("{} {}", r.method, r.uri)).collect::<Vec<_>>()
            ),
        }
    }

    pub fn clear(&self) {
        lock(&self.shared.requests).clear();
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        if let Some(stop) = lock(&self.stop).take() {
            let _ = stop.send(());
        }
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking test must not poison the fake for the tests sharing it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        uri: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| parts.uri.to_string()),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    lock(&shared.requests).push(recorded.clone());
    let n = shared.served.fetch_add(1, Ordering::Relaxed);
    let mode = lock(&shared.mode).clone();
    let mut response = match mode {
        Mode::Status(status) => error_response(status),
        Mode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            answer(&recorded, None)
        }
        Mode::StreamDelay(delay) => answer(&recorded, Some(delay)),
        Mode::Ok => answer(&recorded, None),
    };
    if let Ok(id) = HeaderValue::from_str(&format!("req_fake{n:08}")) {
        response.headers_mut().insert("x-request-id", id);
    }
    response
}

fn answer(request: &Recorded, stream_delay: Option<Duration>) -> Response {
    let path = request.path().trim_end_matches('/');
    if request.method == "GET" && path.ends_with("/models") {
        return json_response(StatusCode::OK, MODELS.to_string());
    }
    if request.method != "POST" {
        return invalid_url(request);
    }
    let body: Value = match serde_json::from_slice(&request.body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return openai_error(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
            "invalid_request_error",
        ),
    };
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if path.ends_with("/chat/completions") {
        if stream {
            let include_usage = body
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            return sse_response(chat_stream_events(include_usage), stream_delay);
        }
        return json_response(StatusCode::OK, CHAT_COMPLETION.to_string());
    }
    if path.ends_with("/embeddings") {
        return json_response(StatusCode::OK, embeddings(&body).to_string());
    }
    if path.ends_with("/completions") {
        if stream {
            return openai_error(
                400,
                "the fake provider does not stream legacy completions",
                "invalid_request_error",
            );
        }
        return json_response(StatusCode::OK, COMPLETION.to_string());
    }
    invalid_url(request)
}

/// The stream fixture is written as OpenAI sends it with `stream_options.include_usage`
/// (`"usage": null` on every chunk, then a chunk with no choices and the usage). Without
/// it, OpenAI sends neither: both are removed.
pub fn chat_stream_events(include_usage: bool) -> Vec<String> {
    CHAT_COMPLETION_STREAM
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .filter_map(|event| {
            let data = event.trim().strip_prefix("data: ")?;
            if include_usage || data == "[DONE]" {
                return Some(format!("data: {data}\n\n"));
            }
            let mut chunk: Value = serde_json::from_str(data).ok()?;
            let usage_only = chunk["choices"].as_array().is_some_and(|c| c.is_empty());
            if usage_only {
                return None;
            }
            if let Some(obj) = chunk.as_object_mut() {
                obj.remove("usage");
            }
            Some(format!("data: {chunk}\n\n"))
        })
        .collect()
}

/// One embedding per input string (the fixture's vector, with its index).
fn embeddings(request: &Value) -> Value {
    let mut answer: Value = serde_json::from_str(EMBEDDINGS).unwrap_or(Value::Null);
    let inputs = match request.get("input") {
        // An array of strings, or of token arrays; an array of numbers is one tokenised input.
        Some(Value::Array(items)) if items.iter().all(|i| !i.is_number()) => items.len().max(1),
        _ => 1,
    };
    let first = answer["data"][0].clone();
    answer["data"] = Value::Array(
        (0..inputs)
            .map(|i| {
                let mut item = first.clone();
                item["index"] = json!(i);
                item
            })
            .collect(),
    );
    answer
}

fn error_response(status: u16) -> Response {
    let body = match status {
        400 => ERROR_400.to_string(),
        401 => ERROR_401.to_string(),
        429 => ERROR_429.to_string(),
        503 => ERROR_503.to_string(),
        _ => json!({"error": {
            "message": format!("The fake provider answers HTTP {status} on demand."),
            "type": "server_error",
            "param": null,
            "code": null,
        }})
        .to_string(),
    };
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
}

fn invalid_url(request: &Recorded) -> Response {
    openai_error(
        404,
        &format!("Invalid URL ({} {})", request.method, request.path()),
        "invalid_request_error",
    )
}

fn openai_error(status: u16, message: &str, kind: &str) -> Response {
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
            .to_string(),
    )
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Each event is written on its own, after `delay` if any, as a real provider flushes them.
fn sse_response(events: Vec<String>, delay: Option<Duration>) -> Response {
    let stream = futures_util::stream::iter(events).then(move |event| async move {
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        Ok::<_, Infallible>(Bytes::from(event))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{sse_data, Client};

    #[test]
    fn fixtures_are_valid() {
        for (name, text) in [
            ("chat_completion.json", CHAT_COMPLETION),
            ("completion.json", COMPLETION),
            ("embeddings.json", EMBEDDINGS),
            ("models.json", MODELS),
            ("error_400.json", ERROR_400),
            ("error_401.json", ERROR_401),
            ("error_429.json", ERROR_429),
            ("error_503.json", ERROR_503),
        ] {
            serde_json::from_str::<Value>(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let chat: Value = serde_json::from_str(CHAT_COMPLETION).unwrap();
        assert_eq!(chat["choices"][0]["message"]["content"], CHAT_CONTENT);
        assert_eq!(chat["model"], PROVIDER_CHAT_MODEL);
    }

    #[test]
    fn stream_fixture_with_and_without_usage() {
        let with = chat_stream_events(true);
        let without = chat_stream_events(false);
        assert!(without.len() >= 5, "several chunks");
        assert_eq!(with.len(), without.len() + 1, "one usage chunk more");
        assert_eq!(without.last().map(String::as_str), Some("data: [DONE]\n\n"));
        let chunks: Vec<Value> = without[..without.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e.trim().strip_prefix("data: ").unwrap()).unwrap())
            .collect();
        assert!(chunks.iter().all(|c| c.get("usage").is_none()));
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, CHAT_CONTENT);
        let usage: Value =
            serde_json::from_str(with[with.len() - 2].trim().strip_prefix("data: ").unwrap())
                .unwrap();
        assert_eq!(usage["usage"]["total_tokens"], 22);
        assert_eq!(usage["choices"], json!([]));
    }

    #[tokio::test]
    async fn answers_and_records() {
        let fake = FakeProvider::start();
        let client = Client::new(&fake.base_url()).with_key("sk-fake");
        let reply = client
            .post(
                "/v1/chat/completions",
                &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "m-1"}]}),
            )
            .await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.json()["choices"][0]["message"]["content"],
            CHAT_CONTENT
        );
        let got = fake.only("m-1");
        assert_eq!(got.method, "POST");
        assert_eq!(got.path(), "/v1/chat/completions");
        assert_eq!(got.header("Authorization"), Some("Bearer sk-fake"));
        assert_eq!(got.json()["model"], "gpt-4o-mini");

        let azure = client
            .post(
                "/openai/deployments/my-deploy/embeddings?api-version=2024-10-21",
                &json!({"input": ["a", "b"]}),
            )
            .await;
        assert_eq!(azure.status, 200);
        assert_eq!(azure.json()["data"][1]["index"], 1);
        let last = fake.requests().pop().unwrap();
        assert_eq!(last.path(), "/openai/deployments/my-deploy/embeddings");
        assert_eq!(last.query(), Some("api-version=2024-10-21"));

        let models = client.get("/v1/models").await;
        assert_eq!(models.json()["object"], "list");
        assert_eq!(fake.count(), 3);
        fake.clear();
        assert_eq!(fake.count(), 0);
    }

    #[tokio::test]
    async fn streams_with_usage_on_request() {
        let fake = FakeProvider::with_mode(Mode::StreamDelay(Duration::from_millis(20)));
        let client = Client::new(&fake.base_url());
        let body = json!({"model": "m", "messages": [], "stream": true, "stream_options": {"include_usage": true}});
        let reply = client.stream("/v1/chat/completions", &body).await;
        assert_eq!(reply.status, 200);
        assert!(reply.chunks.len() > 5, "events arrive separately");
        let data = sse_data(&reply.text());
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
        assert_eq!(reply.content(), CHAT_CONTENT);
        assert_eq!(reply.usage().unwrap()["total_tokens"], 22);
    }

    #[tokio::test]
    async fn fails_on_demand() {
        let fake = FakeProvider::with_mode(Mode::Status(429));
        let client = Client::new(&fake.base_url());
        let body = json!({"model": "m", "messages": []});
        let reply = client.post("/v1/chat/completions", &body).await;
        assert_eq!(reply.status, 429);
        assert_eq!(reply.json()["error"]["code"], "rate_limit_exceeded");
        fake.set_mode(Mode::Status(418));
        let reply = client.post("/v1/chat/completions", &body).await;
        assert_eq!(reply.status, 418);
        assert!(reply.json()["error"]["message"].is_string());
        fake.set_mode(Mode::Slow(Duration::from_millis(300)));
        let started = std::time::Instant::now();
        assert_eq!(client.post("/v1/chat/completions", &body).await.status, 200);
        assert!(started.elapsed() >= Duration::from_millis(300));
        let bad = client
            .post_raw("/v1/chat/completions", b"{not json".to_vec(), &[])
            .await;
        assert_eq!(bad.status, 400, "a body that is not JSON gets OpenAI's 400");
    }
}
