//! The typed contract between the renderer, the two filter roles and the sidecar.
//!
//! The renderer turns config.yaml into one [`FilterConfig`] per plugin, serialised as JSON
//! into the wasm plugin configuration: one gateway, and one provider per deployment (each
//! deployment is its own Envoy cluster). Secrets never appear here: only the names of the
//! environment variables (of the wasm VM) that hold them.
//!
//! How a request is routed (docs/architecture.md has the why):
//! - the gateway sets [`ROUTE_HEADER`] to the model group's route and [`PLAN_HEADER`] to the
//!   attempt plan: digit k (base = the group's size) is the position of the deployment for
//!   attempt k+1. Envoy's priority-group cluster specifier decodes it, attempt by attempt;
//! - the provider role asks the router for the next attempt with [`RETRY_HEADER`] on the
//!   provider's answer, and for a fallback group with an internal redirect (307) carrying
//!   [`REPLAN_HEADER`], which brings the request back through the gateway.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::provider::Provider;

/// Request header the gateway sets; each model group's route matches its value.
pub const ROUTE_HEADER: &str = "x-switchyard-route";
/// Suffix of the route value for requests that wait between attempts (no other deployment).
pub const BACKOFF_SUFFIX: &str = "-backoff";
/// Request header with the attempt plan, read by the priority-group cluster specifier.
pub const PLAN_HEADER: &str = "x-switchyard-plan";
/// Response header the provider role sets to make the router try the next attempt.
pub const RETRY_HEADER: &str = "x-switchyard-retry";
/// Response header of a 307 the provider role answers to hand the request to a fallback
/// group; Envoy copies it into the redirected request, where the gateway reads it.
pub const REPLAN_HEADER: &str = "x-switchyard-replan";
/// Response header: the deployment that answered (LiteLLM's name).
pub const DEPLOYMENT_HEADER: &str = "x-litellm-model-id";
/// Filter-state property (set downstream, read upstream) carrying [`RequestInfo`].
pub const REQUEST_INFO_PROPERTY: &str = "switchyard_request";
/// Internal headers: never taken from a client, never passed from a provider to a client.
pub const INTERNAL_HEADERS: &[&str] = &[
    ROUTE_HEADER,
    PLAN_HEADER,
    RETRY_HEADER,
    REPLAN_HEADER,
    HEALTH_CHECK_HEADER,
];
/// The sidecar's `/health` checks one deployment (its id) through the gateway, with the
/// master key: no retries, fallbacks, cache, limits or spend; cooldowns do not stop it.
pub const HEALTH_CHECK_HEADER: &str = "x-switchyard-health-check";
/// Shared-data key prefix of a model group's routing state (cooldowns, in-flight counts,
/// latencies, usage); the group name follows.
pub const GROUP_STATE_KEY: &str = "switchyard.group.";

/// Attempts one request may make within one model group, at most.
pub const MAX_ATTEMPTS: u32 = 10;

/// Attempts a plan over `members` deployments may make: [`PLAN_HEADER`] holds one digit
/// (base = members) per attempt in 64 bits, and Envoy weighs attempt k's clusters with
/// base^(k-1), which must fit in 32 bits. At most [`MAX_ATTEMPTS`].
pub fn max_attempts(members: usize) -> u32 {
    let base = members.max(2) as u64;
    let mut attempts = 1;
    let mut weight: u64 = 1;
    while attempts < MAX_ATTEMPTS {
        match weight.checked_mul(base) {
            Some(w) if w <= u64::from(u32::MAX) => {
                weight = w;
                attempts += 1;
            }
            _ => break,
        }
    }
    attempts
}

