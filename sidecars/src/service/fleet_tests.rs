//! The response cache, the semantic cache, fleet rate limits and readiness over real HTTP:
//! with and without Redis, with a Redis that stops and comes back, and with a fake gateway
//! that embeds prompts as bags of words.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use switchyard_config::model::Secret;
use switchyard_config::{ProxyConfig, LIMITS_SYNC_PATH, SEMANTIC_LOOKUP_PATH};

use super::{router, AppState};
use crate::redis::testing::{closed_port, unique, Server as RedisServer, LOCAL};
use crate::redis::Redis;

/// A server on 127.0.0.1, stopped when dropped.
struct Http {
    base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Http {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(app: axum::Router) -> Http {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Http { base, task }
}

impl Http {
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("sidecar answers");
        let status = StatusCode::from_u16(resp.status().as_u16()).expect("status");
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = reqwest::get(format!("{}{path}", self.base))
            .await
            .expect("sidecar answers");
        let status = StatusCode::from_u16(resp.status().as_u16()).expect("status");
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

/// What the fake gateway was asked: (authorization, model, input).
type Calls = Arc<Mutex<Vec<(Option<String>, String, String)>>>;

const DIMS: usize = 256;

/// A bag of words: each lower-cased word adds 1 to the dimension its FNV hash picks.
fn bag_of_words(text: &str) -> Vec<f32> {
    let mut v = vec![0.0; DIMS];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let h = word
            .to_lowercase()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        v[(h % DIMS as u64) as usize] += 1.0;
    }
    v
}

/// A gateway whose `/v1/embeddings` embeds as [`bag_of_words`] (or fails, with `fail`).
async fn fake_gateway(fail: bool) -> (Http, Calls) {
    let calls = Calls::default();
    let app = axum::Router::new()
        .route(
            "/v1/embeddings",
            axum::routing::post(
                move |State(calls): State<Calls>, headers: HeaderMap, Json(body): Json<Value>| async move {
                    let input = body["input"].as_str().unwrap_or_default().to_string();
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(String::from);
                    let model = body["model"].as_str().unwrap_or_default().to_string();
                    calls.lock().expect("calls").push((auth, model, input.clone()));
                    if fail {
                        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "down"})));
                    }
                    (
                        StatusCode::OK,
                        Json(json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": bag_of_words(&input)}]})),
                    )
                },
            ),
        )
        .with_state(calls.clone());
    (serve(app).await, calls)
}

fn config(yaml_cache: &str) -> ProxyConfig {
    let yaml = format!(
        "model_list:\n- model_name: m\n  litellm_params: {{model: openai/m}}\n{yaml_cache}"
    );
    let mut config = switchyard_config::load_str(&yaml, None)
        .expect("valid config")
        .config;
    config.general_settings.master_key = Some(Secret::Literal("sk-master".into()));
    config
}

fn state(gateway: Option<&Http>, redis: Option<Redis>) -> AppState {
    // A cache of LiteLLM's default type (redis when there is one).
    let mut state = AppState::new(config("litellm_settings:\n  cache: true\n")).expect("state");
    if let Some(g) = gateway {
        state = state.with_gateway(&g.base);
    }
    if let Some(r) = redis {
        state = state.with_redis(r);
    }
    state
}

fn entry(group: &str, namespace: Option<&str>, prompt: &str) -> Value {
    json!({"group": group, "namespace": namespace, "prompt": prompt, "embedding_model": "embedder"})
}

fn lookup(group: &str, namespace: Option<&str>, prompt: &str, max_age_s: Option<u64>) -> Value {
    let mut q = entry(group, namespace, prompt);
    q["similarity_threshold"] = json!(0.8);
    q["max_age_s"] = json!(max_age_s);
    q
}

