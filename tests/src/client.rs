//! A small HTTP client for the tests, and helpers for what they check.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// Long enough for every timeout under test, short enough that a hang fails the test.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends requests to one base URL, with an optional key as `Authorization: Bearer`.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

/// A whole answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A streamed answer: the body as it arrived, each piece with the time since the request.
#[derive(Debug, Clone)]
pub struct StreamReply {
    pub status: u16,
    pub headers: HeaderMap,
    pub chunks: Vec<(Duration, Vec<u8>)>,
}

impl Client {
    pub fn new(base_url: &str) -> Client {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            // Tests talk to 127.0.0.1 only; a proxy from the environment must not interfere.
            .no_proxy()
            .build()
            .expect("cannot build the HTTP client");
        Client {
            http,
            base: base_url.trim_end_matches('/').to_string(),
            key: None,
        }
    }

    /// Sends `Authorization: Bearer <key>` with every request.
    pub fn with_key(mut self, key: &str) -> Client {
        self.key = Some(key.to_string());
        self
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[], None).await
    }

    /// A new virtual key from `/key/generate` (this client carrying the master key).
    pub async fn new_key(&self, body: &Value) -> String {
        let reply = self.post("/key/generate", body).await;
        let key = reply.expect_json(200)["key"]
            .as_str()
            .expect("/key/generate answers the key")
            .to_string();
        assert!(key.starts_with("sk-"), "{key}");
        key
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).expect("a Value serialises");
        self.send(
            "POST",
            path,
            &[("content-type", "application/json")],
            Some(bytes),
        )
        .await
    }

    /// POST raw bytes with `content-type: application/json` and extra headers.
    pub async fn post_raw(&self, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Reply {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.send("POST", path, &all, Some(body)).await
    }

    /// Any request. Headers are added after the key's `Authorization`, so they can add
    /// other auth headers (`api-key`, `x-api-key`).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let response = self.request(method, path, headers, body).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: reading the answer failed: {e}"))
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// POST a JSON body and keep the answer's pieces as they arrive.
    pub async fn stream(&self, path: &str, body: &Value) -> StreamReply {
        match self.stream_result(path, body).await {
            (reply, None) => reply,
            (_, Some(e)) => panic!("POST {path}: the stream broke: {e}"),
        }
    }

    /// As [`Client::stream`], but a broken stream is returned (with what arrived before the
    /// break and the error's text) instead of failing the test.
    pub async fn stream_result(&self, path: &str, body: &Value) -> (StreamReply, Option<String>) {
        let bytes = serde_json::to_vec(body).expect("a Value serialises");
        let started = Instant::now();
        let response = self
            .request(
                "POST",
                path,
                &[("content-type", "application/json")],
                Some(bytes),
            )
            .await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut chunks = Vec::new();
        let mut broke = None;
        let mut body = response.bytes_stream();
        while let Some(piece) = body.next().await {
            match piece {
                Ok(piece) => chunks.push((started.elapsed(), piece.to_vec())),
                Err(e) => {
                    broke = Some(e.to_string());
                    break;
                }
            }
        }
        (
            StreamReply {
                status,
                headers,
                chunks,
            },
            broke,
        )
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a valid method");
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(key) = &self.key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {}: no answer: {e}", self.url(path)))
    }
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with status and body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "expected a JSON answer, got status {} and ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Panics with the body unless the status is `status`; returns the body as JSON.
    pub fn expect_json(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "expected status {status}, got {} with body: {}",
            self.status,
            self.text()
        );
        self.json()
    }
}

