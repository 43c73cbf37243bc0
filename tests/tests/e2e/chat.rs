//! The OpenAI endpoints against an OpenAI deployment: chat (whole and streamed), embeddings,
//! legacy completions, the model list and the health endpoints.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};
use switchyard_tests::fake::{CHAT_CONTENT, PROVIDER_CHAT_MODEL};
use switchyard_tests::{marker, shared, Client, FakeProvider, Mode, Recorded, Switchyard};

use crate::common::{chat, chat_stream, openai_on, yaml, FAKE_KEY};

/// Pause before each event of the slow stream: long enough to tell streaming from buffering.
const STREAM_DELAY: Duration = Duration::from_millis(150);

struct Stack {
    sy: Switchyard,
    fake: FakeProvider,
    slow: FakeProvider,
}

static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();

fn stack() -> &'static Stack {
    shared(&STACK, || {
        let fake = FakeProvider::start();
        let slow = FakeProvider::with_mode(Mode::StreamDelay(STREAM_DELAY));
        let config = json!({
            "model_list": [
                openai_on("chat-model", "gpt-4o-mini", &fake),
                openai_on("embed-model", "text-embedding-3-small", &fake),
                openai_on("instruct-model", "gpt-3.5-turbo-instruct", &fake),
                openai_on("slow-stream-model", "gpt-4o-mini", &slow),
            ],
        });
        let sy = Switchyard::start_with_env(&yaml(&config), &[("FAKE_KEY", FAKE_KEY)]);
        Stack { sy, fake, slow }
    })
}

/// What every request to an OpenAI deployment must look like upstream.
fn assert_openai_upstream(got: &Recorded, path: &str, provider_model: &str) {
    assert_eq!(got.method, "POST");
    assert_eq!(got.uri, path, "the provider got the wrong path");
    assert_eq!(
        got.header("authorization"),
        Some(format!("Bearer {FAKE_KEY}").as_str()),
        "the provider must get the deployment's key"
    );
    assert_eq!(
        got.headers_starting_with("x-switchyard"),
        Vec::<&str>::new(),
        "internal headers leaked to the provider"
    );
    assert_eq!(
        got.json()["model"],
        provider_model,
        "the provider's own model name"
    );
}

async fn chat_non_stream(path: &str) {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("chat");
    let mut body = chat("chat-model", &m);
    body["temperature"] = json!(0.25);
    body["max_tokens"] = json!(50);
    body["user"] = json!("user-42");
    body["seed"] = json!(7);
    let reply = Client::new(&s.sy.base_url()).post(path, &body).await;

    let answer = reply.expect_json(200);
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(
        answer["model"], "chat-model",
        "the model the client asked for"
    );
    assert_eq!(answer["choices"][0]["message"]["content"], CHAT_CONTENT);
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(answer["usage"]["total_tokens"], 22);

    let got = s.fake.only(&m);
    assert_openai_upstream(&got, "/v1/chat/completions", "gpt-4o-mini");
    let sent = got.json();
    for field in ["messages", "temperature", "max_tokens", "user", "seed"] {
        assert_eq!(
            sent[field], body[field],
            "the client's {field} must reach the provider"
        );
    }
    assert_ne!(sent["stream"], json!(true));
}

#[tokio::test]
async fn chat_completion_v1() {
    chat_non_stream("/v1/chat/completions").await;
}

#[tokio::test]
async fn chat_completion_without_v1_prefix() {
    chat_non_stream("/chat/completions").await;
}

async fn chat_streamed(include_usage: bool) {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("stream");
    let body = chat_stream("chat-model", &m, include_usage);
    let reply = Client::new(&s.sy.base_url())
        .stream("/v1/chat/completions", &body)
        .await;

    assert_eq!(reply.status, 200, "body: {}", reply.text());
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/event-stream")),
        "content-type: {:?}",
        reply.header("content-type")
    );
    let data = reply.data();
    assert_eq!(
        data.last().map(String::as_str),
        Some("[DONE]"),
        "stream:\n{}",
        reply.text()
    );
    let chunks = reply.json_chunks();
    assert!(chunks.len() >= 5, "several chunks:\n{}", reply.text());
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk", "chunk: {chunk}");
        assert_eq!(
            chunk["model"], "chat-model",
            "every chunk names the requested model: {chunk}"
        );
    }
    assert_eq!(reply.content(), CHAT_CONTENT);
    assert!(!reply.text().contains(PROVIDER_CHAT_MODEL));

    let got = s.fake.only(&m);
    assert_openai_upstream(&got, "/v1/chat/completions", "gpt-4o-mini");
    assert_eq!(got.json()["stream"], true);
    if include_usage {
        assert_eq!(got.json()["stream_options"]["include_usage"], true);
        let usage = reply
            .usage()
            .expect("a usage chunk when include_usage is set");
        assert_eq!(usage["total_tokens"], 22);
        assert_eq!(usage["prompt_tokens"], 13);
        let last = chunks.last().unwrap();
        assert_eq!(
            last["choices"],
            json!([]),
            "usage comes in a last chunk without choices"
        );
    } else {
        assert_eq!(reply.usage(), None, "no usage chunk unless asked for");
    }
}

