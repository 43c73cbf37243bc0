//! Reading config.yaml: parse, validate, and report what is kept but not acted on.
//!
//! `os.environ/VAR` references are kept as references here and resolved at render time
//! (`crate::resolve`), after the CLI has applied `environment_variables`.

use std::fmt;
use std::path::Path;

use crate::model::{Extra, ProxyConfig, Secret};
use crate::provider::{Provider, NOT_YET_SERVED};
use crate::settings::{self, Section, Status};

/// A problem that stops the config from being used: names the file, the field path and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file, when there is one.
    pub file: Option<String>,
    /// Dotted path of the field (`model_list[2].litellm_params.model`), when known.
    pub path: Option<String>,
    pub message: String,
}

impl ConfigError {
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            file: None,
            path: Some(path.into()),
            message: message.into(),
        }
    }

    /// Names the file, unless the error already does.
    pub fn in_file(mut self, file: Option<&str>) -> Self {
        if self.file.is_none() {
            self.file = file.map(str::to_string);
        }
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, &self.path) {
            (Some(file), Some(path)) => write!(f, "{file}: {path}: {}", self.message),
            (Some(file), None) => write!(f, "{file}: {}", self.message),
            (None, Some(path)) => write!(f, "{path}: {}", self.message),
            (None, None) => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Something kept but not acted on (an unknown key, a LiteLLM setting Switchyard ignores), or
/// worth knowing about a setting that is acted on.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    /// The included file it is in; None for the config itself.
    pub file: Option<String>,
    pub path: String,
    pub message: String,
    pub kind: WarningKind,
}

/// What a warning is about (`switchyard check --strict` fails on the first two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
    /// A LiteLLM setting, callback or cache type kept but not acted on.
    NotActedOn,
    /// A key no table of [`crate::settings`] knows: kept and ignored.
    Unknown,
    /// About a setting that is acted on (`ssl_verify: false`, a price not known, ...).
    Note,
}

impl Warning {
    /// Whether it is about something kept but not acted on, known or not.
    pub fn is_not_acted_on(&self) -> bool {
        matches!(self.kind, WarningKind::NotActedOn | WarningKind::Unknown)
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: ProxyConfig,
    pub warnings: Vec<Warning>,
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: Some(file.clone()),
        path: None,
        message: format!("cannot read: {e}"),
    })?;
    load_str(&text, Some(&file))
}

/// Parses and validates config text; `file` names it in errors, and its folder is where the
/// files of `include` are read from (the working directory without it).
pub fn load_str(text: &str, file: Option<&str>) -> Result<Loaded, ConfigError> {
    let mut config = parse(text, file)?;
    let mut notes = Vec::new();
    let origins = crate::include::read(&mut config, text, file, &mut notes)?;
    with_custom_providers(&mut config);
    let config = ProxyConfig {
        source: file.map(str::to_string),
        origins,
        ..config
    };
    let mut config = config;
    crate::credentials::apply(&mut config).map_err(|e| config.locate(e.in_file(file)))?;
    refuse(&config).map_err(|e| config.locate(e.in_file(file)))?;
    validate(&config, file).map_err(|e| config.locate(e))?;
    let mut warnings: Vec<Warning> = warnings(&config)
        .into_iter()
        .map(|w| match config.origins.find(&w.path) {
            Some((file, path)) => Warning {
                file: Some(file),
                path,
                ..w
            },
            None => w,
        })
        .collect();
    warnings.extend(notes);
    Ok(Loaded { config, warnings })
}

/// `custom_llm_provider: azure` with `model: gpt-4o` is `model: azure/gpt-4o`.
fn with_custom_providers(config: &mut ProxyConfig) {
    for entry in &mut config.model_list {
        let p = &mut entry.litellm_params;
        if let Some(provider) = p.custom_llm_provider.as_deref().map(str::trim) {
            let prefix = format!("{provider}/");
            if !provider.is_empty() && !p.model.starts_with(&prefix) {
                p.model = format!("{prefix}{}", p.model);
            }
        }
    }
}

