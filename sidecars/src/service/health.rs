//! Health endpoints.

use axum::Json;
use serde_json::{json, Value};

/// `GET /health/readiness`, shaped like LiteLLM's so its probes and dashboards keep working.
pub async fn readiness() -> Json<Value> {
    Json(json!({
        "status": "healthy",
        "db": "Not connected",
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
