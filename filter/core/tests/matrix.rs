//! Every OpenAI-compatible provider through the same case matrix, on the OpenAI fixtures the
//! fake providers of the end-to-end tests replay (tests/fixtures/openai/). Providers with
//! their own API opt out here, explicitly: their golden cases (tests/fixtures/<provider>/)
//! run in golden.rs.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::rc::Rc;

use serde_json::Value;
use switchyard_config::{
    Auth, DeploymentConfig, Endpoint, Provider, ProviderConfig, ProviderParams, RequestInfo, Wire,
};
use switchyard_core::headers::HeaderEdits;
use switchyard_core::host::MemoryHost;
use switchyard_core::provider_role::{ProviderRole, ResponsePlan};

mod support;

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

/// Cases a provider does not support: the OpenAI fixtures are for the OpenAI wire (and
/// Azure's, which is the same schema).
fn opts_out(provider: Provider, _case: Case) -> bool {
    !matches!(provider.wire(), Wire::OpenAi | Wire::Azure)
}

fn deployment(provider: Provider) -> DeploymentConfig {
    let info = provider.info();
    let base = match provider {
        Provider::Azure => "https://my-resource.openai.azure.com",
        _ => &(info.default_api_base)(&Default::default())
            .unwrap_or_else(|| "http://127.0.0.1:8000/v1".into()),
    };
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    DeploymentConfig {
        system_prompt: None,
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
        auth: Auth::Key {
            env: "PROVIDER_KEY".into(),
        },
        params: ProviderParams {
            api_version: (provider == Provider::Azure).then(|| "2024-10-21".into()),
            ..Default::default()
        },
        organization: None,
        headers: vec![],
        defaults: Default::default(),
        drop_params: false,
        prices: Default::default(),
    }
}

fn role(provider: Provider) -> Rc<ProviderRole> {
    let cfg = ProviderConfig {
        owned_headers: vec![],
        secret_envs: vec!["PROVIDER_KEY".into()],
        ..support::provider_config(deployment(provider))
    };
    Rc::new(ProviderRole::new(cfg, |_| Some("sk-provider-key".into())))
}

/// A request whose plan is this deployment alone: errors are delivered, not retried.
fn info(endpoint: Endpoint, stream: bool) -> RequestInfo {
    support::request_info(REQUESTED, endpoint, stream, &["only"])
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
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
        let role = role(p);
        let mut a = role
            .attempt(
                info(Endpoint::ChatCompletions, false),
                1,
                &MemoryHost::at(0),
            )
            .unwrap();
        let body = br#"{"model":"my-model","messages":[{"role":"user","content":"Hi \u00e9"}],"temperature":0.2,"tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"unknown_field":{"kept":true}}"#;
        let (headers, out) = a
            .request(&[(":method".into(), "POST".into())], body, None)
            .unwrap();
        let out = json(&out);
        assert_eq!(out["model"], "upstream-model", "{p:?}");
        assert_eq!(
            without_model(out),
            without_model(json(body)),
            "{p:?}: other fields changed"
        );
        let path = header(&headers, ":path").unwrap();
        let d = deployment(p);
        if p.wire() == Wire::Azure {
            assert_eq!(
                path,
                "/openai/deployments/upstream-model/chat/completions?api-version=2024-10-21"
            );
            assert_eq!(header(&headers, "api-key"), Some("sk-provider-key"));
        } else {
            assert_eq!(path, format!("{}/chat/completions", d.base_path), "{p:?}");
            assert_eq!(
                header(&headers, "authorization"),
                Some("Bearer sk-provider-key"),
                "{p:?}"
            );
        }
    });
}

fn finish(p: Provider, endpoint: Endpoint, status: u16, body: &str) -> (u16, HeaderEdits, Vec<u8>) {
    let role = role(p);
    let mut a = role
        .attempt(info(endpoint, false), 1, &MemoryHost::at(0))
        .unwrap();
    assert_eq!(
        a.on_response_headers(status, Some("application/json")),
        ResponsePlan::Buffer
    );
    let f = a.finish_body(body.as_bytes(), &[], &MemoryHost::at(0));
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
            assert!(header(&headers.apply(vec![]), "x-litellm-model-id")
                .is_some_and(|v| v.ends_with("-1")));
        });
    }
}

fn stream_through(p: Provider, pieces: &[&[u8]]) -> String {
    let role = role(p);
    let mut a = role
        .attempt(info(Endpoint::ChatCompletions, true), 1, &MemoryHost::at(0))
        .unwrap();
    assert_eq!(
        a.on_response_headers(200, Some("text/event-stream")),
        ResponsePlan::Stream
    );
    let mut out = Vec::new();
    for piece in pieces {
        out.extend(a.stream_chunk(piece, false, &[], &MemoryHost::at(0)).bytes);
    }
    out.extend(a.stream_chunk(b"", true, &[], &MemoryHost::at(0)).bytes);
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
        for (status, fixture) in [
            (400, ERROR_400),
            (401, ERROR_401),
            (429, ERROR_429),
            (503, ERROR_503),
        ] {
            let (client_status, headers, body) =
                finish(p, Endpoint::ChatCompletions, status, fixture);
            assert_eq!(
                client_status, status,
                "{p:?}: the client sees the provider's status"
            );
            assert_eq!(
                header(&headers.apply(vec![]), ":status"),
                Some(status.to_string().as_str())
            );
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
