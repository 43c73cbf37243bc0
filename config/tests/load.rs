//! config.yaml as LiteLLM writes it: every field, warnings for what is kept but not acted on,
//! and errors that name the file, the field and why.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use switchyard_config::load::{load, load_str, ConfigError, Warning};
use switchyard_config::model::{Alias, Secret};
use switchyard_config::ProxyConfig;

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn error(yaml: &str) -> ConfigError {
    match load_str(yaml, Some("config.yaml")) {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(e) => e,
    }
}

fn warning_lines(warnings: &[Warning]) -> Vec<String> {
    warnings.iter().map(Warning::to_string).collect()
}

/// The systems Switchyard replaces load with nothing kept unused.
#[test]
fn the_original_systems_load_without_warnings() {
    for name in [
        "first-proxy.yaml",
        "openai-proxy.yaml",
        "codellama-server.yaml",
        "proxy-service.yaml",
    ] {
        let loaded = load(&example(name)).unwrap();
        assert!(
            loaded.warnings.is_empty(),
            "{name}: {:#?}",
            warning_lines(&loaded.warnings)
        );
    }
}

#[test]
fn full_example_parses_every_field() {
    let loaded = load(&example("full.yaml")).unwrap();
    let c = &loaded.config;
    assert_eq!(c.model_list.len(), 15);

    let e = &c.model_list[0];
    assert_eq!(e.model_name, "gpt-4o");
    let p = &e.litellm_params;
    assert_eq!(p.model, "openai/gpt-4o");
    assert_eq!(p.api_key, Some(Secret::Env("OPENAI_API_KEY".into())));
    assert_eq!(p.organization.as_deref(), Some("org-example"));
    assert_eq!(
        (p.timeout, p.stream_timeout, p.weight),
        (Some(120.0), Some(30.0), Some(3.0))
    );
    assert_eq!(
        (p.max_retries, p.rpm, p.tpm),
        (Some(1), Some(600), Some(100_000))
    );
    assert_eq!(
        p.extra_headers.as_ref().unwrap()["X-Team"],
        "os.environ/TEAM_NAME",
        "non-secret references stay as written until rendering"
    );
    assert_eq!(e.model_info.id.as_deref(), Some("gpt4o-openai"));
    assert_eq!(e.model_info.mode.as_deref(), Some("chat"));
    assert_eq!(e.model_info.base_model.as_deref(), Some("gpt-4o"));
    assert_eq!(e.model_info.max_input_tokens, Some(128_000));

    let p = &c.model_list[1].litellm_params;
    assert_eq!(
        p.api_base.as_ref().map(|b| b.urls()),
        Some(vec!["https://example-eastus.openai.azure.com"])
    );
    assert_eq!(p.api_version.as_deref(), Some("2024-10-21"));
    assert_eq!(p.timeout, Some(90.5));
    assert_eq!(p.headers.as_ref().unwrap()["X-Source"], "switchyard");
    assert_eq!(
        c.model_list[13].litellm_params.api_key,
        Some(Secret::Literal("sk-not-a-real-key".into()))
    );

    let ls = &c.litellm_settings;
    assert_eq!(
        (
            ls.request_timeout,
            ls.num_retries,
            ls.drop_params,
            ls.set_verbose
        ),
        (Some(600.0), Some(2), Some(true), Some(false))
    );
    let rs = &c.router_settings;
    assert_eq!(rs.routing_strategy.as_deref(), Some("simple-shuffle"));
    assert_eq!(
        (rs.num_retries, rs.timeout, rs.stream_timeout),
        (Some(2), Some(300.0), Some(120.0))
    );
    assert_eq!((rs.allowed_fails, rs.cooldown_time), (Some(3), Some(5.0)));
    assert!(matches!(&rs.model_group_alias["gpt4"], Alias::Name(m) if m == "gpt-4o"));
    assert!(matches!(
        &rs.model_group_alias["gpt-4-internal"],
        Alias::Detailed { model, hidden: true } if model == "gpt-4o"
    ));
    let gs = &c.general_settings;
    assert_eq!(
        gs.master_key,
        Some(Secret::Env("LITELLM_MASTER_KEY".into()))
    );
    assert_eq!(gs.database_url, Some(Secret::Env("DATABASE_URL".into())));
    assert_eq!(gs.max_request_size_mb, Some(32.0));
    assert!(c.master_key_is_set());
    assert_eq!(
        c.environment_variables(),
        vec![
            (
                "COMPATIBLE_API_BASE".to_string(),
                "http://localhost:9000/v1".to_string()
            ),
            ("TEAM_NAME".to_string(), "search".to_string()),
        ]
    );

    // Nothing: the one key not acted on (set_verbose) is off.
    let (priceless, others): (Vec<&Warning>, Vec<&Warning>) = loaded
        .warnings
        .iter()
        .partition(|w| w.message.starts_with("no price known"));
    let mut paths: Vec<&str> = others.iter().map(|w| w.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        Vec::<&str>::new(),
        "rpm, tpm and max_retries are acted on by the router, drop_params by the translators"
    );
    assert!(
        priceless.is_empty(),
        "every deployment is priced, from the table or its own fields: {priceless:?}"
    );
}

