//! Routing under load and faults: deployments sharing one address stay distinct, 200
//! concurrent clients see no failure while a deployment fails, the gateway says when it is
//! full, each routing strategy splits traffic as it should, cooldowns take a failing
//! deployment out and bring it back, and a dead replica is ejected by Envoy.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_tests::fake::{Rule, CHAT_CONTENT};
use switchyard_tests::{
    assert_openai_error, closed_port, marker, shared, Client, FakeProvider, Mode, Switchyard,
};

use crate::common::{chat, deployment, keyed, yaml};

/// Sends `n` chat requests to `model` from `concurrency` clients, each sending its next
/// request as soon as its last is answered; returns each reply's status and body.
async fn fire(client: &Client, model: &str, n: usize, concurrency: usize) -> Vec<(u16, Value)> {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, next, model) = (client.clone(), next.clone(), model.to_string());
        workers.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                let reply = client
                    .post("/v1/chat/completions", &chat(&model, &marker("fire")))
                    .await;
                let json = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                out.push((reply.status, json));
            }
            out
        }));
    }
    let mut out = Vec::with_capacity(n);
    for w in workers {
        out.extend(w.await.unwrap());
    }
    out
}

fn statuses(replies: &[(u16, Value)]) -> BTreeMap<u16, usize> {
    let mut out = BTreeMap::new();
    for (status, _) in replies {
        *out.entry(*status).or_default() += 1;
    }
    out
}

struct Shared {
    sy: Switchyard,
    /// One address, three deployments (keys a, b, c); b fails with 500, or 401 for `auth`.
    fake: FakeProvider,
    auth: FakeProvider,
}

static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();

fn shared_host() -> &'static Shared {
    shared(&SHARED, || {
        let fake = FakeProvider::with_mode(Mode::Rules(vec![Rule::key(
            "sk-shared-b",
            Mode::Status(500),
        )]));
        let auth = FakeProvider::with_mode(Mode::Rules(vec![Rule::key(
            "sk-revoked-b",
            Mode::Status(401),
        )]));
        let config = json!({
            "model_list": [
                keyed("shared", &fake, "sk-shared-a", json!({})),
                keyed("shared", &fake, "sk-shared-b", json!({})),
                keyed("shared", &fake, "sk-shared-c", json!({})),
                keyed("revoked", &auth, "sk-revoked-a", json!({})),
                keyed("revoked", &auth, "sk-revoked-b", json!({})),
                keyed("revoked", &auth, "sk-revoked-c", json!({})),
            ],
            "router_settings": {"num_retries": 2},
        });
        let sy = Switchyard::start(&yaml(&config));
        Shared { sy, fake, auth }
    })
}

/// The agent APIs under the same load and fault: 200 clients for three seconds, each sending
/// Anthropic's Messages API (bridged to chat, whole and streamed) and OpenAI's Responses API
/// (passed through to the deployments' own) in turn, while one of three deployments on one
/// address answers 500: every request is answered, in its API's shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_agent_clients_while_one_of_three_deployments_fails() {
    let s = shared_host();
    let _logs = s.sy.dump_logs_on_failure();
    let client = Client::new(&s.sy.base_url());
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut tasks = Vec::new();
    for worker in 0..200usize {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut bad) = (0usize, Vec::new());
            let mut turn = worker;
            while Instant::now() < deadline {
                turn += 1;
                let m = marker("agents");
                let messages = json!({"model": "shared", "max_tokens": 16,
                    "messages": [{"role": "user", "content": m}]});
                let good = match turn % 3 {
                    0 => {
                        let r = client.post("/v1/messages", &messages).await;
                        let v = serde_json::from_slice::<Value>(&r.body).unwrap_or_default();
                        (r.status == 200 && v["content"][0]["text"] == CHAT_CONTENT)
                            .then_some(())
                            .ok_or(format!("messages: {} {}", r.status, r.text()))
                    }
                    1 => {
                        let mut streamed = messages.clone();
                        streamed["stream"] = json!(true);
                        let r = client.stream("/v1/messages", &streamed).await;
                        let text = r.text();
                        (r.status == 200 && text.ends_with("data: {\"type\":\"message_stop\"}\n\n"))
                            .then_some(())
                            .ok_or(format!("messages stream: {} {text}", r.status))
                    }
                    _ => {
                        let r = client
                            .post("/v1/responses", &json!({"model": "shared", "input": m}))
                            .await;
                        let v = serde_json::from_slice::<Value>(&r.body).unwrap_or_default();
                        (r.status == 200 && v["status"] == "completed")
                            .then_some(())
                            .ok_or(format!("responses: {} {}", r.status, r.text()))
                    }
                };
                match good {
                    Ok(()) => ok += 1,
                    Err(e) => bad.push(e),
                }
            }
            (ok, bad)
        }));
    }
    let (mut ok, mut bad) = (0, Vec::new());
    for t in tasks {
        let (o, b) = t.await.unwrap();
        ok += o;
        bad.extend(b);
    }
    assert!(
        bad.is_empty(),
        "{} of {} requests failed, e.g. {:?}",
        bad.len(),
        ok + bad.len(),
        &bad[..bad.len().min(3)]
    );
    assert!(ok >= 200, "only {ok} requests in three seconds");
}

