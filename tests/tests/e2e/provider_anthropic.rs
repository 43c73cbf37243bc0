//! Anthropic end to end: OpenAI clients (plain HTTP and the official openai SDK) talk to
//! `anthropic/` deployments through the real Envoy, and a strict fake of the Messages API
//! checks every request it receives against the API reference (a broken rule is recorded
//! and fails the test).

use std::sync::OnceLock;

use serde_json::{json, Value};
use switchyard_tests::fakes::anthropic::{
    self, CHAT_TEXT, KEY, MODEL, OVERLOADED, RATE_LIMITED, RETRY_AFTER, STREAM_CUT, STREAM_ERROR,
    STREAM_RESET, TOO_LONG,
};
use switchyard_tests::{assert_openai_error, marker, shared, Client, StrictFake, Switchyard};

use crate::common::{deployment, provider_sdk, yaml};

struct Stack {
    sy: Switchyard,
    fake: StrictFake,
}

static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();

fn stack() -> &'static Stack {
    shared(&STACK, || {
        let fake = StrictFake::start("anthropic", anthropic::handler());
        let claude = |api_base: String, key: &str| {
            json!({
                "model": format!("anthropic/{MODEL}"),
                "api_base": api_base,
                "api_key": key,
            })
        };
        let config = json!({
            "model_list": [
                deployment("claude", claude(fake.url(""), "os.environ/ANTHROPIC_FAKE_KEY")),
                // An api_base that already ends in /v1: the path is not doubled.
                deployment("claude-v1", claude(fake.url("/v1"), "os.environ/ANTHROPIC_FAKE_KEY")),
                // The failure markers go to their own group, so no failure cools down "claude".
                deployment("claude-errors", claude(fake.url(""), "os.environ/ANTHROPIC_FAKE_KEY")),
                deployment("claude-bad-key", claude(fake.url(""), "sk-ant-not-the-right-key")),
            ],
            "router_settings": {"num_retries": 0, "disable_cooldowns": true},
            "general_settings": {"forward_client_headers_to_llm_api": true},
        });
        let sy = Switchyard::start_with_env(&yaml(&config), &[("ANTHROPIC_FAKE_KEY", KEY)]);
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

/// The request the fake received carrying `marker`, checked for what every Anthropic request
/// needs.
fn received(marker: &str) -> Value {
    let got = stack().fake.only(marker);
    assert_eq!(got.method, "POST");
    assert_eq!(got.uri, "/v1/messages");
    assert_eq!(got.header("x-api-key"), Some(KEY));
    assert_eq!(got.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(got.header("authorization"), None);
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
    let m = marker("anthropic-chat");
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "claude", "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": m}],
                "stop": "END", "temperature": 0.2}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], "claude");
    assert_eq!(answer["choices"][0]["message"]["content"], CHAT_TEXT);
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(answer["usage"]["total_tokens"], 30);

    let body = received(&m);
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": m}]}])
    );
    assert_eq!(body["max_tokens"], 64000, "the model's max output");
    assert_eq!(body["stop_sequences"], json!(["END"]));
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn an_api_base_ending_in_v1_is_not_doubled_and_anthropic_beta_passes() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("anthropic-v1");
    let body = json!({"model": "claude-v1", "messages": [{"role": "user", "content": m}], "max_tokens": 20});
    let reply = client()
        .send(
            "POST",
            "/v1/chat/completions",
            &[
                ("content-type", "application/json"),
                ("anthropic-beta", "token-efficient-tools-2025-02-19"),
            ],
            Some(body.to_string().into_bytes()),
        )
        .await;
    assert_eq!(reply.expect_json(200)["model"], "claude-v1");
    received(&m);
    assert_eq!(
        s.fake.only(&m).header("anthropic-beta"),
        Some("token-efficient-tools-2025-02-19")
    );
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn chat_stream() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("anthropic-stream");
    let reply = client()
        .stream(
            "/v1/chat/completions",
            &json!({"model": "claude", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": m}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert_eq!(reply.data().last().map(String::as_str), Some("[DONE]"));
    assert!(
        reply.json_chunks().iter().all(|c| c["model"] == "claude"),
        "{}",
        reply.text()
    );
    assert_eq!(reply.content(), CHAT_TEXT);
    assert_eq!(
        reply.usage().map(|u| u["total_tokens"].clone()),
        Some(json!(22))
    );
    assert_eq!(received(&m)["stream"], true);
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn tools_and_the_tool_result_follow_up() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("anthropic-tools");
    let ask = json!([{"role": "user", "content": format!("What is the weather in Paris? {m}")}]);
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "claude", "messages": ask, "tools": [weather_tool()],
                "tool_choice": "required", "parallel_tool_calls": false}),
        )
        .await
        .expect_json(200);
    let message = &answer["choices"][0]["message"];
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
    let call = &message["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"city": "Paris"}));
    let body = received(&m);
    assert_eq!(body["tools"][0]["name"], "get_weather");
    assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
    assert_eq!(
        body["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );

    // The tool's result goes back with the assistant's turn.
    let m2 = marker("anthropic-tool-result");
    let mut follow_up = ask.as_array().unwrap().clone();
    follow_up.push(message.clone());
    follow_up.push(
        json!({"role": "tool", "tool_call_id": call["id"], "content": format!("18 degrees {m2}")}),
    );
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "claude", "messages": follow_up, "tools": [weather_tool()]}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert!(answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("18 degrees"));
    let body = received(&m2);
    let turns = body["messages"].as_array().unwrap();
    assert_eq!(turns.len(), 3);
    assert_eq!(turns[1]["role"], "assistant");
    assert_eq!(turns[1]["content"][1]["type"], "tool_use");
    assert_eq!(turns[1]["content"][1]["id"], call["id"]);
    assert_eq!(
        turns[2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": call["id"], "content": format!("18 degrees {m2}")})
    );
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn a_streamed_tool_call() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("anthropic-stream-tools");
    let reply = client()
        .stream(
            "/v1/chat/completions",
            &json!({"model": "claude", "stream": true, "tools": [weather_tool()],
                "messages": [{"role": "user", "content": m}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let chunks = reply.json_chunks();
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(calls[0]["id"], "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert!(calls.iter().all(|c| c["index"] == 0));
    let arguments: String = calls
        .iter()
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"city": "Paris"})
    );
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str());
    assert_eq!(finish, Some("tool_calls"));
    assert_eq!(reply.data().last().map(String::as_str), Some("[DONE]"));
    received(&m);
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn images_by_data_url_and_https_url() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("anthropic-image");
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "claude", "messages": [{"role": "user", "content": [
                {"type": "text", "text": m},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}},
                {"type": "image_url", "image_url": {"url": "https://example.com/ant.jpg"}}]}]}),
        )
        .await
        .expect_json(200);
    assert!(answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("red pixel"));
    let body = received(&m);
    let content = &body["messages"][0]["content"];
    assert_eq!(
        content[1]["source"],
        json!({"type": "base64", "media_type": "image/png", "data": png})
    );
    assert_eq!(
        content[2]["source"],
        json!({"type": "url", "url": "https://example.com/ant.jpg"})
    );
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn errors_are_openai_shaped_with_retry_after_kept() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let ask = |text: &str| json!({"model": "claude-errors", "messages": [{"role": "user", "content": text}]});

    let reply = client()
        .post("/v1/chat/completions", &ask(&marker(RATE_LIMITED)))
        .await;
    let message = assert_openai_error(&reply, 429);
    assert!(message.contains("RateLimitError"), "{message}");
    assert!(
        message.contains("rate limit for your organization"),
        "{message}"
    );
    assert_eq!(reply.header("retry-after"), Some(RETRY_AFTER));

    let reply = client()
        .post("/v1/chat/completions", &ask(&marker(OVERLOADED)))
        .await;
    let message = assert_openai_error(&reply, 503);
    assert!(message.contains("Overloaded"), "{message}");

    let reply = client()
        .post("/v1/chat/completions", &ask(&marker(TOO_LONG)))
        .await;
    let message = assert_openai_error(&reply, 400);
    assert!(message.contains("ContextWindowExceededError"), "{message}");
    assert!(message.contains("prompt is too long"), "{message}");

    let reply = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "claude-bad-key", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    let message = assert_openai_error(&reply, 401);
    assert!(message.contains("invalid x-api-key"), "{message}");

    // A parameter Anthropic cannot take is refused before any request, naming it.
    let m = marker("anthropic-unsupported");
    let reply = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "claude-errors", "messages": [{"role": "user", "content": m}], "seed": 1}),
        )
        .await;
    let message = assert_openai_error(&reply, 400);
    assert!(message.contains("['seed']"), "{message}");
    assert!(s.fake.find(&m).is_empty());
    // With drop_params it is dropped.
    let reply = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "claude-errors", "messages": [{"role": "user", "content": m}],
                "seed": 1, "drop_params": true}),
        )
        .await;
    reply.expect_json(200);
    assert!(received(&m).get("seed").is_none());
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn a_stream_error_event_and_a_cut_stream_end_with_an_openai_error_event() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let ask = |text: &str| json!({"model": "claude-errors", "stream": true, "messages": [{"role": "user", "content": text}]});

    let reply = client()
        .stream("/v1/chat/completions", &ask(&marker(STREAM_ERROR)))
        .await;
    assert_eq!(reply.status, 200);
    let (code, message) = reply.final_error();
    assert_eq!(code, "503", "{message}");
    assert!(message.contains("Overloaded"), "{message}");

    let reply = client()
        .stream("/v1/chat/completions", &ask(&marker(STREAM_CUT)))
        .await;
    assert_eq!(reply.status, 200);
    let data = reply.data();
    assert!(reply.content().starts_with("Hello"), "{data:?}");
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

