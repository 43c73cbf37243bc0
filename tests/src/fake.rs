//! A fake OpenAI-compatible provider: an axum server on its own thread and runtime (so it
//! outlives any one test's runtime and can be shared), on a free port of 127.0.0.1.
//!
//! It answers OpenAI's paths (`.../chat/completions`, `.../completions`, `.../embeddings`,
//! `GET .../models`) under any prefix, so it also stands for Azure
//! (`/openai/deployments/{deployment}/chat/completions?api-version=...`), Groq
//! (`/openai/v1/...`), vLLM and the rest. Answers are replayed from the fixture files under
//! tests/fixtures/openai/. Every request is recorded; the [`Mode`] makes it fail on demand:
//! error statuses (with OpenAI's bodies, an empty body, plain text, extra headers), slow or
//! hanging answers, streams that stall or break off, connections reset before any answer.
//! [`Mode::Rules`] picks the behaviour per request from its API key or model, so several
//! deployments pointed at one fake can fail differently.
//!
//! The server runs its own accept loop (`FakeListener`) so that an answer can abort the
//! very connection it would be written to: that is how [`Mode::Reset`] closes a connection
//! without sending a byte, which a handler alone cannot do (hyper always writes headers).

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use futures_util::StreamExt as _;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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
/// OpenAI's answer to a request over the model's context window, word for word: the one
/// 400 a router must not retry on the same model but may send to a larger one.
pub const CONTEXT_WINDOW_ERROR: &str = r#"{"error": {"message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. Please reduce the length of the messages.", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}"#;

/// The assistant text of the chat fixtures (whole, and streamed deltas joined).
pub const CHAT_CONTENT: &str = "Hello! How can I help you today?";
/// The `model` the fixtures carry: the provider's own name, never the client's model_name.
pub const PROVIDER_CHAT_MODEL: &str = "gpt-4o-mini-2024-07-18";

/// How a fake answers. Unless a mode says otherwise it applies to every request, whatever
/// its path; the stream modes change streamed chat completions only and answer the rest as
/// `Ok`.
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
    /// Per request: the `then` of the first rule whose `when` matches the request, `Ok` when
    /// none does (a `then` that is itself `Rules` is resolved the same way). How several
    /// deployments on one fake (one host:port, different keys or models) behave differently.
    Rules(Vec<Rule>),
    /// This status with an empty body (`content-length: 0`): a proxy or load balancer in
    /// front of the provider, not the provider itself.
    EmptyStatus(u16),
    /// This status with a `text/plain` body that is not JSON (an HTML-less gateway page).
    TextStatus(u16, String),
    /// As `Status`, plus these response headers (`retry-after`, `x-ratelimit-*`, or headers
    /// the gateway must not pass on). A name given here replaces the fake's own header of that
    /// name; a name given twice is sent twice (`set-cookie`).
    StatusWithHeaders(u16, Vec<(String, String)>),
    /// As `Ok` (streamed or not), plus these response headers, as in `StatusWithHeaders`:
    /// a provider trying to inject the gateway's own headers (`x-switchyard-retry`, ...).
    OkWithHeaders(Vec<(String, String)>),
    /// Reads the request, then closes the connection with a TCP reset and not one byte of
    /// answer: a provider that died while handling the request.
    Reset,
    /// Reads the request and never answers; the connection stays open until the client gives
    /// up (or the fake is dropped). Other connections are served as usual.
    Hang,
    /// A streamed chat completion sends its headers at once, then waits this long before the
    /// first event and sends the rest without delay (a slow time-to-first-token). Any other
    /// request waits this long, then is answered as `Ok`.
    SlowFirstEvent(Duration),
    /// A streamed chat completion sends its first `after_events` events, then stops: the body
    /// ends cleanly without `[DONE]` when `reset` is false; when true the connection is cut
    /// mid-body, without the chunked terminator. Other requests are answered as `Ok`.
    CutStream { after_events: usize, reset: bool },
    /// A 400 with OpenAI's context-length error ([`CONTEXT_WINDOW_ERROR`]).
    ContextWindow,
    /// An error with this status whose message repeats the request's `Authorization` and
    /// `api-key` values verbatim, as some providers do ("Incorrect API key provided: ..."):
    /// for checking the gateway does not hand a provider key back to its client.
    EchoAuth(u16),
    /// As `Ok`, but a chat completion's assistant content is this many bytes of `x` (a whole
    /// answer, or a stream whose content comes in one delta).
    Large(usize),
    /// Not a provider: a receiver of logs and traces (a webhook, Langfuse, an OTLP
    /// collector) that answers 200 `{}` to anything, after this long.
    Accept(Duration),
}

/// One rule of [`Mode::Rules`].
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub when: Match,
    pub then: Mode,
}

/// What a [`Rule`] looks for in a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    /// The request carries this API key, as `Authorization: Bearer <key>` or `api-key: <key>`.
    Key(String),
    /// The JSON body's `model` is this.
    Model(String),
    /// Every request.
    Any,
}

