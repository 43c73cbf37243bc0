//! Golden cases for the providers with their own APIs: every folder
//! `tests/fixtures/<provider>/<case>/` holding a `case.json` runs through the provider role
//! as an attempt does, and each step must match its file:
//!
//! | file | what |
//! | --- | --- |
//! | `case.json` | the case: provider, endpoint, stream, deployment, what the request must look like |
//! | `request.json` | the client's OpenAI request |
//! | `provider_request.json` | the body the provider must receive (from its API reference) |
//! | `provider_response.json` | the provider's answer (buffered cases) |
//! | `provider_stream.sse` / `.ndjson` / `.json` / `.eventstream.json` | its stream (the last: a JSON list of `{"headers": {...}, "payload": {...}}` event-stream messages) |
//! | `response.json` | the OpenAI answer the client must get (or the OpenAI error) |
//! | `chunks.jsonl` | the OpenAI stream the client must get: one `data:` payload per line, `[DONE]` last |
//!
//! Streams are also fed one byte at a time and split at every offset: the chunks must not
//! change. `GOLDEN_BLESS=1` writes the OpenAI side (`response.json`, `chunks.jsonl`) from
//! what the translator produced, to review with `git diff`; the provider side is never
//! written, it comes from the provider's documentation (named in `<provider>/SOURCES.md`).
//! `GOLDEN_ONLY=gemini,vertex_ai` runs (and blesses) only those providers' folders.
//!
//! `case.json` fields (all optional but `provider`):
//! `endpoint` (`chat_completions` | `completions` | `embeddings`), `stream`, `model` (the
//! provider's model name), `params` (api_version, region, project, location), `authority`,
//! `drop_params`, `defaults` (litellm_params defaults), `expect_path`, `expect_headers`
//! (name → value, each must be sent), `expect_no_headers` (names that must not be sent),
//! `expect_request_error` (`{"status", "contains"}`: the request is refused before any
//! provider sees it), `status` (the provider's, default 200), `response_headers`,
//! `content_type` (of the provider's answer).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::Deserialize;
use serde_json::Value;
use switchyard_config::provider::AuthKind;
use switchyard_config::{
    Auth, DeploymentConfig, Endpoint, Provider, ProviderConfig, ProviderParams,
};
use switchyard_core::framing::eventstream;
use switchyard_core::host::MemoryHost;
use switchyard_core::provider_role::{ProviderRole, ResponsePlan};

mod support;

/// 2023-11-14T22:13:20Z: every case runs at this instant (SigV4 dates, `created`).
pub const NOW_MS: u64 = 1_700_000_000_000;
pub const KEY: &str = "sk-test-key-0123456789";
pub const AWS_ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
pub const AWS_SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
pub const GOOGLE_TOKEN: &str = "ya29.test-access-token";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Case {
    provider: String,
    #[serde(default)]
    endpoint: Endpoint,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    params: ProviderParams,
    #[serde(default)]
    authority: Option<String>,
    #[serde(default)]
    drop_params: bool,
    #[serde(default)]
    defaults: serde_json::Map<String, Value>,
    #[serde(default)]
    expect_path: Option<String>,
    #[serde(default)]
    expect_headers: serde_json::Map<String, Value>,
    #[serde(default)]
    expect_no_headers: Vec<String>,
    #[serde(default)]
    expect_request_error: Option<ExpectedError>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    response_headers: serde_json::Map<String, Value>,
    #[serde(default)]
    content_type: Option<String>,
    /// Free text: what the case shows (ignored by the runner).
    #[serde(default)]
    #[allow(dead_code)]
    about: Option<String>,
}