#[test]
fn quickstart_loads_without_warnings() {
    let loaded = load(&example("quickstart.yaml")).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert!(!loaded.config.master_key_is_set());
    assert_eq!(loaded.config.model_list[0].model_name, "demo");
}

#[test]
fn the_coding_agents_example_loads_without_warnings() {
    let loaded = load(&example("coding-agents.yaml")).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let models: Vec<&str> = loaded
        .config
        .model_list
        .iter()
        .map(|m| m.litellm_params.model.as_str())
        .collect();
    assert!(
        models.iter().any(|m| m.starts_with("bedrock/")),
        "{models:?}"
    );
}

#[test]
fn unknown_keys_are_kept_and_reported_with_their_path() {
    let loaded = load_str(
        r#"
model_list:
  - model_name: a
    litellm_params: {model: openai/gpt-4o}
  - model_name: b
    litellm_params:
      model: openai/gpt-4o
      foo: 1
      custom_llm_provider: openai
    model_info: {anything: goes}
    surprise: true
litellm_settings:
  callbacks: [datadog, prometheus]
  success_callback: [datadog]
  cache: true
  frobnicate: 3
router_settings:
  routing_strategy: latency-based-routing
  fallbacks: [{a: [b]}]
  optional_pre_call_checks: [router_budget_limiting]
  wat: 1
general_settings:
  alerting: [slack]
  mystery: x
top_level_thing: {deep: [1, 2]}
"#,
        Some("c.yaml"),
    )
    .unwrap();
    let lines = warning_lines(&loaded.warnings);
    for expected in [
        "model_list[1].litellm_params.foo: unknown key, kept and ignored",
        "model_list[1].surprise: unknown key, kept and ignored",
        "litellm_settings.frobnicate: unknown key, kept and ignored",
        "router_settings.optional_pre_call_checks: not acted on: only enable_pre_call_checks (context windows) is checked before a call",
        "router_settings.wat: unknown key, kept and ignored",
        "general_settings.alerting: not acted on: no alerts are sent; alert from Prometheus on /metrics",
        "general_settings.mystery: unknown key, kept and ignored",
        "top_level_thing: unknown key, kept and ignored",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "missing warning {expected:?} in {lines:#?}"
        );
    }
    let callbacks: Vec<&String> = lines.iter().filter(|l| l.contains("callback")).collect();
    assert_eq!(
        callbacks.len(),
        1,
        "one warning per callback not served: {callbacks:#?}"
    );
    assert!(
        callbacks[0].starts_with("litellm_settings.callbacks.datadog: not served by Switchyard"),
        "{callbacks:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("router_settings.routing_strategy")
                || l.starts_with("router_settings.fallbacks")
                || l.starts_with("litellm_settings.cache")),
        "routing strategies and fallbacks are acted on: {lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("model_info")),
        "model_info is free-form"
    );
    assert_eq!(lines.len(), 9, "{lines:#?}");
    assert!(
        loaded.warnings.iter().all(Warning::is_not_acted_on),
        "each is a key (or callback) kept but not acted on: {lines:#?}"
    );

    // Nothing is lost: every value is still there.
    let c = &loaded.config;
    assert_eq!(c.model_list[1].litellm_params.extra["foo"], 1);
    assert_eq!(c.model_list[1].model_info.extra["anything"], "goes");
    assert_eq!(c.litellm_settings.cache, Some(true));
    assert_eq!(
        c.router_settings.extra["optional_pre_call_checks"][0],
        "router_budget_limiting"
    );
    assert_eq!(
        c.router_settings.fallbacks.as_ref().unwrap()[0]["a"],
        ["b"],
        "fallbacks are a typed field"
    );
    assert_eq!(c.extra["top_level_thing"]["deep"][1], 2);
}