/// The wasm plugin configuration, by role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum FilterConfig {
    /// Downstream, once per request: auth, model resolution, the attempt plan.
    Gateway(GatewayConfig),
    /// Upstream on one deployment's cluster, once per attempt: translation, retry decisions.
    Provider(Box<ProviderConfig>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayConfig {
    /// model_name → group.
    #[serde(default)]
    pub groups: BTreeMap<String, GroupConfig>,
    /// model_group_alias: alias → model_name.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// Name of the VM environment variable holding general_settings.master_key, if set.
    #[serde(default)]
    pub master_key_env: Option<String>,
    /// Bodies above this size get 413.
    pub max_request_bytes: u64,
    /// general_settings.global_max_parallel_requests.
    #[serde(default)]
    pub max_parallel_requests: Option<u32>,
    /// Which client headers reach providers.
    #[serde(default)]
    pub forward: ForwardPolicy,
    /// router_settings.max_fallbacks.
    pub max_fallbacks: u32,
    /// router_settings.enable_pre_call_checks.
    #[serde(default)]
    pub pre_call_checks: bool,
    /// How long a virtual key's record is used without asking the sidecar again
    /// (general_settings.user_api_key_cache_ttl); changes reach the cache at once anyway.
    #[serde(default = "default_key_cache_ttl_ms")]
    pub key_cache_ttl_ms: u64,
    /// litellm_settings.cache with its cache_params; None: no response cache.
    #[serde(default)]
    pub cache: Option<CacheConfig>,
    /// Redis is configured: rate-limit counts are shared with the fleet through the sidecar.
    #[serde(default)]
    pub fleet_limits: bool,
    /// A logging callback takes prompts and answers (and turn_off_message_logging is off).
    #[serde(default)]
    pub log_messages: bool,
    /// router_settings.enable_tag_filtering.
    #[serde(default)]
    pub tag_filtering: bool,
    /// general_settings.litellm_key_header_name, lower-cased: read before the usual headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_header: Option<String>,
    /// general_settings.enforce_user_param.
    #[serde(default)]
    pub enforce_user: bool,
}

/// The response cache, as the gateway applies it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheConfig {
    pub kind: CacheKind,
    /// Seconds an answer is kept unless the request says otherwise.
    pub ttl_s: u64,
    /// Prefix of every key (cache_params.namespace).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Which endpoints are cached (cache_params.supported_call_types).
    pub chat: bool,
    pub completions: bool,
    pub embeddings: bool,
    /// cache_params.mode `default_off`: only requests with `cache: {"use-cache": true}`.
    #[serde(default)]
    pub default_off: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CacheKind {
    /// The same request (canonicalised) gets the same answer.
    Exact,
    /// A prompt close enough to one answered before gets its answer: the prompt is embedded
    /// with `embedding_model` (a model group) and compared by cosine similarity.
    Semantic {
        embedding_model: String,
        similarity_threshold: f64,
    },
}

fn default_key_cache_ttl_ms() -> u64 {
    60_000
}

/// What of the client's headers reaches the provider (LiteLLM's allowlist).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ForwardPolicy {
    /// general_settings.forward_client_headers_to_llm_api: `x-` headers, for every group.
    #[serde(default)]
    pub all_groups: bool,
    /// general_settings.forward_openai_org_id.
    #[serde(default)]
    pub openai_org: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupConfig {
    /// The value of [`ROUTE_HEADER`] that selects this group's route.
    pub route: String,
    /// The group's deployments, in the order of the route's clusters (plan digit = position).
    pub deployments: Vec<DeploymentRoute>,
    pub strategy: Strategy,
    /// Retries within the group (attempts = 1 + num_retries).
    pub num_retries: u32,
    #[serde(default)]
    pub retry_policy: ClassLimits,
    /// Fallback model groups (fallbacks for this group, else default_fallbacks).
    #[serde(default)]
    pub fallbacks: Vec<String>,
    #[serde(default)]
    pub context_window_fallbacks: Vec<String>,
    #[serde(default)]
    pub content_policy_fallbacks: Vec<String>,
    /// Client `x-` headers reach this group's providers.
    #[serde(default)]
    pub forward_client_headers: bool,
    /// Cooldown rules, as the provider roles of this group apply them.
    pub cooldown: CooldownConfig,
    /// Its deployments' model_info.access_groups: a key's `models` naming one may call it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_groups: Vec<String>,
}

/// What the gateway knows of a deployment to plan attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRoute {
    pub id: String,
    /// litellm_params.weight (simple-shuffle; else rpm, else tpm weigh the shuffle).
    #[serde(default)]
    pub weight: Option<f64>,
    #[serde(default)]
    pub rpm: Option<u64>,
    #[serde(default)]
    pub tpm: Option<u64>,
    /// USD per input and output token, for cost-based-routing.
    #[serde(default)]
    pub input_cost_per_token: Option<f64>,
    #[serde(default)]
    pub output_cost_per_token: Option<f64>,
    /// Context window (model_info.max_input_tokens), for pre-call checks.
    #[serde(default)]
    pub max_input_tokens: Option<u64>,
    /// Per-attempt timeouts.
    pub timeout_ms: u64,
    pub stream_timeout_ms: u64,
    /// litellm_params.max_retries: how often this deployment may be retried in one plan.
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// The client APIs its provider speaks itself (see `Provider::speaks`): requests in them
    /// pass through untouched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub speaks: Vec<Dialect>,
    /// The endpoints it serves (its provider's, narrowed by model_info.mode): a request is
    /// planned only on deployments that serve its endpoint.
    #[serde(default = "Endpoint::all")]
    pub endpoints: Vec<Endpoint>,
    /// litellm_params.tags: with router_settings.enable_tag_filtering, requests carrying tags
    /// go to the deployments with one of them (or tagged `default`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// litellm_params.order: the lowest order is planned first, the next after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u32>,
    /// Set when its model passes the requested name through (`openai/*`): in a pattern group
    /// of several providers, a name with a provider's prefix goes to that provider's
    /// deployments, a name without one to OpenAI's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passes_through: Option<Provider>,
}

