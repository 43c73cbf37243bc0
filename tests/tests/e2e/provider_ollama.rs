//! Ollama end to end: OpenAI clients (plain HTTP and the official openai SDK) talk to
//! `ollama_chat/` deployments (`/api/chat`) and `ollama/` deployments (`/api/generate`)
//! through the real Envoy, and a strict fake of Ollama's API checks every request it
//! receives against the API reference (a broken rule is recorded and fails the test).

use std::sync::OnceLock;

use serde_json::{json, Value};
use switchyard_tests::fakes::ollama::{
    self, CHAT_TEXT, GENERATE_TEXT, KEY, MISSING_MODEL, SERVER_ERROR, STREAM_CUT, STREAM_ERROR,
    TOOL_RESULT_TEXT,
};
use switchyard_tests::{assert_openai_error, marker, shared, Client, StrictFake, Switchyard};

use crate::common::{deployment, provider_sdk, yaml};

const IMAGE_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

struct Stack {
    sy: Switchyard,
    fake: StrictFake,
}

static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();

fn stack() -> &'static Stack {
    shared(&STACK, || {
        let fake = StrictFake::start("ollama", ollama::handler());
        // No key: Ollama needs none.
        let open = |model: &str| json!({"model": model, "api_base": fake.url("")});
        let config = json!({
            "model_list": [
                deployment("ollama-chat", open("ollama_chat/llama3.2")),
                deployment("ollama-chat-keyed", json!({"model": "ollama_chat/llama3.2",
                    "api_base": fake.url(""), "api_key": "os.environ/OLLAMA_FAKE_KEY"})),
                deployment("ollama-vision", open("ollama_chat/llava")),
                deployment("ollama-embed", open("ollama_chat/nomic-embed-text")),
                deployment("ollama-errors", open("ollama_chat/llama3.2")),
                deployment("ollama-missing", open(&format!("ollama_chat/{MISSING_MODEL}"))),
                deployment("ollama-gen", open("ollama/llama3.2")),
            ],
            "router_settings": {"num_retries": 0, "disable_cooldowns": true},
        });
        let sy = Switchyard::start_with_env(&yaml(&config), &[("OLLAMA_FAKE_KEY", KEY)]);
        Stack { sy, fake }
    })
}

fn client() -> Client {
    Client::new(&stack().sy.base_url())
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})
}

/// The request the fake received carrying `marker`, on `path`, without a key; its body.
fn received(marker: &str, path: &str) -> Value {
    let got = stack().fake.only(marker);
    assert_eq!(got.method, "POST");
    assert_eq!(got.uri, path);
    assert_eq!(got.header("authorization"), None, "no key is configured");
    assert_eq!(
        got.headers_starting_with("x-switchyard"),
        Vec::<&str>::new()
    );
    got.json()
}