#[test]
fn errors_name_the_file_the_field_and_why() {
    // (config, field path, words the message must hold)
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, timeout: soon}\n",
            "model_list[0].litellm_params.timeout",
            &["invalid type", "soon"],
        ),
        (
            "model_list:\n  - litellm_params: {model: openai/x}\n",
            "model_list[0]",
            &["model_name"],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {api_base: 'http://x'}\n",
            "model_list[0].litellm_params",
            &["model"],
        ),
        (
            "model_list:\n  - model_name: ' '\n    litellm_params: {model: openai/x}\n",
            "model_list[0].model_name",
            &["empty"],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n  - model_name: llama\n    litellm_params: {model: llama3}\n",
            "model_list[1].litellm_params.model",
            &["no provider prefix", "hosted_vllm/llama3", "\"llama\""],
        ),
        (
            "model_list:\n  - model_name: sm\n    litellm_params: {model: sagemaker/my-endpoint}\n",
            "model_list[0].litellm_params.model",
            &[
                "provider \"sagemaker\"",
                "(deployment \"sm\")",
                "not served by Switchyard yet",
                "served today: openai, azure, groq",
            ],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: acme/x}\n",
            "model_list[0].litellm_params.model",
            &["unknown provider \"acme\"", "(deployment \"a\")"],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, api_base: 'localhost:8000/v1'}\n",
            "model_list[0].litellm_params.api_base",
            &["not a URL", "http://"],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, api_base: 'http://h:99999'}\n",
            "model_list[0].litellm_params.api_base",
            &["bad port"],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n    model_info: {id: one}\n  - model_name: b\n    litellm_params: {model: openai/y}\n    model_info: {id: one}\n",
            "model_list[1].model_info.id",
            &["\"one\"", "unique"],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, weight: -1}\n",
            "model_list[0].litellm_params.weight",
            &["positive"],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, stream_timeout: 0}\n",
            "model_list[0].litellm_params.stream_timeout",
            &["positive"],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, extra_headers: {'Bad Header': v}}\n",
            "model_list[0].litellm_params.extra_headers.Bad Header",
            &["header name"],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, api_key: os.environ/}\n",
            "model_list[0].litellm_params.api_key",
            &["name of a variable"],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, extra_headers: [a, b]}\n",
            "model_list[0].litellm_params.extra_headers",
            &["invalid type"],
        ),
        (
            "router_settings:\n  model_group_alias: {gpt4: nothing}\n",
            "router_settings.model_group_alias.gpt4",
            &["\"nothing\"", "no model_name"],
        ),
        (
            "general_settings:\n  max_request_size_mb: 0\n",
            "general_settings.max_request_size_mb",
            &["between"],
        ),
        (
            "general_settings:\n  master_key: os.environ/\n",
            "general_settings.master_key",
            &["name of a variable"],
        ),
        (
            "environment_variables:\n  A: {b: c}\n",
            "environment_variables.A",
            &["string, number or boolean"],
        ),
        (
            "router_settings:\n  cooldown_time: -1\n",
            "router_settings.cooldown_time",
            &["positive"],
        ),
        (
            "litellm_settings:\n  request_timeout: 0\n",
            "litellm_settings.request_timeout",
            &["positive"],
        ),
        ("model_list: {a: b}\n", "model_list", &["invalid type"]),
        (
            "general_settings:\n  request_headers_timeout: -5\n",
            "general_settings.request_headers_timeout",
            &["positive"],
        ),
        (
            "general_settings:\n  client_idle_timeout: 0\n",
            "general_settings.client_idle_timeout",
            &["positive"],
        ),
        (
            "general_settings:\n  global_max_parallel_requests: 0\n",
            "general_settings.global_max_parallel_requests",
            &["at least 1"],
        ),
        (
            "general_settings:\n  max_response_size_mb: -1\n",
            "general_settings.max_response_size_mb",
            &["between"],
        ),
        (
            "router_settings:\n  retry_after: -1\n",
            "router_settings.retry_after",
            &["zero or a positive"],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, max_parallel_requests: 0}\n",
            "model_list[0].litellm_params.max_parallel_requests",
            &["at least 1"],
        ),
    ];
    for (yaml, path, words) in cases {
        let e = error(yaml);
        assert_eq!(e.file.as_deref(), Some("config.yaml"), "{e}");
        assert_eq!(e.path.as_deref(), Some(*path), "{yaml}\n=> {e}");
        for word in *words {
            assert!(e.message.contains(word), "{yaml}\n=> {e}\nlacks {word:?}");
        }
        assert!(
            e.to_string().starts_with(&format!("config.yaml: {path}: ")),
            "{e}"
        );
    }

    let e = error("model_list: [\n");
    assert_eq!(e.file.as_deref(), Some("config.yaml"));
    assert!(e.to_string().starts_with("config.yaml: "), "{e}");

    let e = load(Path::new("/nonexistent/config.yaml")).unwrap_err();
    assert_eq!(e.file.as_deref(), Some("/nonexistent/config.yaml"));
    assert!(e.message.contains("cannot read"), "{e}");
}

