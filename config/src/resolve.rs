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
    /// The api_base hosts: one, or several replicas of one server.
    pub hosts: Vec<Host>,
    pub weight: u32,
    /// litellm_params.timeout, when set.
    pub timeout_ms: Option<u64>,
    /// litellm_params.stream_timeout, when set.
    pub stream_timeout_ms: Option<u64>,
}

/// One host of a deployment's api_base.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub name: String,
    pub port: u16,
    /// `host` or `host:port`, as `:authority` carries it.
    pub authority: String,
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
    let bad_port = |p: &str| format!("\"{url}\": bad port \"{p}\"");
    // `[v6]:port` keeps its colons inside the brackets.
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, rest) = v6
                .split_once(']')
                .ok_or_else(|| format!("\"{url}\": unclosed [ in the host"))?;
            match rest.strip_prefix(':') {
                Some(p) => (host, p.parse::<u16>().map_err(|_| bad_port(p))?),
                None if rest.is_empty() => (host, default_port),
                None => return Err(format!("\"{url}\": unexpected \"{rest}\" after the host")),
            }
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad_port(p))?),
            None => (authority, default_port),
        },
    };
    if host.is_empty() || host.contains('@') {
        return Err(format!("\"{url}\": no host"));
    }
    Ok((
        scheme.to_string(),
        host.to_string(),
        port,
        path.trim_end_matches('/').to_string(),
    ))
}

/// A non-secret value, with `os.environ/VAR` read now.
fn text(
    value: &Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    match value {
        None => Ok(None),
        Some(v) => match v.strip_prefix("os.environ/") {
            Some(var) => env(var).map(Some).ok_or_else(|| {
                format!("refers to os.environ/{var}, but {var} is not set in the environment")
            }),
            None => Ok(Some(v.clone())),
        },
    }
}

fn secs_to_ms(secs: f64) -> u64 {
    (secs * 1000.0).round() as u64
}

/// model_info.id, else the first 12 hex digits of a SHA-256 over model_name and the
/// litellm_params, secrets left out: stable across restarts while the entry is unchanged.
fn deployment_id(entry: &ModelEntry) -> String {
    if let Some(id) = &entry.model_info.id {
        return id.clone();
    }
    let p = &entry.litellm_params;
    let api_base = p
        .api_base
        .as_ref()
        .map(|b| b.urls().join(","))
        .unwrap_or_default();
    let mut h = Sha256::new();
    let mut part = |bytes: &[u8]| {
        h.update(bytes);
        h.update([0]);
    };
    for fixed in [
        entry.model_name.as_str(),
        p.model.as_str(),
        api_base.as_str(),
        p.api_version.as_deref().unwrap_or(""),
        p.organization.as_deref().unwrap_or(""),
    ] {
        part(fixed.as_bytes());
    }
    // Parameters that are set add `name=value`, so adding one to the hash later leaves the ids
    // of configs without it unchanged.
    let number = |v: Option<f64>| v.map(|v| v.to_string());
    let map = |m: &Option<std::collections::BTreeMap<String, String>>| {
        m.as_ref()
            .map(|m| serde_json::to_string(m).unwrap_or_default())
    };
    let optional = [
        (
            "api_key_env",
            p.api_key
                .as_ref()
                .and_then(Secret::env_var)
                .map(str::to_string),
        ),
        ("timeout", number(p.timeout)),
        ("stream_timeout", number(p.stream_timeout)),
        ("max_retries", p.max_retries.map(|v| v.to_string())),
        ("rpm", p.rpm.map(|v| v.to_string())),
        ("tpm", p.tpm.map(|v| v.to_string())),
        ("weight", number(p.weight)),
        ("extra_headers", map(&p.extra_headers)),
        ("headers", map(&p.headers)),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            part(format!("{name}={value}").as_bytes());
        }
    }
    for (name, value) in &p.extra {
        part(format!("{name}={value}").as_bytes());
    }
    h.finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The environment `os.environ/` references are read from: the config's own
/// environment_variables first (they override the process's, as in LiteLLM), then `env`.
pub fn layered_env<'a>(
    config: &'a ProxyConfig,
    env: &'a dyn Fn(&str) -> Option<String>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        config
            .environment_variables
            .get(name)
            .map(|v| v.0.clone())
            .or_else(|| env(name))
    }
}

