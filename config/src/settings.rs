//! Every LiteLLM setting key the loader knows, per section, with what Switchyard does with it.
//!
//! The loader's warnings and refusals come from here, and a test holds README's "Config
//! reference" to it. The keys are those of LiteLLM's "All settings" page
//! (docs/proxy/config_settings.md) and of its deployment types (litellm/types/router.py).
//! A key in no table is unknown: kept and reported as such. To change what Switchyard does
//! with a key, change its one line here (and the README row the test prints).

use serde_json::Value;

/// What Switchyard does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Read and acted on.
    Honoured,
    /// Kept and reported; the reason says why and what to use instead.
    NotActedOn(&'static str),
    /// Stops the load: ignoring it would leave the gateway less secure than the config says.
    Refused(&'static str),
}

impl Status {
    /// The word README's table starts the status with.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Honoured => "honoured",
            Status::NotActedOn(_) => "not acted on",
            Status::Refused(_) => "refused",
        }
    }

    /// README's wording: `honoured`, `not acted on: why`, `refused: why`.
    pub fn describe(&self) -> String {
        match self {
            Status::Honoured => "honoured".to_string(),
            Status::NotActedOn(why) | Status::Refused(why) => format!("{}: {why}", self.word()),
        }
    }
}

/// A section of config.yaml and its keys.
#[derive(Debug)]
pub struct Section {
    /// As README's heading names it, and as warnings' paths start (`[]` stands for an index).
    pub name: &'static str,
    pub keys: &'static [(&'static str, Status)],
}

impl Section {
    pub fn status(&self, key: &str) -> Option<Status> {
        self.keys.iter().find(|(k, _)| *k == key).map(|(_, s)| *s)
    }
}

use Status::{Honoured as OK, NotActedOn as IGNORED, Refused as REFUSED};

/// Why guardrails (the keys and the callbacks that are guardrails) are refused.
pub const GUARDRAILS: &str = "guardrails are Python hooks on prompts and answers; Switchyard runs none, so requests would pass unchecked. Run the guardrail as a service in front of the gateway (Envoy's ext_proc or ext_authz filter)";
const KEY_MANAGER: &str = "secrets are read from os.environ/ references only, never decrypted by a key manager: an encrypted value would be used as written. Fill the variables from your secret store (a Kubernetes Secret, an init container)";
const JWT: &str = "JWTs are not verified by Switchyard; use virtual keys, or Envoy's jwt_authn filter in front of the gateway";
const OAUTH2: &str = "OAuth2 tokens are not verified by Switchyard; use virtual keys, or Envoy's oauth2 / ext_authz filter in front of the gateway";
const ALERTS: &str = "no alerts are sent; alert from Prometheus on /metrics";
const NOT_SERVED: &str = "this API is not served by Switchyard";
const MCP: &str = "MCP servers are not proxied by Switchyard; clients reach them directly";
const ONLY_MASTER_ISSUES: &str = "only the master key issues keys in Switchyard";
const AWS_ROLES: &str = "AWS roles are not assumed; set aws_access_key_id and aws_secret_access_key (and aws_session_token), or the AWS_* variables";
const AZURE_AD: &str = "Azure AD credentials are not used; set api_key";
const DEPLOYMENT_BUDGETS: &str =
    "deployment budgets are not enforced; use key, team, user or end-user budgets";
const PROXY_BUDGET: &str =
    "a proxy-wide budget is not enforced; use key, team, user or end-user budgets";
const ROUTES_BY_ROLE: &str = "routes are not configurable by role: the management routes need the master key, the model routes any valid key; restrict routes further with Envoy's RBAC filter in front of the gateway";
const VERBOSE: &str = "use `switchyard up --detailed-debug`, or RUST_LOG";

pub const TOP_LEVEL: Section = Section {
    name: "top level",
    keys: &[
        ("model_list", OK),
        ("litellm_settings", OK),
        ("router_settings", OK),
        ("general_settings", OK),
        ("environment_variables", OK),
        ("include", OK),
        ("callback_settings", IGNORED("per-callback settings are not read; use litellm_settings.turn_off_message_logging for message logging")),
        ("credential_list", OK),
        ("guardrails", REFUSED(GUARDRAILS)),
        ("mcp_servers", IGNORED(MCP)),
        ("vector_store_registry", IGNORED("vector stores are not served; call the store's own API")),
        ("files_settings", IGNORED("the files API is not served; call the provider's")),
        ("assistant_settings", IGNORED("the assistants API is not served; call the provider's")),
        ("finetune_settings", IGNORED("fine-tuning is not served; call the provider's API")),
        ("prompts", IGNORED("prompt management is not served; send the prompt in the request")),
        ("search_tools", IGNORED("the search API is not served")),
    ],
};

