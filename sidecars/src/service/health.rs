//! Health endpoints.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

/// `GET /health/readiness`, shaped like LiteLLM's so its probes and dashboards keep working;
/// `db` says whether the store answers.
pub async fn readiness(State(state): State<AppState>) -> Json<Value> {
    let db = match &state.store {
        None => "Not connected",
        Some(store) => match sqlx::query("SELECT 1").execute(store.pool()).await {
            Ok(_) => "connected",
            Err(_) => "disconnected",
        },
    };
    Json(json!({
        "status": "healthy",
        "db": db,
        "cache": null,
        "litellm_version": null,
        "switchyard_version": env!("CARGO_PKG_VERSION"),
        "last_updated": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    }))
}

/// `GET /internal/v1/health`: Envoy's health check of the sidecar cluster.
pub async fn internal() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
