//! Rate limits of keys, teams and end users through the real gateway: rpm, tpm and
//! max_parallel_requests at their edge with exact counts, LiteLLM's 429 with `retry-after`
//! and the `x-ratelimit-*` headers, the provider's own headers renamed beside them.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{json, Value};
use switchyard_tests::{assert_openai_error, Client, FakeProvider, Mode, Reply, Switchyard};

use crate::common::{chat, inside_a_minute, yaml, FAKE_KEY};

const MASTER: &str = "sk-master-of-limits";
const MODEL: &str = "limited-model";
const ENV: &[(&str, &str)] = &[("FAKE_KEY", FAKE_KEY), ("E2E_MASTER_KEY", MASTER)];

fn start(fake: &FakeProvider) -> Switchyard {
    let config = json!({
        "model_list": [{
            "model_name": MODEL,
            "litellm_params": {
                "model": "openai/gpt-4o-mini",
                "api_base": fake.url("/v1"),
                "api_key": "os.environ/FAKE_KEY",
            },
        }],
        "general_settings": {"master_key": "os.environ/E2E_MASTER_KEY"},
    });
    Switchyard::start_with_env(&yaml(&config), ENV)
}

async fn admin(sy: &Switchyard, path: &str, body: Value) -> Value {
    Client::new(&sy.base_url())
        .with_key(MASTER)
        .post(path, &body)
        .await
        .expect_json(200)
}

async fn new_key(sy: &Switchyard, body: Value) -> String {
    admin(sy, "/key/generate", body).await["key"]
        .as_str()
        .expect("a key")
        .to_string()
}

async fn call(sy: &Switchyard, key: &str, body: &Value) -> Reply {
    Client::new(&sy.base_url())
        .with_key(key)
        .post("/v1/chat/completions", body)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_minute_of_a_key() {
    let fake = FakeProvider::with_mode(Mode::OkWithHeaders(vec![(
        "x-ratelimit-remaining-requests".into(),
        "4999".into(),
    )]));
    let sy = start(&fake);
    let _logs = sy.dump_logs_on_failure();
    let key = new_key(&sy, json!({"rpm_limit": 3})).await;
    inside_a_minute(Duration::from_secs(10)).await;
    for remaining in ["2", "1", "0"] {
        let reply = call(&sy, &key, &chat(MODEL, "rpm")).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.header("x-ratelimit-limit-requests"), Some("3"));
        assert_eq!(
            reply.header("x-ratelimit-remaining-requests"),
            Some(remaining)
        );
        assert_eq!(
            reply.header("llm_provider-x-ratelimit-remaining-requests"),
            Some("4999"),
            "the provider's own, renamed"
        );
    }
    let refused = call(&sy, &key, &chat(MODEL, "rpm")).await;
    let message = assert_openai_error(&refused, 429);
    assert!(message.contains("rpm_limit"), "{message}");
    assert_eq!(refused.json()["error"]["type"], "rate_limit_error");
    let retry: u64 = refused
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("retry-after");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(refused.header("x-ratelimit-remaining-requests"), Some("0"));
    assert_eq!(
        fake.count(),
        3,
        "the refused request never reached the provider"
    );

    // Raised through the API: the next request sees it.
    admin(&sy, "/key/update", json!({"key": key, "rpm_limit": 10})).await;
    assert_eq!(call(&sy, &key, &chat(MODEL, "rpm")).await.status, 200);
}

/// The fake answers with 22 tokens: a tpm limit of 30 admits two requests (0 and 22 tokens
/// counted before them), then refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_per_minute_of_a_team() {
    let fake = FakeProvider::start();
    let sy = start(&fake);
    let _logs = sy.dump_logs_on_failure();
    let team = admin(
        &sy,
        "/team/new",
        json!({"team_alias": "tight", "tpm_limit": 30}),
    )
    .await;
    let key = new_key(&sy, json!({"team_id": team["team_id"]})).await;
    inside_a_minute(Duration::from_secs(10)).await;
    let first = call(&sy, &key, &chat(MODEL, "tpm")).await;
    assert_eq!(first.header("x-ratelimit-remaining-tokens"), Some("30"));
    let second = call(&sy, &key, &chat(MODEL, "tpm")).await;
    assert_eq!(second.header("x-ratelimit-remaining-tokens"), Some("8"));
    let refused = call(&sy, &key, &chat(MODEL, "tpm")).await;
    let message = assert_openai_error(&refused, 429);
    assert!(
        message.contains("team") && message.contains("tpm_limit"),
        "{message}"
    );
    assert_eq!(fake.count(), 2);
}

