//! Fleet rate limits' internal API: an Envoy's counts in, the other Envoys' totals out
//! (`crate::limits`). Without Redis, or with a Redis that does not answer, 503: each Envoy
//! then enforces its limits alone.

use axum::extract::State;
use axum::Json;
use switchyard_config::{LimitSync, LimitTotals};

use super::error::ApiError;
use super::extract::Body;
use super::AppState;

/// `POST /internal/v1/limits/sync`.
pub async fn sync(
    State(state): State<AppState>,
    Body(sync): Body<LimitSync>,
) -> Result<Json<LimitTotals>, ApiError> {
    if sync.instance.is_empty() {
        return Err(ApiError::invalid("instance", "instance: must not be empty"));
    }
    let redis = state.redis.as_ref().ok_or_else(|| {
        ApiError::redis_unavailable(
            "rate limits are per instance: this sidecar has no Redis (set cache_params or router_settings redis_host/redis_url, or REDIS_URL, to share them across a fleet)",
        )
    })?;
    let now = u64::try_from(crate::store::time::now_ms()).unwrap_or(0);
    crate::limits::sync(redis, &sync, now)
        .await
        .map(Json)
        .map_err(|e| {
            ApiError::redis_unavailable(format!(
                "rate limits are per instance while Redis at {} is away: {e}",
                redis.address()
            ))
        })
}
