//! From config.yaml to the deployments the filter serves: provider defaults, `os.environ/`
//! references and the environment variables LiteLLM reads, resolved now.

use sha2::{Digest, Sha256};

use crate::contract::DeploymentConfig;
use crate::load::{provider_of, ConfigError};
use crate::model::{ModelEntry, ProxyConfig, Secret};
use crate::provider::Provider;

/// Azure's api-version when neither the deployment nor AZURE_API_VERSION sets one.
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";
/// LiteLLM's default request timeout is long; streamed answers can take minutes.
pub const DEFAULT_TIMEOUT_SECS: f64 = 600.0;

/// Where a deployment's key comes from.
#[derive(Clone, PartialEq)]
pub enum KeySource {
    /// An environment variable the operator provides.
    Env(String),
    /// A literal from config.yaml: handed to Envoy in a variable of our own, never written.
    Literal(String),
    None,
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env(v) => write!(f, "Env({v})"),
            KeySource::Literal(_) => f.write_str("Literal(<secret>)"),
            KeySource::None => f.write_str("None"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Resolved {
    /// Position in model_list.
    pub index: usize,
    pub config: DeploymentConfig,
    pub key: KeySource,
    pub host: String,
    pub port: u16,
    pub weight: u32,
    pub timeout_ms: u64,
    pub stream_timeout_ms: u64,
}

/// A URL split into scheme, host, port and path (without trailing slash).
pub fn split_url(url: &str) -> Result<(String, String, u16, String), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("\"{url}\" is not a URL: it needs http:// or https://"))?;
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return Err(format!("\"{url}\": the scheme must be http or https")),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if path.contains('?') {
        return Err(format!("\"{url}\": an api_base takes no query string"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("\"{url}\": bad port \"{p}\""))?,
        ),
        _ => (authority, default_port),
    };
    if host.is_empty() || host.contains('@') {
        return Err(format!("\"{url}\": no host"));
    }
    Ok((
        scheme.to_string(),
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
        path.trim_end_matches('/').to_string(),
    ))
}

fn text(
    value: &Option<String>,
    field: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    match value {
        None => Ok(None),
        Some(v) => match v.strip_prefix("os.environ/") {
            Some(var) => env(var).map(Some).ok_or_else(|| {
                format!("{field} refers to {var}, which is not set in the environment")
            }),
            None => Ok(Some(v.clone())),
        },
    }
}

fn secs_to_ms(secs: f64) -> u64 {
    (secs * 1000.0).round() as u64
}

