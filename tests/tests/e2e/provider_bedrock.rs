//! Amazon Bedrock end to end: OpenAI clients (plain HTTP and the official openai SDK) talk to
//! `bedrock/` and `bedrock_converse/` deployments through the real Envoy; the filter signs
//! every request with SigV4, and a strict fake of Bedrock's runtime API recomputes the
//! signature and checks the body against the service model (a broken rule is recorded and
//! fails the test).

use std::sync::OnceLock;

use serde_json::{json, Value};
use switchyard_tests::fakes::bedrock::{
    self, ACCESS_KEY_ID, CHAT_TEXT, COHERE_EMBED, MODEL, REGION, RETRY_AFTER, SECRET_ACCESS_KEY,
    SERVER_ERROR, SESSION_TOKEN, STREAM_CUT, STREAM_ERROR, STREAM_RESET, STREAM_TEXT, THROTTLED,
    TITAN_EMBED, TOO_LONG,
};
use switchyard_tests::{
    assert_openai_error, marker, shared, Client, Recorded, StrictFake, Switchyard,
};

use crate::common::{deployment, provider_sdk, yaml};

struct Stack {
    sy: Switchyard,
    fake: StrictFake,
}

static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();

fn stack() -> &'static Stack {
    shared(&STACK, || {
        let fake = StrictFake::start("bedrock", bedrock::handler());
        let on_fake = |model: &str| {
            json!({
                "model": model,
                "aws_bedrock_runtime_endpoint": fake.url(""),
                "aws_region_name": REGION,
                "aws_access_key_id": "os.environ/BEDROCK_FAKE_KEY_ID",
                "aws_secret_access_key": "os.environ/BEDROCK_FAKE_SECRET",
            })
        };
        let mut with_token = on_fake(&format!("bedrock_converse/{MODEL}"));
        with_token["aws_session_token"] = json!("os.environ/BEDROCK_FAKE_SESSION");
        let mut bad_key = on_fake(&format!("bedrock/{MODEL}"));
        bad_key["aws_access_key_id"] = json!("AKIANOTTHERIGHTKEY01");
        let config = json!({
            "model_list": [
                deployment("claude", on_fake(&format!("bedrock/{MODEL}"))),
                // LiteLLM's route prefix and temporary credentials (a session token).
                deployment("claude-converse", with_token),
                // The failure markers go to their own group, so no failure cools down "claude".
                deployment("claude-errors", on_fake(&format!("bedrock/converse/{MODEL}"))),
                deployment("claude-bad-key", bad_key),
                deployment("titan", on_fake(&format!("bedrock/{TITAN_EMBED}"))),
                deployment("cohere-embed", on_fake(&format!("bedrock/{COHERE_EMBED}"))),
            ],
            "router_settings": {"num_retries": 0, "disable_cooldowns": true},
        });
        let sy = Switchyard::start_with_env(
            &yaml(&config),
            &[
                ("BEDROCK_FAKE_KEY_ID", ACCESS_KEY_ID),
                ("BEDROCK_FAKE_SECRET", SECRET_ACCESS_KEY),
                ("BEDROCK_FAKE_SESSION", SESSION_TOKEN),
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
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})
}

/// The request the fake received carrying `marker`, checked for what every Bedrock request
/// carries (the fake has checked the signature itself).
fn received(marker: &str, operation: &str) -> Recorded {
    let got = stack().fake.only(marker);
    assert_eq!(got.method, "POST");
    assert_eq!(
        got.uri,
        format!("/model/anthropic.claude-3-haiku-20240307-v1%3A0/{operation}")
    );
    assert!(got
        .header("authorization")
        .unwrap()
        .starts_with(&format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/")));
    assert!(got.header("x-amz-date").is_some());
    assert_eq!(
        got.headers_starting_with("x-switchyard"),
        Vec::<&str>::new()
    );
    got
}

#[tokio::test]
async fn chat() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("bedrock-chat");
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "claude", "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": m}],
                "stop": "END", "temperature": 0.2, "max_tokens": 100}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], "claude");
    assert_eq!(answer["choices"][0]["message"]["content"], CHAT_TEXT);
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(answer["usage"]["total_tokens"], 30);
    // Converse answers carry no id: each answer gets Envoy's request id.
    let id = answer["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-") && id.len() > 20, "{id}");
    let again = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "claude", "messages": [{"role": "user", "content": marker("bedrock-id")}]}),
        )
        .await
        .expect_json(200);
    assert_ne!(again["id"], answer["id"], "ids are unique");

    let got = received(&m, "converse");
    assert_eq!(got.header("x-amz-security-token"), None);
    let body = got.json();
    assert_eq!(body["system"], json!([{"text": "Be brief."}]));
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [{"text": m}]}])
    );
    assert_eq!(
        body["inferenceConfig"],
        json!({"maxTokens": 100, "temperature": 0.2, "stopSequences": ["END"]})
    );
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn a_session_token_and_litellm_route_prefixes() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("bedrock-session");
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "claude-converse", "messages": [{"role": "user", "content": m}]}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["model"], "claude-converse");
    let got = received(&m, "converse");
    assert_eq!(got.header("x-amz-security-token"), Some(SESSION_TOKEN));
    assert!(got
        .header("authorization")
        .unwrap()
        .contains("x-amz-security-token"));
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn chat_stream() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("bedrock-stream");
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
    assert_eq!(reply.content(), STREAM_TEXT);
    let finish = reply.json_chunks().iter().find_map(|c| {
        c["choices"][0]["finish_reason"]
            .as_str()
            .map(str::to_string)
    });
    assert_eq!(finish.as_deref(), Some("stop"));
    assert_eq!(
        reply.usage().map(|u| u["total_tokens"].clone()),
        Some(json!(22))
    );
    received(&m, "converse-stream");
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn tools_and_the_tool_result_follow_up() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("bedrock-tools");
    let ask = json!([{"role": "user", "content": format!("What is the weather in Paris? {m}")}]);
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "claude", "messages": ask, "tools": [weather_tool()], "tool_choice": "required"}),
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
    let body = received(&m, "converse").json();
    assert_eq!(
        body["toolConfig"]["tools"][0]["toolSpec"]["name"],
        "get_weather"
    );
    assert_eq!(
        body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["type"],
        "object"
    );
    assert_eq!(body["toolConfig"]["toolChoice"], json!({"any": {}}));

    // The tool's result goes back after the assistant's turn.
    let m2 = marker("bedrock-tool-result");
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
    let body = received(&m2, "converse").json();
    let turns = body["messages"].as_array().unwrap();
    assert_eq!(turns.len(), 3);
    assert_eq!(turns[1]["role"], "assistant");
    assert_eq!(
        turns[1]["content"][1]["toolUse"]["toolUseId"],
        call["id"].clone()
    );
    assert_eq!(
        turns[2]["content"][0],
        json!({"toolResult": {"toolUseId": call["id"], "content": [{"text": format!("18 degrees {m2}")}]}})
    );
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn a_streamed_tool_call() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("bedrock-stream-tools");
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
    assert_eq!(calls[0]["id"], "tooluse_Xr2iQ4lLQv2eBkKXm2Ao7w");
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
    // Without include_usage, the usage rides on the finish chunk.
    assert_eq!(
        reply.usage().map(|u| u["total_tokens"].clone()),
        Some(json!(426))
    );
    assert_eq!(reply.data().last().map(String::as_str), Some("[DONE]"));
    received(&m, "converse-stream");
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn images_by_data_url_and_a_clear_refusal_of_http_urls() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("bedrock-image");
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    let answer = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "claude", "messages": [{"role": "user", "content": [
                {"type": "text", "text": m},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}}]}]}),
        )
        .await
        .expect_json(200);
    assert!(answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("red"));
    let body = received(&m, "converse").json();
    assert_eq!(
        body["messages"][0]["content"][1],
        json!({"image": {"format": "png", "source": {"bytes": png}}})
    );

    let m = marker("bedrock-image-url");
    let reply = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "claude", "messages": [{"role": "user", "content": [
                {"type": "text", "text": m},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}),
        )
        .await;
    let message = assert_openai_error(&reply, 400);
    assert!(message.contains("data URL"), "{message}");
    assert!(s.fake.find(&m).is_empty());
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn embeddings_with_titan_and_cohere() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("bedrock-titan");
    let answer = client()
        .post(
            "/v1/embeddings",
            &json!({"model": "titan", "input": m, "dimensions": 256}),
        )
        .await
        .expect_json(200);
    assert_eq!(answer["object"], "list");
    assert_eq!(answer["model"], "titan");
    assert_eq!(answer["data"][0]["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(answer["usage"]["prompt_tokens"], 5);
    let got = s.fake.only(&m);
    assert_eq!(got.uri, "/model/amazon.titan-embed-text-v2%3A0/invoke");
    assert_eq!(
        got.json(),
        json!({"inputText": m, "dimensions": 256, "normalize": true})
    );

    // Titan embeds one text a call: several are refused before any request.
    let m = marker("bedrock-titan-many");
    let reply = client()
        .post(
            "/v1/embeddings",
            &json!({"model": "titan", "input": [m, "two"]}),
        )
        .await;
    let message = assert_openai_error(&reply, 400);
    assert!(message.contains("one input per request"), "{message}");
    assert!(s.fake.find(&m).is_empty());

    let m = marker("bedrock-cohere");
    let answer = client()
        .post(
            "/v1/embeddings",
            &json!({"model": "cohere-embed", "input": [m, "second text", "third"]}),
        )
        .await
        .expect_json(200);
    let data = answer["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[2]["index"], 2);
    assert_eq!(data[1]["embedding"], json!([0.125, 0.75, -1.0, 0.5]));
    let got = s.fake.only(&m);
    assert_eq!(got.uri, "/model/cohere.embed-english-v3/invoke");
    assert_eq!(
        got.json(),
        json!({"texts": [m, "second text", "third"], "input_type": "search_document"})
    );
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn errors_are_openai_shaped_with_retry_after_kept() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let ask = |text: &str| json!({"model": "claude-errors", "messages": [{"role": "user", "content": text}]});

    let reply = client()
        .post("/v1/chat/completions", &ask(&marker(THROTTLED)))
        .await;
    let message = assert_openai_error(&reply, 429);
    assert!(message.contains("RateLimitError"), "{message}");
    assert!(
        message.contains("ThrottlingException: Too many requests"),
        "{message}"
    );
    assert_eq!(reply.header("retry-after"), Some(RETRY_AFTER));

    let reply = client()
        .post("/v1/chat/completions", &ask(&marker(SERVER_ERROR)))
        .await;
    let message = assert_openai_error(&reply, 500);
    assert!(message.contains("InternalServerException"), "{message}");

    let reply = client()
        .post("/v1/chat/completions", &ask(&marker(TOO_LONG)))
        .await;
    let message = assert_openai_error(&reply, 400);
    assert!(message.contains("ContextWindowExceededError"), "{message}");
    assert!(message.contains("Input is too long"), "{message}");

    let reply = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "claude-bad-key", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    let message = assert_openai_error(&reply, 401);
    assert!(message.contains("AuthenticationError"), "{message}");
    assert!(message.contains("security token"), "{message}");

    // A parameter Bedrock cannot take is refused before any request, naming it.
    let m = marker("bedrock-unsupported");
    let reply = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "claude-errors", "messages": [{"role": "user", "content": m}], "presence_penalty": 0.5}),
        )
        .await;
    let message = assert_openai_error(&reply, 400);
    assert!(message.contains("['presence_penalty']"), "{message}");
    assert!(s.fake.find(&m).is_empty());
    // With drop_params it is dropped.
    let reply = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "claude-errors", "messages": [{"role": "user", "content": m}],
                "presence_penalty": 0.5, "drop_params": true}),
        )
        .await;
    reply.expect_json(200);
    let body = s.fake.only(&m).json();
    assert!(body.get("presence_penalty").is_none(), "{body}");
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
    let data = reply.data();
    assert_eq!(reply.content(), "Once upon a time", "{data:?}");
    let (code, message) = reply.final_error();
    assert_eq!(code, "500", "{message}");
    assert!(message.contains("modelStreamErrorException"), "{message}");

    let reply = client()
        .stream("/v1/chat/completions", &ask(&marker(STREAM_CUT)))
        .await;
    assert_eq!(reply.status, 200);
    let data = reply.data();
    assert_eq!(reply.content(), "Once upon a time", "{data:?}");
    let (code, message) = reply.final_error();
    assert_eq!(code, "502", "{message}");
    assert!(message.contains("before it was complete"), "{message}");

    // A dropped connection: the client sees the break or an error event, never [DONE].
    let (reply, broke) = client()
        .stream_result("/v1/chat/completions", &ask(&marker(STREAM_RESET)))
        .await;
    let text = reply.text();
    assert!(
        broke.is_some() || text.contains("\"error\""),
        "the client must see the stream break or an error event: {text}"
    );
    assert!(!text.contains("[DONE]"), "{text}");

    // Throttled before the stream starts: an ordinary 429.
    let reply = client()
        .post("/v1/chat/completions", &ask(&marker(THROTTLED)))
        .await;
    assert_openai_error(&reply, 429);
    s.fake.assert_no_violations();
}

