//! Budgets with a period (`budget_duration`): the store keeps when the period ends
//! (`budget_reset_at`) and starts it again lazily, when the holder is read or spends, so no
//! timer has to run and a sidecar that was down catches up on its first read.

use sqlx::AnyConnection;

use super::time::{next_reset, parse_budget_period};
use super::StoreResult;

/// The tables that hold a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Holder {
    Key,
    User,
    Team,
    EndUser,
}

impl Holder {
    fn table(self) -> &'static str {
        match self {
            Holder::Key => "keys",
            Holder::User => "users",
            Holder::Team => "teams",
            Holder::EndUser => "end_users",
        }
    }

    fn id_column(self) -> &'static str {
        match self {
            Holder::Key => "token",
            Holder::User | Holder::EndUser => "user_id",
            Holder::Team => "team_id",
        }
    }
}

/// A holder's budget columns as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub spend: f64,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<i64>,
}

/// A row of a table that holds a budget: its columns, and where its period is.
pub trait Budgeted {
    const HOLDER: Holder;
    /// The columns a row is read from, as the SELECT lists them.
    const COLUMNS: &'static str;
    /// Its spend, budget_duration and budget_reset_at.
    fn period(&mut self) -> (&mut f64, Option<&str>, &mut Option<i64>);
}

/// `Budgeted` for a row type with `spend`, `budget_duration` and `budget_reset_at` fields.
macro_rules! budgeted {
    ($row:ty, $holder:expr, $columns:expr) => {
        impl $crate::store::budget::Budgeted for $row {
            const HOLDER: $crate::store::budget::Holder = $holder;
            const COLUMNS: &'static str = $columns;
            fn period(&mut self) -> (&mut f64, Option<&str>, &mut Option<i64>) {
                (
                    &mut self.spend,
                    self.budget_duration.as_deref(),
                    &mut self.budget_reset_at,
                )
            }
        }
    };
}
pub(crate) use budgeted;

/// The holder's row with this id, its budget period started again if it ended: what every
/// holder's `get` is.
pub async fn get_row<R>(conn: &mut AnyConnection, id: &str, now: i64) -> StoreResult<Option<R>>
where
    R: Budgeted + for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let sql = format!(
        "SELECT {} FROM {} WHERE {} = $1",
        R::COLUMNS,
        R::HOLDER.table(),
        R::HOLDER.id_column()
    );
    let row: Option<R> = sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(mut row) = row else {
        return Ok(None);
    };
    let (spend, duration, reset_at) = row.period();
    let mut period = Period {
        spend: *spend,
        budget_duration: duration.map(str::to_string),
        budget_reset_at: *reset_at,
    };
    refresh(conn, R::HOLDER, id, &mut period, now).await?;
    let (spend, _, reset_at) = row.period();
    *spend = period.spend;
    *reset_at = period.budget_reset_at;
    Ok(Some(row))
}

/// When the period has ended: spend back to 0 and the next reset time, in the database and in
/// `period`. The update is conditional on the old reset time, so two sidecars resetting at once
/// reset once.
pub async fn refresh(
    conn: &mut AnyConnection,
    holder: Holder,
    id: &str,
    period: &mut Period,
    now: i64,
) -> StoreResult<()> {
    let (Some(duration), Some(reset_at)) = (&period.budget_duration, period.budget_reset_at) else {
        return Ok(());
    };
    if reset_at > now {
        return Ok(());
    }
    // Validated when it was set; an unreadable one never resets.
    let Ok(parsed) = parse_budget_period(duration) else {
        return Ok(());
    };
    let next = next_reset(parsed, now);
    let sql = format!(
        "UPDATE {} SET spend = 0.0, budget_reset_at = $1 WHERE {} = $2 AND budget_reset_at = $3",
        holder.table(),
        holder.id_column()
    );
    sqlx::query(&sql)
        .bind(next)
        .bind(id)
        .bind(reset_at)
        .execute(&mut *conn)
        .await?;
    period.spend = 0.0;
    period.budget_reset_at = Some(next);
    Ok(())
}

/// Reads a holder's period, starts it again if it ended, and adds `cost` to its spend. Returns
/// false when the holder does not exist.
pub async fn add_spend(
    conn: &mut AnyConnection,
    holder: Holder,
    id: &str,
    cost: f64,
    now: i64,
) -> StoreResult<bool> {
    let select = format!(
        "SELECT spend, budget_duration, budget_reset_at FROM {} WHERE {} = $1",
        holder.table(),
        holder.id_column()
    );
    let row: Option<(f64, Option<String>, Option<i64>)> = sqlx::query_as(&select)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some((spend, budget_duration, budget_reset_at)) = row else {
        return Ok(false);
    };
    let mut period = Period {
        spend,
        budget_duration,
        budget_reset_at,
    };
    refresh(conn, holder, id, &mut period, now).await?;
    let update = format!(
        "UPDATE {} SET spend = spend + $1 WHERE {} = $2",
        holder.table(),
        holder.id_column()
    );
    sqlx::query(&update)
        .bind(cost)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// The reset time of a period set now, or None without one.
pub fn first_reset(budget_duration: Option<&str>, now: i64) -> Result<Option<i64>, String> {
    budget_duration
        .map(|d| parse_budget_period(d).map(|p| next_reset(p, now)))
        .transpose()
}
