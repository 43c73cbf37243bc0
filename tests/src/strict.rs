//! Fakes of the providers with their own APIs (Anthropic, Gemini, Vertex AI, Bedrock,
//! Cohere, Ollama, ...), as strict as the real ones: each checks what its API reference
//! requires (path, version and auth headers, a SigV4 signature recomputed, the body's known
//! fields) and answers from the golden fixtures under tests/fixtures/<provider>/.
//!
//! A provider's fake is a [`Handler`]: it gets the request and returns the [`FakeReply`], or
//! why the request breaks the provider's rules. A broken rule is recorded (a test asserts
//! [`StrictFake::violations`] is empty) and answered 400 with the reason, as the real API
//! would refuse it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use futures_util::StreamExt as _;

use crate::fake::Recorded;

/// What a fake answers.
#[derive(Debug, Clone)]
pub enum FakeReply {
    /// A whole body.
    Body {
        status: u16,
        content_type: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A stream: each piece written and flushed on its own, `pause` apart; with `cut` the
    /// connection is dropped after the pieces instead of ending the body.
    Stream {
        content_type: String,
        pieces: Vec<Vec<u8>>,
        pause: Option<Duration>,
        cut: bool,
    },
}

impl FakeReply {
    /// A JSON body with a status.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> FakeReply {
        FakeReply::Body {
            status,
            content_type: "application/json".into(),
            headers: vec![],
            body: body.into(),
        }
    }

    /// A stream of pieces, as they are.
    pub fn stream(content_type: &str, pieces: Vec<Vec<u8>>) -> FakeReply {
        FakeReply::Stream {
            content_type: content_type.into(),
            pieces,
            pause: None,
            cut: false,
        }
    }

    /// Adds a response header (a whole body only).
    pub fn with_header(mut self, name: &str, value: &str) -> FakeReply {
        if let FakeReply::Body { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }
}

/// A provider's rules and answers: Ok(reply), or Err(why the request breaks its rules).
pub type Handler = Arc<dyn Fn(&Recorded) -> Result<FakeReply, String> + Send + Sync>;

struct Shared {
    handler: Handler,
    requests: Mutex<Vec<Recorded>>,
    violations: Mutex<Vec<String>>,
}

pub struct StrictFake {
    name: String,
    port: u16,
    shared: Arc<Shared>,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StrictFake {
    /// A fake named for its provider (in messages), on a free port of 127.0.0.1.
    pub fn start(name: &str, handler: Handler) -> StrictFake {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("strict fake: bind");
        listener
            .set_nonblocking(true)
            .expect("strict fake: non-blocking");
        let port = listener.local_addr().expect("bound").port();
        let shared = Arc::new(Shared {
            handler,
            requests: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        let label = name.to_string();
        let thread = std::thread::Builder::new()
            .name(format!("fake-{name}-{port}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("strict fake: runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                    let app = Router::new().fallback(handle).with_state(state);
                    tokio::select! {
                        result = axum::serve(listener, app) => {
                            if let Err(e) = result {
                                eprintln!("fake {label} on port {port} failed: {e}");
                            }
                        }
                        _ = stop_rx => {}
                    }
                });
            })
            .expect("strict fake: thread");
        StrictFake {
            name: name.to_string(),
            port,
            shared,
            stop: Mutex::new(Some(stop_tx)),
            thread: Mutex::new(Some(thread)),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port><path>`
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.requests).clone()
    }

    /// The requests whose body contains `marker`.
    pub fn find(&self, marker: &str) -> Vec<Recorded> {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.body_text().contains(marker))
            .cloned()
            .collect()
    }

    /// The one request carrying `marker`.
    pub fn only(&self, marker: &str) -> Recorded {
        let mut found = self.find(marker);
        assert_eq!(
            found.len(),
            1,
            "expected the {} fake to receive exactly one request carrying {marker:?}",
            self.name
        );
        found.remove(0)
    }

    /// Every rule a request broke, with the request's path.
    pub fn violations(&self) -> Vec<String> {
        lock(&self.shared.violations).clone()
    }

    /// Panics with the broken rules, if any.
    pub fn assert_no_violations(&self) {
        let v = self.violations();
        assert!(
            v.is_empty(),
            "the {} fake was sent requests its API refuses:\n{}",
            self.name,
            v.join("\n")
        );
    }
}

impl Drop for StrictFake {
    fn drop(&mut self) {
        if let Some(stop) = lock(&self.stop).take() {
            let _ = stop.send(());
        }
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let recorded = Recorded::new(&parts, &body);
    lock(&shared.requests).push(recorded.clone());
    match (shared.handler)(&recorded) {
        Ok(reply) => respond(reply),
        Err(why) => {
            lock(&shared.violations).push(format!("{} {}: {why}", recorded.method, recorded.uri));
            respond(FakeReply::json(
                400,
                serde_json::json!({"error": {"message": format!("strict fake: {why}")}})
                    .to_string(),
            ))
        }
    }
}

fn respond(reply: FakeReply) -> Response {
    match reply {
        FakeReply::Body {
            status,
            content_type,
            headers,
            body,
        } => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            set(&mut response, "content-type", &content_type);
            for (name, value) in headers {
                set(&mut response, &name, &value);
            }
            response
        }
        FakeReply::Stream {
            content_type,
            pieces,
            pause,
            cut,
        } => {
            let pieces = futures_util::stream::iter(pieces).then(move |piece| async move {
                if let Some(pause) = pause {
                    tokio::time::sleep(pause).await;
                }
                Ok::<_, std::io::Error>(Bytes::from(piece))
            });
            let body = if cut {
                let failure = futures_util::stream::once(async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "the fake cuts this stream on demand",
                    ))
                });
                Body::from_stream(pieces.chain(failure))
            } else {
                Body::from_stream(pieces)
            };
            let mut response = Response::new(body);
            set(&mut response, "content-type", &content_type);
            response
        }
    }
}

fn set(response: &mut Response, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
        response.headers_mut().insert(n, v);
    }
}

/// The golden fixture file `tests/fixtures/<provider>/<case>/<file>`, read now.
pub fn fixture(provider: &str, case: &str, file: &str) -> Vec<u8> {
    let path = crate::artefacts::repo_root()
        .join("tests/fixtures")
        .join(provider)
        .join(case)
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}