#[test]
fn the_openai_python_sdk() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let sdk = provider_sdk(&s.sy, "claude", true, Some("cohere-embed"));
    let report = &sdk.report;
    let line = |key: &str| sdk.line(key);
    assert_eq!(line("CHAT_MODEL"), "claude", "{report}");
    assert_eq!(line("CHAT_CONTENT"), CHAT_TEXT, "{report}");
    assert_eq!(line("CHAT_FINISH"), "stop", "{report}");
    assert_eq!(line("CHAT_USAGE"), "21 9 30", "{report}");
    assert_eq!(line("STREAM_CONTENT"), STREAM_TEXT, "{report}");
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
    assert_eq!(line("EMBEDDINGS"), "2 4 cohere-embed", "{report}");
    // Four little-endian f32s, decoded from base64 by the script.
    assert_eq!(line("EMBEDDINGS_BASE64"), "4", "{report}");
    s.fake.assert_no_violations();
}

#[tokio::test]
async fn the_messages_api_to_claude_on_bedrock_goes_to_invoke_model() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("bedrock-messages");
    let ask = json!({"model": "claude", "max_tokens": 64,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": format!("Say hello {m}")}]});
    let reply = client()
        .post_raw(
            "/v1/messages",
            serde_json::to_vec(&ask).unwrap(),
            // One flag Bedrock takes, one it does not.
            &[(
                "anthropic-beta",
                "interleaved-thinking-2025-05-14,files-api-2025-04-14",
            )],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.body,
        switchyard_tests::strict::fixture("anthropic", "chat", "provider_response.json"),
        "Claude's answer, byte for byte"
    );
    let got = received(&m, "invoke");
    let mut expected = ask.clone();
    let body = expected.as_object_mut().unwrap();
    body.remove("model");
    body.insert("anthropic_version".into(), json!("bedrock-2023-05-31"));
    body.insert(
        "anthropic_beta".into(),
        json!(["interleaved-thinking-2025-05-14"]),
    );
    assert_eq!(
        got.json(),
        expected,
        "Anthropic's body, as InvokeModel takes it"
    );

    // A stream: Bedrock's chunks become Anthropic's own events.
    let m = marker("bedrock-messages-stream");
    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    streamed["messages"][0]["content"] = json!(format!("Say hello {m}"));
    let reply = client().stream("/v1/messages", &streamed).await;
    assert_eq!(reply.status, 200);
    let text = reply.text();
    assert!(text.starts_with("event: message_start\ndata: "), "{text}");
    assert!(text.contains("event: content_block_delta"), "{text}");
    assert!(
        text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
        "{text}"
    );
    received(&m, "invoke-with-response-stream");
    s.fake.assert_no_violations();
}
