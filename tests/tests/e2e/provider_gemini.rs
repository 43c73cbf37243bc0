//! Gemini end to end, on Google AI Studio (`gemini/`) and Vertex AI (`vertex_ai/`): OpenAI
//! clients (plain HTTP and the official openai SDK) talk to them through the real Envoy, and
//! a strict fake of Google's API (both URL shapes) checks every request it receives against
//! the API reference (a broken rule is recorded and fails the test).

use std::sync::OnceLock;

use serde_json::{json, Value};
use switchyard_tests::fake::CHAT_CONTENT;
use switchyard_tests::fakes::gemini::{
    self, ACCESS_TOKEN, API_KEY, FAIL_429, FAIL_429_BODY, FAIL_500, FAIL_CONTEXT, LOCATION,
    PROJECT, STREAM_CUT, STREAM_ERROR, STREAM_RESET,
};
use switchyard_tests::{assert_openai_error, marker, shared, Client, StrictFake, Switchyard};

use crate::common::{deployment, provider_sdk, yaml};

const CHAT_MODEL: &str = "gemini-2.5-flash";
const VERTEX_PATH: &str =
    "/v1/projects/switchyard-test/locations/us-central1/publishers/google/models";
/// The image fixture's answer.
const IMAGE_ANSWER: &str = "The first image is a single red pixel";
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

struct Stack {
    sy: Switchyard,
    fake: StrictFake,
}

static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();

fn stack() -> &'static Stack {
    shared(&STACK, || {
        let fake = StrictFake::start("gemini", gemini::handler());
        let studio = |model: &str| {
            json!({
                "model": format!("gemini/{model}"),
                "api_base": fake.url(""),
                "api_key": "os.environ/GEMINI_FAKE_KEY",
            })
        };
        let vertex = |model: &str| {
            json!({
                "model": format!("vertex_ai/{model}"),
                "api_base": fake.url(""),
                "vertex_project": PROJECT,
                "vertex_location": LOCATION,
                // An access token: the sidecar mints none, the filter sends it as a bearer.
                "api_key": "os.environ/VERTEX_FAKE_TOKEN",
            })
        };
        let config = json!({
            "model_list": [
                deployment("gemini-chat", studio(CHAT_MODEL)),
                deployment("gemini-embed", studio("gemini-embedding-001")),
                deployment("vertex-chat", vertex(CHAT_MODEL)),
                deployment("vertex-embed", vertex("text-embedding-005")),
                // The failure markers go to their own group, so no failure cools down the others.
                deployment("gemini-errors", studio(CHAT_MODEL)),
                deployment("vertex-errors", vertex(CHAT_MODEL)),
            ],
            "router_settings": {"num_retries": 0, "disable_cooldowns": true},
        });
        let sy = Switchyard::start_with_env(
            &yaml(&config),
            &[
                ("GEMINI_FAKE_KEY", API_KEY),
                ("VERTEX_FAKE_TOKEN", ACCESS_TOKEN),
            ],
        );
        Stack { sy, fake }
    })
}

fn client() -> Client {
    Client::new(&stack().sy.base_url())
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
            "additionalProperties": false}}})
}

/// The request carrying `marker` the fake received: its path and its body.
fn received(marker: &str) -> (String, Value) {
    let got = stack().fake.only(marker);
    assert_eq!(got.method, "POST");
    assert_eq!(
        got.headers_starting_with("x-switchyard"),
        Vec::<&str>::new()
    );
    (got.uri.clone(), got.json())
}