#[test]
fn empty_file_is_an_empty_config() {
    let loaded = load_str("\n# nothing yet\n", None).unwrap();
    assert!(loaded.config.model_list.is_empty());
    assert!(loaded.warnings.is_empty());
}

#[test]
fn secrets_never_print() {
    let c = load_str(
        "
model_list:
  - model_name: a
    litellm_params: {model: openai/x, api_key: sk-provider-literal}
general_settings:
  master_key: sk-master-literal
  database_url: postgres://user:db-password@db/litellm
environment_variables:
  SOME_KEY: env-value-literal
",
        None,
    )
    .unwrap()
    .config;
    let debug = format!("{c:?}");
    for secret in [
        "sk-provider-literal",
        "sk-master-literal",
        "db-password",
        "env-value-literal",
    ] {
        assert!(!debug.contains(secret), "{secret} printed: {debug}");
    }
    assert_eq!(
        format!("{:?}", Secret::Env("OPENAI_API_KEY".into())),
        "os.environ/OPENAI_API_KEY",
        "a variable's name is not a secret"
    );
    assert_eq!(
        format!("{:?}", Secret::Literal("sk-x".into())),
        "<literal secret>"
    );
}

#[test]
fn the_model_flag_is_one_deployment_named_as_given() {
    let c = ProxyConfig::from_model_flag("openai/gpt-4o-mini").unwrap();
    assert_eq!(c.model_list.len(), 1);
    assert_eq!(c.model_list[0].model_name, "openai/gpt-4o-mini");
    assert_eq!(c.model_list[0].litellm_params.model, "openai/gpt-4o-mini");
    assert!(c.model_list[0].litellm_params.api_key.is_none());
    assert!(!c.master_key_is_set());
    assert!(c.environment_variables().is_empty());

    assert!(ProxyConfig::from_model_flag("gpt-4o").is_ok());
    assert!(ProxyConfig::from_model_flag("switchyard_demo/demo").is_ok());
    assert!(ProxyConfig::from_model_flag("gemini/gemini-pro").is_ok());
    let e = ProxyConfig::from_model_flag("watsonx/granite").unwrap_err();
    assert!(e.message.contains("\"watsonx\""), "{e}");
    assert!(ProxyConfig::from_model_flag("groq/").is_err());
}

