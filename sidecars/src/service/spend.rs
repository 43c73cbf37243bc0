//! LiteLLM's spend routes: `/spend/logs` (the logs), `/global/spend` and `/global/spend/report`
//! (from the daily aggregates, never the logs).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::auth::require_admin;
use super::error::ApiError;
use super::extract::Params;
use super::AppState;
use crate::store::from_json;
use crate::store::keys::token_of;
use crate::store::spend::{self as store_spend, DailyFilter, LogFilter, LogRow};
use crate::store::teams as team_store;
use crate::store::time::{day, iso, now_ms, parse_time};

const DAY_MS: i64 = 86_400_000;

#[derive(Deserialize)]
pub struct LogsQuery {
    /// A key or its hash.
    api_key: Option<String>,
    user_id: Option<String>,
    request_id: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    /// Rows at most (default 1000).
    limit: Option<i64>,
}

/// A log as LiteLLM shows it (`LiteLLM_SpendLogs`).
#[derive(Debug, Serialize)]
#[allow(non_snake_case)]
pub(super) struct LogInfo {
    request_id: String,
    call_type: String,
    api_key: String,
    spend: f64,
    total_tokens: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    startTime: String,
    endTime: String,
    model: String,
    model_id: String,
    model_group: String,
    custom_llm_provider: String,
    api_base: String,
    user: String,
    end_user: String,
    team_id: String,
    metadata: Map<String, Value>,
    cache_hit: String,
    cache_key: String,
    request_tags: Value,
    status: String,
}

/// LiteLLM's call type for an endpoint.
pub fn call_type(endpoint: &str) -> String {
    // Events name the endpoint (`chat completions`); older rows may hold its path.
    let e = endpoint.trim_end_matches('/').replace(' ', "/");
    if e.ends_with("chat/completions") {
        "acompletion".into()
    } else if e.ends_with("completions") {
        "atext_completion".into()
    } else if e.ends_with("embeddings") {
        "aembedding".into()
    } else {
        endpoint.to_string()
    }
}

fn log_info(r: LogRow) -> LogInfo {
    let mut metadata: Map<String, Value> = from_json(&r.metadata);
    let tags = metadata
        .get("tags")
        .cloned()
        .unwrap_or(Value::Array(vec![]));
    metadata.insert("status".into(), Value::from(r.status.clone()));
    metadata.insert("http_status".into(), Value::from(r.http_status));
    metadata.insert("cached_tokens".into(), Value::from(r.cached_tokens));
    metadata.insert("reasoning_tokens".into(), Value::from(r.reasoning_tokens));
    if let Some(alias) = &r.key_alias {
        metadata.insert("user_api_key_alias".into(), Value::from(alias.clone()));
    }
    LogInfo {
        call_type: call_type(&r.endpoint),
        request_id: r.request_id,
        api_key: r.api_key,
        spend: r.spend,
        total_tokens: r.prompt_tokens + r.completion_tokens,
        prompt_tokens: r.prompt_tokens,
        completion_tokens: r.completion_tokens,
        startTime: iso(r.start_time),
        endTime: iso(r.end_time),
        model: if r.model.is_empty() {
            r.requested_model.clone()
        } else {
            r.model
        },
        model_id: r.model_id,
        model_group: r.model_group,
        custom_llm_provider: r.provider,
        api_base: String::new(),
        user: r.user_id.unwrap_or_default(),
        end_user: r.end_user.unwrap_or_default(),
        team_id: r.team_id.unwrap_or_default(),
        metadata,
        cache_hit: if r.cache_hit != 0 { "True" } else { "False" }.into(),
        cache_key: String::new(),
        request_tags: tags,
        status: r.status,
    }
}

fn date(field: &str, text: &Option<String>) -> Result<Option<i64>, ApiError> {
    text.as_deref()
        .map(|t| parse_time(t).map_err(|e| ApiError::invalid(field, format!("{field}: {e}"))))
        .transpose()
}

/// `GET /spend/logs`: newest first; `end_date` is inclusive of its whole day.
pub async fn logs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<LogsQuery>,
) -> Result<Json<Vec<LogInfo>>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=100_000).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit: between 1 and 100000"));
    }
    let end = date("end_date", &q.end_date)?.map(|t| {
        if q.end_date.as_deref().is_some_and(|d| d.trim().len() == 10) {
            t + DAY_MS
        } else {
            t
        }
    });
    let filter = LogFilter {
        api_key: q.api_key.as_deref().map(token_of),
        user_id: q.user_id,
        request_id: q.request_id,
        start: date("start_date", &q.start_date)?,
        end,
    };
    let store = state.store()?;
    let mut conn = store.conn().await?;
    let rows = store_spend::logs(&mut conn, &filter, limit).await?;
    Ok(Json(rows.into_iter().map(log_info).collect()))
}