fn deployment_id(entry: &ModelEntry) -> String {
    if let Some(id) = &entry.model_info.id {
        return id.clone();
    }
    // Stable across restarts, and never derived from a secret.
    let p = &entry.litellm_params;
    let mut h = Sha256::new();
    for part in [
        entry.model_name.as_str(),
        p.model.as_str(),
        p.api_base.as_deref().unwrap_or(""),
        p.api_version.as_deref().unwrap_or(""),
        p.organization.as_deref().unwrap_or(""),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every deployment of the config. `sidecar` is where the demo provider is served.
pub fn deployments(
    config: &ProxyConfig,
    sidecar: (&str, u16),
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Resolved>, ConfigError> {
    config
        .model_list
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            resolve_one(config, index, entry, sidecar, env).map_err(|(field, msg)| {
                ConfigError::at(format!("model_list[{index}].{field}"), msg)
            })
        })
        .collect()
}

fn resolve_one(
    config: &ProxyConfig,
    index: usize,
    entry: &ModelEntry,
    sidecar: (&str, u16),
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, (&'static str, String)> {
    let p = &entry.litellm_params;
    let (provider, model) = provider_of(&p.model).map_err(|e| ("litellm_params.model", e))?;
    let info = provider.info();
    let api_base = match provider {
        Provider::Demo => format!("http://{}:{}/demo/v1", sidecar.0, sidecar.1),
        _ => {
            let configured =
                text(&p.api_base, "api_base", env).map_err(|e| ("litellm_params.api_base", e))?;
            configured
                .or_else(|| info.api_base_env.and_then(env))
                .or_else(|| info.default_api_base.map(str::to_string))
                .ok_or_else(|| {
                    (
                        "litellm_params.api_base",
                        format!(
                            "{} deployments need an api_base (deployment \"{}\"); set it here or in {}",
                            provider.name(),
                            entry.model_name,
                            info.api_base_env.unwrap_or("the config")
                        ),
                    )
                })?
        }
    };
    let (scheme, host, port, base_path) =
        split_url(&api_base).map_err(|e| ("litellm_params.api_base", e))?;
    let api_version = match provider {
        Provider::Azure => Some(
            text(&p.api_version, "api_version", env)
                .map_err(|e| ("litellm_params.api_version", e))?
                .or_else(|| env("AZURE_API_VERSION"))
                .unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.to_string()),
        ),
        _ => text(&p.api_version, "api_version", env)
            .map_err(|e| ("litellm_params.api_version", e))?,
    };
    let key = match (&p.api_key, provider) {
        (_, Provider::Demo) => KeySource::None,
        (Some(Secret::Env(var)), _) => KeySource::Env(var.clone()),
        (Some(Secret::Literal(v)), _) => KeySource::Literal(v.clone()),
        (None, _) => info
            .api_key_env
            .map_or(KeySource::None, |v| KeySource::Env(v.to_string())),
    };
    let key_env = match &key {
        KeySource::Env(var) => Some(var.clone()),
        KeySource::Literal(_) => Some(literal_key_var(index)),
        KeySource::None => None,
    };
    let mut headers = Vec::new();
    for map in [&p.headers, &p.extra_headers].into_iter().flatten() {
        for (name, value) in map {
            let value = text(&Some(value.clone()), name, env)
                .map_err(|e| ("litellm_params.extra_headers", e))?;
            headers.push((name.to_ascii_lowercase(), value.unwrap_or_default()));
        }
    }
    let default_timeout = config
        .router_settings
        .timeout
        .or(config.litellm_settings.request_timeout)
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    let timeout = p.timeout.unwrap_or(default_timeout);
    let authority = if port == if scheme == "https" { 443 } else { 80 } {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    Ok(Resolved {
        index,
        config: DeploymentConfig {
            id: deployment_id(entry),
            group: entry.model_name.clone(),
            provider,
            model: model.to_string(),
            scheme,
            authority,
            base_path,
            api_version,
            auth: info.auth,
            key_env,
            organization: text(&p.organization, "organization", env)
                .map_err(|e| ("litellm_params.organization", e))?,
            headers,
        },
        key,
        host,
        port,
        weight: p.weight.map_or(1, |w| (w.round() as u32).max(1)),
        timeout_ms: secs_to_ms(timeout),
        stream_timeout_ms: secs_to_ms(p.stream_timeout.unwrap_or(timeout)),
    })
}

/// The variable `up` puts a literal api_key from config.yaml into.
pub fn literal_key_var(index: usize) -> String {
    format!("SWITCHYARD_KEY_{index}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_str;
    use crate::provider::AuthStyle;

    fn env(name: &str) -> Option<String> {
        match name {
            "AZ_BASE" => Some("https://res.openai.azure.com/".into()),
            "HOSTED_VLLM_API_BASE" => Some("http://vllm:8000/v1".into()),
            _ => None,
        }
    }

    fn resolve(yaml: &str) -> Result<Vec<Resolved>, ConfigError> {
        deployments(
            &load_str(yaml, None).unwrap().config,
            ("127.0.0.1", 4001),
            &env,
        )
    }

    #[test]
    fn urls() {
        assert_eq!(
            split_url("https://api.openai.com/v1/").unwrap(),
            ("https".into(), "api.openai.com".into(), 443, "/v1".into())
        );
        assert_eq!(
            split_url("http://127.0.0.1:8000").unwrap(),
            ("http".into(), "127.0.0.1".into(), 8000, "".into())
        );
        assert!(split_url("api.openai.com").is_err());
        assert!(split_url("ftp://x").is_err());
        assert!(split_url("http://x:port").is_err());
    }

    #[test]
    fn every_provider_has_its_defaults() {
        for p in Provider::all() {
            let info = p.info();
            let yaml = format!("model_list:\n  - model_name: m\n    litellm_params:\n      model: {}/some-model\n      api_base: http://h:1/v1\n", p.name());
            let d = &resolve(&yaml).unwrap()[0];
            assert_eq!(d.config.provider, p);
            assert_eq!(d.config.model, "some-model");
            if p != Provider::Demo {
                assert_eq!(
                    (d.host.as_str(), d.port, d.config.base_path.as_str()),
                    ("h", 1, "/v1"),
                    "{p:?}"
                );
                assert_eq!(d.config.key_env.as_deref(), info.api_key_env, "{p:?}");
            }
            if let Some(base) = info.default_api_base {
                let yaml = format!(
                    "model_list:\n  - model_name: m\n    litellm_params:\n      model: {}/x\n",
                    p.name()
                );
                let d = &resolve(&yaml).unwrap()[0];
                let (scheme, host, _, path) = split_url(base).unwrap();
                assert_eq!(
                    (
                        d.config.scheme.as_str(),
                        d.host.as_str(),
                        d.config.base_path.as_str()
                    ),
                    (scheme.as_str(), host.as_str(), path.as_str()),
                    "{p:?}"
                );
            }
        }
    }

    #[test]
    fn azure_vllm_demo_and_keys() {
        let ds = resolve(
            "model_list:
  - model_name: a
    litellm_params: {model: azure/my-deploy, api_base: os.environ/AZ_BASE, api_key: literal-secret}
  - model_name: v
    litellm_params: {model: hosted_vllm/meta-llama/Llama-3.1-8B, timeout: 2.5, weight: 3}
  - model_name: d
    litellm_params: {model: switchyard_demo/demo}
",
        )
        .unwrap();
        let a = &ds[0];
        assert_eq!(
            a.config.api_version.as_deref(),
            Some(DEFAULT_AZURE_API_VERSION)
        );
        assert_eq!(a.config.auth, AuthStyle::ApiKeyHeader);
        assert_eq!(a.config.authority, "res.openai.azure.com");
        assert_eq!(a.key, KeySource::Literal("literal-secret".into()));
        assert_eq!(a.config.key_env.as_deref(), Some("SWITCHYARD_KEY_0"));
        assert!(!format!("{a:?}").contains("literal-secret"));
        let v = &ds[1];
        assert_eq!(
            (v.host.as_str(), v.port, v.config.model.as_str()),
            ("vllm", 8000, "meta-llama/Llama-3.1-8B")
        );
        assert_eq!(
            (v.timeout_ms, v.stream_timeout_ms, v.weight),
            (2500, 2500, 3)
        );
        let d = &ds[2];
        assert_eq!(
            (d.config.authority.as_str(), d.config.base_path.as_str()),
            ("127.0.0.1:4001", "/demo/v1")
        );
        assert_eq!(d.key, KeySource::None);
        assert_ne!(a.config.id, v.config.id);
    }

    #[test]
    fn unresolvable_values_are_errors_naming_the_field() {
        let e = resolve("model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, api_base: os.environ/NOPE}\n").unwrap_err();
        assert_eq!(
            e.path.as_deref(),
            Some("model_list[0].litellm_params.api_base")
        );
        assert!(e.message.contains("NOPE"));
        let e = resolve("model_list:\n  - model_name: a\n    litellm_params: {model: azure/x}\n")
            .unwrap_err();
        assert!(e.message.contains("AZURE_API_BASE"), "{e}");
    }
}
