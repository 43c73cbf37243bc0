//! Reading config.yaml. (Stub: the real loader replaces this.)

use std::fmt;
use std::path::Path;

use crate::model::ProxyConfig;

/// A problem that stops the config from being used: names the file, the field path and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file, when there is one.
    pub file: Option<String>,
    /// Dotted path of the field (`model_list[2].litellm_params.model`), when known.
    pub path: Option<String>,
    pub message: String,
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

/// Something kept but not acted on (an unknown key, a LiteLLM setting Switchyard ignores).
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: Some(path.display().to_string()),
        path: None,
        message: format!("cannot read: {e}"),
    })?;
    load_str(&text, Some(&path.display().to_string()))
}

/// Parses and validates config text; `file` names it in errors.
pub fn load_str(_text: &str, _file: Option<&str>) -> Result<Loaded, ConfigError> {
    Ok(Loaded {
        config: ProxyConfig::default(),
        warnings: Vec::new(),
    })
}
