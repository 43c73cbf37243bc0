//! The filter's per-request work, natively: `cargo bench -p switchyard-core`. Profile one case
//! with callgrind: `valgrind --tool=callgrind target/release/deps/hot_path-* --bench --profile-time 2 <name>`.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::rc::Rc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use switchyard_config::{Auth, DeploymentConfig, Provider};
use switchyard_core::gateway::{Gateway, OnBody, OnHeaders, Sidecar};
use switchyard_core::host::MemoryHost;
use switchyard_core::provider_role::ProviderRole;
use switchyard_core::router::rng::Rng;

#[path = "../tests/support/mod.rs"]
mod support;

const CHAT: &[u8] = br#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant. Answer briefly."},{"role":"user","content":"Write one sentence about the sea, and mention a lighthouse."}],"max_tokens":64,"temperature":0.7}"#;
const ANSWER: &[u8] = br#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"The quick brown fox jumps over the lazy dog. This is a typical short answer from the model.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":25,"completion_tokens":20,"total_tokens":45},"system_fingerprint":"fp_bench"}"#;
const CHUNK: &[u8] = b"data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \"},\"finish_reason\":null}]}\n\n";

fn deployment() -> DeploymentConfig {
    DeploymentConfig {
        system_prompt: None,
        id: "d1".into(),
        group: "gpt-4o-mini".into(),
        provider: Provider::Openai,
        model: "gpt-4o-mini".into(),
        scheme: "https".into(),
        authority: "api.openai.com".into(),
        base_path: "/v1".into(),
        auth: Auth::Key { env: "K".into() },
        params: Default::default(),
        organization: None,
        headers: vec![],
        defaults: Default::default(),
        drop_params: false,
        prices: Default::default(),
    }
}

fn hot_path(c: &mut Criterion) {
    let gateway = Gateway::new(
        support::gateway_config("gpt-4o-mini", &["d1"], 20),
        Some("sk-bench-master-key"),
    )
    .unwrap();
    let role = Rc::new(ProviderRole::new(
        support::provider_config(deployment()),
        |_| Some("sk-upstream".into()),
    ));
    let host = MemoryHost::at(1_700_000_000_000);
    let headers: Vec<(String, String)> = [
        (":method", "POST"),
        (":path", "/v1/chat/completions"),
        (":authority", "127.0.0.1:4000"),
        ("authorization", "Bearer sk-bench-master-key"),
        ("content-type", "application/json"),
        ("content-length", "200"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();

    c.bench_function("gateway_headers", |b| {
        b.iter(|| gateway.on_headers(black_box(&headers), &host, Sidecar::Unasked))
    });
    let OnHeaders::ReadBody(pending) = gateway.on_headers(&headers, &host, Sidecar::Unasked) else {
        panic!("the request must be read")
    };
    let mut rng = Rng::seeded(1);
    c.bench_function("gateway_body", |b| {
        b.iter(|| {
            gateway
                .on_body(&pending, black_box(CHAT), &host, &mut rng, Sidecar::Unasked)
                .unwrap()
        })
    });
    let OnBody::Route(routed) = gateway
        .on_body(&pending, CHAT, &host, &mut rng, Sidecar::Unasked)
        .unwrap()
    else {
        panic!("the request must be routed")
    };
    c.bench_function("request_info_roundtrip", |b| {
        b.iter(|| {
            let bytes = serde_json::to_vec(black_box(&routed.info)).unwrap();
            serde_json::from_slice::<switchyard_config::RequestInfo>(&bytes).unwrap()
        })
    });
    c.bench_function("attempt_request", |b| {
        b.iter(|| {
            let mut a = role.attempt(routed.info.clone(), 1, &host).unwrap();
            a.request(&headers, black_box(CHAT), None).unwrap()
        })
    });
    c.bench_function("attempt_response_json", |b| {
        b.iter(|| {
            let mut a = role.attempt(routed.info.clone(), 1, &host).unwrap();
            a.on_response_headers(200, Some("application/json"));
            a.finish_body(black_box(ANSWER), &[], &host)
        })
    });
    let mut stream_info = routed.info.clone();
    stream_info.stream = true;
    c.bench_function("stream_chunk", |b| {
        let mut a = role.attempt(stream_info.clone(), 1, &host).unwrap();
        a.on_response_headers(200, Some("text/event-stream"));
        let _ = a.stream_chunk(CHUNK, false, &[], &host);
        b.iter(|| a.stream_chunk(black_box(CHUNK), false, &[], &host))
    });
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
