//! Reading config.yaml: parse, validate, and report what is kept but not acted on.
//!
//! `os.environ/VAR` references are kept as references here and resolved at render time
//! (`crate::resolve`), after the CLI has applied `environment_variables`.

use std::fmt;
use std::path::Path;

use serde_json::Value;

use crate::model::ProxyConfig;
use crate::provider::{Provider, NOT_YET_SERVED};

/// A problem that stops the config from being used: names the file, the field path and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file, when there is one.
    pub file: Option<String>,
    /// Dotted path of the field (`model_list[2].litellm_params.model`), when known.
    pub path: Option<String>,
    pub message: String,
}

impl ConfigError {
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            file: None,
            path: Some(path.into()),
            message: message.into(),
        }
    }

    fn in_file(mut self, file: Option<&str>) -> Self {
        if self.file.is_none() {
            self.file = file.map(str::to_string);
        }
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, &self.path) {
            (Some(file), Some(path)) => write!(f, "{file}: {path}: {}", self.message),
            (Some(file), None) => write!(f, "{file}: {}", self.message),
            (None, Some(path)) => write!(f, "{path}: {}", self.message),
            (None, None) => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Something kept but not acted on (an unknown key, a LiteLLM setting Switchyard ignores).
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: ProxyConfig,
    pub warnings: Vec<Warning>,
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: Some(file.clone()),
        path: None,
        message: format!("cannot read: {e}"),
    })?;
    load_str(&text, Some(&file))
}

/// Parses and validates config text; `file` names it in errors.
pub fn load_str(text: &str, file: Option<&str>) -> Result<Loaded, ConfigError> {
    // An empty file is an empty config, as in LiteLLM.
    let config: ProxyConfig = if text.trim().is_empty() {
        ProxyConfig::default()
    } else {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            ConfigError {
                file: file.map(str::to_string),
                path: (path != ".").then_some(path),
                message: inner,
            }
        })?
    };
    validate(&config, file)?;
    let warnings = warnings(&config);
    Ok(Loaded { config, warnings })
}

/// The provider a `model` string names, or why it can't be served.
pub fn provider_of(model: &str) -> Result<(Provider, &str), String> {
    match model.split_once('/') {
        Some((prefix, rest)) => match Provider::from_prefix(prefix) {
            Some(p) if rest.is_empty() => Err(format!(
                "\"{model}\" names the provider {} but no model after the slash",
                p.name()
            )),
            Some(p) => Ok((p, rest)),
            None if NOT_YET_SERVED.contains(&prefix) => Err(format!(
                "provider \"{prefix}\" is not served by Switchyard yet; served today: {}",
                served()
            )),
            None if looks_like_openai(model) => Ok((Provider::Openai, model)),
            None => Err(format!(
                "unknown provider \"{prefix}\" in \"{model}\"; write it as provider/model with one of: {}",
                served()
            )),
        },
        None if looks_like_openai(model) => Ok((Provider::Openai, model)),
        None => Err(format!(
            "\"{model}\" has no provider prefix; write it as provider/model, e.g. openai/{model} or hosted_vllm/{model}"
        )),
    }
}

fn looks_like_openai(model: &str) -> bool {
    [
        "gpt-",
        "o1",
        "o3",
        "o4",
        "chatgpt-",
        "text-embedding-",
        "davinci",
        "babbage",
    ]
    .iter()
    .any(|p| model.starts_with(p))
}

