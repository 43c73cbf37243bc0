//! Every error a client can get is OpenAI-shaped, with the status the SDKs map to the right
//! exception: bad requests, and each way a provider can fail.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_tests::fake::Rule;
use switchyard_tests::{
    assert_openai_error, closed_port, marker, shared, Client, FakeProvider, Mode, Switchyard,
};

use crate::common::{chat, chat_stream, deployment, keyed, openai_on, yaml, FAKE_KEY};

/// How long the slow provider takes, against `timeout: 1` in its deployment.
const SLOW: Duration = Duration::from_secs(3);

struct Stack {
    sy: Switchyard,
    ok: FakeProvider,
    odd: FakeProvider,
    p400: FakeProvider,
    p401: FakeProvider,
    p429: FakeProvider,
    p429_both: [FakeProvider; 2],
    p503_both: [FakeProvider; 2],
    slow: FakeProvider,
}

static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();

fn stack() -> &'static Stack {
    shared(&STACK, || {
        let ok = FakeProvider::start();
        let p400 = FakeProvider::with_mode(Mode::Status(400));
        let p401 = FakeProvider::with_mode(Mode::Status(401));
        let p429 = FakeProvider::with_mode(Mode::Status(429));
        let p429_both = [429, 429].map(|s| FakeProvider::with_mode(Mode::Status(s)));
        let p503_both = [503, 503].map(|s| FakeProvider::with_mode(Mode::Status(s)));
        let slow = FakeProvider::with_mode(Mode::Slow(SLOW));
        // Providers failing in odd ways, one key each.
        let odd = FakeProvider::with_mode(Mode::Rules(vec![
            Rule::key("sk-empty", Mode::EmptyStatus(502)),
            Rule::key(
                "sk-text",
                Mode::TextStatus(500, "<html>Bad Gateway</html>".into()),
            ),
            Rule::key(
                "sk-cut",
                Mode::CutStream {
                    after_events: 2,
                    reset: false,
                },
            ),
            Rule::key(
                "sk-reset",
                Mode::CutStream {
                    after_events: 2,
                    reset: true,
                },
            ),
            Rule::key("sk-large", Mode::Large(2 * 1024 * 1024)),
            Rule::key("sk-echo-0123456789abcdef", Mode::EchoAuth(401)),
        ]));
        let config = json!({
            "model_list": [
                openai_on("err-ok", "gpt-4o-mini", &ok),
                openai_on("err-400", "gpt-4o-mini", &p400),
                openai_on("err-401", "gpt-4o-mini", &p401),
                openai_on("err-429", "gpt-4o-mini", &p429),
                openai_on("err-429-both", "gpt-4o-mini", &p429_both[0]),
                openai_on("err-429-both", "gpt-4o-mini", &p429_both[1]),
                openai_on("err-503-both", "gpt-4o-mini", &p503_both[0]),
                openai_on("err-503-both", "gpt-4o-mini", &p503_both[1]),
                deployment("err-refused", json!({
                    "model": "openai/gpt-4o-mini",
                    "api_base": format!("http://127.0.0.1:{}/v1", closed_port()),
                    "api_key": "os.environ/FAKE_KEY",
                })),
                deployment("err-timeout", json!({
                    "model": "openai/gpt-4o-mini",
                    "api_base": slow.url("/v1"),
                    "api_key": "os.environ/FAKE_KEY",
                    "timeout": 1,
                })),
                keyed("err-empty", &odd, "sk-empty", json!({})),
                keyed("err-text", &odd, "sk-text", json!({})),
                keyed("err-cut", &odd, "sk-cut", json!({})),
                keyed("err-reset", &odd, "sk-reset", json!({})),
                keyed("err-large", &odd, "sk-large", json!({})),
                keyed("err-echo", &odd, "sk-echo-0123456789abcdef", json!({})),
            ],
            "router_settings": {
                "num_retries": 1,
                "disable_cooldowns": true,
                "model_group_retry_policy": {"err-400": {"BadRequestErrorRetries": 0}},
            },
            "general_settings": {"max_request_size_mb": 1, "max_response_size_mb": 1},
        });
        let sy = Switchyard::start_with_env(&yaml(&config), &[("FAKE_KEY", FAKE_KEY)]);
        Stack {
            sy,
            ok,
            odd,
            p400,
            p401,
            p429,
            p429_both,
            p503_both,
            slow,
        }
    })
}