#[test]
fn the_openai_python_sdk() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let sdk = provider_sdk(&s.sy, "claude", true, None);
    let report = &sdk.report;
    let line = |key: &str| sdk.line(key);
    assert_eq!(line("CHAT_MODEL"), "claude", "{report}");
    assert_eq!(line("CHAT_CONTENT"), CHAT_TEXT, "{report}");
    assert_eq!(line("CHAT_FINISH"), "stop", "{report}");
    assert_eq!(line("CHAT_USAGE"), "18 12 30", "{report}");
    assert_eq!(line("STREAM_CONTENT"), CHAT_TEXT, "{report}");
    assert_eq!(line("STREAM_MODELS"), "claude", "{report}");
    assert_eq!(line("STREAM_FINISH"), "stop", "{report}");
    assert_eq!(line("STREAM_USAGE"), "22", "{report}");
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
    s.fake.assert_no_violations();
}

/// Anthropic's own API in front (`/v1/messages`, as Claude Code speaks it) to an Anthropic
/// deployment: a tool call and its result's round trip, Anthropic-shaped both ways, every
/// request valid for the strict fake.
#[tokio::test]
async fn the_messages_api_in_front_with_a_tool_round_trip() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("messages-tools");
    let tool = json!({"name": "get_weather", "description": "The weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}});
    let ask = json!([{"role": "user", "content": format!("What is the weather in Paris? {m}")}]);
    let answer = client()
        .post(
            "/v1/messages",
            &json!({"model": "claude", "max_tokens": 256, "messages": ask, "tools": [tool],
                "tool_choice": {"type": "any", "disable_parallel_tool_use": true}}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["type"], "message");
    assert_eq!(answer["stop_reason"], "tool_use");
    let call = answer["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .cloned()
        .expect("a tool_use block");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["input"], json!({"city": "Paris"}));
    let body = received(&m);
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(
        body["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );

    let m2 = marker("messages-tool-result");
    let follow_up = json!([
        ask[0],
        {"role": "assistant", "content": answer["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": format!("18 degrees {m2}")}]},
    ]);
    let answer = client()
        .post(
            "/v1/messages",
            &json!({"model": "claude", "max_tokens": 256, "messages": follow_up, "tools": [tool]}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["stop_reason"], "end_turn");
    assert!(answer["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .contains("18 degrees"));
    let body = received(&m2);
    let turns = body["messages"].as_array().unwrap();
    assert_eq!(turns.len(), 3);
    assert_eq!(turns[1]["content"][1]["id"], call["id"]);
    assert_eq!(turns[2]["content"][0]["type"], "tool_result");
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn the_messages_api_to_anthropic_loses_nothing_either_way() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("messages-untouched");
    // What only Anthropic's API has: thinking, cache_control, a document, top_k, a beta flag.
    let request = json!({
        "model": "claude", "max_tokens": 2048, "top_k": 5,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "A short text."},
             "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": format!("Summarise it. {m}")},
        ]}],
    });
    let reply = client()
        .post_raw(
            "/v1/messages",
            serde_json::to_vec(&request).unwrap(),
            &[("anthropic-beta", "interleaved-thinking-2025-05-14")],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.body,
        switchyard_tests::strict::fixture(
            "anthropic",
            "usage_cache_thinking",
            "provider_response.json"
        ),
        "Anthropic's answer, byte for byte"
    );
    let got = s.fake.only(&m);
    assert_eq!(
        got.header("anthropic-beta"),
        Some("interleaved-thinking-2025-05-14")
    );
    let mut expected = request.clone();
    expected["model"] = json!(MODEL);
    assert_eq!(got.json(), expected, "the request, only the model changed");

    // A stream passes byte for byte too.
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    streamed["messages"][0]["content"][1]["text"] = json!(marker("messages-untouched-stream"));
    let reply = client().stream("/v1/messages", &streamed).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.text().into_bytes(),
        switchyard_tests::strict::fixture("anthropic", "stream_thinking", "provider_stream.sse"),
    );

    // A stream Anthropic cuts short ends in Anthropic's error event.
    let cut = json!({"model": "claude", "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": marker(STREAM_CUT)}]});
    let text = client().stream("/v1/messages", &cut).await.text();
    let last = text.trim_end().rsplit("\n\n").next().unwrap_or_default();
    assert!(
        last.starts_with("event: error\ndata: {\"type\":\"error\"")
            && last.contains("before it was complete"),
        "{text}"
    );
    s.fake.assert_no_violations();
}
