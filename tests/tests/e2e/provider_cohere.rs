//! Cohere end to end: OpenAI clients (plain HTTP and the official openai SDK) talk to
//! `cohere_chat/` and `cohere/` deployments through the real Envoy, and a strict fake of
//! Cohere's v2 API checks every request it receives against the API reference (a broken
//! rule is recorded and fails the test).

use std::sync::OnceLock;

use serde_json::{json, Value};
use switchyard_tests::fakes::cohere::{
    self, CHAT_TEXT, IMAGE_TEXT, KEY, RATE_LIMITED, RETRY_AFTER, SERVER_ERROR, STREAM_CUT,
    STREAM_ERROR, TOOL_RESULT_TEXT, TOO_LONG,
};
use switchyard_tests::{assert_openai_error, marker, shared, Client, StrictFake, Switchyard};

use crate::common::{deployment, provider_sdk, yaml};

const MODEL: &str = "command-a-03-2025";
const IMAGE: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

struct Stack {
    sy: Switchyard,
    fake: StrictFake,
}

static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();

fn stack() -> &'static Stack {
    shared(&STACK, || {
        let fake = StrictFake::start("cohere", cohere::handler());
        let params = |model: &str, api_base: String, key: &str| json!({"model": model, "api_base": api_base, "api_key": key});
        let key = "os.environ/COHERE_FAKE_KEY";
        let config = json!({
            "model_list": [
                deployment("command", params(&format!("cohere_chat/{MODEL}"), fake.url(""), key)),
                // The `cohere/` prefix, and an api_base that already names the endpoint.
                deployment("command-full-base", params(&format!("cohere/{MODEL}"), fake.url("/v2/chat"), key)),
                deployment("command-vision", params("cohere_chat/command-a-vision-07-2025", fake.url(""), key)),
                // The failure markers go to their own group.
                deployment("command-errors", params(&format!("cohere_chat/{MODEL}"), fake.url(""), key)),
                deployment("command-bad-key", params(&format!("cohere_chat/{MODEL}"), fake.url(""), "co-not-the-right-key")),
                deployment("embed", params("cohere/embed-v4.0", fake.url(""), key)),
            ],
            "router_settings": {"num_retries": 0, "disable_cooldowns": true},
        });
        let sy = Switchyard::start_with_env(&yaml(&config), &[("COHERE_FAKE_KEY", KEY)]);
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

/// The request the fake received carrying `marker`, checked for what every Cohere request
/// needs; its body.
fn received(marker: &str, path: &str) -> Value {
    let got = stack().fake.only(marker);
    assert_eq!(got.method, "POST");
    assert_eq!(got.uri, path);
    assert_eq!(
        got.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
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
    let m = marker("cohere-chat");
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "command", "messages": [
                {"role": "system", "content": "Be brief."}, {"role": "user", "content": m}],
                "max_tokens": 50, "temperature": 0.3, "top_p": 0.9, "stop": "END", "seed": 7, "user": "u-1"}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], "command");
    assert_eq!(answer["choices"][0]["message"]["content"], CHAT_TEXT);
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": 75, "completion_tokens": 9, "total_tokens": 84})
    );

    let body = received(&m, "/v2/chat");
    assert_eq!(body["model"], MODEL);
    assert_eq!(
        body["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": m}])
    );
    assert_eq!(body["stream"], false);
    assert_eq!(
        (body["p"].clone(), body["max_tokens"].clone()),
        (json!(0.9), json!(50))
    );
    assert_eq!(body["stop_sequences"], json!(["END"]));
    assert!(body.get("user").is_none() && body.get("top_p").is_none());
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn an_api_base_naming_the_endpoint_is_not_doubled() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("cohere-full-base");
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "command-full-base", "messages": [{"role": "user", "content": m}]}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["choices"][0]["message"]["content"], CHAT_TEXT);
    received(&m, "/v2/chat");
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn chat_stream() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("cohere-stream");
    let reply = client()
        .stream(
            "/v1/chat/completions",
            &json!({"model": "command", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": m}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert_eq!(reply.data().last().map(String::as_str), Some("[DONE]"));
    assert_eq!(reply.content(), CHAT_TEXT);
    let chunks = reply.json_chunks();
    assert!(
        chunks.iter().all(|c| c["model"] == "command"),
        "{}",
        reply.text()
    );
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    assert_eq!(
        reply.usage().map(|u| u["total_tokens"].clone()),
        Some(json!(80))
    );
    assert_eq!(received(&m, "/v2/chat")["stream"], true);
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn tools_and_the_tool_result() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("cohere-tools");
    let ask = json!([{"role": "user", "content": format!("What is the weather in Paris? {m}")}]);
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "command", "messages": ask, "tools": [weather_tool()], "tool_choice": "required"}),
        )
        .await
        .expect_json(200);
    let message = &answer["choices"][0]["message"];
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(message["content"], Value::Null);
    let call = &message["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(
        message["reasoning_content"],
        "I will look up the weather in Paris."
    );
    let body = received(&m, "/v2/chat");
    assert_eq!(body["tool_choice"], "REQUIRED");
    assert_eq!(body["tools"], json!([weather_tool()]));

    // The loop's second turn, as a client sends it back.
    let m2 = marker("cohere-tool-result");
    let mut followup = ask.as_array().unwrap().clone();
    followup.push(message.clone());
    followup.push(json!({"role": "tool", "tool_call_id": call["id"], "content": format!("18 degrees and sunny {m2}")}));
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "command", "messages": followup, "tools": [weather_tool()]}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["choices"][0]["message"]["content"], TOOL_RESULT_TEXT);
    let body = received(&m2, "/v2/chat");
    let sent = body["messages"].as_array().unwrap();
    assert_eq!(sent[1]["role"], "assistant");
    assert_eq!(sent[1]["tool_calls"][0]["id"], call["id"]);
    assert_eq!(sent[1]["tool_plan"], "I will look up the weather in Paris.");
    assert_eq!(
        sent[2],
        json!({"role": "tool", "tool_call_id": call["id"], "content": format!("18 degrees and sunny {m2}")})
    );
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn a_streamed_tool_call() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("cohere-stream-tools");
    let reply = client()
        .stream(
            "/v1/chat/completions",
            &json!({"model": "command", "stream": true, "tools": [weather_tool()],
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
    assert_eq!(deltas[0]["id"], "get_weather_j3f0adww9pmr");
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
    received(&m, "/v2/chat");
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn an_image() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("cohere-image");
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "command-vision", "messages": [{"role": "user", "content": [
                {"type": "text", "text": m}, {"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}}]}]}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["choices"][0]["message"]["content"], IMAGE_TEXT);
    let body = received(&m, "/v2/chat");
    assert_eq!(
        body["messages"][0]["content"][1],
        json!({"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}})
    );
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn embeddings() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("cohere-embed");
    let answer = client()
        .post(
            "/v1/embeddings",
            &json!({"model": "embed", "input": [m, "second text"], "dimensions": 256}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["object"], "list");
    assert_eq!(answer["model"], "embed");
    assert_eq!(answer["data"].as_array().unwrap().len(), 2);
    assert_eq!(answer["data"][1]["index"], 1);
    assert_eq!(answer["data"][0]["embedding"].as_array().unwrap().len(), 4);
    assert_eq!(answer["usage"]["prompt_tokens"], 4);
    let body = received(&m, "/v2/embed");
    assert_eq!(
        body,
        json!({"model": "embed-v4.0", "texts": [m, "second text"], "input_type": "search_document",
            "embedding_types": ["float"], "output_dimension": 256})
    );
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn provider_errors_keep_their_status_and_words() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let ask = |text: &str| json!({"model": "command-errors", "messages": [{"role": "user", "content": text}]});

    let m = marker(RATE_LIMITED);
    let reply = client().post("/v1/chat/completions", &ask(&m)).await;
    let message = assert_openai_error(&reply, 429);
    assert!(
        message.contains("RateLimitError") && message.contains("Trial key"),
        "{message}"
    );
    assert_eq!(reply.header("retry-after"), Some(RETRY_AFTER));

    let m = marker(SERVER_ERROR);
    let reply = client().post("/v1/chat/completions", &ask(&m)).await;
    let message = assert_openai_error(&reply, 503);
    assert!(message.contains("service unavailable"), "{message}");

    let m = marker(TOO_LONG);
    let reply = client().post("/v1/chat/completions", &ask(&m)).await;
    let message = assert_openai_error(&reply, 400);
    assert!(message.contains("ContextWindowExceededError"), "{message}");

    let m = marker("cohere-bad-key");
    let reply = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "command-bad-key", "messages": [{"role": "user", "content": m}]}),
        )
        .await;
    let message = assert_openai_error(&reply, 401);
    assert!(message.contains("invalid api token"), "{message}");
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn an_unsupported_parameter_is_refused_unless_dropped() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("cohere-unsupported");
    let mut body = json!({"model": "command", "messages": [{"role": "user", "content": m}], "logit_bias": {"42": 1}});
    let reply = client().post("/v1/chat/completions", &body).await;
    let message = assert_openai_error(&reply, 400);
    assert!(message.contains("['logit_bias']"), "{message}");
    assert_eq!(reply.json()["error"]["param"], "logit_bias");
    assert!(
        s.fake.find(&m).is_empty(),
        "a refused request reached Cohere"
    );

    body["drop_params"] = json!(true);
    let answer = client()
        .post("/v1/chat/completions", &body)
        .await
        .expect_json(200);
    assert_eq!(answer["choices"][0]["message"]["content"], CHAT_TEXT);
    let sent = received(&m, "/v2/chat");
    assert!(sent.get("logit_bias").is_none() && sent.get("drop_params").is_none());
    s.fake.assert_no_violations();
}

/// The data events of a stream that must end with an OpenAI error event (no [DONE]); that
/// event's message.
async fn failed_stream(text: &str) -> String {
    let reply = client()
        .stream(
            "/v1/chat/completions",
            &json!({"model": "command-errors", "stream": true, "messages": [{"role": "user", "content": text}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.content(), "Hello", "what came first is delivered");
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
async fn an_error_in_the_stream_ends_it_with_cohere_words() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let message = failed_stream(&marker(STREAM_ERROR)).await;
    assert!(
        message.contains("internal error while generating the response"),
        "{message}"
    );
    s.fake.assert_no_violations();
}

#[test]
fn openai_python_sdk() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let sdk = provider_sdk(&s.sy, "command", true, Some("embed"));
    let report = &sdk.report;
    let line = |key: &str| sdk.line(key);
    assert_eq!(line("CHAT_MODEL"), "command", "{report}");
    assert_eq!(line("CHAT_CONTENT"), CHAT_TEXT, "{report}");
    assert_eq!(line("CHAT_FINISH"), "stop", "{report}");
    assert_eq!(line("CHAT_USAGE"), "75 9 84", "{report}");
    assert_eq!(line("STREAM_CONTENT"), CHAT_TEXT, "{report}");
    assert_eq!(line("STREAM_MODELS"), "command", "{report}");
    assert_eq!(line("STREAM_FINISH"), "stop", "{report}");
    assert_eq!(line("STREAM_USAGE"), "80", "{report}");
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
    assert_eq!(line("EMBEDDINGS"), "2 4 embed", "{report}");
    // Four little-endian f32s, decoded from base64 by the script.
    assert_eq!(line("EMBEDDINGS_BASE64"), "4", "{report}");
    s.fake.assert_no_violations();
}