fn client() -> Client {
    Client::new(&stack().sy.base_url())
}

#[tokio::test]
async fn malformed_json_is_400() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("malformed");
    let body =
        format!(r#"{{"model": "err-ok", "messages": [{{"role": "user", "content": "{m}"}}]"#);
    let reply = client()
        .post_raw("/v1/chat/completions", body.into_bytes(), &[])
        .await;
    assert_openai_error(&reply, 400);
    assert!(
        s.ok.find(&m).is_empty(),
        "a malformed request never reaches a provider"
    );
}

#[tokio::test]
async fn missing_model_is_400() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let reply = client()
        .post(
            "/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    let message = assert_openai_error(&reply, 400);
    assert!(
        message.contains("model"),
        "the message names what is missing: {message}"
    );
}

#[tokio::test]
async fn missing_messages_is_400() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("no-messages");
    let reply = client()
        .post(
            "/v1/chat/completions",
            &json!({"model": "err-ok", "user": m}),
        )
        .await;
    let message = assert_openai_error(&reply, 400);
    assert!(
        message.contains("messages"),
        "the message names what is missing: {message}"
    );
    assert!(s.ok.find(&m).is_empty());
}

#[tokio::test]
async fn unknown_model_is_400() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let model = marker("no-such-model");
    let reply = client()
        .post("/v1/chat/completions", &chat(&model, "hi"))
        .await;
    let message = assert_openai_error(&reply, 400);
    assert!(
        message.contains(&model),
        "the message names the model: {message}"
    );
    assert!(
        message.contains("/v1/models"),
        "the message says where to look: {message}"
    );
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("large");
    // ~1.5 MB against max_request_size_mb: 1.
    let big = format!("{m} {}", "x".repeat(1_500_000));
    let reply = client()
        .post("/v1/chat/completions", &chat("err-ok", &big))
        .await;
    assert_openai_error(&reply, 413);
    assert!(s.ok.find(&m).is_empty());
}

#[tokio::test]
async fn provider_400_keeps_the_providers_message() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("p400");
    let reply = client()
        .post("/v1/chat/completions", &chat("err-400", &m))
        .await;
    let message = assert_openai_error(&reply, 400);
    assert!(
        message.contains("string too long"),
        "the provider's message must be kept: {message}"
    );
    assert_eq!(
        s.p400.find(&m).len(),
        1,
        "BadRequestErrorRetries: 0 for this group (LiteLLM retries a 400 by default)"
    );
}

#[tokio::test]
async fn provider_401_is_401() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("p401");
    let reply = client()
        .post("/v1/chat/completions", &chat("err-401", &m))
        .await;
    assert_openai_error(&reply, 401);
    assert!(!s.p401.find(&m).is_empty());
}

#[tokio::test]
async fn provider_429_is_429() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("p429");
    let reply = client()
        .post("/v1/chat/completions", &chat("err-429", &m))
        .await;
    assert_openai_error(&reply, 429);
    assert!(!s.p429.find(&m).is_empty());
}

#[tokio::test]
async fn provider_429_on_every_deployment_is_429() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("p429-both");
    let reply = client()
        .post("/v1/chat/completions", &chat("err-429-both", &m))
        .await;
    assert_openai_error(&reply, 429);
    let tried: usize = s.p429_both.iter().map(|f| f.find(&m).len()).sum();
    assert!(tried >= 1);
}

#[tokio::test]
async fn provider_503_everywhere_is_503() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("p503");
    let reply = client()
        .post("/v1/chat/completions", &chat("err-503-both", &m))
        .await;
    assert_openai_error(&reply, 503);
    let tried: usize = s.p503_both.iter().map(|f| f.find(&m).len()).sum();
    assert!(tried >= 1);
}

#[tokio::test]
async fn connection_refused_is_502() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let reply = client()
        .post("/v1/chat/completions", &chat("err-refused", "hi"))
        .await;
    assert_openai_error(&reply, 502);
}

