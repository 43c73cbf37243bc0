//! `litellm_settings.cache` and `cache_params`, as LiteLLM's users write them, and where the
//! sidecar finds Redis (the cache's, else router_settings' `redis_*`, else `REDIS_URL` /
//! `REDIS_HOST` in the environment, as LiteLLM reads them).

use serde::Deserialize;

use crate::contract::{CacheConfig, CacheKind};
use crate::model::{Extra, ProxyConfig, Scalar, Secret};

/// LiteLLM's `cache_params`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CacheParams {
    /// `local` (default), `redis`; `semantic`, `redis-semantic` or `qdrant-semantic` for the
    /// semantic cache (Switchyard keeps its vectors in the sidecar, and in Redis when set).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub host: Option<Scalar>,
    #[serde(default)]
    pub port: Option<Scalar>,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub url: Option<Secret>,
    /// Seconds an answer is kept (default 600).
    #[serde(default)]
    pub ttl: Option<f64>,
    #[serde(default)]
    pub default_in_memory_ttl: Option<f64>,
    #[serde(default)]
    pub default_in_redis_ttl: Option<f64>,
    /// Prefix of every cache key.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Which calls are cached: `completion`/`acompletion` (chat), `text_completion`,
    /// `embedding`; default all three.
    #[serde(default)]
    pub supported_call_types: Option<Vec<String>>,
    /// `default_off`: only requests that ask with `cache: {"use-cache": true}` are cached.
    #[serde(default)]
    pub mode: Option<String>,
    /// Semantic cache: the least cosine similarity that counts as a hit (default 0.8).
    #[serde(default)]
    pub similarity_threshold: Option<f64>,
    /// Semantic cache: the model group that embeds prompts.
    #[serde(default)]
    pub redis_semantic_cache_embedding_model: Option<String>,
    #[serde(default)]
    pub qdrant_semantic_cache_embedding_model: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Seconds an answer is kept when cache_params set no ttl (LiteLLM's in-memory default).
pub const DEFAULT_TTL_S: u64 = 600;
/// The similarity a semantic hit needs when cache_params set none.
pub const DEFAULT_SIMILARITY: f64 = 0.8;

impl CacheParams {
    fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("local")
    }

    fn is_semantic(&self) -> bool {
        self.kind().ends_with("semantic")
    }

    fn uses_redis(&self) -> bool {
        matches!(self.kind(), "redis" | "redis-semantic")
            || self.url.is_some()
            || self.host.is_some()
    }

    fn embedding_model(&self) -> Option<&str> {
        self.redis_semantic_cache_embedding_model
            .as_deref()
            .or(self.qdrant_semantic_cache_embedding_model.as_deref())
    }
}

impl ProxyConfig {
    /// The response cache as the gateway applies it; None when `litellm_settings.cache` is
    /// not true.
    pub fn cache_config(&self) -> Option<CacheConfig> {
        if !self.litellm_settings.cache.unwrap_or(false) {
            return None;
        }
        let p = self
            .litellm_settings
            .cache_params
            .clone()
            .unwrap_or_default();
        let ttl = p
            .ttl
            .or(if p.uses_redis() {
                p.default_in_redis_ttl
            } else {
                p.default_in_memory_ttl
            })
            .map_or(DEFAULT_TTL_S, |s| s.max(0.0).round() as u64);
        let calls = p.supported_call_types.clone().unwrap_or_default();
        let has =
            |names: &[&str]| calls.is_empty() || calls.iter().any(|c| names.contains(&c.as_str()));
        let kind = match (p.is_semantic(), p.embedding_model()) {
            (true, Some(model)) => CacheKind::Semantic {
                embedding_model: model.to_string(),
                similarity_threshold: p.similarity_threshold.unwrap_or(DEFAULT_SIMILARITY),
            },
            _ => CacheKind::Exact,
        };
        Some(CacheConfig {
            kind,
            ttl_s: ttl,
            namespace: p.namespace.clone().filter(|n| !n.is_empty()),
            chat: has(&["completion", "acompletion"]),
            completions: has(&["text_completion", "atext_completion"]),
            embeddings: has(&["embedding", "aembedding"]),
            default_off: p.mode.as_deref() == Some("default_off"),
        })
    }

    /// Whether answers go to Redis when there is one: unless cache_params say `local` (or
    /// `semantic`, Switchyard's in-memory semantic cache). LiteLLM's proxy, too, takes a
    /// cache without a type for a Redis one.
    pub fn cache_in_redis(&self) -> bool {
        let kind = self
            .litellm_settings
            .cache_params
            .as_ref()
            .and_then(|p| p.kind.as_deref());
        self.litellm_settings.cache.unwrap_or(false) && !matches!(kind, Some("local" | "semantic"))
    }