#[derive(Deserialize)]
struct ExpectedError {
    status: u16,
    contains: String,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// Every case folder, sorted; only the providers `GOLDEN_ONLY` names (comma-separated
/// folder names) when it is set, so a bless rewrites no one else's files.
fn cases() -> Vec<PathBuf> {
    let only = std::env::var("GOLDEN_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|p| p.trim() == name);
    let mut out = Vec::new();
    for provider in std::fs::read_dir(fixtures()).unwrap().flatten() {
        if !wanted(&provider.file_name().to_string_lossy()) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(provider.path()) else {
            continue;
        };
        for case in entries.flatten() {
            if case.path().join("case.json").is_file() {
                out.push(case.path());
            }
        }
    }
    out.sort();
    out
}

fn read(dir: &Path, file: &str) -> Option<Vec<u8>> {
    std::fs::read(dir.join(file)).ok()
}

fn json(bytes: &[u8], what: &str) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "{what} is not JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    })
}

fn env(var: &str) -> Option<String> {
    Some(
        match var {
            "AWS_ID" => AWS_ACCESS_KEY_ID,
            "AWS_SECRET" => AWS_SECRET_ACCESS_KEY,
            "TOKEN" => GOOGLE_TOKEN,
            _ => KEY,
        }
        .to_string(),
    )
}

fn deployment(case: &Case, provider: Provider) -> DeploymentConfig {
    let info = provider.info();
    let base = (info.default_api_base)(&case.params).unwrap_or_else(|| "http://127.0.0.1:9".into());
    let (scheme, rest) = base.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    DeploymentConfig {
        system_prompt: None,
        id: "golden".into(),
        group: "my-model".into(),
        provider,
        model: case
            .model
            .clone()
            .unwrap_or_else(|| "provider-model".into()),
        scheme: scheme.into(),
        authority: case.authority.clone().unwrap_or_else(|| authority.into()),
        base_path: if path.is_empty() {
            String::new()
        } else {
            format!("/{}", path.trim_end_matches('/'))
        },
        auth: match info.auth {
            AuthKind::Key => Auth::Key { env: "KEY".into() },
            AuthKind::Aws => Auth::Aws {
                access_key_id_env: "AWS_ID".into(),
                secret_access_key_env: "AWS_SECRET".into(),
                session_token_env: None,
            },
            AuthKind::Google => Auth::GoogleToken {
                env: "TOKEN".into(),
            },
        },
        params: case.params.clone(),
        organization: None,
        headers: vec![],
        defaults: case.defaults.clone(),
        drop_params: case.drop_params,
        prices: Default::default(),
    }
}

/// The provider's stream fixture, as bytes on the wire, and its default content type.
fn provider_stream(dir: &Path) -> Option<(Vec<u8>, &'static str)> {
    if let Some(b) = read(dir, "provider_stream.sse") {
        return Some((b, "text/event-stream"));
    }
    if let Some(b) = read(dir, "provider_stream.ndjson") {
        return Some((b, "application/x-ndjson"));
    }
    if let Some(b) = read(dir, "provider_stream.eventstream.json") {
        #[derive(Deserialize)]
        struct Message {
            headers: serde_json::Map<String, Value>,
            payload: Value,
        }
        let messages: Vec<Message> = serde_json::from_slice(&b).expect("eventstream fixture");
        let mut out = Vec::new();
        for m in messages {
            let headers: Vec<(String, String)> = m
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            let refs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            out.extend(eventstream::encode(&refs, m.payload.to_string().as_bytes()));
        }
        return Some((out, "application/vnd.amazon.eventstream"));
    }
    read(dir, "provider_stream.json").map(|b| (b, "application/json"))
}

struct Run<'a> {
    dir: &'a Path,
    case: &'a Case,
    role: Rc<ProviderRole>,
    info: switchyard_config::RequestInfo,
}

impl Run<'_> {
    fn attempt(&self) -> switchyard_core::provider_role::Attempt {
        let mut a = self
            .role
            .attempt(self.info.clone(), 1, &MemoryHost::at(NOW_MS))
            .unwrap();
        let body = read(self.dir, "request.json").expect("request.json");
        a.request(&[(":method".into(), "POST".into())], &body, None)
            .unwrap_or_else(|e| panic!("{}: the request was refused: {e}", self.dir.display()));
        a
    }

    fn response_headers(&self, content_type: &str) -> Vec<(String, String)> {
        let mut h: Vec<(String, String)> = self
            .case
            .response_headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    v.as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        h.push(("content-type".into(), content_type.into()));
        h
    }

    /// The OpenAI stream for the provider's stream fed in these pieces.
    fn stream(&self, pieces: &[&[u8]], content_type: &str) -> String {
        let mut a = self.attempt();
        let status = self.case.status.unwrap_or(200);
        assert_eq!(
            a.on_response_headers(status, Some(content_type)),
            ResponsePlan::Stream,
            "{}: not taken as a stream (content type {content_type})",
            self.dir.display()
        );
        let headers = self.response_headers(content_type);
        let host = MemoryHost::at(NOW_MS);
        let mut out = Vec::new();
        for piece in pieces {
            out.extend(a.stream_chunk(piece, false, &headers, &host).bytes);
        }
        out.extend(a.stream_chunk(b"", true, &headers, &host).bytes);
        String::from_utf8(out).expect("the OpenAI stream is UTF-8")
    }
}

fn bless() -> bool {
    std::env::var("GOLDEN_BLESS").is_ok_and(|v| v == "1")
}

