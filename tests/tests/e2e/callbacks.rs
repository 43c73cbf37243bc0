//! LiteLLM's logging callbacks through the real gateway: `generic_api` (StandardLoggingPayload
//! as JSON), `langfuse` (its ingestion API, with a receiver that fails at first), `otel`
//! (OTLP/HTTP traces with the GenAI conventions, to a receiver that takes seconds to answer)
//! and `file` (JSON lines), for answered, retried and refused requests; message bodies
//! withheld as `turn_off_message_logging` says; delivery counted in /metrics and never
//! slowing a request.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use switchyard_tests::{marker, Client, FakeProvider, Mode, Recorded, Rule, Switchyard};

use crate::common::{chat, keyed, yaml};

const MASTER: &str = "sk-master-of-callbacks";

/// Polls `done` until it holds or 20 s pass.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every JSON value of the lists a receiver got, flattened.
fn items(requests: &[Recorded], list: impl Fn(&Value) -> Vec<Value>) -> Vec<Value> {
    requests.iter().flat_map(|r| list(&r.json())).collect()
}

fn spans(otel: &FakeProvider) -> Vec<Value> {
    items(&otel.requests(), |v| {
        v["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    })
}

fn attribute(span: &Value, key: &str) -> Value {
    span["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["key"] == key))
        .map(|x| x["value"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_request_reaches_every_callback_without_slowing_it() {
    let provider =
        FakeProvider::with_mode(Mode::Rules(vec![Rule::key("sk-cb-b", Mode::Status(429))]));
    let generic = FakeProvider::with_mode(Mode::Accept(Duration::ZERO));
    let langfuse = FakeProvider::with_mode(Mode::Status(503));
    let otel = FakeProvider::with_mode(Mode::Accept(Duration::from_secs(2)));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("requests.jsonl");
    let config = json!({
        "model_list": [
            keyed("obs", &provider, "sk-cb-a", json!({})),
            keyed("obs", &provider, "sk-cb-b", json!({})),
        ],
        "router_settings": {"num_retries": 3, "disable_cooldowns": true},
        "litellm_settings": {
            "callbacks": ["generic_api", "otel"],
            "success_callback": ["langfuse", "file"],
            "failure_callback": ["langfuse", "file"],
            "turn_off_message_logging": true,
        },
        "general_settings": {"master_key": MASTER},
    });
    let sy = Switchyard::start_with_env(
        &yaml(&config),
        &[
            ("GENERIC_LOGGER_ENDPOINT", &generic.url("/log")),
            ("GENERIC_LOGGER_HEADERS", "x-hook-token=t0k3n"),
            ("LANGFUSE_PUBLIC_KEY", "pk-lf-test"),
            ("LANGFUSE_SECRET_KEY", "sk-lf-test"),
            ("LANGFUSE_HOST", &langfuse.base_url()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &otel.base_url()),
            ("SWITCHYARD_LOG_FILE", file.to_str().unwrap()),
        ],
    );
    let _logs = sy.dump_logs_on_failure();
    let master = Client::new(&sy.base_url()).with_key(MASTER);
    let key = master.new_key(&json!({"key_alias": "cb-key"})).await;
    let client = Client::new(&sy.base_url()).with_key(&key);
    let run = marker("callbacks");
    for i in 0..20 {
        let started = Instant::now();
        let reply = client
            .post("/v1/chat/completions", &chat("obs", &format!("{run} {i}")))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a slow OTLP receiver and a failing Langfuse do not slow requests: {:?}",
            started.elapsed()
        );
    }
    let refused = client
        .post("/v1/chat/completions", &chat("no-such-model", &run))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    // Langfuse answered 503 to what came so far: it recovers now.
    eventually("a first batch reached Langfuse", || langfuse.count() > 0).await;
    langfuse.set_mode(Mode::Accept(Duration::ZERO));

    // generic_api: LiteLLM's StandardLoggingPayload, a list per batch, with its headers.
    let payloads = || {
        items(&generic.requests(), |v| {
            v.as_array().cloned().unwrap_or_default()
        })
    };
    eventually("21 events at the webhook", || payloads().len() >= 21).await;
    let all = payloads();
    assert_eq!(all.len(), 21, "each request once");
    assert!(generic
        .requests()
        .iter()
        .all(|r| r.header("x-hook-token") == Some("t0k3n")));
    let ok: Vec<&Value> = all.iter().filter(|p| p["status"] == "success").collect();
    assert_eq!(ok.len(), 20);
    for p in &ok {
        assert_eq!(p["call_type"], "acompletion");
        assert_eq!(p["model_group"], "obs");
        assert_eq!(p["total_tokens"], 22);
        assert_eq!(p["metadata"]["user_api_key_alias"], "cb-key");
        assert_eq!(p["messages"], "redacted-by-litellm");
        assert_eq!(p["response"], "redacted-by-litellm");
        assert!(p["startTime"].as_f64().unwrap() <= p["endTime"].as_f64().unwrap());
    }
    let retried = ok
        .iter()
        .filter(|p| p["hidden_params"]["retries"].as_u64() > Some(0))
        .count();
    let first_at_b = provider
        .requests()
        .iter()
        .filter(|r| r.body_text().contains(&run) && r.api_keys().contains(&"sk-cb-b"))
        .count();
    assert!(
        retried > 0 && retried <= first_at_b,
        "{retried} retried, {first_at_b} at b"
    );
    let failure = all.iter().find(|p| p["status"] == "failure").unwrap();
    assert_eq!(failure["requested_model"], "no-such-model");
    assert_eq!(failure["error_information"]["error_code"], "400");
    assert_eq!(
        failure["error_information"]["error_class"],
        "BadRequestError"
    );

    // file: the same payloads, one per line.
    eventually("21 lines in the file", || {
        std::fs::read_to_string(&file).is_ok_and(|t| t.lines().count() >= 21)
    })
    .await;
    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let line_ids: BTreeSet<&str> = lines.iter().filter_map(|l| l["id"].as_str()).collect();
    let hook_ids: BTreeSet<&str> = all.iter().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(line_ids, hook_ids);

    // langfuse: a trace and a generation per request, with its keys, after the retries.
    let generations = || {
        items(&langfuse.requests(), |v| {
            v["batch"].as_array().cloned().unwrap_or_default()
        })
        .into_iter()
        .filter(|i| i["type"] == "generation-create")
        .map(|i| i["body"]["id"].as_str().unwrap_or_default().to_string())
        .collect::<BTreeSet<String>>()
    };
    eventually("21 generations at Langfuse", || generations().len() >= 21).await;
    let basic = base64::engine::general_purpose::STANDARD.encode("pk-lf-test:sk-lf-test");
    let auth = format!("Basic {basic}");
    assert!(langfuse
        .requests()
        .iter()
        .all(|r| r.header("authorization") == Some(auth.as_str())));
    assert_eq!(generations().len(), 21);

    // otel: a server span per request and a client span per attempt, GenAI's attributes.
    eventually("21 traces at the OTLP receiver", || {
        spans(&otel).iter().filter(|s| s["kind"] == 2).count() >= 21
    })
    .await;
    let spans = spans(&otel);
    let roots: Vec<&Value> = spans.iter().filter(|s| s["kind"] == 2).collect();
    assert_eq!(roots.len(), 21);
    let root = roots
        .iter()
        .find(|r| attribute(r, "http.response.status_code")["intValue"] == "200")
        .unwrap();
    assert_eq!(
        attribute(root, "gen_ai.operation.name")["stringValue"],
        "chat"
    );
    assert_eq!(
        attribute(root, "gen_ai.request.model")["stringValue"],
        "obs"
    );
    assert_eq!(attribute(root, "gen_ai.system")["stringValue"], "openai");
    assert_eq!(
        attribute(root, "gen_ai.response.model")["stringValue"],
        "gpt-4o-mini"
    );
    assert_eq!(
        attribute(root, "gen_ai.usage.input_tokens")["intValue"],
        "13"
    );
    let children = |trace: &Value| {
        spans
            .iter()
            .filter(|s| s["traceId"] == *trace && s["kind"] == 3)
            .cloned()
            .collect::<Vec<Value>>()
    };
    let failed_attempts: Vec<Value> = spans
        .iter()
        .filter(|s| s["kind"] == 3 && s["status"]["code"] == 2)
        .cloned()
        .collect();
    assert_eq!(
        failed_attempts.len(),
        first_at_b,
        "one span per attempt that failed"
    );
    for failed in &failed_attempts {
        assert_eq!(
            attribute(failed, "error.type")["stringValue"],
            "RateLimitError"
        );
        let siblings = children(&failed["traceId"]);
        assert!(
            siblings.iter().any(|s| s["status"]["code"] == 1),
            "the retry answered"
        );
        assert!(siblings.iter().all(|s| s["parentSpanId"]
            == roots
                .iter()
                .find(|r| r["traceId"] == failed["traceId"])
                .unwrap()["spanId"]));
    }

    // Delivery is counted (once the receivers' answers are in).
    let delivered = |metrics: &str, callback: &str| {
        metrics.contains(&format!(
            "switchyard_callback_events_total{{callback=\"{callback}\",outcome=\"delivered\"}} 21\n"
        ))
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = master.get("/metrics").await.text();
        let all = ["generic_api", "langfuse", "otel", "file"];
        if all.iter().all(|c| delivered(&metrics, c)) {
            assert!(
                !metrics.contains("outcome=\"dropped\""),
                "nothing dropped: {metrics}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            metrics
                .lines()
                .filter(|l| l.starts_with("switchyard_callback"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_without_its_settings_stops_up_with_the_reason() {
    let provider = FakeProvider::start();
    let config = json!({
        "model_list": [keyed("obs", &provider, "sk-x", json!({}))],
        "litellm_settings": {"callbacks": ["langfuse"]},
    });
    let err = Switchyard::try_start(&yaml(&config), &[("LANGFUSE_PUBLIC_KEY", "pk")], &[])
        .err()
        .expect("up refuses a langfuse callback without its secret key");
    assert!(err.contains("LANGFUSE_SECRET_KEY"), "{err}");
}

/// Prompts and answers reach the callbacks when nothing says otherwise (streamed answers put
/// back together), and `redact_user_api_key_info` leaves the key out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_and_answers_are_logged_when_allowed() {
    let provider = FakeProvider::start();
    let hook = FakeProvider::with_mode(Mode::Accept(Duration::ZERO));
    let config = json!({
        "model_list": [keyed("obs", &provider, "sk-x", json!({}))],
        "litellm_settings": {"callbacks": ["generic_api"], "redact_user_api_key_info": true},
        "general_settings": {"master_key": MASTER},
    });
    let sy = Switchyard::start_with_env(
        &yaml(&config),
        &[("GENERIC_LOGGER_ENDPOINT", &hook.url("/log"))],
    );
    let _logs = sy.dump_logs_on_failure();
    let client = Client::new(&sy.base_url()).with_key(MASTER);
    let run = marker("logged");
    let whole = client
        .post(
            "/v1/chat/completions",
            &chat("obs", &format!("{run} whole")),
        )
        .await;
    assert_eq!(whole.status, 200);
    let streamed = client
        .stream(
            "/v1/chat/completions",
            &crate::common::chat_stream("obs", &format!("{run} streamed"), true),
        )
        .await;
    assert_eq!(streamed.status, 200);
    let payloads = || {
        items(&hook.requests(), |v| {
            v.as_array().cloned().unwrap_or_default()
        })
    };
    eventually("2 events at the webhook", || payloads().len() >= 2).await;
    for p in payloads() {
        let asked = p["messages"][0]["content"].as_str().unwrap_or_default();
        assert!(asked.starts_with(&run), "{p}");
        assert_eq!(
            p["response"]["choices"][0]["message"]["content"],
            switchyard_tests::fake::CHAT_CONTENT,
            "{p}"
        );
        assert!(p["metadata"].get("user_api_key_hash").is_none(), "{p}");
    }
    assert!(payloads().iter().any(|p| p["stream"] == true));
}
