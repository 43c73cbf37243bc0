//! From config.yaml to the deployments the filter serves: provider defaults, `os.environ/`
//! references and the environment variables LiteLLM reads, resolved now.

use sha2::{Digest, Sha256};

use crate::contract::{Auth, DeploymentConfig, Endpoint, ProviderParams};
use crate::load::{provider_of, ConfigError};
use crate::model::{LitellmParams, ModelEntry, ProxyConfig, Secret};
use crate::provider::{AuthKind, Provider, Setting};

/// LiteLLM's default request timeout is long; streamed answers can take minutes.
pub const DEFAULT_TIMEOUT_SECS: f64 = 600.0;

/// OpenAI request parameters a deployment's litellm_params may set: they fill in what a
/// request leaves out.
pub const DEFAULT_PARAMS: &[&str] = &[
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "top_p",
    "stop",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "n",
    "logit_bias",
    "response_format",
    "reasoning_effort",
    "user",
    "dimensions",
    "encoding_format",
];

/// A secret the VM's environment must hold: a variable the operator provides, or a literal
/// from config.yaml handed to Envoy in a variable of our own (never written to a file).
#[derive(Clone, PartialEq)]
pub struct SecretVar {
    pub var: String,
    /// The value, when config.yaml wrote it literally.
    pub literal: Option<String>,
}

