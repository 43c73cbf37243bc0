//! One LiteLLM config with a deployment of every provider Switchyard serves, as a new user
//! would write it: `switchyard check` accepts it, `switchyard up` starts, and each
//! deployment answers a chat (and a stream) through its provider's own API (the strict
//! fakes of tests/src/fakes/, and the OpenAI fake for the OpenAI-compatible ones).

use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};
use switchyard_config::{Provider, Wire};
use switchyard_tests::artefacts::switchyard_bin;
use switchyard_tests::fakes::{anthropic, bedrock, cohere, gemini, ollama};
use switchyard_tests::{marker, shared, Client, FakeProvider, StrictFake, Switchyard};

use crate::common::{deployment, yaml};

struct Stack {
    sy: Switchyard,
    config: String,
    /// The model_name of each provider's deployment.
    names: Vec<(Provider, String)>,
    _openai: FakeProvider,
    _fakes: Vec<StrictFake>,
}

static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();

/// The litellm_params of a deployment of `provider` on the fakes.
fn params(provider: Provider, openai: &FakeProvider, fakes: &Fakes) -> Value {
    let prefix = provider.name();
    match provider.wire() {
        Wire::OpenAi if provider == Provider::Demo => json!({"model": "switchyard_demo/demo"}),
        Wire::OpenAi => json!({
            "model": format!("{prefix}/some-model"),
            "api_base": openai.url("/v1"),
            "api_key": "os.environ/OPENAI_FAKE_KEY",
        }),
        Wire::Azure => json!({
            "model": "azure/my-deployment",
            "api_base": openai.url(""),
            "api_key": "os.environ/OPENAI_FAKE_KEY",
        }),
        Wire::Anthropic => json!({
            "model": format!("anthropic/{}", anthropic::MODEL),
            "api_base": fakes.anthropic.url(""),
            "api_key": "os.environ/ANTHROPIC_FAKE_KEY",
        }),
        Wire::Gemini if provider == Provider::VertexAi => json!({
            "model": "vertex_ai/gemini-2.5-flash",
            "api_base": fakes.gemini.url(""),
            "vertex_project": gemini::PROJECT,
            "vertex_location": gemini::LOCATION,
            "api_key": "os.environ/VERTEX_FAKE_TOKEN",
        }),
        Wire::Gemini => json!({
            "model": "gemini/gemini-2.5-flash",
            "api_base": fakes.gemini.url(""),
            "api_key": "os.environ/GEMINI_FAKE_KEY",
        }),
        Wire::Bedrock => json!({
            "model": format!("bedrock/{}", bedrock::MODEL),
            "aws_bedrock_runtime_endpoint": fakes.bedrock.url(""),
            "aws_region_name": bedrock::REGION,
            "aws_access_key_id": "os.environ/BEDROCK_FAKE_KEY_ID",
            "aws_secret_access_key": "os.environ/BEDROCK_FAKE_SECRET",
        }),
        Wire::Cohere => json!({
            "model": "cohere_chat/command-a-03-2025",
            "api_base": fakes.cohere.url(""),
            "api_key": "os.environ/COHERE_FAKE_KEY",
        }),
        Wire::Ollama => json!({
            "model": format!("{prefix}/llama3.2"),
            "api_base": fakes.ollama.url(""),
        }),
    }
}

struct Fakes {
    anthropic: StrictFake,
    gemini: StrictFake,
    bedrock: StrictFake,
    cohere: StrictFake,
    ollama: StrictFake,
}

fn stack() -> &'static Stack {
    shared(&STACK, || {
        let openai = FakeProvider::start();
        let fakes = Fakes {
            anthropic: StrictFake::start("anthropic", anthropic::handler()),
            gemini: StrictFake::start("gemini", gemini::handler()),
            bedrock: StrictFake::start("bedrock", bedrock::handler()),
            cohere: StrictFake::start("cohere", cohere::handler()),
            ollama: StrictFake::start("ollama", ollama::handler()),
        };
        let names: Vec<(Provider, String)> = Provider::all()
            .map(|p| (p, format!("every-{}", p.name().replace('_', "-"))))
            .collect();
        let config = yaml(&json!({
            "model_list": names
                .iter()
                .map(|(p, name)| deployment(name, params(*p, &openai, &fakes)))
                .collect::<Vec<_>>(),
        }));
        let sy = Switchyard::start_with_env(
            &config,
            &[
                ("OPENAI_FAKE_KEY", "sk-every-provider-0001"),
                ("ANTHROPIC_FAKE_KEY", anthropic::KEY),
                ("GEMINI_FAKE_KEY", gemini::API_KEY),
                ("VERTEX_FAKE_TOKEN", gemini::ACCESS_TOKEN),
                ("BEDROCK_FAKE_KEY_ID", bedrock::ACCESS_KEY_ID),
                ("BEDROCK_FAKE_SECRET", bedrock::SECRET_ACCESS_KEY),
                ("COHERE_FAKE_KEY", cohere::KEY),
            ],
        );
        Stack {
            sy,
            config,
            names,
            _openai: openai,
            _fakes: vec![
                fakes.anthropic,
                fakes.gemini,
                fakes.bedrock,
                fakes.cohere,
                fakes.ollama,
            ],
        }
    })
}

#[tokio::test]
async fn every_provider_answers_chat_and_streams() {
    let s = stack();
    let _logs = s.sy.dump_logs_on_failure();
    let client = Client::new(&s.sy.base_url());
    for (provider, name) in &s.names {
        let m = marker(name);
        let reply = client
            .post(
                "/v1/chat/completions",
                &json!({"model": name, "messages": [{"role": "user", "content": m}], "max_tokens": 50}),
            )
            .await;
        assert_eq!(reply.status, 200, "{provider:?}: {}", reply.text());
        let v = reply.json();
        assert_eq!(v["model"], name.as_str(), "{provider:?}");
        assert!(
            v["choices"][0]["message"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty()),
            "{provider:?}: {v}"
        );
        assert!(
            v["usage"]["total_tokens"].as_u64().is_some(),
            "{provider:?}: {v}"
        );

        let stream = client
            .stream(
                "/v1/chat/completions",
                &json!({"model": name, "stream": true, "messages": [{"role": "user", "content": marker(name)}], "max_tokens": 50}),
            )
            .await;
        assert_eq!(stream.status, 200, "{provider:?}: {}", stream.text());
        let text = stream.text();
        assert!(
            text.trim_end().ends_with("data: [DONE]"),
            "{provider:?}: {text}"
        );
        assert!(!text.contains("\"error\""), "{provider:?}: {text}");
    }
    for fake in &s._fakes {
        fake.assert_no_violations();
    }
}

#[test]
fn check_accepts_the_config_and_lists_every_deployment() {
    let s = stack();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, &s.config).unwrap();
    let out = Command::new(switchyard_bin())
        .args(["check", "--config"])
        .arg(&path)
        .env("VERTEX_FAKE_TOKEN", "t")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (_, name) in &s.names {
        assert!(
            stdout.contains(name.as_str()),
            "{name} missing from:\n{stdout}"
        );
    }
}
