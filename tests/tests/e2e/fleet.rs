//! Two gateways and one Redis (LiteLLM's router_settings.redis_* / cache_params type redis):
//! one rate limit for both, answers cached by one served by the other; and a Redis that
//! stops never stops or slows the gateway (limits go on per instance, and readiness says so).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_tests::redis::RedisServer;
use switchyard_tests::{marker, Client, FakeProvider, Reply, Switchyard};

use crate::cache::until_hit;
use crate::common::{chat, inside_a_minute, openai_on, yaml, FAKE_KEY};

const MASTER: &str = "sk-master-of-fleets";

fn gateway(fake: &FakeProvider, redis_port: u16, cache: bool) -> Switchyard {
    let mut config = json!({
        "model_list": [openai_on("fleet", "gpt-4o-mini", fake)],
        "router_settings": {"redis_host": "127.0.0.1", "redis_port": redis_port},
        "general_settings": {"master_key": "os.environ/E2E_MASTER_KEY"},
    });
    if cache {
        config["litellm_settings"] = json!({
            "cache": true,
            "cache_params": {"type": "redis", "host": "127.0.0.1", "port": redis_port},
        });
    }
    Switchyard::start_with_env(
        &yaml(&config),
        &[("FAKE_KEY", FAKE_KEY), ("E2E_MASTER_KEY", MASTER)],
    )
}

fn client(sy: &Switchyard) -> Client {
    Client::new(&sy.base_url()).with_key(MASTER)
}

/// A request of end user `user` (whose limits the test sets).
async fn as_user(sy: &Switchyard, user: &str) -> Reply {
    let mut body = chat("fleet", &marker("fleet"));
    body["user"] = json!(user);
    client(sy).post("/v1/chat/completions", &body).await
}

async fn new_customer(sy: &Switchyard, body: Value) {
    client(sy)
        .post("/customer/new", &body)
        .await
        .expect_json(200);
}

