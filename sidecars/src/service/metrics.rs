//! `GET /metrics`: LiteLLM's metrics, the budgets as the store has them now, and Envoy's own
//! statistics (per deployment cluster, outlier detection, the listener), in one scrape.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::Full;

use super::{auth, ApiError, AppState};
use crate::metrics::{budgets, Budget};

/// How long Envoy's admin may take to give its statistics.
const ENVOY_STATS_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn scrape(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if state
        .config
        .litellm_settings
        .require_auth_for_metrics_endpoint
        == Some(true)
    {
        auth::caller(&state.master_key, state.store()?, &headers).await?;
    }
    let (keys, teams) = match &state.store {
        Some(store) => (
            read_budgets(store, "SELECT token AS id, key_alias AS alias, max_budget, spend FROM keys WHERE max_budget IS NOT NULL").await,
            read_budgets(store, "SELECT team_id AS id, team_alias AS alias, max_budget, spend FROM teams WHERE max_budget IS NOT NULL").await,
        ),
        None => (Vec::new(), Vec::new()),
    };
    let extra = budgets(&keys, &teams).unwrap_or_default();
    let mut body = state.metrics.render(&extra);
    if let Some(admin) = &state.envoy_admin {
        body.push_str(&envoy_stats(admin).await);
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

async fn read_budgets(store: &crate::store::Store, sql: &str) -> Vec<Budget> {
    match sqlx::query_as::<_, Budget>(sql)
        .fetch_all(store.pool())
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!("the budgets could not be read for /metrics: {e}");
            Vec::new()
        }
    }
}

/// Envoy's statistics in Prometheus's format; a comment saying why when they cannot be had
/// (the scrape still has Switchyard's own).
async fn envoy_stats(admin: &str) -> String {
    let Some(client) = crate::http::https() else {
        return "# Envoy's statistics: no HTTP client\n".into();
    };
    let url = format!("{}/stats/prometheus", admin.trim_end_matches('/'));
    let request = match hyper::Request::get(&url).body(Full::new(Bytes::new())) {
        Ok(r) => r,
        Err(e) => return format!("# Envoy's statistics: bad admin URL {url}: {e}\n"),
    };
    match crate::http::call(&client, request, ENVOY_STATS_TIMEOUT).await {
        Ok((status, body)) if status.is_success() => String::from_utf8_lossy(&body).into_owned(),
        Ok((status, _)) => format!("# Envoy's statistics: {url} answered {status}\n"),
        Err(e) => format!("# Envoy's statistics: {e}\n"),
    }
}
