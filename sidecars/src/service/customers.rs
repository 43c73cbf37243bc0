//! LiteLLM's customers (end users, the `user` field of requests), under `/customer/...` and
//! its other name `/end_user/...`: new, info, update, delete, block, unblock, list.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::require_admin;
use super::error::ApiError;
use super::extract::{parse, Body, Params};
use super::keys::{budget_period, limit, money};
use super::AppState;
use crate::store::changes::{self, Kind};
use crate::store::customers::{self as store_customers, EndUserRow};
use crate::store::time::{iso, now_ms};
use crate::store::{flag, StoreError};

pub fn routes(prefix: &str) -> Router<AppState> {
    Router::new()
        .route(&format!("{prefix}/new"), post(new))
        .route(&format!("{prefix}/info"), get(info))
        .route(&format!("{prefix}/update"), post(update))
        .route(&format!("{prefix}/delete"), post(delete))
        .route(&format!("{prefix}/block"), post(block))
        .route(&format!("{prefix}/unblock"), post(unblock))
        .route(&format!("{prefix}/list"), get(list))
}

/// LiteLLM's budget table of an end user.
#[derive(Debug, Serialize)]
struct BudgetTable {
    max_budget: Option<f64>,
    soft_budget: Option<f64>,
    budget_duration: Option<String>,
    budget_reset_at: Option<String>,
    tpm_limit: Option<i64>,
    rpm_limit: Option<i64>,
    max_parallel_requests: Option<i64>,
}

/// An end user as LiteLLM shows it (`LiteLLM_EndUserTable`).
#[derive(Debug, Serialize)]
struct CustomerInfo {
    user_id: String,
    alias: Option<String>,
    blocked: bool,
    spend: f64,
    allowed_model_region: Option<String>,
    default_model: Option<String>,
    litellm_budget_table: Option<BudgetTable>,
}

fn customer_info(c: &EndUserRow) -> CustomerInfo {
    let has_budget = c.max_budget.is_some()
        || c.soft_budget.is_some()
        || c.budget_duration.is_some()
        || c.tpm_limit.is_some()
        || c.rpm_limit.is_some()
        || c.max_parallel_requests.is_some();
    CustomerInfo {
        user_id: c.user_id.clone(),
        alias: c.alias.clone(),
        blocked: c.blocked != 0,
        spend: c.spend,
        allowed_model_region: c.allowed_model_region.clone(),
        default_model: c.default_model.clone(),
        litellm_budget_table: has_budget.then(|| BudgetTable {
            max_budget: c.max_budget,
            soft_budget: c.soft_budget,
            budget_duration: c.budget_duration.clone(),
            budget_reset_at: c.budget_reset_at.map(iso),
            tpm_limit: c.tpm_limit,
            rpm_limit: c.rpm_limit,
            max_parallel_requests: c.max_parallel_requests,
        }),
    }
}

/// The fields of an end user a request may set. Absent: unchanged.
#[derive(Debug, Default, Deserialize)]
pub struct CustomerFields {
    alias: Option<String>,
    blocked: Option<bool>,
    max_budget: Option<f64>,
    soft_budget: Option<f64>,
    budget_duration: Option<String>,
    tpm_limit: Option<u64>,
    rpm_limit: Option<u64>,
    max_parallel_requests: Option<u64>,
    allowed_model_region: Option<String>,
    default_model: Option<String>,
    spend: Option<f64>,
    /// LiteLLM's shared budgets; Switchyard keeps the budget on the end user itself.
    budget_id: Option<String>,
}

impl CustomerFields {
    fn apply(self, c: &mut EndUserRow, now: i64) -> Result<(), ApiError> {
        if self.budget_id.is_some() {
            return Err(ApiError::invalid(
                "budget_id",
                "budget_id: shared budgets are not supported; give max_budget (and budget_duration) instead",
            ));
        }
        if let Some(region) = &self.allowed_model_region {
            if region != "eu" && region != "us" {
                return Err(ApiError::invalid(
                    "allowed_model_region",
                    format!("allowed_model_region: \"eu\" or \"us\", not {region:?}"),
                ));
            }
            c.allowed_model_region = Some(region.clone());
        }
        if let Some(d) = &self.budget_duration {
            let (text, reset) = budget_period(d, now)?;
            c.budget_duration = Some(text);
            c.budget_reset_at = reset;
        }
        if let Some(v) = money("max_budget", self.max_budget)? {
            c.max_budget = Some(v);
        }
        if let Some(v) = money("soft_budget", self.soft_budget)? {
            c.soft_budget = Some(v);
        }
        if let Some(v) = money("spend", self.spend)? {
            c.spend = v;
        }
        if let Some(alias) = self.alias {
            c.alias = Some(alias);
        }
        if let Some(b) = self.blocked {
            c.blocked = flag(b);
        }
        if self.tpm_limit.is_some() {
            c.tpm_limit = limit(self.tpm_limit);
        }
        if self.rpm_limit.is_some() {
            c.rpm_limit = limit(self.rpm_limit);
        }
        if self.max_parallel_requests.is_some() {
            c.max_parallel_requests = limit(self.max_parallel_requests);
        }
        if let Some(model) = self.default_model {
            c.default_model = Some(model);
        }
        Ok(())
    }
}

#[derive(Deserialize)]
pub struct NewRequest {
    user_id: String,
}

