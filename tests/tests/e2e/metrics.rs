//! `/metrics` through the real gateway: LiteLLM's metric names and labels, counted exactly
//! under 200 concurrent clients while one of two deployments on one address fails, with
//! retries, a fallback, a stream, cache hits and misses, a refused key and spend; Envoy's own
//! statistics in the same scrape; `require_auth_for_metrics_endpoint`; and every metric the
//! Grafana dashboard reads is one the gateway serves.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_tests::{
    dashboard_metric_names, marker, shared, Client, FakeProvider, Mode, Rule, Switchyard,
};

use crate::common::{chat, chat_stream, keyed, yaml};

const MASTER: &str = "sk-master-of-metrics";
const INPUT_COST: f64 = 0.000_001;
const OUTPUT_COST: f64 = 0.000_002;

struct Shared {
    sy: Switchyard,
    /// One address, two deployments of `shared` (keys a: answers, b: 500), one of `down`
    /// (key d: 503), which falls back to `shared`, and one of `dead` (e: 503), which falls
    /// back to `down` (no further: LiteLLM does not chain fallbacks).
    fake: FakeProvider,
}

static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();

fn with_id(mut entry: Value, id: &str) -> Value {
    entry["model_info"] = json!({"id": id});
    entry
}

fn setup() -> &'static Shared {
    shared(&SHARED, || {
        let fake = FakeProvider::with_mode(Mode::Rules(vec![
            Rule::key("sk-metrics-b", Mode::Status(500)),
            Rule::key("sk-metrics-d", Mode::Status(503)),
            Rule::key("sk-metrics-e", Mode::Status(503)),
            Rule::key(
                "sk-metrics-a",
                Mode::OkWithHeaders(vec![
                    ("x-ratelimit-remaining-requests".into(), "4999".into()),
                    ("x-ratelimit-remaining-tokens".into(), "799000".into()),
                ]),
            ),
        ]));
        let prices =
            json!({"input_cost_per_token": INPUT_COST, "output_cost_per_token": OUTPUT_COST});
        let config = json!({
            "model_list": [
                with_id(keyed("shared", &fake, "sk-metrics-a", prices.clone()), "obs-a"),
                with_id(keyed("shared", &fake, "sk-metrics-b", prices.clone()), "obs-b"),
                with_id(keyed("down", &fake, "sk-metrics-d", prices.clone()), "obs-d"),
                with_id(keyed("dead", &fake, "sk-metrics-e", prices), "obs-e"),
                // Only for the rate-limited key's test (another model: the other test's
                // token and spend counts stay exact).
                with_id(keyed("limited", &fake, "sk-metrics-l", json!({"model": "openai/gpt-4o"})), "obs-l"),
            ],
            "router_settings": {"num_retries": 2, "fallbacks": [{"down": ["shared"]}, {"dead": ["down"]}],
                                "disable_cooldowns": true},
            "litellm_settings": {"cache": true, "require_auth_for_metrics_endpoint": true},
            "general_settings": {"master_key": MASTER},
        });
        let sy = Switchyard::start(&yaml(&config));
        Shared { sy, fake }
    })
}

/// The sum of a metric's samples whose labels include all of `labels`.
fn sample(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            (metric == name).then_some((rest.trim_end_matches('}'), value))
        })
        .filter(|(set, _)| {
            labels.iter().all(|(k, v)| {
                set.split("\",")
                    .any(|p| p.trim_end_matches('"') == format!("{k}=\"{v}"))
            })
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

/// Metric names in a scrape, without the histogram suffixes.
fn names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|n| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(n)
                .to_string()
        })
        .collect()
}

async fn scrape(client: &Client) -> String {
    let reply = client.get("/metrics").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        reply.header("content-type")
    );
    reply.text()
}