/// Puts an answer to `prompt`, and waits until the background indexing finds it.
async fn put_semantic(sidecar: &Http, key: &str, ttl_s: u64, body: &str, e: Value) {
    let q = {
        let mut q = e.clone();
        q["similarity_threshold"] = json!(0.999);
        q
    };
    let (status, outcome) = sidecar
        .post(
            "/internal/v1/cache",
            json!({"entries": [{"key": key, "ttl_s": ttl_s, "body": body, "semantic": e}]}),
        )
        .await;
    assert_eq!((status, &outcome["stored"]), (StatusCode::OK, &json!(1)));
    for _ in 0..100 {
        if sidecar.post(SEMANTIC_LOOKUP_PATH, q.clone()).await.0 == StatusCode::OK {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{key} was not indexed");
}

#[tokio::test]
async fn semantic_hits_similar_prompts_of_the_same_group_and_namespace_only() {
    let (gateway, calls) = fake_gateway(false).await;
    let sidecar = serve(router(state(Some(&gateway), None))).await;
    let paris = "What is the capital of France?";

    // A miss embeds the prompt; the put of its answer does not embed it again.
    let (status, _) = sidecar
        .post(
            SEMANTIC_LOOKUP_PATH,
            lookup("chat", Some("ns"), paris, None),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    put_semantic(
        &sidecar,
        &unique("paris"),
        60,
        "Paris.",
        entry("chat", Some("ns"), paris),
    )
    .await;
    {
        let calls = calls.lock().expect("calls");
        assert_eq!(calls.len(), 1, "embedded once: {calls:?}");
        assert_eq!(
            calls[0],
            (
                Some("Bearer sk-master".into()),
                "embedder".into(),
                paris.into()
            )
        );
    }

    let hit = |prompt: &'static str, group: &'static str, ns: Option<&'static str>| {
        let sidecar = &sidecar;
        async move {
            let (status, body) = sidecar
                .post(SEMANTIC_LOOKUP_PATH, lookup(group, ns, prompt, None))
                .await;
            (status == StatusCode::OK)
                .then(|| body["body"].as_str().unwrap_or_default().to_string())
        }
    };
    assert_eq!(
        hit(paris, "chat", Some("ns")).await.as_deref(),
        Some("Paris."),
        "identical"
    );
    assert_eq!(
        hit("what is the capital of france", "chat", Some("ns"))
            .await
            .as_deref(),
        Some("Paris."),
        "same words, other case and punctuation"
    );
    assert_eq!(
        hit(
            "Tell me: what is the capital of France?",
            "chat",
            Some("ns")
        )
        .await
        .as_deref(),
        Some("Paris."),
        "similar enough (0.85)"
    );
    assert_eq!(
        hit("How do bees make honey?", "chat", Some("ns")).await,
        None,
        "unrelated"
    );
    assert_eq!(
        hit(paris, "other-group", Some("ns")).await,
        None,
        "other group"
    );
    assert_eq!(
        hit(paris, "chat", Some("other-ns")).await,
        None,
        "other namespace"
    );
    assert_eq!(hit(paris, "chat", None).await, None, "no namespace");

    // max_age_s: an answer stored a second ago is too old for s-maxage 0.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, _) = sidecar
        .post(
            SEMANTIC_LOOKUP_PATH,
            lookup("chat", Some("ns"), paris, Some(0)),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "older than s-maxage");
}

#[tokio::test]
async fn semantic_answers_expire_with_their_ttl() {
    let (gateway, _) = fake_gateway(false).await;
    let sidecar = serve(router(state(Some(&gateway), None))).await;
    let e = entry("chat", None, "short lived question");
    put_semantic(&sidecar, &unique("ttl"), 1, "soon gone", e).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, _) = sidecar
        .post(
            SEMANTIC_LOOKUP_PATH,
            lookup("chat", None, "short lived question", None),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "expired");
}

#[tokio::test]
async fn semantic_misses_without_a_gateway_or_when_embedding_fails() {
    let sidecar = serve(router(state(None, None))).await;
    let (status, body) = sidecar
        .post(SEMANTIC_LOOKUP_PATH, lookup("chat", None, "hello", None))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "404");

    let (failing, calls) = fake_gateway(true).await;
    let sidecar = serve(router(state(Some(&failing), None))).await;
    let (status, _) = sidecar
        .post(SEMANTIC_LOOKUP_PATH, lookup("chat", None, "hello", None))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(calls.lock().expect("calls").len(), 1);

    // A gateway that does not answer: a miss within the embedding timeout.
    let dead = AppState::new(config(""))
        .expect("state")
        .with_gateway(&format!("http://127.0.0.1:{}", closed_port()));
    let sidecar = serve(router(dead)).await;
    let started = Instant::now();
    let (status, _) = sidecar
        .post(SEMANTIC_LOOKUP_PATH, lookup("chat", None, "hello", None))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn with_redis_a_sidecar_finds_another_ones_answers_by_key_and_by_meaning() {
    let (gateway, _) = fake_gateway(false).await;
    let one = serve(router(state(
        Some(&gateway),
        Some(Redis::connect(LOCAL).expect("url")),
    )))
    .await;
    let two = serve(router(state(
        Some(&gateway),
        Some(Redis::connect(LOCAL).expect("url")),
    )))
    .await;
    let ns = unique("semantic-ns");
    let key = unique("semantic-key");
    put_semantic(
        &one,
        &key,
        60,
        "Paris.",
        entry("chat", Some(&ns), "capital of France"),
    )
    .await;

    let (status, body) = two.get(&switchyard_config::cache_path(&key, None)).await;
    assert_eq!(
        (status, body["body"].as_str()),
        (StatusCode::OK, Some("Paris."))
    );
    let (status, body) = two
        .post(
            SEMANTIC_LOOKUP_PATH,
            lookup("chat", Some(&ns), "the capital of France", None),
        )
        .await;
    assert_eq!(
        (status, body["body"].as_str()),
        (StatusCode::OK, Some("Paris."))
    );
}

fn sync_body(instance: &str, name: &str, requests: u64, in_flight: u64) -> Value {
    json!({"instance": instance, "counters": [{"name": name, "minute": 1, "requests": requests, "tokens": requests * 10, "in_flight": in_flight}]})
}

#[tokio::test]
async fn limit_syncs_share_counts_through_redis() {
    let a = serve(router(state(
        None,
        Some(Redis::connect(LOCAL).expect("url")),
    )))
    .await;
    let b = serve(router(state(
        None,
        Some(Redis::connect(LOCAL).expect("url")),
    )))
    .await;
    let name = format!("key.{}", unique("sync"));
    let (status, _) = a.post(LIMITS_SYNC_PATH, sync_body("a", &name, 2, 1)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, totals) = b.post(LIMITS_SYNC_PATH, sync_body("b", &name, 1, 0)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        totals,
        json!({"counters": [{"name": name, "minute": 1, "requests": 2, "tokens": 20, "in_flight": 1}]})
    );
    let (status, body) = b.post(LIMITS_SYNC_PATH, json!({"counters": []})).await;
    assert_eq!(
        (status, &body["error"]["param"]),
        (StatusCode::BAD_REQUEST, &json!("instance"))
    );
}

#[tokio::test]
async fn limit_syncs_without_redis_are_503_saying_so() {
    let sidecar = serve(router(state(None, None))).await;
    let (status, body) = sidecar
        .post(LIMITS_SYNC_PATH, sync_body("a", "k", 1, 0))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "503");
    assert_eq!(body["error"]["type"], "redis_unavailable");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("no Redis"), "{message}");
}