    /// Where the sidecar finds Redis: cache_params (when the cache is on), router_settings'
    /// redis_url / redis_host, then `REDIS_URL` / `REDIS_HOST` (+ `REDIS_PORT`,
    /// `REDIS_PASSWORD`). None: everything stays in memory. Err names the unset variable.
    pub fn redis_url(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, String> {
        let cache = self
            .litellm_settings
            .cache_params
            .as_ref()
            .filter(|p| self.litellm_settings.cache.unwrap_or(false) && p.uses_redis());
        let r = &self.router_settings;
        let sources = [
            cache.map(|p| {
                (
                    "cache_params",
                    p.url.clone(),
                    p.host.clone(),
                    p.port.clone(),
                    p.password.clone(),
                )
            }),
            Some((
                "router_settings",
                r.redis_url.clone(),
                r.redis_host.clone(),
                r.redis_port.clone(),
                r.redis_password.clone(),
            )),
        ];
        for (section, url, host, port, password) in sources.into_iter().flatten() {
            if let Some(url) = url {
                return url.resolve(env).map(Some).ok_or_else(|| {
                    format!("{section}: url is {url:?}, which is not set in the environment")
                });
            }
            if let Some(host) = host {
                let password = match password {
                    Some(p) => Some(p.resolve(env).ok_or_else(|| {
                        format!("{section}: password is {p:?}, which is not set in the environment")
                    })?),
                    None => None,
                };
                // `os.environ/VAR` is read here, as for every other setting.
                let read = |field: &str, v: &str| {
                    match v.strip_prefix("os.environ/") {
                    Some(var) => env(var).filter(|x| !x.trim().is_empty()).ok_or_else(|| {
                        format!("{section}: redis_{field} is {v:?}, which is not set in the environment")
                    }),
                    None => Ok(v.to_string()),
                }
                };
                let host = read("host", &host.0)?;
                let port = match port {
                    Some(p) => read("port", &p.0)?,
                    None => "6379".to_string(),
                };
                return Ok(Some(url_of(&host, &port, password.as_deref())));
            }
        }
        if let Some(url) = env("REDIS_URL").filter(|u| !u.trim().is_empty()) {
            return Ok(Some(url));
        }
        Ok(env("REDIS_HOST")
            .filter(|h| !h.trim().is_empty())
            .map(|host| {
                let port = env("REDIS_PORT").unwrap_or_else(|| "6379".into());
                url_of(&host, &port, env("REDIS_PASSWORD").as_deref())
            }))
    }
}

fn url_of(host: &str, port: &str, password: Option<&str>) -> String {
    match password.filter(|p| !p.is_empty()) {
        Some(p) => format!("redis://:{}@{host}:{port}", urlencode(p)),
        None => format!("redis://{host}:{port}"),
    }
}

/// A password may hold `@`, `/` or `:`; in a URL's userinfo they must be escaped.
fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> ProxyConfig {
        crate::load_str(yaml, None).expect("valid").config
    }

    const MODELS: &str = "model_list:\n- model_name: m\n  litellm_params: {model: openai/m}\n";

    #[test]
    fn off_unless_cache_is_true() {
        assert!(config(MODELS).cache_config().is_none());
        let c = config(&format!("{MODELS}litellm_settings:\n  cache: true\n"))
            .cache_config()
            .expect("on");
        assert_eq!(
            (c.kind, c.ttl_s, c.chat, c.embeddings),
            (CacheKind::Exact, DEFAULT_TTL_S, true, true)
        );
    }

    #[test]
    fn params_as_litellm_writes_them() {
        let c = config(&format!(
            "{MODELS}litellm_settings:\n  cache: true\n  cache_params:\n    type: redis-semantic\n    ttl: 30\n    namespace: team-a\n    supported_call_types: [acompletion]\n    similarity_threshold: 0.9\n    redis_semantic_cache_embedding_model: m\n"
        ))
        .cache_config()
        .expect("on");
        assert_eq!(c.ttl_s, 30);
        assert_eq!(c.namespace.as_deref(), Some("team-a"));
        assert!(c.chat && !c.completions && !c.embeddings);
        assert_eq!(
            c.kind,
            CacheKind::Semantic {
                embedding_model: "m".into(),
                similarity_threshold: 0.9
            }
        );
    }

    #[test]
    fn redis_from_cache_params_router_settings_or_env() {
        let none = |_: &str| None;
        assert_eq!(config(MODELS).redis_url(&none).unwrap(), None);
        let c = config(&format!(
            "{MODELS}litellm_settings:\n  cache: true\n  cache_params: {{type: redis, host: 10.0.0.1, port: 6380, password: os.environ/RP}}\n"
        ));
        let env = |n: &str| (n == "RP").then(|| "p@ss".to_string());
        assert_eq!(
            c.redis_url(&env).unwrap().as_deref(),
            Some("redis://:p%40ss@10.0.0.1:6380")
        );
        assert!(c.redis_url(&none).unwrap_err().contains("os.environ/RP"));
        let r = config(&format!("{MODELS}router_settings:\n  redis_host: r\n"));
        assert_eq!(
            r.redis_url(&none).unwrap().as_deref(),
            Some("redis://r:6379")
        );
        assert!(!config(MODELS).cache_in_redis(), "no cache");
        let local = config(&format!(
            "{MODELS}litellm_settings:\n  cache: true\n  cache_params: {{type: local}}\n"
        ));
        assert!(!local.cache_in_redis());
        assert!(config(&format!("{MODELS}litellm_settings:\n  cache: true\n")).cache_in_redis());
        let vars = config(&format!(
            "{MODELS}router_settings:\n  redis_host: os.environ/RH\n  redis_port: os.environ/RPORT\n"
        ));
        let env = |n: &str| match n {
            "RH" => Some("cache.internal".to_string()),
            "RPORT" => Some("6390".to_string()),
            _ => None,
        };
        assert_eq!(
            vars.redis_url(&env).unwrap().as_deref(),
            Some("redis://cache.internal:6390"),
            "os.environ/ read as everywhere else"
        );
        assert!(vars.redis_url(&none).unwrap_err().contains("os.environ/RH"));
        let env = |n: &str| (n == "REDIS_URL").then(|| "redis://e:1".to_string());
        assert_eq!(
            config(MODELS).redis_url(&env).unwrap().as_deref(),
            Some("redis://e:1")
        );
    }
}
