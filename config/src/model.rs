//! config.yaml as LiteLLM writes it. (Stub: the real model replaces this.)

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProxyConfig {}

impl ProxyConfig {
    /// The config `switchyard up --model openai/gpt-4o-mini` stands for: one deployment whose
    /// model_name is the given string, key from the provider's usual environment variable.
    pub fn from_model_flag(_model: &str) -> Result<ProxyConfig, crate::ConfigError> {
        Ok(ProxyConfig {})
    }

    /// Whether general_settings.master_key is set (the gateway then requires it).
    pub fn master_key_is_set(&self) -> bool {
        false
    }

    /// environment_variables: from config.yaml, to set in this process (before resolving
    /// os.environ/ references) and in Envoy's environment.
    pub fn environment_variables(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}
