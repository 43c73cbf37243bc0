//! End users (LiteLLM's customers): the `user` field of requests, with an optional budget.
//! One that spends before it was created is created then, as LiteLLM does, so its spend is
//! known when a budget is given to it later.

use sqlx::AnyConnection;
use switchyard_config::{Budget, CustomerRecord};

use super::budget::{budgeted, get_row, Holder};
use super::{StoreResult, Usd};

#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct EndUserRow {
    pub user_id: String,
    pub alias: Option<String>,
    pub blocked: i64,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub spend: f64,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub allowed_model_region: Option<String>,
    pub default_model: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "user_id, alias, blocked, max_budget, soft_budget, spend, budget_duration, \
    budget_reset_at, tpm_limit, rpm_limit, allowed_model_region, default_model, created_at, \
    updated_at, max_parallel_requests";

pub async fn insert(conn: &mut AnyConnection, c: &EndUserRow) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO end_users ({COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    );
    sqlx::query(&sql)
        .bind(&c.user_id)
        .bind(&c.alias)
        .bind(c.blocked)
        .bind(Usd(c.max_budget))
        .bind(Usd(c.soft_budget))
        .bind(c.spend)
        .bind(&c.budget_duration)
        .bind(c.budget_reset_at)
        .bind(c.tpm_limit)
        .bind(c.rpm_limit)
        .bind(&c.allowed_model_region)
        .bind(&c.default_model)
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(c.max_parallel_requests)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn save(conn: &mut AnyConnection, c: &EndUserRow) -> StoreResult<()> {
    sqlx::query(
        "UPDATE end_users SET alias = $1, blocked = $2, max_budget = $3, soft_budget = $4, \
         spend = $5, budget_duration = $6, budget_reset_at = $7, tpm_limit = $8, \
         rpm_limit = $9, allowed_model_region = $10, default_model = $11, updated_at = $12, \
         max_parallel_requests = $13 WHERE user_id = $14",
    )
    .bind(&c.alias)
    .bind(c.blocked)
    .bind(Usd(c.max_budget))
    .bind(Usd(c.soft_budget))
    .bind(c.spend)
    .bind(&c.budget_duration)
    .bind(c.budget_reset_at)
    .bind(c.tpm_limit)
    .bind(c.rpm_limit)
    .bind(&c.allowed_model_region)
    .bind(&c.default_model)
    .bind(c.updated_at)
    .bind(c.max_parallel_requests)
    .bind(&c.user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The end user, its budget period started again if it ended.
pub async fn get(
    conn: &mut AnyConnection,
    user_id: &str,
    now: i64,
) -> StoreResult<Option<EndUserRow>> {
    get_row(conn, user_id, now).await
}

budgeted!(EndUserRow, Holder::EndUser, COLUMNS);

pub async fn delete(conn: &mut AnyConnection, user_id: &str) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM end_users WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn list(conn: &mut AnyConnection) -> StoreResult<Vec<EndUserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM end_users ORDER BY user_id");
    Ok(sqlx::query_as(&sql).fetch_all(conn).await?)
}

/// Creates the end user with no budget if it is new (a spend event names it).
pub async fn ensure(conn: &mut AnyConnection, user_id: &str, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO end_users (user_id, blocked, spend, created_at, updated_at) \
         VALUES ($1, 0, 0.0, $2, $2) ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(user_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// What the gateway enforces for an end user; an unknown one has no budget.
pub async fn record(
    conn: &mut AnyConnection,
    user_id: &str,
    now: i64,
) -> StoreResult<CustomerRecord> {
    Ok(match get(conn, user_id, now).await? {
        Some(c) => CustomerRecord {
            user_id: c.user_id,
            blocked: c.blocked != 0,
            budget: Budget {
                max_budget: c.max_budget,
                spend: c.spend,
                resets_at_ms: c.budget_reset_at.and_then(|t| u64::try_from(t).ok()),
            },
            limits: super::keys::limits(c.rpm_limit, c.tpm_limit, c.max_parallel_requests),
        },
        None => CustomerRecord {
            user_id: user_id.to_string(),
            ..CustomerRecord::default()
        },
    })
}
