//! Teams and their members. A key of a team is bounded by the team's budget and models.

use sqlx::AnyConnection;

use super::budget::{budgeted, get_row, Holder};
use super::{StoreResult, Usd};

#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct TeamRow {
    pub team_id: String,
    pub team_alias: Option<String>,
    /// JSON array.
    pub models: String,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub spend: f64,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    /// JSON object.
    pub metadata: String,
    pub blocked: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct MemberRow {
    pub team_id: String,
    pub user_id: String,
    /// `admin` or `user`.
    pub role: String,
    pub max_budget_in_team: Option<f64>,
    pub spend: f64,
    pub created_at: i64,
}

const COLUMNS: &str = "team_id, team_alias, models, max_budget, soft_budget, spend, \
    budget_duration, budget_reset_at, tpm_limit, rpm_limit, max_parallel_requests, metadata, \
    blocked, created_at, updated_at";

pub async fn insert(conn: &mut AnyConnection, t: &TeamRow) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO teams ({COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    );
    sqlx::query(&sql)
        .bind(&t.team_id)
        .bind(&t.team_alias)
        .bind(&t.models)
        .bind(Usd(t.max_budget))
        .bind(Usd(t.soft_budget))
        .bind(t.spend)
        .bind(&t.budget_duration)
        .bind(t.budget_reset_at)
        .bind(t.tpm_limit)
        .bind(t.rpm_limit)
        .bind(t.max_parallel_requests)
        .bind(&t.metadata)
        .bind(t.blocked)
        .bind(t.created_at)
        .bind(t.updated_at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn save(conn: &mut AnyConnection, t: &TeamRow) -> StoreResult<()> {
    sqlx::query(
        "UPDATE teams SET team_alias = $1, models = $2, max_budget = $3, soft_budget = $4, \
         spend = $5, budget_duration = $6, budget_reset_at = $7, tpm_limit = $8, \
         rpm_limit = $9, max_parallel_requests = $10, metadata = $11, blocked = $12, \
         updated_at = $13 WHERE team_id = $14",
    )
    .bind(&t.team_alias)
    .bind(&t.models)
    .bind(Usd(t.max_budget))
    .bind(Usd(t.soft_budget))
    .bind(t.spend)
    .bind(&t.budget_duration)
    .bind(t.budget_reset_at)
    .bind(t.tpm_limit)
    .bind(t.rpm_limit)
    .bind(t.max_parallel_requests)
    .bind(&t.metadata)
    .bind(t.blocked)
    .bind(t.updated_at)
    .bind(&t.team_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The team, its budget period started again if it ended.
pub async fn get(
    conn: &mut AnyConnection,
    team_id: &str,
    now: i64,
) -> StoreResult<Option<TeamRow>> {
    get_row(conn, team_id, now).await
}

budgeted!(TeamRow, Holder::Team, COLUMNS);

/// Deletes the team and its memberships (its keys are the caller's to delete).
pub async fn delete(conn: &mut AnyConnection, team_id: &str) -> StoreResult<bool> {
    sqlx::query("DELETE FROM team_members WHERE team_id = $1")
        .bind(team_id)
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query("DELETE FROM teams WHERE team_id = $1")
        .bind(team_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Every team (of a member, if given), by id.
pub async fn list(conn: &mut AnyConnection, member: Option<&str>) -> StoreResult<Vec<TeamRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM teams WHERE ($1 IS NULL OR team_id IN \
         (SELECT team_id FROM team_members WHERE user_id = $1)) ORDER BY team_id"
    );
    Ok(sqlx::query_as(&sql).bind(member).fetch_all(conn).await?)
}

pub async fn members(conn: &mut AnyConnection, team_id: &str) -> StoreResult<Vec<MemberRow>> {
    Ok(sqlx::query_as(
        "SELECT team_id, user_id, role, max_budget_in_team, spend, created_at \
         FROM team_members WHERE team_id = $1 ORDER BY created_at, user_id",
    )
    .bind(team_id)
    .fetch_all(conn)
    .await?)
}

/// Adds a member, or updates its role and budget in the team.
pub async fn upsert_member(conn: &mut AnyConnection, m: &MemberRow) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO team_members (team_id, user_id, role, max_budget_in_team, spend, created_at) \
         VALUES ($1, $2, $3, $4, 0.0, $5) ON CONFLICT (team_id, user_id) DO UPDATE SET \
         role = excluded.role, max_budget_in_team = excluded.max_budget_in_team",
    )
    .bind(&m.team_id)
    .bind(&m.user_id)
    .bind(&m.role)
    .bind(Usd(m.max_budget_in_team))
    .bind(m.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_member(
    conn: &mut AnyConnection,
    team_id: &str,
    user_id: &str,
) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
        .bind(team_id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