/// 200 clients for three seconds against three deployments on one address, one of them
/// answering 500: every request is answered, by a healthy deployment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_clients_while_one_of_three_deployments_on_one_address_fails() {
    let s = shared_host();
    let _logs = s.sy.dump_logs_on_failure();
    let client = Client::new(&s.sy.base_url());
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut bad = Vec::new();
            let mut ok = 0usize;
            while Instant::now() < deadline {
                let reply = client
                    .post("/v1/chat/completions", &chat("shared", &marker("load")))
                    .await;
                let content = serde_json::from_slice::<Value>(&reply.body)
                    .ok()
                    .and_then(|v| {
                        v["choices"][0]["message"]["content"]
                            .as_str()
                            .map(str::to_string)
                    });
                if reply.status == 200 && content.as_deref() == Some(CHAT_CONTENT) {
                    ok += 1;
                } else {
                    bad.push(format!("{} {}", reply.status, reply.text()));
                }
            }
            (ok, bad)
        }));
    }
    let mut ok = 0;
    let mut bad = Vec::new();
    for t in tasks {
        let (o, b) = t.await.unwrap();
        ok += o;
        bad.extend(b);
    }
    assert!(
        bad.is_empty(),
        "{} of {} requests failed, e.g. {:?}",
        bad.len(),
        ok + bad.len(),
        &bad[..bad.len().min(3)]
    );
    assert!(ok >= 200, "only {ok} requests in three seconds");
    let by_key = s.fake.served_by_key();
    assert!(
        by_key.get("sk-shared-a").copied().unwrap_or(0) > ok / 4,
        "{by_key:?}"
    );
    assert!(
        by_key.get("sk-shared-c").copied().unwrap_or(0) > ok / 4,
        "{by_key:?}"
    );
    let b = by_key.get("sk-shared-b").copied().unwrap_or(0);
    assert!(
        b >= 1,
        "the failing deployment must have been tried: {by_key:?}"
    );
    assert!(
        b < ok / 4,
        "cooldown keeps the failing deployment out: {by_key:?}"
    );
}

/// A revoked key on one deployment (401) is retried on the others, as LiteLLM does when the
/// group has more than one deployment.
#[tokio::test]
async fn a_revoked_key_is_retried_on_another_deployment() {
    let s = shared_host();
    let _logs = s.sy.dump_logs_on_failure();
    let client = Client::new(&s.sy.base_url());
    let replies = fire(&client, "revoked", 60, 6).await;
    assert_eq!(statuses(&replies), BTreeMap::from([(200, 60)]));
    assert!(
        s.auth
            .served_by_key()
            .get("sk-revoked-b")
            .copied()
            .unwrap_or(0)
            >= 1
    );
}

