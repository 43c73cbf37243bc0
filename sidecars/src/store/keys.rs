//! Virtual keys, stored by the SHA-256 of the key (hex), never the key itself.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use switchyard_config::{Budget, KeyRecord, Limits};

use super::budget::{budgeted, get_row, Holder};
use super::{from_json, teams, users, StoreResult, Usd};

/// A row of `keys`.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct KeyRow {
    pub token: String,
    pub key_name: Option<String>,
    pub key_alias: Option<String>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    /// JSON array.
    pub models: String,
    /// JSON object.
    pub aliases: String,
    /// JSON object.
    pub metadata: String,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub spend: f64,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    /// ms since the epoch.
    pub expires: Option<i64>,
    pub blocked: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "token, key_name, key_alias, user_id, team_id, models, aliases, metadata, \
    max_budget, soft_budget, spend, budget_duration, budget_reset_at, tpm_limit, rpm_limit, \
    max_parallel_requests, expires, blocked, created_at, updated_at";

/// SHA-256 of a key, hex: how keys are stored and looked up (as LiteLLM does).
pub fn hash_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// A key as given to the management API: the key itself (`sk-...`, hashed here) or its hash.
pub fn token_of(key_or_hash: &str) -> String {
    let is_hash = key_or_hash.len() == 64 && key_or_hash.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hash && !key_or_hash.starts_with("sk-") {
        key_or_hash.to_ascii_lowercase()
    } else {
        hash_key(key_or_hash)
    }
}

pub async fn insert(conn: &mut AnyConnection, k: &KeyRow) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO keys ({COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
    );
    sqlx::query(&sql)
        .bind(&k.token)
        .bind(&k.key_name)
        .bind(&k.key_alias)
        .bind(&k.user_id)
        .bind(&k.team_id)
        .bind(&k.models)
        .bind(&k.aliases)
        .bind(&k.metadata)
        .bind(Usd(k.max_budget))
        .bind(Usd(k.soft_budget))
        .bind(k.spend)
        .bind(&k.budget_duration)
        .bind(k.budget_reset_at)
        .bind(k.tpm_limit)
        .bind(k.rpm_limit)
        .bind(k.max_parallel_requests)
        .bind(k.expires)
        .bind(k.blocked)
        .bind(k.created_at)
        .bind(k.updated_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Writes every column of the row found by `old_token` (the token changes on regeneration).
pub async fn save(conn: &mut AnyConnection, old_token: &str, k: &KeyRow) -> StoreResult<()> {
    sqlx::query(
        "UPDATE keys SET token = $1, key_name = $2, key_alias = $3, user_id = $4, team_id = $5, \
         models = $6, aliases = $7, metadata = $8, max_budget = $9, soft_budget = $10, \
         spend = $11, budget_duration = $12, budget_reset_at = $13, tpm_limit = $14, \
         rpm_limit = $15, max_parallel_requests = $16, expires = $17, blocked = $18, \
         updated_at = $19 WHERE token = $20",
    )
    .bind(&k.token)
    .bind(&k.key_name)
    .bind(&k.key_alias)
    .bind(&k.user_id)
    .bind(&k.team_id)
    .bind(&k.models)
    .bind(&k.aliases)
    .bind(&k.metadata)
    .bind(Usd(k.max_budget))
    .bind(Usd(k.soft_budget))
    .bind(k.spend)
    .bind(&k.budget_duration)
    .bind(k.budget_reset_at)
    .bind(k.tpm_limit)
    .bind(k.rpm_limit)
    .bind(k.max_parallel_requests)
    .bind(k.expires)
    .bind(k.blocked)
    .bind(k.updated_at)
    .bind(old_token)
    .execute(conn)
    .await?;
    Ok(())
}

/// The key by its hash, its budget period started again if it ended.
pub async fn get(conn: &mut AnyConnection, token: &str, now: i64) -> StoreResult<Option<KeyRow>> {
    get_row(conn, token, now).await
}

budgeted!(KeyRow, Holder::Key, COLUMNS);

/// Tokens of the keys with these aliases.
pub async fn tokens_by_alias(conn: &mut AnyConnection, alias: &str) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT token FROM keys WHERE key_alias = $1")
        .bind(alias)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|(t,)| t).collect())
}

/// Tokens of a user's keys (in one team, if given).
pub async fn tokens_of_user(
    conn: &mut AnyConnection,
    user_id: &str,
    team_id: Option<&str>,
) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = match team_id {
        Some(team) => {
            sqlx::query_as("SELECT token FROM keys WHERE user_id = $1 AND team_id = $2")
                .bind(user_id)
                .bind(team)
                .fetch_all(conn)
                .await?
        }
        None => {
            sqlx::query_as("SELECT token FROM keys WHERE user_id = $1")
                .bind(user_id)
                .fetch_all(conn)
                .await?
        }
    };
    Ok(rows.into_iter().map(|(t,)| t).collect())
}