/// router_settings.routing_strategy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    #[default]
    SimpleShuffle,
    LeastBusy,
    LatencyBasedRouting,
    UsageBasedRouting,
    CostBasedRouting,
}

impl Strategy {
    /// LiteLLM's names (usage-based-routing-v2 is usage-based-routing here).
    pub fn from_litellm(name: &str) -> Option<Strategy> {
        Some(match name {
            "simple-shuffle" => Strategy::SimpleShuffle,
            "least-busy" => Strategy::LeastBusy,
            "latency-based-routing" => Strategy::LatencyBasedRouting,
            "usage-based-routing" | "usage-based-routing-v2" => Strategy::UsageBasedRouting,
            "cost-based-routing" => Strategy::CostBasedRouting,
            _ => return None,
        })
    }

    /// Whether attempts must record in-flight counts, latencies or usage for this strategy.
    pub fn needs_stats(self) -> bool {
        !matches!(self, Strategy::SimpleShuffle | Strategy::CostBasedRouting)
    }
}

/// LiteLLM's error classes, as retry_policy and allowed_fails_policy name them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    BadRequest,
    ContextWindow,
    ContentPolicy,
    Authentication,
    NotFound,
    Timeout,
    RateLimit,
    #[default]
    InternalServer,
}

/// A number per error class; None falls back to the general setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_request: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_policy: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_server: Option<u32>,
}

impl ClassLimits {
    /// The limit for a class, when one is set.
    pub fn get(&self, class: ErrorClass) -> Option<u32> {
        match class {
            ErrorClass::BadRequest | ErrorClass::ContextWindow | ErrorClass::NotFound => {
                self.bad_request
            }
            ErrorClass::ContentPolicy => self.content_policy,
            ErrorClass::Authentication => self.authentication,
            ErrorClass::Timeout => self.timeout,
            ErrorClass::RateLimit => self.rate_limit,
            ErrorClass::InternalServer => self.internal_server,
        }
    }
}

/// When a deployment cools down (LiteLLM's allowed_fails, allowed_fails_policy, cooldown_time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CooldownConfig {
    /// Failures allowed in a minute; one more cools the deployment down.
    pub allowed_fails: u32,
    #[serde(default)]
    pub per_class: ClassLimits,
    pub cooldown_ms: u64,
    /// router_settings.disable_cooldowns.
    #[serde(default)]
    pub disabled: bool,
    /// LiteLLM never cools down the only deployment of a group.
    #[serde(default)]
    pub single_deployment: bool,
}