/// More requests in flight than general_settings.global_max_parallel_requests: the excess
/// gets LiteLLM's 429 saying the gateway is full, never a provider error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_over_the_gateway_limit_get_the_capacity_error() {
    // Slow enough that all sixty are surely in flight together on a loaded CI machine.
    let slow = FakeProvider::with_mode(Mode::Slow(Duration::from_millis(4_000)));
    let config = json!({
        "model_list": [keyed("slow", &slow, "sk-slow", json!({}))],
        "general_settings": {"global_max_parallel_requests": 20},
    });
    let sy = Switchyard::start(&yaml(&config));
    let client = Client::new(&sy.base_url());
    let replies = fire(&client, "slow", 60, 60).await;
    let counts = statuses(&replies);
    assert_eq!(
        counts,
        BTreeMap::from([(200, 20), (429, 40)]),
        "{replies:?}"
    );
    let refused = replies.iter().find(|(s, _)| *s == 429).unwrap();
    let message = refused.1["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("capacity") && message.contains("global_max_parallel_requests"),
        "{message}"
    );
    assert_eq!(
        slow.count(),
        20,
        "the refused requests never reached the provider"
    );
    // The slots are given back: the next requests are served.
    assert_eq!(
        statuses(&fire(&client, "slow", 5, 5).await),
        BTreeMap::from([(200, 5)])
    );
}

/// A Switchyard with one routing strategy, two deployments a and b on one fake.
fn strategy_stack(strategy: &str, fake: &FakeProvider, a: Value, b: Value) -> Switchyard {
    let config = json!({
        "model_list": [keyed("m", fake, "sk-a", a), keyed("m", fake, "sk-b", b)],
        "router_settings": {"routing_strategy": strategy, "num_retries": 0},
    });
    Switchyard::start(&yaml(&config))
}

fn served(fake: &FakeProvider, key: &str) -> usize {
    fake.served_by_key().get(key).copied().unwrap_or(0)
}

#[tokio::test]
async fn simple_shuffle_follows_the_weights() {
    let fake = FakeProvider::start();
    let sy = strategy_stack(
        "simple-shuffle",
        &fake,
        json!({"weight": 3}),
        json!({"weight": 1}),
    );
    let replies = fire(&Client::new(&sy.base_url()), "m", 400, 8).await;
    assert_eq!(statuses(&replies), BTreeMap::from([(200, 400)]));
    let a = served(&fake, "sk-a");
    assert!(
        (250..=350).contains(&a),
        "weights 3:1 over 400 requests, a got {a}"
    );
}

#[tokio::test]
async fn least_busy_avoids_the_deployment_with_requests_in_flight() {
    let fake = FakeProvider::with_mode(Mode::Rules(vec![Rule::key(
        "sk-a",
        Mode::Slow(Duration::from_millis(400)),
    )]));
    let sy = strategy_stack("least-busy", &fake, json!({}), json!({}));
    let replies = fire(&Client::new(&sy.base_url()), "m", 300, 20).await;
    assert_eq!(statuses(&replies), BTreeMap::from([(200, 300)]));
    let (a, b) = (served(&fake, "sk-a"), served(&fake, "sk-b"));
    assert!(
        b > 3 * a,
        "the slow deployment holds requests, the other gets the rest: a {a}, b {b}"
    );
}

#[tokio::test]
async fn latency_based_routing_prefers_the_faster_deployment() {
    let fake = FakeProvider::with_mode(Mode::Rules(vec![Rule::key(
        "sk-a",
        Mode::Slow(Duration::from_millis(60)),
    )]));
    let sy = strategy_stack("latency-based-routing", &fake, json!({}), json!({}));
    let replies = fire(&Client::new(&sy.base_url()), "m", 200, 1).await;
    assert_eq!(statuses(&replies), BTreeMap::from([(200, 200)]));
    let (a, b) = (served(&fake, "sk-a"), served(&fake, "sk-b"));
    assert!(
        b >= 190,
        "after a sample of each, the faster one: a {a}, b {b}"
    );
}

#[tokio::test]
async fn usage_based_routing_spreads_load_and_stops_at_the_limits() {
    // Stay clear of a minute boundary: usage is counted per minute.
    let into_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if into_minute > 45 {
        tokio::time::sleep(Duration::from_secs(61 - into_minute)).await;
    }
    let fake = FakeProvider::start();
    let sy = strategy_stack(
        "usage-based-routing",
        &fake,
        json!({"rpm": 60}),
        json!({"rpm": 60}),
    );
    let client = Client::new(&sy.base_url());
    let replies = fire(&client, "m", 120, 1).await;
    assert_eq!(statuses(&replies), BTreeMap::from([(200, 120)]));
    let (a, b) = (served(&fake, "sk-a"), served(&fake, "sk-b"));
    assert!(a.abs_diff(b) <= 2, "the least used goes next: a {a}, b {b}");
    let reply = client
        .post("/v1/chat/completions", &chat("m", "over"))
        .await;
    let message = assert_openai_error(&reply, 429);
    assert!(message.contains("rpm/tpm"), "{message}");
    assert_eq!(reply.header("retry-after"), Some("60"));
}

