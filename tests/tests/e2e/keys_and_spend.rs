//! Virtual keys and spend through the real gateway: exact spend with the sidecar killed and
//! restarted under load (SQLite and PostgreSQL), a budget at its edge under concurrency,
//! blocked and deleted keys refused at once, known keys served while the sidecar is down,
//! the management API with curl as LiteLLM's docs write it, and a key with the openai SDK.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::{json, Value};
use switchyard_tests::artefacts::{repo_root, venv_python};
use switchyard_tests::fake::CHAT_CONTENT;
use switchyard_tests::postgres::PgDatabase;
use switchyard_tests::split::{Database, Split};
use switchyard_tests::{assert_openai_error, Client, FakeProvider, Mode, Switchyard};

use crate::common::{chat, yaml, FAKE_KEY};

const MASTER: &str = "sk-master-of-spend";
const MODEL: &str = "spend-model";
const OTHER_MODEL: &str = "other-model";
// Binary fractions, so that every sum of them is exact in f64, in SQLite and in PostgreSQL:
// "exact" below means equal, not close.
const INPUT_COST: f64 = 1.0 / 1024.0;
const OUTPUT_COST: f64 = 1.0 / 512.0;
/// The fake's answer has 13 prompt and 9 completion tokens.
const COST: f64 = 13.0 * INPUT_COST + 9.0 * OUTPUT_COST;

const ENV: &[(&str, &str)] = &[("FAKE_KEY", FAKE_KEY), ("E2E_MASTER_KEY", MASTER)];

fn config(fake: &FakeProvider) -> String {
    let deployment = |name: &str| {
        json!({
            "model_name": name,
            "litellm_params": {
                "model": "openai/gpt-4o-mini",
                "api_base": fake.url("/v1"),
                "api_key": "os.environ/FAKE_KEY",
                "input_cost_per_token": INPUT_COST,
                "output_cost_per_token": OUTPUT_COST,
            },
        })
    };
    yaml(&json!({
        "model_list": [deployment(MODEL), deployment(OTHER_MODEL)],
        // From the environment, as docker-compose would give it (Envoy runs on its own in
        // the split tests, so no literal secret can be handed over).
        "general_settings": {"master_key": "os.environ/E2E_MASTER_KEY"},
    }))
}

/// A new virtual key, made through the public port with the master key.
async fn new_key(base: &str, body: Value) -> String {
    Client::new(base).with_key(MASTER).new_key(&body).await
}

async fn chat_as(base: &str, key: &str, model: &str) -> switchyard_tests::Reply {
    Client::new(base)
        .with_key(key)
        .post("/v1/chat/completions", &chat(model, "spend"))
        .await
}

