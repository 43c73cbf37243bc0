//! From config.yaml to the deployments the filter serves: provider defaults, `os.environ/`
//! references, keys, ids.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use switchyard_config::load::{load_str, ConfigError};
use switchyard_config::provider::AuthKind;
use switchyard_config::provider::NOT_YET_SERVED;
use switchyard_config::resolve::{deployments, layered_env, split_url, Resolved, SecretVar};
use switchyard_config::{Auth, Endpoint, Provider, ProxyConfig};

/// What every provider needs besides a model: Vertex AI a project.
const PROVIDER_ENV: &[(&str, &str)] = &[("VERTEXAI_PROJECT", "my-project")];

/// The credentials a provider reads when the deployment names none.
fn default_auth(p: Provider) -> Auth {
    let info = p.info();
    match info.auth {
        _ if p == Provider::Demo => Auth::None,
        AuthKind::Key => info
            .api_key_env
            .map_or(Auth::None, |env| Auth::Key { env: env.into() }),
        AuthKind::Aws => Auth::Aws {
            access_key_id_env: "AWS_ACCESS_KEY_ID".into(),
            secret_access_key_env: "AWS_SECRET_ACCESS_KEY".into(),
            session_token_env: None,
        },
        AuthKind::Google => Auth::GoogleToken {
            env: "VERTEXAI_ACCESS_TOKEN".into(),
        },
    }
}

const SIDECAR: (&str, u16) = ("127.0.0.1", 4001);

// The binding ends the borrow of `layered` before it drops (edition 2021 tail temporaries).
#[allow(clippy::let_and_return)]
fn resolve_with(yaml: &str, vars: &[(&str, &str)]) -> Result<Vec<Resolved>, ConfigError> {
    let config = load_str(yaml, None).unwrap().config;
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env = |name: &str| vars.get(name).cloned();
    let layered = layered_env(&config, &env);
    let resolved = deployments(&config, SIDECAR, &layered);
    resolved
}

fn resolve(yaml: &str) -> Vec<Resolved> {
    resolve_with(yaml, &[]).unwrap()
}

fn one(model: &str) -> String {
    format!("model_list:\n  - model_name: m\n    litellm_params:\n      model: {model}\n")
}

#[test]
fn every_provider_resolves_with_its_defaults() {
    for p in Provider::all() {
        let info = p.info();
        for prefix in info.prefixes {
            let d = &resolve_with(
                &format!(
                    "model_list:\n  - model_name: m\n    litellm_params:\n      model: {prefix}/org/some-model\n      api_base: http://h:1/v1/\n"
                ),
                PROVIDER_ENV,
            )
            .unwrap()[0];
            assert_eq!(d.config.provider, p, "{prefix}");
            assert_eq!(d.config.model, "org/some-model", "text after the first /");
            assert_eq!(d.config.group, "m");
            assert_eq!(d.config.auth, default_auth(p), "{p:?}");
            if p == Provider::Demo {
                continue;
            }
            assert_eq!(
                (
                    d.config.scheme.as_str(),
                    d.config.authority.as_str(),
                    d.config.base_path.as_str()
                ),
                ("http", "h:1", "/v1"),
                "{p:?}"
            );
            assert_eq!((d.hosts[0].name.as_str(), d.hosts[0].port), ("h", 1));
        }

        // No api_base: the provider's default, else its variable, else an error.
        let without = one(&format!("{}/x", p.name()));
        match ((info.default_api_base)(&Default::default()), p) {
            (_, Provider::Demo) => {}
            (Some(_), _) => {
                let d = &resolve_with(&without, PROVIDER_ENV).unwrap()[0];
                let base = (info.default_api_base)(&d.config.params).unwrap();
                let (scheme, host, port, path) = split_url(&base).unwrap();
                assert_eq!(
                    (
                        &d.config.scheme,
                        &d.hosts[0].name,
                        d.hosts[0].port,
                        &d.config.base_path
                    ),
                    (&scheme, &host, port, &path),
                    "{p:?}"
                );
            }
            (None, _) => {
                let e = resolve_with(&without, &[]).unwrap_err();
                assert_eq!(
                    e.path.as_deref(),
                    Some("model_list[0].litellm_params.api_base")
                );
                let var = info.api_base_env.unwrap();
                assert!(
                    e.message.contains(var) && e.message.contains("\"m\""),
                    "{e}"
                );
            }
        }
        // The provider's api_base variable wins over its default.
        if let Some(var) = info.api_base_env {
            let d = &resolve_with(
                &without,
                &[(var, "https://proxy.example/base"), PROVIDER_ENV[0]],
            )
            .unwrap()[0];
            assert_eq!(
                (d.config.authority.as_str(), d.config.base_path.as_str()),
                ("proxy.example", "/base"),
                "{p:?}"
            );
        }
    }
}

