//! The response cache's internal API (`switchyard_config::sidecar_api`): the gateway asks
//! for an answer by its key or, for the semantic cache, by its prompt, and sends the
//! answers to keep in batches.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use switchyard_config::{CachePutBatch, CachedAnswer, SemanticLookup};

use super::error::ApiError;
use super::extract::{Body, Params};
use super::AppState;
use crate::cache::PutOutcome;

fn now() -> u64 {
    u64::try_from(crate::store::time::now_ms()).unwrap_or(0)
}

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
    state
        .cache
        .get(&key, q.max_age_s, now())
        .await
        .map(Json)
        .ok_or_else(|| ApiError::not_found("key", "no cached answer"))
}

/// `POST /internal/v1/cache`: answers to keep. Those with a prompt are indexed for the
/// semantic cache after the answer is sent (embedding takes a call to the gateway).
pub async fn put(
    State(state): State<AppState>,
    Body(batch): Body<CachePutBatch>,
) -> Json<PutOutcome> {
    let now = now();
    let outcome = state.cache.put_all(&batch.entries, now).await;
    let semantic: Vec<_> = batch
        .entries
        .into_iter()
        .filter(|e| e.semantic.is_some())
        .collect();
    if !semantic.is_empty() {
        tokio::spawn(async move {
            for put in &semantic {
                state.semantic.index(put, state.redis.as_ref(), now).await;
            }
        });
    }
    Json(outcome)
}

/// `POST /internal/v1/semantic/lookup`: the answer to the most similar prompt, or 404.
pub async fn semantic_lookup(
    State(state): State<AppState>,
    Body(q): Body<SemanticLookup>,
) -> Result<Json<CachedAnswer>, ApiError> {
    state
        .semantic
        .lookup(&q, &state.cache, state.redis.as_ref(), now())
        .await
        .map(Json)
        .ok_or_else(|| ApiError::not_found("prompt", "no cached answer to a similar prompt"))
}