/// `n` chat requests with `key`, `concurrency` at a time; `done` counts the answered ones.
/// Returns how many got each status.
async fn load(
    base: &str,
    key: &str,
    n: usize,
    concurrency: usize,
    done: Arc<AtomicUsize>,
) -> BTreeMap<u16, usize> {
    let client = Client::new(base).with_key(key);
    let statuses: Vec<u16> = futures_util::stream::iter(0..n)
        .map(|_| {
            let (client, done) = (client.clone(), done.clone());
            async move {
                let reply = client
                    .post("/v1/chat/completions", &chat(MODEL, "spend"))
                    .await;
                done.fetch_add(1, Ordering::SeqCst);
                reply.status
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut counts = BTreeMap::new();
    for s in statuses {
        *counts.entry(s).or_default() += 1;
    }
    counts
}

/// Polls `/global/spend` until it is `expected` (spend events arrive in batches, and are
/// retried after a sidecar restart), then returns it; gives up after 30 s.
async fn settled_spend(base: &str, expected: f64) -> f64 {
    let admin = Client::new(base).with_key(MASTER);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = admin.get("/global/spend").await;
        let spend = if reply.status == 200 {
            reply.json()["spend"].as_f64().unwrap_or(-1.0)
        } else {
            -1.0
        };
        if spend == expected || Instant::now() >= deadline {
            return spend;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// 2,000 requests at concurrency 100 with one virtual key; the sidecar is killed (SIGKILL)
/// after 600 answers and started again a second later, while requests keep flowing. Every
/// request is answered, and the spend the database holds is exactly 2,000 × the price of one:
/// not one lost, none counted twice.
async fn spend_is_exact_across_a_sidecar_restart(database: Database) {
    const N: usize = 2000;
    // Slow enough that the load outlasts the sidecar's outage and restart.
    let fake = FakeProvider::with_mode(Mode::Slow(Duration::from_millis(150)));
    let mut gw = Split::start(&config(&fake), ENV, database);
    let base = gw.url("");
    let key = new_key(&base, json!({"key_alias": "load", "models": [MODEL]})).await;

    let done = Arc::new(AtomicUsize::new(0));
    let traffic = tokio::spawn({
        let (base, key, done) = (base.clone(), key.clone(), done.clone());
        async move { load(&base, &key, N, 100, done).await }
    });
    while done.load(Ordering::SeqCst) < 600 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::task::block_in_place(|| gw.kill_sidecar());
    let killed_at = done.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::block_in_place(|| gw.start_sidecar());
    let restarted_at = done.load(Ordering::SeqCst);
    let statuses = traffic.await.expect("the load ran");
    assert!(
        restarted_at < N,
        "the load must outlast the outage (killed at {killed_at}, back at {restarted_at})"
    );
    assert!(
        restarted_at > killed_at,
        "requests were served while the sidecar was down"
    );
    assert_eq!(
        statuses,
        BTreeMap::from([(200, N)]),
        "every request is served"
    );

    let expected = N as f64 * COST;
    assert_eq!(settled_spend(&base, expected).await, expected);
    let admin = Client::new(&base).with_key(MASTER);
    let logs = admin.get("/spend/logs?limit=100000").await.expect_json(200);
    let logs = logs.as_array().expect("a list of logs");
    assert_eq!(logs.len(), N, "one spend log per request");
    let sum: f64 = logs
        .iter()
        .map(|l| l["spend"].as_f64().unwrap_or(0.0))
        .sum();
    assert_eq!(sum, expected);
    let ids: BTreeSet<&str> = logs
        .iter()
        .map(|l| l["request_id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids.len(), N, "request ids are distinct");
    for l in logs.iter().take(3) {
        assert_eq!(l["model_group"], MODEL);
        assert_eq!(l["metadata"]["user_api_key_alias"], "load", "{l}");
        assert_eq!(l["prompt_tokens"], 13);
        assert_eq!(l["completion_tokens"], 9);
    }
    let info = admin
        .get(&format!("/key/info?key={key}"))
        .await
        .expect_json(200);
    assert_eq!(info["info"]["spend"].as_f64(), Some(expected), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spend_is_exact_across_a_sidecar_restart_sqlite() {
    spend_is_exact_across_a_sidecar_restart(Database::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spend_is_exact_across_a_sidecar_restart_postgres() {
    let db = PgDatabase::create();
    spend_is_exact_across_a_sidecar_restart(Database::Postgres(db.url())).await;
}

/// A budget of 20 requests' worth, 400 requests at concurrency 50: the key spends at least its
/// budget and overshoots it by at most the requests in flight when it was reached (50 × the
/// price of one, docs/architecture.md); every refusal is LiteLLM's budget error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_budget_at_its_edge_under_concurrency() {
    const CONCURRENCY: usize = 50;
    let fake = FakeProvider::with_mode(Mode::Slow(Duration::from_millis(50)));
    let sy = Switchyard::start_with_env(&config(&fake), ENV);
    let _logs = sy.dump_logs_on_failure();
    let base = sy.base_url();
    let budget = 20.0 * COST;
    let key = new_key(&base, json!({"max_budget": budget})).await;

    let statuses = load(&base, &key, 400, CONCURRENCY, Arc::default()).await;
    let served = statuses.get(&200).copied().unwrap_or(0);
    assert_eq!(
        served + statuses.get(&400).copied().unwrap_or(0),
        400,
        "{statuses:?}"
    );
    let spent = served as f64 * COST;
    assert!(spent >= budget, "the budget was reached: {statuses:?}");
    assert!(
        spent - budget <= CONCURRENCY as f64 * COST,
        "overshoot {} > {CONCURRENCY} requests' worth: {statuses:?}",
        spent - budget
    );
    assert_eq!(settled_spend(&base, spent).await, spent);
    let refused = chat_as(&base, &key, MODEL).await;
    let message = assert_openai_error(&refused, 400);
    assert_eq!(refused.json()["error"]["type"], "budget_exceeded");
    assert!(message.contains("Budget has been exceeded"), "{message}");
}

/// Blocking, deleting, restricting a key through the gateway takes effect for the very next
/// request; a change made on another path (here: the sidecar directly, as another Envoy's
/// client would) arrives through the change feed within a moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_to_a_key_apply_at_once() {
    let fake = FakeProvider::start();
    let sy = Switchyard::start_with_env(&config(&fake), ENV);
    let _logs = sy.dump_logs_on_failure();
    let base = sy.base_url();
    let admin = Client::new(&base).with_key(MASTER);
    let key = new_key(&base, json!({"key_alias": "changing"})).await;
    let first = chat_as(&base, &key, MODEL).await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first
            .header("x-litellm-response-cost")
            .and_then(|c| c.parse::<f64>().ok()),
        Some(COST),
        "the answer carries its cost"
    );

    admin
        .post("/key/block", &json!({"key": key}))
        .await
        .expect_json(200);
    let blocked = chat_as(&base, &key, MODEL).await;
    let message = assert_openai_error(&blocked, 401);
    assert!(message.contains("blocked"), "{message}");
    admin
        .post("/key/unblock", &json!({"key": key}))
        .await
        .expect_json(200);
    assert_eq!(chat_as(&base, &key, MODEL).await.status, 200);

    admin
        .post("/key/update", &json!({"key": key, "models": [OTHER_MODEL]}))
        .await
        .expect_json(200);
    let refused = chat_as(&base, &key, MODEL).await;
    assert_openai_error(&refused, 401);
    assert!(
        refused.text().contains(MODEL),
        "names the model: {}",
        refused.text()
    );
    assert_eq!(chat_as(&base, &key, OTHER_MODEL).await.status, 200);
    let listed = Client::new(&base).with_key(&key).get("/v1/models").await;
    assert_eq!(
        listed.expect_json(200)["data"],
        json!([{"id": OTHER_MODEL, "object": "model", "created": 1_677_610_602, "owned_by": "openai"}]),
        "a key sees only its models"
    );

    // Straight to the sidecar: only the change feed tells this Envoy.
    let sidecar = Client::new(&format!("http://127.0.0.1:{}", sy.sidecar_port())).with_key(MASTER);
    sidecar
        .post("/key/delete", &json!({"keys": [key]}))
        .await
        .expect_json(200);
    let deadline = Instant::now() + Duration::from_secs(2);
    let status = loop {
        let status = chat_as(&base, &key, OTHER_MODEL).await.status;
        if status != 200 || Instant::now() >= deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(status, 401, "a deleted key is refused within 2 s");
}

/// With the sidecar down, keys the gateway has seen keep working and spend is kept until it
/// is back; a key it has never seen gets a 503 that says why. The management API is a 503 too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_down_known_keys_work_unknown_keys_are_503() {
    let fake = FakeProvider::start();
    let mut gw = Split::start(&config(&fake), ENV, Database::Sqlite);
    let base = gw.url("");
    let known = new_key(&base, json!({})).await;
    let unseen = new_key(&base, json!({})).await;
    assert_eq!(chat_as(&base, &known, MODEL).await.status, 200);

    tokio::task::block_in_place(|| gw.kill_sidecar());
    for _ in 0..5 {
        let reply = chat_as(&base, &known, MODEL).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let reply = chat_as(&base, &unseen, MODEL).await;
    let message = assert_openai_error(&reply, 503);
    assert!(message.contains("sidecar"), "{message}");
    let reply = Client::new(&base).with_key(MASTER).get("/key/list").await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    // The master key needs no database.
    assert_eq!(chat_as(&base, MASTER, MODEL).await.status, 200);

    tokio::task::block_in_place(|| gw.start_sidecar());
    assert_eq!(chat_as(&base, &unseen, MODEL).await.status, 200);
    // 6 with the known key, 1 with the master key, 1 with the key first seen after.
    assert_eq!(settled_spend(&base, 8.0 * COST).await, 8.0 * COST);
}

/// A sidecar that hangs (SIGSTOP) is named as such by `/health/readiness`, within its
/// timeout, while requests with the master key go on; readiness is back when it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_sidecar_is_named_by_readiness() {
    let fake = FakeProvider::start();
    let mut gw = Split::start(&config(&fake), ENV, Database::Sqlite);
    let base = gw.url("");
    let admin = Client::new(&base).with_key(MASTER);
    assert_eq!(admin.get("/health/readiness").await.status, 200);
    tokio::task::block_in_place(|| gw.freeze_sidecar(true));
    let started = Instant::now();
    let reply = admin.get("/health/readiness").await;
    let message = assert_openai_error(&reply, 503);
    assert!(message.contains("sidecar"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(chat_as(&base, MASTER, MODEL).await.status, 200);
    tokio::task::block_in_place(|| gw.freeze_sidecar(false));
    assert_eq!(admin.get("/health/readiness").await.status, 200);
}

/// The management API as LiteLLM's docs call it with curl, through the public port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_api_with_curl() {
    let fake = FakeProvider::start();
    let sy = Switchyard::start_with_env(&config(&fake), ENV);
    let _logs = sy.dump_logs_on_failure();
    let base = sy.base_url();
    let curl = |method: &str, path: &str, body: Option<Value>| -> Value {
        let mut command = Command::new("curl");
        command
            .args(["-sS", "-X", method, &format!("{base}{path}")])
            .args(["-H", &format!("Authorization: Bearer {MASTER}")])
            .args(["-w", "\n%{http_code}"]);
        if let Some(body) = body {
            command
                .args(["-H", "Content-Type: application/json"])
                .args(["-d", &body.to_string()]);
        }
        let out = command.env("NO_PROXY", "*").output().expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
        assert_eq!(code, "200", "curl -X {method} {path}: {body}");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    };

    let team = curl(
        "POST",
        "/team/new",
        Some(json!({"team_alias": "search", "max_budget": 10.0, "models": [MODEL]})),
    );
    let team_id = team["team_id"].as_str().expect("a team_id").to_string();
    let user = curl(
        "POST",
        "/user/new",
        Some(json!({"user_email": "ada@example.com", "user_role": "internal_user"})),
    );
    let user_id = user["user_id"].as_str().expect("a user_id").to_string();
    curl(
        "POST",
        "/team/member_add",
        Some(json!({"team_id": team_id, "member": {"role": "user", "user_id": user_id}})),
    );
    let generated = curl(
        "POST",
        "/key/generate",
        Some(json!({
            "models": [MODEL],
            "metadata": {"user": "ada@example.com"},
            "team_id": team_id,
            "user_id": user_id,
            "key_alias": "ada-search",
            "duration": "30d",
            "max_budget": 5.0,
        })),
    );
    let key = generated["key"].as_str().expect("the key").to_string();
    assert_eq!(generated["key_alias"], "ada-search");
    assert!(generated["expires"].is_string(), "{generated}");

    assert_eq!(chat_as(&base, &key, MODEL).await.status, 200);
    let refused = chat_as(&base, &key, OTHER_MODEL).await;
    assert_openai_error(&refused, 401);

    let info = curl("GET", &format!("/key/info?key={key}"), None);
    assert_eq!(info["info"]["team_id"], team_id.as_str());
    assert_eq!(info["info"]["max_budget"], 5.0);
    curl(
        "POST",
        "/key/update",
        Some(json!({"key": key, "max_budget": 7.5})),
    );
    let team_info = curl("GET", &format!("/team/info?team_id={team_id}"), None);
    assert_eq!(
        team_info["team_info"]["team_alias"], "search",
        "{team_info}"
    );
    let user_info = curl("GET", &format!("/user/info?user_id={user_id}"), None);
    // /user/new made a key of its own, as LiteLLM's does.
    assert!(
        user_info["keys"]
            .as_array()
            .is_some_and(|k| k.len() == 2 && k.iter().any(|k| k["key_alias"] == "ada-search")),
        "{user_info}"
    );
    let settled = settled_spend(&base, COST).await;
    assert_eq!(settled, COST);
    let logs = curl("GET", &format!("/spend/logs?api_key={key}"), None);
    assert_eq!(logs.as_array().map(Vec::len), Some(1), "{logs}");
    assert_eq!(logs[0]["team_id"], team_id.as_str());
    let report = curl("GET", "/global/spend/report?group_by=team", None);
    assert_eq!(report[0]["teams"][0]["team_name"], "search", "{report}");
    assert_eq!(report[0]["teams"][0]["total_spend"], COST);
    let models = curl("GET", "/model/info", None);
    assert!(
        !models.to_string().contains(FAKE_KEY),
        "/model/info shows no provider key"
    );
    curl("POST", "/key/delete", Some(json!({"keys": [key]})));
    assert_openai_error(&chat_as(&base, &key, MODEL).await, 401);
}

/// A virtual key from /key/generate with the official openai SDK: the same checks as the
/// master key's (python_sdk.rs), and the spend it made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_key_with_the_openai_sdk() {
    let fake = FakeProvider::start();
    let sy = Switchyard::start_with_env(&config(&fake), ENV);
    let _logs = sy.dump_logs_on_failure();
    let base = sy.base_url();
    let key = new_key(&base, json!({"key_alias": "sdk"})).await;
    let output = Command::new(venv_python())
        .arg(repo_root().join("tests/python/openai_sdk_check.py"))
        .args(["--base-url", &sy.url("/v1")])
        .args(["--api-key", &key])
        .args(["--model", MODEL])
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env_remove("OPENAI_BASE_URL")
        .output()
        .expect("run the openai SDK script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = format!(
        "exit: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the SDK script failed:\n{report}");
    for line in [
        format!("CHAT_CONTENT {CHAT_CONTENT}"),
        format!("STREAM_CONTENT {CHAT_CONTENT}"),
        "STREAM_USAGE 22".to_string(),
        format!("MODELS {OTHER_MODEL},{MODEL}"),
        "BAD_REQUEST 400 BadRequestError".to_string(),
        "AUTH_ERROR 401 AuthenticationError".to_string(),
        "ALL_DONE".to_string(),
    ] {
        assert!(stdout.lines().any(|l| l == line), "no {line:?}:\n{report}");
    }
    // The chat and the stream were priced; the refused requests were not.
    let admin = Client::new(&base).with_key(MASTER);
    let deadline = Instant::now() + Duration::from_secs(10);
    let spend = loop {
        let info = admin
            .get(&format!("/key/info?key={key}"))
            .await
            .expect_json(200);
        let spend = info["info"]["spend"].as_f64().unwrap_or(0.0);
        if spend >= 2.0 * COST || Instant::now() >= deadline {
            break spend;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(spend, 2.0 * COST);
}
