//! LiteLLM configs as users write them, through the real Envoy: wildcard model groups (an
//! exact name over a pattern, the longest pattern first, `*` for anything), tag routing, and
//! `include:`. Every deployment sits on one fake provider with its own key, as several keys
//! on one API do, so the key each request arrives with tells which deployment served it.

use serde_json::{json, Value};
use switchyard_tests::{assert_openai_error, marker, Client, FakeProvider, Reply, Switchyard};

use crate::common::{chat, deployment, yaml};

const MASTER: &str = "sk-drop-in-master";

/// A deployment of `model_name` with `model` on `fake`, its key `key`, `params` added.
fn on(fake: &FakeProvider, model_name: &str, model: &str, key: &str, params: Value) -> Value {
    let mut entry = deployment(
        model_name,
        json!({"model": model, "api_base": fake.url("/v1"), "api_key": key}),
    );
    for (k, v) in params.as_object().into_iter().flatten() {
        entry["litellm_params"][k] = v.clone();
    }
    entry
}

/// A marker no other marker of the run starts with (`wild-1-3.` is no prefix of `wild-1-30.`).
fn ended(label: &str) -> String {
    format!("{}.", marker(label))
}

/// A chat request with these extra headers.
async fn chat_with(client: &Client, body: Value, headers: &[(&str, &str)]) -> Reply {
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    client
        .post_raw("/v1/chat/completions", bytes, headers)
        .await
}

