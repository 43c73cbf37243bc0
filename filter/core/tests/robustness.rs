//! The filter must never panic, whatever a client or a provider sends: a panic kills the wasm
//! VM for every request on that worker. Feed every entry point truncated, mutated and random
//! input.

#![allow(clippy::unwrap_used)]

use std::borrow::Cow;
use std::collections::BTreeMap;

use switchyard_config::{
    DeploymentConfig, Endpoint, FilterConfig, GroupConfig, Provider, RequestInfo, Role,
};
use switchyard_core::gateway::{local_reply_error, Gateway};
use switchyard_core::provider_role::ProviderRole;

const SAMPLES: &[&[u8]] = &[
    br#"{"model":"m","messages":[{"role":"user","content":"h\u00e9llo \ud83d\ude00"}],"stream":true,"stream_options":{"include_usage":true}}"#,
    br#"{"model":"m","input":["a","b"],"encoding_format":"float"}"#,
    b"data: {\"model\":\"x\",\"choices\":[{\"delta\":{\"content\":\"\xc3\xa9\"}}]}\r\n\r\ndata: [DONE]\n\n",
    br#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#,
];

/// xorshift: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn inputs() -> Vec<Vec<u8>> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::new();
    for s in SAMPLES {
        for cut in 0..=s.len() {
            out.push(s[..cut].to_vec());
        }
        for _ in 0..300 {
            let mut m = s.to_vec();
            for _ in 0..(rng.next() % 4 + 1) {
                let i = (rng.next() as usize) % m.len();
                m[i] = rng.next() as u8;
            }
            out.push(m);
        }
    }
    for _ in 0..300 {
        let len = (rng.next() % 64) as usize;
        out.push((0..len).map(|_| rng.next() as u8).collect());
    }
    out
}

fn config(role: Role) -> FilterConfig {
    let mut deployments = BTreeMap::new();
    for p in Provider::all() {
        deployments.insert(
            p.name().to_string(),
            DeploymentConfig {
                id: p.name().into(),
                group: "m".into(),
                provider: p,
                model: "x".into(),
                scheme: "http".into(),
                authority: "h".into(),
                base_path: "/v1".into(),
                api_version: Some("v".into()),
                auth: p.info().auth,
                key_env: Some("K".into()),
                organization: Some("o".into()),
                headers: vec![("X-A".into(), "b".into())],
            },
        );
    }
    let groups = [(
        "m".to_string(),
        GroupConfig {
            cluster: "c".into(),
            timeout_ms: 1,
            stream_timeout_ms: 1,
            deployments: deployments.keys().cloned().collect(),
        },
    )]
    .into_iter()
    .collect();
    FilterConfig {
        role,
        groups,
        aliases: BTreeMap::new(),
        deployments,
        master_key_env: Some("MK".into()),
        max_request_bytes: 1 << 20,
    }
}

#[test]
fn gateway_never_panics() {
    let g = Gateway::new(config(Role::Gateway), Some("sk-master")).unwrap();
    for input in inputs() {
        let text = String::from_utf8_lossy(&input);
        for e in [
            Endpoint::ChatCompletions,
            Endpoint::Completions,
            Endpoint::Embeddings,
        ] {
            let _ = g.on_body(e, &input);
        }
        let header = |_: &str| Some(Cow::Borrowed(text.as_ref()));
        let _ = g.on_headers(&text, &text, header);
        let _ = g.on_headers("POST", "/v1/chat/completions", header);
        let _ = local_reply_error(503, &text);
    }
}

#[test]
fn provider_role_never_panics() {
    let role = ProviderRole::new(&config(Role::Provider), |_| Some("k".into()));
    let all = inputs();
    for p in Provider::all() {
        for stream in [false, true] {
            let info = RequestInfo {
                endpoint: Endpoint::ChatCompletions,
                requested_model: "m".into(),
                group: "m".into(),
                stream,
            };
            for (i, input) in all.iter().enumerate().step_by(3) {
                let mut a = role.attempt(p.name(), info.clone()).unwrap();
                let _ = a.request_body(input);
                let status = [200, 400, 429, 500, 503][i % 5];
                a.on_response_headers(
                    status,
                    Some(if stream {
                        "text/event-stream"
                    } else {
                        "application/json"
                    }),
                );
                let _ = a.finish_body(input);
                let half = input.len() / 2;
                let _ = a.stream_chunk(&input[..half], false);
                let _ = a.stream_chunk(&input[half..], true);
            }
        }
    }
}
