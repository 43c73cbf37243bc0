//! What the CLI shows about a config: model groups, deployments, the master key variable.

use switchyard_config::load::provider_of;
use switchyard_config::model::{ModelEntry, Secret};
use switchyard_config::{Provider, ProxyConfig};

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
    let names = || config.model_list.iter().map(|m| m.model_name.as_str());
    // A pattern (`openai/*`) is no model: the first concrete name, else the first pattern
    // with MODEL for its `*`.
    names()
        .find(|n| !switchyard_config::wildcard::is_pattern(n))
        .or_else(|| names().next())
        .map(|n| n.replace('*', "MODEL"))
}

/// The variable to show in `Authorization: Bearer $VAR` hints.
pub fn master_key_variable(config: &ProxyConfig) -> String {
    match &config.general_settings.master_key {
        Some(Secret::Env(var)) => var.clone(),
        _ => "LITELLM_MASTER_KEY".to_string(),
    }
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

/// Model groups in config order, each with its deployments: as resolved for the filter
/// (provider defaults and `os.environ/` api_bases read now), else as written.
pub fn groups(config: &ProxyConfig) -> Vec<GroupSummary> {
    let deployments: Vec<(String, DeploymentSummary)> =
        match config.resolve_deployments(("127.0.0.1", 4001)) {
            Ok(resolved) => resolved
                .into_iter()
                .map(|r| {
                    let host = if r.config.provider == Provider::Demo {
                        "the sidecar (built-in demo, no LLM)".to_string()
                    } else {
                        r.config.authority
                    };
                    let summary = DeploymentSummary {
                        provider: r.config.provider.name().to_string(),
                        model: r.config.model,
                        host: Some(host),
                    };
                    (r.config.group, summary)
                })
                .collect(),
            Err(_) => config.model_list.iter().map(as_written).collect(),
        };
    let mut groups: Vec<GroupSummary> = Vec::new();
    for (name, deployment) in deployments {
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

fn as_written(entry: &ModelEntry) -> (String, DeploymentSummary) {
    let params = &entry.litellm_params;
    let (provider, model, default_base) = match provider_of(&params.model) {
        Ok((p, m)) => (
            p.name().to_string(),
            m.to_string(),
            (p.info().default_api_base)(&Default::default()),
        ),
        Err(_) => ("?".to_string(), params.model.clone(), None),
    };
    let summary = DeploymentSummary {
        provider,
        model,
        host: match &params.api_base {
            Some(base) => Some(
                base.urls()
                    .into_iter()
                    .map(url_host)
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            None => default_base.as_deref().map(url_host),
        },
    };
    (entry.model_name.clone(), summary)
}

/// `api.openai.com` from `https://api.openai.com/v1`; `$VAR` from `os.environ/VAR`.
fn url_host(url: &str) -> String {
    if let Some(var) = url.strip_prefix("os.environ/") {
        return format!("${var}");
    }
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
        assert_eq!(url_host("os.environ/MY_BASE"), "$MY_BASE");
    }
}