#[test]
fn a_missing_field_names_its_path_once() {
    let e = load_str(
        "model_list:\n  - model_name: a\n    litellm_params:\n      api_base: http://x\n",
        Some("c.yaml"),
    )
    .unwrap_err();
    let text = e.to_string();
    assert_eq!(
        text.matches("model_list[0].litellm_params").count(),
        1,
        "{text}"
    );
    assert!(text.contains("missing field `model`"), "{text}");
}

/// Writes files into a new temporary folder: (name, text).
fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn shown(dir: &tempfile::TempDir, name: &str) -> String {
    dir.path().join(name).display().to_string()
}

const MAIN_WITH_INCLUDES: &str = "
include: [models.yaml, more/other.yaml]
model_list:
  - model_name: main
    litellm_params: {model: openai/gpt-4o-mini}
router_settings:
  fallbacks: [{main: [included]}]
";

#[test]
fn include_appends_the_model_lists_in_order() {
    let dir = folder(&[
        ("config.yaml", MAIN_WITH_INCLUDES),
        (
            "models.yaml",
            "model_list:\n  - model_name: included\n    litellm_params: {model: openai/gpt-4o}\n  - model_name: included\n    litellm_params: {model: openai/gpt-4o, api_key: os.environ/KEY_2}\n",
        ),
        (
            "more/other.yaml",
            "model_list:\n  - model_name: other\n    litellm_params: {model: openai/gpt-4o-mini}\n",
        ),
    ]);
    let loaded = load(&dir.path().join("config.yaml")).unwrap();
    let names: Vec<&str> = loaded
        .config
        .model_list
        .iter()
        .map(|m| m.model_name.as_str())
        .collect();
    assert_eq!(names, ["main", "included", "included", "other"]);
    assert!(
        loaded.warnings.is_empty(),
        "include is honoured: {:#?}",
        warning_lines(&loaded.warnings)
    );
    assert!(!loaded.config.extra.contains_key("include"));
    assert_eq!(
        loaded.config.source.as_deref(),
        Some(shown(&dir, "config.yaml").as_str())
    );
}

#[test]
fn an_included_file_s_other_keys_replace_the_config_s_as_in_litellm() {
    let dir = folder(&[
        (
            "config.yaml",
            "include: [settings.yaml]\nlitellm_settings: {num_retries: 5, drop_params: true}\nmodel_list:\n  - model_name: a\n    litellm_params: {model: openai/gpt-4o}\n",
        ),
        (
            "settings.yaml",
            "litellm_settings: {num_retries: 1}\nmodel_list:\n  - model_name: b\n    litellm_params: {model: openai/gpt-4o, foo: 1}\ncredential_list: [{credential_name: x}]\n",
        ),
    ]);
    let loaded = load(&dir.path().join("config.yaml")).unwrap();
    let ls = &loaded.config.litellm_settings;
    assert_eq!(
        (ls.num_retries, ls.drop_params),
        (Some(1), None),
        "the whole section is replaced"
    );
    let lines = warning_lines(&loaded.warnings);
    let settings = shown(&dir, "settings.yaml");
    for expected in [
        format!(
            "{settings}: litellm_settings: replaces the whole litellm_settings of {}, as LiteLLM does with a section of an included file",
            shown(&dir, "config.yaml")
        ),
        format!("{settings}: model_list[0].litellm_params.foo: unknown key, kept and ignored"),
    ] {
        assert!(lines.contains(&expected), "missing {expected:?} in {lines:#?}");
    }
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!(
        loaded.config.credential_list.len(),
        1,
        "the included file's credentials"
    );
    let foo = loaded
        .warnings
        .iter()
        .find(|w| w.path.ends_with(".foo"))
        .unwrap();
    assert_eq!(foo.file.as_deref(), Some(settings.as_str()));
}

