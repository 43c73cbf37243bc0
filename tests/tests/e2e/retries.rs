//! Retries and timeouts as LiteLLM's Router has them: num_retries (global, per request),
//! retry_policy per error class, waiting only when the same deployment is retried (and then
//! for the provider's Retry-After), per-attempt timeouts that fail over, a time to first
//! token for streams that fails over before the client sees a byte, and a listener that
//! cuts off clients too slow to send their headers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_tests::fake::{Rule, CHAT_CONTENT};
use switchyard_tests::{
    assert_openai_error, marker, shared, Client, FakeProvider, Mode, Switchyard,
};

use crate::common::{chat, chat_stream, keyed, tries, yaml};

struct Stack {
    sy: Switchyard,
    fake: FakeProvider,
}

static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();

/// Keys on one fake: f* fail with 500, r* with 429 (Retry-After on ra), s* are slow, t* are
/// slow to start a stream, h* hang, x* reset; any other key answers.
fn stack() -> &'static Stack {
    shared(&STACK, || {
        let ra = vec![("retry-after".to_string(), "1".to_string())];
        let fake = FakeProvider::with_mode(Mode::Rules(vec![
            Rule::key("sk-f1", Mode::Status(500)),
            Rule::key("sk-f2", Mode::Status(500)),
            Rule::key("sk-f3", Mode::Status(500)),
            Rule::key("sk-r1", Mode::Status(429)),
            Rule::key("sk-r2", Mode::Status(429)),
            Rule::key("sk-ra", Mode::StatusWithHeaders(429, ra.clone())),
            Rule::key("sk-ra2", Mode::StatusWithHeaders(429, ra.clone())),
            Rule::key("sk-ra3", Mode::StatusWithHeaders(429, ra)),
            Rule::key("sk-s1", Mode::Slow(Duration::from_secs(3))),
            Rule::key("sk-s2", Mode::Slow(Duration::from_secs(3))),
            Rule::key("sk-t1", Mode::SlowFirstEvent(Duration::from_secs(3))),
            Rule::key("sk-t2", Mode::SlowFirstEvent(Duration::from_secs(3))),
            Rule::key("sk-h1", Mode::Hang),
            Rule::key("sk-x1", Mode::Reset),
            Rule::key("sk-x2", Mode::Reset),
        ]));
        let config = json!({
            "model_list": [
                keyed("failing", &fake, "sk-f1", json!({})),
                keyed("failing", &fake, "sk-f2", json!({})),
                keyed("failing", &fake, "sk-f3", json!({})),
                keyed("one-failing", &fake, "sk-f1", json!({})),
                keyed("limited", &fake, "sk-r1", json!({})),
                keyed("limited", &fake, "sk-r2", json!({})),
                keyed("retry-after", &fake, "sk-ra", json!({})),
                keyed("retry-after-two", &fake, "sk-ra2", json!({})),
                keyed("retry-after-two", &fake, "sk-ra3", json!({})),
                keyed("slow-or-ok", &fake, "sk-s1", json!({"timeout": 1})),
                keyed("slow-or-ok", &fake, "sk-ok", json!({"timeout": 1})),
                keyed("slow", &fake, "sk-s2", json!({"timeout": 1})),
                keyed("ttft", &fake, "sk-t1", json!({"stream_timeout": 1})),
                keyed("ttft", &fake, "sk-ok2", json!({"stream_timeout": 1})),
                keyed("ttft-only", &fake, "sk-t2", json!({"stream_timeout": 1})),
                keyed("hang", &fake, "sk-h1", json!({"timeout": 1})),
                keyed("reset-or-ok", &fake, "sk-x1", json!({})),
                keyed("reset-or-ok", &fake, "sk-ok3", json!({})),
                keyed("reset", &fake, "sk-x2", json!({})),
            ],
            "router_settings": {
                "num_retries": 2,
                // Keep every deployment in play: cooldowns are tested in routing.rs.
                "disable_cooldowns": true,
                "model_group_retry_policy": {"limited": {"RateLimitErrorRetries": 0}},
            },
        });
        let sy = Switchyard::start(&yaml(&config));
        Stack { sy, fake }
    })
}

fn client() -> Client {
    Client::new(&stack().sy.base_url())
}

#[tokio::test]
async fn num_retries_bounds_the_attempts_and_the_last_error_is_delivered() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("retries");
    let reply = client()
        .post("/v1/chat/completions", &chat("failing", &m))
        .await;
    assert_openai_error(&reply, 500);
    assert_eq!(s.fake.find(&m).len(), 3, "1 + num_retries attempts");
    for key in ["sk-f1", "sk-f2", "sk-f3"] {
        assert_eq!(
            tries(&stack().fake, &m, key),
            1,
            "each attempt on another deployment"
        );
    }
    assert_eq!(reply.header("x-litellm-attempted-retries"), Some("2"));
}

#[tokio::test]
async fn num_retries_per_request_in_the_body_or_a_header() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("per-request");
    let mut body = chat("one-failing", &m);
    body["num_retries"] = json!(0);
    assert_openai_error(&client().post("/v1/chat/completions", &body).await, 500);
    assert_eq!(s.fake.find(&m).len(), 1);
    assert!(
        s.fake.find(&m)[0].json().get("num_retries").is_none(),
        "a router parameter, not the provider's"
    );

    let m = marker("per-request-header");
    let body = serde_json::to_vec(&chat("failing", &m)).unwrap();
    let reply = client()
        .post_raw(
            "/v1/chat/completions",
            body,
            &[("x-litellm-num-retries", "1")],
        )
        .await;
    assert_openai_error(&reply, 500);
    assert_eq!(s.fake.find(&m).len(), 2);
}