pub const MODEL_ENTRY: Section = Section {
    name: "model_list[]",
    keys: &[
        ("model_name", OK),
        ("litellm_params", OK),
        ("model_info", OK),
    ],
};

pub const LITELLM_PARAMS: Section = Section {
    name: "model_list[].litellm_params",
    keys: &[
        ("model", OK),
        ("api_base", OK),
        ("api_key", OK),
        ("api_version", OK),
        ("organization", OK),
        ("litellm_system_prompt", OK),
        ("timeout", OK),
        ("stream_timeout", OK),
        ("max_retries", OK),
        ("rpm", OK),
        ("tpm", OK),
        ("weight", OK),
        ("max_parallel_requests", OK),
        ("input_cost_per_token", OK),
        ("output_cost_per_token", OK),
        ("cache_read_input_token_cost", OK),
        ("cache_creation_input_token_cost", OK),
        ("output_cost_per_reasoning_token", OK),
        ("extra_headers", OK),
        ("headers", OK),
        ("drop_params", OK),
        ("aws_access_key_id", OK),
        ("aws_secret_access_key", OK),
        ("aws_session_token", OK),
        ("aws_region_name", OK),
        ("aws_bedrock_runtime_endpoint", OK),
        ("vertex_project", OK),
        ("vertex_location", OK),
        ("vertex_credentials", OK),
        ("custom_llm_provider", OK),
        ("input_cost_per_second", OK),
        ("output_cost_per_second", OK),
        ("tags", OK),
        ("mock_response", IGNORED("every request goes to the provider; use the switchyard_demo provider for a fake one")),
        ("additional_drop_params", IGNORED("only drop_params (every parameter the provider cannot take) is acted on")),
        ("region_name", IGNORED("use aws_region_name (Bedrock) or vertex_location (Vertex AI)")),
        ("litellm_credential_name", OK),
        ("use_in_pass_through", IGNORED("pass-through endpoints are not served")),
        ("order", OK),
        ("cooldown_time", IGNORED("cooldowns are set for every deployment at once: router_settings.cooldown_time")),
        ("num_retries", IGNORED("retries are set per router: router_settings.num_retries, or max_retries here")),
        ("max_budget", IGNORED(DEPLOYMENT_BUDGETS)),
        ("budget_duration", IGNORED(DEPLOYMENT_BUDGETS)),
        ("configurable_clientside_auth_params", IGNORED("clients cannot send their own api_base or keys; make a deployment per api_base")),
        ("azure_ad_token", IGNORED(AZURE_AD)),
        ("tenant_id", IGNORED(AZURE_AD)),
        ("client_id", IGNORED(AZURE_AD)),
        ("client_secret", IGNORED(AZURE_AD)),
        ("aws_session_name", IGNORED(AWS_ROLES)),
        ("aws_profile_name", IGNORED(AWS_ROLES)),
        ("aws_role_name", IGNORED(AWS_ROLES)),
        ("aws_web_identity_token", IGNORED(AWS_ROLES)),
        ("aws_sts_endpoint", IGNORED(AWS_ROLES)),
        ("aws_external_id", IGNORED(AWS_ROLES)),
        ("temperature", OK),
        ("top_p", OK),
        ("max_tokens", OK),
        ("max_completion_tokens", OK),
        ("stop", OK),
        ("seed", OK),
        ("reasoning_effort", OK),
        ("frequency_penalty", OK),
        ("presence_penalty", OK),
        ("n", OK),
        ("logit_bias", OK),
        ("response_format", OK),
        ("user", OK),
        ("dimensions", OK),
        ("encoding_format", OK),
        (
            "extra_body",
            IGNORED("not merged into requests; set each parameter in litellm_params itself"),
        ),
    ],
};