/// The key and the model the fake received the request carrying `marker` with.
fn served(fake: &FakeProvider, marker: &str) -> (String, String, Value) {
    let r = fake.only(marker);
    let body = r.json();
    (
        r.api_keys()
            .first()
            .map(|k| k.to_string())
            .unwrap_or_default(),
        body["model"].as_str().unwrap_or_default().to_string(),
        body,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wildcard_groups_pass_the_model_through_exact_over_pattern_longest_first() {
    let fake = FakeProvider::start();
    let config = json!({
        "model_list": [
            on(&fake, "*", "openai/*", "sk-any", json!({})),
            on(&fake, "openai/*", "openai/*", "sk-openai", json!({})),
            on(&fake, "openai/gpt-4.1-*", "openai/gpt-4.1-*", "sk-longer", json!({})),
            on(&fake, "gpt-4o", "openai/gpt-4o", "sk-exact", json!({})),
        ],
        "general_settings": {"master_key": MASTER},
    });
    let sy = Switchyard::start(&yaml(&config));
    let _logs = sy.dump_logs_on_failure();
    let master = Client::new(&sy.base_url()).with_key(MASTER);

    // 200 clients at once, each name to the deployment its most specific group names.
    let cases = [
        ("gpt-4o", "sk-exact", "gpt-4o"),
        ("openai/gpt-4o-mini", "sk-openai", "gpt-4o-mini"),
        ("openai/gpt-4.1-nano", "sk-longer", "gpt-4.1-nano"),
        ("mistral-large-latest", "sk-any", "mistral-large-latest"),
        ("openai/o3", "sk-openai", "o3"),
    ];
    let mut tasks = Vec::new();
    for i in 0..200usize {
        let (name, key, model) = cases[i % cases.len()];
        let client = master.clone();
        tasks.push(tokio::spawn(async move {
            let m = ended("wild");
            let reply = client.post("/v1/chat/completions", &chat(name, &m)).await;
            (name, key, model, m, reply)
        }));
    }
    for t in tasks {
        let (name, key, model, m, reply) = t.await.unwrap();
        assert_eq!(reply.status, 200, "{name}: {}", reply.text());
        assert_eq!(
            reply.json()["model"],
            name,
            "answers carry the name asked for"
        );
        let (got_key, got_model, _) = served(&fake, &m);
        assert_eq!(
            (got_key.as_str(), got_model.as_str()),
            (key, model),
            "{name}"
        );
    }

    // Priced as the concrete model, from LiteLLM's table.
    let reply = master
        .post(
            "/v1/chat/completions",
            &chat("openai/gpt-4.1-nano", &marker("price")),
        )
        .await;
    let cost: f64 = reply
        .header("x-litellm-response-cost")
        .and_then(|c| c.parse().ok())
        .unwrap_or_default();
    assert!(cost > 0.0, "{:?}", reply.header("x-litellm-response-cost"));

    // A pattern is no model.
    let reply = master
        .post(
            "/v1/chat/completions",
            &chat("openai/*", &marker("pattern")),
        )
        .await;
    assert_openai_error(&reply, 400);

    // The list: concrete groups, then the patterns served.
    let ids: Vec<String> = master.get("/v1/models").await.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["gpt-4o", "openai/gpt-4.1-*", "openai/*", "*"]);

    // Keys apply to the concrete model.
    let key = master
        .new_key(&json!({"models": ["openai/gpt-4.1-nano"], "key_alias": "nano-only"}))
        .await;
    let limited = Client::new(&sy.base_url()).with_key(&key);
    let ok = limited
        .post(
            "/v1/chat/completions",
            &chat("openai/gpt-4.1-nano", &marker("k")),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let denied = limited
        .post(
            "/v1/chat/completions",
            &chat("openai/gpt-4o-mini", &marker("k")),
        )
        .await;
    let message = assert_openai_error(&denied, 401);
    assert!(message.contains("openai/gpt-4o-mini"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_routing_sends_tagged_requests_to_their_deployments() {
    let fake = FakeProvider::start();
    let config = json!({
        "model_list": [
            on(&fake, "tiers", "openai/gpt-4o-mini", "sk-free", json!({"tags": ["free"]})),
            on(&fake, "tiers", "openai/gpt-4o-mini", "sk-paid", json!({"tags": ["paid", "team-a"]})),
            on(&fake, "tiers", "openai/gpt-4o-mini", "sk-default", json!({"tags": ["default"]})),
            on(&fake, "paid-only", "openai/gpt-4o", "sk-paid-only", json!({"tags": ["paid"]})),
        ],
        "router_settings": {"enable_tag_filtering": true, "num_retries": 0},
    });
    let sy = Switchyard::start(&yaml(&config));
    let _logs = sy.dump_logs_on_failure();
    let client = Client::new(&sy.base_url());

    let send =
        async |body: Value, headers: &[(&str, &str)]| chat_with(&client, body, headers).await;
    // (body fields, headers, the key of the deployment that must serve it)
    type Case = (Value, &'static [(&'static str, &'static str)], &'static str);
    let cases: [Case; 4] = [
        (json!({"tags": ["free"]}), &[], "sk-free"),
        (json!({"metadata": {"tags": ["team-a"]}}), &[], "sk-paid"),
        (json!({}), &[("x-litellm-tags", "paid")], "sk-paid"),
        (json!({}), &[], "sk-default"),
    ];
    for (extra, headers, key) in cases {
        // Several times each: the shuffle would spread them were they not filtered.
        for _ in 0..4 {
            let m = ended("tag");
            let mut body = chat("tiers", &m);
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            let reply = send(body, headers).await;
            assert_eq!(reply.status, 200, "{extra} {headers:?}: {}", reply.text());
            let (got, _, sent) = served(&fake, &m);
            assert_eq!(got, key, "{extra} {headers:?}");
            assert!(
                sent.get("tags").is_none() && sent.get("metadata").is_none(),
                "LiteLLM's tags never reach the provider: {sent}"
            );
        }
    }
    let mut body = chat("paid-only", &marker("tag"));
    body["tags"] = json!(["free"]);
    let reply = send(body, &[]).await;
    let message = assert_openai_error(&reply, 400);
    assert!(
        message.contains("Not allowed to access model due to tags configuration"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn included_files_add_their_model_list() {
    let fake = FakeProvider::start();
    let dir = tempfile::tempdir().unwrap();
    let included = dir.path().join("models.yaml");
    std::fs::write(
        &included,
        yaml(&json!({"model_list": [on(&fake, "from-include", "openai/gpt-4o-mini", "sk-included", json!({}))]})),
    )
    .unwrap();
    let config = json!({
        "include": [included.display().to_string()],
        "model_list": [on(&fake, "from-main", "openai/gpt-4o", "sk-main", json!({}))],
    });
    let sy = Switchyard::start(&yaml(&config));
    let _logs = sy.dump_logs_on_failure();
    let client = Client::new(&sy.base_url());
    for (model, key) in [("from-include", "sk-included"), ("from-main", "sk-main")] {
        let m = ended("include");
        let reply = client.post("/v1/chat/completions", &chat(model, &m)).await;
        assert_eq!(reply.status, 200, "{model}: {}", reply.text());
        assert_eq!(served(&fake, &m).0, key);
    }
}

/// general_settings and router_settings keys a LiteLLM config holds, acted on: the key in
/// `litellm_key_header_name` (at the gateway and the management API), `enforce_user_param`,
/// and `default_litellm_params` filling what requests leave out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_settings_from_a_litellm_config_are_acted_on() {
    let fake = FakeProvider::start();
    let config = json!({
        "model_list": [
            on(&fake, "gpt", "openai/gpt-4o-mini", "sk-provider", json!({"max_tokens": 64})),
            // Priority: the lowest order first.
            on(&fake, "ordered", "openai/gpt-4o", "sk-second", json!({"order": 2})),
            on(&fake, "ordered", "openai/gpt-4o", "sk-first", json!({"order": 1})),
            {
                "model_name": "beta-model",
                "litellm_params": {"model": "o3", "custom_llm_provider": "openai", "api_base": fake.url("/v1"), "api_key": "sk-beta"},
                "model_info": {"access_groups": ["beta"]},
            },
        ],
        "router_settings": {"default_litellm_params": {"temperature": 0.25, "max_tokens": 512}},
        "general_settings": {
            "master_key": MASTER,
            "litellm_key_header_name": "X-Gateway-Key",
            "enforce_user_param": true,
        },
    });
    let sy = Switchyard::start(&yaml(&config));
    let _logs = sy.dump_logs_on_failure();
    let client = Client::new(&sy.base_url());
    let post =
        async |headers: &[(&str, &str)], body: Value| chat_with(&client, body, headers).await;
    // The key in its own header; Authorization carries something else.
    let own = [
        ("x-gateway-key", MASTER),
        ("authorization", "Bearer not-the-key"),
    ];
    let m = ended("settings");
    let mut body = chat("gpt", &m);
    let reply = post(&own, body.clone()).await;
    let message = assert_openai_error(&reply, 400);
    assert!(message.contains("enforce_user_param"), "{message}");
    body["user"] = json!("end-user-1");
    let reply = post(&own, body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let sent = fake.only(&m).json();
    assert_eq!(
        sent["temperature"], 0.25,
        "router_settings.default_litellm_params"
    );
    assert_eq!(sent["max_tokens"], 64, "the deployment's own wins");
    let wrong = post(&[("x-gateway-key", "sk-wrong")], chat("gpt", "x")).await;
    assert_openai_error(&wrong, 401);
    // The management API reads the same header.
    let generated = client
        .send(
            "POST",
            "/key/generate",
            &[
                ("x-gateway-key", MASTER),
                ("content-type", "application/json"),
            ],
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(generated.status, 200, "{}", generated.text());

    // A key whose models name an access group may call the groups in it, and only those.
    let master = Client::new(&sy.base_url()).with_key(MASTER);
    let key = master.new_key(&json!({"models": ["beta"]})).await;
    let beta = Client::new(&sy.base_url()).with_key(&key);
    let m = ended("beta");
    let mut body = chat("beta-model", &m);
    body["user"] = json!("u");
    let reply = beta.post("/v1/chat/completions", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(served(&fake, &m).1, "o3", "custom_llm_provider: openai");
    let ids = beta.get("/v1/models").await.json()["data"].clone();
    assert_eq!(
        ids,
        json!([{"id": "beta-model", "object": "model", "created": 1_677_610_602, "owned_by": "openai"}])
    );
    body["model"] = json!("gpt");
    assert_openai_error(&beta.post("/v1/chat/completions", &body).await, 401);

    // order: every request to the lowest order while it answers.
    for _ in 0..6 {
        let m = ended("order");
        let mut body = chat("ordered", &m);
        body["user"] = json!("u");
        let reply = master.post("/v1/chat/completions", &body).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(served(&fake, &m).0, "sk-first");
    }
}
