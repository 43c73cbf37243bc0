//! `switchyard sidecar`: only the sidecar service (docker-compose runs Envoy on its own).

use std::path::PathBuf;

use clap::Args;

use super::{shutdown_signal, ConfigSource, Failure};
use crate::service::{self, AppState};

#[derive(Debug, Args)]
pub struct SidecarArgs {
    #[command(flatten)]
    source: ConfigSource,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 4001)]
    port: u16,
    /// The SQLite file of keys and spend (default: general_settings.database_path, else
    /// switchyard.db here); database_url or DATABASE_URL select PostgreSQL instead.
    #[arg(long, value_name = "FILE")]
    database_path: Option<PathBuf>,
    /// The gateway's public URL (e.g. http://127.0.0.1:4000), where the semantic cache embeds
    /// prompts; without it semantic lookups miss.
    #[arg(long, env = "SWITCHYARD_GATEWAY_URL", value_name = "URL")]
    gateway_url: Option<String>,
    /// Envoy's admin (e.g. http://127.0.0.1:9901), whose statistics `/metrics` adds to
    /// Switchyard's own; without it `/metrics` has Switchyard's only.
    #[arg(long, env = "SWITCHYARD_ENVOY_ADMIN", value_name = "URL")]
    envoy_admin: Option<String>,
    /// Debug logs.
    #[arg(long)]
    detailed_debug: bool,
}

pub fn run(args: SidecarArgs) -> Result<(), Failure> {
    let config = args.source.load()?;
    super::init_tracing(args.detailed_debug, &config);
    let target = super::store_target(&config, args.database_path.as_deref())?;
    let mut state = AppState::new(config).map_err(Failure)?;
    if let Some(url) = args.gateway_url.as_deref().filter(|u| !u.is_empty()) {
        state = state.with_gateway(url);
    }
    if let Some(url) = args.envoy_admin.as_deref().filter(|u| !u.is_empty()) {
        state = state.with_envoy_admin(url);
    }
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        let state = super::with_redis(state)?.start_tasks().map_err(Failure)?;
        let store = super::open_store(&target, &state.config).await?;
        let state = state.with_store(store);
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .map_err(|e| {
                Failure(format!(
                    "cannot listen on {}:{}: {e} (choose another port with --port)",
                    args.host, args.port
                ))
            })?;
        service::serve(listener, state, shutdown)
            .await
            .map_err(|e| Failure(format!("the sidecar failed: {e}")))
    })
}
