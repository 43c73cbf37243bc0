//! What the CLI shows about a config: model groups, deployments, the master key variable.

use switchyard_config::ProxyConfig;

/// The host a client on this machine should use for a listener bound to `host`.
pub fn client_host(host: &str) -> String {
    match host {
        "0.0.0.0" | "" => "127.0.0.1".to_string(),
        "::" => "[::1]".to_string(),
        h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
        h => h.to_string(),
    }
}

/// The first model_name, for the example request.
pub fn first_model_name(config: &ProxyConfig) -> Option<String> {
    groups(config).into_iter().next().map(|g| g.name)
}

/// The variable to show in `Authorization: Bearer $VAR` hints.
pub fn master_key_variable(_config: &ProxyConfig) -> String {
    "LITELLM_MASTER_KEY".to_string()
}

pub struct GroupSummary {
    pub name: String,
    pub deployments: Vec<DeploymentSummary>,
}

pub struct DeploymentSummary {
    pub provider: String,
    pub model: String,
    /// Host of the api_base, when known.
    pub host: Option<String>,
}

/// Model groups in config order, each with its deployments.
pub fn groups(config: &ProxyConfig) -> Vec<GroupSummary> {
    // Read through serde until the config crate's model lands.
    let value = serde_json::to_value(config).unwrap_or_default();
    let mut groups: Vec<GroupSummary> = Vec::new();
    for entry in value["model_list"].as_array().into_iter().flatten() {
        let name = entry["model_name"].as_str().unwrap_or_default().to_string();
        let params = &entry["litellm_params"];
        let full = params["model"].as_str().unwrap_or_default();
        let (provider, model) = full.split_once('/').unwrap_or(("openai", full));
        let deployment = DeploymentSummary {
            provider: provider.to_string(),
            model: model.to_string(),
            host: params["api_base"].as_str().map(url_host),
        };
        match groups.iter_mut().find(|g| g.name == name) {
            Some(group) => group.deployments.push(deployment),
            None => groups.push(GroupSummary {
                name,
                deployments: vec![deployment],
            }),
        }
    }
    groups
}

/// `api.openai.com` from `https://api.openai.com/v1`.
fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap_or(rest).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(url_host("https://api.openai.com/v1"), "api.openai.com");
        assert_eq!(url_host("http://127.0.0.1:8000"), "127.0.0.1:8000");
        assert_eq!(client_host("0.0.0.0"), "127.0.0.1");
        assert_eq!(client_host("::1"), "[::1]");
    }
}
