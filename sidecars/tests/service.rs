//! The sidecar service over real HTTP on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt as _;
use serde_json::{json, Value};
use switchyard_sidecar::service::{self, AppState};
use tokio::sync::oneshot;

struct Server {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start() -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(service::serve(
            listener,
            AppState::new(Default::default()).unwrap(),
            async {
                let _ = stopped.await;
            },
        ));
        Server {
            base,
            stop: Some(stop),
            task,
        }
    }

    async fn post(&self, path: &str, body: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    async fn shutdown(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

/// The `data:` payloads of an SSE body, in order.
fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").expect(e).to_string())
        .collect()
}

#[tokio::test]
async fn readiness_is_shaped_like_litellm() {
    let server = Server::start().await;
    let resp = reqwest::get(format!("{}/health/readiness", server.base))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["db"], "Not connected");
    assert_eq!(body["cache"], Value::Null);
    assert_eq!(body["litellm_version"], Value::Null);
    assert_eq!(body["switchyard_version"], env!("CARGO_PKG_VERSION"));
    let updated = body["last_updated"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(updated).is_ok(), "{updated}");
    server.shutdown().await;
}

#[tokio::test]
async fn internal_health() {
    let server = Server::start().await;
    let resp = reqwest::get(format!("{}/internal/v1/health", server.base))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    server.shutdown().await;
}

#[tokio::test]
async fn demo_chat_non_streaming() {
    let server = Server::start().await;
    let resp = server
        .post(
            "/demo/v1/chat/completions",
            r#"{"model": "my-demo", "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "Hello there"}]}"#,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "my-demo");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(body["created"].is_u64());
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["message"]["role"], "assistant");
    let content = choice["message"]["content"].as_str().unwrap();
    assert!(content.contains("demo model"), "{content}");
    assert!(content.contains("no LLM was called"), "{content}");
    assert!(content.ends_with("You said: Hello there"), "{content}");
    let words = content.split_whitespace().count() as u64;
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": words, "total_tokens": 4 + words})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn demo_chat_reads_content_parts() {
    let server = Server::start().await;
    let resp = server
        .post(
            "/demo/v1/chat/completions",
            r#"{"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "parts work"}]}]}"#,
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.ends_with("You said: parts work"), "{content}");
    server.shutdown().await;
}

#[tokio::test]
async fn demo_chat_streaming_with_usage() {
    let server = Server::start().await;
    let resp = server
        .post(
            "/demo/v1/chat/completions",
            r#"{"model": "my-demo", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": "stream please"}]}"#,
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    // Tokens arrive over time, not in one piece.
    let mut pieces = 0;
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(piece) = stream.next().await {
        body.extend_from_slice(&piece.unwrap());
        pieces += 1;
    }
    assert!(pieces > 3, "the stream came in {pieces} pieces");

    let events = sse_data(std::str::from_utf8(&body).unwrap());
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "my-demo");
        assert_eq!(chunk["id"], chunks[0]["id"]);
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");

    // Then the tokens, the finish chunk, the usage chunk.
    let n = chunks.len();
    let usage = &chunks[n - 1];
    assert_eq!(usage["choices"], json!([]));
    let finish = &chunks[n - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["usage"], Value::Null);
    let tokens = &chunks[1..n - 2];
    assert!(tokens.len() > 3);
    let text: String = tokens
        .iter()
        .map(|c| {
            assert_eq!(c["choices"][0]["finish_reason"], Value::Null);
            c["choices"][0]["delta"]["content"].as_str().unwrap()
        })
        .collect();
    assert!(text.ends_with("You said: stream please"), "{text}");
    let words = text.split_whitespace().count() as u64;
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": words, "total_tokens": 2 + words})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn demo_chat_streaming_without_usage() {
    let server = Server::start().await;
    let resp = server
        .post(
            "/demo/v1/chat/completions",
            r#"{"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}"#,
        )
        .await;
    let events = sse_data(&resp.text().await.unwrap());
    assert_eq!(events.last().unwrap(), "[DONE]");
    let last: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert!(events.iter().all(|e| !e.contains("\"usage\"")));
    server.shutdown().await;
}

#[tokio::test]
async fn demo_completions() {
    let server = Server::start().await;
    let resp = server
        .post(
            "/demo/v1/completions",
            r#"{"model": "text-demo", "prompt": "Say this"}"#,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["model"], "text-demo");
    let text = body["choices"][0]["text"].as_str().unwrap();
    assert!(text.ends_with("You said: Say this"), "{text}");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 2);

    // Several prompts: one choice each.
    let resp = server
        .post(
            "/demo/v1/completions",
            r#"{"model": "m", "prompt": ["a", "b"]}"#,
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"].as_array().unwrap().len(), 2);
    assert_eq!(body["choices"][1]["index"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn demo_completions_streaming() {
    let server = Server::start().await;
    let resp = server
        .post(
            "/demo/v1/completions",
            r#"{"model": "m", "prompt": "go", "stream": true, "stream_options": {"include_usage": true}}"#,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let events = sse_data(&resp.text().await.unwrap());
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let n = chunks.len();
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    assert_eq!(chunks[n - 1]["choices"], json!([]));
    assert_eq!(chunks[n - 1]["usage"]["prompt_tokens"], 1);
    assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], "stop");
    let text: String = chunks[..n - 2]
        .iter()
        .map(|c| c["choices"][0]["text"].as_str().unwrap())
        .collect();
    assert!(text.ends_with("You said: go"), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn demo_embeddings() {
    let server = Server::start().await;
    let resp = server
        .post(
            "/demo/v1/embeddings",
            r#"{"model": "embed-demo", "input": ["first text", "second"]}"#,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "embed-demo");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 3, "total_tokens": 3})
    );
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["object"], "embedding");
    let first = data[0]["embedding"].as_array().unwrap();
    assert_eq!(first.len(), 8);
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);

    // Deterministic: the same input gives the same vector, whether alone or in a list.
    let resp = server
        .post(
            "/demo/v1/embeddings",
            r#"{"model": "embed-demo", "input": "first text"}"#,
        )
        .await;
    let single: Value = resp.json().await.unwrap();
    assert_eq!(single["data"][0]["embedding"], data[0]["embedding"]);

    // base64, as the openai SDK asks by default: little-endian f32s.
    let resp = server
        .post(
            "/demo/v1/embeddings",
            r#"{"model": "embed-demo", "input": "first text", "encoding_format": "base64"}"#,
        )
        .await;
    let b64: Value = resp.json().await.unwrap();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let floats: Vec<f32> = bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let expected: Vec<f32> = first.iter().map(|v| v.as_f64().unwrap() as f32).collect();
    assert_eq!(floats, expected);
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_json_is_an_openai_error() {
    let server = Server::start().await;
    for path in [
        "/demo/v1/chat/completions",
        "/demo/v1/completions",
        "/demo/v1/embeddings",
    ] {
        let resp = server.post(path, r#"{"model": "m", "messages": ["#).await;
        assert_eq!(resp.status(), 400, "{path}");
        let body: Value = resp.json().await.unwrap();
        let error = &body["error"];
        assert!(
            error["message"].as_str().unwrap().contains("JSON"),
            "{body}"
        );
        assert_eq!(error["type"], "invalid_request_error");
        assert_eq!(error["param"], Value::Null);
        assert_eq!(error["code"], "400");
    }
    // Valid JSON, wrong shape.
    let resp = server
        .post("/demo/v1/chat/completions", r#"{"model": "m"}"#)
        .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("messages"));
    server.shutdown().await;
}