#[tokio::test]
async fn chat_on_ai_studio() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("gemini-chat");
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "gemini-chat", "temperature": 0.5, "max_tokens": 50,
                "messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": m}]}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], "gemini-chat");
    assert_eq!(answer["choices"][0]["message"]["content"], CHAT_CONTENT);
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(answer["usage"]["total_tokens"], 21);

    let got = s.fake.only(&m);
    assert_eq!(
        got.uri,
        format!("/v1beta/models/{CHAT_MODEL}:generateContent")
    );
    assert_eq!(got.header("x-goog-api-key"), Some(API_KEY));
    assert_eq!(got.header("authorization"), None);
    let body = got.json();
    assert_eq!(body["systemInstruction"]["parts"][0]["text"], "Be kind.");
    assert_eq!(
        body["contents"][0],
        json!({"role": "user", "parts": [{"text": m}]})
    );
    assert_eq!(
        body["generationConfig"],
        json!({"temperature": 0.5, "maxOutputTokens": 50})
    );
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn chat_stream_on_ai_studio() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("gemini-stream");
    let reply = client()
        .stream(
            "/v1/chat/completions",
            &json!({"model": "gemini-chat", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": m}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "body: {}", reply.text());
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert_eq!(reply.data().last().map(String::as_str), Some("[DONE]"));
    assert_eq!(reply.content(), CHAT_CONTENT);
    let chunks = reply.json_chunks();
    assert!(
        chunks.iter().all(|c| c["model"] == "gemini-chat"),
        "{}",
        reply.text()
    );
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop"),
        "{}",
        reply.text()
    );
    assert_eq!(
        reply.usage().map(|u| u["total_tokens"].clone()),
        Some(json!(12))
    );
    let (uri, _) = received(&m);
    assert_eq!(
        uri,
        format!("/v1beta/models/{CHAT_MODEL}:streamGenerateContent?alt=sse")
    );
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn tools_and_the_tool_result_follow_up() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("gemini-tools");
    let ask = json!({"role": "user", "content": format!("What is the weather in Paris? {m}")});
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "gemini-chat", "messages": [ask], "tools": [weather_tool()],
                "tool_choice": "auto"}),
        )
        .await
        .expect_json(200);
    let choice = &answer["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris"})
    );
    let (_, body) = received(&m);
    let declaration = &body["tools"][0]["functionDeclarations"][0];
    assert_eq!(declaration["name"], "get_weather");
    assert!(declaration["parameters"]
        .get("additionalProperties")
        .is_none());
    assert_eq!(body["toolConfig"]["functionCallingConfig"]["mode"], "AUTO");

    // The client runs the tool and sends its result back.
    let m2 = marker("gemini-tool-result");
    let followup = json!({"model": "gemini-chat", "tools": [weather_tool()], "messages": [
        {"role": "user", "content": format!("What is the weather in Paris? {m2}")},
        choice["message"].clone(),
        {"role": "tool", "tool_call_id": call["id"], "content": "18 degrees and sunny"}]});
    let answer = client()
        .post("/v1/chat/completions", &followup)
        .await
        .expect_json(200);
    assert!(
        answer["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("18 degrees"),
        "{answer}"
    );
    let (_, body) = received(&m2);
    assert_eq!(
        body["contents"][1]["parts"][0]["functionCall"],
        json!({"name": "get_weather", "args": {"city": "Paris"}})
    );
    assert_eq!(
        body["contents"][2],
        json!({"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
            "response": {"content": "18 degrees and sunny"}}}]})
    );
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn a_streamed_tool_call() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("gemini-stream-tools");
    let reply = client()
        .stream(
            "/v1/chat/completions",
            &json!({"model": "gemini-chat", "stream": true, "tools": [weather_tool()],
                "messages": [{"role": "user", "content": m}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "body: {}", reply.text());
    let chunks = reply.json_chunks();
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .collect();
    assert_eq!(calls[0][0]["function"]["name"], "get_weather");
    let arguments: String = calls
        .iter()
        .filter_map(|c| c[0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"city": "Paris"})
    );
    // The thought signature rides in the id, for the next turn.
    assert!(
        calls[0][0]["id"].as_str().unwrap().contains("__thought__"),
        "{}",
        reply.text()
    );
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    assert_eq!(reply.data().last().map(String::as_str), Some("[DONE]"));
    received(&m);
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn images_by_data_url_and_https_url() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("gemini-image");
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "gemini-chat", "messages": [{"role": "user", "content": [
                {"type": "text", "text": m},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}},
                {"type": "image_url", "image_url": {"url": "https://example.com/photos/cat.jpg"}}]}]}),
        )
        .await
        .expect_json(200);
    assert!(
        answer["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with(IMAGE_ANSWER),
        "{answer}"
    );
    let (_, body) = received(&m);
    let parts = &body["contents"][0]["parts"];
    assert_eq!(
        parts[1],
        json!({"inlineData": {"mimeType": "image/png", "data": PNG}})
    );
    assert_eq!(
        parts[2],
        json!({"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/photos/cat.jpg"}})
    );
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn embeddings_on_ai_studio_and_vertex() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("gemini-embed");
    let answer = client()
        .post(
            "/v1/embeddings",
            &json!({"model": "gemini-embed", "input": [m, "second"], "dimensions": 8}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["model"], "gemini-embed");
    assert_eq!(answer["data"].as_array().unwrap().len(), 2);
    assert_eq!(answer["data"][1]["index"], 1);
    assert_eq!(answer["data"][0]["embedding"].as_array().unwrap().len(), 8);
    assert!(answer["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let (uri, body) = received(&m);
    assert_eq!(
        uri,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(body["requests"][0]["outputDimensionality"], 8);

    let m = marker("vertex-embed");
    let answer = client()
        .post(
            "/v1/embeddings",
            &json!({"model": "vertex-embed", "input": m, "encoding_format": "base64"}),
        )
        .await
        .expect_json(200);
    assert!(answer["data"][0]["embedding"].is_string(), "{answer}");
    assert_eq!(answer["usage"]["prompt_tokens"], 2);
    let got = s.fake.only(&m);
    assert_eq!(got.uri, format!("{VERTEX_PATH}/text-embedding-005:predict"));
    assert_eq!(
        got.header("authorization"),
        Some(format!("Bearer {ACCESS_TOKEN}").as_str())
    );
    assert_eq!(got.json(), json!({"instances": [{"content": m}]}));
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn vertex_chat_and_stream() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("vertex-chat");
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "vertex-chat", "messages": [{"role": "user", "content": m}]}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["model"], "vertex-chat");
    assert_eq!(answer["choices"][0]["message"]["content"], CHAT_CONTENT);
    let got = s.fake.only(&m);
    assert_eq!(
        got.uri,
        format!("{VERTEX_PATH}/{CHAT_MODEL}:generateContent")
    );
    assert_eq!(
        got.header("authorization"),
        Some(format!("Bearer {ACCESS_TOKEN}").as_str())
    );
    assert_eq!(got.header("x-goog-api-key"), None);

    let m = marker("vertex-stream");
    let reply = client()
        .stream(
            "/v1/chat/completions",
            &json!({"model": "vertex-chat", "stream": true, "messages": [{"role": "user", "content": m}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "body: {}", reply.text());
    assert_eq!(reply.content(), CHAT_CONTENT);
    // Without include_usage the usage rides on the finish chunk.
    assert_eq!(
        reply.usage().map(|u| u["total_tokens"].clone()),
        Some(json!(12))
    );
    let got = s.fake.only(&m);
    assert_eq!(
        got.uri,
        format!("{VERTEX_PATH}/{CHAT_MODEL}:streamGenerateContent?alt=sse")
    );
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn errors_are_openai_shaped_with_retry_after_kept() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let ask = |model: &str, text: &str| json!({"model": model, "messages": [{"role": "user", "content": text}]});

    let reply = client()
        .post(
            "/v1/chat/completions",
            &ask("gemini-errors", &marker(FAIL_429)),
        )
        .await;
    let message = assert_openai_error(&reply, 429);
    assert!(message.contains("RateLimitError"), "{message}");
    assert!(
        message.contains("You exceeded your current quota"),
        "{message}"
    );
    assert_eq!(reply.header("retry-after"), Some("7"));

    // Google tells the wait in the body (RetryInfo 4.2s), not in a header: the client gets it
    // as retry-after, rounded up.
    let reply = client()
        .post(
            "/v1/chat/completions",
            &ask("vertex-errors", &marker(FAIL_429_BODY)),
        )
        .await;
    let message = assert_openai_error(&reply, 429);
    assert!(message.contains("Resource has been exhausted"), "{message}");
    assert_eq!(reply.header("retry-after"), Some("5"));

    let reply = client()
        .post(
            "/v1/chat/completions",
            &ask("gemini-errors", &marker(FAIL_500)),
        )
        .await;
    let message = assert_openai_error(&reply, 500);
    assert!(
        message.contains("An internal error has occurred"),
        "{message}"
    );

    let reply = client()
        .post(
            "/v1/chat/completions",
            &ask("gemini-errors", &marker(FAIL_CONTEXT)),
        )
        .await;
    let message = assert_openai_error(&reply, 400);
    assert!(message.contains("ContextWindowExceededError"), "{message}");
    assert!(
        message.contains("exceeds the maximum number of tokens"),
        "{message}"
    );

    // A parameter Gemini cannot take is refused before any request, naming it.
    let m = marker("gemini-unsupported");
    let mut body = ask("gemini-errors", &m);
    body["logit_bias"] = json!({"1": 5});
    let reply = client().post("/v1/chat/completions", &body).await;
    let message = assert_openai_error(&reply, 400);
    assert!(message.contains("['logit_bias']"), "{message}");
    assert!(s.fake.find(&m).is_empty());
    // With drop_params it is dropped.
    body["drop_params"] = json!(true);
    client()
        .post("/v1/chat/completions", &body)
        .await
        .expect_json(200);
    let (_, got) = received(&m);
    assert!(got.get("logit_bias").is_none() && got.get("drop_params").is_none());
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn a_stream_error_event_and_a_cut_stream_end_with_an_openai_error_event() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let ask = |text: &str| json!({"model": "gemini-errors", "stream": true, "messages": [{"role": "user", "content": text}]});

    let reply = client()
        .stream("/v1/chat/completions", &ask(&marker(STREAM_ERROR)))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content(), "Once upon a time");
    let (code, message) = reply.final_error();
    assert_eq!(code, "503", "{message}");
    assert!(message.contains("The model is overloaded"), "{message}");

    let reply = client()
        .stream("/v1/chat/completions", &ask(&marker(STREAM_CUT)))
        .await;
    assert_eq!(reply.status, 200);
    let data = reply.data();
    assert_eq!(reply.content(), "Once upon a time", "{data:?}");
    let (code, message) = reply.final_error();
    assert_eq!(code, "502", "{message}");
    assert!(message.contains("before it was complete"), "{message}");

    // A dropped connection cannot become an event; the client must see the break.
    let (reply, broke) = client()
        .stream_result("/v1/chat/completions", &ask(&marker(STREAM_RESET)))
        .await;
    let text = reply.text();
    assert!(
        broke.is_some() || text.contains("\"error\""),
        "the client must see the stream break or an error event: {text}"
    );
    assert!(!text.contains("[DONE]"), "{text}");
    s.fake.assert_no_violations();
}

/// The official openai SDK against one model: chat, stream, a tool call and its result, a
/// streamed tool call, embeddings.
fn python_sdk(model: &str, embeddings_model: &str) {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let sdk = provider_sdk(&s.sy, model, true, Some(embeddings_model));
    let report = &sdk.report;
    let line = |key: &str| sdk.line(key);
    assert_eq!(line("CHAT_MODEL"), model, "{report}");
    assert_eq!(line("CHAT_CONTENT"), CHAT_CONTENT, "{report}");
    assert_eq!(line("CHAT_FINISH"), "stop", "{report}");
    assert_eq!(line("STREAM_CONTENT"), CHAT_CONTENT, "{report}");
    assert_eq!(line("STREAM_MODELS"), model, "{report}");
    assert_eq!(line("STREAM_FINISH"), "stop", "{report}");
    assert_eq!(line("STREAM_USAGE"), "12", "{report}");
    assert_eq!(line("TOOL_FINISH"), "tool_calls", "{report}");
    assert_eq!(
        line("TOOL_CALL"),
        r#"get_weather {"city": "Paris"}"#,
        "{report}"
    );
    assert!(
        line("TOOL_RESULT_ANSWER").contains("18 degrees"),
        "{report}"
    );
    assert_eq!(
        line("STREAM_TOOL_CALL"),
        r#"get_weather {"city": "Paris"}"#,
        "{report}"
    );
    let embeddings = line("EMBEDDINGS");
    assert!(
        embeddings.starts_with("2 ") && embeddings.ends_with(embeddings_model),
        "{report}"
    );
    assert!(
        line("EMBEDDINGS_BASE64").parse::<usize>().unwrap() > 0,
        "{report}"
    );
    s.fake.assert_no_violations();
}

#[test]
fn the_openai_python_sdk_on_ai_studio() {
    python_sdk("gemini-chat", "gemini-embed");
}

#[test]
fn the_openai_python_sdk_on_vertex() {
    python_sdk("vertex-chat", "vertex-embed");
}
