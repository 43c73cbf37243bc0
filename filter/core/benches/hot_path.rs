//! The filter's per-request work, natively: `cargo bench -p switchyard-core`. Profile one case
//! with callgrind: `valgrind --tool=callgrind target/release/deps/hot_path-* --bench --profile-time 2 <name>`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use switchyard_config::{
    AuthStyle, DeploymentConfig, Endpoint, FilterConfig, GroupConfig, Provider, Role,
};
use switchyard_core::gateway::Gateway;
use switchyard_core::provider_role::ProviderRole;

const CHAT: &[u8] = br#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant. Answer briefly."},{"role":"user","content":"Write one sentence about the sea, and mention a lighthouse."}],"max_tokens":64,"temperature":0.7}"#;
const ANSWER: &[u8] = br#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"The quick brown fox jumps over the lazy dog. This is a typical short answer from the model.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":25,"completion_tokens":20,"total_tokens":45},"system_fingerprint":"fp_bench"}"#;
const CHUNK: &[u8] = b"data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \"},\"finish_reason\":null}]}\n\n";

fn config(role: Role) -> FilterConfig {
    let d = DeploymentConfig {
        id: "d1".into(),
        group: "gpt-4o-mini".into(),
        provider: Provider::Openai,
        model: "gpt-4o-mini".into(),
        scheme: "https".into(),
        authority: "api.openai.com".into(),
        base_path: "/v1".into(),
        api_version: None,
        auth: AuthStyle::Bearer,
        key_env: Some("K".into()),
        organization: None,
        headers: vec![],
    };
    let mut groups = BTreeMap::new();
    for i in 0..20 {
        groups.insert(
            format!("model-{i}"),
            GroupConfig {
                cluster: format!("group_model-{i}"),
                timeout_ms: 600_000,
                stream_timeout_ms: 600_000,
                deployments: vec![],
            },
        );
    }
    groups.insert(
        "gpt-4o-mini".into(),
        GroupConfig {
            cluster: "group_gpt-4o-mini".into(),
            timeout_ms: 600_000,
            stream_timeout_ms: 600_000,
            deployments: vec!["d1".into()],
        },
    );
    FilterConfig {
        role,
        groups,
        aliases: BTreeMap::new(),
        deployments: [("d1".to_string(), d)].into_iter().collect(),
        master_key_env: Some("MK".into()),
        max_request_bytes: 16 << 20,
    }
}

fn hot_path(c: &mut Criterion) {
    let gateway = Gateway::new(config(Role::Gateway), Some("sk-bench-master-key")).unwrap();
    let role = ProviderRole::new(&config(Role::Provider), |_| Some("sk-upstream".into()));
    let headers = [
        ("authorization", "Bearer sk-bench-master-key"),
        ("content-length", "200"),
    ];
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| std::borrow::Cow::Borrowed(*v))
    };

    c.bench_function("gateway_headers", |b| {
        b.iter(|| gateway.on_headers(black_box("POST"), black_box("/v1/chat/completions"), header))
    });
    c.bench_function("gateway_body", |b| {
        b.iter(|| {
            gateway
                .on_body(Endpoint::ChatCompletions, black_box(CHAT))
                .unwrap()
        })
    });
    let routed = gateway.on_body(Endpoint::ChatCompletions, CHAT).unwrap();
    c.bench_function("request_info_roundtrip", |b| {
        b.iter(|| {
            let bytes = serde_json::to_vec(black_box(&routed.info)).unwrap();
            serde_json::from_slice::<switchyard_config::RequestInfo>(&bytes).unwrap()
        })
    });
    c.bench_function("attempt_request", |b| {
        b.iter(|| {
            let a = role.attempt("d1", routed.info.clone()).unwrap();
            let edits = a.request_headers(role.owned_headers());
            (edits, a.request_body(black_box(CHAT)).unwrap())
        })
    });
    c.bench_function("attempt_response_json", |b| {
        b.iter(|| {
            let mut a = role.attempt("d1", routed.info.clone()).unwrap();
            a.on_response_headers(200, Some("application/json"));
            a.finish_body(black_box(ANSWER))
        })
    });
    let mut stream_info = routed.info.clone();
    stream_info.stream = true;
    c.bench_function("stream_chunk", |b| {
        let mut a = role.attempt("d1", stream_info.clone()).unwrap();
        a.on_response_headers(200, Some("text/event-stream"));
        b.iter(|| a.stream_chunk(black_box(CHUNK), false))
    });
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