/// Scrapes until `done` holds (events reach the sidecar within a tick or two).
async fn scrape_until(client: &Client, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = scrape(client).await;
        if done(&text) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn litellm_metrics_count_exactly_under_load_and_faults() {
    let s = setup();
    let _logs = s.sy.dump_logs_on_failure();
    let client = Client::new(&s.sy.base_url()).with_key(MASTER);
    let run = marker("metrics");

    // 200 clients at once, each with its own question: every one a cache miss, some
    // retried from the failing deployment to the other.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (client, text) = (client.clone(), format!("{run} {i}"));
        tasks.push(tokio::spawn(async move {
            client
                .post("/v1/chat/completions", &chat("shared", &text))
                .await
                .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    // One question again, once its answer is kept: a cache hit. A stream. A fallback from
    // `down` to `shared`.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = client
        .post("/v1/chat/completions", &chat("shared", &format!("{run} 0")))
        .await;
    assert_eq!(again.header("x-litellm-cache-hit"), Some("True"));
    let stream = client
        .stream(
            "/v1/chat/completions",
            &chat_stream("shared", &format!("{run} stream"), true),
        )
        .await;
    assert_eq!(stream.status, 200);
    let fell_back = client
        .post(
            "/v1/chat/completions",
            &chat("down", &format!("{run} fallback")),
        )
        .await;
    assert_eq!(fell_back.status, 200, "{}", fell_back.text());
    let dead = client
        .post(
            "/v1/chat/completions",
            &chat("dead", &format!("{run} dead")),
        )
        .await;
    assert_eq!(dead.status, 503, "{}", dead.text());
    // A key nobody issued.
    let refused = Client::new(&s.sy.base_url())
        .with_key("sk-nobody")
        .post(
            "/v1/chat/completions",
            &chat("shared", &format!("{run} refused")),
        )
        .await;
    assert_eq!(refused.status, 401);

    let total = |t: &str| {
        sample(
            t,
            "litellm_proxy_total_requests_metric_total",
            &[("requested_model", "shared")],
        )
    };
    let text = scrape_until(&client, |t| {
        total(t) >= 202.0
            && sample(t, "litellm_deployment_successful_fallbacks_total", &[]) >= 1.0
            && sample(t, "litellm_deployment_failed_fallbacks_total", &[]) >= 1.0
            && sample(
                t,
                "litellm_proxy_failed_requests_metric_total",
                &[("exception_status", "401")],
            ) >= 1.0
    })
    .await;

    // Every request once: 200 + the hit + the stream answered, and the refused one.
    let requests = |labels: &[(&str, &str)]| {
        sample(&text, "litellm_proxy_total_requests_metric_total", labels)
    };
    assert_eq!(
        requests(&[("requested_model", "shared"), ("status_code", "200")]),
        202.0
    );
    assert_eq!(requests(&[("status_code", "401")]), 1.0);
    assert_eq!(
        requests(&[("requested_model", "down"), ("status_code", "200")]),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "litellm_proxy_failed_requests_metric_total",
            &[
                ("exception_status", "401"),
                ("exception_class", "AuthenticationError")
            ]
        ),
        1.0
    );

    // Deployments: every attempt on b failed and was retried; a answered everything else.
    let on = |key: &str| {
        s.fake
            .requests()
            .iter()
            .filter(|r| r.body_text().contains(&run) && r.api_keys().contains(&key))
            .count() as f64
    };
    let (tries_a, tries_b, tries_d) = (on("sk-metrics-a"), on("sk-metrics-b"), on("sk-metrics-d"));
    assert!(
        tries_b > 0.0,
        "simple-shuffle sent some requests to b first"
    );
    let deployment = |name: &str, id: &str| sample(&text, name, &[("model_id", id)]);
    assert_eq!(
        deployment("litellm_deployment_success_responses_total", "obs-a"),
        tries_a
    );
    assert_eq!(
        deployment("litellm_deployment_total_requests_total", "obs-a"),
        tries_a
    );
    assert_eq!(
        deployment("litellm_deployment_success_responses_total", "obs-b"),
        0.0
    );
    assert_eq!(
        sample(
            &text,
            "litellm_deployment_failure_responses_total",
            &[
                ("model_id", "obs-b"),
                ("exception_status", "500"),
                ("exception_class", "InternalServerError"),
                ("api_provider", "openai"),
                ("litellm_model_name", "gpt-4o-mini")
            ]
        ),
        tries_b
    );
    assert_eq!(
        deployment("litellm_deployment_failure_responses_total", "obs-d"),
        tries_d
    );
    assert_eq!(
        sample(
            &text,
            "litellm_deployment_failed_fallbacks_total",
            &[
                ("requested_model", "dead"),
                ("fallback_model", "down"),
                ("exception_status", "503")
            ]
        ),
        1.0
    );
    // What the provider says of its own limits.
    let limits = [("model_id", "obs-a"), ("model_group", "shared")];
    let limits = [limits[1], ("litellm_model_name", "gpt-4o-mini")];
    assert_eq!(
        sample(&text, "litellm_remaining_requests_metric", &limits),
        4999.0
    );
    assert_eq!(
        sample(&text, "litellm_remaining_tokens_metric", &limits),
        799000.0
    );
    assert_eq!(deployment("litellm_deployment_state", "obs-a"), 0.0);
    assert!(deployment("litellm_deployment_state", "obs-b") >= 1.0);
    assert_eq!(
        sample(
            &text,
            "litellm_deployment_successful_fallbacks_total",
            &[
                ("requested_model", "down"),
                ("fallback_model", "shared"),
                ("exception_status", "503"),
                ("exception_class", "ServiceUnavailableError")
            ]
        ),
        1.0
    );

    // Tokens and spend of what providers answered: the fake's usage is 13 in and 9 out.
    let answered = tries_a;
    let input = sample(
        &text,
        "litellm_input_tokens_metric_total",
        &[("model", "gpt-4o-mini")],
    );
    let output = sample(
        &text,
        "litellm_output_tokens_metric_total",
        &[("model", "gpt-4o-mini")],
    );
    let (want_in, want_out) = (13.0 * answered, 9.0 * answered);
    assert_eq!((input, output), (want_in, want_out));
    assert_eq!(
        sample(
            &text,
            "litellm_total_tokens_metric_total",
            &[("model", "gpt-4o-mini")]
        ),
        want_in + want_out
    );
    let spend = sample(
        &text,
        "litellm_spend_metric_total",
        &[("model", "gpt-4o-mini")],
    );
    let expected = want_in * INPUT_COST + want_out * OUTPUT_COST;
    assert!((spend - expected).abs() < 1e-9, "{spend} != {expected}");

    // The cache: 200 + the stream + the fallback's pass missed... and one hit.
    assert_eq!(
        sample(
            &text,
            "litellm_cache_hits_metric_total",
            &[("model", "shared")]
        ),
        1.0
    );
    assert!(
        sample(
            &text,
            "litellm_cache_misses_metric_total",
            &[("model", "shared")]
        ) >= 200.0
    );

    // Latencies, in LiteLLM's buckets; time to first token for the stream only.
    // (Of this test's groups: the other test sends to `limited`, a deployment of gpt-4o.)
    let count = |name: &str, label: &str| {
        ["shared", "down", "dead"]
            .iter()
            .map(|g| sample(&text, &format!("{name}_count"), &[(label, g)]))
            .sum::<f64>()
    };
    assert_eq!(
        count("litellm_request_total_latency_metric", "requested_model"),
        204.0,
        "the refused one has none"
    );
    // Each request's serving call, the failed one of `dead` included.
    assert_eq!(
        count("litellm_llm_api_latency_metric", "requested_model"),
        answered + 1.0
    );
    assert_eq!(
        count("litellm_overhead_latency_metric", "model_group"),
        answered + 1.0
    );
    assert_eq!(
        sample(
            &text,
            "litellm_llm_api_time_to_first_token_metric_count",
            &[("model", "gpt-4o-mini")]
        ),
        1.0
    );
    assert!(
        text.contains("litellm_request_total_latency_metric_bucket{")
            && text.contains("le=\"0.00625\"")
    );

    // Envoy's own statistics, per deployment cluster, in the same scrape.
    assert!(
        sample(
            &text,
            "envoy_cluster_upstream_rq_total",
            &[("envoy_cluster_name", "deployment_obs-b")]
        ) >= tries_b,
        "Envoy's per-cluster stats are in the scrape"
    );
    assert!(text.contains("envoy_cluster_outlier_detection_ejections_active"));

    // The Grafana dashboard reads only what is served.
    let served = names(&text);
    let missing: Vec<String> = dashboard_metric_names()
        .into_iter()
        .filter(|n| !served.contains(n))
        .filter(|n| !n.contains("budget"))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard reads metrics the scrape lacks: {missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_ask_for_a_key_when_the_config_says_so() {
    let s = setup();
    let _logs = s.sy.dump_logs_on_failure();
    let anonymous = Client::new(&s.sy.base_url()).get("/metrics").await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    let wrong = Client::new(&s.sy.base_url())
        .with_key("sk-wrong")
        .get("/metrics")
        .await;
    assert_eq!(wrong.status, 401);
    // A virtual key will do, as in LiteLLM.
    let master = Client::new(&s.sy.base_url()).with_key(MASTER);
    let key = master
        .new_key(&json!({"max_budget": 5.0, "rpm_limit": 100, "key_alias": "metrics-reader"}))
        .await;
    let reader = Client::new(&s.sy.base_url()).with_key(&key);
    let answered = reader
        .post("/v1/chat/completions", &chat("limited", &marker("limited")))
        .await;
    assert_eq!(answered.status, 200, "{}", answered.text());
    // What the key's rpm limit leaves it, once the request's event is in.
    let left = |t: &str| {
        sample(
            t,
            "litellm_remaining_api_key_requests_for_model",
            &[("api_key_alias", "metrics-reader"), ("model", "limited")],
        )
    };
    let text = scrape_until(&reader, |t| left(t) > 0.0).await;
    assert_eq!(left(&text), 99.0);
    // The key's budget, as the store has it.
    assert_eq!(
        sample(
            &text,
            "litellm_api_key_max_budget_metric",
            &[("api_key_alias", "metrics-reader")]
        ),
        5.0
    );
    // Less what its one request cost, once the store has the spend.
    let spent = |t: &str| {
        5.0 - sample(
            t,
            "litellm_remaining_api_key_budget_metric",
            &[("api_key_alias", "metrics-reader")],
        )
    };
    let text = scrape_until(&reader, |t| spent(t) > 0.0 && spent(t) < 5.0).await;
    assert!(
        spent(&text) > 0.0 && spent(&text) < 0.01,
        "{}",
        spent(&text)
    );
}