fn served() -> String {
    Provider::all()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks what does not depend on the environment.
pub fn validate(config: &ProxyConfig, file: Option<&str>) -> Result<(), ConfigError> {
    let mut ids = std::collections::BTreeSet::new();
    for (i, entry) in config.model_list.iter().enumerate() {
        let at = |field: &str| format!("model_list[{i}].{field}");
        let fail = |field: &str, msg: String| Err(ConfigError::at(at(field), msg).in_file(file));
        if entry.model_name.trim().is_empty() {
            return fail("model_name", "must not be empty".into());
        }
        let params = &entry.litellm_params;
        if let Err(why) = provider_of(&params.model) {
            return fail(
                "litellm_params.model",
                format!("{why} (deployment \"{}\")", entry.model_name),
            );
        }
        for (field, value) in [
            ("timeout", params.timeout),
            ("stream_timeout", params.stream_timeout),
        ] {
            if value.is_some_and(|v| !(v > 0.0 && v.is_finite())) {
                return fail(
                    &format!("litellm_params.{field}"),
                    "must be a positive number of seconds".into(),
                );
            }
        }
        if params.weight.is_some_and(|w| !(w > 0.0 && w.is_finite())) {
            return fail("litellm_params.weight", "must be a positive number".into());
        }
        if let Some(base) = &params.api_base {
            if !base.starts_with("os.environ/") {
                if let Err(why) = crate::resolve::split_url(base) {
                    return fail("litellm_params.api_base", why);
                }
            }
        }
        if let Some(id) = &entry.model_info.id {
            if !ids.insert(id.clone()) {
                return fail(
                    "model_info.id",
                    format!("\"{id}\" is used by another deployment; ids must be unique"),
                );
            }
        }
    }
    for (alias, target) in &config.router_settings.model_group_alias {
        if !config
            .model_list
            .iter()
            .any(|m| m.model_name == target.target())
        {
            return Err(ConfigError::at(
                format!("router_settings.model_group_alias.{alias}"),
                format!(
                    "points to \"{}\", which is no model_name in model_list",
                    target.target()
                ),
            )
            .in_file(file));
        }
    }
    if let Some(mb) = config.general_settings.max_request_size_mb {
        if !(mb > 0.0 && mb <= 1024.0) {
            return Err(ConfigError::at(
                "general_settings.max_request_size_mb",
                "must be between 0 and 1024 (MB)",
            )
            .in_file(file));
        }
    }
    Ok(())
}

/// LiteLLM keys Switchyard reads but does not enforce yet.
const NOT_ENFORCED_PARAMS: &[&str] = &["rpm", "tpm", "max_retries"];

fn warnings(config: &ProxyConfig) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut extra = |section: &str, keys: &std::collections::BTreeMap<String, Value>| {
        for key in keys.keys() {
            out.push(Warning {
                path: format!("{section}{key}"),
                message: "not used by Switchyard (unknown, or not supported yet); kept and ignored"
                    .into(),
            });
        }
    };
    extra("", &config.extra);
    extra("litellm_settings.", &config.litellm_settings.extra);
    extra("router_settings.", &config.router_settings.extra);
    extra("general_settings.", &config.general_settings.extra);
    for (i, entry) in config.model_list.iter().enumerate() {
        extra(&format!("model_list[{i}]."), &entry.extra);
        extra(
            &format!("model_list[{i}].litellm_params."),
            &entry.litellm_params.extra,
        );
    }
    for (i, entry) in config.model_list.iter().enumerate() {
        let p = &entry.litellm_params;
        for (key, set) in NOT_ENFORCED_PARAMS.iter().zip([
            p.rpm.is_some(),
            p.tpm.is_some(),
            p.max_retries.is_some(),
        ]) {
            if set {
                out.push(Warning {
                    path: format!("model_list[{i}].litellm_params.{key}"),
                    message: "not enforced by Switchyard yet; kept and ignored".into(),
                });
            }
        }
    }
    if let Some(s) = &config.router_settings.routing_strategy {
        if s != "simple-shuffle" {
            out.push(Warning {
                path: "router_settings.routing_strategy".into(),
                message: format!(
                    "\"{s}\" is not implemented yet; Switchyard routes by weighted round robin (simple-shuffle)"
                ),
            });
        }
    }
    if config.general_settings.database_url.is_some() {
        out.push(Warning {
            path: "general_settings.database_url".into(),
            message:
                "virtual keys and spend tracking are not implemented yet; the database is not used"
                    .into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_litellm_config_and_keeps_unknown_keys_with_warnings() {
        let text = r#"
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
      rpm: 60
      mystery: 1
    model_info:
      id: east
litellm_settings:
  drop_params: true
  num_retries: 3
router_settings:
  routing_strategy: least-busy
  model_group_alias: {gpt4: gpt-4o, hidden4: {model: gpt-4o, hidden: true}}
general_settings:
  master_key: sk-1234
  alerting: [slack]
environment_variables:
  PORT_NUMBER: 8080
include: [other.yaml]
"#;
        let loaded = load_str(text, Some("c.yaml")).unwrap();
        let paths: Vec<_> = loaded.warnings.iter().map(|w| w.path.as_str()).collect();
        for p in [
            "include",
            "litellm_settings.drop_params",
            "general_settings.alerting",
            "model_list[0].litellm_params.mystery",
            "model_list[0].litellm_params.rpm",
            "router_settings.routing_strategy",
        ] {
            assert!(paths.contains(&p), "no warning for {p}: {paths:?}");
        }
        let c = &loaded.config;
        assert_eq!(c.litellm_settings.num_retries, Some(3));
        assert_eq!(
            c.router_settings.model_group_alias["hidden4"].target(),
            "gpt-4o"
        );
        assert_eq!(
            c.environment_variables(),
            vec![("PORT_NUMBER".into(), "8080".into())]
        );
        assert!(c.master_key_is_set());
        assert_eq!(
            format!("{:?}", c.general_settings.master_key),
            "Some(<literal secret>)"
        );
        assert!(
            c.litellm_settings.extra.contains_key("drop_params"),
            "unknown keys are kept"
        );
    }

    #[test]
    fn errors_name_the_file_the_field_and_why() {
        let e = load_str("model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n      timeout: soon\n", Some("c.yaml")).unwrap_err();
        assert_eq!(e.file.as_deref(), Some("c.yaml"));
        assert_eq!(
            e.path.as_deref(),
            Some("model_list[0].litellm_params.timeout")
        );

        let e = load_str("model_list:\n  - model_name: claude\n    litellm_params:\n      model: anthropic/claude-3\n", None).unwrap_err();
        assert_eq!(
            e.path.as_deref(),
            Some("model_list[0].litellm_params.model")
        );
        assert!(
            e.message.contains("anthropic")
                && e.message.contains("\"claude\"")
                && e.message.contains("served today"),
            "{e}"
        );

        let e = load_str(
            "model_list:\n  - model_name: x\n    litellm_params:\n      model: llama3\n",
            None,
        )
        .unwrap_err();
        assert!(e.message.contains("no provider prefix"), "{e}");

        let e = load_str(
            "model_list:\n  - litellm_params:\n      model: openai/x\n",
            None,
        )
        .unwrap_err();
        assert!(e.message.contains("model_name"), "{e}");

        let e = load_str(
            "router_settings:\n  model_group_alias: {a: nothing}\n",
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.path.as_deref(),
            Some("router_settings.model_group_alias.a")
        );

        let e = load_str("model_list: [\n", Some("bad.yaml")).unwrap_err();
        assert!(e.to_string().starts_with("bad.yaml: "), "{e}");
    }

    #[test]
    fn bare_openai_model_names_and_quick_form() {
        assert_eq!(provider_of("gpt-4o").unwrap(), (Provider::Openai, "gpt-4o"));
        assert_eq!(
            provider_of("openrouter/anthropic/claude").unwrap(),
            (Provider::Openrouter, "anthropic/claude")
        );
        assert!(provider_of("groq/").is_err());
        let c = ProxyConfig::from_model_flag("openai/gpt-4o-mini").unwrap();
        assert_eq!(c.model_list[0].model_name, "openai/gpt-4o-mini");
        assert!(ProxyConfig::from_model_flag("gemini/gemini-pro").is_err());
    }

    #[test]
    fn empty_file_is_an_empty_config() {
        assert!(load_str("", None).unwrap().config.model_list.is_empty());
    }
}
