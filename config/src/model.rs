//! config.yaml as LiteLLM writes it. Every section keeps the keys it does not know
//! (`extra`), so nothing is silently lost; the loader reports them as warnings.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::load::ConfigError;

pub type Extra = BTreeMap<String, Value>;

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
    /// Named credentials deployments use by litellm_params.litellm_credential_name.
    #[serde(default)]
    pub credential_list: Vec<crate::credentials::Credential>,
    #[serde(flatten)]
    pub extra: Extra,
    /// The file it was loaded from, for errors found later (when rendering).
    #[serde(skip)]
    pub source: Option<String>,
    /// Which included file each part came from, for the same errors ([`ProxyConfig::locate`]).
    #[serde(skip)]
    pub origins: crate::include::Origins,
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
    /// One URL, or (a Switchyard extension) several replicas of one server that Envoy
    /// balances and ejects on its own; replicas share scheme and path.
    #[serde(default)]
    pub api_base: Option<ApiBase>,
    #[serde(default)]
    pub api_key: Option<Secret>,
    #[serde(default)]
    pub api_version: Option<String>,
    /// A system message put before every chat request's messages (LiteLLM's
    /// `litellm_system_prompt`): what the model group is for.
    #[serde(default)]
    pub litellm_system_prompt: Option<String>,
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
    /// The provider, when `model` names none (LiteLLM's alternative to `provider/model`).
    #[serde(default)]
    pub custom_llm_provider: Option<String>,
    /// Priority within the group: the lowest order is tried first, the next when it fails.
    #[serde(default)]
    pub order: Option<u32>,
    /// A credential of credential_list: its values fill what these params leave out.
    #[serde(default)]
    pub litellm_credential_name: Option<String>,
    /// Tag routing (router_settings.enable_tag_filtering): requests tagged with one of these
    /// come here; `default` takes untagged requests.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Requests in flight to this deployment at most (Envoy's circuit breaker).
    #[serde(default)]
    pub max_parallel_requests: Option<u32>,
    /// USD per token: the deployment's own prices, for spend and cost-based-routing (else
    /// model_info's, else the price table's; see `crate::prices`).
    #[serde(default)]
    pub input_cost_per_token: Option<f64>,
    #[serde(default)]
    pub output_cost_per_token: Option<f64>,
    #[serde(default)]
    pub cache_read_input_token_cost: Option<f64>,
    #[serde(default)]
    pub cache_creation_input_token_cost: Option<f64>,
    #[serde(default)]
    pub output_cost_per_reasoning_token: Option<f64>,
    /// USD per second of each answer's time (deployments billed by time).
    #[serde(default)]
    pub input_cost_per_second: Option<f64>,
    #[serde(default)]
    pub output_cost_per_second: Option<f64>,
    /// Sent with every request to this deployment; values may be `os.environ/VAR`.
    #[serde(default)]
    pub extra_headers: Option<BTreeMap<String, String>>,
    /// LiteLLM's other name for `extra_headers`.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Drop the parameters the provider cannot take instead of refusing the request.
    #[serde(default)]
    pub drop_params: Option<bool>,
    /// Bedrock (and any AWS provider): credentials, else the AWS_* variables.
    #[serde(default)]
    pub aws_access_key_id: Option<Secret>,
    #[serde(default)]
    pub aws_secret_access_key: Option<Secret>,
    #[serde(default)]
    pub aws_session_token: Option<Secret>,
    #[serde(default)]
    pub aws_region_name: Option<String>,
    /// Bedrock's endpoint instead of `bedrock-runtime.<region>.amazonaws.com`.
    #[serde(default)]
    pub aws_bedrock_runtime_endpoint: Option<String>,
    /// Vertex AI's project and location.
    #[serde(default)]
    pub vertex_project: Option<String>,
    #[serde(default)]
    pub vertex_location: Option<String>,
    /// A service-account JSON (a file path, or the JSON itself) the sidecar mints access
    /// tokens from; else GOOGLE_APPLICATION_CREDENTIALS, else an access token in
    /// VERTEXAI_ACCESS_TOKEN.
    #[serde(default)]
    pub vertex_credentials: Option<Secret>,
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
    /// The model the deployment runs, to look its price up by (an Azure deployment's name
    /// says nothing of it).
    #[serde(default)]
    pub base_model: Option<String>,
    /// Names a key's or team's `models` may give instead of the model group's.
    #[serde(default)]
    pub access_groups: Option<Vec<String>>,
    /// Context window, for enable_pre_call_checks.
    #[serde(default)]
    pub max_input_tokens: Option<u64>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub input_cost_per_token: Option<f64>,
    #[serde(default)]
    pub output_cost_per_token: Option<f64>,
    #[serde(default)]
    pub cache_read_input_token_cost: Option<f64>,
    #[serde(default)]
    pub cache_creation_input_token_cost: Option<f64>,
    #[serde(default)]
    pub output_cost_per_reasoning_token: Option<f64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `api_base`: a URL, or a list of replica URLs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ApiBase {
    One(String),
    Replicas(Vec<String>),
}

