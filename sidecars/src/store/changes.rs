//! The change log: what a gateway must drop from its cache (a key blocked, deleted, updated or
//! regenerated; a budget or membership that bounds keys or an end user changed). Every change
//! is a row with a sequence number the database assigns, so the sequence survives restarts
//! and is shared by every sidecar on one database.

use std::collections::BTreeSet;

use sqlx::AnyConnection;
use switchyard_config::Changes;

use super::StoreResult;

/// Rows kept; a gateway further behind than this is told to drop everything.
const KEEP: i64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A key hash.
    Key,
    /// An end user id.
    Customer,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Key => "key",
            Kind::Customer => "customer",
        }
    }
}

/// Records changes (in the caller's transaction); call `Store::notify_changed` after commit.
pub async fn record(
    conn: &mut AnyConnection,
    kind: Kind,
    ids: &[String],
    now: i64,
) -> StoreResult<()> {
    for id in ids {
        sqlx::query("INSERT INTO changes (kind, id, at) VALUES ($1, $2, $3)")
            .bind(kind.as_str())
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    if !ids.is_empty() {
        // A range of the primary key: the oldest rows beyond what is kept.
        sqlx::query("DELETE FROM changes WHERE seq <= (SELECT MAX(seq) FROM changes) - $1")
            .bind(KEEP)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// What changed after `after`, at once (the caller waits when nothing did).
pub async fn since(conn: &mut AnyConnection, after: u64) -> StoreResult<Changes> {
    // One aggregate per query: SQLite answers a lone MAX or MIN from the index.
    let (current,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM changes")
        .fetch_one(&mut *conn)
        .await?;
    let current = u64::try_from(current.unwrap_or(0)).unwrap_or(0);
    if after == current {
        return Ok(Changes {
            seq: current,
            ..Changes::default()
        });
    }
    let (oldest,): (Option<i64>,) = sqlx::query_as("SELECT MIN(seq) FROM changes")
        .fetch_one(&mut *conn)
        .await?;
    let oldest = u64::try_from(oldest.unwrap_or(0)).unwrap_or(0);
    // Ahead of us: this log was reset (a new database). Behind what is kept: pruned. Either
    // way the gateway drops every cached record.
    if after > current || after + 1 < oldest {
        return Ok(Changes {
            seq: current,
            all: true,
            ..Changes::default()
        });
    }
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, id FROM changes WHERE seq > $1 AND seq <= $2 ORDER BY seq")
            .bind(i64::try_from(after).unwrap_or(i64::MAX))
            .bind(i64::try_from(current).unwrap_or(i64::MAX))
            .fetch_all(conn)
            .await?;
    let mut keys = BTreeSet::new();
    let mut customers = BTreeSet::new();
    for (kind, id) in rows {
        if kind == Kind::Customer.as_str() {
            customers.insert(id);
        } else {
            keys.insert(id);
        }
    }
    Ok(Changes {
        seq: current,
        keys: keys.into_iter().collect(),
        customers: customers.into_iter().collect(),
        all: false,
    })
}
