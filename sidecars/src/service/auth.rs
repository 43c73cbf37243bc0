//! Who may call the management API: the master key (`general_settings.master_key`), in any of
//! the headers LiteLLM reads (`Authorization: Bearer`, `api-key`, `x-litellm-api-key`), compared
//! in constant time; a virtual key may read its own `/key/info`. Only the master key's SHA-256
//! is kept in memory.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;
use switchyard_config::model::Secret;
use switchyard_config::ProxyConfig;

use super::error::ApiError;
use crate::store::keys::{self, KeyRow};
use crate::store::time::now_ms;
use crate::store::Store;

/// The master key as the sidecar knows it.
#[derive(Clone, Default)]
pub enum MasterKey {
    /// No `general_settings.master_key`.
    #[default]
    NotConfigured,
    /// `os.environ/VAR`, and VAR is not set.
    Unset(String),
    /// SHA-256 of the key.
    Digest([u8; 32]),
}

impl MasterKey {
    pub fn from_config(config: &ProxyConfig, env: &dyn Fn(&str) -> Option<String>) -> MasterKey {
        match &config.general_settings.master_key {
            None => MasterKey::NotConfigured,
            Some(secret) => match secret.resolve(env) {
                Some(key) if !key.is_empty() => MasterKey::Digest(Sha256::digest(key).into()),
                _ => MasterKey::Unset(match secret {
                    Secret::Env(var) => var.clone(),
                    Secret::Literal(_) => String::new(),
                }),
            },
        }
    }

    fn matches(&self, presented: &str) -> bool {
        match self {
            MasterKey::Digest(digest) => {
                let presented: [u8; 32] = Sha256::digest(presented).into();
                bool::from(presented.ct_eq(digest))
            }
            _ => false,
        }
    }

    /// 403 when there is no master key to check against.
    fn configured(&self) -> Result<(), ApiError> {
        match self {
            MasterKey::Digest(_) => Ok(()),
            MasterKey::NotConfigured => Err(ApiError::forbidden(
                "the management API needs a master key: set general_settings.master_key in config.yaml (e.g. master_key: os.environ/LITELLM_MASTER_KEY) and restart Switchyard",
            )),
            MasterKey::Unset(var) => Err(ApiError::forbidden(format!(
                "the management API needs a master key: general_settings.master_key reads {var}, which is not set in Switchyard's environment; set it and restart"
            ))),
        }
    }
}

/// general_settings.litellm_key_header_name: one per process, as the config is.
static KEY_HEADER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Reads keys from `general_settings.litellm_key_header_name` first, as the gateway does.
pub fn use_key_header(config: &ProxyConfig) {
    if let Some(name) = config
        .general_settings
        .litellm_key_header_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let _ = KEY_HEADER.set(name.to_ascii_lowercase());
    }
}

/// The key a request presents, from the headers LiteLLM reads.
pub fn presented_key(headers: &HeaderMap) -> Option<String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let own = KEY_HEADER.get().and_then(|name| header(name));
    if let Some(auth) = own.or_else(|| header("authorization")) {
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .unwrap_or(auth)
            .trim();
        if !token.is_empty() {
            return Some(token.to_string());
        }
    }
    header("x-litellm-api-key")
        .or_else(|| header("api-key"))
        .map(str::to_string)
}

/// Who is calling.
pub enum Caller {
    Admin,
    /// A valid virtual key (known, not blocked, not expired).
    Key(Box<KeyRow>),
}

fn missing() -> ApiError {
    ApiError::unauthorized(
        "no key: send the master key as `Authorization: Bearer <key>` (or in `api-key` / `x-litellm-api-key`)",
    )
}

/// Only the master key.
pub fn require_admin(master: &MasterKey, headers: &HeaderMap) -> Result<(), ApiError> {
    master.configured()?;
    let presented = presented_key(headers).ok_or_else(missing)?;
    if master.matches(&presented) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(
            "invalid key: this route needs the master key (general_settings.master_key)",
        ))
    }
}

/// The master key, or a valid virtual key (which the handler then limits to what it owns).
pub async fn caller(
    master: &MasterKey,
    store: &Store,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    master.configured()?;
    let presented = presented_key(headers).ok_or_else(missing)?;
    if master.matches(&presented) {
        return Ok(Caller::Admin);
    }
    let now = now_ms();
    let mut conn = store
        .pool()
        .acquire()
        .await
        .map_err(crate::store::StoreError::from)?;
    let key = keys::get(&mut conn, &keys::hash_key(&presented), now).await?;
    match key {
        Some(k) if k.blocked == 0 && k.expires.is_none_or(|t| t > now) => {
            Ok(Caller::Key(Box::new(k)))
        }
        Some(_) => Err(ApiError::unauthorized(
            "this key is blocked or expired: ask an admin for a valid key",
        )),
        None => Err(ApiError::unauthorized(
            "invalid key: not the master key, nor a key this gateway issued",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_litellm_reads() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("api-key", "sk-a".parse().unwrap());
        assert_eq!(presented_key(&h).as_deref(), Some("sk-a"));
        h.insert("x-litellm-api-key", "sk-b".parse().unwrap());
        assert_eq!(presented_key(&h).as_deref(), Some("sk-b"));
        h.insert("authorization", "Bearer sk-c".parse().unwrap());
        assert_eq!(presented_key(&h).as_deref(), Some("sk-c"));
    }

    #[test]
    fn the_master_key_matches_only_itself() {
        let mut config = ProxyConfig::default();
        config.general_settings.master_key = Some(Secret::Env("MK".into()));
        let env = |n: &str| (n == "MK").then(|| "sk-master".to_string());
        let master = MasterKey::from_config(&config, &env);
        assert!(master.matches("sk-master"));
        assert!(!master.matches("sk-maste"));
        assert!(!master.matches(""));
        let unset = MasterKey::from_config(&config, &|_| None);
        assert!(matches!(unset, MasterKey::Unset(ref v) if v == "MK"));
        assert!(!unset.matches("sk-master"));
    }
}