#[tokio::test]
async fn retry_policy_per_error_class() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("policy");
    let reply = client()
        .post("/v1/chat/completions", &chat("limited", &m))
        .await;
    assert_openai_error(&reply, 429);
    assert_eq!(
        s.fake.find(&m).len(),
        1,
        "RateLimitErrorRetries: 0 for this group"
    );
}

/// LiteLLM waits between attempts only when it retries the same deployment, and then for
/// the provider's Retry-After when there is one.
#[tokio::test]
async fn retry_after_is_honoured_when_the_same_deployment_is_retried() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("retry-after");
    let started = Instant::now();
    let reply = client()
        .post("/v1/chat/completions", &chat("retry-after", &m))
        .await;
    let took = started.elapsed();
    assert_openai_error(&reply, 429);
    assert_eq!(s.fake.find(&m).len(), 3);
    assert!(
        took >= Duration::from_millis(1900),
        "two waits of Retry-After: 1, took {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");

    let m = marker("no-wait");
    let started = Instant::now();
    let reply = client()
        .post("/v1/chat/completions", &chat("retry-after-two", &m))
        .await;
    assert_openai_error(&reply, 429);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "another deployment: no wait, took {:?}",
        started.elapsed()
    );
    assert_eq!(s.fake.find(&m).len(), 3);
}

#[tokio::test]
async fn a_deployment_timeout_fails_over_and_is_a_504_when_nothing_answers() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    for _ in 0..4 {
        let m = marker("timeout-failover");
        let started = Instant::now();
        let answer = client()
            .post("/v1/chat/completions", &chat("slow-or-ok", &m))
            .await
            .expect_json(200);
        assert_eq!(answer["choices"][0]["message"]["content"], CHAT_CONTENT);
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(tries(&stack().fake, &m, "sk-ok"), 1);
    }
    let m = marker("timeout");
    let started = Instant::now();
    let reply = client()
        .post("/v1/chat/completions", &chat("slow", &m))
        .await;
    let message = assert_openai_error(&reply, 504);
    assert!(message.contains("timeout"), "{message}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_secs(7),
        "three attempts of 1 s, took {took:?}"
    );
    assert_eq!(s.fake.find(&m).len(), 3);
}

#[tokio::test]
async fn a_request_timeout_overrides_the_deployments() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let m = marker("request-timeout");
    let mut body = chat("hang", &m);
    body["timeout"] = json!(0.5);
    body["num_retries"] = json!(0);
    let started = Instant::now();
    assert_openai_error(&client().post("/v1/chat/completions", &body).await, 504);
    assert!(
        started.elapsed() < Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
}

/// A stream whose first event is late fails over to another deployment before the client
/// has seen a byte; with no other deployment, the client gets a clean 504.
#[tokio::test]
async fn time_to_first_token_fails_over_before_the_first_byte() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    for _ in 0..4 {
        let m = marker("ttft");
        let reply = client()
            .stream("/v1/chat/completions", &chat_stream("ttft", &m, true))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.content(), CHAT_CONTENT);
        assert!(!reply.text().contains("error"), "{}", reply.text());
        assert_eq!(reply.data().last().map(String::as_str), Some("[DONE]"));
        let total = reply.chunks.last().map(|(t, _)| *t).unwrap_or_default();
        assert!(total < Duration::from_millis(2500), "{total:?}");
        assert_eq!(tries(&stack().fake, &m, "sk-ok2"), 1);
    }
    let m = marker("ttft-504");
    let mut body = chat_stream("ttft-only", &m, false);
    body["num_retries"] = json!(0);
    let reply = client().post("/v1/chat/completions", &body).await;
    assert_openai_error(&reply, 504);
}

#[tokio::test]
async fn a_provider_that_resets_the_connection_is_retried_elsewhere() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    for _ in 0..4 {
        let m = marker("reset");
        client()
            .post("/v1/chat/completions", &chat("reset-or-ok", &m))
            .await
            .expect_json(200);
        assert_eq!(tries(&stack().fake, &m, "sk-ok3"), 1);
    }
    let m = marker("reset-only");
    let mut body = chat("reset", &m);
    body["num_retries"] = json!(1);
    let message = assert_openai_error(&client().post("/v1/chat/completions", &body).await, 502);
    assert!(
        message.contains("could not reach the provider"),
        "{message}"
    );
}

/// A client that never finishes its headers is cut off (general_settings.request_headers_timeout).
#[test]
fn slow_headers_are_cut_off() {
    let fake = FakeProvider::start();
    let config = json!({
        "model_list": [keyed("m", &fake, "sk", json!({}))],
        "general_settings": {"request_headers_timeout": 1},
    });
    let sy = Switchyard::start(&yaml(&config));
    let mut conn = TcpStream::connect(("127.0.0.1", sy.port())).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: app")
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = conn.read_to_end(&mut buf);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "the connection must be closed about a second in, took {took:?}"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}
