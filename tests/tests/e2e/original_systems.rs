//! The systems Switchyard replaces, each as its example config under config/examples/, run
//! as written with only the providers' api_base pointed at fakes of their real wire formats:
//! the first proxy server, the OpenAI proxy, the CodeLlama coding server and the proxy
//! service (the docker-compose stack's config).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_tests::artefacts::repo_root;
use switchyard_tests::fakes::{anthropic, ollama};
use switchyard_tests::postgres::PgDatabase;
use switchyard_tests::redis::RedisServer;
use switchyard_tests::{marker, Client, FakeProvider, Mode, Rule, StrictFake, Switchyard};

use crate::common::{chat, chat_stream, yaml};

const MASTER: &str = "sk-master-of-examples";
const OPENAI_KEY: &str = "sk-openai-fake";

/// The fakes standing in for OpenAI (and Azure), Anthropic and Ollama.
struct Fakes {
    openai: FakeProvider,
    anthropic: StrictFake,
    ollama: StrictFake,
}

impl Fakes {
    fn start(openai: Mode) -> Fakes {
        Fakes {
            openai: FakeProvider::with_mode(openai),
            anthropic: StrictFake::start("anthropic", anthropic::handler()),
            ollama: StrictFake::start("ollama", ollama::handler()),
        }
    }

    /// The keys the examples read, as the fakes take them.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OPENAI_API_KEY", OPENAI_KEY.into()),
            ("AZURE_API_KEY_EU", "azure-eu-fake".into()),
            ("AZURE_API_KEY_US", "azure-us-fake".into()),
            ("ANTHROPIC_API_KEY", anthropic::KEY.into()),
            ("LITELLM_MASTER_KEY", MASTER.into()),
        ]
    }
}

/// What the production examples run with: a PostgreSQL database and a Redis of their own,
/// and a Langfuse receiver.
struct Stack {
    redis: RedisServer,
    db: PgDatabase,
    langfuse: FakeProvider,
}

impl Stack {
    fn start() -> Stack {
        Stack {
            redis: RedisServer::start(),
            db: PgDatabase::create(),
            langfuse: FakeProvider::with_mode(Mode::Accept(Duration::ZERO)),
        }
    }

    fn env(&self, fakes: &Fakes) -> Vec<(&'static str, String)> {
        let mut env = fakes.env();
        env.extend([
            ("REDIS_HOST", "127.0.0.1".to_string()),
            ("REDIS_PORT", self.redis.port.to_string()),
            ("DATABASE_URL", self.db.url()),
            ("LANGFUSE_PUBLIC_KEY", "pk-lf".into()),
            ("LANGFUSE_SECRET_KEY", "sk-lf".into()),
            ("LANGFUSE_HOST", self.langfuse.base_url()),
        ]);
        env
    }
}

/// An example config as written, with each deployment's api_base on its fake.
fn example(name: &str, fakes: &Fakes) -> Value {
    let path = repo_root()
        .join("config/examples")
        .join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut config: Value = serde_yaml_ng::from_str(&text).unwrap();
    for entry in config["model_list"].as_array_mut().unwrap() {
        let params = &mut entry["litellm_params"];
        let model = params["model"].as_str().unwrap().to_string();
        params["api_base"] = json!(match model.split('/').next().unwrap() {
            "openai" => fakes.openai.url("/v1"),
            "azure" => fakes.openai.base_url(),
            "anthropic" => fakes.anthropic.url(""),
            "ollama_chat" => fakes.ollama.url(""),
            "switchyard_demo" => continue,
            other => panic!("{name}: no fake for {other}"),
        });
    }
    config
}

fn start(config: &Value, env: &[(&str, String)]) -> Switchyard {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Switchyard::start_with_env(&yaml(config), &env)
}

