//! The internal API the gateway calls, exactly as `switchyard_config::sidecar_api` defines it.
//! Reached only through Envoy's sidecar cluster (the public listener refuses `/internal/`).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use switchyard_config::{
    Changes, CustomerRecord, KeyRecord, SpendAck, SpendBatch, SpendEvent, CHANGES_WAIT_S,
};

use super::error::ApiError;
use super::extract::{Body, Params};
use super::AppState;
use crate::store::time::now_ms;
use crate::store::{changes, customers, keys, spend};

/// How often a waiting long-poll looks at the database too: changes made through another
/// sidecar on the same database wake no one here.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// `GET /internal/v1/keys/{sha256}`: the key's record, 404 for an unknown key.
pub async fn key(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<KeyRecord>, ApiError> {
    let store = state.store()?;
    let mut conn = store.conn().await?;
    match keys::record(&mut conn, &token.to_ascii_lowercase(), now_ms()).await? {
        Some(record) => Ok(Json(record)),
        None => Err(ApiError::not_found("token", "no such key")),
    }
}

/// `GET /internal/v1/customers/{id}`: an end user's record (an unknown one has no budget).
pub async fn customer(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CustomerRecord>, ApiError> {
    let store = state.store()?;
    let mut conn = store.conn().await?;
    Ok(Json(customers::record(&mut conn, &id, now_ms()).await?))
}

/// `POST /internal/v1/spend`: a batch, stored in one transaction, idempotent by request_id.
pub async fn spend(
    State(state): State<AppState>,
    Body(batch): Body<SpendBatch>,
) -> Result<Json<SpendAck>, ApiError> {
    for (i, e) in batch.events.iter().enumerate() {
        if e.request_id.trim().is_empty() {
            return Err(ApiError::invalid(
                &format!("events[{i}].request_id"),
                "every spend event needs its request_id (Envoy's x-request-id)",
            ));
        }
        if !(e.cost.is_finite() && e.cost >= 0.0) {
            return Err(ApiError::invalid(
                &format!("events[{i}].cost"),
                format!("a cost is a positive number of USD, not {}", e.cost),
            ));
        }
    }
    // Counted before they are stored: the metrics do not depend on the database.
    observe(&state, &batch.events).await;
    let stored: Vec<SpendEvent> = batch.events.into_iter().filter(|e| !e.log_only).collect();
    let store = state.store()?;
    let ack = spend::store_batch(store, &stored, now_ms()).await?;
    Ok(Json(ack))
}

/// Counts the events in the metrics, naming their teams by the store's aliases, and hands
/// the new ones to the logging callbacks.
async fn observe(state: &AppState, events: &[SpendEvent]) {
    if let Some(store) = &state.store {
        for team in state.metrics.unknown_teams(events) {
            let alias: Option<Option<String>> =
                sqlx::query_scalar("SELECT team_alias FROM teams WHERE team_id = $1")
                    .bind(&team)
                    .fetch_optional(store.pool())
                    .await
                    .unwrap_or_default();
            state
                .metrics
                .team_alias(&team, alias.flatten().as_deref().unwrap_or_default());
        }
    }
    let new = state.metrics.observe(events);
    state.callbacks.send(&new);
}

#[derive(Deserialize)]
pub struct ChangesQuery {
    #[serde(default)]
    after: u64,
}

/// `GET /internal/v1/changes?after=N`: at once when something changed after N, else when
/// something does, or after `CHANGES_WAIT_S` seconds with nothing.
pub async fn changes(
    State(state): State<AppState>,
    Params(query): Params<ChangesQuery>,
) -> Result<Json<Changes>, ApiError> {
    let store = state.store()?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(CHANGES_WAIT_S);
    let mut closing = store.closing();
    loop {
        // Registered before looking, so a change committed in between is not missed.
        let changed = store.changed().notified();
        let found = {
            let mut conn = store.conn().await?;
            changes::since(&mut conn, query.after).await?
        };
        let now = tokio::time::Instant::now();
        if found.all || found.seq != query.after || now >= deadline || store.is_closing() {
            return Ok(Json(found));
        }
        let wait = (deadline - now).min(POLL_EVERY);
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep(wait) => {}
            _ = closing.changed() => {}
        }
    }
}