#[test]
fn providers_not_served_yet_are_errors_naming_deployment_and_provider() {
    for prefix in NOT_YET_SERVED {
        let e = load_str(&one(&format!("{prefix}/x")), None).unwrap_err();
        assert!(
            e.message.contains(&format!("provider \"{prefix}\""))
                && e.message.contains("(deployment \"m\")"),
            "{e}"
        );
    }
}

#[test]
fn azure_api_version_vllm_base_and_demo() {
    let yaml = "
model_list:
  - model_name: a
    litellm_params: {model: azure/my-deploy, api_base: 'https://res.openai.azure.com/', api_key: literal-secret}
  - model_name: a2
    litellm_params: {model: azure/other, api_base: 'https://res.openai.azure.com', api_version: os.environ/MY_VERSION}
  - model_name: v
    litellm_params: {model: hosted_vllm/meta-llama/Llama-3.1-8B}
  - model_name: d
    litellm_params: {model: switchyard_demo/demo, api_key: ignored}
";
    let ds = resolve_with(
        yaml,
        &[
            ("HOSTED_VLLM_API_BASE", "http://vllm:8000/v1"),
            ("MY_VERSION", "2025-01-01-preview"),
        ],
    )
    .unwrap();
    let a = &ds[0];
    assert_eq!(a.config.provider, Provider::Azure);
    assert_eq!(a.config.model, "my-deploy");
    assert_eq!(a.config.params.api_version.as_deref(), Some("2024-10-21"));
    assert_eq!(
        a.config.auth,
        Auth::Key {
            env: "SWITCHYARD_KEY_0".into()
        }
    );
    assert_eq!(
        (a.config.authority.as_str(), a.config.base_path.as_str()),
        ("res.openai.azure.com", "")
    );
    assert_eq!(
        a.secrets,
        [SecretVar {
            var: "SWITCHYARD_KEY_0".into(),
            literal: Some("literal-secret".into())
        }]
    );
    assert!(!format!("{a:?}").contains("literal-secret"));
    assert_eq!(
        ds[1].config.params.api_version.as_deref(),
        Some("2025-01-01-preview")
    );

    let v = &ds[2];
    assert_eq!(
        (
            v.hosts[0].name.as_str(),
            v.hosts[0].port,
            v.config.model.as_str()
        ),
        ("vllm", 8000, "meta-llama/Llama-3.1-8B")
    );
    assert_eq!(
        v.config.auth,
        Auth::Key {
            env: "HOSTED_VLLM_API_KEY".into()
        }
    );

    let d = &ds[3];
    assert_eq!(
        (
            d.config.scheme.as_str(),
            d.config.authority.as_str(),
            d.config.base_path.as_str()
        ),
        ("http", "127.0.0.1:4001", "/demo/v1")
    );
    assert!(d.secrets.is_empty());
    assert_eq!(d.config.auth, Auth::None, "the demo needs no key");

    // AZURE_API_VERSION when the deployment sets none.
    let e = resolve_with(yaml, &[("AZURE_API_VERSION", "2024-06-01")]).unwrap_err();
    assert!(e.message.contains("MY_VERSION"), "{e}");
    let d = &resolve_with(
        "model_list:\n  - model_name: a\n    litellm_params: {model: azure/x, api_base: 'https://r.example'}\n",
        &[("AZURE_API_VERSION", "2024-06-01")],
    )
    .unwrap()[0];
    assert_eq!(d.config.params.api_version.as_deref(), Some("2024-06-01"));
    assert_eq!(
        resolve(&one("openai/x"))[0].config.params.api_version,
        None,
        "only Azure gets a default"
    );
}