impl ApiBase {
    pub fn urls(&self) -> Vec<&str> {
        match self {
            ApiBase::One(u) => vec![u.as_str()],
            ApiBase::Replicas(us) => us.iter().map(String::as_str).collect(),
        }
    }
}

/// LiteLLM's fallbacks: `[{"gpt-4o": ["gpt-4o-mini", "claude"]}, {"*": ["gpt-4o-mini"]}]`.
pub type Fallbacks = Vec<BTreeMap<String, Vec<String>>>;

/// LiteLLM's retry_policy: retries per error class; unset classes use num_retries.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[allow(non_snake_case)]
pub struct RetryPolicy {
    #[serde(default)]
    pub BadRequestErrorRetries: Option<u32>,
    #[serde(default)]
    pub AuthenticationErrorRetries: Option<u32>,
    #[serde(default)]
    pub TimeoutErrorRetries: Option<u32>,
    #[serde(default)]
    pub RateLimitErrorRetries: Option<u32>,
    #[serde(default)]
    pub ContentPolicyViolationErrorRetries: Option<u32>,
    #[serde(default)]
    pub InternalServerErrorRetries: Option<u32>,
}

/// LiteLLM's allowed_fails_policy: failures per error class a deployment may have in a
/// minute before it cools down; unset classes use allowed_fails.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[allow(non_snake_case)]
pub struct AllowedFailsPolicy {
    #[serde(default)]
    pub BadRequestErrorAllowedFails: Option<u32>,
    #[serde(default)]
    pub AuthenticationErrorAllowedFails: Option<u32>,
    #[serde(default)]
    pub TimeoutErrorAllowedFails: Option<u32>,
    #[serde(default)]
    pub RateLimitErrorAllowedFails: Option<u32>,
    #[serde(default)]
    pub ContentPolicyViolationErrorAllowedFails: Option<u32>,
    #[serde(default)]
    pub InternalServerErrorAllowedFails: Option<u32>,
}

