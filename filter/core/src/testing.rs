//! Fixtures for the tests: the unit tests, the integration tests and the hot-path bench.
//! Public (and hidden from the docs) so that all of them build requests and configurations
//! the same way; dead code in the filter.

use std::collections::BTreeMap;

use switchyard_config::{
    ClassLimits, CooldownConfig, DeploymentConfig, DeploymentRoute, Endpoint, ForwardPolicy,
    GatewayConfig, GroupConfig, Provider, ProviderConfig, RequestInfo, Strategy,
};

/// A chat request for model group "g" (asked for as "g") with this plan.
pub fn info(plan: &[&str]) -> RequestInfo {
    RequestInfo {
        health_check: false,
        log_messages: false,
        request_id: String::new(),
        dialect: switchyard_config::Dialect::Chat,
        stored: None,
        endpoint: Endpoint::ChatCompletions,
        requested_model: "g".into(),
        wildcard_model: None,
        tags: Vec::new(),
        group: "g".into(),
        stream: false,
        plan: plan.iter().map(|s| s.to_string()).collect(),
        retry_policy: ClassLimits::default(),
        fallbacks: vec![],
        context_window_fallbacks: vec![],
        content_policy_fallbacks: vec![],
        fallback_depth: 0,
        earlier_attempts: 0,
        received_ms: 0,
        origin: "http://gw:4000/v1/chat/completions".into(),
        client: Default::default(),
        forward_x_headers: false,
        strip_params: false,
        key: None,
        end_user: None,
        limits_in_flight: vec![],
        limits_tokens: vec![],
        rate_limit_headers: vec![],
        cache: None,
    }
}

/// A request for model group `group` (asked for by that name) with this plan.
pub fn request_info(group: &str, endpoint: Endpoint, stream: bool, plan: &[&str]) -> RequestInfo {
    RequestInfo {
        endpoint,
        requested_model: group.into(),
        group: group.into(),
        stream,
        ..info(plan)
    }
}

/// A deployment as the gateway plans with it: no weights, limits or prices, LiteLLM's
/// default timeouts (600 s).
pub fn route(id: &str) -> DeploymentRoute {
    DeploymentRoute {
        id: id.into(),
        weight: None,
        rpm: None,
        tpm: None,
        input_cost_per_token: None,
        output_cost_per_token: None,
        max_input_tokens: None,
        timeout_ms: 600_000,
        stream_timeout_ms: 600_000,
        max_retries: None,
        speaks: vec![],
        endpoints: Endpoint::ALL.to_vec(),
        tags: Vec::new(),
        passes_through: None,
        order: None,
    }
}

pub fn cooldown() -> CooldownConfig {
    CooldownConfig {
        allowed_fails: 3,
        per_class: ClassLimits::default(),
        cooldown_ms: 5000,
        disabled: false,
        single_deployment: false,
    }
}

pub fn deployment(provider: Provider, id: &str, group: &str) -> DeploymentConfig {
    DeploymentConfig {
        system_prompt: None,
        id: id.into(),
        group: group.into(),
        provider,
        model: "upstream-model".into(),
        scheme: "https".into(),
        authority: "api.example.com".into(),
        base_path: "/v1".into(),
        auth: switchyard_config::Auth::Key { env: "K".into() },
        params: switchyard_config::ProviderParams {
            api_version: Some("2024-10-21".into()),
            ..Default::default()
        },
        organization: Some("org".into()),
        headers: vec![("X-A".into(), "b".into())],
        defaults: Default::default(),
        drop_params: false,
        prices: Default::default(),
    }
}

pub fn provider_config(d: DeploymentConfig) -> ProviderConfig {
    ProviderConfig {
        deployment: d,
        owned_headers: vec!["x-a".into()],
        secret_envs: vec!["K".into()],
        strategy: Strategy::SimpleShuffle,
        cooldown: cooldown(),
        max_response_bytes: 16 << 20,
        expose_api_base: true,
        replicas: false,
        catalog: Default::default(),
    }
}

pub fn group(route_value: &str, deployments: &[&str]) -> GroupConfig {
    GroupConfig {
        route: route_value.into(),
        deployments: deployments.iter().map(|d| route(d)).collect(),
        strategy: Strategy::SimpleShuffle,
        num_retries: 2,
        retry_policy: ClassLimits::default(),
        fallbacks: vec![],
        context_window_fallbacks: vec![],
        content_policy_fallbacks: vec![],
        forward_client_headers: false,
        cooldown: cooldown(),
        access_groups: vec![],
    }
}

/// A gateway with group `groups[0]` of `deployments` deployments and `extra` more groups.
pub fn gateway_config(name: &str, deployments: &[&str], extra: usize) -> GatewayConfig {
    let mut groups = BTreeMap::new();
    groups.insert(name.to_string(), group("0", deployments));
    for i in 0..extra {
        groups.insert(format!("model-{i}"), group(&(i + 1).to_string(), &["x"]));
    }
    GatewayConfig {
        log_messages: false,
        tag_filtering: false,
        key_header: None,
        enforce_user: false,
        groups,
        aliases: BTreeMap::new(),
        master_key_env: Some("MK".into()),
        max_request_bytes: 16 << 20,
        max_parallel_requests: None,
        forward: ForwardPolicy::default(),
        max_fallbacks: 5,
        pre_call_checks: false,
        key_cache_ttl_ms: 60_000,
        cache: None,
        fleet_limits: false,
    }
}