impl std::fmt::Debug for SecretVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.literal {
            Some(_) => write!(f, "{}=<literal secret>", self.var),
            None => f.write_str(&self.var),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Resolved {
    /// Position in model_list.
    pub index: usize,
    pub config: DeploymentConfig,
    /// The variables its credentials are read from.
    pub secrets: Vec<SecretVar>,
    /// A Vertex AI service account the sidecar mints tokens from (a file path or the JSON).
    pub service_account: Option<Secret>,
    /// The api_base hosts: one, or several replicas of one server.
    pub hosts: Vec<Host>,
    pub weight: u32,
    /// litellm_params.timeout, when set.
    pub timeout_ms: Option<u64>,
    /// litellm_params.stream_timeout, when set.
    pub stream_timeout_ms: Option<u64>,
    /// Its prices (also in `config.prices`), where they came from, and its context window.
    pub pricing: crate::prices::DeploymentPrices,
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
        ("drop_params", p.drop_params.map(|v| v.to_string())),
        ("aws_region_name", p.aws_region_name.clone()),
        (
            "aws_bedrock_runtime_endpoint",
            p.aws_bedrock_runtime_endpoint.clone(),
        ),
        ("vertex_project", p.vertex_project.clone()),
        ("vertex_location", p.vertex_location.clone()),
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
        // router_settings.default_litellm_params: under the deployment's own.
        for (k, v) in config
            .router_settings
            .default_litellm_params
            .iter()
            .flatten()
        {
            if DEFAULT_PARAMS.contains(&k.as_str()) && !d.config.defaults.contains_key(k) {
                d.config.defaults.insert(k.clone(), v.clone());
            }
        }
        d.config.drop_params = entry
            .litellm_params
            .drop_params
            .or(config.litellm_settings.drop_params)
            .unwrap_or(false);
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
    let setting = |s: Option<Setting>| -> Result<Option<String>, (String, String)> {
        let Some(s) = s else { return Ok(None) };
        let value = text(&param(p, s.param), env).map_err(at(s.param))?;
        Ok(value
            .or_else(|| s.envs.iter().find_map(|v| env(v)))
            .or_else(|| s.default.map(str::to_string)))
    };
    let params = ProviderParams {
        api_version: setting(info.api_version)?,
        region: setting(info.region)?,
        project: setting(info.project)?,
        location: setting(info.location)?,
    };
    if let (Some(s), None) = (info.project, &params.project) {
        return Err(at(s.param)(format!(
            "{} deployments need a project (deployment \"{}\"); set it here or in {}",
            provider.name(),
            entry.model_name,
            s.envs.join(" or ")
        )));
    }
    let api_base = match (provider, &p.aws_bedrock_runtime_endpoint) {
        (Provider::Bedrock, Some(endpoint)) => Some(crate::model::ApiBase::One(endpoint.clone())),
        _ => p.api_base.clone(),
    };
    let urls: Vec<String> = match provider {
        Provider::Demo => vec![format!("http://{}:{}/demo/v1", sidecar.0, sidecar.1)],
        _ => match &api_base {
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
                .or_else(|| (info.default_api_base)(&params))
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
    let (auth, secrets, service_account) = credentials(index, p, provider, env);
    let pricing = crate::prices::deployment_prices(entry, params.region.as_deref());
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
            auth,
            params,
            organization: text(&p.organization, env).map_err(at("organization"))?,
            headers,
            defaults: p
                .extra
                .iter()
                .filter(|(k, _)| DEFAULT_PARAMS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            system_prompt: p
                .litellm_system_prompt
                .clone()
                .filter(|s| !s.trim().is_empty()),
            drop_params: false,
            prices: pricing.prices,
        },
        secrets,
        service_account,
        hosts,
        weight: p.weight.map_or(1, |w| (w.round() as u32).max(1)),
        timeout_ms: p.timeout.map(secs_to_ms),
        stream_timeout_ms: p.stream_timeout.map(secs_to_ms),
        pricing,
    })
}

/// A provider setting's litellm_params value, by the name the provider table gives it.
fn param(p: &LitellmParams, name: &str) -> Option<String> {
    match name {
        "api_version" => p.api_version.clone(),
        "aws_region_name" => p.aws_region_name.clone(),
        "vertex_project" => p.vertex_project.clone(),
        "vertex_location" => p.vertex_location.clone(),
        _ => None,
    }
}

/// A secret from litellm_params (`os.environ/VAR` or a literal), else from the first of
/// `envs`, as LiteLLM reads it. Literals go into `SWITCHYARD_KEY_<index>[_<suffix>]`.
fn secret_var(
    index: usize,
    suffix: &str,
    value: Option<&Secret>,
    envs: &[&str],
) -> Option<SecretVar> {
    match value {
        Some(Secret::Env(var)) => Some(SecretVar {
            var: var.clone(),
            literal: None,
        }),
        Some(Secret::Literal(v)) => Some(SecretVar {
            var: literal_key_var(index, suffix),
            literal: Some(v.clone()),
        }),
        None => envs.first().map(|v| SecretVar {
            var: (*v).to_string(),
            literal: None,
        }),
    }
}

/// The deployment's credentials: where they are read, and the variables that hold them.
fn credentials(
    index: usize,
    p: &LitellmParams,
    provider: Provider,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Auth, Vec<SecretVar>, Option<Secret>) {
    let info = provider.info();
    match info.auth {
        _ if provider == Provider::Demo => (Auth::None, vec![], None),
        AuthKind::Key => {
            let envs: Vec<&str> = info.api_key_env.into_iter().collect();
            match secret_var(index, "", p.api_key.as_ref(), &envs) {
                Some(s) => (Auth::Key { env: s.var.clone() }, vec![s], None),
                None => (Auth::None, vec![], None),
            }
        }
        AuthKind::Aws => {
            let id = secret_var(
                index,
                "AWS_ACCESS_KEY_ID",
                p.aws_access_key_id.as_ref(),
                &["AWS_ACCESS_KEY_ID"],
            );
            let secret = secret_var(
                index,
                "AWS_SECRET_ACCESS_KEY",
                p.aws_secret_access_key.as_ref(),
                &["AWS_SECRET_ACCESS_KEY"],
            );
            // A session token only when one is configured or the environment has one.
            let session = match &p.aws_session_token {
                Some(t) => secret_var(index, "AWS_SESSION_TOKEN", Some(t), &[]),
                None if env("AWS_SESSION_TOKEN").is_some() => {
                    secret_var(index, "", None, &["AWS_SESSION_TOKEN"])
                }
                None => None,
            };
            match (id, secret) {
                (Some(id), Some(secret)) => {
                    let auth = Auth::Aws {
                        access_key_id_env: id.var.clone(),
                        secret_access_key_env: secret.var.clone(),
                        session_token_env: session.as_ref().map(|s| s.var.clone()),
                    };
                    let mut vars = vec![id, secret];
                    vars.extend(session);
                    (auth, vars, None)
                }
                _ => (Auth::None, vec![], None),
            }
        }
        AuthKind::Google => {
            let account = p
                .vertex_credentials
                .clone()
                .or_else(|| env("GOOGLE_APPLICATION_CREDENTIALS").map(Secret::Literal));
            match (account, &p.api_key) {
                (Some(account), _) => (Auth::GoogleServiceAccount, vec![], Some(account)),
                (None, key) => {
                    match secret_var(index, "", key.as_ref(), &["VERTEXAI_ACCESS_TOKEN"]) {
                        Some(s) => (Auth::GoogleToken { env: s.var.clone() }, vec![s], None),
                        None => (Auth::None, vec![], None),
                    }
                }
            }
        }
    }
}

/// The endpoints a deployment serves: its provider's, narrowed by `model_info.mode` when
/// set. Without a mode, a provider with its own API serves embeddings from embedding models
/// only (their names say `embed`) and the rest from the others; an OpenAI-compatible server
/// is taken at its word for every endpoint.
pub fn endpoints(provider: Provider, model: &str, mode: Option<&str>) -> Vec<Endpoint> {
    let served = provider.info().endpoints;
    let wanted: &[Endpoint] = match mode {
        Some("embedding") => &[Endpoint::Embeddings],
        Some("chat") | Some("completion") => &[
            Endpoint::ChatCompletions,
            Endpoint::Completions,
            Endpoint::CountTokens,
        ],
        _ if provider.wire() == crate::provider::Wire::OpenAi
            || provider.wire() == crate::provider::Wire::Azure =>
        {
            &Endpoint::ALL
        }
        _ if model.to_ascii_lowercase().contains("embed") => &[Endpoint::Embeddings],
        _ => &[
            Endpoint::ChatCompletions,
            Endpoint::Completions,
            Endpoint::CountTokens,
        ],
    };
    let mut endpoints: Vec<Endpoint> = served
        .iter()
        .copied()
        .filter(|e| wanted.contains(e))
        .collect();
    // Stored responses are read where the provider's own Responses API made them.
    if provider.speaks(model).contains(&crate::Dialect::Responses)
        && endpoints.contains(&Endpoint::ChatCompletions)
    {
        endpoints.push(Endpoint::StoredResponse);
    }
    endpoints
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

/// The variable `up` puts a literal secret from config.yaml into (`suffix` tells apart a
/// deployment's several secrets).
pub fn literal_key_var(index: usize, suffix: &str) -> String {
    if suffix.is_empty() {
        format!("SWITCHYARD_KEY_{index}")
    } else {
        format!("SWITCHYARD_KEY_{index}_{suffix}")
    }
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
