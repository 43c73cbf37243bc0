//! LiteLLM's `credential_list`: named credentials a deployment uses by
//! `litellm_params.litellm_credential_name`, whose values fill what its litellm_params leave
//! out (the deployment's own values win).

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::load::ConfigError;
use crate::model::{LitellmParams, ProxyConfig};

#[derive(Debug, Clone, Deserialize)]
pub struct Credential {
    pub credential_name: String,
    #[serde(default)]
    pub credential_values: serde_json::Map<String, Value>,
    /// Free-form (a description): kept, not used.
    #[serde(default)]
    pub credential_info: Option<Value>,
}

/// Fills each deployment that names a credential from it.
pub fn apply(config: &mut ProxyConfig) -> Result<(), ConfigError> {
    let credentials = std::mem::take(&mut config.credential_list);
    let result = config
        .model_list
        .iter_mut()
        .enumerate()
        .try_for_each(|(i, entry)| {
            let Some(name) = entry.litellm_params.litellm_credential_name.as_deref() else {
                return Ok(());
            };
            let Some((j, credential)) = credentials
                .iter()
                .enumerate()
                .find(|(_, c)| c.credential_name == name)
            else {
                let names: Vec<&str> = credentials
                    .iter()
                    .map(|c| c.credential_name.as_str())
                    .collect();
                return Err(ConfigError::at(
                    format!("model_list[{i}].litellm_params.litellm_credential_name"),
                    format!(
                        "no credential named \"{name}\" in credential_list (it has: {names:?})"
                    ),
                ));
            };
            for (key, value) in &credential.credential_values {
                fill(&mut entry.litellm_params, key, value).map_err(|e| {
                    ConfigError::at(format!("credential_list[{j}].credential_values.{key}"), e)
                })?;
            }
            Ok(())
        });
    config.credential_list = credentials;
    result
}

/// Sets one litellm_params key from a credential, unless the deployment sets it.
fn fill(p: &mut LitellmParams, key: &str, value: &Value) -> Result<(), String> {
    fn set<T: DeserializeOwned>(field: &mut Option<T>, value: &Value) -> Result<(), String> {
        if field.is_none() {
            *field = Some(serde_json::from_value(value.clone()).map_err(|e| e.to_string())?);
        }
        Ok(())
    }
    match key {
        "api_key" => set(&mut p.api_key, value),
        "api_base" => set(&mut p.api_base, value),
        "api_version" => set(&mut p.api_version, value),
        "organization" => set(&mut p.organization, value),
        "aws_access_key_id" => set(&mut p.aws_access_key_id, value),
        "aws_secret_access_key" => set(&mut p.aws_secret_access_key, value),
        "aws_session_token" => set(&mut p.aws_session_token, value),
        "aws_region_name" => set(&mut p.aws_region_name, value),
        "aws_bedrock_runtime_endpoint" => set(&mut p.aws_bedrock_runtime_endpoint, value),
        "vertex_project" => set(&mut p.vertex_project, value),
        "vertex_location" => set(&mut p.vertex_location, value),
        "vertex_credentials" => set(&mut p.vertex_credentials, value),
        _ => {
            p.extra
                .entry(key.to_string())
                .or_insert_with(|| value.clone());
            Ok(())
        }
    }
}