pub async fn tokens_of_team(conn: &mut AnyConnection, team_id: &str) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT token FROM keys WHERE team_id = $1")
        .bind(team_id)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|(t,)| t).collect())
}

pub async fn delete(conn: &mut AnyConnection, token: &str) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM keys WHERE token = $1")
        .bind(token)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Which keys a list asks for.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub key_alias: Option<String>,
}

/// One page of keys (newest first) and how many match in all.
pub async fn list(
    conn: &mut AnyConnection,
    filter: &Filter,
    offset: i64,
    limit: i64,
) -> StoreResult<(Vec<KeyRow>, i64)> {
    // NULL parameters match everything; the indexed columns narrow the rest.
    let condition = "($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR team_id = $2) \
                     AND ($3 IS NULL OR key_alias = $3)";
    let count_sql = format!("SELECT COUNT(*) FROM keys WHERE {condition}");
    let (total,): (i64,) = sqlx::query_as(&count_sql)
        .bind(&filter.user_id)
        .bind(&filter.team_id)
        .bind(&filter.key_alias)
        .fetch_one(&mut *conn)
        .await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM keys WHERE {condition} \
         ORDER BY created_at DESC, token LIMIT $4 OFFSET $5"
    );
    let rows = sqlx::query_as(&sql)
        .bind(&filter.user_id)
        .bind(&filter.team_id)
        .bind(&filter.key_alias)
        .bind(limit)
        .bind(offset)
        .fetch_all(conn)
        .await?;
    Ok((rows, total))
}

/// The record the gateway enforces: the key with its user's and team's budgets, every period
/// that ended started again. None for an unknown key.
pub async fn record(
    conn: &mut AnyConnection,
    token: &str,
    now: i64,
) -> StoreResult<Option<KeyRecord>> {
    let Some(key) = get(conn, token, now).await? else {
        return Ok(None);
    };
    let user = match &key.user_id {
        Some(id) => users::get(conn, id, now).await?,
        None => None,
    };
    let team = match &key.team_id {
        Some(id) => teams::get(conn, id, now).await?,
        None => None,
    };
    let budget = |max_budget: Option<f64>, spend: f64, resets_at: Option<i64>| Budget {
        max_budget,
        spend,
        resets_at_ms: resets_at.and_then(|t| u64::try_from(t).ok()),
    };
    Ok(Some(KeyRecord {
        token: key.token.clone(),
        key_alias: key.key_alias.clone(),
        user_id: key.user_id.clone(),
        team_id: key.team_id.clone(),
        models: from_json(&key.models),
        team_models: team
            .as_ref()
            .map(|t| from_json(&t.models))
            .unwrap_or_default(),
        aliases: from_json::<BTreeMap<String, String>>(&key.aliases),
        blocked: key.blocked != 0,
        expires_ms: key.expires.and_then(|t| u64::try_from(t).ok()),
        key_budget: budget(key.max_budget, key.spend, key.budget_reset_at),
        user_budget: user
            .as_ref()
            .map(|u| budget(u.max_budget, u.spend, u.budget_reset_at))
            .unwrap_or_default(),
        team_budget: team
            .as_ref()
            .map(|t| budget(t.max_budget, t.spend, t.budget_reset_at))
            .unwrap_or_default(),
        team_blocked: team.as_ref().is_some_and(|t| t.blocked != 0),
        key_limits: limits(key.rpm_limit, key.tpm_limit, key.max_parallel_requests),
        user_limits: user
            .as_ref()
            .map(|u| limits(u.rpm_limit, u.tpm_limit, u.max_parallel_requests))
            .unwrap_or_default(),
        team_limits: team
            .as_ref()
            .map(|t| limits(t.rpm_limit, t.tpm_limit, t.max_parallel_requests))
            .unwrap_or_default(),
        metadata: from_json(&key.metadata),
    }))
}

/// Rate limits as the gateway reads them (a negative one, which the API refuses, is none).
pub(crate) fn limits(rpm: Option<i64>, tpm: Option<i64>, parallel: Option<i64>) -> Limits {
    let n = |v: Option<i64>| v.and_then(|n| u64::try_from(n).ok());
    Limits {
        rpm_limit: n(rpm),
        tpm_limit: n(tpm),
        max_parallel_requests: n(parallel),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hashed_as_litellm_does() {
        // hashlib.sha256(b"sk-1234").hexdigest()
        assert_eq!(
            hash_key("sk-1234"),
            "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
        );
        assert_eq!(hash_key("").len(), 64);
        let h = hash_key("sk-abc");
        assert_eq!(token_of("sk-abc"), h);
        assert_eq!(token_of(&h), h);
        assert_eq!(token_of(&h.to_ascii_uppercase()), h);
    }
}
