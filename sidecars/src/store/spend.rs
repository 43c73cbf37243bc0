//! Spend: the batches the gateways send (one transaction each, idempotent by request id), the
//! logs, and the daily aggregates reports read.

use std::collections::BTreeMap;

use sqlx::AnyConnection;
use switchyard_config::{SpendAck, SpendEvent};

use super::budget::{add_spend, Holder};
use super::time::day;
use super::{customers, flag, json_text, Store, StoreResult};

/// One row of `spend_logs`.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct LogRow {
    pub request_id: String,
    pub api_key: String,
    pub key_alias: Option<String>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub end_user: Option<String>,
    pub requested_model: String,
    pub model_group: String,
    pub model_id: String,
    pub provider: String,
    pub model: String,
    pub endpoint: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub reasoning_tokens: i64,
    pub spend: f64,
    pub start_time: i64,
    pub end_time: i64,
    pub status: String,
    pub http_status: i64,
    pub cache_hit: i64,
    /// JSON object.
    pub metadata: String,
}

const LOG_COLUMNS: &str = "request_id, api_key, key_alias, user_id, team_id, end_user, \
    requested_model, model_group, model_id, provider, model, endpoint, prompt_tokens, \
    completion_tokens, cached_tokens, reasoning_tokens, spend, start_time, end_time, status, \
    http_status, cache_hit, metadata";

/// The dimensions of a daily aggregate; '' where a request had none.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
struct DailyKey {
    day: String,
    api_key: String,
    team_id: String,
    user_id: String,
    end_user: String,
    model_group: String,
}