/// litellm_settings.model_group_settings.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ModelGroupSettings {
    /// Model groups whose requests carry the client's `x-` headers to the provider.
    #[serde(default)]
    pub forward_client_headers_to_llm_api: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LitellmSettings {
    /// The sidecar's logs as JSON lines.
    #[serde(default)]
    pub json_logs: Option<bool>,
    /// The fields a generated key gets when /key/generate leaves them out.
    #[serde(default)]
    pub default_key_generate_params: Option<serde_json::Map<String, serde_json::Value>>,
    /// LiteLLM returns the provider's response headers with it; Switchyard always returns
    /// the ones that matter (`x-ratelimit-*`, `retry-after`, `llm_provider-x-request-id`).
    #[serde(default)]
    pub return_response_headers: Option<bool>,
    /// Seconds; the default timeout of every request.
    #[serde(default)]
    pub request_timeout: Option<f64>,
    #[serde(default)]
    pub num_retries: Option<u32>,
    /// Drop the parameters a provider cannot take instead of refusing the request (every
    /// deployment, unless its own litellm_params say otherwise).
    #[serde(default)]
    pub drop_params: Option<bool>,
    /// Read, not acted on yet: use `--detailed_debug`.
    #[serde(default)]
    pub set_verbose: Option<bool>,
    /// How provider certificates are checked: a CA bundle file, or `false` for not at all.
    #[serde(default)]
    pub ssl_verify: Option<SslVerify>,
    /// LiteLLM reads the fallbacks from either settings section.
    #[serde(default)]
    pub fallbacks: Option<Fallbacks>,
    #[serde(default)]
    pub context_window_fallbacks: Option<Fallbacks>,
    #[serde(default)]
    pub content_policy_fallbacks: Option<Fallbacks>,
    #[serde(default)]
    pub default_fallbacks: Option<Vec<String>>,
    #[serde(default)]
    pub model_group_settings: Option<ModelGroupSettings>,
    /// Turns the response cache on (see [`crate::cache`]).
    #[serde(default)]
    pub cache: Option<bool>,
    #[serde(default)]
    pub cache_params: Option<crate::cache::CacheParams>,
    /// Where request events go besides the spend logs: `prometheus` (always on: /metrics),
    /// and the callbacks in [`crate::load::SERVED_CALLBACKS`]. LiteLLM's three lists mean the
    /// same here: every callback gets successes and failures.
    #[serde(default)]
    pub callbacks: Vec<String>,
    #[serde(default)]
    pub success_callback: Vec<String>,
    #[serde(default)]
    pub failure_callback: Vec<String>,
    /// `/metrics` asks for a key (the master key or a virtual key), as LiteLLM's.
    #[serde(default)]
    pub require_auth_for_metrics_endpoint: Option<bool>,
    /// Callbacks get no prompts or answers.
    #[serde(default)]
    pub turn_off_message_logging: Option<bool>,
    /// Callbacks get nothing about the key, its user or its team.
    #[serde(default)]
    pub redact_user_api_key_info: Option<bool>,
    /// The metrics label end users (left empty otherwise: their number is unbounded).
    #[serde(default)]
    pub enable_end_user_cost_tracking_prometheus_only: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl LitellmSettings {
    /// Every callback named in the three lists, once each.
    pub fn all_callbacks(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for name in self
            .callbacks
            .iter()
            .chain(&self.success_callback)
            .chain(&self.failure_callback)
        {
            if !out.contains(&name.as_str()) {
                out.push(name);
            }
        }
        out
    }
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
    pub allowed_fails_policy: Option<AllowedFailsPolicy>,
    #[serde(default)]
    pub disable_cooldowns: Option<bool>,
    /// Requests' tags choose among a group's deployments (their litellm_params.tags).
    #[serde(default)]
    pub enable_tag_filtering: Option<bool>,
    /// max_parallel_requests of every deployment that sets none.
    #[serde(default)]
    pub default_max_parallel_requests: Option<u32>,
    /// Request parameters every request gets unless it (or its deployment) sets them.
    #[serde(default)]
    pub default_litellm_params: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub retry_policy: Option<RetryPolicy>,
    #[serde(default)]
    pub model_group_retry_policy: Option<BTreeMap<String, RetryPolicy>>,
    /// Seconds to wait at least before retrying the same deployment.
    #[serde(default)]
    pub retry_after: Option<f64>,
    #[serde(default)]
    pub fallbacks: Option<Fallbacks>,
    #[serde(default)]
    pub context_window_fallbacks: Option<Fallbacks>,
    #[serde(default)]
    pub content_policy_fallbacks: Option<Fallbacks>,
    #[serde(default)]
    pub default_fallbacks: Option<Vec<String>>,
    #[serde(default)]
    pub max_fallbacks: Option<u32>,
    #[serde(default)]
    pub enable_pre_call_checks: Option<bool>,
    #[serde(default)]
    pub model_group_alias: BTreeMap<String, Alias>,
    /// Redis shared by a fleet's rate limits (and the cache, unless cache_params say
    /// otherwise); see [`ProxyConfig::redis_url`].
    #[serde(default)]
    pub redis_host: Option<Scalar>,
    #[serde(default)]
    pub redis_port: Option<Scalar>,
    #[serde(default)]
    pub redis_password: Option<Secret>,
    #[serde(default)]
    pub redis_url: Option<Secret>,
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
    /// The sidecar checks every deployment each `health_check_interval` seconds (default
    /// 300), and `/health` answers from the last check.
    #[serde(default)]
    pub background_health_checks: Option<bool>,
    #[serde(default)]
    pub health_check_interval: Option<f64>,
    /// PostgreSQL for keys, spend and the rest of the sidecar's store (else `DATABASE_URL`,
    /// else SQLite at `database_path`).
    #[serde(default)]
    pub database_url: Option<Secret>,
    /// Switchyard: the SQLite file of the sidecar's store when no database_url is set
    /// (default `switchyard.db` in the working directory).
    #[serde(default)]
    pub database_path: Option<String>,
    /// Request bodies above this get 413; default 16.
    #[serde(default)]
    pub max_request_size_mb: Option<f64>,
    /// Non-streamed answers above this get 502; default 64.
    #[serde(default)]
    pub max_response_size_mb: Option<f64>,
    /// Spend logs older than this ("90d") are deleted, every retention interval (default 1d);
    /// budgets and the daily aggregates keep their sums.
    #[serde(default)]
    pub maximum_spend_logs_retention_period: Option<String>,
    #[serde(default)]
    pub maximum_spend_logs_retention_interval: Option<String>,
    /// The sidecar's database pool: connections at most, and seconds to wait for one.
    #[serde(default)]
    pub database_connection_pool_limit: Option<u32>,
    #[serde(default)]
    pub database_connection_timeout: Option<f64>,
    /// Requests in flight through this gateway at most; the rest get 429.
    #[serde(default)]
    pub global_max_parallel_requests: Option<u32>,
    /// A header clients send their key in, read before the usual ones (`Authorization`
    /// may then carry something else).
    #[serde(default)]
    pub litellm_key_header_name: Option<String>,
    /// Requests to the model APIs must name their end user (`user`).
    #[serde(default)]
    pub enforce_user_param: Option<bool>,
    /// Forward the client's `x-` headers to every provider (see model_group_settings).
    #[serde(default)]
    pub forward_client_headers_to_llm_api: Option<bool>,
    /// Forward the client's `OpenAI-Organization` header.
    #[serde(default)]
    pub forward_openai_org_id: Option<bool>,
    /// Switchyard: whether answers carry `x-litellm-model-api-base` (default true, as LiteLLM).
    #[serde(default)]
    pub expose_api_base: Option<bool>,
    /// Switchyard: seconds a client has to send its request headers (default 30).
    #[serde(default)]
    pub request_headers_timeout: Option<f64>,
    /// Switchyard: seconds an idle client connection stays open (default 300).
    #[serde(default)]
    pub client_idle_timeout: Option<f64>,
    /// Seconds a virtual key's record is used before the gateway asks the sidecar again
    /// (LiteLLM's name; default 60). Blocking, deleting or changing a key reaches the gateway
    /// at once regardless: this bounds how stale a budget's spend from other Envoys can be.
    #[serde(default)]
    pub user_api_key_cache_ttl: Option<f64>,
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