#[tokio::test]
async fn chat_stream_without_usage() {
    chat_streamed(false).await;
}

#[tokio::test]
async fn chat_stream_with_include_usage() {
    chat_streamed(true).await;
}

/// Chunks reach the client as the provider sends them, not all at the end.
#[tokio::test]
async fn chat_stream_is_not_buffered() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("slow");
    let reply = Client::new(&s.sy.base_url())
        .stream(
            "/v1/chat/completions",
            &chat_stream("slow-stream-model", &m, false),
        )
        .await;
    assert_eq!(reply.status, 200, "body: {}", reply.text());
    assert_eq!(reply.content(), CHAT_CONTENT);
    let first_content = reply
        .chunks
        .iter()
        .find(|(_, bytes)| String::from_utf8_lossy(bytes).contains("Hello"))
        .map(|(t, _)| *t)
        .expect("a chunk with the first word");
    let (last, _) = reply.chunks.last().unwrap();
    // 12 events 150 ms apart: the first word comes ~1.3 s before the end when streamed.
    assert!(
        *last >= first_content + Duration::from_millis(900),
        "the stream was buffered: first word at {first_content:?}, end at {last:?}"
    );
    assert_eq!(s.slow.only(&m).uri, "/v1/chat/completions");
}

async fn embeddings(path: &str) {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("embed");
    let body =
        json!({"model": "embed-model", "input": [m, "second input"], "encoding_format": "float"});
    let reply = Client::new(&s.sy.base_url()).post(path, &body).await;
    let answer = reply.expect_json(200);
    assert_eq!(answer["object"], "list");
    assert_eq!(answer["model"], "embed-model");
    assert_eq!(answer["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(answer["data"][1]["object"], "embedding");
    assert!(answer["data"][0]["embedding"][0].is_f64());

    let got = s.fake.only(&m);
    assert_openai_upstream(&got, "/v1/embeddings", "text-embedding-3-small");
    assert_eq!(got.json()["input"], body["input"]);
    assert_eq!(got.json()["encoding_format"], "float");
}

#[tokio::test]
async fn embeddings_v1() {
    embeddings("/v1/embeddings").await;
}

#[tokio::test]
async fn embeddings_without_v1_prefix() {
    embeddings("/embeddings").await;
}

#[tokio::test]
async fn legacy_completions() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("complete");
    let body = json!({"model": "instruct-model", "prompt": format!("Say this is a test {m}"), "max_tokens": 7, "temperature": 0});
    let reply = Client::new(&s.sy.base_url())
        .post("/v1/completions", &body)
        .await;
    let answer = reply.expect_json(200);
    assert_eq!(answer["object"], "text_completion");
    assert_eq!(answer["model"], "instruct-model");
    assert_eq!(answer["choices"][0]["text"], "\n\nThis is indeed a test.");

    let got = s.fake.only(&m);
    assert_openai_upstream(&got, "/v1/completions", "gpt-3.5-turbo-instruct");
    assert_eq!(got.json()["prompt"], body["prompt"]);
    assert_eq!(got.json()["max_tokens"], 7);
}

async fn models(path: &str) {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let before = s.fake.count();
    let answer = Client::new(&s.sy.base_url())
        .get(path)
        .await
        .expect_json(200);
    assert_eq!(answer["object"], "list");
    let data = answer["data"].as_array().expect("data is a list");
    let mut ids: Vec<&str> = data.iter().filter_map(|m| m["id"].as_str()).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [
            "chat-model",
            "embed-model",
            "instruct-model",
            "slow-stream-model"
        ],
        "exactly the configured model_names: {answer}"
    );
    for model in data {
        assert_eq!(model["object"], "model", "{model}");
    }
    // Served by the gateway itself: the listing never reaches a provider. (Other tests may
    // run meanwhile, so only the absence of a GET is checked.)
    assert!(s.fake.requests()[before..]
        .iter()
        .all(|r| r.method != "GET"));
}

#[tokio::test]
async fn models_v1() {
    models("/v1/models").await;
}

#[tokio::test]
async fn models_without_v1_prefix() {
    models("/models").await;
}

#[tokio::test]
async fn health_liveliness() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let reply = Client::new(&s.sy.base_url())
        .get("/health/liveliness")
        .await;
    assert_eq!(reply.status, 200, "body: {}", reply.text());
}

#[tokio::test]
async fn health_readiness() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let answer: Value = Client::new(&s.sy.base_url())
        .get("/health/readiness")
        .await
        .expect_json(200);
    assert_eq!(answer["status"], "healthy", "{answer}");
}

#[tokio::test]
async fn unknown_path_is_an_openai_404() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let reply = Client::new(&s.sy.base_url())
        .post("/v1/no-such-endpoint", &json!({"model": "chat-model"}))
        .await;
    switchyard_tests::assert_openai_error(&reply, 404);
}