fn run_case(dir: &Path) {
    let case: Case = serde_json::from_slice(&read(dir, "case.json").unwrap())
        .unwrap_or_else(|e| panic!("{}/case.json: {e}", dir.display()));
    let provider = Provider::from_prefix(&case.provider)
        .unwrap_or_else(|| panic!("{}: unknown provider {}", dir.display(), case.provider));
    let cfg = ProviderConfig {
        owned_headers: vec![],
        secret_envs: vec!["KEY".into(), "AWS_SECRET".into(), "TOKEN".into()],
        ..support::provider_config(deployment(&case, provider))
    };
    let role = Rc::new(ProviderRole::new(cfg, env));
    let info = switchyard_config::RequestInfo {
        requested_model: "my-model".into(),
        group: "my-model".into(),
        ..support::request_info("my-model", case.endpoint, case.stream, &["golden"])
    };
    let body = read(dir, "request.json").expect("request.json");

    // The request.
    let mut a = role
        .attempt(info.clone(), 1, &MemoryHost::at(NOW_MS))
        .unwrap();
    let result = a.request(&[(":method".into(), "POST".into())], &body, None);
    if let Some(expected) = &case.expect_request_error {
        let e = result
            .err()
            .unwrap_or_else(|| panic!("{}: the request was not refused", dir.display()));
        assert_eq!(e.status, expected.status, "{}: {e}", dir.display());
        assert!(
            e.message.contains(&expected.contains),
            "{}: {}",
            dir.display(),
            e.message
        );
        return;
    }
    let (headers, sent) =
        result.unwrap_or_else(|e| panic!("{}: the request was refused: {e}", dir.display()));
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(path) = &case.expect_path {
        assert_eq!(header(":path"), Some(path.as_str()), "{}", dir.display());
    }
    for (name, value) in &case.expect_headers {
        assert_eq!(
            header(name),
            value.as_str(),
            "{}: header {name}",
            dir.display()
        );
    }
    for name in &case.expect_no_headers {
        assert_eq!(
            header(name),
            None,
            "{}: header {name} must not be sent",
            dir.display()
        );
    }
    assert_eq!(
        header("content-length"),
        Some(sent.len().to_string().as_str()),
        "{}",
        dir.display()
    );
    let expected = json(
        &read(dir, "provider_request.json").expect("provider_request.json"),
        "provider_request.json",
    );
    assert_eq!(
        json(&sent, "the provider request"),
        expected,
        "{}: the provider request",
        dir.display()
    );

    let run = Run {
        dir,
        case: &case,
        role,
        info,
    };
    let status = case.status.unwrap_or(200);
    if let Some((stream, default_type)) = provider_stream(dir) {
        let content_type = case
            .content_type
            .clone()
            .unwrap_or_else(|| default_type.to_string());
        let whole = run.stream(&[&stream], &content_type);
        let lines: Vec<String> = whole
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                e.strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("{}: not an SSE data event: {e}", dir.display()))
                    .to_string()
            })
            .collect();
        let file = dir.join("chunks.jsonl");
        if bless() {
            std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        }
        let want: Vec<String> = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e} (GOLDEN_BLESS=1 writes it)", file.display()))
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        assert_eq!(
            lines.len(),
            want.len(),
            "{}: chunk count\n{whole}",
            dir.display()
        );
        for (got, want) in lines.iter().zip(&want) {
            if want == "[DONE]" || got == "[DONE]" {
                assert_eq!(got, want, "{}", dir.display());
            } else {
                assert_eq!(
                    json(got.as_bytes(), "a chunk"),
                    json(want.as_bytes(), "chunks.jsonl"),
                    "{}",
                    dir.display()
                );
            }
        }
        let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(
            run.stream(&bytewise, &content_type),
            whole,
            "{}: one byte at a time",
            dir.display()
        );
        let step = (stream.len() / 200).max(1);
        for cut in (0..=stream.len()).step_by(step) {
            assert_eq!(
                run.stream(&[&stream[..cut], &stream[cut..]], &content_type),
                whole,
                "{}: split at {cut}",
                dir.display()
            );
        }
    } else {
        let answer = read(dir, "provider_response.json")
            .expect("provider_response.json or a provider_stream.*");
        let content_type = case
            .content_type
            .clone()
            .unwrap_or_else(|| "application/json".into());
        let mut a = run.attempt();
        assert_eq!(
            a.on_response_headers(status, Some(&content_type)),
            ResponsePlan::Buffer
        );
        let finished = a.finish_body(
            &answer,
            &run.response_headers(&content_type),
            &MemoryHost::at(NOW_MS),
        );
        let file = dir.join("response.json");
        let got = json(&finished.body, "the OpenAI answer");
        if bless() {
            std::fs::write(&file, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        }
        let want = json(
            &std::fs::read(&file)
                .unwrap_or_else(|e| panic!("{}: {e} (GOLDEN_BLESS=1 writes it)", file.display())),
            "response.json",
        );
        assert_eq!(got, want, "{}: the OpenAI answer", dir.display());
        if status >= 400 {
            assert_eq!(
                finished.status.to_string(),
                got["error"]["code"].as_str().unwrap_or_default(),
                "{}",
                dir.display()
            );
        }
    }
}

#[test]
fn golden_cases() {
    let cases = cases();
    for dir in &cases {
        run_case(dir);
    }
    eprintln!("{} golden cases", cases.len());
}