#[test]
fn non_secret_references_resolve_or_name_field_and_variable() {
    let yaml = "
model_list:
  - model_name: a
    litellm_params:
      model: openai/x
      api_base: os.environ/BASE
      organization: os.environ/ORG
      api_key: os.environ/KEY_VAR
      extra_headers: {X-Team: os.environ/TEAM, X-Plain: plain}
      headers: {X-Other: other}
environment_variables:
  TEAM: from-config
";
    let d = &resolve_with(
        yaml,
        &[
            ("BASE", "https://gw.example:8443/openai/v1/"),
            ("ORG", "org-1"),
            ("TEAM", "from-process"),
        ],
    )
    .unwrap()[0];
    assert_eq!(d.config.authority, "gw.example:8443");
    assert_eq!(
        (d.hosts[0].name.as_str(), d.hosts[0].port),
        ("gw.example", 8443)
    );
    assert_eq!(d.config.base_path, "/openai/v1");
    assert_eq!(d.config.organization.as_deref(), Some("org-1"));
    assert_eq!(
        d.config.headers,
        vec![
            ("x-other".to_string(), "other".to_string()),
            ("x-plain".to_string(), "plain".to_string()),
            (
                "x-team".to_string(),
                "from-config".to_string(),
                // environment_variables override the process, as the CLI sets them first.
            ),
        ]
    );
    assert_eq!(
        d.secrets,
        [SecretVar {
            var: "KEY_VAR".into(),
            literal: None
        }],
        "secrets are never resolved"
    );
    assert_eq!(
        d.config.auth,
        Auth::Key {
            env: "KEY_VAR".into()
        }
    );

    for (missing, path) in [
        ("BASE", "model_list[0].litellm_params.api_base"),
        ("ORG", "model_list[0].litellm_params.organization"),
    ] {
        let vars: Vec<(&str, &str)> = [("BASE", "https://gw.example"), ("ORG", "o")]
            .into_iter()
            .filter(|(k, _)| *k != missing)
            .collect();
        let e = resolve_with(yaml, &vars).unwrap_err();
        assert_eq!(e.path.as_deref(), Some(path));
        assert!(
            e.message
                .contains(&format!("os.environ/{missing}, but {missing} is not set")),
            "{e}"
        );
    }
    let e = resolve_with(
        "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, headers: {X-A: os.environ/NOPE}}\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(
        e.path.as_deref(),
        Some("model_list[0].litellm_params.headers.X-A")
    );
    assert!(e.message.contains("NOPE"), "{e}");
    let e = resolve_with(
        "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, api_base: os.environ/B}\n",
        &[("B", "not a url")],
    )
    .unwrap_err();
    assert_eq!(
        e.path.as_deref(),
        Some("model_list[0].litellm_params.api_base")
    );
}

