//! What several test modules use: configs built as JSON, written as YAML.

use std::process::Command;

use serde_json::{json, Value};
use switchyard_tests::artefacts::{repo_root, venv_python};
use switchyard_tests::{FakeProvider, Switchyard};

/// The provider key the OpenAI-style deployments are configured with, through
/// `api_key: os.environ/FAKE_KEY`.
pub const FAKE_KEY: &str = "sk-fake-provider-key-0001";

/// A config.yaml from its JSON form.
pub fn yaml(config: &Value) -> String {
    serde_yaml_ng::to_string(config).expect("a JSON value is valid YAML")
}

/// A model_list entry: `model_name` served by `litellm_params`.
pub fn deployment(model_name: &str, litellm_params: Value) -> Value {
    json!({"model_name": model_name, "litellm_params": litellm_params})
}

/// An `anthropic/` deployment on the strict Anthropic fake, key from ANTHROPIC_FAKE_KEY.
pub fn anthropic_on(model_name: &str, fake: &switchyard_tests::StrictFake) -> Value {
    deployment(
        model_name,
        json!({
            "model": format!("anthropic/{}", switchyard_tests::fakes::anthropic::MODEL),
            "api_base": fake.url(""),
            "api_key": "os.environ/ANTHROPIC_FAKE_KEY",
        }),
    )
}

/// An `openai/<model>` deployment on a fake provider at `<fake>/v1`, key from FAKE_KEY.
pub fn openai_on(model_name: &str, model: &str, fake: &FakeProvider) -> Value {
    deployment(
        model_name,
        json!({
            "model": format!("openai/{model}"),
            "api_base": fake.url("/v1"),
            "api_key": "os.environ/FAKE_KEY",
        }),
    )
}

/// A chat request whose only user message is `text` (a marker, usually).
pub fn chat(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// A streamed chat request.
pub fn chat_stream(model: &str, text: &str, include_usage: bool) -> Value {
    let mut body = chat(model, text);
    body["stream"] = json!(true);
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// An `openai/gpt-4o-mini` deployment of `model_name` on `fake`, with its own literal key
/// (so one fake can stand for several deployments) and `params` added to its litellm_params.
pub fn keyed(model_name: &str, fake: &FakeProvider, key: &str, params: Value) -> Value {
    let mut entry = deployment(
        model_name,
        json!({"model": "openai/gpt-4o-mini", "api_base": fake.url("/v1"), "api_key": key}),
    );
    if let Some(extra) = params.as_object() {
        for (k, v) in extra {
            entry["litellm_params"][k] = v.clone();
        }
    }
    entry
}

/// How many of the requests carrying `marker` reached `fake` with `key`.
pub fn tries(fake: &FakeProvider, marker: &str, key: &str) -> usize {
    fake.find(marker)
        .iter()
        .filter(|r| r.api_keys().contains(&key))
        .count()
}

/// What tests/python/provider_sdk_check.py printed: the official openai SDK driving one
/// model through Switchyard (chat, stream, tools with `tools`, embeddings with an
/// embeddings model).
pub struct SdkReport {
    stdout: String,
    pub report: String,
}

impl SdkReport {
    /// The value of the script's `KEY value` line; panics with the whole report without one.
    pub fn line(&self, key: &str) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no {key} line:\n{}", self.report))
            .to_string()
    }
}

/// Runs the SDK script against `sy` for `model`; panics with its output unless it ran
/// through.
pub fn provider_sdk(
    sy: &Switchyard,
    model: &str,
    tools: bool,
    embeddings: Option<&str>,
) -> SdkReport {
    let mut command = Command::new(venv_python());
    command
        .arg(repo_root().join("tests/python/provider_sdk_check.py"))
        .args(["--base-url", &sy.url("/v1")])
        .args(["--api-key", "sk-anything"])
        .args(["--model", model])
        // The SDK's HTTP client honours proxy variables; the gateway is local.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env_remove("OPENAI_BASE_URL");
    if tools {
        command.arg("--tools");
    }
    if let Some(e) = embeddings {
        command.args(["--embeddings-model", e]);
    }
    let output = command.output().expect("run the openai SDK script");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let report = format!(
        "exit: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the SDK script failed:\n{report}");
    assert!(stdout.contains("ALL_DONE"), "{report}");
    SdkReport { stdout, report }
}

/// Limits count in one-minute windows: a test of exact counts starts well inside one.
pub async fn inside_a_minute(needed: std::time::Duration) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let into = std::time::Duration::from_millis((now.as_millis() % 60_000) as u64);
    if into + needed > std::time::Duration::from_secs(58) {
        tokio::time::sleep(std::time::Duration::from_secs(61) - into).await;
    }
}

/// Runs `tests/python/<script>` with `args` in the .venv (no proxy for the local gateway);
/// panics with its output unless it printed ALL_DONE.
pub fn python_script(script: &str, args: &[&str]) -> SdkReport {
    let output = Command::new(venv_python())
        .arg(repo_root().join("tests/python").join(script))
        .args(args)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_BASE_URL")
        .output()
        .expect("run the SDK script");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let report = format!(
        "exit: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && stdout.contains("ALL_DONE"),
        "the SDK script failed:\n{report}"
    );
    SdkReport { stdout, report }
}