/// One file's YAML as a config, without includes or validation.
pub(crate) fn parse(text: &str, file: Option<&str>) -> Result<ProxyConfig, ConfigError> {
    // An empty file is an empty config, as in LiteLLM.
    if text.trim().is_empty() {
        return Ok(ProxyConfig::default());
    }
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // The YAML error may already start with the path; say it once.
        let inner = inner
            .strip_prefix(&format!("{path}: "))
            .map(str::to_string)
            .unwrap_or(inner);
        ConfigError {
            file: file.map(str::to_string),
            path: (path != ".").then_some(path),
            message: inner,
        }
    })
}

/// The provider a `model` string names, or why it can't be served.
pub fn provider_of(model: &str) -> Result<(Provider, &str), String> {
    match model.split_once('/') {
        Some((prefix, rest)) => match Provider::from_prefix(prefix) {
            Some(p) if rest.is_empty() => Err(format!(
                "\"{model}\" names the provider {} but no model after the slash",
                p.name()
            )),
            Some(p) => Ok((p, rest)),
            None if NOT_YET_SERVED.contains(&prefix) => Err(format!(
                "provider \"{prefix}\" is not served by Switchyard yet; served today: {}",
                served()
            )),
            None if looks_like_openai(model) => Ok((Provider::Openai, model)),
            None => Err(format!(
                "unknown provider \"{prefix}\" in \"{model}\"; write it as provider/model with one of: {}",
                served()
            )),
        },
        None if looks_like_openai(model) => Ok((Provider::Openai, model)),
        None => Err(format!(
            "\"{model}\" has no provider prefix; write it as provider/model, e.g. openai/{model} or hosted_vllm/{model}"
        )),
    }
}

/// RFC 9110 token characters.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn looks_like_openai(model: &str) -> bool {
    [
        "gpt-",
        "o1",
        "o3",
        "o4",
        "chatgpt-",
        "text-embedding-",
        "davinci",
        "babbage",
    ]
    .iter()
    .any(|p| model.starts_with(p))
}

