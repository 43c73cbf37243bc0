//! Test helpers shared by the unit tests.

use switchyard_config::{ClassLimits, Endpoint, RequestInfo};

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
        origin: "http://gw:4000/v1/chat/completions".into(),
        client: Default::default(),
        forward_x_headers: false,
        strip_params: false,
    }
}
