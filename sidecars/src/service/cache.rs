//! The response cache's internal API (`switchyard_config::sidecar_api`): the gateway asks
//! for an answer by its key, and sends the answers to keep in batches.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use switchyard_config::{CachePutBatch, CachedAnswer};

use super::error::ApiError;
use super::extract::{Body, Params};
use super::AppState;
use crate::store::time::now_ms;

#[derive(Deserialize)]
pub struct GetQuery {
    max_age_s: Option<u64>,
}

/// `GET /internal/v1/cache/{key}`: the answer, or 404.
pub async fn get(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Params(q): Params<GetQuery>,
) -> Result<Json<CachedAnswer>, ApiError> {
    let now = u64::try_from(now_ms()).unwrap_or(0);
    state
        .cache
        .get(&key, q.max_age_s, now)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("key", "no cached answer"))
}

/// `POST /internal/v1/cache`: answers to keep.
pub async fn put(
    State(state): State<AppState>,
    Body(batch): Body<CachePutBatch>,
) -> Json<serde_json::Value> {
    let now = u64::try_from(now_ms()).unwrap_or(0);
    let n = batch.entries.len();
    for entry in batch.entries {
        state.cache.put(entry, now);
    }
    Json(serde_json::json!({"stored": n}))
}