/// Every deployment of the config, with its `os.environ/` references and the provider's
/// environment variables read through `env` (see [`layered_env`]). `sidecar` is where the
/// demo provider is served.
pub fn deployments(
    config: &ProxyConfig,
    sidecar: (&str, u16),
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Resolved>, ConfigError> {
    let mut out: Vec<Resolved> = Vec::new();
    for (index, entry) in config.model_list.iter().enumerate() {
        let at = |field: &str| format!("model_list[{index}].{field}");
        let mut d = resolve_one(index, entry, sidecar, env).map_err(|(field, msg)| {
            ConfigError::at(at(&field), msg).in_file(config.source.as_deref())
        })?;
        if out.iter().any(|o| o.config.id == d.config.id) {
            if entry.model_info.id.is_some() {
                return Err(ConfigError::at(
                    at("model_info.id"),
                    format!(
                        "\"{}\" is the id of another deployment; ids must be unique",
                        d.config.id
                    ),
                )
                .in_file(config.source.as_deref()));
            }
            // Identical entries apart from their secrets (two keys for one model).
            d.config.id = format!("{}-{index}", d.config.id);
        }
        out.push(d);
    }
    Ok(out)
}

fn resolve_one(
    index: usize,
    entry: &ModelEntry,
    sidecar: (&str, u16),
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, (String, String)> {
    let p = &entry.litellm_params;
    // Errors name the field under litellm_params.
    let at = |field: &str| {
        let path = format!("litellm_params.{field}");
        move |e: String| (path, e)
    };
    let (provider, model) = provider_of(&p.model).map_err(at("model"))?;
    let info = provider.info();
    let urls: Vec<String> = match provider {
        Provider::Demo => vec![format!("http://{}:{}/demo/v1", sidecar.0, sidecar.1)],
        _ => match &p.api_base {
            Some(base) => base
                .urls()
                .into_iter()
                .map(|u| {
                    text(&Some(u.to_string()), env)
                        .map(|v| v.unwrap_or_default())
                        .map_err(at("api_base"))
                })
                .collect::<Result<_, _>>()?,
            None => info
                .api_base_env
                .and_then(env)
                .or_else(|| info.default_api_base.map(str::to_string))
                .map(|u| vec![u])
                .ok_or_else(|| {
                    at("api_base")(format!(
                        "{} deployments need an api_base (deployment \"{}\"); set it here or in {}",
                        provider.name(),
                        entry.model_name,
                        info.api_base_env.unwrap_or("the config")
                    ))
                })?,
        },
    };
    let mut parts = Vec::with_capacity(urls.len());
    for url in &urls {
        parts.push(split_url(url).map_err(at("api_base"))?);
    }
    let Some((scheme, _, _, base_path)) = parts.first().cloned() else {
        return Err(at("api_base")(
            "is an empty list; give at least one URL".to_string(),
        ));
    };
    if parts
        .iter()
        .any(|(s, _, _, p)| *s != scheme || *p != base_path)
    {
        return Err(at("api_base")(
            "replicas must share the scheme and the path; only the host and port may differ"
                .to_string(),
        ));
    }
    let hosts: Vec<Host> = parts
        .into_iter()
        .map(|(scheme, host, port, _)| Host {
            authority: authority_of(&scheme, &host, port),
            name: host,
            port,
        })
        .collect();
    let first_authority = hosts
        .first()
        .map(|h| h.authority.clone())
        .unwrap_or_default();
    let api_version = text(&p.api_version, env).map_err(at("api_version"))?;
    let api_version = match provider {
        Provider::Azure => Some(
            api_version
                .or_else(|| env("AZURE_API_VERSION"))
                .unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.to_string()),
        ),
        _ => api_version,
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
    for (field, map) in [("headers", &p.headers), ("extra_headers", &p.extra_headers)] {
        for (name, value) in map.iter().flatten() {
            let value = text(&Some(value.clone()), env)
                .map_err(at(&format!("{field}.{name}")))?
                .unwrap_or_default();
            headers.push((name.to_ascii_lowercase(), value));
        }
    }
    Ok(Resolved {
        index,
        config: DeploymentConfig {
            id: deployment_id(entry),
            group: entry.model_name.clone(),
            provider,
            model: model.to_string(),
            authority: first_authority,
            scheme,
            base_path,
            api_version,
            auth: info.auth,
            key_env,
            organization: text(&p.organization, env).map_err(at("organization"))?,
            headers,
        },
        key,
        hosts,
        weight: p.weight.map_or(1, |w| (w.round() as u32).max(1)),
        timeout_ms: p.timeout.map(secs_to_ms),
        stream_timeout_ms: p.stream_timeout.map(secs_to_ms),
    })
}

/// `host` or `host:port` (default ports left out, IPv6 in brackets), as `:authority` carries it.
fn authority_of(scheme: &str, host: &str, port: u16) -> String {
    let bracketed = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    if port == if scheme == "https" { 443 } else { 80 } {
        bracketed
    } else {
        format!("{bracketed}:{port}")
    }
}

/// The group's timeouts: the longest its deployments set, else the config's defaults.
pub fn group_timeouts(config: &ProxyConfig, members: &[&Resolved]) -> (u64, u64) {
    let timeout_ms = members
        .iter()
        .filter_map(|d| d.timeout_ms)
        .max()
        .unwrap_or_else(|| secs_to_ms(default_timeout_secs(config)));
    let stream_timeout_ms = members
        .iter()
        .filter_map(|d| d.stream_timeout_ms)
        .max()
        .or(config.router_settings.stream_timeout.map(secs_to_ms))
        .unwrap_or(timeout_ms);
    (timeout_ms, stream_timeout_ms)
}

/// router_settings.timeout, else litellm_settings.request_timeout, else 600 s.
pub fn default_timeout_secs(config: &ProxyConfig) -> f64 {
    config
        .router_settings
        .timeout
        .or(config.litellm_settings.request_timeout)
        .unwrap_or(DEFAULT_TIMEOUT_SECS)
}

/// The variable `up` puts a literal api_key from config.yaml into.
pub fn literal_key_var(index: usize) -> String {
    format!("SWITCHYARD_KEY_{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            split_url("http://[::1]:8000/v1").unwrap(),
            ("http".into(), "::1".into(), 8000, "/v1".into())
        );
        assert_eq!(split_url("https://[::1]").unwrap().1, "::1");
        assert!(split_url("http://[::1").is_err());
        assert!(split_url("api.openai.com").is_err());
        assert!(split_url("ftp://x").is_err());
        assert!(split_url("http://x:port").is_err());
        assert!(split_url("http://x/v1?a=b").is_err());
        assert!(split_url("http:///v1").is_err());
        assert!(split_url("http://user@x/v1").is_err());
    }
}