/// `POST /customer/new`. An end user that already spent (created by its first request) gets
/// the fields given, keeping its spend.
async fn new(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> Result<Json<CustomerInfo>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let req: NewRequest = parse(&body)?;
    let fields: CustomerFields = parse(&body)?;
    if req.user_id.trim().is_empty() {
        return Err(ApiError::invalid("user_id", "user_id: must not be empty"));
    }
    let store = state.store()?;
    let now = now_ms();
    let mut tx = store.begin().await?;
    let existing = store_customers::get(&mut tx, &req.user_id, now).await?;
    let is_new = existing.is_none();
    let mut c = existing.unwrap_or_else(|| EndUserRow {
        user_id: req.user_id.clone(),
        created_at: now,
        updated_at: now,
        ..EndUserRow::default()
    });
    if !is_new && c.max_budget.is_some() {
        return Err(ApiError::conflict(
            "user_id",
            format!(
                "user_id: customer {:?} exists already; use /customer/update",
                req.user_id
            ),
        ));
    }
    fields.apply(&mut c, now)?;
    c.updated_at = now;
    if is_new {
        store_customers::insert(&mut tx, &c).await?;
    } else {
        store_customers::save(&mut tx, &c).await?;
    }
    changes::record(
        &mut tx,
        Kind::Customer,
        std::slice::from_ref(&c.user_id),
        now,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    store.notify_changed();
    Ok(Json(customer_info(&c)))
}

#[derive(Deserialize)]
pub struct InfoQuery {
    end_user_id: Option<String>,
}

/// `GET /customer/info?end_user_id=`.
async fn info(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<InfoQuery>,
) -> Result<Json<CustomerInfo>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let id = q
        .end_user_id
        .ok_or_else(|| ApiError::invalid("end_user_id", "end_user_id: which customer?"))?;
    let store = state.store()?;
    let mut conn = store.conn().await?;
    let c = store_customers::get(&mut conn, &id, now_ms())
        .await?
        .ok_or_else(|| {
            ApiError::not_found("end_user_id", format!("end_user_id: no customer {id:?}"))
        })?;
    Ok(Json(customer_info(&c)))
}

#[derive(Deserialize)]
pub struct UpdateRequest {
    user_id: String,
}

/// `POST /customer/update`: the fields given change.
async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> Result<Json<CustomerInfo>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let req: UpdateRequest = parse(&body)?;
    let fields: CustomerFields = parse(&body)?;
    let store = state.store()?;
    let now = now_ms();
    let mut tx = store.begin().await?;
    let mut c = store_customers::get(&mut tx, &req.user_id, now)
        .await?
        .ok_or_else(|| {
            ApiError::not_found("user_id", format!("user_id: no customer {:?}", req.user_id))
        })?;
    fields.apply(&mut c, now)?;
    c.updated_at = now;
    store_customers::save(&mut tx, &c).await?;
    changes::record(
        &mut tx,
        Kind::Customer,
        std::slice::from_ref(&c.user_id),
        now,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    store.notify_changed();
    Ok(Json(customer_info(&c)))
}

#[derive(Deserialize)]
pub struct IdsRequest {
    user_ids: Vec<String>,
}

/// `POST /customer/delete`: all or none.
async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(req): Body<IdsRequest>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let store = state.store()?;
    let now = now_ms();
    let mut tx = store.begin().await?;
    for id in &req.user_ids {
        if !store_customers::delete(&mut tx, id).await? {
            return Err(ApiError::not_found(
                "user_ids",
                format!("user_ids: no customer {id:?}; nothing was deleted"),
            ));
        }
    }
    changes::record(&mut tx, Kind::Customer, &req.user_ids, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    store.notify_changed();
    Ok(Json(serde_json::json!({"deleted_customers": req.user_ids})))
}

/// `POST /customer/block`: their requests are refused; an unknown one is created blocked.
async fn block(
    state: State<AppState>,
    headers: HeaderMap,
    Body(req): Body<IdsRequest>,
) -> Result<Json<Value>, ApiError> {
    set_blocked(state, headers, req.user_ids, true).await
}

/// `POST /customer/unblock`.
async fn unblock(
    state: State<AppState>,
    headers: HeaderMap,
    Body(req): Body<IdsRequest>,
) -> Result<Json<Value>, ApiError> {
    set_blocked(state, headers, req.user_ids, false).await
}

async fn set_blocked(
    State(state): State<AppState>,
    headers: HeaderMap,
    ids: Vec<String>,
    blocked: bool,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let store = state.store()?;
    let now = now_ms();
    let mut tx = store.begin().await?;
    let mut out = Vec::new();
    for id in &ids {
        store_customers::ensure(&mut tx, id, now).await?;
        let mut c = store_customers::get(&mut tx, id, now)
            .await?
            .ok_or_else(|| ApiError::internal("the customer just created is gone"))?;
        c.blocked = flag(blocked);
        c.updated_at = now;
        store_customers::save(&mut tx, &c).await?;
        out.push(customer_info(&c));
    }
    changes::record(&mut tx, Kind::Customer, &ids, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    store.notify_changed();
    let field = if blocked {
        "blocked_users"
    } else {
        "unblocked_users"
    };
    Ok(Json(serde_json::json!({ field: out })))
}

/// `GET /customer/list`.
async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<CustomerInfo>>, ApiError> {
    require_admin(&state.master_key, &headers)?;
    let store = state.store()?;
    let mut conn = store.conn().await?;
    let rows = store_customers::list(&mut conn).await?;
    Ok(Json(rows.iter().map(customer_info).collect()))
}