#[test]
fn errors_in_an_included_file_name_it_and_the_field_in_it() {
    // (included file, field path in it, words of the message)
    let cases: &[(&str, &str, &[&str])] = &[
        (
            // Found by the YAML parser.
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, timeout: soon}\n",
            "model_list[0].litellm_params.timeout",
            &["invalid type"],
        ),
        (
            // Found by validation of the merged config: its second entry is the config's third.
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n  - model_name: b\n    litellm_params: {model: acme/x}\n",
            "model_list[1].litellm_params.model",
            &["unknown provider \"acme\""],
        ),
        (
            "general_settings:\n  custom_auth: my_module.user_api_key_auth\n",
            "general_settings.custom_auth",
            &["refused", "ext_authz"],
        ),
        ("model_list: [\n", "", &[]),
    ];
    for (text, path, words) in cases {
        let dir = folder(&[
            ("config.yaml", "include: [models.yaml]\nmodel_list:\n  - model_name: main\n    litellm_params: {model: openai/gpt-4o}\n"),
            ("models.yaml", text),
        ]);
        let e = load(&dir.path().join("config.yaml")).unwrap_err();
        assert_eq!(e.file, Some(shown(&dir, "models.yaml")), "{text}\n=> {e}");
        if !path.is_empty() {
            assert_eq!(e.path.as_deref(), Some(*path), "{text}\n=> {e}");
        }
        for word in *words {
            assert!(e.message.contains(word), "{text}\n=> {e}\nlacks {word:?}");
        }
    }
}

#[test]
fn a_missing_included_file_names_it_and_the_including_file() {
    let dir = folder(&[
        ("config.yaml", "include: [models.yaml, missing.yaml]\n"),
        ("models.yaml", "model_list: []\n"),
    ]);
    let e = load(&dir.path().join("config.yaml")).unwrap_err();
    assert_eq!(e.file, Some(shown(&dir, "config.yaml")));
    assert_eq!(e.path.as_deref(), Some("include[1]"));
    assert!(e.message.contains(&shown(&dir, "missing.yaml")), "{e}");
    assert!(e.message.contains("cannot read"), "{e}");

    for bad in ["include: models.yaml\n", "include: [1]\n"] {
        let dir = folder(&[("config.yaml", bad)]);
        let e = load(&dir.path().join("config.yaml")).unwrap_err();
        assert_eq!(e.path.as_deref(), Some("include"), "{e}");
        assert!(e.message.contains("list of file names"), "{e}");
    }
}