#[tokio::test]
async fn a_redis_on_a_closed_port_is_a_quick_503_and_a_quick_miss() {
    let url = format!("redis://:hunter2@127.0.0.1:{}", closed_port());
    let sidecar = serve(router(state(
        None,
        Some(Redis::connect(&url).expect("url")),
    )))
    .await;
    let started = Instant::now();
    let (status, body) = sidecar
        .post(LIMITS_SYNC_PATH, sync_body("a", "k", 1, 0))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!body.to_string().contains("hunter2"), "{body}");
    let (status, _) = sidecar.get(&switchyard_config::cache_path("k", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
}

/// Polls readiness until `field` reads `want` (the probe runs every 2 s).
async fn readiness_until(sidecar: &Http, field: &str, want: Value) -> Value {
    let mut last = Value::Null;
    for _ in 0..60 {
        let (status, body) = sidecar.get("/health/readiness").await;
        assert_eq!(status, StatusCode::OK);
        if body[field] == want {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("readiness never had {field} = {want}: {last}");
}

#[tokio::test]
async fn a_redis_that_stops_turns_into_misses_and_503s_and_is_used_again_when_back() {
    let mut server = RedisServer::start();
    let state = AppState::new(config("litellm_settings:\n  cache: true\n"))
        .expect("state")
        .with_redis(Redis::connect(&server.url()).expect("url"));
    let sidecar = serve(router(state)).await;
    let put = json!({"entries": [{"key": "k", "ttl_s": 60, "body": "answer"}]});
    let (status, outcome) = sidecar.post("/internal/v1/cache", put.clone()).await;
    assert_eq!(
        (status, outcome),
        (StatusCode::OK, json!({"stored": 1, "dropped": 0}))
    );
    assert_eq!(sidecar.get("/internal/v1/cache/k").await.0, StatusCode::OK);
    assert_eq!(
        sidecar
            .post(LIMITS_SYNC_PATH, sync_body("a", "k", 1, 0))
            .await
            .0,
        StatusCode::OK
    );
    let ready = readiness_until(&sidecar, "redis", json!("connected")).await;
    assert_eq!(
        (&ready["cache"], &ready["rate_limits"]),
        (&json!("redis"), &json!("fleet"))
    );

    server.stop();
    let started = Instant::now();
    assert_eq!(
        sidecar.get("/internal/v1/cache/k").await.0,
        StatusCode::NOT_FOUND
    );
    let (status, outcome) = sidecar.post("/internal/v1/cache", put.clone()).await;
    assert_eq!(
        (status, outcome),
        (StatusCode::OK, json!({"stored": 0, "dropped": 1}))
    );
    assert_eq!(
        sidecar
            .post(LIMITS_SYNC_PATH, sync_body("a", "k", 1, 0))
            .await
            .0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let ready = readiness_until(&sidecar, "redis", json!("disconnected")).await;
    assert_eq!(ready["status"], "healthy", "the gateway keeps serving");
    assert_eq!(ready["rate_limits"], "per instance (redis down)");

    server.restart();
    readiness_until(&sidecar, "redis", json!("connected")).await;
    assert_eq!(
        sidecar
            .post(LIMITS_SYNC_PATH, sync_body("a", "k", 1, 0))
            .await
            .0,
        StatusCode::OK
    );
    let (status, outcome) = sidecar.post("/internal/v1/cache", put).await;
    assert_eq!(
        (status, outcome),
        (StatusCode::OK, json!({"stored": 1, "dropped": 0}))
    );
    assert_eq!(sidecar.get("/internal/v1/cache/k").await.0, StatusCode::OK);
}

#[tokio::test]
async fn readiness_names_the_cache_redis_and_rate_limits() {
    let ready = |state: AppState| async move {
        let sidecar = serve(router(state)).await;
        sidecar.get("/health/readiness").await.1
    };
    let off = ready(AppState::new(config("")).expect("state")).await;
    assert_eq!(
        (
            &off["status"],
            &off["cache"],
            &off["redis"],
            &off["rate_limits"]
        ),
        (
            &json!("healthy"),
            &Value::Null,
            &Value::Null,
            &json!("per instance")
        )
    );
    let local =
        ready(AppState::new(config("litellm_settings:\n  cache: true\n")).expect("state")).await;
    assert_eq!(
        (&local["cache"], &local["redis"]),
        (&json!("local"), &Value::Null)
    );
    let semantic = AppState::new(config(
        "litellm_settings:\n  cache: true\n  cache_params: {type: redis-semantic, redis_semantic_cache_embedding_model: m}\n",
    ))
    .expect("state");
    assert_eq!(ready(semantic).await["cache"], "semantic");

    let redis = Redis::connect(LOCAL).expect("url");
    assert!(redis.ping().await);
    let shared = AppState::new(config("litellm_settings:\n  cache: true\n"))
        .expect("state")
        .with_redis(redis);
    let body = ready(shared).await;
    assert_eq!(
        (&body["cache"], &body["redis"], &body["rate_limits"]),
        (&json!("redis"), &json!("connected"), &json!("fleet"))
    );
}
