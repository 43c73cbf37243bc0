//! What several test modules use: configs built as JSON, written as YAML.

use serde_json::{json, Value};
use switchyard_tests::FakeProvider;

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