/// LiteLLM appends an included file's `include` to the list it goes through: those files are
/// read last, relative to the first config's folder.
#[test]
fn nested_includes_are_read_after_the_others_from_the_config_s_folder() {
    let dir = folder(&[
        ("config.yaml", "include: [sub/a.yaml, c.yaml]\n"),
        (
            "sub/a.yaml",
            "include: [b.yaml]\nmodel_list:\n  - model_name: a\n    litellm_params: {model: openai/gpt-4o}\n",
        ),
        (
            "b.yaml",
            "model_list:\n  - model_name: b\n    litellm_params: {model: openai/gpt-4o}\n",
        ),
        (
            "c.yaml",
            "model_list:\n  - model_name: c\n    litellm_params: {model: openai/gpt-4o}\n",
        ),
    ]);
    let loaded = load(&dir.path().join("config.yaml")).unwrap();
    let names: Vec<&str> = loaded
        .config
        .model_list
        .iter()
        .map(|m| m.model_name.as_str())
        .collect();
    assert_eq!(names, ["a", "c", "b"]);

    // A cycle, and a file included twice: LiteLLM would read them again (without end).
    for (files, includer) in [
        (
            vec![
                ("config.yaml", "include: [a.yaml]\n"),
                ("a.yaml", "include: [config.yaml]\n"),
            ],
            "a.yaml",
        ),
        (
            vec![
                ("config.yaml", "include: [a.yaml, b.yaml]\n"),
                ("a.yaml", "model_list: []\n"),
                ("b.yaml", "include: [a.yaml]\n"),
            ],
            "b.yaml",
        ),
    ] {
        let dir = folder(&files);
        let e = load(&dir.path().join("config.yaml")).unwrap_err();
        assert_eq!(e.file, Some(shown(&dir, includer)), "{e}");
        assert_eq!(e.path.as_deref(), Some("include[0]"), "{e}");
        assert!(e.message.contains("read already"), "{e}");
    }
}

#[test]
fn errors_found_when_rendering_name_the_included_file() {
    let dir = folder(&[
        ("config.yaml", MAIN_WITH_INCLUDES),
        (
            "models.yaml",
            "model_list:\n  - model_name: included\n    litellm_params: {model: openai/gpt-4o, api_base: os.environ/SWITCHYARD_TEST_UNSET_BASE}\n",
        ),
        ("more/other.yaml", ""),
    ]);
    let config = load(&dir.path().join("config.yaml")).unwrap().config;
    let e = config.resolve_deployments(("127.0.0.1", 4001)).unwrap_err();
    assert_eq!(
        e.path.as_deref(),
        Some("model_list[1].litellm_params.api_base")
    );
    let e = config.locate(e);
    assert_eq!(e.file, Some(shown(&dir, "models.yaml")), "{e}");
    assert_eq!(
        e.path.as_deref(),
        Some("model_list[0].litellm_params.api_base")
    );
}

#[test]
fn settings_that_would_weaken_security_are_refused_with_what_to_use() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "general_settings: {custom_auth: custom_auth.user_api_key_auth}\n",
            "general_settings.custom_auth",
            "ext_authz",
        ),
        (
            "general_settings: {enable_jwt_auth: true}\n",
            "general_settings.enable_jwt_auth",
            "jwt_authn",
        ),
        (
            "general_settings: {key_management_system: google_kms}\n",
            "general_settings.key_management_system",
            "os.environ/",
        ),
        (
            "general_settings: {allowed_ips: [10.0.0.1]}\n",
            "general_settings.allowed_ips",
            "RBAC",
        ),
        (
            "guardrails:\n  - guardrail_name: pii\n    litellm_params: {guardrail: presidio, mode: pre_call}\n",
            "guardrails",
            "ext_proc",
        ),
        (
            "litellm_settings: {guardrails: [{prompt_injection: {callbacks: [lakera_prompt_injection]}}]}\n",
            "litellm_settings.guardrails",
            "ext_proc",
        ),
        (
            "litellm_settings: {callbacks: [presidio]}\n",
            "litellm_settings.callbacks.presidio",
            "ext_proc",
        ),
        (
            "litellm_settings:\n  cache: true\n  cache_params: {type: redis, host: r, ssl: true}\n",
            "litellm_settings.cache_params.ssl",
            "TLS",
        ),
    ];
    for (yaml, path, instead) in cases {
        let e = error(yaml);
        assert_eq!(e.path.as_deref(), Some(*path), "{yaml}\n=> {e}");
        assert!(e.message.starts_with("refused: "), "{e}");
        assert!(
            e.message.contains(instead),
            "{yaml}\n=> {e}\nlacks {instead:?}"
        );
    }
    // Turned off, they ask for nothing, which is what Switchyard does: no warning.
    let loaded = load_str(
        "general_settings: {enable_jwt_auth: false, custom_auth: null}\n",
        None,
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
}