/// One deployment's provider role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderConfig {
    pub deployment: DeploymentConfig,
    /// Every request header some deployment sets: each attempt removes those it does not set,
    /// since Envoy hands every attempt the same header map.
    pub owned_headers: Vec<String>,
    /// Every VM environment variable holding a secret (provider keys, the master key): their
    /// values are scrubbed from error bodies before a client sees them.
    #[serde(default)]
    pub secret_envs: Vec<String>,
    /// The group's routing strategy: which statistics attempts record.
    #[serde(default)]
    pub strategy: Strategy,
    pub cooldown: CooldownConfig,
    /// Non-streamed answers above this get 502.
    pub max_response_bytes: u64,
    /// Whether answers carry `x-litellm-model-api-base`.
    #[serde(default = "yes")]
    pub expose_api_base: bool,
    /// The deployment has several api_base hosts; each endpoint's metadata
    /// (`switchyard.authority`) holds its `:authority`.
    #[serde(default)]
    pub replicas: bool,
    /// A deployment whose model is a pattern (`openai/*`) and that has no prices of its own:
    /// the price of each model it may serve, from LiteLLM's table, by the provider's name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub catalog: BTreeMap<String, Prices>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentConfig {
    pub id: String,
    /// The model_name (group) it serves.
    pub group: String,
    pub provider: Provider,
    /// The provider's own model name (`gpt-4o-mini` from `openai/gpt-4o-mini`); for Azure the deployment name.
    pub model: String,
    /// `http` or `https`.
    pub scheme: String,
    /// `host` or `host:port`, for the `:authority` header.
    pub authority: String,
    /// Path prefix of the api_base without trailing slash (`/v1`, `/openai/v1`, ``).
    pub base_path: String,
    /// Where its credentials are: names of the VM's environment variables, never values.
    #[serde(default)]
    pub auth: Auth,
    /// The provider's settings (api_version, region, project, location).
    #[serde(default, skip_serializing_if = "ProviderParams::is_empty")]
    pub params: ProviderParams,
    #[serde(default)]
    pub organization: Option<String>,
    /// Extra headers from litellm_params.extra_headers / headers.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// OpenAI parameters set in litellm_params (temperature, max_tokens, ...): they fill in
    /// what a request leaves out.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub defaults: serde_json::Map<String, serde_json::Value>,
    /// litellm_system_prompt: the first message of every chat request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// drop_params (the deployment's, else litellm_settings'): parameters the provider
    /// cannot take are dropped instead of refused.
    #[serde(default)]
    pub drop_params: bool,
    /// What its tokens cost, for the spend of each request.
    #[serde(default, skip_serializing_if = "Prices::is_free")]
    pub prices: Prices,
}

/// USD per token. The deployment's own (`input_cost_per_token`, ... in litellm_params or
/// model_info), else the price table's for its provider and model, else nothing known (0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Prices {
    #[serde(default)]
    pub input: f64,
    #[serde(default)]
    pub output: f64,
    /// Prompt tokens read from the provider's cache; None: the input price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read: Option<f64>,
    /// Prompt tokens written to the provider's cache; None: the input price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation: Option<f64>,
    /// Reasoning tokens (part of the completion); None: the output price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<f64>,
    /// USD per second of the answer's time (input_cost_per_second + output_cost_per_second),
    /// for deployments billed by time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_second: Option<f64>,
}

impl Prices {
    pub fn is_free(&self) -> bool {
        *self == Prices::default()
    }
}

/// A deployment's credentials, by the names of the VM environment variables holding them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Auth {
    /// No credentials (self-hosted servers).
    #[default]
    None,
    /// An API key; the translator knows the header it goes in.
    Key { env: String },
    /// AWS credentials for SigV4.
    Aws {
        access_key_id_env: String,
        secret_access_key_env: String,
        #[serde(default)]
        session_token_env: Option<String>,
    },
    /// A Google OAuth access token in an environment variable.
    GoogleToken { env: String },
    /// A Google service account: the sidecar mints access tokens from it (the JSON never
    /// reaches Envoy); the provider role reads the current one from shared data.
    GoogleServiceAccount,
}

impl Auth {
    /// The environment variables holding secrets.
    pub fn envs(&self) -> Vec<&str> {
        match self {
            Auth::None | Auth::GoogleServiceAccount => vec![],
            Auth::Key { env } | Auth::GoogleToken { env } => vec![env],
            Auth::Aws {
                access_key_id_env,
                secret_access_key_env,
                session_token_env,
            } => {
                let mut v = vec![access_key_id_env.as_str(), secret_access_key_env.as_str()];
                v.extend(session_token_env.as_deref());
                v
            }
        }
    }
}