/// Long enough for both gateways to have synced their counts (a tick of 200 ms, twice).
const SYNC: Duration = Duration::from_millis(800);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_enforce_one_limit_through_redis() {
    let fake = FakeProvider::start();
    let a = gateway(&fake, 6379, false);
    let b = gateway(&fake, 6379, false);
    let _la = a.dump_logs_on_failure();
    let _lb = b.dump_logs_on_failure();
    let user = marker("fleet-user");
    for sy in [&a, &b] {
        new_customer(sy, json!({"user_id": user, "rpm_limit": 4})).await;
    }
    inside_a_minute(Duration::from_secs(15)).await;
    // Each gateway's first request of a holder is counted before it has heard the fleet's
    // counts for it (the fast path never waits on Redis): one each.
    for sy in [&a, &b] {
        let r = as_user(sy, &user).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-ratelimit-remaining-requests"), Some("3"));
    }
    tokio::time::sleep(SYNC).await;
    // From then on each counts the other's: four in all.
    let r = as_user(&a, &user).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-ratelimit-remaining-requests"), Some("1"));
    tokio::time::sleep(SYNC).await;
    let r = as_user(&b, &user).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-ratelimit-remaining-requests"), Some("0"));
    let r = as_user(&b, &user).await;
    assert_eq!(r.status, 429, "b's limit: {}", r.text());
    tokio::time::sleep(SYNC).await;
    let r = as_user(&a, &user).await;
    assert_eq!(r.status, 429, "a counts b's: {}", r.text());
    assert!(r.header("retry-after").is_some());
    assert_eq!(fake.count(), 4, "four requests in all reached the provider");

    for sy in [&a, &b] {
        let ready = client(sy).get("/health/readiness").await.expect_json(200);
        assert_eq!(ready["redis"], "connected", "{ready}");
        assert_eq!(ready["rate_limits"], "fleet", "{ready}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_cached_by_one_gateway_is_served_by_the_other() {
    let fake = FakeProvider::start();
    let a = gateway(&fake, 6379, true);
    let b = gateway(&fake, 6379, true);
    let _la = a.dump_logs_on_failure();
    let _lb = b.dump_logs_on_failure();
    let m = marker("fleet-cache");
    let first = client(&a)
        .post("/v1/chat/completions", &chat("fleet", &m))
        .await;
    assert_eq!(first.status, 200, "{}", first.text());
    let (hit, misses) = until_hit(&client(&b), &chat("fleet", &m)).await;
    assert_eq!(
        hit.header("x-litellm-cache-key"),
        first.header("x-litellm-cache-key")
    );
    assert_eq!(hit.json()["choices"], first.json()["choices"]);
    assert_eq!(fake.find(&m).len(), 1 + misses);
    let ready = client(&b).get("/health/readiness").await.expect_json(200);
    assert_eq!(ready["cache"], "redis", "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_stops_never_stops_the_gateway() {
    let mut redis = RedisServer::start();
    let fake = FakeProvider::start();
    let sy = gateway(&fake, redis.port, true);
    let _logs = sy.dump_logs_on_failure();
    let c = client(&sy);
    let user = marker("redis-down-user");
    new_customer(&sy, json!({"user_id": user, "rpm_limit": 3})).await;
    inside_a_minute(Duration::from_secs(20)).await;
    let m = marker("redis-down");
    c.post("/v1/chat/completions", &chat("fleet", &m))
        .await
        .expect_json(200);
    until_hit(&c, &chat("fleet", &m)).await;

    redis.stop();
    // Served, from the provider, without waiting on the dead Redis for long.
    for i in 0..5 {
        let started = Instant::now();
        let r = c.post("/v1/chat/completions", &chat("fleet", &m)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-litellm-cache-hit"), None, "no Redis, no hit");
        assert!(
            started.elapsed() < Duration::from_millis(1_500),
            "request {i} took {:?}",
            started.elapsed()
        );
    }
    // The end user's limit holds, counted by this gateway alone.
    for _ in 0..3 {
        let r = as_user(&sy, &user).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(as_user(&sy, &user).await.status, 429);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = c.get("/health/readiness").await.expect_json(200);
        if ready["redis"] == "disconnected" {
            assert_eq!(ready["status"], "healthy", "{ready}");
            assert_eq!(ready["rate_limits"], "per instance (redis down)", "{ready}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "readiness never said Redis is down: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Two hundred clients at once, half asking the same question (cache hits) and half each its
/// own (misses, kept), while the Redis behind the cache and the limits is killed: every one
/// is answered, none waits on the dead Redis for long.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_clients_while_redis_stops() {
    let mut redis = RedisServer::start();
    let fake = FakeProvider::start();
    let sy = gateway(&fake, redis.port, true);
    let _logs = sy.dump_logs_on_failure();
    let c = client(&sy);
    let same = chat("fleet", &marker("crowd-same"));
    c.post("/v1/chat/completions", &same).await.expect_json(200);
    until_hit(&c, &same).await;

    let started = Instant::now();
    let requests = (0..200).map(|i| {
        let c = c.clone();
        let body = if i % 2 == 0 {
            same.clone()
        } else {
            chat("fleet", &marker("crowd-own"))
        };
        tokio::spawn(async move {
            let t = Instant::now();
            let status = c.post("/v1/chat/completions", &body).await.status;
            (status, t.elapsed())
        })
    });
    let requests: Vec<_> = requests.collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    redis.stop();
    let mut statuses = std::collections::BTreeMap::new();
    let mut slowest = Duration::ZERO;
    for r in requests {
        let (status, took) = r.await.unwrap();
        *statuses.entry(status).or_insert(0) += 1;
        slowest = slowest.max(took);
    }
    assert_eq!(statuses, std::collections::BTreeMap::from([(200, 200)]));
    assert!(
        slowest < Duration::from_secs(3),
        "the slowest took {slowest:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}