#[tokio::test]
async fn cost_based_routing_takes_the_cheapest() {
    let fake = FakeProvider::start();
    let sy = strategy_stack(
        "cost-based-routing",
        &fake,
        json!({"input_cost_per_token": 0.00001, "output_cost_per_token": 0.00003}),
        json!({"input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002}),
    );
    let replies = fire(&Client::new(&sy.base_url()), "m", 50, 5).await;
    assert_eq!(statuses(&replies), BTreeMap::from([(200, 50)]));
    assert_eq!((served(&fake, "sk-a"), served(&fake, "sk-b")), (0, 50));
}

/// allowed_fails: 1 failure a minute is tolerated, the second cools the deployment down for
/// cooldown_time; then it is tried again. Every deployment cooling down: a 429 saying when.
#[tokio::test]
async fn cooldowns_take_a_failing_deployment_out_and_bring_it_back() {
    let fake = FakeProvider::with_mode(Mode::Rules(vec![
        Rule::key("sk-a", Mode::Status(503)),
        Rule::key("sk-x", Mode::Status(503)),
        Rule::key("sk-y", Mode::Status(503)),
    ]));
    let config = json!({
        "model_list": [
            keyed("cool", &fake, "sk-a", json!({})),
            keyed("cool", &fake, "sk-b", json!({})),
            keyed("down", &fake, "sk-x", json!({})),
            keyed("down", &fake, "sk-y", json!({})),
        ],
        "router_settings": {"num_retries": 1, "allowed_fails": 1, "cooldown_time": 2},
    });
    let sy = Switchyard::start(&yaml(&config));
    let _logs = sy.dump_logs_on_failure();
    let client = Client::new(&sy.base_url());
    let replies = fire(&client, "cool", 40, 1).await;
    assert_eq!(statuses(&replies), BTreeMap::from([(200, 40)]));
    assert_eq!(served(&fake, "sk-a"), 2, "two failures, then cooling down");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    fire(&client, "cool", 20, 1).await;
    assert!(served(&fake, "sk-a") > 2, "back after cooldown_time");

    // Both deployments of "down" fail until both cool down.
    let mut last = None;
    for _ in 0..4 {
        last = Some(
            client
                .post("/v1/chat/completions", &chat("down", "x"))
                .await,
        );
    }
    let reply = last.unwrap();
    let message = assert_openai_error(&reply, 429);
    assert!(
        message.contains("cooling down") && message.contains("down"),
        "{message}"
    );
    let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
}

/// A deployment with two replicas, one of them dead: every request is served by the live
/// one, and Envoy's outlier detection ejects the dead one (its stats say so).
#[tokio::test]
async fn a_dead_replica_is_ejected_and_the_other_serves() {
    let live = FakeProvider::start();
    let dead = format!("http://127.0.0.1:{}/v1", closed_port());
    let config = json!({
        "model_list": [deployment("replicated", json!({
            "model": "openai/gpt-4o-mini",
            "api_base": [live.url("/v1"), dead],
            "api_key": "sk-replicas",
        }))],
        "router_settings": {"num_retries": 2, "allowed_fails": 2},
    });
    let sy = Switchyard::start(&yaml(&config));
    let _logs = sy.dump_logs_on_failure();
    let client = Client::new(&sy.base_url());
    for _ in 0..12 {
        let m = marker("replica");
        client
            .post("/v1/chat/completions", &chat("replicated", &m))
            .await
            .expect_json(200);
        assert_eq!(live.find(&m).len(), 1);
    }
    let stats = Client::new(&sy.admin_url()).get("/stats").await.text();
    let ejected: u64 = stats
        .lines()
        .find(|l| {
            l.starts_with("cluster.deployment_")
                && l.contains(".outlier_detection.ejections_enforced_total:")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        ejected >= 1,
        "Envoy's stats must show the ejection:\n{}",
        stats
            .lines()
            .filter(|l| l.contains("outlier"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
