//! switchyard-config: the data model shared by the CLI, the sidecar and the filter.
//!
//! With default features off it is only the serde contract ([`contract`], [`provider`]), small
//! enough for the wasm filter. The `yaml` feature adds config.yaml loading, validation and the
//! Envoy bootstrap renderer.

pub mod contract;
pub mod provider;

pub use contract::*;
pub use provider::{AuthStyle, Provider, Wire};

#[cfg(feature = "yaml")]
pub mod load;
#[cfg(feature = "yaml")]
pub mod model;
#[cfg(feature = "yaml")]
pub mod render;
#[cfg(feature = "yaml")]
pub mod resolve;

#[cfg(feature = "yaml")]
pub use load::{load, load_str, ConfigError, Loaded, Warning};
#[cfg(feature = "yaml")]
pub use model::ProxyConfig;
#[cfg(feature = "yaml")]
pub use render::{render, EnvBinding, RenderOptions, Rendered};
