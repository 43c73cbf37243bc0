//! The response cache and the semantic cache over real HTTP, with and without Redis, and
//! with a fake gateway that embeds prompts as bags of words.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use switchyard_config::model::Secret;
use switchyard_config::{ProxyConfig, SEMANTIC_LOOKUP_PATH};

use super::{router, AppState};
use crate::redis::testing::{closed_port, unique, LOCAL};
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
    let mut state = AppState::new(config("")).expect("state");
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
