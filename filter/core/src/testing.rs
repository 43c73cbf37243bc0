//! Test helpers shared by the unit tests.

use switchyard_config::{ClassLimits, DeploymentRoute, Endpoint, RequestInfo};

/// A chat request for model group "g" (asked for as "g") with this plan.
pub fn info(plan: &[&str]) -> RequestInfo {
    RequestInfo {
        endpoint: Endpoint::ChatCompletions,
        requested_model: "g".into(),
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
    }
}

/// A deployment as the gateway plans with it: no weights, limits or prices, 60 s timeouts.
pub fn route(id: &str) -> DeploymentRoute {
    DeploymentRoute {
        id: id.into(),
        weight: None,
        rpm: None,
        tpm: None,
        input_cost_per_token: None,
        output_cost_per_token: None,
        max_input_tokens: None,
        timeout_ms: 60_000,
        stream_timeout_ms: 60_000,
        max_retries: None,
    }
}