#[tokio::test]
async fn chat() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("ollama-chat");
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "ollama-chat", "messages": [
                {"role": "system", "content": "Be brief."}, {"role": "user", "content": m}],
                "max_tokens": 50, "temperature": 0.3, "stop": "END", "seed": 7, "num_ctx": 4096}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], "ollama-chat");
    assert_eq!(answer["choices"][0]["message"]["content"], CHAT_TEXT);
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": 26, "completion_tokens": 10, "total_tokens": 36})
    );

    let body = received(&m, "/api/chat");
    assert_eq!(body["model"], "llama3.2");
    assert_eq!(
        body["stream"], false,
        "said explicitly: Ollama streams by default"
    );
    assert_eq!(
        body["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": m}])
    );
    assert_eq!(
        body["options"],
        json!({"num_predict": 50, "temperature": 0.3, "stop": ["END"], "seed": 7, "num_ctx": 4096})
    );
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn a_configured_key_goes_as_a_bearer_token() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("ollama-keyed");
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "ollama-chat-keyed", "messages": [{"role": "user", "content": m}]}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["choices"][0]["message"]["content"], CHAT_TEXT);
    assert_eq!(
        s.fake.only(&m).header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn chat_stream() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("ollama-stream");
    let reply = client()
        .stream(
            "/v1/chat/completions",
            &json!({"model": "ollama-chat", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": m}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert_eq!(reply.data().last().map(String::as_str), Some("[DONE]"));
    assert_eq!(reply.content(), CHAT_TEXT);
    assert!(reply
        .json_chunks()
        .iter()
        .all(|c| c["model"] == "ollama-chat"));
    assert_eq!(
        reply.usage().map(|u| u["total_tokens"].clone()),
        Some(json!(36))
    );
    assert_eq!(received(&m, "/api/chat")["stream"], true);
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn tools_and_the_tool_result() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("ollama-tools");
    let ask = json!([{"role": "user", "content": format!("What is the weather in Paris? {m}")}]);
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "ollama-chat", "messages": ask, "tools": [weather_tool()], "tool_choice": "auto"}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
    let message = &answer["choices"][0]["message"];
    let call = &message["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris"})
    );
    assert!(call["id"].as_str().is_some_and(|id| !id.is_empty()));
    let body = received(&m, "/api/chat");
    assert_eq!(body["tools"], json!([weather_tool()]));
    assert!(
        body.get("tool_choice").is_none(),
        "Ollama has no tool_choice"
    );

    let m2 = marker("ollama-tool-result");
    let mut followup = ask.as_array().unwrap().clone();
    followup.push(message.clone());
    followup.push(json!({"role": "tool", "tool_call_id": call["id"], "content": format!("18 degrees and sunny {m2}")}));
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "ollama-chat", "messages": followup, "tools": [weather_tool()]}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["choices"][0]["message"]["content"], TOOL_RESULT_TEXT);
    let body = received(&m2, "/api/chat");
    let sent = body["messages"].as_array().unwrap();
    assert_eq!(
        sent[1]["tool_calls"][0]["function"],
        json!({"name": "get_weather", "arguments": {"city": "Paris"}})
    );
    assert_eq!(sent[2]["role"], "tool");
    assert_eq!(sent[2]["tool_name"], "get_weather");
    assert_eq!(sent[2]["content"], format!("18 degrees and sunny {m2}"));
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn a_streamed_tool_call() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("ollama-stream-tools");
    let reply = client()
        .stream(
            "/v1/chat/completions",
            &json!({"model": "ollama-chat", "stream": true, "tools": [weather_tool()],
                "messages": [{"role": "user", "content": format!("What is the weather in Paris? {m}")}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let chunks = reply.json_chunks();
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(deltas[0]["function"]["name"], "get_weather");
    let arguments: String = deltas
        .iter()
        .filter_map(|d| d["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"city": "Paris"})
    );
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    assert_eq!(reply.data().last().map(String::as_str), Some("[DONE]"));
    received(&m, "/api/chat");
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn an_image_goes_inline_and_a_url_is_refused() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("ollama-image");
    let image = |url: String| {
        json!({"model": "ollama-vision", "messages": [{"role": "user", "content": [
            {"type": "text", "text": m}, {"type": "image_url", "image_url": {"url": url}}]}]})
    };
    let answer = client()
        .post(
            "/v1/chat/completions",
            &image(format!("data:image/png;base64,{IMAGE_B64}")),
        )
        .await
        .expect_json(200);
    assert!(answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("red pixel"));
    let body = received(&m, "/api/chat");
    assert_eq!(
        body["messages"][0],
        json!({"role": "user", "content": m, "images": [IMAGE_B64]})
    );

    let reply = client()
        .post(
            "/v1/chat/completions",
            &image("https://example.com/cat.png".into()),
        )
        .await;
    let message = assert_openai_error(&reply, 400);
    assert!(message.contains("base64 data URL"), "{message}");
    assert_eq!(s.fake.find(&m).len(), 1, "a refused image reached Ollama");
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn embeddings() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("ollama-embed");
    let answer = client()
        .post(
            "/v1/embeddings",
            &json!({"model": "ollama-embed", "input": [m, "second text"], "dimensions": 4}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["model"], "ollama-embed");
    assert_eq!(answer["data"].as_array().unwrap().len(), 2);
    assert_eq!(answer["data"][0]["embedding"].as_array().unwrap().len(), 4);
    assert_eq!(answer["usage"]["prompt_tokens"], 16);
    let body = received(&m, "/api/embed");
    assert_eq!(
        body,
        json!({"model": "nomic-embed-text", "input": [m, "second text"], "dimensions": 4})
    );
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn generate_serves_chat_and_completions() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("ollama-gen-chat");
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "ollama-gen", "messages": [
                {"role": "system", "content": "Be brief."}, {"role": "user", "content": m}]}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["choices"][0]["message"]["content"], GENERATE_TEXT);
    let body = received(&m, "/api/generate");
    assert_eq!(body["prompt"], format!("### User:\n{m}\n\n"));
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(body["stream"], false);

    let m = marker("ollama-gen-completion");
    let answer = client()
        .post(
            "/v1/completions",
            &json!({"model": "ollama-gen", "prompt": m, "max_tokens": 64}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["object"], "text_completion");
    assert!(answer["choices"][0]["text"]
        .as_str()
        .unwrap()
        .contains("compute_gcd"));
    let body = received(&m, "/api/generate");
    assert_eq!(
        body["prompt"],
        json!(m),
        "a completion's prompt is sent as it is"
    );
    assert_eq!(body["options"], json!({"num_predict": 64}));

    let m = marker("ollama-gen-stream");
    let reply = client()
        .stream(
            "/v1/completions",
            &json!({"model": "ollama-gen", "prompt": m, "stream": true}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.content(), "The sky is blue.");
    assert!(reply
        .json_chunks()
        .iter()
        .all(|c| c["object"] == "text_completion"));
    assert_eq!(reply.data().last().map(String::as_str), Some("[DONE]"));
    assert_eq!(received(&m, "/api/generate")["stream"], true);
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn provider_errors_keep_their_status_and_words() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("ollama-missing");
    let reply = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "ollama-missing", "messages": [{"role": "user", "content": m}]}),
        )
        .await;
    let message = assert_openai_error(&reply, 404);
    assert!(
        message.contains("NotFoundError") && message.contains("try pulling it first"),
        "{message}"
    );

    let m = marker(SERVER_ERROR);
    let reply = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "ollama-errors", "messages": [{"role": "user", "content": m}]}),
        )
        .await;
    let message = assert_openai_error(&reply, 500);
    assert!(
        message.contains("llama runner process has terminated"),
        "{message}"
    );
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn an_unsupported_parameter_is_refused_unless_dropped() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("ollama-unsupported");
    let mut body = json!({"model": "ollama-chat", "messages": [{"role": "user", "content": m}], "logprobs": true});
    let reply = client().post("/v1/chat/completions", &body).await;
    let message = assert_openai_error(&reply, 400);
    assert!(message.contains("['logprobs']"), "{message}");
    assert!(
        s.fake.find(&m).is_empty(),
        "a refused request reached Ollama"
    );

    body["drop_params"] = json!(true);
    let answer = client()
        .post("/v1/chat/completions", &body)
        .await
        .expect_json(200);
    assert_eq!(answer["choices"][0]["message"]["content"], CHAT_TEXT);
    let sent = received(&m, "/api/chat");
    assert!(sent.get("logprobs").is_none());
    s.fake.assert_no_violations();
}

