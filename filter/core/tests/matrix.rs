//! Every provider through the same case matrix, on the golden fixtures the fake providers of
//! the end-to-end tests replay (tests/fixtures/<wire>/). A provider that cannot support a case
//! opts out in `opts_out`, explicitly.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;

use serde_json::Value;
use switchyard_config::{
    DeploymentConfig, Endpoint, FilterConfig, Provider, RequestInfo, Role, Wire,
};
use switchyard_core::provider_role::{ProviderRole, ResponsePlan};

const CHAT_STREAM: &str = include_str!("../../../tests/fixtures/openai/chat_completion_stream.sse");
const CHAT: &str = include_str!("../../../tests/fixtures/openai/chat_completion.json");
const EMBEDDINGS: &str = include_str!("../../../tests/fixtures/openai/embeddings.json");
const COMPLETION: &str = include_str!("../../../tests/fixtures/openai/completion.json");
const ERROR_400: &str = include_str!("../../../tests/fixtures/openai/error_400.json");
const ERROR_401: &str = include_str!("../../../tests/fixtures/openai/error_401.json");
const ERROR_429: &str = include_str!("../../../tests/fixtures/openai/error_429.json");
const ERROR_503: &str = include_str!("../../../tests/fixtures/openai/error_503.json");

const REQUESTED: &str = "my-model";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    ChatRequest,
    ChatResponse,
    ChatStream,
    Embeddings,
    Completions,
    Errors,
}

/// Cases a provider does not support. None yet: every provider served today speaks the
/// OpenAI schema.
fn opts_out(_provider: Provider, _case: Case) -> bool {
    false
}

fn deployment(provider: Provider) -> DeploymentConfig {
    let info = provider.info();
    let base = match provider {
        Provider::Azure => "https://my-resource.openai.azure.com",
        _ => info.default_api_base.unwrap_or("http://127.0.0.1:8000/v1"),
    };
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    DeploymentConfig {
        id: format!("{}-1", provider.name()),
        group: REQUESTED.into(),
        provider,
        model: "upstream-model".into(),
        scheme: scheme.into(),
        authority: authority.into(),
        base_path: if path.is_empty() {
            String::new()
        } else {
            format!("/{path}")
        },
        api_version: (provider == Provider::Azure).then(|| "2024-10-21".into()),
        auth: info.auth,
        key_env: Some("PROVIDER_KEY".into()),
        organization: None,
        headers: vec![],
    }
}

fn role(provider: Provider) -> (ProviderRole, String) {
    let d = deployment(provider);
    let id = d.id.clone();
    let cfg = FilterConfig {
        role: Role::Provider,
        groups: BTreeMap::new(),
        aliases: BTreeMap::new(),
        deployments: [(id.clone(), d)].into_iter().collect(),
        master_key_env: None,
        max_request_bytes: 1 << 20,
    };
    (ProviderRole::new(&cfg, |_| Some("sk-provider".into())), id)
}

fn info(endpoint: Endpoint, stream: bool) -> RequestInfo {
    RequestInfo {
        endpoint,
        requested_model: REQUESTED.into(),
        group: REQUESTED.into(),
        stream,
    }
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// The same JSON with `model` removed, to compare everything else.
fn without_model(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("model");
    }
    v
}

fn each_provider(case: Case, f: impl Fn(Provider)) {
    for p in Provider::all() {
        if !opts_out(p, case) {
            f(p);
        }
    }
}

#[test]
fn chat_request_goes_to_the_provider_path_with_its_model() {
    each_provider(Case::ChatRequest, |p| {
        let (role, id) = role(p);
        let a = role
            .attempt(&id, info(Endpoint::ChatCompletions, false))
            .unwrap();
        let body = br#"{"model":"my-model","messages":[{"role":"user","content":"Hi \u00e9"}],"temperature":0.2,"tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"unknown_field":{"kept":true}}"#;
        let out = json(&a.request_body(body).unwrap());
        assert_eq!(out["model"], "upstream-model", "{p:?}");
        assert_eq!(
            without_model(out),
            without_model(json(body)),
            "{p:?}: other fields changed"
        );
        let edits = a.request_headers(role.owned_headers());
        let path = &edits.set.iter().find(|(n, _)| n == ":path").unwrap().1;
        let d = deployment(p);
        match p.wire() {
            Wire::OpenAi => assert_eq!(path, &format!("{}/chat/completions", d.base_path), "{p:?}"),
            Wire::Azure => assert_eq!(
                path,
                "/openai/deployments/upstream-model/chat/completions?api-version=2024-10-21"
            ),
        }
        let auth = edits
            .set
            .iter()
            .find(|(n, _)| n == "authorization" || n == "api-key")
            .unwrap();
        match p.wire() {
            Wire::Azure => assert_eq!(auth, &("api-key".to_string(), "sk-provider".to_string())),
            Wire::OpenAi => assert_eq!(auth.1, "Bearer sk-provider", "{p:?}"),
        }
    });
}