/// A provider's settings, as its row in the provider table lists them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderParams {
    /// Azure's `api-version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// AWS region (Bedrock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Google Cloud project (Vertex AI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Google Cloud location (Vertex AI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl ProviderParams {
    pub fn is_empty(&self) -> bool {
        *self == ProviderParams::default()
    }
}

/// The client's headers that matter beyond the gateway: what may reach a provider, and
/// LiteLLM's per-request router headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientHeaders {
    /// `x-` headers LiteLLM forwards to groups that allow it (not `x-stainless-*`, not
    /// credentials, not Envoy's or Switchyard's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub x: Vec<(String, String)>,
    /// `x-pass-*` headers, prefix removed: always forwarded, as LiteLLM does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pass: Vec<(String, String)>,
    /// `OpenAI-Organization`, when general_settings.forward_openai_org_id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openai_org: Option<String>,
    /// `x-litellm-timeout`, `x-litellm-stream-timeout` (ms), `x-litellm-num-retries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_retries: Option<u32>,
    /// `anthropic-beta`: the beta flags an Anthropic client asked for, sent on to Anthropic
    /// deployments only (the others take none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic_beta: Option<String>,
    /// `x-litellm-tags`: the request's tags, when its body names none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl ClientHeaders {
    pub fn is_empty(&self) -> bool {
        *self == ClientHeaders::default()
    }
}

impl RequestInfo {
    /// The `model` an answer carries: what the client asked for, or the fallback group that
    /// served it.
    pub fn answer_model(&self) -> &str {
        if self.fallback_depth == 0 {
            &self.requested_model
        } else {
            &self.group
        }
    }
}

/// The OpenAI endpoints that reach a provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    #[default]
    ChatCompletions,
    Completions,
    Embeddings,
    /// Anthropic's `/v1/messages/count_tokens`: served by Anthropic deployments, estimated
    /// by the gateway for the others.
    CountTokens,
    /// `GET`/`DELETE /v1/responses/{id}` (and `.../input_items`): a response the provider
    /// stored, at the deployment that made it (its id says which).
    StoredResponse,
}

impl Endpoint {
    pub const ALL: [Endpoint; 3] = [
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::Embeddings,
    ];

    fn all() -> Vec<Endpoint> {
        Endpoint::ALL.to_vec()
    }

    /// What a client calls it, for error messages.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat completions",
            Endpoint::Completions => "completions",
            Endpoint::Embeddings => "embeddings",
            Endpoint::CountTokens => "token counting",
            Endpoint::StoredResponse => "stored responses",
        }
    }

    /// Path under the api_base, OpenAI style.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::CountTokens => "/messages/count_tokens",
            Endpoint::StoredResponse => "/responses",
        }
    }

    /// Whether a request to it is priced and logged as spend (counting tokens and reading a
    /// stored response cost nothing).
    pub fn is_billed(self) -> bool {
        !matches!(self, Endpoint::CountTokens | Endpoint::StoredResponse)
    }
}