/// model_info is free-form in LiteLLM: keys in no table here are kept without a warning.
pub const MODEL_INFO: Section = Section {
    name: "model_list[].model_info",
    keys: &[
        ("id", OK),
        ("mode", OK),
        ("base_model", OK),
        ("max_input_tokens", OK),
        ("max_tokens", OK),
        ("input_cost_per_token", OK),
        ("output_cost_per_token", OK),
        ("cache_read_input_token_cost", OK),
        ("cache_creation_input_token_cost", OK),
        ("output_cost_per_reasoning_token", OK),
        ("access_groups", OK),
        (
            "disable_background_health_check",
            IGNORED("background_health_checks check every deployment"),
        ),
        (
            "team_id",
            IGNORED("models are not scoped to a team; limit keys and teams with their models list"),
        ),
        (
            "team_public_model_name",
            IGNORED("models are not scoped to a team; clients use model_name"),
        ),
        (
            "tier",
            IGNORED("free and paid tiers are not used for routing"),
        ),
    ],
};

pub const LITELLM_SETTINGS: Section = Section {
    name: "litellm_settings",
    keys: &[
        ("request_timeout", OK),
        ("num_retries", OK),
        ("drop_params", OK),
        ("ssl_verify", OK),
        ("fallbacks", OK),
        ("context_window_fallbacks", OK),
        ("content_policy_fallbacks", OK),
        ("default_fallbacks", OK),
        ("model_group_settings", OK),
        ("cache", OK),
        ("cache_params", OK),
        ("callbacks", OK),
        ("success_callback", OK),
        ("failure_callback", OK),
        ("require_auth_for_metrics_endpoint", OK),
        ("turn_off_message_logging", OK),
        ("redact_user_api_key_info", OK),
        ("enable_end_user_cost_tracking_prometheus_only", OK),
        ("set_verbose", IGNORED(VERBOSE)),
        ("json_logs", OK),
        ("service_callback", IGNORED("Redis and database failures are logged by the sidecar and shown by /health/readiness")),
        ("service_callbacks", IGNORED("Redis and database failures are logged by the sidecar and shown by /health/readiness")),
        ("modify_params", IGNORED("requests are translated as sent; the client fixes what a provider refuses")),
        ("max_budget", IGNORED(PROXY_BUDGET)),
        ("budget_duration", IGNORED(PROXY_BUDGET)),
        ("telemetry", IGNORED("Switchyard sends no telemetry")),
        ("force_ipv4", IGNORED("provider addresses come from Envoy's DNS resolution")),
        ("max_end_user_budget", IGNORED("set each end user's budget with /customer/new")),
        ("default_team_settings", IGNORED("per-team callbacks and settings are not read")),
        ("default_internal_user_params", IGNORED("users get no defaults; pass the fields to /user/new")),
        ("default_key_generate_params", OK),
        ("upperbound_key_generate_params", IGNORED(ONLY_MASTER_ISSUES)),
        ("key_generation_settings", IGNORED(ONLY_MASTER_ISSUES)),
        ("enable_json_schema_validation", IGNORED("answers are not checked against the request's JSON schema")),
        ("return_response_headers", OK),
        ("guardrails", REFUSED(GUARDRAILS)),
        ("langfuse_default_tags", IGNORED("Langfuse gets the request's own tags")),
        ("mcp_aliases", IGNORED(MCP)),
        ("enable_preview_features", IGNORED("there are no preview features to turn on")),
        ("LITELLM_DISABLE_STOP_SEQUENCE_LIMIT", IGNORED("stop sequences are sent as the client wrote them")),
        ("disable_end_user_cost_tracking", IGNORED("end users' spend is always logged; leave the user field out of requests not to track them")),
        ("disable_end_user_cost_tracking_prometheus_only", IGNORED("the metrics label end users only with enable_end_user_cost_tracking_prometheus_only")),
        ("disable_add_transform_inline_image_block", IGNORED("image URLs are sent as the client wrote them")),
        ("use_chat_completions_url_for_anthropic_messages", IGNORED("Switchyard picks each provider's API itself")),
        ("disable_hf_tokenizer_download", IGNORED("Switchyard downloads no tokenizer")),
        ("enable_key_alias_format_validation", IGNORED("key aliases are not checked for a format")),
        ("disable_copilot_system_to_assistant", IGNORED("deprecated in LiteLLM")),
    ],
};

