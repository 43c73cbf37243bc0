//! `/health` as LiteLLM's: every deployment called through the gateway with a minimal request
//! of its mode (two deployments on one address, one with a revoked key), healthy and
//! unhealthy endpoints with their latency and never a key; `?model=`; background checks that
//! feed the router (the failing deployment cools down and requests stop reaching it); neither
//! spend nor requests in the metrics; and the CLI's `switchyard health` and `up --test`.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use switchyard_tests::artefacts::switchyard_bin;
use switchyard_tests::{marker, Client, FakeProvider, Mode, Rule, Switchyard};

use crate::common::{chat, keyed, yaml};

const MASTER: &str = "sk-master-of-health";

fn with(mut entry: Value, id: &str, mode: Option<&str>) -> Value {
    entry["model_info"] = json!({"id": id});
    if let Some(m) = mode {
        entry["model_info"]["mode"] = json!(m);
    }
    entry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_calls_every_deployment_and_feeds_the_router() {
    let fake = FakeProvider::with_mode(Mode::Rules(vec![Rule::key(
        "sk-health-b",
        Mode::Status(401),
    )]));
    let config = json!({
        "model_list": [
            with(keyed("obs", &fake, "sk-health-a", json!({})), "h-a", None),
            with(keyed("obs", &fake, "sk-health-b", json!({})), "h-b", None),
            with(keyed("emb", &fake, "sk-health-e", json!({"model": "openai/text-embedding-3-small"})), "h-e", Some("embedding")),
        ],
        "router_settings": {"allowed_fails": 1, "cooldown_time": 30},
        "general_settings": {"master_key": MASTER, "background_health_checks": true, "health_check_interval": 1},
    });
    let sy = Switchyard::start(&yaml(&config));
    let _logs = sy.dump_logs_on_failure();
    let master = Client::new(&sy.base_url()).with_key(MASTER);

    assert_eq!(Client::new(&sy.base_url()).get("/health").await.status, 401);
    // The first background round.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let health = loop {
        let r = master.get("/health").await;
        if r.status == 200 && r.json().get("healthy_count").is_some() {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "{}", r.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let text = health.text();
    assert!(!text.contains("sk-health"), "no key in /health: {text}");
    let h = health.json();
    assert_eq!(
        (h["healthy_count"].as_u64(), h["unhealthy_count"].as_u64()),
        (Some(2), Some(1)),
        "{h}"
    );
    let ids = |list: &str| -> Vec<String> {
        let mut v: Vec<String> = h[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["model_id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids("healthy_endpoints"), ["h-a", "h-e"]);
    let bad = &h["unhealthy_endpoints"][0];
    assert_eq!(bad["model_id"], "h-b");
    assert_eq!(bad["model"], "openai/gpt-4o-mini");
    assert!(bad["error"].as_str().unwrap().starts_with("401"), "{bad}");
    assert!(bad["latency_ms"].is_u64());
    assert!(bad["api_base"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    // Each mode with its own minimal request, through the provider role.
    let probes = fake.requests();
    assert!(probes
        .iter()
        .any(|r| r.path() == "/v1/embeddings" && r.api_keys().contains(&"sk-health-e")));
    assert!(probes.iter().any(|r| r.path() == "/v1/chat/completions"
        && r.json()["max_tokens"] == 1
        && r.api_keys().contains(&"sk-health-b")));

    let only = master.get("/health?model=emb").await.json();
    assert_eq!(
        (
            only["healthy_count"].as_u64(),
            only["unhealthy_count"].as_u64()
        ),
        (Some(1), Some(0)),
        "{only}"
    );

    // The failing deployment cools down from its checks (a round a second; more than
    // allowed_fails of them): requests go to the other only.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let run = marker("health");
    for i in 0..12 {
        let r = master
            .post("/v1/chat/completions", &chat("obs", &format!("{run} {i}")))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let at_b = fake
        .find(&run)
        .iter()
        .filter(|r| r.api_keys().contains(&"sk-health-b"))
        .count();
    assert_eq!(at_b, 0, "the deployment that failed its checks cools down");

    // Checks are not spend, nor requests in the metrics: only the 12 are.
    let metrics = master.get("/metrics").await.text();
    let total: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("litellm_proxy_total_requests_metric_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(total <= 12.0, "{total}");

    // The CLI: `switchyard health` fails when a deployment is unhealthy; `up --test` sends
    // one request to the running gateway.
    let out = Command::new(switchyard_bin())
        .args(["health", "--url", &sy.base_url(), "--model", "obs"])
        .env("LITELLM_MASTER_KEY", MASTER)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 deployment(s) unhealthy"));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap()["healthy_count"],
        1
    );
    let out = Command::new(switchyard_bin())
        .args(["up", "--test", &sy.base_url()])
        .env("LITELLM_MASTER_KEY", MASTER)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("chat.completion"), "{stdout}");
}