impl Rule {
    /// `then` for requests carrying this API key.
    pub fn key(key: &str, then: Mode) -> Rule {
        Rule {
            when: Match::Key(key.to_string()),
            then,
        }
    }

    /// `then` for requests whose body names this model.
    pub fn model(model: &str, then: Mode) -> Rule {
        Rule {
            when: Match::Model(model.to_string()),
            then,
        }
    }

    /// `then` for every request (as the last rule: the default instead of `Ok`).
    pub fn any(then: Mode) -> Rule {
        Rule {
            when: Match::Any,
            then,
        }
    }
}

impl Match {
    fn matches(&self, request: &Recorded) -> bool {
        match self {
            Match::Key(key) => request.api_keys().contains(&key.as_str()),
            Match::Model(model) => {
                serde_json::from_slice::<Value>(&request.body)
                    .ok()
                    .as_ref()
                    .and_then(|body| body.get("model"))
                    .and_then(Value::as_str)
                    == Some(model.as_str())
            }
            Match::Any => true,
        }
    }
}

impl Mode {
    /// The mode that answers this request: `Rules` resolved, any other mode as it is.
    fn for_request(self, request: &Recorded) -> Mode {
        match self {
            Mode::Rules(rules) => rules
                .into_iter()
                .find(|rule| rule.when.matches(request))
                .map_or(Mode::Ok, |rule| rule.then.for_request(request)),
            mode => mode,
        }
    }

    /// Panics on a header no response can carry: here, in the test that set the mode, rather
    /// than on the fake's thread, where the test would only see a broken connection.
    fn check(&self) {
        match self {
            Mode::StatusWithHeaders(_, headers) | Mode::OkWithHeaders(headers) => {
                for (name, value) in headers {
                    if HeaderName::from_bytes(name.as_bytes()).is_err()
                        || HeaderValue::from_str(value).is_err()
                    {
                        panic!("fake provider: {name:?}: {value:?} is not a valid HTTP header");
                    }
                }
            }
            Mode::Rules(rules) => rules.iter().for_each(|rule| rule.then.check()),
            _ => {}
        }
    }
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
    /// A request as a server received it.
    pub fn new(parts: &axum::http::request::Parts, body: &[u8]) -> Recorded {
        Recorded {
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
        }
    }

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

    /// The API keys the request carries, each once: the token of `Authorization: Bearer
    /// <key>` and the value of `api-key` (Azure's header).
    pub fn api_keys(&self) -> Vec<&str> {
        let mut keys = Vec::new();
        for (name, value) in &self.headers {
            let key = match name.as_str() {
                "authorization" => value
                    .split_once(' ')
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, token)| token.trim()),
                "api-key" => Some(value.as_str()),
                _ => None,
            };
            if let Some(key) = key.filter(|k| !keys.contains(k)) {
                keys.push(key);
            }
        }
        keys
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
        mode.check();
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
                    let listener = FakeListener(
                        tokio::net::TcpListener::from_std(listener)
                            .expect("fake provider: cannot use the listener"),
                    );
                    let app = Router::new()
                        .fallback(handle)
                        .with_state(state)
                        .into_make_service_with_connect_info::<ConnectionHandle>();
                    // Not a graceful shutdown: a slow, hanging or streaming answer must not
                    // hold up the end of a test. Dropping the runtime closes every connection.
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
        mode.check();
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

    /// How many recorded requests carried each API key (see [`Recorded::api_keys`]; a
    /// request carrying two different keys counts for both): how the load was split between
    /// deployments that share this fake.
    pub fn served_by_key(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for request in lock(&self.shared.requests).iter() {
            for key in request.api_keys() {
                *counts.entry(key.to_string()).or_insert(0) += 1;
            }
        }
        counts
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

/// The fake's accept loop: `tokio::net::TcpListener`, with each connection wrapped in an
/// [`AbortableStream`] whose switch the handler gets as `ConnectInfo`.
struct FakeListener(tokio::net::TcpListener);

/// The switch of one connection's [`AbortableStream`]: what lets an answer kill the
/// connection it would be written to.
#[derive(Debug, Clone, Default)]
struct ConnectionHandle {
    aborted: Arc<AtomicBool>,
}

impl ConnectionHandle {
    /// From now on the connection neither reads nor writes (so the answer in progress is
    /// never sent), and it is closed with a reset.
    fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
    }
}

/// A TCP connection that fails every read and write once its [`ConnectionHandle`] is
/// aborted. hyper then drops it, and the drop sends a reset instead of a clean close.
struct AbortableStream {
    stream: tokio::net::TcpStream,
    aborted: Arc<AtomicBool>,
}

impl AbortableStream {
    fn check(&self) -> io::Result<()> {
        if self.aborted.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the fake provider aborts this connection on demand",
            ));
        }
        Ok(())
    }
}

