//! The Envoy bootstrap rendered from a config. (Stub: the real renderer replaces this.)

use std::path::PathBuf;

use crate::load::ConfigError;
use crate::model::ProxyConfig;

#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Listener address (`127.0.0.1` for `up`, `0.0.0.0` in containers).
    pub host: String,
    pub port: u16,
    /// Envoy admin listener, always bound to 127.0.0.1 by `up`.
    pub admin_host: String,
    pub admin_port: u16,
    /// Where Envoy reaches the sidecar (`127.0.0.1`, or `sidecar` in docker-compose).
    pub sidecar_host: String,
    pub sidecar_port: u16,
    /// The .wasm path as Envoy will see it.
    pub wasm_path: PathBuf,
    /// Debug logs in the filter and an access log on stdout.
    pub detailed_debug: bool,
}

/// A variable the Envoy process (and so the wasm VM) must have in its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvBinding {
    pub name: String,
    /// Some(value): a literal secret from config.yaml that `up` puts into Envoy's environment
    /// (never into a file). None: read from the environment the operator provides.
    pub value: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Rendered {
    /// The Envoy bootstrap, YAML.
    pub bootstrap_yaml: String,
    /// What Envoy's environment must hold; the bootstrap lists these names in the VM's host_env_keys.
    pub env: Vec<EnvBinding>,
}

pub fn render(_config: &ProxyConfig, _opts: &RenderOptions) -> Result<Rendered, ConfigError> {
    Ok(Rendered {
        bootstrap_yaml: String::new(),
        env: Vec::new(),
    })
}