#[derive(Debug, Clone, Copy, Default)]
struct DailySum {
    spend: f64,
    prompt_tokens: i64,
    completion_tokens: i64,
    requests: i64,
    failed_requests: i64,
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Deletes the spend logs that ended before `before` (ms); budgets and daily aggregates keep
/// their sums. How many went.
pub async fn delete_logs_before(store: &Store, before: i64) -> StoreResult<u64> {
    let mut conn = store.conn().await?;
    let done = sqlx::query("DELETE FROM spend_logs WHERE end_time < $1")
        .bind(before)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// Stores a batch in one transaction: the new events' logs, their cost added to the key's,
/// user's, team's (and team member's) and end user's spend, and to the daily aggregates. An
/// event already stored (same request_id) is counted once, whatever batch brings it again.
pub async fn store_batch(store: &Store, events: &[SpendEvent], now: i64) -> StoreResult<SpendAck> {
    let mut tx = store.begin().await?;
    let conn: &mut AnyConnection = &mut tx;
    let mut ack = SpendAck::default();
    let mut holders: BTreeMap<(Holder, String), f64> = BTreeMap::new();
    let mut members: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut daily: BTreeMap<DailyKey, DailySum> = BTreeMap::new();
    let insert = format!(
        "INSERT INTO spend_logs ({LOG_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23) \
         ON CONFLICT (request_id) DO NOTHING"
    );
    for e in events {
        let start = i64::try_from(e.start_ms).unwrap_or(now);
        let done = sqlx::query(&insert)
            .bind(&e.request_id)
            .bind(&e.key_hash)
            .bind(&e.key_alias)
            .bind(&e.user_id)
            .bind(&e.team_id)
            .bind(&e.end_user)
            .bind(&e.requested_model)
            .bind(&e.model_group)
            .bind(&e.deployment)
            .bind(&e.provider)
            .bind(&e.model)
            .bind(&e.endpoint)
            .bind(count(e.prompt_tokens))
            .bind(count(e.completion_tokens))
            .bind(count(e.cached_tokens))
            .bind(count(e.reasoning_tokens))
            .bind(e.cost)
            .bind(start)
            .bind(i64::try_from(e.end_ms).unwrap_or(now))
            .bind(&e.status)
            .bind(i64::from(e.http_status))
            .bind(flag(e.cache_hit))
            .bind(json_text(&e.metadata))
            .execute(&mut *conn)
            .await?;
        if done.rows_affected() == 0 {
            ack.duplicates += 1;
            continue;
        }
        ack.stored += 1;
        let some = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(String::from);
        if e.cost != 0.0 {
            if !e.key_hash.is_empty() {
                *holders
                    .entry((Holder::Key, e.key_hash.clone()))
                    .or_default() += e.cost;
            }
            if let Some(user) = some(&e.user_id) {
                *holders.entry((Holder::User, user)).or_default() += e.cost;
            }
            if let Some(team) = some(&e.team_id) {
                *holders.entry((Holder::Team, team)).or_default() += e.cost;
            }
            if let (Some(team), Some(user)) = (some(&e.team_id), some(&e.user_id)) {
                *members.entry((team, user)).or_default() += e.cost;
            }
        }
        if let Some(end_user) = some(&e.end_user) {
            // Created even at no cost: the end user becomes known.
            *holders.entry((Holder::EndUser, end_user)).or_default() += e.cost;
        }
        let sum = daily
            .entry(DailyKey {
                day: day(start),
                api_key: e.key_hash.clone(),
                team_id: some(&e.team_id).unwrap_or_default(),
                user_id: some(&e.user_id).unwrap_or_default(),
                end_user: some(&e.end_user).unwrap_or_default(),
                model_group: e.model_group.clone(),
            })
            .or_default();
        sum.spend += e.cost;
        sum.prompt_tokens += count(e.prompt_tokens);
        sum.completion_tokens += count(e.completion_tokens);
        sum.requests += 1;
        sum.failed_requests += i64::from(e.status != "success");
    }
    // In key order, so concurrent batches lock rows in the same order.
    for ((holder, id), cost) in &holders {
        if *holder == Holder::EndUser {
            customers::ensure(conn, id, now).await?;
        }
        // A deleted key, user or team spends nothing more; the log keeps the event.
        add_spend(conn, *holder, id, *cost, now).await?;
    }
    for ((team, user), cost) in &members {
        sqlx::query(
            "UPDATE team_members SET spend = spend + $1 WHERE team_id = $2 AND user_id = $3",
        )
        .bind(cost)
        .bind(team)
        .bind(user)
        .execute(&mut *conn)
        .await?;
    }
    for (k, s) in &daily {
        sqlx::query(
            "INSERT INTO spend_daily (day, api_key, team_id, user_id, end_user, model_group, \
             spend, prompt_tokens, completion_tokens, requests, failed_requests) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (day, api_key, team_id, user_id, end_user, model_group) DO UPDATE SET \
             spend = spend_daily.spend + excluded.spend, \
             prompt_tokens = spend_daily.prompt_tokens + excluded.prompt_tokens, \
             completion_tokens = spend_daily.completion_tokens + excluded.completion_tokens, \
             requests = spend_daily.requests + excluded.requests, \
             failed_requests = spend_daily.failed_requests + excluded.failed_requests",
        )
        .bind(&k.day)
        .bind(&k.api_key)
        .bind(&k.team_id)
        .bind(&k.user_id)
        .bind(&k.end_user)
        .bind(&k.model_group)
        .bind(s.spend)
        .bind(s.prompt_tokens)
        .bind(s.completion_tokens)
        .bind(s.requests)
        .bind(s.failed_requests)
        .execute(&mut *conn)
        .await?;
    }
    tx.commit().await?;
    Ok(ack)
}

/// Which logs `/spend/logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub api_key: Option<String>,
    pub user_id: Option<String>,
    pub request_id: Option<String>,
    /// ms, inclusive.
    pub start: Option<i64>,
    /// ms, exclusive.
    pub end: Option<i64>,
}

/// Logs, newest first, at most `limit`.
pub async fn logs(
    conn: &mut AnyConnection,
    filter: &LogFilter,
    limit: i64,
) -> StoreResult<Vec<LogRow>> {
    let sql = format!(
        "SELECT {LOG_COLUMNS} FROM spend_logs WHERE ($1 IS NULL OR api_key = $1) \
         AND ($2 IS NULL OR user_id = $2) AND ($3 IS NULL OR request_id = $3) \
         AND ($4 IS NULL OR start_time >= $4) AND ($5 IS NULL OR start_time < $5) \
         ORDER BY start_time DESC, request_id LIMIT $6"
    );
    Ok(sqlx::query_as(&sql)
        .bind(&filter.api_key)
        .bind(&filter.user_id)
        .bind(&filter.request_id)
        .bind(filter.start)
        .bind(filter.end)
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

/// One row of `spend_daily`.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct DailyRow {
    pub day: String,
    pub api_key: String,
    pub team_id: String,
    pub user_id: String,
    pub end_user: String,
    pub model_group: String,
    pub spend: f64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub requests: i64,
    pub failed_requests: i64,
}

/// Which aggregates a report reads; '' dimensions are requests without one.
#[derive(Debug, Clone, Default)]
pub struct DailyFilter {
    /// `YYYY-MM-DD`, inclusive.
    pub first_day: Option<String>,
    pub last_day: Option<String>,
    pub api_key: Option<String>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub end_user: Option<String>,
}

/// The aggregates of a range of days (a range of the primary key).
pub async fn daily(conn: &mut AnyConnection, filter: &DailyFilter) -> StoreResult<Vec<DailyRow>> {
    Ok(sqlx::query_as(
        "SELECT day, api_key, team_id, user_id, end_user, model_group, spend, prompt_tokens, \
         completion_tokens, requests, failed_requests FROM spend_daily \
         WHERE ($1 IS NULL OR day >= $1) AND ($2 IS NULL OR day <= $2) \
         AND ($3 IS NULL OR api_key = $3) AND ($4 IS NULL OR user_id = $4) \
         AND ($5 IS NULL OR team_id = $5) AND ($6 IS NULL OR end_user = $6) \
         ORDER BY day, team_id, end_user, api_key, model_group",
    )
    .bind(&filter.first_day)
    .bind(&filter.last_day)
    .bind(&filter.api_key)
    .bind(&filter.user_id)
    .bind(&filter.team_id)
    .bind(&filter.end_user)
    .fetch_all(conn)
    .await?)
}

/// All spend ever, from the aggregates.
pub async fn total(conn: &mut AnyConnection) -> StoreResult<f64> {
    let (total,): (Option<f64>,) = sqlx::query_as("SELECT SUM(spend) FROM spend_daily")
        .fetch_one(conn)
        .await?;
    Ok(total.unwrap_or(0.0))
}
