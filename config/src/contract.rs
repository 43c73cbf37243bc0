//! The typed contract between the renderer, the two filter roles and the sidecar.
//!
//! The renderer turns config.yaml into one [`FilterConfig`] per role, serialised as JSON into
//! the wasm plugin configuration. Secrets never appear here: only the names of the
//! environment variables (of the wasm VM) that hold them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::provider::{AuthStyle, Provider};

/// Request header the gateway role sets; the route's `cluster_header` reads it.
pub const CLUSTER_HEADER: &str = "x-switchyard-cluster";
/// Response header the provider role sets when it turned a provider status into a retriable
/// one (429 → 503); the gateway role restores the original status for the client.
pub const UPSTREAM_STATUS_HEADER: &str = "x-switchyard-upstream-status";
/// Response header the provider role sets on every upstream answer it handled, so the
/// gateway role can tell a provider's answer from an Envoy local reply.
pub const DEPLOYMENT_HEADER: &str = "x-litellm-model-id";
/// Filter-state property (set downstream, read upstream) carrying [`RequestInfo`].
pub const REQUEST_INFO_PROPERTY: &str = "switchyard_request";
/// Endpoint metadata namespace; key `deployment` holds the deployment id.
pub const METADATA_NAMESPACE: &str = "switchyard";
/// Internal request headers the gateway strips from every client request.
pub const INTERNAL_HEADERS: &[&str] = &[CLUSTER_HEADER, UPSTREAM_STATUS_HEADER];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Downstream, once per request: auth, model resolution, routing.
    Gateway,
    /// Upstream, once per attempt: translation to and from the provider.
    Provider,
}

/// The wasm plugin configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilterConfig {
    pub role: Role,
    /// model_name → group.
    #[serde(default)]
    pub groups: BTreeMap<String, GroupConfig>,
    /// model_group_alias: alias → model_name.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// deployment id → deployment.
    #[serde(default)]
    pub deployments: BTreeMap<String, DeploymentConfig>,
    /// Name of the VM environment variable holding general_settings.master_key, if set.
    #[serde(default)]
    pub master_key_env: Option<String>,
    /// Bodies above this size get 413.
    pub max_request_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupConfig {
    /// Envoy cluster serving this group.
    pub cluster: String,
    /// Whole-request timeout for non-streaming requests.
    pub timeout_ms: u64,
    /// Whole-request timeout for streaming requests.
    pub stream_timeout_ms: u64,
    /// Deployment ids, in config order.
    pub deployments: Vec<String>,
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
    #[serde(default)]
    pub api_version: Option<String>,
    pub auth: AuthStyle,
    /// VM environment variable holding the provider key; None sends no key.
    #[serde(default)]
    pub key_env: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
    /// Extra headers from litellm_params.extra_headers / headers.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

/// The OpenAI endpoints that reach a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
}

impl Endpoint {
    /// Path under the api_base, OpenAI style.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
        }
    }
}

/// What the gateway role decided about a request, read by the provider role on every attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestInfo {
    pub endpoint: Endpoint,
    /// The model name the client asked for (before aliases); the answer carries it back.
    pub requested_model: String,
    /// The model group (model_name) serving it.
    pub group: String,
    #[serde(default)]
    pub stream: bool,
}