/// What the gateway decided about a request, read by the provider role on every attempt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestInfo {
    pub endpoint: Endpoint,
    /// The API the client speaks, when it is not OpenAI's chat completions: its request is
    /// bridged to a chat request and every answer and error back.
    #[serde(default, skip_serializing_if = "Dialect::is_chat")]
    pub dialect: Dialect,
    /// A stored response's path under the provider's `/responses/`: its own id, maybe
    /// `/input_items` and the client's query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<String>,
    /// Envoy's x-request-id: the provider role rebuilds the header map for each provider,
    /// so a retry's attempt would not find it there.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// The model name the client asked for (before aliases and fallbacks).
    pub requested_model: String,
    /// The model group (model_name) serving this pass: the requested one, or a fallback.
    pub group: String,
    /// When the group is a pattern (`openai/*`): the model name it matched, which a
    /// deployment's pattern model is filled from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcard_model: Option<String>,
    /// The request's tags (tag routing; kept for fallback passes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub stream: bool,
    /// Deployment ids, attempt by attempt.
    pub plan: Vec<String>,
    /// Retries allowed per error class within the plan (None: as many as the plan has).
    #[serde(default)]
    pub retry_policy: ClassLimits,
    /// Fallback groups left for each kind of failure, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context_window_fallbacks: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_policy_fallbacks: Vec<String>,
    /// Fallback groups already tried before this pass.
    #[serde(default)]
    pub fallback_depth: u32,
    /// Attempts made in earlier passes (for x-litellm-attempted-retries).
    #[serde(default)]
    pub earlier_attempts: u32,
    /// When the gateway routed the request's first pass, in ms since the epoch (for
    /// x-litellm-response-duration-ms).
    #[serde(default)]
    pub received_ms: u64,
    /// Where the client sent the request: a fallback's internal redirect goes back there
    /// (empty when the request has no fallbacks).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub origin: String,
    /// What the client's headers asked for, kept for fallback passes: by then the header
    /// map has been rebuilt for a provider.
    #[serde(default, skip_serializing_if = "ClientHeaders::is_empty")]
    pub client: ClientHeaders,
    /// The serving group forwards the client's `x-` headers (forward_client_headers_to_llm_api).
    #[serde(default)]
    pub forward_x_headers: bool,
    /// The body carries LiteLLM's router parameters (fallbacks, num_retries, timeout,
    /// stream_timeout), which providers must not see.
    #[serde(default)]
    pub strip_params: bool,
    /// The virtual key that sent it (None: the master key, or an open gateway): whose
    /// budgets its spend counts against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyIdentity>,
    /// The request's `user` field (LiteLLM's end user, or customer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_user: Option<String>,
    /// The rate-limit counters (shared-data keys) this request is in flight in, released
    /// when it is done, and those its tokens are added to when the answer says how many.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits_in_flight: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits_tokens: Vec<String>,
    /// The `x-ratelimit-*` headers of the gateway's own limits, for the answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limit_headers: Vec<(String, String)>,
    /// A health check (`/health`): its outcome counts for the deployment's cooldown, and it
    /// is neither spend nor a request in the metrics.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub health_check: bool,
    /// The prompt and the answer go in the request's event (for the logging callbacks).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub log_messages: bool,
    /// The response cache missed: the answer's key (for `x-litellm-cache-key`), and how to
    /// keep the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheMiss>,
}

/// An API clients speak besides OpenAI's (see switchyard-core's `dialects`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// OpenAI's chat completions, completions, embeddings.
    #[default]
    Chat,
    /// Anthropic's Messages API (`/v1/messages`).
    Anthropic,
    /// OpenAI's Responses API (`/v1/responses`).
    Responses,
}

impl Dialect {
    pub fn is_chat(&self) -> bool {
        *self == Dialect::Chat
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Chat => "chat",
            Dialect::Anthropic => "anthropic messages",
            Dialect::Responses => "responses",
        }
    }
}

/// A request the response cache had no answer for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheMiss {
    pub key: String,
    /// Seconds to keep the answer; None: the request said `no-store`.
    #[serde(default)]
    pub store_ttl_s: Option<u64>,
    /// Semantic cache: what to index the answer by.
    #[serde(default)]
    pub semantic: Option<crate::sidecar_api::SemanticEntry>,
}

/// A virtual key as its spend is logged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyIdentity {
    /// SHA-256 of the key, hex.
    pub hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_digits_fit() {
        assert_eq!(max_attempts(1), MAX_ATTEMPTS);
        assert_eq!(max_attempts(3), MAX_ATTEMPTS);
        assert_eq!(
            max_attempts(100),
            5,
            "100^4 fits in 32 bits, 100^5 does not"
        );
        assert_eq!(max_attempts(1000), 4);
        assert_eq!(max_attempts(70_000), 2);
        for members in [2usize, 7, 16, 300, 5000] {
            let k = max_attempts(members);
            let total = (members as u128).pow(k);
            assert!(
                total <= u128::from(u64::MAX),
                "{members} members, {k} attempts"
            );
        }
    }
}