#[tokio::test]
async fn upstream_timeout_is_504() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("timeout");
    let started = Instant::now();
    let reply = client()
        .post("/v1/chat/completions", &chat("err-timeout", &m))
        .await;
    let took = started.elapsed();
    assert_openai_error(&reply, 504);
    assert!(
        took >= Duration::from_millis(900) && took < SLOW * 2,
        "timeout: 1 should answer after about a second (or two with a retry), took {took:?}"
    );
    assert!(!s.slow.find(&m).is_empty());
}

/// A client cannot steer Envoy's retries or Switchyard's routing with headers: a 400 from the
/// provider stays one request, and the internal cluster header is ignored.
#[tokio::test]
async fn client_cannot_set_envoy_or_internal_headers() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("p400-steer");
    let body = serde_json::to_vec(&chat("err-400", &m)).unwrap();
    let reply = client()
        .post_raw(
            "/v1/chat/completions",
            body,
            &[
                ("x-envoy-retry-on", "retriable-status-codes"),
                ("x-envoy-retriable-status-codes", "400"),
                ("x-envoy-max-retries", "5"),
                ("x-switchyard-cluster", "switchyard_sidecar"),
            ],
        )
        .await;
    assert_openai_error(&reply, 400);
    let got = s.p400.find(&m);
    assert_eq!(
        got.len(),
        1,
        "the client's retry headers must not make Envoy retry"
    );
    assert!(got[0].headers_starting_with("x-envoy-retry").is_empty());
    assert!(got[0].header("x-switchyard-cluster").is_none());
}

#[tokio::test]
async fn an_error_with_an_empty_body_gets_a_message() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let reply = client()
        .post("/v1/chat/completions", &chat("err-empty", "x"))
        .await;
    let message = assert_openai_error(&reply, 502);
    assert!(message.contains("empty body"), "{message}");
    assert!(reply.header("x-litellm-model-id").is_some());
}

#[tokio::test]
async fn an_error_that_is_not_json_gets_an_openai_shape() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let reply = client()
        .post("/v1/chat/completions", &chat("err-text", "x"))
        .await;
    let message = assert_openai_error(&reply, 500);
    assert!(
        message.contains("Bad Gateway"),
        "the provider's words are kept: {message}"
    );
}

/// A stream the provider ends early ends, for the client, with an OpenAI error event, not
/// as if the answer were complete.
#[tokio::test]
async fn a_stream_cut_short_ends_with_an_error_event() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let reply = client()
        .stream("/v1/chat/completions", &chat_stream("err-cut", "x", false))
        .await;
    assert_eq!(reply.status, 200);
    let data = reply.data();
    assert!(data.len() >= 3, "{data:?}");
    let last: serde_json::Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "502", "{last}");
    assert!(last["error"]["message"]
        .as_str()
        .unwrap()
        .contains("before it was complete"));
    assert!(!data.iter().any(|d| d == "[DONE]"));
}

/// A provider connection that breaks mid-stream cannot be turned into an event (Envoy resets
/// the client's stream); the client must at least see the break, never a clean end.
#[tokio::test]
async fn a_stream_reset_mid_way_is_not_a_clean_end() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let (reply, broke) = client()
        .stream_result(
            "/v1/chat/completions",
            &chat_stream("err-reset", "x", false),
        )
        .await;
    let text = reply.text();
    assert!(
        broke.is_some() || text.contains("\"error\""),
        "the client must see the stream break or an error event: {text}"
    );
    assert!(!text.contains("[DONE]"), "{text}");
}

#[tokio::test]
async fn an_answer_over_the_limit_is_a_502_that_says_so() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let reply = client()
        .post("/v1/chat/completions", &chat("err-large", "x"))
        .await;
    let message = assert_openai_error(&reply, 502);
    assert!(message.contains("max_response_size_mb"), "{message}");
}

#[tokio::test]
async fn a_provider_key_echoed_in_an_error_is_scrubbed() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let reply = client()
        .post("/v1/chat/completions", &chat("err-echo", "x"))
        .await;
    let message = assert_openai_error(&reply, 401);
    assert!(
        !reply.text().contains("0123456789abcdef"),
        "{}",
        reply.text()
    );
    assert!(message.contains("[redacted]"), "{message}");
    assert!(!s.odd.requests().is_empty());
}
