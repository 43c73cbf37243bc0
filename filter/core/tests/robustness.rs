//! The filter must never panic, whatever a client or a provider sends: a panic kills the wasm
//! VM for every request on that worker. Feed every entry point truncated, mutated and random
//! input.

#![allow(clippy::unwrap_used)]

use std::rc::Rc;

use switchyard_config::Provider;
use switchyard_core::gateway::{local_reply_error, Gateway, OnHeaders, Sidecar};
use switchyard_core::host::MemoryHost;
use switchyard_core::provider_role::ProviderRole;
use switchyard_core::router::rng::Rng as PlanRng;

mod support;

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

#[test]
fn gateway_never_panics() {
    let g = Gateway::new(
        support::gateway_config("m", &["a", "b"], 2),
        Some("sk-master"),
    )
    .unwrap();
    let host = MemoryHost::at(1);
    let mut rng = PlanRng::seeded(1);
    let mut pending = None;
    for path in ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"] {
        let headers = vec![
            (":method".to_string(), "POST".to_string()),
            (":path".to_string(), path.to_string()),
            ("authorization".to_string(), "Bearer sk-master".to_string()),
        ];
        match g.on_headers(&headers, &host, Sidecar::Unasked) {
            OnHeaders::ReadBody(p) => pending.get_or_insert_with(Vec::new).push(p),
            other => panic!("{other:?}"),
        }
    }
    let pending = pending.unwrap_or_default();
    for input in inputs() {
        let text = String::from_utf8_lossy(&input).into_owned();
        for p in &pending {
            let _ = g.on_body(p, &input, &host, &mut rng, Sidecar::Unasked);
            let _ = g.on_body(p, &input, &host, &mut rng, Sidecar::Unreachable);
        }
        let headers = vec![
            (":method".to_string(), text.clone()),
            (":path".to_string(), text.clone()),
            ("authorization".to_string(), text.clone()),
            ("x-switchyard-replan".to_string(), text.clone()),
            ("x-litellm-timeout".to_string(), text.clone()),
        ];
        let _ = g.on_headers(&headers, &host, Sidecar::Unasked);
        let _ = g.on_headers(&headers, &host, Sidecar::Unreachable);
        let _ = local_reply_error(503, &text);
    }
}

#[test]
fn provider_role_never_panics() {
    let all = inputs();
    let host = MemoryHost::at(1);
    for p in Provider::all() {
        let d = support::deployment(p, p.name(), "m");
        let role = Rc::new(ProviderRole::new(support::provider_config(d), |_| {
            Some("k-0123456789".into())
        }));
        for stream in [false, true] {
            let mut info = support::request_info(
                "m",
                switchyard_config::Endpoint::ChatCompletions,
                stream,
                &[p.name(), "other"],
            );
            info.strip_params = true;
            info.fallbacks = vec!["f".into()];
            for (i, input) in all.iter().enumerate().step_by(3) {
                let mut a = role
                    .attempt(info.clone(), (i % 3) as u32 + 1, &host)
                    .unwrap();
                let _ = a.request(&[], input, None);
                let status = [200, 400, 429, 500, 503][i % 5];
                // Every framing's content type, so each decoder meets every input.
                let content_type = [
                    "text/event-stream",
                    "application/vnd.amazon.eventstream",
                    "application/x-ndjson",
                    "application/json",
                ][i % 4];
                a.on_response_headers(status, Some(content_type));
                let _ = a.finish_body(input, &[], &host);
                let half = input.len() / 2;
                let _ = a.stream_chunk(&input[..half], false, &[], &host);
                let _ = a.stream_chunk(&input[half..], true, &[], &host);
            }
        }
    }
}