async fn eventually(what: &str, done: impl AsyncFn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Chat with three providers, streamed or not; a failing gpt-4o falls back to Claude; the
/// same question again is a cache hit; every answer's spend is in the logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_proxy_server() {
    let fakes = Fakes::start(Mode::Rules(vec![Rule::model("gpt-4o", Mode::Status(500))]));
    let config = example("first-proxy", &fakes);
    let sy = start(&config, &fakes.env());
    let _logs = sy.dump_logs_on_failure();
    let client = Client::new(&sy.base_url()).with_key(MASTER);
    let run = marker("first");

    let claude = client
        .post(
            "/v1/chat/completions",
            &chat("claude-sonnet", &format!("{run} c")),
        )
        .await;
    assert_eq!(claude.status, 200, "{}", claude.text());
    let llama = client
        .stream(
            "/v1/chat/completions",
            &chat_stream("llama3", &format!("{run} l"), true),
        )
        .await;
    assert_eq!(llama.status, 200);
    assert_eq!(llama.content(), ollama::CHAT_TEXT);
    // OpenAI fails: Claude answers, as the fallbacks say.
    let fell_back = client
        .post("/v1/chat/completions", &chat("gpt-4o", &format!("{run} g")))
        .await;
    assert_eq!(fell_back.status, 200, "{}", fell_back.text());
    assert_eq!(
        fell_back.header("x-litellm-model-group"),
        Some("claude-sonnet")
    );
    assert_eq!(fell_back.header("x-litellm-attempted-fallbacks"), Some("1"));
    // The cache: the same question again never reaches Anthropic.
    let asked = fakes.anthropic.find(&format!("{run} c")).len();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let again = client
            .post(
                "/v1/chat/completions",
                &chat("claude-sonnet", &format!("{run} c")),
            )
            .await;
        if again.header("x-litellm-cache-hit") == Some("True") {
            break;
        }
        assert!(Instant::now() < deadline, "no cache hit");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(fakes.anthropic.find(&format!("{run} c")).len() <= asked + 1);
    fakes.anthropic.assert_no_violations();
    fakes.ollama.assert_no_violations();
    // Spend per request, in the logs.
    eventually("the spend logs", async || {
        let logs = client.get("/spend/logs").await.json();
        logs.as_array().is_some_and(|l| l.len() >= 4)
    })
    .await;
    let logs = client.get("/spend/logs").await.json();
    let claude_spend: f64 = logs
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["model_group"] == "claude-sonnet" && l["cache_hit"] == "False")
        .filter_map(|l| l["spend"].as_f64())
        .sum();
    assert!(claude_spend > 0.0, "Claude's answers are priced: {logs}");
}

/// One name over three deployments (two Azure, one OpenAI) with one Azure region failing:
/// retries and a cooldown keep every request answered; a virtual key; the cache in Redis;
/// traces and logs at the OTLP receiver and Langfuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_openai_proxy() {
    let fakes = Fakes::start(Mode::Rules(vec![Rule::key(
        "azure-eu-fake",
        Mode::Status(503),
    )]));
    let otel = FakeProvider::with_mode(Mode::Accept(Duration::ZERO));
    let stack = Stack::start();
    let config = example("openai-proxy", &fakes);
    let mut env = stack.env(&fakes);
    env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", otel.base_url()));
    let sy = start(&config, &env);
    let langfuse = &stack.langfuse;
    let _logs = sy.dump_logs_on_failure();
    let master = Client::new(&sy.base_url()).with_key(MASTER);
    let key = master
        .new_key(&json!({"models": ["gpt-4o"], "key_alias": "team-app"}))
        .await;
    let client = Client::new(&sy.base_url()).with_key(&key);
    let run = marker("openai-proxy");
    // Two waves of concurrent requests: the failing region is retried away from in the
    // first, and cools down (allowed_fails: 2) before the second.
    let wave = |label: &'static str, n: usize| {
        let (client, run) = (client.clone(), run.clone());
        async move {
            let mut tasks = Vec::new();
            for i in 0..n {
                let (client, text) = (client.clone(), format!("{run} {label} {i}"));
                tasks.push(tokio::spawn(async move {
                    client
                        .post("/v1/chat/completions", &chat("gpt-4o", &text))
                        .await
                        .status
                }));
            }
            for t in tasks {
                assert_eq!(t.await.unwrap(), 200);
            }
        }
    };
    wave("first", 30).await;
    wave("second", 30).await;
    let served = |label: &str, key: &str| {
        fakes
            .openai
            .find(&format!("{run} {label} "))
            .iter()
            .filter(|r| r.api_keys().contains(&key))
            .count()
    };
    assert!(
        served("first", "azure-eu-fake") > 0,
        "the EU region was tried"
    );
    assert_eq!(served("second", "azure-eu-fake"), 0, "then cooled down");
    assert!(
        served("second", "azure-us-fake") > 0 && served("second", OPENAI_KEY) > 0,
        "the others share the load"
    );
    // The key may not use another model.
    let denied = client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", &run))
        .await;
    assert_eq!(denied.status, 401, "{}", denied.text());
    // The cache in Redis: the same question again is a hit.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let again = client
            .post("/v1/chat/completions", &chat("gpt-4o", &format!("{run} 1")))
            .await;
        if again.header("x-litellm-cache-hit") == Some("True") {
            break;
        }
        assert!(Instant::now() < deadline, "no cache hit from Redis");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Traces and logs.
    eventually("traces at the OTLP receiver", async || otel.count() > 0).await;
    eventually("logs at Langfuse", async || langfuse.count() > 0).await;
    let trace = otel.requests()[0].json();
    assert!(trace["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"].is_string());
}

