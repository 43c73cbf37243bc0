//! Internal users (LiteLLM's `/user/...`): people who own keys, with their own budget.

use sqlx::AnyConnection;

use super::budget::{budgeted, get_row, Holder};
use super::{StoreResult, Usd};

#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct UserRow {
    pub user_id: String,
    pub user_email: Option<String>,
    pub user_alias: Option<String>,
    pub user_role: Option<String>,
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
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "user_id, user_email, user_alias, user_role, models, max_budget, \
    soft_budget, spend, budget_duration, budget_reset_at, tpm_limit, rpm_limit, \
    max_parallel_requests, metadata, created_at, updated_at";

pub async fn insert(conn: &mut AnyConnection, u: &UserRow) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO users ({COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    );
    sqlx::query(&sql)
        .bind(&u.user_id)
        .bind(&u.user_email)
        .bind(&u.user_alias)
        .bind(&u.user_role)
        .bind(&u.models)
        .bind(Usd(u.max_budget))
        .bind(Usd(u.soft_budget))
        .bind(u.spend)
        .bind(&u.budget_duration)
        .bind(u.budget_reset_at)
        .bind(u.tpm_limit)
        .bind(u.rpm_limit)
        .bind(u.max_parallel_requests)
        .bind(&u.metadata)
        .bind(u.created_at)
        .bind(u.updated_at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn save(conn: &mut AnyConnection, u: &UserRow) -> StoreResult<()> {
    sqlx::query(
        "UPDATE users SET user_email = $1, user_alias = $2, user_role = $3, models = $4, \
         max_budget = $5, soft_budget = $6, spend = $7, budget_duration = $8, \
         budget_reset_at = $9, tpm_limit = $10, rpm_limit = $11, max_parallel_requests = $12, \
         metadata = $13, updated_at = $14 WHERE user_id = $15",
    )
    .bind(&u.user_email)
    .bind(&u.user_alias)
    .bind(&u.user_role)
    .bind(&u.models)
    .bind(Usd(u.max_budget))
    .bind(Usd(u.soft_budget))
    .bind(u.spend)
    .bind(&u.budget_duration)
    .bind(u.budget_reset_at)
    .bind(u.tpm_limit)
    .bind(u.rpm_limit)
    .bind(u.max_parallel_requests)
    .bind(&u.metadata)
    .bind(u.updated_at)
    .bind(&u.user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The user, its budget period started again if it ended.
pub async fn get(
    conn: &mut AnyConnection,
    user_id: &str,
    now: i64,
) -> StoreResult<Option<UserRow>> {
    get_row(conn, user_id, now).await
}

budgeted!(UserRow, Holder::User, COLUMNS);

/// The id of the user with this email, if any.
pub async fn id_by_email(conn: &mut AnyConnection, email: &str) -> StoreResult<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT user_id FROM users WHERE user_email = $1")
        .bind(email)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|(id,)| id))
}

pub async fn delete(conn: &mut AnyConnection, user_id: &str) -> StoreResult<bool> {
    sqlx::query("DELETE FROM team_members WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query("DELETE FROM users WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Which users a list asks for.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these ids (empty: all).
    pub user_ids: Vec<String>,
    pub role: Option<String>,
    /// Members of this team.
    pub team: Option<String>,
}

/// One page of users (newest first) and how many match in all.
pub async fn list(
    conn: &mut AnyConnection,
    filter: &Filter,
    offset: i64,
    limit: i64,
) -> StoreResult<(Vec<UserRow>, i64)> {
    let mut condition = String::from(
        "($1 IS NULL OR user_role = $1) AND ($2 IS NULL OR user_id IN \
         (SELECT user_id FROM team_members WHERE team_id = $2))",
    );
    // Ids are bound, one parameter each.
    if !filter.user_ids.is_empty() {
        let params: Vec<String> = (0..filter.user_ids.len())
            .map(|i| format!("${}", i + 3))
            .collect();
        condition.push_str(&format!(" AND user_id IN ({})", params.join(", ")));
    }
    let n = filter.user_ids.len() + 2;
    let count_sql = format!("SELECT COUNT(*) FROM users WHERE {condition}");
    let mut count = sqlx::query_as::<_, (i64,)>(&count_sql)
        .bind(&filter.role)
        .bind(&filter.team);
    for id in &filter.user_ids {
        count = count.bind(id);
    }
    let (total,) = count.fetch_one(&mut *conn).await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM users WHERE {condition} \
         ORDER BY created_at DESC, user_id LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let mut query = sqlx::query_as::<_, UserRow>(&sql)
        .bind(&filter.role)
        .bind(&filter.team);
    for id in &filter.user_ids {
        query = query.bind(id);
    }
    let rows = query.bind(limit).bind(offset).fetch_all(conn).await?;
    Ok((rows, total))
}

/// The teams a user is a member of.
pub async fn team_ids(conn: &mut AnyConnection, user_id: &str) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT team_id FROM team_members WHERE user_id = $1 ORDER BY team_id")
            .bind(user_id)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|(t,)| t).collect())
}
