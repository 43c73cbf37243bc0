//! switchyard-config: the data model shared by the CLI, the sidecar and the filter.
//!
//! With default features off it is only the serde contract ([`contract`], [`provider`]), small
//! enough for the wasm filter. The `yaml` feature adds config.yaml loading, validation and the
//! Envoy bootstrap renderer.
//!
//! The order, as the CLI runs it:
//! 1. [`load()`] (or [`ProxyConfig::from_model_flag`]) parses and validates config.yaml. Nothing
//!    is read from the environment yet: `os.environ/VAR` stays a reference, secrets are
//!    [`model::Secret`]s that never print. It reads the files `include` names, refuses the
//!    settings whose absence would weaken security, and returns [`Warning`]s for every key that
//!    is kept but not acted on ([`settings`] holds every key it knows and what it does with it).
//! 2. The CLI sets [`ProxyConfig::environment_variables`] in its own environment (Envoy
//!    inherits them).
//! 3. [`render()`] resolves `os.environ/VAR` for non-secret values (api_base, api_version,
//!    organization, header values) from the config's environment_variables, then the process
//!    environment, failing with the field and the variable when one is unset. Secrets are
//!    never resolved: the bootstrap names the variables the wasm VM reads them from, and
//!    [`Rendered::env`] lists them ([`EnvBinding`]), with a value only for those written in
//!    config.yaml.

pub mod contract;
pub mod provider;
pub mod sidecar_api;
pub mod wildcard;

pub use contract::*;
pub use provider::{AuthKind, Provider, Wire};
pub use sidecar_api::*;

#[cfg(feature = "yaml")]
pub mod cache;
#[cfg(feature = "yaml")]
pub mod credentials;
#[cfg(feature = "yaml")]
pub mod include;
#[cfg(feature = "yaml")]
pub mod load;
#[cfg(feature = "yaml")]
pub mod model;
#[cfg(feature = "yaml")]
pub mod prices;
#[cfg(feature = "yaml")]
pub mod render;
#[cfg(feature = "yaml")]
pub mod resolve;
#[cfg(feature = "yaml")]
pub mod routing;
#[cfg(feature = "yaml")]
pub mod settings;

#[cfg(feature = "yaml")]
pub use load::{load, load_str, ConfigError, Loaded, Warning, WarningKind};
#[cfg(feature = "yaml")]
pub use model::ProxyConfig;
#[cfg(feature = "yaml")]
pub use render::{render, EnvBinding, RenderOptions, Rendered};