fn finish(
    p: Provider,
    endpoint: Endpoint,
    status: u16,
    body: &str,
) -> (u16, Vec<(&'static str, String)>, Vec<u8>) {
    let (role, id) = role(p);
    let mut a = role.attempt(&id, info(endpoint, false)).unwrap();
    assert_eq!(
        a.on_response_headers(status, Some("application/json")),
        ResponsePlan::Buffer
    );
    let f = a.finish_body(body.as_bytes());
    (f.status, f.headers, f.body)
}

#[test]
fn responses_carry_the_requested_model_and_nothing_else_changes() {
    for (case, endpoint, fixture) in [
        (Case::ChatResponse, Endpoint::ChatCompletions, CHAT),
        (Case::Embeddings, Endpoint::Embeddings, EMBEDDINGS),
        (Case::Completions, Endpoint::Completions, COMPLETION),
    ] {
        each_provider(case, |p| {
            let (status, headers, body) = finish(p, endpoint, 200, fixture);
            assert_eq!(status, 200);
            let out = json(&body);
            assert_eq!(out["model"], REQUESTED, "{p:?} {case:?}");
            assert_eq!(
                without_model(out),
                without_model(json(fixture.as_bytes())),
                "{p:?} {case:?}"
            );
            assert!(headers
                .iter()
                .any(|(n, v)| *n == "x-litellm-model-id" && v.ends_with("-1")));
        });
    }
}

fn stream_through(p: Provider, pieces: &[&[u8]]) -> String {
    let (role, id) = role(p);
    let mut a = role
        .attempt(&id, info(Endpoint::ChatCompletions, true))
        .unwrap();
    assert_eq!(
        a.on_response_headers(200, Some("text/event-stream")),
        ResponsePlan::Stream
    );
    let mut out = Vec::new();
    for piece in pieces {
        out.extend(a.stream_chunk(piece, false));
    }
    out.extend(a.stream_chunk(b"", true));
    String::from_utf8(out).unwrap()
}

#[test]
fn streams_translate_the_same_however_they_are_cut() {
    each_provider(Case::ChatStream, |p| {
        let bytes = CHAT_STREAM.as_bytes();
        let whole = stream_through(p, &[bytes]);
        let events: Vec<&str> = whole.split("\n\n").filter(|e| !e.is_empty()).collect();
        let source_events = CHAT_STREAM
            .split("\n\n")
            .filter(|e| !e.trim().is_empty())
            .count();
        assert_eq!(
            events.len(),
            source_events,
            "{p:?}: events lost or invented"
        );
        assert_eq!(*events.last().unwrap(), "data: [DONE]");
        for e in &events[..events.len() - 1] {
            let v = json(e.strip_prefix("data: ").unwrap().as_bytes());
            assert_eq!(v["model"], REQUESTED, "{p:?}");
        }
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(
            stream_through(p, &bytewise),
            whole,
            "{p:?}: one byte at a time"
        );
        for cut in (0..bytes.len()).step_by(7) {
            assert_eq!(
                stream_through(p, &[&bytes[..cut], &bytes[cut..]]),
                whole,
                "{p:?}: split at {cut}"
            );
        }
    });
}

#[test]
fn provider_errors_become_openai_errors_with_the_message_kept() {
    each_provider(Case::Errors, |p| {
        for (status, fixture, client_status, router_status) in [
            (400, ERROR_400, 400, 400),
            (401, ERROR_401, 401, 401),
            (429, ERROR_429, 429, 503),
            (503, ERROR_503, 503, 503),
        ] {
            let (seen_by_router, headers, body) =
                finish(p, Endpoint::ChatCompletions, status, fixture);
            assert_eq!(seen_by_router, router_status, "{p:?} {status}");
            let restored = headers
                .iter()
                .find(|(n, _)| *n == "x-switchyard-upstream-status")
                .map(|(_, v)| v.parse::<u16>().unwrap())
                .unwrap_or(seen_by_router);
            assert_eq!(restored, client_status, "{p:?} {status}");
            let err = json(&body);
            assert_eq!(err["error"]["code"], client_status.to_string());
            let provider_message = json(fixture.as_bytes())["error"]["message"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(
                err["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(&provider_message),
                "{p:?} {status}: message lost"
            );
        }
    });
}
