//! The sidecar HTTP service: readiness for the public `/health/readiness`, the internal API
//! under `/internal/v1/...` (reached only through Envoy's sidecar cluster) and the built-in
//! demo model under `/demo/v1`.

mod demo;
mod error;
mod health;
pub mod tokens;

use std::future::Future;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use switchyard_config::ProxyConfig;
use tokio::net::TcpListener;

pub use error::ApiError;

/// What every handler can read.
#[derive(Clone, Default)]
pub struct AppState {
    /// The loaded config.yaml (keys, budgets, ... will read it).
    pub config: Arc<ProxyConfig>,
    /// Vertex AI access tokens minted from service accounts.
    pub tokens: Arc<tokens::Tokens>,
}

impl AppState {
    /// The state for a config; fails when a deployment's service account cannot be read.
    pub fn new(config: ProxyConfig) -> Result<AppState, String> {
        let tokens = tokens::from_config(&config)?;
        Ok(AppState {
            config: Arc::new(config),
            tokens,
        })
    }
}

/// All routes of the sidecar.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health/readiness", get(health::readiness))
        .route("/internal/v1/health", get(health::internal))
        .route("/internal/v1/token/{deployment}", get(tokens::token))
        .route("/demo/v1/chat/completions", post(demo::chat_completions))
        .route("/demo/v1/completions", post(demo::completions))
        .route("/demo/v1/embeddings", post(demo::embeddings))
        .with_state(state)
}

/// Serves the sidecar on `listener` until `shutdown` completes, then lets in-flight requests
/// finish.
pub async fn serve<F>(listener: TcpListener, state: AppState, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("sidecar listening on http://{addr}");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