/// max_parallel_requests 2 and five requests at once to a slow provider: two go, three get
/// a 429 at once; when those two are done, the next goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_requests_of_a_key() {
    let fake = FakeProvider::with_mode(Mode::Slow(Duration::from_millis(1_500)));
    let sy = start(&fake);
    let _logs = sy.dump_logs_on_failure();
    let key = new_key(&sy, json!({"max_parallel_requests": 2})).await;
    // One request first, so the key's counter exists in shared data before the race.
    assert_eq!(call(&sy, &key, &chat(MODEL, "warm")).await.status, 200);
    let body = chat(MODEL, "parallel");
    let replies = join_all((0..5).map(|_| call(&sy, &key, &body))).await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 429, 429, 429], "{statuses:?}");
    let refused = replies.iter().find(|r| r.status == 429).unwrap();
    let message = assert_openai_error(refused, 429);
    assert!(message.contains("max_parallel_requests"), "{message}");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(
        call(&sy, &key, &body).await.status,
        200,
        "released when done"
    );
}

/// An end user (the request's `user`) with an rpm limit of 1: one request, then 429s, while
/// another end user on the same key goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_minute_of_an_end_user() {
    let fake = FakeProvider::start();
    let sy = start(&fake);
    let _logs = sy.dump_logs_on_failure();
    admin(
        &sy,
        "/customer/new",
        json!({"user_id": "eu-limited", "rpm_limit": 1}),
    )
    .await;
    let key = new_key(&sy, json!({})).await;
    inside_a_minute(Duration::from_secs(10)).await;
    let mut body = chat(MODEL, "end user");
    body["user"] = json!("eu-limited");
    assert_eq!(call(&sy, &key, &body).await.status, 200);
    let message = assert_openai_error(&call(&sy, &key, &body).await, 429);
    assert!(message.contains("end user eu-limited"), "{message}");
    body["user"] = json!("eu-other");
    assert_eq!(call(&sy, &key, &body).await.status, 200);
}

/// An end user with max_parallel_requests 1: of three requests at once to a slow provider,
/// one goes; the end user's record shows the limit as LiteLLM's budget table does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_requests_of_an_end_user() {
    let fake = FakeProvider::with_mode(Mode::Slow(Duration::from_millis(1_500)));
    let sy = start(&fake);
    let _logs = sy.dump_logs_on_failure();
    admin(
        &sy,
        "/customer/new",
        json!({"user_id": "eu-one-at-a-time", "max_parallel_requests": 1}),
    )
    .await;
    let info = Client::new(&sy.base_url())
        .with_key(MASTER)
        .get("/customer/info?end_user_id=eu-one-at-a-time")
        .await
        .expect_json(200);
    assert_eq!(
        info["litellm_budget_table"]["max_parallel_requests"], 1,
        "{info}"
    );
    let key = new_key(&sy, json!({})).await;
    let mut body = chat(MODEL, "end user parallel");
    body["user"] = json!("eu-one-at-a-time");
    // One request first, so the counter exists in shared data before the race.
    assert_eq!(call(&sy, &key, &body).await.status, 200);
    let replies = join_all((0..3).map(|_| call(&sy, &key, &body))).await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 429, 429], "{statuses:?}");
    let refused = replies.iter().find(|r| r.status == 429).unwrap();
    let message = assert_openai_error(refused, 429);
    assert!(
        message.contains("end user eu-one-at-a-time") && message.contains("max_parallel_requests"),
        "{message}"
    );
}