impl Drop for AbortableStream {
    fn drop(&mut self) {
        if self.aborted.load(Ordering::SeqCst) {
            // Nothing is left unsent (every write failed), so a zero linger loses nothing
            // and turns the close into a reset.
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for AbortableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for AbortableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl Listener for FakeListener {
    type Io = AbortableStream;
    /// axum hands the `Addr` to `ConnectInfo`: the handle stands in for the peer address,
    /// which no handler here needs.
    type Addr = ConnectionHandle;

    async fn accept(&mut self) -> (AbortableStream, ConnectionHandle) {
        loop {
            match self.0.accept().await {
                Ok((stream, _)) => {
                    let handle = ConnectionHandle::default();
                    let stream = AbortableStream {
                        stream,
                        aborted: handle.aborted.clone(),
                    };
                    return (stream, handle);
                }
                // A client that gave up before the accept, or no file descriptor left: wait
                // a little (so as not to spin) and go on serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<ConnectionHandle> {
        self.0.local_addr().map(|_| ConnectionHandle::default())
    }
}

impl Connected<IncomingStream<'_, FakeListener>> for ConnectionHandle {
    fn connect_info(stream: IncomingStream<'_, FakeListener>) -> ConnectionHandle {
        stream.remote_addr().clone()
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(connection): ConnectInfo<ConnectionHandle>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let recorded = Recorded::new(&parts, &body);
    lock(&shared.requests).push(recorded.clone());
    let n = shared.served.fetch_add(1, Ordering::Relaxed);
    let mode = lock(&shared.mode).clone().for_request(&recorded);
    let mut response = match &mode {
        Mode::Status(status) | Mode::StatusWithHeaders(status, _) => error_response(*status),
        Mode::Slow(delay) => {
            tokio::time::sleep(*delay).await;
            answer(&recorded, Shape::default())
        }
        Mode::StreamDelay(delay) => answer(
            &recorded,
            Shape {
                each_event: Some(*delay),
                ..Shape::default()
            },
        ),
        // `for_request` resolved `Rules`: this arm is never taken.
        Mode::Ok | Mode::OkWithHeaders(_) | Mode::Rules(_) => answer(&recorded, Shape::default()),
        Mode::EmptyStatus(status) => empty_response(*status),
        Mode::Accept(delay) => {
            tokio::time::sleep(*delay).await;
            text_response(200, "{}")
        }
        Mode::TextStatus(status, text) => text_response(*status, text),
        Mode::Reset => {
            connection.abort();
            // Never written: every write on the connection now fails.
            Response::new(Body::empty())
        }
        // Dropped with the connection when the client gives up, or with the fake's runtime.
        Mode::Hang => std::future::pending().await,
        Mode::SlowFirstEvent(delay) => {
            if wants_chat_stream(&recorded) {
                answer(
                    &recorded,
                    Shape {
                        first_event: Some(*delay),
                        ..Shape::default()
                    },
                )
            } else {
                tokio::time::sleep(*delay).await;
                answer(&recorded, Shape::default())
            }
        }
        Mode::CutStream {
            after_events,
            reset,
        } => answer(
            &recorded,
            Shape {
                cut: Some((*after_events, *reset)),
                ..Shape::default()
            },
        ),
        Mode::ContextWindow => {
            json_response(StatusCode::BAD_REQUEST, CONTEXT_WINDOW_ERROR.to_string())
        }
        Mode::EchoAuth(status) => echo_auth(*status, &recorded),
        Mode::Large(size) => answer(
            &recorded,
            Shape {
                large: Some(*size),
                ..Shape::default()
            },
        ),
    };
    if let Ok(id) = HeaderValue::from_str(&format!("req_fake{n:08}")) {
        response.headers_mut().insert("x-request-id", id);
    }
    if let Mode::StatusWithHeaders(_, extra) | Mode::OkWithHeaders(extra) = &mode {
        add_headers(&mut response, extra);
    }
    response
}

/// How [`answer`] shapes a successful answer; the default is the fixtures as they are.
#[derive(Debug, Clone, Copy, Default)]
struct Shape {
    /// Wait before each stream event.
    each_event: Option<Duration>,
    /// Wait before the first stream event only (the headers go out at once).
    first_event: Option<Duration>,
    /// Stop a stream after this many events; `true`: cut the connection instead of ending
    /// the body.
    cut: Option<(usize, bool)>,
    /// A chat completion's content is this many bytes of `x`.
    large: Option<usize>,
}

/// Whether the request asks for a streamed chat completion (what the stream modes change).
fn wants_chat_stream(request: &Recorded) -> bool {
    request.method == "POST"
        && request
            .path()
            .trim_end_matches('/')
            .ends_with("/chat/completions")
        && serde_json::from_slice::<Value>(&request.body)
            .ok()
            .and_then(|body| body.get("stream").and_then(Value::as_bool))
            .unwrap_or(false)
}

fn answer(request: &Recorded, shape: Shape) -> Response {
    let path = request.path().trim_end_matches('/');
    if request.method == "GET" && path.ends_with("/models") {
        return json_response(StatusCode::OK, MODELS.to_string());
    }
    // A stored response: this fake stores every one as resp_fake0001.
    if let Some((_, rest)) = path.split_once("/responses/") {
        let (id, items) = match rest.strip_suffix("/input_items") {
            Some(id) => (id, true),
            None => (rest, false),
        };
        if id != "resp_fake0001" {
            return openai_error(
                404,
                &format!("Response with id '{id}' not found."),
                "invalid_request_error",
            );
        }
        let body = match (request.method.as_str(), items) {
            ("GET", false) => responses_answer(&json!({})),
            ("GET", true) => {
                json!({"object": "list", "data": [{"type": "message", "id": "msg_in0001",
                "role": "user", "content": [{"type": "input_text", "text": "Say hello"}]}],
                "first_id": "msg_in0001", "last_id": "msg_in0001", "has_more": false})
            }
            ("DELETE", false) => json!({"id": id, "object": "response", "deleted": true}),
            _ => return invalid_url(request),
        };
        return json_response(StatusCode::OK, body.to_string());
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
        if !stream && calls_a_tool(&body, &request.body) {
            return json_response(StatusCode::OK, tool_call_completion(&body).to_string());
        }
        if stream {
            let include_usage = body
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let mut events = chat_stream_events(include_usage);
            if let Some(size) = shape.large {
                events = large_stream(events, size);
            }
            return sse_response(events, shape);
        }
        let completion = match shape.large {
            Some(size) => large_completion(size),
            None => CHAT_COMPLETION.to_string(),
        };
        return json_response(StatusCode::OK, completion);
    }
    if path.ends_with("/embeddings") {
        return json_response(StatusCode::OK, embeddings(&body).to_string());
    }
    if path.ends_with("/responses") {
        let response = responses_answer(&body);
        if stream {
            return sse_response(responses_events(response), shape);
        }
        return json_response(StatusCode::OK, response.to_string());
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

/// Put it in a request with tools (in a tool's description, say): the fake calls the first
/// tool (a whole answer, not a stream) until the conversation ends in a tool's result.
pub const CALL_TOOLS: &str = "fake-call-tools";

fn calls_a_tool(body: &Value, raw: &[u8]) -> bool {
    let marked = raw
        .windows(CALL_TOOLS.len())
        .any(|w| w == CALL_TOOLS.as_bytes());
    let answered = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .is_some_and(|m| m["role"] == "tool");
    marked && body["tools"].as_array().is_some_and(|t| !t.is_empty()) && !answered
}

/// A chat completion calling the request's first tool.
fn tool_call_completion(body: &Value) -> Value {
    json!({
        "id": "chatcmpl-fake-tools", "object": "chat.completion", "created": 1_741_476_542,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null,
            "tool_calls": [{"id": "call_fake0001", "type": "function", "function": {
                "name": body["tools"][0]["function"]["name"], "arguments": "{\"city\":\"Paris\"}"}}]}}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28},
    })
}

/// The text of the Responses API's answers.
pub const RESPONSES_TEXT: &str = "Hello from the Responses API.";

/// A Responses API answer, as OpenAI writes one: a text message, or a call of the first
/// function tool; `previous_response_id` and `store` echoed.
fn responses_answer(request: &Value) -> Value {
    let tool = request["tools"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["type"] == "function"))
        .and_then(|t| t["name"].as_str());
    let output = match tool {
        Some(name) => {
            json!({"type": "function_call", "id": "fc_fake0001", "call_id": "call_fake0001",
            "name": name, "arguments": "{\"city\":\"Paris\"}", "status": "completed"})
        }
        None => {
            json!({"type": "message", "id": "msg_fake0001", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": RESPONSES_TEXT, "annotations": []}]})
        }
    };
    json!({
        "id": "resp_fake0001", "object": "response", "created_at": 1_741_476_542,
        "status": "completed", "error": null, "incomplete_details": null,
        "instructions": request.get("instructions").cloned().unwrap_or(Value::Null),
        "model": "gpt-4o-mini-2024-07-18", "output": [output], "parallel_tool_calls": true,
        "previous_response_id": request.get("previous_response_id").cloned().unwrap_or(Value::Null),
        "store": request.get("store").cloned().unwrap_or(json!(true)),
        "temperature": 1.0, "text": {"format": {"type": "text"}}, "tool_choice": "auto",
        "tools": request.get("tools").cloned().unwrap_or(json!([])), "top_p": 1.0,
        "truncation": "disabled", "metadata": {},
        "usage": {"input_tokens": 9, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 6, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15},
    })
}

/// The Responses API's typed event sequence for an answer (text only), numbered.
fn responses_events(done: Value) -> Vec<String> {
    let mut open = done.clone();
    open["status"] = json!("in_progress");
    open["output"] = json!([]);
    open["usage"] = Value::Null;
    let item = done["output"][0].clone();
    let mut events = vec![
        json!({"type": "response.created", "response": open}),
        json!({"type": "response.in_progress", "response": open}),
    ];
    if item["type"] == "message" {
        let mut added = item.clone();
        added["status"] = json!("in_progress");
        added["content"] = json!([]);
        let at = json!({"item_id": item["id"], "output_index": 0, "content_index": 0});
        let with = |extra: Value| {
            let mut e = at.clone();
            if let (Some(e), Some(extra)) = (e.as_object_mut(), extra.as_object()) {
                e.extend(extra.clone());
            }
            e
        };
        events
            .push(json!({"type": "response.output_item.added", "output_index": 0, "item": added}));
        events.push(with(json!({"type": "response.content_part.added",
            "part": {"type": "output_text", "text": "", "annotations": []}})));
        let (a, b) = RESPONSES_TEXT.split_at(6);
        for piece in [a, b] {
            events.push(with(
                json!({"type": "response.output_text.delta", "delta": piece}),
            ));
        }
        events.push(with(
            json!({"type": "response.output_text.done", "text": RESPONSES_TEXT}),
        ));
        events.push(with(
            json!({"type": "response.content_part.done", "part": item["content"][0]}),
        ));
    }
    events.push(json!({"type": "response.output_item.done", "output_index": 0, "item": item}));
    events.push(json!({"type": "response.completed", "response": done}));
    events
        .into_iter()
        .enumerate()
        .map(|(n, mut e)| {
            e["sequence_number"] = json!(n);
            format!(
                "event: {}\ndata: {e}\n\n",
                e["type"].as_str().unwrap_or_default()
            )
        })
        .collect()
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

/// A deterministic embedding for a semantic cache's tests: each word (lowercase, letters
/// and digits) counts in one of 64 dimensions, so texts with the same words are identical,
/// texts sharing most words are close, and unrelated texts are far apart.
pub fn bag_of_words(text: &str) -> Vec<f64> {
    let mut v = vec![0.0; 64];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let h = word
            .to_lowercase()
            .bytes()
            .fold(0xcbf29ce484222325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
            });
        v[(h % 64) as usize] += 1.0;
    }
    v
}

/// One embedding per input string (the fixture's vector, with its index); for the model
/// `bag-of-words`, [`bag_of_words`] of each input.
fn embeddings(request: &Value) -> Value {
    if request.get("model").and_then(Value::as_str) == Some("bag-of-words") {
        let texts: Vec<String> = match request.get("input") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().unwrap_or_default().to_string())
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => vec![String::new()],
        };
        let data: Vec<Value> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": bag_of_words(t)}))
            .collect();
        return json!({"object": "list", "data": data, "model": "bag-of-words",
            "usage": {"prompt_tokens": 1, "total_tokens": 1}});
    }
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

/// The chat fixture with `size` bytes of `x` as the assistant content.
fn large_completion(size: usize) -> String {
    let mut completion: Value = serde_json::from_str(CHAT_COMPLETION).unwrap_or(Value::Null);
    if let Some(content) = completion.pointer_mut("/choices/0/message/content") {
        *content = Value::String("x".repeat(size));
    }
    completion.to_string()
}

/// The stream with its content replaced: the first non-empty content delta carries `size`
/// bytes of `x`, the later ones are left out.
fn large_stream(events: Vec<String>, size: usize) -> Vec<String> {
    let mut first = true;
    events
        .into_iter()
        .filter_map(|event| {
            let Some(mut chunk) = event
                .trim()
                .strip_prefix("data: ")
                .and_then(|data| serde_json::from_str::<Value>(data).ok())
            else {
                return Some(event); // [DONE]
            };
            let Some(content) = chunk
                .pointer_mut("/choices/0/delta/content")
                .filter(|c| c.as_str().is_some_and(|c| !c.is_empty()))
            else {
                return Some(event); // the role chunk, the finish and the usage chunks
            };
            if !std::mem::replace(&mut first, false) {
                return None;
            }
            *content = Value::String("x".repeat(size));
            Some(format!("data: {chunk}\n\n"))
        })
        .collect()
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
    json_response(status_code(status), body)
}

/// The status with no body at all.
fn empty_response(status: u16) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status_code(status);
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}

fn text_response(status: u16, text: &str) -> Response {
    let mut response = Response::new(Body::from(text.to_string()));
    *response.status_mut() = status_code(status);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// An invalid-key error quoting the credentials the request carried, verbatim.
fn echo_auth(status: u16, request: &Recorded) -> Response {
    let sent: Vec<String> = ["authorization", "api-key"]
        .into_iter()
        .filter_map(|name| request.header(name).map(|value| format!("{name}: {value}")))
        .collect();
    let sent = if sent.is_empty() {
        "(none)".to_string()
    } else {
        sent.join(", ")
    };
    json_response(
        status_code(status),
        json!({"error": {
            "message": format!("Incorrect API key provided: {sent}. You can find your API key at https://platform.openai.com/account/api-keys."),
            "type": "invalid_request_error",
            "param": null,
            "code": "invalid_api_key",
        }})
        .to_string(),
    )
}

/// Adds the mode's headers: each name given replaces the fake's own header of that name,
/// and a name given twice is sent twice. `Mode::check` let only valid ones through.
fn add_headers(response: &mut Response, extra: &[(String, String)]) {
    let extra: Vec<(HeaderName, HeaderValue)> = extra
        .iter()
        .filter_map(|(name, value)| {
            Some((
                HeaderName::from_bytes(name.as_bytes()).ok()?,
                HeaderValue::from_str(value).ok()?,
            ))
        })
        .collect();
    for (name, _) in &extra {
        response.headers_mut().remove(name);
    }
    for (name, value) in extra {
        response.headers_mut().append(name, value);
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
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
        status_code(status),
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

/// Each event is written on its own, as a real provider flushes them, paced and cut as
/// `shape` says.
fn sse_response(mut events: Vec<String>, shape: Shape) -> Response {
    let mut cut_connection = false;
    if let Some((after_events, reset)) = shape.cut {
        events.truncate(after_events);
        cut_connection = reset;
    }
    let Shape {
        each_event,
        first_event,
        ..
    } = shape;
    let events = futures_util::stream::iter(events.into_iter().enumerate()).then(
        move |(i, event)| async move {
            if let Some(delay) = first_event.filter(|_| i == 0) {
                tokio::time::sleep(delay).await;
            }
            if let Some(delay) = each_event {
                tokio::time::sleep(delay).await;
            }
            Ok::<_, io::Error>(Bytes::from(event))
        },
    );
    let body = if cut_connection {
        // A body that fails makes hyper drop the connection without the chunked terminator.
        // The pause first lets hyper flush the events before it: what it still holds when
        // the body fails is lost.
        let failure = futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the fake provider cuts this stream on demand",
            ))
        });
        Body::from_stream(events.chain(failure))
    } else {
        Body::from_stream(events)
    };
    let mut response = Response::new(body);
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

    fn chat(model: &str, stream: bool) -> Value {
        json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream})
    }

    /// A whole HTTP/1.1 request that asks the fake to close the connection after its answer.
    fn raw_request(path: &str, body: &Value, extra_headers: &str) -> String {
        let body = body.to_string();
        format!(
            "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n{extra_headers}\r\n{body}",
            body.len()
        )
    }

    /// Sends `request` on a new connection and reads until the connection ends or nothing
    /// comes for `wait`: what arrived, and the error that ended the reading, if any.
    fn raw_exchange(port: u16, request: &str, wait: Duration) -> (Vec<u8>, Option<io::Error>) {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(wait)).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return (got, None),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return (got, Some(e)),
            }
        }
    }

    fn raw_client() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    #[tokio::test]
    async fn rules_pick_the_mode_per_key_and_model() {
        let fake = FakeProvider::with_mode(Mode::Rules(vec![
            Rule::key("sk-a", Mode::Status(429)),
            Rule::model("big-model", Mode::ContextWindow),
            Rule::key("sk-c", Mode::Status(503)),
        ]));
        let body = chat("small-model", false);
        let a = Client::new(&fake.base_url()).with_key("sk-a");
        let b = Client::new(&fake.base_url()).with_key("sk-b");
        assert_eq!(a.post("/v1/chat/completions", &body).await.status, 429);
        assert_eq!(
            b.post("/v1/chat/completions", &body).await.status,
            200,
            "no rule: Ok"
        );
        let big = b
            .post("/v1/chat/completions", &chat("big-model", false))
            .await;
        assert_eq!(big.json()["error"]["code"], "context_length_exceeded");
        assert_eq!(
            a.post("/v1/chat/completions", &chat("big-model", false))
                .await
                .status,
            429,
            "the first matching rule wins"
        );
        let azure = b
            .post_raw(
                "/openai/deployments/d/chat/completions?api-version=2024-10-21",
                body.to_string().into_bytes(),
                &[("api-key", "sk-c")],
            )
            .await;
        assert_eq!(azure.status, 503, "api-key matches too");

        fake.set_mode(Mode::Rules(vec![
            Rule::key("sk-a", Mode::Ok),
            Rule::any(Mode::Status(500)),
        ]));
        assert_eq!(a.post("/v1/chat/completions", &body).await.status, 200);
        assert_eq!(b.post("/v1/chat/completions", &body).await.status, 500);
    }

    #[tokio::test]
    async fn counts_requests_per_key() {
        let fake = FakeProvider::start();
        let body = chat("m", false);
        for key in ["sk-a", "sk-a", "sk-b"] {
            let client = Client::new(&fake.base_url()).with_key(key);
            assert_eq!(client.post("/v1/chat/completions", &body).await.status, 200);
        }
        let anonymous = Client::new(&fake.base_url());
        let bytes = body.to_string().into_bytes();
        anonymous
            .post_raw(
                "/v1/chat/completions",
                bytes.clone(),
                &[("api-key", "az-c")],
            )
            .await;
        anonymous.post_raw("/v1/chat/completions", bytes, &[]).await;
        let expected: BTreeMap<String, usize> = [("az-c", 1), ("sk-a", 2), ("sk-b", 1)]
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect();
        assert_eq!(fake.served_by_key(), expected);
        assert_eq!(fake.requests()[0].api_keys(), vec!["sk-a"]);
    }

    #[tokio::test]
    async fn empty_and_text_statuses() {
        let fake = FakeProvider::with_mode(Mode::EmptyStatus(502));
        let client = Client::new(&fake.base_url());
        let reply = client.post("/v1/chat/completions", &chat("m", false)).await;
        assert_eq!(reply.status, 502);
        assert!(reply.body.is_empty());
        assert_eq!(reply.header("content-length"), Some("0"));

        fake.set_mode(Mode::TextStatus(503, "upstream overloaded".to_string()));
        let reply = client.post("/v1/chat/completions", &chat("m", false)).await;
        assert_eq!(reply.status, 503);
        assert_eq!(reply.text(), "upstream overloaded");
        assert!(reply
            .header("content-type")
            .unwrap()
            .starts_with("text/plain"));
    }

    #[tokio::test]
    async fn adds_headers_to_errors_and_answers() {
        let headers = vec![
            ("retry-after".to_string(), "7".to_string()),
            ("x-request-id".to_string(), "forged".to_string()),
            ("set-cookie".to_string(), "a=1".to_string()),
            ("set-cookie".to_string(), "b=2".to_string()),
        ];
        let fake = FakeProvider::with_mode(Mode::StatusWithHeaders(429, headers.clone()));
        let client = Client::new(&fake.base_url());
        let reply = client.post("/v1/chat/completions", &chat("m", false)).await;
        assert_eq!(reply.status, 429);
        assert_eq!(reply.json()["error"]["code"], "rate_limit_exceeded");
        assert_eq!(reply.header("retry-after"), Some("7"));
        assert_eq!(
            reply.header("x-request-id"),
            Some("forged"),
            "replaces the fake's own"
        );
        let cookies: Vec<_> = reply.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);

        fake.set_mode(Mode::OkWithHeaders(vec![(
            "x-switchyard-retry".to_string(),
            "1".to_string(),
        )]));
        let reply = client.post("/v1/chat/completions", &chat("m", false)).await;
        assert_eq!(
            reply.json()["choices"][0]["message"]["content"],
            CHAT_CONTENT
        );
        assert_eq!(reply.header("x-switchyard-retry"), Some("1"));
        let streamed = client
            .stream("/v1/chat/completions", &chat("m", true))
            .await;
        assert_eq!(streamed.content(), CHAT_CONTENT);
        assert_eq!(streamed.header("x-switchyard-retry"), Some("1"));
        assert!(
            streamed.header("x-request-id").is_some(),
            "the fake's own stay"
        );
    }

    #[test]
    fn refuses_invalid_headers_in_the_test() {
        let fake = FakeProvider::start();
        let bad = Mode::Rules(vec![Rule::any(Mode::OkWithHeaders(vec![(
            "bad name".to_string(),
            "v".to_string(),
        )]))]);
        assert!(std::panic::catch_unwind(|| fake.set_mode(bad)).is_err());
    }

    #[tokio::test]
    async fn resets_without_a_byte() {
        let fake = FakeProvider::with_mode(Mode::Reset);
        let request = raw_request("/v1/chat/completions", &chat("m", false), "");
        let (got, error) = raw_exchange(fake.port(), &request, Duration::from_secs(5));
        assert!(
            got.is_empty(),
            "no answer at all, got: {}",
            String::from_utf8_lossy(&got)
        );
        let kind = error.map(|e| e.kind());
        assert_eq!(
            kind,
            Some(io::ErrorKind::ConnectionReset),
            "a reset ends the connection (not a clean close, not the read timeout)"
        );
        assert_eq!(fake.count(), 1, "the request was read and recorded");

        let error = raw_client()
            .post(fake.url("/v1/chat/completions"))
            .json(&chat("m", false))
            .send()
            .await
            .expect_err("an HTTP client sees a connection error");
        assert!(!error.is_timeout());
        fake.set_mode(Mode::Ok);
        let client = Client::new(&fake.base_url());
        assert_eq!(
            client
                .post("/v1/chat/completions", &chat("m", false))
                .await
                .status,
            200
        );
    }

    #[tokio::test]
    async fn hangs_without_blocking_others_or_the_shutdown() {
        use std::io::{Read as _, Write as _};
        let fake = FakeProvider::with_mode(Mode::Rules(vec![Rule::key("sk-hang", Mode::Hang)]));
        let mut hung = std::net::TcpStream::connect(("127.0.0.1", fake.port())).unwrap();
        let request = raw_request(
            "/v1/chat/completions",
            &chat("m", false),
            "authorization: Bearer sk-hang\r\n",
        );
        hung.write_all(request.as_bytes()).unwrap();
        let started = std::time::Instant::now();
        while fake.count() == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the request never arrived"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        let other = Client::new(&fake.base_url()).with_key("sk-other");
        assert_eq!(
            other
                .post("/v1/chat/completions", &chat("m", false))
                .await
                .status,
            200
        );

        hung.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 64];
        let error = hung.read(&mut buf).expect_err("no answer, no close");
        assert!(
            matches!(
                error.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{error}"
        );

        let dropping = std::time::Instant::now();
        drop(fake);
        assert!(
            dropping.elapsed() < Duration::from_secs(2),
            "the hang held up the drop"
        );
        hung.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let closed = hung.read(&mut buf);
        assert!(
            matches!(closed, Ok(0))
                || closed.is_err_and(|e| e.kind() == io::ErrorKind::ConnectionReset),
            "the drop closes the hung connection"
        );
    }

    #[tokio::test]
    async fn slows_the_first_event_only() {
        let delay = Duration::from_millis(400);
        let fake = FakeProvider::with_mode(Mode::SlowFirstEvent(delay));
        let started = std::time::Instant::now();
        let response = raw_client()
            .post(fake.url("/v1/chat/completions"))
            .json(&chat("m", true))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            started.elapsed() < delay / 2,
            "headers at once: {:?}",
            started.elapsed()
        );
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let mut body = response.bytes_stream();
        let mut times = Vec::new();
        let mut text = Vec::new();
        while let Some(piece) = body.next().await {
            times.push(started.elapsed());
            text.extend_from_slice(&piece.unwrap());
        }
        assert!(times[0] >= delay, "the first event waits: {:?}", times[0]);
        let last = times.last().copied().unwrap();
        assert!(last - times[0] < delay / 2, "the rest does not: {times:?}");
        let data = sse_data(&String::from_utf8_lossy(&text));
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"));

        let client = Client::new(&fake.base_url());
        let started = std::time::Instant::now();
        let whole = client.post("/v1/chat/completions", &chat("m", false)).await;
        assert_eq!(
            whole.json()["choices"][0]["message"]["content"],
            CHAT_CONTENT
        );
        assert!(
            started.elapsed() >= delay,
            "a whole answer waits before answering"
        );
    }

    #[tokio::test]
    async fn cuts_streams_cleanly_or_not() {
        let events = chat_stream_events(false);
        let fake = FakeProvider::with_mode(Mode::CutStream {
            after_events: 3,
            reset: false,
        });
        let client = Client::new(&fake.base_url());
        let reply = client
            .stream("/v1/chat/completions", &chat("m", true))
            .await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.text(),
            events[..3].concat(),
            "three events, no [DONE]"
        );
        let request = raw_request("/v1/chat/completions", &chat("m", true), "");
        let (got, error) = raw_exchange(fake.port(), &request, Duration::from_secs(5));
        assert!(error.is_none(), "{error:?}");
        assert!(
            got.ends_with(b"\r\n0\r\n\r\n"),
            "the chunked terminator ends the body"
        );
        let whole = client.post("/v1/chat/completions", &chat("m", false)).await;
        assert_eq!(whole.status, 200, "a whole answer is not cut");

        fake.set_mode(Mode::CutStream {
            after_events: 2,
            reset: true,
        });
        let (got, _) = raw_exchange(fake.port(), &request, Duration::from_secs(5));
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(
            text.contains(events[1].as_str()),
            "the events before the cut arrive: {text}"
        );
        assert!(!text.contains(events[2].as_str()), "{text}");
        assert!(
            !text.ends_with("\r\n0\r\n\r\n"),
            "no chunked terminator: {text}"
        );

        let response = raw_client()
            .post(fake.url("/v1/chat/completions"))
            .json(&chat("m", true))
            .send()
            .await
            .unwrap();
        let mut body = response.bytes_stream();
        let mut broke = false;
        while let Some(piece) = body.next().await {
            broke |= piece.is_err();
        }
        assert!(broke, "an HTTP client sees the body break");
    }

    #[tokio::test]
    async fn context_window_and_echoed_keys() {
        let fake = FakeProvider::with_mode(Mode::ContextWindow);
        let client = Client::new(&fake.base_url()).with_key("sk-secret-1");
        let reply = client.post("/v1/chat/completions", &chat("m", false)).await;
        assert_eq!(reply.status, 400);
        assert_eq!(
            reply.json(),
            serde_json::from_str::<Value>(CONTEXT_WINDOW_ERROR).unwrap()
        );
        assert_eq!(reply.json()["error"]["code"], "context_length_exceeded");

        fake.set_mode(Mode::EchoAuth(401));
        let reply = client
            .post_raw(
                "/v1/chat/completions",
                chat("m", false).to_string().into_bytes(),
                &[("api-key", "az-secret-2")],
            )
            .await;
        assert_eq!(reply.status, 401);
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            message.starts_with("Incorrect API key provided: "),
            "{message}"
        );
        assert!(message.contains("Bearer sk-secret-1"), "{message}");
        assert!(message.contains("az-secret-2"), "{message}");
    }

    #[tokio::test]
    async fn large_answers() {
        let fake = FakeProvider::with_mode(Mode::Large(100_000));
        let client = Client::new(&fake.base_url());
        let reply = client.post("/v1/chat/completions", &chat("m", false)).await;
        assert_eq!(reply.status, 200);
        let body = reply.json();
        let content = body["choices"][0]["message"]["content"].as_str().unwrap();
        assert_eq!(content.len(), 100_000);
        assert!(content.bytes().all(|b| b == b'x'));
        assert_eq!(
            body["model"], PROVIDER_CHAT_MODEL,
            "the fixture's shape otherwise"
        );
        let streamed = client
            .stream("/v1/chat/completions", &chat("m", true))
            .await;
        assert_eq!(streamed.content(), "x".repeat(100_000));
        assert_eq!(streamed.data().last().map(String::as_str), Some("[DONE]"));
    }
}