#[test]
fn deployment_ids_are_stable_short_hashes_unless_given() {
    let id = |yaml: &str| resolve(yaml)[0].config.id.clone();
    let base = "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x";
    let plain = id(&format!("{base}}}\n"));
    assert_eq!(plain.len(), 12);
    assert!(plain.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(plain, id(&format!("{base}}}\n")), "stable");
    assert_eq!(
        plain,
        id(&format!("{base}, api_key: sk-one}}\n")),
        "secrets are not hashed"
    );
    for changed in [
        ", timeout: 5",
        ", weight: 2",
        ", api_base: 'https://a.example'",
        ", api_key: os.environ/OTHER_KEY",
        ", extra_headers: {X-A: b}",
        ", unknown_param: 1",
    ] {
        assert_ne!(plain, id(&format!("{base}{changed}}}\n")), "{changed}");
    }
    assert_eq!(
        id("model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n    model_info: {id: mine}\n"),
        "mine"
    );

    // Two entries alike but for their literal keys: both kept, ids distinct.
    let ds = resolve(
        "model_list:
  - model_name: a
    litellm_params: {model: openai/x, api_key: sk-1}
  - model_name: a
    litellm_params: {model: openai/x, api_key: sk-2}
",
    );
    assert_eq!(ds[1].config.id, format!("{}-1", ds[0].config.id));
    assert_eq!(
        ds[1].config.auth,
        Auth::Key {
            env: "SWITCHYARD_KEY_1".into()
        }
    );

    // A given id may not take a generated one.
    let e = resolve_with(
        &format!("model_list:\n  - model_name: a\n    litellm_params: {{model: openai/x}}\n  - model_name: b\n    litellm_params: {{model: openai/y}}\n    model_info: {{id: '{plain}'}}\n"),
        &[],
    )
    .unwrap_err();
    assert_eq!(e.path.as_deref(), Some("model_list[1].model_info.id"));
}

#[test]
fn model_flag_resolves_its_key_from_the_provider_variable() {
    for (flag, key_env) in [
        ("openai/gpt-4o-mini", Some("OPENAI_API_KEY")),
        ("gpt-4o-mini", Some("OPENAI_API_KEY")),
        ("groq/llama-3.1-8b-instant", Some("GROQ_API_KEY")),
        ("switchyard_demo/demo", None),
    ] {
        let c = ProxyConfig::from_model_flag(flag).unwrap();
        let env = |_: &str| None;
        let d = &deployments(&c, SIDECAR, &env).unwrap()[0];
        assert_eq!(d.config.group, flag);
        let want = key_env.map_or(Auth::None, |env: &str| Auth::Key { env: env.into() });
        assert_eq!(d.config.auth, want, "{flag}");
    }
    let c = ProxyConfig::from_model_flag("openai/gpt-4o-mini").unwrap();
    assert_eq!(
        c.resolve_deployments(SIDECAR).unwrap()[0].config.model,
        "gpt-4o-mini"
    );
}

#[test]
fn weights_and_own_timeouts() {
    let d = &resolve(
        "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, weight: 2.6, timeout: 2.5}\n",
    )[0];
    assert_eq!(d.weight, 3);
    assert_eq!((d.timeout_ms, d.stream_timeout_ms), (Some(2500), None));
    let d = &resolve(&one("openai/x"))[0];
    assert_eq!((d.weight, d.timeout_ms), (1, None));
}

#[test]
fn credentials_of_every_kind() {
    let yaml = "
model_list:
  - model_name: b
    litellm_params: {model: bedrock/anthropic.claude-3-haiku, aws_access_key_id: AKIDLITERAL, aws_secret_access_key: os.environ/MY_SECRET, aws_session_token: tok, aws_region_name: eu-west-1}
  - model_name: b2
    litellm_params: {model: bedrock_converse/amazon.nova-lite, aws_bedrock_runtime_endpoint: 'http://127.0.0.1:9/'}
  - model_name: v
    litellm_params: {model: vertex_ai/gemini-2.0-flash, vertex_project: p1, vertex_location: europe-west4, vertex_credentials: /etc/sa.json}
  - model_name: v2
    litellm_params: {model: vertex_ai/gemini-2.0-flash, api_key: os.environ/GCP_TOKEN}
  - model_name: a
    litellm_params: {model: anthropic/claude-3-5-haiku-latest}
";
    let ds = resolve_with(
        yaml,
        &[("AWS_SESSION_TOKEN", "ignored"), ("VERTEXAI_PROJECT", "p0")],
    )
    .unwrap();
    let b = &ds[0];
    assert_eq!(
        b.config.auth,
        Auth::Aws {
            access_key_id_env: "SWITCHYARD_KEY_0_AWS_ACCESS_KEY_ID".into(),
            secret_access_key_env: "MY_SECRET".into(),
            session_token_env: Some("SWITCHYARD_KEY_0_AWS_SESSION_TOKEN".into()),
        }
    );
    assert_eq!(b.secrets.len(), 3);
    assert!(!format!("{b:?}").contains("AKIDLITERAL"));
    assert_eq!(b.config.params.region.as_deref(), Some("eu-west-1"));
    assert_eq!(
        b.config.authority,
        "bedrock-runtime.eu-west-1.amazonaws.com"
    );
    let b2 = &ds[1];
    assert_eq!(
        b2.config.auth,
        Auth::Aws {
            access_key_id_env: "AWS_ACCESS_KEY_ID".into(),
            secret_access_key_env: "AWS_SECRET_ACCESS_KEY".into(),
            session_token_env: Some("AWS_SESSION_TOKEN".into()),
        },
        "the environment's session token is used when it has one"
    );
    assert_eq!(
        b2.config.authority, "127.0.0.1:9",
        "aws_bedrock_runtime_endpoint"
    );
    assert_eq!(b2.config.params.region.as_deref(), Some("us-east-1"));
    let v = &ds[2];
    assert_eq!(v.config.auth, Auth::GoogleServiceAccount);
    assert!(v.service_account.is_some() && v.secrets.is_empty());
    assert_eq!(
        (
            v.config.params.project.as_deref(),
            v.config.params.location.as_deref()
        ),
        (Some("p1"), Some("europe-west4"))
    );
    assert_eq!(v.config.authority, "europe-west4-aiplatform.googleapis.com");
    let v2 = &ds[3];
    assert_eq!(
        v2.config.auth,
        Auth::GoogleToken {
            env: "GCP_TOKEN".into()
        }
    );
    assert_eq!(
        v2.config.params.project.as_deref(),
        Some("p0"),
        "VERTEXAI_PROJECT"
    );
    assert_eq!(v2.config.params.location.as_deref(), Some("us-central1"));
    assert_eq!(
        ds[4].config.auth,
        Auth::Key {
            env: "ANTHROPIC_API_KEY".into()
        }
    );
    assert_eq!(ds[4].config.authority, "api.anthropic.com");

    let e = resolve_with(
        "model_list:\n  - model_name: v\n    litellm_params: {model: vertex_ai/gemini-pro}\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(
        e.path.as_deref(),
        Some("model_list[0].litellm_params.vertex_project")
    );
    assert!(e.message.contains("VERTEXAI_PROJECT"), "{e}");
}

#[test]
fn endpoints_from_the_provider_and_the_mode() {
    use switchyard_config::resolve::endpoints;
    let chat = [Endpoint::ChatCompletions];
    // OpenAI's own API also keeps the responses it stores; the compatible servers do not.
    let mut openai = Endpoint::ALL.to_vec();
    openai.push(Endpoint::StoredResponse);
    assert_eq!(endpoints(Provider::Openai, "anything", None), openai);
    assert_eq!(
        endpoints(Provider::HostedVllm, "anything", None),
        Endpoint::ALL
    );
    // Anthropic counts tokens.
    assert_eq!(
        endpoints(Provider::Anthropic, "claude", None),
        [Endpoint::ChatCompletions, Endpoint::CountTokens]
    );
    assert_eq!(
        endpoints(Provider::Anthropic, "claude", Some("embedding")),
        []
    );
    assert_eq!(
        endpoints(Provider::Bedrock, "amazon.titan-embed-text-v2:0", None),
        [Endpoint::Embeddings]
    );
    assert_eq!(
        endpoints(Provider::Bedrock, "anthropic.claude-3-haiku", None),
        chat
    );
    assert_eq!(
        endpoints(
            Provider::Openai,
            "text-embedding-3-small",
            Some("embedding")
        ),
        [Endpoint::Embeddings]
    );
    assert_eq!(
        endpoints(Provider::Ollama, "llama3", None),
        [Endpoint::ChatCompletions, Endpoint::Completions]
    );
}

#[test]
fn default_parameters_and_drop_params() {
    let yaml = "
model_list:
  - model_name: a
    litellm_params: {model: anthropic/claude, temperature: 0.3, max_tokens: 100, drop_params: false}
  - model_name: b
    litellm_params: {model: openai/x, stop: [END]}
litellm_settings: {drop_params: true}
";
    let ds = resolve(yaml);
    assert_eq!(ds[0].config.defaults["temperature"], 0.3);
    assert_eq!(ds[0].config.defaults["max_tokens"], 100);
    assert!(
        !ds[0].config.drop_params,
        "the deployment's own setting wins"
    );
    assert_eq!(ds[1].config.defaults["stop"], serde_json::json!(["END"]));
    assert!(ds[1].config.drop_params, "litellm_settings.drop_params");
}

#[test]
fn router_default_litellm_params_fill_in_under_the_deployments_own() {
    let yaml = "
model_list:
  - model_name: a
    litellm_params: {model: openai/x, temperature: 0.3}
  - model_name: b
    litellm_params: {model: openai/y}
router_settings:
  default_litellm_params: {temperature: 0, max_tokens: 256}
";
    let ds = resolve(yaml);
    assert_eq!(
        ds[0].config.defaults["temperature"], 0.3,
        "the deployment's own"
    );
    assert_eq!(ds[0].config.defaults["max_tokens"], 256);
    assert_eq!(ds[1].config.defaults["temperature"], 0);
    assert_eq!(ds[1].config.defaults["max_tokens"], 256);
}
