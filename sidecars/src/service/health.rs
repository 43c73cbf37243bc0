//! Health endpoints.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_config::CacheKind;

use super::extract::Params;
use super::{auth, ApiError, AppState};

#[derive(Deserialize)]
pub struct HealthQuery {
    /// A model group: only its deployments.
    model: Option<String>,
}

/// `GET /health`: LiteLLM's deep health check (any valid key may ask, as in LiteLLM). From
/// the last background round when background_health_checks is on, else checked now.
pub async fn health(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<HealthQuery>,
) -> Result<Json<Value>, ApiError> {
    if state.config.master_key_is_set() {
        auth::caller(&state.master_key, state.store()?, &headers).await?;
    }
    let group = q.model.as_deref().filter(|m| !m.is_empty());
    if state.config.general_settings.background_health_checks == Some(true) {
        let last = state.health.lock().ok().and_then(|l| l.result.clone());
        if let Some(mut result) = last {
            if let Some(g) = group {
                for list in ["healthy_endpoints", "unhealthy_endpoints"] {
                    if let Some(items) = result[list].as_array_mut() {
                        items.retain(|e| e["model_name"] == g);
                    }
                }
                for (list, count) in [
                    ("healthy_endpoints", "healthy_count"),
                    ("unhealthy_endpoints", "unhealthy_count"),
                ] {
                    result[count] = json!(result[list].as_array().map_or(0, Vec::len));
                }
            }
            return Ok(Json(result));
        }
    }
    Ok(Json(
        crate::health::run(&state.config, state.gateway.as_ref(), group).await,
    ))
}

/// `GET /health/readiness`, shaped like LiteLLM's so its probes and dashboards keep working;
/// `db` says whether the store answers, `cache` which response cache is on (null: none),
/// `redis` whether Redis answers (null: not configured) and `rate_limits` whether they hold
/// across the fleet. A Redis that is down leaves the status healthy: the gateway keeps
/// serving, with a cache that misses and limits counted per instance.
pub async fn readiness(State(state): State<AppState>) -> Json<Value> {
    let db = match &state.store {
        None => "Not connected",
        Some(store) => match sqlx::query("SELECT 1").execute(store.pool()).await {
            Ok(_) => "connected",
            Err(_) => "disconnected",
        },
    };
    let cache = state.config.cache_config().map(|c| match c.kind {
        CacheKind::Semantic { .. } => "semantic",
        CacheKind::Exact => state.cache.backend(),
    });
    let redis = state.redis.as_ref().map(|r| r.health().connected);
    let rate_limits = match redis {
        Some(true) => "fleet",
        Some(false) => "per instance (redis down)",
        None => "per instance",
    };
    Json(json!({
        "status": "healthy",
        "db": db,
        "cache": cache,
        "redis": redis.map(|up| if up { "connected" } else { "disconnected" }),
        "rate_limits": rate_limits,
        "litellm_version": null,
        "switchyard_version": env!("CARGO_PKG_VERSION"),
        "last_updated": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    }))
}

/// `GET /internal/v1/health`: Envoy's health check of the sidecar cluster.
pub async fn internal() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
