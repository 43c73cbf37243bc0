//! config.yaml as LiteLLM writes it. Every section keeps the keys it does not know
//! (`extra`), so nothing is silently lost; the loader reports them as warnings.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::load::ConfigError;

type Extra = BTreeMap<String, Value>;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProxyConfig {
    #[serde(default)]
    pub model_list: Vec<ModelEntry>,
    #[serde(default)]
    pub litellm_settings: LitellmSettings,
    #[serde(default)]
    pub router_settings: RouterSettings,
    #[serde(default)]
    pub general_settings: GeneralSettings,
    #[serde(default)]
    pub environment_variables: BTreeMap<String, Scalar>,
    #[serde(flatten)]
    pub extra: Extra,
    /// The file it was loaded from, for errors found later (when rendering).
    #[serde(skip)]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelEntry {
    pub model_name: String,
    pub litellm_params: LitellmParams,
    #[serde(default)]
    pub model_info: ModelInfo,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LitellmParams {
    /// `provider/model`, e.g. `openai/gpt-4o-mini`.
    pub model: String,
    #[serde(default)]
    pub api_base: Option<String>,
    #[serde(default)]
    pub api_key: Option<Secret>,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
    /// Seconds for the whole request.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Seconds for a streamed request.
    #[serde(default)]
    pub stream_timeout: Option<f64>,
    #[serde(default)]
    pub max_retries: Option<u32>,
    #[serde(default)]
    pub rpm: Option<u64>,
    #[serde(default)]
    pub tpm: Option<u64>,
    /// Share of the group's traffic (simple-shuffle weights).
    #[serde(default)]
    pub weight: Option<f64>,
    /// Sent with every request to this deployment; values may be `os.environ/VAR`.
    #[serde(default)]
    pub extra_headers: Option<BTreeMap<String, String>>,
    /// LiteLLM's other name for `extra_headers`.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Free-form in LiteLLM (costs, context sizes, ...): its other keys are kept without warnings.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ModelInfo {
    /// The deployment id (`x-litellm-model-id`); generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// `chat`, `embedding`, `completion`, ...
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub base_model: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LitellmSettings {
    /// Seconds; the default timeout of every request.
    #[serde(default)]
    pub request_timeout: Option<f64>,
    #[serde(default)]
    pub num_retries: Option<u32>,
    /// Read, not acted on yet (the loader warns).
    #[serde(default)]
    pub drop_params: Option<bool>,
    /// Read, not acted on yet: use `--detailed_debug`.
    #[serde(default)]
    pub set_verbose: Option<bool>,
    /// How provider certificates are checked: a CA bundle file, or `false` for not at all.
    #[serde(default)]
    pub ssl_verify: Option<SslVerify>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// LiteLLM's `ssl_verify`: `true` (the system CA bundle), `false`, or a CA bundle path.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SslVerify {
    Enabled(bool),
    CaBundle(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RouterSettings {
    #[serde(default)]
    pub routing_strategy: Option<String>,
    #[serde(default)]
    pub num_retries: Option<u32>,
    /// Seconds; the default timeout of every deployment.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Seconds; the default timeout of streamed requests.
    #[serde(default)]
    pub stream_timeout: Option<f64>,
    /// Failures before a deployment is ejected (outlier detection's consecutive_5xx).
    #[serde(default)]
    pub allowed_fails: Option<u32>,
    /// Seconds a failing deployment cools down.
    #[serde(default)]
    pub cooldown_time: Option<f64>,
    #[serde(default)]
    pub model_group_alias: BTreeMap<String, Alias>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `model_group_alias` values: a model_name, or `{model, hidden}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Alias {
    Name(String),
    Detailed {
        model: String,
        #[serde(default)]
        hidden: bool,
    },
}

impl Alias {
    pub fn target(&self) -> &str {
        match self {
            Alias::Name(m) | Alias::Detailed { model: m, .. } => m,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GeneralSettings {
    #[serde(default)]
    pub master_key: Option<Secret>,
    #[serde(default)]
    pub database_url: Option<Secret>,
    /// Request bodies above this get 413; default 16.
    #[serde(default)]
    pub max_request_size_mb: Option<f64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A value that may be a secret: a literal, or `os.environ/VAR`. Never printed in plain text.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Env(String),
    Literal(String),
}

impl Secret {
    pub fn parse(s: &str) -> Secret {
        match s.strip_prefix("os.environ/") {
            Some(var) => Secret::Env(var.to_string()),
            None => Secret::Literal(s.to_string()),
        }
    }

    /// The variable's name, for `os.environ/VAR`.
    pub fn env_var(&self) -> Option<&str> {
        match self {
            Secret::Env(var) => Some(var),
            Secret::Literal(_) => None,
        }
    }

    /// The value now, from the environment when it is a reference.
    pub fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        match self {
            Secret::Env(var) => env(var),
            Secret::Literal(v) => Some(v.clone()),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Env(var) => write!(f, "os.environ/{var}"),
            Secret::Literal(_) => f.write_str("<literal secret>"),
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Secret::parse(&s))
    }
}

/// A scalar YAML value as text (`environment_variables` may hold numbers or booleans).
#[derive(Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl fmt::Debug for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // environment_variables often hold keys.
        f.write_str("<value>")
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Scalar(s)),
            Value::Number(n) => Ok(Scalar(n.to_string())),
            Value::Bool(b) => Ok(Scalar(b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a string, number or boolean, found {other}"
            ))),
        }
    }
}

impl ProxyConfig {
    /// The config `switchyard up --model openai/gpt-4o-mini` stands for: one deployment whose
    /// model_name is the given string, key from the provider's usual environment variable.
    pub fn from_model_flag(model: &str) -> Result<ProxyConfig, ConfigError> {
        let config = ProxyConfig {
            model_list: vec![ModelEntry {
                model_name: model.to_string(),
                litellm_params: LitellmParams {
                    model: model.to_string(),
                    ..LitellmParams::default()
                },
                model_info: ModelInfo::default(),
                extra: Extra::new(),
            }],
            ..ProxyConfig::default()
        };
        crate::load::validate(&config, None)?;
        Ok(config)
    }

    /// Whether general_settings.master_key is set (the gateway then requires it).
    pub fn master_key_is_set(&self) -> bool {
        self.general_settings.master_key.is_some()
    }

    /// Every deployment resolved for the filter, `os.environ/` references read now from the
    /// config's environment_variables and this process's environment. `sidecar` is where
    /// Envoy reaches the sidecar (it serves the demo provider).
    pub fn resolve_deployments(
        &self,
        sidecar: (&str, u16),
    ) -> Result<Vec<crate::resolve::Resolved>, ConfigError> {
        let process = |name: &str| std::env::var(name).ok();
        let env = crate::resolve::layered_env(self, &process);
        crate::resolve::deployments(self, sidecar, &env)
    }

    /// environment_variables: from config.yaml, to set in this process (before resolving
    /// os.environ/ references) and in Envoy's environment.
    pub fn environment_variables(&self) -> Vec<(String, String)> {
        self.environment_variables
            .iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect()
    }
}