/// A stream that must end with an OpenAI error event (no [DONE]) after some text; that
/// event's message.
async fn failed_stream(text: &str) -> String {
    let reply = client()
        .stream(
            "/v1/chat/completions",
            &json!({"model": "ollama-errors", "stream": true, "messages": [{"role": "user", "content": text}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.content().starts_with("Hello!"), "{}", reply.text());
    reply.final_error().1
}

#[tokio::test]
async fn a_cut_stream_ends_with_an_error_event() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let message = failed_stream(&marker(STREAM_CUT)).await;
    assert!(message.contains("before it was complete"), "{message}");
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn an_error_line_ends_the_stream_with_ollamas_words() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let message = failed_stream(&marker(STREAM_ERROR)).await;
    assert!(
        message.contains("an error was encountered while running the model"),
        "{message}"
    );
    s.fake.assert_no_violations();
}

#[test]
fn openai_python_sdk() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let sdk = provider_sdk(&s.sy, "ollama-chat", true, Some("ollama-embed"));
    let report = &sdk.report;
    let line = |key: &str| sdk.line(key);
    assert_eq!(line("CHAT_MODEL"), "ollama-chat", "{report}");
    assert_eq!(line("CHAT_CONTENT"), CHAT_TEXT, "{report}");
    assert_eq!(line("CHAT_FINISH"), "stop", "{report}");
    assert_eq!(line("CHAT_USAGE"), "26 10 36", "{report}");
    assert_eq!(line("STREAM_CONTENT"), CHAT_TEXT, "{report}");
    assert_eq!(line("STREAM_MODELS"), "ollama-chat", "{report}");
    assert_eq!(line("STREAM_FINISH"), "stop", "{report}");
    assert_eq!(line("STREAM_USAGE"), "36", "{report}");
    assert_eq!(line("TOOL_FINISH"), "tool_calls", "{report}");
    assert_eq!(
        line("TOOL_CALL"),
        r#"get_weather {"city": "Paris"}"#,
        "{report}"
    );
    assert_eq!(line("TOOL_RESULT_ANSWER"), TOOL_RESULT_TEXT, "{report}");
    assert_eq!(
        line("STREAM_TOOL_CALL"),
        r#"get_weather {"city": "Paris"}"#,
        "{report}"
    );
    assert_eq!(line("EMBEDDINGS"), "2 4 ollama-embed", "{report}");
    // Four little-endian f32s, decoded from base64 by the script.
    assert_eq!(line("EMBEDDINGS_BASE64"), "4", "{report}");
    s.fake.assert_no_violations();
}