fn served() -> String {
    Provider::all()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks what does not depend on the environment.
pub fn validate(config: &ProxyConfig, file: Option<&str>) -> Result<(), ConfigError> {
    let mut ids = std::collections::BTreeSet::new();
    for (i, entry) in config.model_list.iter().enumerate() {
        let at = |field: &str| format!("model_list[{i}].{field}");
        let fail = |field: &str, msg: String| Err(ConfigError::at(at(field), msg).in_file(file));
        if entry.model_name.trim().is_empty() {
            return fail("model_name", "must not be empty".into());
        }
        let params = &entry.litellm_params;
        if params.model.trim() == "*" {
            return fail(
                "litellm_params.model",
                format!("\"*\" names no provider (deployment \"{}\"): each deployment is one provider's API (an Envoy cluster), so write one entry per provider under this model_name, with model: openai/*, anthropic/*, ...; a requested name with a provider's prefix goes to that provider, one without to OpenAI", entry.model_name),
            );
        }
        if crate::wildcard::is_pattern(&params.model)
            && !crate::wildcard::is_pattern(&entry.model_name)
        {
            return fail(
                "litellm_params.model",
                format!("\"{}\" has a `*` but model_name \"{}\" is no pattern, so nothing fills it: make model_name a pattern too (e.g. openai/*), or name the model", params.model, entry.model_name),
            );
        }
        if let Err(why) = provider_of(&params.model) {
            return fail(
                "litellm_params.model",
                format!("{why} (deployment \"{}\")", entry.model_name),
            );
        }
        for (field, value) in [
            ("timeout", params.timeout),
            ("stream_timeout", params.stream_timeout),
        ] {
            if value.is_some_and(|v| !(v > 0.0 && v.is_finite())) {
                return fail(
                    &format!("litellm_params.{field}"),
                    "must be a positive number of seconds".into(),
                );
            }
        }
        if params.weight.is_some_and(|w| !(w > 0.0 && w.is_finite())) {
            return fail("litellm_params.weight", "must be a positive number".into());
        }
        if let Some(field) = crate::prices::invalid_price(entry) {
            return fail(
                field,
                "must be zero or a positive number (USD per token)".into(),
            );
        }
        if params.max_parallel_requests == Some(0) {
            return fail(
                "litellm_params.max_parallel_requests",
                "must be at least 1 (leave it out for no limit)".into(),
            );
        }
        for base in params.api_base.iter().flat_map(|b| b.urls()) {
            if !base.starts_with("os.environ/") {
                if let Err(why) = crate::resolve::split_url(base) {
                    return fail("litellm_params.api_base", why);
                }
            }
        }
        let empty_reference = [
            (
                "api_base",
                params
                    .api_base
                    .iter()
                    .flat_map(|b| b.urls())
                    .any(|u| u == "os.environ/"),
            ),
            (
                "api_version",
                params.api_version.as_deref() == Some("os.environ/"),
            ),
            (
                "organization",
                params.organization.as_deref() == Some("os.environ/"),
            ),
            (
                "api_key",
                params.api_key.as_ref().and_then(Secret::env_var) == Some(""),
            ),
        ];
        if let Some((field, _)) = empty_reference.iter().find(|(_, empty)| *empty) {
            return fail(
                &format!("litellm_params.{field}"),
                "os.environ/ needs the name of a variable after the slash".into(),
            );
        }
        for (field, map) in [
            ("extra_headers", &params.extra_headers),
            ("headers", &params.headers),
        ] {
            for name in map.iter().flat_map(|m| m.keys()) {
                if !is_header_name(name) {
                    return fail(
                        &format!("litellm_params.{field}.{name}"),
                        "is not a valid HTTP header name".into(),
                    );
                }
            }
        }
        if let Some(id) = &entry.model_info.id {
            if !ids.insert(id.clone()) {
                return fail(
                    "model_info.id",
                    format!("\"{id}\" is used by another deployment; ids must be unique"),
                );
            }
        }
    }
    for (alias, target) in &config.router_settings.model_group_alias {
        if !config
            .model_list
            .iter()
            .any(|m| m.model_name == target.target())
        {
            return Err(ConfigError::at(
                format!("router_settings.model_group_alias.{alias}"),
                format!(
                    "points to \"{}\", which is no model_name in model_list",
                    target.target()
                ),
            )
            .in_file(file));
        }
    }
    for (path, value) in [
        (
            "litellm_settings.request_timeout",
            config.litellm_settings.request_timeout,
        ),
        ("router_settings.timeout", config.router_settings.timeout),
        (
            "router_settings.stream_timeout",
            config.router_settings.stream_timeout,
        ),
        (
            "router_settings.cooldown_time",
            config.router_settings.cooldown_time,
        ),
        (
            "general_settings.request_headers_timeout",
            config.general_settings.request_headers_timeout,
        ),
        (
            "general_settings.client_idle_timeout",
            config.general_settings.client_idle_timeout,
        ),
    ] {
        if value.is_some_and(|v| !(v > 0.0 && v.is_finite())) {
            return Err(
                ConfigError::at(path, "must be a positive number of seconds").in_file(file),
            );
        }
    }
    for (field, secret) in [
        ("master_key", &config.general_settings.master_key),
        ("database_url", &config.general_settings.database_url),
    ] {
        if secret.as_ref().and_then(Secret::env_var) == Some("") {
            return Err(ConfigError::at(
                format!("general_settings.{field}"),
                "os.environ/ needs the name of a variable after the slash",
            )
            .in_file(file));
        }
    }
    if let Some(s) = config.router_settings.retry_after {
        if !(s >= 0.0 && s.is_finite()) {
            return Err(ConfigError::at(
                "router_settings.retry_after",
                "must be zero or a positive number of seconds",
            )
            .in_file(file));
        }
    }
    if config.router_settings.default_max_parallel_requests == Some(0) {
        return Err(ConfigError::at(
            "router_settings.default_max_parallel_requests",
            "must be at least 1 (leave it out for no limit)",
        )
        .in_file(file));
    }
    if config.general_settings.global_max_parallel_requests == Some(0) {
        return Err(ConfigError::at(
            "general_settings.global_max_parallel_requests",
            "must be at least 1 (leave it out for no limit)",
        )
        .in_file(file));
    }
    if let Some(mb) = config.general_settings.max_response_size_mb {
        if !(mb > 0.0 && mb <= 4096.0) {
            return Err(ConfigError::at(
                "general_settings.max_response_size_mb",
                "must be between 0 and 4096 (MB)",
            )
            .in_file(file));
        }
    }
    if let Some(mb) = config.general_settings.max_request_size_mb {
        if !(mb > 0.0 && mb <= 1024.0) {
            return Err(ConfigError::at(
                "general_settings.max_request_size_mb",
                "must be between 0 and 1024 (MB)",
            )
            .in_file(file));
        }
    }
    Ok(())
}

/// The callbacks Switchyard serves (`prometheus`: `/metrics` is always on).
pub const SERVED_CALLBACKS: &[&str] = &["prometheus", "generic_api", "langfuse", "otel", "file"];

/// The callbacks that log prompts and answers.
pub const MESSAGE_CALLBACKS: &[&str] = &["generic_api", "langfuse", "file"];

fn warn(out: &mut Vec<Warning>, kind: WarningKind, path: String, message: impl Into<String>) {
    out.push(Warning {
        file: None,
        path,
        message: message.into(),
        kind,
    });
}

/// Every map of kept keys in the config: its section in [`settings`], the path its keys start
/// with, and the keys.
fn kept(config: &ProxyConfig) -> Vec<(&'static Section, String, &Extra)> {
    let mut out = vec![(&settings::TOP_LEVEL, String::new(), &config.extra)];
    for (i, entry) in config.model_list.iter().enumerate() {
        let at = format!("model_list[{i}]");
        out.push((&settings::MODEL_ENTRY, format!("{at}."), &entry.extra));
        out.push((
            &settings::LITELLM_PARAMS,
            format!("{at}.litellm_params."),
            &entry.litellm_params.extra,
        ));
        out.push((
            &settings::MODEL_INFO,
            format!("{at}.model_info."),
            &entry.model_info.extra,
        ));
    }
    let ls = &config.litellm_settings;
    out.push((
        &settings::LITELLM_SETTINGS,
        "litellm_settings.".into(),
        &ls.extra,
    ));
    if let Some(p) = &ls.cache_params {
        out.push((
            &settings::CACHE_PARAMS,
            "litellm_settings.cache_params.".into(),
            &p.extra,
        ));
    }
    out.push((
        &settings::ROUTER_SETTINGS,
        "router_settings.".into(),
        &config.router_settings.extra,
    ));
    out.push((
        &settings::GENERAL_SETTINGS,
        "general_settings.".into(),
        &config.general_settings.extra,
    ));
    out
}

/// Stops at the first setting Switchyard refuses: one that, ignored, would leave the gateway
/// less secure than the config says. Set to false or empty, it asks for nothing and only warns.
pub fn refuse(config: &ProxyConfig) -> Result<(), ConfigError> {
    for (section, prefix, keys) in kept(config) {
        for (key, value) in keys {
            if let Some(Status::Refused(why)) = section.status(key) {
                if !settings::is_off(value) {
                    return Err(ConfigError::at(
                        format!("{prefix}{key}"),
                        format!("refused: {why}; remove it"),
                    ));
                }
            }
        }
    }
    if let Some(name) = config
        .litellm_settings
        .all_callbacks()
        .into_iter()
        .find(|name| settings::GUARDRAIL_CALLBACKS.contains(name))
    {
        return Err(ConfigError::at(
            format!("litellm_settings.callbacks.{name}"),
            format!("refused: {}; remove it", settings::GUARDRAILS),
        ));
    }
    Ok(())
}

/// What the config says that Switchyard keeps but does not act on, and what is worth knowing
/// about what it acts on.
pub fn warnings(config: &ProxyConfig) -> Vec<Warning> {
    let mut out = Vec::new();
    for (section, prefix, keys) in kept(config) {
        for (key, value) in keys {
            // Request parameters in litellm_params fill in what requests leave out.
            if section.name == settings::LITELLM_PARAMS.name
                && crate::resolve::DEFAULT_PARAMS.contains(&key.as_str())
            {
                continue;
            }
            let path = format!("{prefix}{key}");
            match section.status(key) {
                // Off (false, null, empty) it asks for nothing, which is what Switchyard does.
                Some(Status::NotActedOn(_) | Status::Refused(_)) if settings::is_off(value) => {}
                Some(Status::NotActedOn(why) | Status::Refused(why)) => warn(
                    &mut out,
                    WarningKind::NotActedOn,
                    path,
                    format!("not acted on: {why}"),
                ),
                // model_info is free-form in LiteLLM: other keys are the user's own.
                None if section.name == settings::MODEL_INFO.name => {}
                // A key the table calls honoured is read into a field, never kept; here only
                // if the table is wrong.
                Some(Status::Honoured) | None => warn(
                    &mut out,
                    WarningKind::Unknown,
                    path,
                    "unknown key, kept and ignored",
                ),
            }
        }
    }
    // Keys read into a field but not acted on.
    let ls = &config.litellm_settings;
    for (section, key, set) in [(
        &settings::LITELLM_SETTINGS,
        "set_verbose",
        ls.set_verbose == Some(true),
    )] {
        if let (true, Some(Status::NotActedOn(why))) = (set, section.status(key)) {
            warn(
                &mut out,
                WarningKind::NotActedOn,
                format!("{}.{key}", section.name),
                format!("not acted on: {why}"),
            );
        }
    }
    if ls.ssl_verify == Some(crate::model::SslVerify::Enabled(false)) {
        warn(
            &mut out,
            WarningKind::Note,
            "litellm_settings.ssl_verify".to_string(),
            "false: provider certificates are not verified; anyone on the path can read the keys",
        );
    }
    // Only request parameters are filled in; LiteLLM's other deployment settings are not.
    for key in config
        .router_settings
        .default_litellm_params
        .iter()
        .flatten()
        .map(|(k, _)| k)
        .filter(|k| !crate::resolve::DEFAULT_PARAMS.contains(&k.as_str()))
    {
        warn(
            &mut out,
            WarningKind::NotActedOn,
            format!("router_settings.default_litellm_params.{key}"),
            format!(
                "not acted on: only request parameters are filled in ({}); set deployment settings on each deployment",
                crate::resolve::DEFAULT_PARAMS.join(", ")
            ),
        );
    }
    for (i, entry) in config.model_list.iter().enumerate() {
        if let Some(message) = crate::prices::missing_price_warning(entry) {
            warn(
                &mut out,
                WarningKind::Note,
                format!("model_list[{i}].litellm_params.model"),
                message,
            );
        }
    }
    for name in ls.all_callbacks() {
        if !SERVED_CALLBACKS.contains(&name) {
            warn(
                &mut out,
                WarningKind::NotActedOn,
                format!("litellm_settings.callbacks.{name}"),
                format!(
                    "not served by Switchyard: no events go to it. Served: {}",
                    SERVED_CALLBACKS.join(", ")
                ),
            );
        }
    }
    if let Some(kind) = ls.cache_params.as_ref().and_then(|p| p.kind.as_deref()) {
        if ![
            "local",
            "redis",
            "semantic",
            "redis-semantic",
            "qdrant-semantic",
        ]
        .contains(&kind)
        {
            warn(
                &mut out,
                WarningKind::NotActedOn,
                "litellm_settings.cache_params.type".to_string(),
                format!("{kind} is not served by Switchyard: the cache stays in the sidecar's memory (local)"),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_prefixes_and_bare_openai_names() {
        assert_eq!(provider_of("gpt-4o").unwrap(), (Provider::Openai, "gpt-4o"));
        for bare in [
            "o1-mini",
            "o3",
            "o4-mini",
            "chatgpt-4o-latest",
            "text-embedding-3-small",
            "davinci-002",
            "babbage-002",
        ] {
            assert_eq!(provider_of(bare).unwrap(), (Provider::Openai, bare));
        }
        assert_eq!(
            provider_of("openrouter/anthropic/claude").unwrap(),
            (Provider::Openrouter, "anthropic/claude")
        );
        assert_eq!(
            provider_of("vllm/m").unwrap(),
            (Provider::HostedVllm, "m"),
            "LiteLLM's alias prefixes resolve too"
        );
        assert!(provider_of("groq/").is_err());
        assert!(provider_of("llama3")
            .unwrap_err()
            .contains("no provider prefix"));
        assert!(provider_of("nope/x")
            .unwrap_err()
            .contains("unknown provider \"nope\""));
        assert!(provider_of("sagemaker/x")
            .unwrap_err()
            .contains("not served"));
    }

    #[test]
    fn header_names() {
        assert!(is_header_name("X-Team_1"));
        assert!(!is_header_name("Bad Header"));
        assert!(!is_header_name(""));
        assert!(!is_header_name("x:y"));
    }
}