/// `GET /global/spend`: all spend, and `litellm_settings.max_budget` (the proxy's budget).
pub async fn global(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let store = state.store()?;
    let mut conn = store.conn().await?;
    let spend = store_spend::total(&mut conn).await?;
    let max_budget = state
        .config
        .litellm_settings
        .extra
        .get("max_budget")
        .and_then(Value::as_f64);
    Ok(Json(
        serde_json::json!({"spend": spend, "max_budget": max_budget}),
    ))
}

#[derive(Deserialize)]
pub struct ReportQuery {
    start_date: Option<String>,
    end_date: Option<String>,
    /// `team` (default), `customer`, `api_key`, `user` or `model`.
    group_by: Option<String>,
    api_key: Option<String>,
    internal_user_id: Option<String>,
    team_id: Option<String>,
    customer_id: Option<String>,
}

#[derive(Default)]
struct Group {
    spend: f64,
    /// (model group, key) → spend, tokens.
    detail: BTreeMap<(String, String), (f64, i64)>,
}

/// `GET /global/spend/report`: spend per day, per team (or customer, key, user, model), each
/// with its spend per model and key, as LiteLLM shapes it. Days are UTC; the range defaults to
/// the last 30 days.
pub async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<ReportQuery>,
) -> Result<Json<Vec<Value>>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let (list_name, item_name) = match q.group_by.as_deref().unwrap_or("team") {
        "team" => ("teams", "team_name"),
        "customer" => ("customers", "customer"),
        "api_key" => ("api_keys", "api_key"),
        "user" => ("users", "user_id"),
        "model" => ("models", "model"),
        other => {
            return Err(ApiError::invalid(
                "group_by",
                format!("group_by: team, customer, api_key, user or model, not {other:?}"),
            ))
        }
    };
    let end = date("end_date", &q.end_date)?.unwrap_or_else(now_ms);
    let start = date("start_date", &q.start_date)?.unwrap_or(end - 30 * DAY_MS);
    if start > end {
        return Err(ApiError::invalid(
            "start_date",
            "start_date: must not be after end_date",
        ));
    }
    let filter = DailyFilter {
        first_day: Some(day(start)),
        last_day: Some(day(end)),
        api_key: q.api_key.as_deref().map(token_of),
        user_id: q.internal_user_id,
        team_id: q.team_id,
        end_user: q.customer_id,
    };
    let store = state.store()?;
    let mut conn = store.conn().await?;
    let rows = store_spend::daily(&mut conn, &filter).await?;
    // Teams are shown by alias, as LiteLLM does.
    let mut aliases: BTreeMap<String, String> = BTreeMap::new();
    if list_name == "teams" {
        for r in &rows {
            if !r.team_id.is_empty() && !aliases.contains_key(&r.team_id) {
                let team = team_store::get(&mut conn, &r.team_id, now_ms()).await?;
                let alias = team
                    .and_then(|t| t.team_alias)
                    .unwrap_or_else(|| r.team_id.clone());
                aliases.insert(r.team_id.clone(), alias);
            }
        }
    }
    let mut days: BTreeMap<String, BTreeMap<String, Group>> = BTreeMap::new();
    for r in rows {
        let name = match list_name {
            "teams" => aliases
                .get(&r.team_id)
                .cloned()
                .unwrap_or_else(|| "Unassigned Team".into()),
            "customers" => r.end_user.clone(),
            "api_keys" => r.api_key.clone(),
            "users" => r.user_id.clone(),
            _ => r.model_group.clone(),
        };
        let group = days
            .entry(r.day.clone())
            .or_default()
            .entry(name)
            .or_default();
        group.spend += r.spend;
        let d = group
            .detail
            .entry((r.model_group.clone(), r.api_key.clone()))
            .or_default();
        d.0 += r.spend;
        d.1 += r.prompt_tokens + r.completion_tokens;
    }
    let out = days
        .into_iter()
        .map(|(day, groups)| {
            let items: Vec<Value> = groups
                .into_iter()
                .map(|(name, g)| {
                    let metadata: Vec<Value> = g
                        .detail
                        .into_iter()
                        .map(|((model, api_key), (spend, tokens))| {
                            serde_json::json!({
                                "model": model,
                                "api_key": api_key,
                                "spend": spend,
                                "total_tokens": tokens,
                            })
                        })
                        .collect();
                    serde_json::json!({
                        item_name: name,
                        "total_spend": g.spend,
                        "metadata": metadata,
                    })
                })
                .collect();
            serde_json::json!({"group_by_day": day, list_name: items})
        })
        .collect();
    Ok(Json(out))
}
