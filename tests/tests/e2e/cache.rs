//! The response cache through the real gateway (in the sidecar's memory here; Redis in
//! cache_redis.rs): a hit never reaches the provider, every per-request control does what it
//! does in LiteLLM, TTLs expire, a cached answer streams, a streamed answer is kept, and a
//! hit is logged as one that cost nothing.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_tests::{marker, Client, FakeProvider, Reply, Switchyard};

use crate::common::{chat, chat_stream, openai_on, yaml, FAKE_KEY};

const MASTER: &str = "sk-master-of-caches";

fn start(fake: &FakeProvider, cache_params: Value) -> Switchyard {
    let config = json!({
        "model_list": [openai_on("cached", "gpt-4o-mini", fake)],
        "litellm_settings": {"cache": true, "cache_params": cache_params},
        "general_settings": {"master_key": "os.environ/E2E_MASTER_KEY"},
    });
    Switchyard::start_with_env(
        &yaml(&config),
        &[("FAKE_KEY", FAKE_KEY), ("E2E_MASTER_KEY", MASTER)],
    )
}

fn client(sy: &Switchyard) -> Client {
    Client::new(&sy.base_url()).with_key(MASTER)
}

/// Sends `body` until the answer comes from the cache (answers are kept within a tick or
/// two of being given); the hit and how many misses came first. Panics after 5 s.
pub async fn until_hit(client: &Client, body: &Value) -> (Reply, usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut misses = 0;
    loop {
        let reply = client.post("/v1/chat/completions", body).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        if reply.header("x-litellm-cache-hit") == Some("True") {
            return (reply, misses);
        }
        assert!(Instant::now() < deadline, "no cache hit within 5 s");
        misses += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `body` once, and says whether the cache answered.
async fn hit(client: &Client, body: &Value) -> bool {
    let reply = client.post("/v1/chat/completions", body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.header("x-litellm-cache-hit") == Some("True")
}

#[tokio::test]
async fn a_second_identical_request_is_answered_from_the_cache() {
    let fake = FakeProvider::start();
    let sy = start(&fake, json!({"type": "local"}));
    let _logs = sy.dump_logs_on_failure();
    let c = client(&sy);
    let m = marker("cache-hit");
    let first = c.post("/v1/chat/completions", &chat("cached", &m)).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-litellm-cache-hit"), None);
    let key = first
        .header("x-litellm-cache-key")
        .expect("a miss names its key")
        .to_string();
    assert_eq!(key.len(), 64);

    // The same request written differently (key order, whitespace) is the same request.
    let same = format!(
        r#"{{ "messages" : [ {{ "content": "{m}", "role": "user" }} ], "model": "cached" }}"#
    );
    let (_, misses) = until_hit(&c, &chat("cached", &m)).await;
    let second = c
        .post_raw(
            "/v1/chat/completions",
            same.into_bytes(),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(second.status, 200);
    assert_eq!(second.header("x-litellm-cache-hit"), Some("True"));
    assert_eq!(second.header("x-litellm-cache-key"), Some(key.as_str()));
    assert_eq!(second.header("x-litellm-response-cost"), Some("0"));
    assert_eq!(second.json()["choices"], first.json()["choices"]);
    assert_eq!(
        fake.find(&m).len(),
        1 + misses,
        "hits never reach the provider"
    );

    // Another prompt, or another parameter, is another answer.
    assert!(!hit(&c, &chat("cached", &marker("cache-other"))).await);
    let mut warmer = chat("cached", &m);
    warmer["temperature"] = json!(1.5);
    assert!(!hit(&c, &warmer).await);

    // The hit is in the spend logs, at no cost.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let logs = c.get("/spend/logs").await.expect_json(200);
        let hits: Vec<&Value> = logs
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["cache_hit"] == "True")
            .collect();
        if let Some(h) = hits.first() {
            assert_eq!(h["spend"], 0.0, "{h}");
            assert_eq!(h["model_group"], "cached", "{h}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no cache hit in the spend logs: {logs}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn per_request_controls() {
    let fake = FakeProvider::start();
    let sy = start(&fake, json!({"ttl": 600}));
    let _logs = sy.dump_logs_on_failure();
    let c = client(&sy);
    let with = |m: &str, extra: Value| {
        let mut body = chat("cached", m);
        for (k, v) in extra.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        body
    };

    // caching: false neither reads nor keeps.
    let m = marker("caching-false");
    let off = with(&m, json!({"caching": false}));
    c.post("/v1/chat/completions", &off).await.expect_json(200);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!hit(&c, &off).await);
    assert!(!hit(&c, &chat("cached", &m)).await, "nothing was kept");

    // no-store: not kept; no-cache: not read, but kept.
    let m = marker("no-store");
    c.post(
        "/v1/chat/completions",
        &with(&m, json!({"cache": {"no-store": true}})),
    )
    .await
    .expect_json(200);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!hit(&c, &chat("cached", &m)).await, "no-store kept nothing");
    until_hit(&c, &chat("cached", &m)).await;
    let before = fake.find(&m).len();
    assert!(!hit(&c, &with(&m, json!({"cache": {"no-cache": true}}))).await);
    assert_eq!(
        fake.find(&m).len(),
        before + 1,
        "no-cache asked the provider"
    );

    // ttl: the answer goes after it.
    let m = marker("ttl");
    let short = with(&m, json!({"cache": {"ttl": 1}}));
    c.post("/v1/chat/completions", &short)
        .await
        .expect_json(200);
    // (Asked the same way: a miss in between would keep the answer for the default ttl.)
    until_hit(&c, &short).await;
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert!(!hit(&c, &chat("cached", &m)).await, "expired after its ttl");

    // s-maxage: an answer older than the client accepts is not used.
    let m = marker("s-maxage");
    c.post("/v1/chat/completions", &chat("cached", &m))
        .await
        .expect_json(200);
    until_hit(&c, &chat("cached", &m)).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(
        !hit(&c, &with(&m, json!({"cache": {"s-maxage": 1}}))).await,
        "too old"
    );
    assert!(
        hit(&c, &with(&m, json!({"cache": {"s-maxage": 60}}))).await,
        "young enough"
    );

    // namespace: answers kept under one are not found under another.
    let m = marker("namespace");
    let a = with(&m, json!({"cache": {"namespace": "team-a"}}));
    let first = c.post("/v1/chat/completions", &a).await;
    assert!(first
        .header("x-litellm-cache-key")
        .unwrap_or_default()
        .starts_with("team-a:"));
    until_hit(&c, &a).await;
    assert!(!hit(&c, &with(&m, json!({"cache": {"namespace": "team-b"}}))).await);
    assert!(!hit(&c, &chat("cached", &m)).await);
    // The controls never reach the provider.
    assert!(fake
        .find(&m)
        .iter()
        .all(|r| r.json().get("cache").is_none()));
}

#[tokio::test]
async fn cached_answers_stream_and_streamed_answers_are_kept() {
    let fake = FakeProvider::start();
    let sy = start(&fake, json!({}));
    let _logs = sy.dump_logs_on_failure();
    let c = client(&sy);

    // Kept from a plain answer, given back as a stream.
    let m = marker("to-stream");
    let plain = c
        .post("/v1/chat/completions", &chat("cached", &m))
        .await
        .expect_json(200);
    let (_, misses) = until_hit(&c, &chat("cached", &m)).await;
    let stream = c
        .stream("/v1/chat/completions", &chat_stream("cached", &m, true))
        .await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("x-litellm-cache-hit"), Some("True"));
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    assert_eq!(
        stream.content(),
        plain["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
    );
    assert_eq!(stream.usage(), Some(plain["usage"].clone()));
    assert_eq!(stream.data().last().map(String::as_str), Some("[DONE]"));
    assert_eq!(fake.find(&m).len(), 1 + misses);

    // Kept from a stream, given back whole.
    let m = marker("from-stream");
    let streamed = c
        .stream("/v1/chat/completions", &chat_stream("cached", &m, true))
        .await;
    assert_eq!(streamed.status, 200);
    let (whole, misses) = until_hit(&c, &chat("cached", &m)).await;
    assert_eq!(
        whole.header("x-litellm-cache-hit"),
        Some("True"),
        "a stream was kept"
    );
    let answer = whole.json();
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        streamed.content()
    );
    assert_eq!(Some(answer["usage"].clone()), streamed.usage());
    assert_eq!(fake.find(&m).len(), 1 + misses);
}

/// A semantic cache (in the sidecar's memory), prompts embedded through the gateway's own
/// embedding model group (a fake whose vectors count words): the same question asked in
/// other words is a hit, another question is not.
#[tokio::test]
async fn a_semantic_cache_answers_a_question_asked_in_other_words() {
    let fake = FakeProvider::start();
    let config = json!({
        "model_list": [
            openai_on("cached", "gpt-4o-mini", &fake),
            openai_on("embedder", "bag-of-words", &fake),
        ],
        "litellm_settings": {"cache": true, "cache_params": {
            "type": "semantic",
            "similarity_threshold": 0.8,
            "redis_semantic_cache_embedding_model": "embedder",
        }},
        "general_settings": {"master_key": "os.environ/E2E_MASTER_KEY"},
    });
    let sy = Switchyard::start_with_env(
        &yaml(&config),
        &[("FAKE_KEY", FAKE_KEY), ("E2E_MASTER_KEY", MASTER)],
    );
    let _logs = sy.dump_logs_on_failure();
    let c = client(&sy);
    let m = marker("semantic");
    let question = format!("What is the capital of France? {m}");
    let first = c
        .post("/v1/chat/completions", &chat("cached", &question))
        .await;
    assert_eq!(first.status, 200, "{}", first.text());
    let (same, misses) = until_hit(
        &c,
        &chat("cached", &format!("what is the capital of france {m}")),
    )
    .await;
    assert_eq!(same.json()["choices"], first.json()["choices"]);
    let chats = |fake: &FakeProvider| {
        fake.find(&m)
            .iter()
            .filter(|r| r.path().ends_with("/chat/completions"))
            .count()
    };
    assert_eq!(chats(&fake), 1 + misses, "hits never reach the provider");

    // Close enough (one more word) is a hit; another question is not.
    assert!(
        hit(
            &c,
            &chat(
                "cached",
                &format!("What is the capital city of France? {m}")
            )
        )
        .await
    );
    let other = marker("semantic-other");
    assert!(
        !hit(
            &c,
            &chat(
                "cached",
                &format!("Write a haiku about autumn leaves {other}")
            )
        )
        .await
    );
    let ready = c.get("/health/readiness").await.expect_json(200);
    assert_eq!(ready["cache"], "semantic", "{ready}");
}

#[tokio::test]
async fn the_agent_apis_are_cached_and_answered_in_their_own_shape() {
    let fake = FakeProvider::start();
    // An OpenAI-compatible server has no Responses API: the bridge serves it.
    let vllm = crate::common::deployment(
        "vllm",
        json!({"model": "hosted_vllm/gpt-4o-mini", "api_base": fake.url("/v1")}),
    );
    let config = json!({
        "model_list": [openai_on("cached", "gpt-4o-mini", &fake), vllm],
        "litellm_settings": {"cache": true, "cache_params": {"type": "local"}},
        "general_settings": {"master_key": "os.environ/E2E_MASTER_KEY"},
    });
    let sy = Switchyard::start_with_env(
        &yaml(&config),
        &[("FAKE_KEY", FAKE_KEY), ("E2E_MASTER_KEY", MASTER)],
    );
    let _logs = sy.dump_logs_on_failure();
    let c = client(&sy);
    let m = marker("cache-messages");
    let ask = json!({"model": "cached", "max_tokens": 32,
        "messages": [{"role": "user", "content": m}]});
    let first = c.post("/v1/messages", &ask).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-litellm-cache-hit"), None);
    let deadline = Instant::now() + Duration::from_secs(5);
    let hit = loop {
        let reply = c.post("/v1/messages", &ask).await;
        if reply.header("x-litellm-cache-hit") == Some("True") {
            break reply;
        }
        assert!(Instant::now() < deadline, "no cache hit within 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(hit.json()["type"], "message");
    assert_eq!(hit.json()["content"], first.json()["content"]);
    // A stream of the same request: Anthropic's events, from the cache.
    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    let reply = c.stream("/v1/messages", &streamed).await;
    assert_eq!(
        reply
            .headers
            .get("x-litellm-cache-hit")
            .map(|v| v.to_str().unwrap_or_default()),
        Some("True")
    );
    assert!(
        reply.text().starts_with("event: message_start"),
        "{}",
        reply.text()
    );
    // The same body sent to chat completions is another request.
    let chat_body = json!({"model": "cached", "max_tokens": 32,
        "messages": [{"role": "user", "content": m}]});
    let chat_reply = c.post("/v1/chat/completions", &chat_body).await;
    assert_eq!(chat_reply.header("x-litellm-cache-hit"), None);

    // The Responses API bridged to a chat deployment too.
    let r = json!({"model": "vllm", "input": marker("cache-responses")});
    let first = c.post("/v1/responses", &r).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = c.post("/v1/responses", &r).await;
        if reply.header("x-litellm-cache-hit") == Some("True") {
            assert_eq!(reply.json()["object"], "response");
            assert_eq!(reply.json()["output"], first.json()["output"]);
            break;
        }
        assert!(Instant::now() < deadline, "no cache hit within 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // To OpenAI's own Responses API it passes through: OpenAI's answer, never kept.
    let native = json!({"model": "cached", "input": marker("cache-native")});
    for _ in 0..3 {
        let reply = c.post("/v1/responses", &native).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.header("x-litellm-cache-key"), None);
    }
}