/// The coding model answers with the coding prompt first; when it fails, GPT-4o answers
/// with the same prompt; each prompt and answer is a line in the log file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_codellama_coding_server() {
    let fakes = Fakes::start(Mode::Ok);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("prompts.jsonl");
    let config = example("codellama-server", &fakes);
    let mut env = fakes.env();
    env.push(("SWITCHYARD_LOG_FILE", log.to_str().unwrap().to_string()));
    let sy = start(&config, &env);
    let _logs = sy.dump_logs_on_failure();
    let client = Client::new(&sy.base_url());
    let run = marker("codellama");

    let answer = client
        .post(
            "/v1/chat/completions",
            &chat("codellama", &format!("{run} reverse a list")),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let sent = fakes.ollama.only(&format!("{run} reverse a list")).json();
    assert_eq!(sent["messages"][0]["role"], "system");
    assert!(sent["messages"][0]["content"]
        .as_str()
        .unwrap()
        .starts_with("You are a coding assistant."));
    assert_eq!(
        sent["messages"][1]["content"],
        format!("{run} reverse a list")
    );

    // Ollama fails: GPT-4o answers, kept to coding too.
    let failing = format!("{run} {}", ollama::SERVER_ERROR);
    let fell_back = client
        .post("/v1/chat/completions", &chat("codellama", &failing))
        .await;
    assert_eq!(fell_back.status, 200, "{}", fell_back.text());
    assert_eq!(
        fell_back.header("x-litellm-model-group"),
        Some("codellama-gpt-4o")
    );
    let at_openai = fakes.openai.only(&failing).json();
    assert_eq!(at_openai["messages"][0]["role"], "system");
    assert_eq!(
        at_openai["messages"].as_array().unwrap().len(),
        2,
        "one system prompt, not two"
    );

    // Prompt logging.
    let deadline = Instant::now() + Duration::from_secs(20);
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if lines.len() >= 2 || Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["messages"][0]["content"]
        .as_str()
        .unwrap()
        .starts_with(&run)));
    assert!(lines
        .iter()
        .any(|l| l["response"]["choices"][0]["message"]["content"] == ollama::CHAT_TEXT));
}

/// The docker-compose stack's config: PostgreSQL, Redis, a key with a budget and a rate
/// limit, Langfuse, the admin page and /metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_service() {
    let fakes = Fakes::start(Mode::Ok);
    let stack = Stack::start();
    let config = example("proxy-service", &fakes);
    let sy = start(&config, &stack.env(&fakes));
    let langfuse = &stack.langfuse;
    let _logs = sy.dump_logs_on_failure();
    let master = Client::new(&sy.base_url()).with_key(MASTER);
    let key = master
        .new_key(&json!({"max_budget": 5, "rpm_limit": 3, "key_alias": "svc"}))
        .await;
    let client = Client::new(&sy.base_url()).with_key(&key);
    let run = marker("service");
    let mut statuses = Vec::new();
    for i in 0..4 {
        statuses.push(
            client
                .post("/v1/chat/completions", &chat("demo", &format!("{run} {i}")))
                .await
                .status,
        );
    }
    assert_eq!(statuses, [200, 200, 200, 429], "rpm_limit 3");
    eventually("logs at Langfuse", async || langfuse.count() > 0).await;
    let ui = master.get("/ui").await;
    assert_eq!(ui.status, 200);
    let metrics = Client::new(&sy.base_url()).get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .text()
        .contains("litellm_remaining_api_key_budget_metric{api_key_alias=\"svc\""));
    let readiness = master.get("/health/readiness").await.json();
    assert_eq!(readiness["db"], "connected", "{readiness}");
    assert_eq!(readiness["redis"], "connected", "{readiness}");
}