pub const CACHE_PARAMS: Section = Section {
    name: "litellm_settings.cache_params",
    keys: &[
        ("type", OK),
        ("host", OK),
        ("port", OK),
        ("password", OK),
        ("url", OK),
        ("ttl", OK),
        ("default_in_memory_ttl", OK),
        ("default_in_redis_ttl", OK),
        ("namespace", OK),
        ("supported_call_types", OK),
        ("mode", OK),
        ("similarity_threshold", OK),
        ("redis_semantic_cache_embedding_model", OK),
        ("qdrant_semantic_cache_embedding_model", OK),
        ("ssl", REFUSED("Switchyard's Redis client has no TLS: the password and the answers would cross the network in clear. Reach Redis over a private network or a TLS tunnel, and drop ssl")),
        ("max_connections", IGNORED("the sidecar shares one Redis connection")),
        ("redis_startup_nodes", IGNORED("Redis Cluster is not served; use one Redis (url or host)")),
        ("service_name", IGNORED("Redis Sentinel is not served; use one Redis (url or host)")),
        ("sentinel_nodes", IGNORED("Redis Sentinel is not served; use one Redis (url or host)")),
        ("gcp_service_account", IGNORED("IAM authentication to Redis is not served; use a password")),
        ("gcp_ssl_ca_certs", IGNORED("Switchyard's Redis client has no TLS")),
        ("ssl_cert_reqs", IGNORED("Switchyard's Redis client has no TLS")),
        ("ssl_check_hostname", IGNORED("Switchyard's Redis client has no TLS")),
        ("s3_bucket_name", IGNORED("the S3 cache is not served; use local or redis")),
        ("s3_region_name", IGNORED("the S3 cache is not served; use local or redis")),
        ("s3_endpoint_url", IGNORED("the S3 cache is not served; use local or redis")),
        ("s3_aws_access_key_id", IGNORED("the S3 cache is not served; use local or redis")),
        ("s3_aws_secret_access_key", IGNORED("the S3 cache is not served; use local or redis")),
        ("gcs_bucket_name", IGNORED("the GCS cache is not served; use local or redis")),
        ("gcs_path_service_account", IGNORED("the GCS cache is not served; use local or redis")),
        ("gcs_path", IGNORED("the GCS cache is not served; use local or redis")),
        ("disk_cache_dir", IGNORED("the disk cache is not served; use local or redis")),
        ("qdrant_api_base", IGNORED("the semantic cache keeps its vectors in the sidecar (and Redis), not in Qdrant")),
        ("qdrant_api_key", IGNORED("the semantic cache keeps its vectors in the sidecar (and Redis), not in Qdrant")),
        ("qdrant_collection_name", IGNORED("the semantic cache keeps its vectors in the sidecar (and Redis), not in Qdrant")),
        ("qdrant_quantization_config", IGNORED("the semantic cache keeps its vectors in the sidecar (and Redis), not in Qdrant")),
        ("qdrant_semantic_cache_vector_size", IGNORED("the vector size is the embedding model's")),
        ("redis_semantic_cache_use_async", IGNORED("the sidecar always talks to Redis asynchronously")),
        ("max_size_in_memory", IGNORED("the in-memory cache has its own bound (256 MB)")),
        ("disable_copilot_system_to_assistant", IGNORED("deprecated in LiteLLM")),
    ],
};

pub const ROUTER_SETTINGS: Section = Section {
    name: "router_settings",
    keys: &[
        ("routing_strategy", OK),
        ("num_retries", OK),
        ("timeout", OK),
        ("stream_timeout", OK),
        ("allowed_fails", OK),
        ("cooldown_time", OK),
        ("allowed_fails_policy", OK),
        ("disable_cooldowns", OK),
        ("retry_policy", OK),
        ("model_group_retry_policy", OK),
        ("retry_after", OK),
        ("fallbacks", OK),
        ("context_window_fallbacks", OK),
        ("content_policy_fallbacks", OK),
        ("default_fallbacks", OK),
        ("max_fallbacks", OK),
        ("enable_pre_call_checks", OK),
        ("model_group_alias", OK),
        ("redis_host", OK),
        ("redis_port", OK),
        ("redis_password", OK),
        ("redis_url", OK),
        ("enable_tag_filtering", OK),
        (
            "tag_filtering_match_any",
            IGNORED("a deployment carrying any one of the request's tags matches (LiteLLM's default); to require a tag, send it as &tag"),
        ),
        ("default_litellm_params", OK),
        (
            "optional_pre_call_checks",
            IGNORED("only enable_pre_call_checks (context windows) is checked before a call"),
        ),
        (
            "routing_strategy_args",
            IGNORED("each routing strategy uses Switchyard's own parameters"),
        ),
        (
            "provider_budget_config",
            IGNORED("provider budgets are not enforced; use key, team or user budgets"),
        ),
        (
            "cache_responses",
            IGNORED("the cache is turned on by litellm_settings.cache"),
        ),
        (
            "redis_db",
            IGNORED("write the database in redis_url: redis://host:port/db"),
        ),
        (
            "enable_pre_call_check",
            IGNORED("a misspelling in LiteLLM's docs: write enable_pre_call_checks"),
        ),
        ("default_max_parallel_requests", OK),
        (
            "default_priority",
            IGNORED("requests are not queued by priority"),
        ),
        (
            "polling_interval",
            IGNORED("requests are not queued by priority"),
        ),
        ("debug_level", IGNORED(VERBOSE)),
        ("set_verbose", IGNORED(VERBOSE)),
        (
            "client_ttl",
            IGNORED("Envoy keeps its own connection pools to providers"),
        ),
        (
            "cache_kwargs",
            IGNORED("the cache is set by litellm_settings.cache_params"),
        ),
        (
            "caching_groups",
            IGNORED("cached answers are kept per model group"),
        ),
        ("alerting_config", IGNORED(ALERTS)),
        ("assistants_config", IGNORED(NOT_SERVED)),
        ("router_general_settings", IGNORED("a LiteLLM SDK setting")),
        (
            "deployment_affinity_ttl_seconds",
            IGNORED("deployment affinity is not served"),
        ),
        (
            "ignore_invalid_deployments",
            IGNORED("an invalid deployment stops the load with its reason"),
        ),
        ("search_tools", IGNORED(NOT_SERVED)),
        ("guardrail_list", REFUSED(GUARDRAILS)),
    ],
};