impl StreamReply {
    pub fn text(&self) -> String {
        let bytes: Vec<u8> = self.chunks.iter().flat_map(|(_, c)| c.clone()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The `data:` payloads in order, `[DONE]` included.
    pub fn data(&self) -> Vec<String> {
        sse_data(&self.text())
    }

    /// Every data payload but `[DONE]`, as JSON; panics on one that is not JSON.
    pub fn json_chunks(&self) -> Vec<Value> {
        self.data()
            .iter()
            .filter(|d| d.as_str() != "[DONE]")
            .map(|d| {
                serde_json::from_str(d).unwrap_or_else(|e| {
                    panic!(
                        "a stream event is not JSON ({e}): {d}\nwhole stream:\n{}",
                        self.text()
                    )
                })
            })
            .collect()
    }

    /// The assistant text: the chat deltas (or legacy completion texts) joined.
    pub fn content(&self) -> String {
        self.json_chunks()
            .iter()
            .filter_map(|c| {
                let choice = &c["choices"][0];
                choice["delta"]["content"]
                    .as_str()
                    .or_else(|| choice["text"].as_str())
                    .map(str::to_string)
            })
            .collect()
    }

    /// The OpenAI error event a failed stream ends with: its code and message. Panics when
    /// the stream ends otherwise, or says `[DONE]`.
    pub fn final_error(&self) -> (String, String) {
        let data = self.data();
        assert!(
            !data.iter().any(|d| d == "[DONE]"),
            "a failed stream must not end with [DONE]: {data:?}"
        );
        let last: Value = data
            .last()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        let error = &last["error"];
        let message = error["message"]
            .as_str()
            .unwrap_or_else(|| panic!("the stream does not end with an error event: {data:?}"));
        let code = match &error["code"] {
            Value::String(c) => c.clone(),
            other => other.to_string(),
        };
        (code, message.to_string())
    }

    /// The usage of the chunk that carries one, if any.
    pub fn usage(&self) -> Option<Value> {
        self.json_chunks()
            .into_iter()
            .find_map(|c| c.get("usage").filter(|u| !u.is_null()).cloned())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The `data:` payloads of an SSE body, in order (comments and other fields ignored; a
/// multi-line data field is joined with `\n`, as the SSE spec says).
pub fn sse_data(body: &str) -> Vec<String> {
    let body = body.replace("\r\n", "\n");
    body.split("\n\n")
        .filter_map(|event| {
            let lines: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|l| l.strip_prefix(' ').unwrap_or(l))
                .collect();
            (!lines.is_empty()).then(|| lines.join("\n"))
        })
        .collect()
}

/// Checks an OpenAI-shaped error: this status, and a body
/// `{"error": {"message": <non-empty string>, "type": <string>, "param": <present>, "code": "<status>"}}`.
/// Returns the message.
pub fn assert_openai_error(reply: &Reply, status: u16) -> String {
    let body = reply.expect_json(status);
    let error = body
        .get("error")
        .unwrap_or_else(|| panic!("no \"error\" object in: {body}"));
    let message = error["message"]
        .as_str()
        .unwrap_or_else(|| panic!("error.message is not a string in: {body}"));
    assert!(!message.is_empty(), "empty error.message in: {body}");
    assert!(
        error["type"].is_string(),
        "error.type is not a string in: {body}"
    );
    assert!(
        error.get("param").is_some(),
        "error.param is missing (null is fine) in: {body}"
    );
    assert_eq!(
        error["code"],
        Value::String(status.to_string()),
        "error.code must be the status as a string in: {body}"
    );
    message.to_string()
}

/// A string unique to this call, to put in a request body and find the request again on a
/// fake provider that parallel tests share.
pub fn marker(label: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{label}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sse() {
        let body = "data: {\"a\":1}\n\n: comment\n\nevent: x\r\ndata: two\r\ndata: lines\r\n\r\ndata:[DONE]\n\n";
        assert_eq!(sse_data(body), vec!["{\"a\":1}", "two\nlines", "[DONE]"]);
    }

    #[test]
    fn markers_differ() {
        assert_ne!(marker("x"), marker("x"));
    }

    #[test]
    fn checks_error_shape() {
        let reply = Reply {
            status: 400,
            headers: HeaderMap::new(),
            body: br#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":"400"}}"#.to_vec(),
        };
        assert_eq!(assert_openai_error(&reply, 400), "bad");
        let wrong_code = Reply {
            body: br#"{"error":{"message":"bad","type":"x","param":null,"code":400}}"#.to_vec(),
            ..reply
        };
        assert!(std::panic::catch_unwind(|| assert_openai_error(&wrong_code, 400)).is_err());
    }
}