/// Production configs as LiteLLM's users write them: exactly these keys are kept but not acted
/// on. When Switchyard starts acting on one (or stops), this list changes with it.
#[test]
fn production_configs_report_exactly_what_is_not_acted_on() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/production");
    let cases: &[(&str, &[&str])] = &[
        (
            "chat-platform.yaml",
            &[
                "general_settings.alerting",
                "general_settings.alerting_threshold",
                "general_settings.proxy_batch_write_at",
                "litellm_settings.budget_duration",
                "litellm_settings.cache_params.max_connections",
                "litellm_settings.callbacks.datadog",
                "litellm_settings.max_budget",
                "router_settings.routing_strategy_args",
            ],
        ),
        (
            "coding-agents.yaml",
            &[
                "coding-agents-models.yaml: model_list[0].litellm_params.aws_role_name",
                "coding-agents-models.yaml: model_list[0].litellm_params.budget_duration",
                "coding-agents-models.yaml: model_list[0].litellm_params.max_budget",
            ],
        ),
        (
            "self-hosted.yaml",
            &[
                "general_settings.allow_requests_on_db_unavailable",
                "general_settings.ui_access_mode",
                "litellm_settings.callbacks.slack",
                "litellm_settings.modify_params",
            ],
        ),
    ];
    for (name, expected) in cases {
        let loaded = load(&fixtures.join(name)).unwrap();
        let mut got: Vec<String> = loaded
            .warnings
            .iter()
            .filter(|w| w.is_not_acted_on())
            .map(|w| match &w.file {
                Some(file) => format!(
                    "{}: {}",
                    Path::new(file).file_name().unwrap().to_string_lossy(),
                    w.path
                ),
                None => w.path.clone(),
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            *expected,
            "{name}: {:#?}",
            warning_lines(&loaded.warnings)
        );
        // Each says why and what to do instead.
        for w in loaded.warnings.iter().filter(|w| w.is_not_acted_on()) {
            assert!(
                w.message.starts_with("not acted on: ") || w.message.starts_with("not served"),
                "{w}"
            );
        }
    }
}

#[test]
fn deployments_take_their_named_credential() {
    let yaml = r#"
credential_list:
  - credential_name: azure-eu
    credential_values:
      api_key: os.environ/AZURE_EU_KEY
      api_base: https://eu.openai.azure.com
      api_version: "2024-10-21"
    credential_info: {description: production, EU}
model_list:
  - model_name: gpt-4o
    litellm_params: {model: azure/gpt-4o, litellm_credential_name: azure-eu}
  - model_name: gpt-4o-mini
    litellm_params:
      model: azure/gpt-4o-mini
      litellm_credential_name: azure-eu
      api_version: "2025-01-01"
"#;
    let loaded = load_str(yaml, Some("c.yaml")).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let p = &loaded.config.model_list[0].litellm_params;
    assert!(matches!(&p.api_key, Some(Secret::Env(v)) if v == "AZURE_EU_KEY"));
    assert_eq!(p.api_version.as_deref(), Some("2024-10-21"));
    assert!(p.api_base.is_some());
    let own = &loaded.config.model_list[1].litellm_params;
    assert_eq!(
        own.api_version.as_deref(),
        Some("2025-01-01"),
        "the deployment's own wins"
    );
    let e = load_str(
        "model_list:
  - model_name: a
    litellm_params: {model: openai/x, litellm_credential_name: nope}
",
        Some("c.yaml"),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("litellm_credential_name: no credential named \"nope\""),
        "{e}"
    );
}