pub const GENERAL_SETTINGS: Section = Section {
    name: "general_settings",
    keys: &[
        ("master_key", OK),
        ("background_health_checks", OK),
        ("health_check_interval", OK),
        ("database_url", OK),
        ("database_path", OK),
        ("max_request_size_mb", OK),
        ("max_response_size_mb", OK),
        ("global_max_parallel_requests", OK),
        ("forward_client_headers_to_llm_api", OK),
        ("forward_openai_org_id", OK),
        ("expose_api_base", OK),
        ("request_headers_timeout", OK),
        ("client_idle_timeout", OK),
        ("user_api_key_cache_ttl", OK),
        ("custom_auth", REFUSED("a Python hook cannot run in Envoy; use virtual keys, or Envoy's ext_authz filter in front of the gateway")),
        ("enable_jwt_auth", REFUSED(JWT)),
        ("litellm_jwtauth", REFUSED(JWT)),
        ("enable_oauth2_auth", REFUSED(OAUTH2)),
        ("enable_oauth2_proxy_auth", REFUSED(OAUTH2)),
        ("oauth2_config_mappings", REFUSED(OAUTH2)),
        ("custom_sso", REFUSED("a Python hook cannot run in Envoy; the admin page signs in with the master key only")),
        ("custom_key_generate", REFUSED("a Python hook cannot run in Envoy; only the master key issues keys")),
        ("allowed_ips", REFUSED("client addresses are not checked; use Envoy's RBAC filter or a network policy in front of the gateway")),
        ("key_management_system", REFUSED(KEY_MANAGER)),
        ("key_management_settings", REFUSED(KEY_MANAGER)),
        ("use_azure_key_vault", REFUSED(KEY_MANAGER)),
        ("use_google_kms", REFUSED(KEY_MANAGER)),
        ("allowed_routes", REFUSED(ROUTES_BY_ROLE)),
        ("admin_only_routes", REFUSED(ROUTES_BY_ROLE)),
        ("public_routes", IGNORED("every route but the health probes needs a key; to open one, route it around the gateway in Envoy")),
        ("enforce_user_param", OK),
        ("litellm_key_header_name", OK),
        ("enforced_params", IGNORED("requests are not checked for required parameters")),
        ("alerting", IGNORED(ALERTS)),
        ("alerting_threshold", IGNORED(ALERTS)),
        ("alert_types", IGNORED(ALERTS)),
        ("alerting_args", IGNORED(ALERTS)),
        ("alert_to_webhook_url", IGNORED(ALERTS)),
        ("spend_report_frequency", IGNORED(ALERTS)),
        ("proxy_batch_write_at", IGNORED("spend is written in the sidecar's own batches")),
        ("database_connection_pool_limit", OK),
        ("database_connection_timeout", OK),
        ("disable_spend_logs", IGNORED("a spend log is written for every request")),
        ("disable_spend_updates", IGNORED("spend is always counted")),
        ("store_model_in_db", IGNORED("models come from config.yaml only")),
        ("supported_db_objects", IGNORED("models come from config.yaml only")),
        ("store_prompts_in_spend_logs", IGNORED("spend logs hold no prompts; the file, langfuse and generic_api callbacks log them")),
        ("pass_through_endpoints", IGNORED("pass-through endpoints are not served; route them in Envoy")),
        ("use_client_credentials_pass_through_routes", IGNORED("pass-through endpoints are not served")),
        ("allow_requests_on_db_unavailable", IGNORED("with the database down, keys already seen keep working and unknown keys get a 503")),
        ("disable_master_key_return", IGNORED("the master key is never returned")),
        ("disable_reset_budget", IGNORED("budgets start a new period when their budget_duration ends")),
        ("proxy_budget_rescheduler_min_time", IGNORED("budgets start a new period when their budget_duration ends")),
        ("proxy_budget_rescheduler_max_time", IGNORED("budgets start a new period when their budget_duration ends")),
        ("ui_access_mode", IGNORED("the admin page signs in with the master key only")),
        ("use_redis_transaction_buffer", IGNORED("spend goes through the sidecar's batches")),
        ("maximum_spend_logs_retention_period", OK),
        ("maximum_spend_logs_retention_interval", OK),
        ("otel", IGNORED("use litellm_settings.callbacks: [otel]")),
        ("completion_model", IGNORED("requests go to the model they name")),
        ("image_generation_model", IGNORED("requests go to the model they name")),
        ("embedding_model", IGNORED("requests go to the model they name")),
        ("moderation_model", IGNORED("requests go to the model they name")),
        ("max_parallel_requests", IGNORED("set max_parallel_requests on each deployment, or global_max_parallel_requests")),
        ("infer_model_from_keys", IGNORED("requests go to the model they name")),
        ("health_check_details", IGNORED("/health lists every deployment's result")),
        ("disable_retry_on_max_parallel_request_limit_error", IGNORED("not read")),
        ("disable_adding_master_key_hash_to_db", IGNORED("not read")),
        ("disable_responses_id_security", IGNORED("not read")),
        ("reject_clientside_metadata_tags", IGNORED("not read")),
        ("use_x_forwarded_for", IGNORED("client addresses are not used")),
        ("service_account_settings", IGNORED("not read")),
        ("default_team_disabled", IGNORED(ONLY_MASTER_ISSUES)),
        ("allow_user_auth", IGNORED("deprecated in LiteLLM")),
        ("disable_prisma_schema_update", IGNORED("the sidecar applies its own migrations")),
        ("allow_client_side_credentials", IGNORED("clients cannot send provider credentials; the deployment's are used")),
        ("litellm_license", IGNORED("Switchyard needs no license")),
        ("user_mcp_management_mode", IGNORED(MCP)),
        ("proxy_batch_polling_interval", IGNORED(NOT_SERVED)),
    ],
};

/// Every section, in README's order.
pub const SECTIONS: [&Section; 8] = [
    &TOP_LEVEL,
    &MODEL_ENTRY,
    &LITELLM_PARAMS,
    &MODEL_INFO,
    &LITELLM_SETTINGS,
    &CACHE_PARAMS,
    &ROUTER_SETTINGS,
    &GENERAL_SETTINGS,
];

/// Callbacks that are guardrails (LiteLLM's older form of them): refused as the key is.
pub const GUARDRAIL_CALLBACKS: &[&str] = &[
    "presidio",
    "hide_secrets",
    "lakera_prompt_injection",
    "detect_prompt_injection",
    "llamaguard_moderations",
    "llmguard_moderations",
    "google_text_moderation",
    "openai_moderations",
    "azure_content_safety",
    "aporia",
];

/// Whether a value asks for nothing (`false`, null, empty): a refused key set so only warns.
pub fn is_off(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// A section's heading in README: its path as code, or "Top level".
pub fn heading(section: &Section) -> String {
    if section.name == TOP_LEVEL.name {
        "Top level".to_string()
    } else {
        format!("`{}`", section.name)
    }
}

/// The Markdown README's "Config reference" holds: a table per section.
pub fn markdown() -> String {
    let mut out = String::new();
    for section in SECTIONS {
        out.push_str(&format!(
            "#### {}\n\n| key | status |\n| --- | --- |\n",
            heading(section)
        ));
        for (key, status) in section.keys {
            out.push_str(&format!("| `{key}` | {} |\n", status.describe()));
        }
        out.push('\n');
    }
    out
}
