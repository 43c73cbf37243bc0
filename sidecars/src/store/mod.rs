//! The sidecar's store: virtual keys, users, teams and their members, end users, spend logs
//! and daily aggregates, and the change log the gateways long-poll. SQLite (one file, WAL) by
//! default, PostgreSQL when `database_url` (or `DATABASE_URL`) is set. sqlx's Any driver gives
//! both one code path: the SQL is written once, in what both databases agree on (`$N`
//! parameters, INTEGER/REAL/TEXT values, `ON CONFLICT` upserts); only the migrations are
//! spelled per database (`migrations/sqlite`, `migrations/postgres`).

pub mod budget;
pub mod changes;
pub mod customers;
pub mod keys;
pub mod spend;
pub mod teams;
pub mod time;
pub mod users;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::AnyConnection;
use sqlx::{AnyPool, Executor as _, Transaction};
use switchyard_config::ProxyConfig;
use tokio::sync::{watch, Notify};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The SQLite file when nothing else is configured.
pub const DEFAULT_DATABASE_PATH: &str = "switchyard.db";

/// How long a request waits for a database connection before answering 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Which database the store lives in.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    Sqlite(PathBuf),
    /// A database URL (`postgres://...`); `from` says where it was set. Never printed: it
    /// may hold a password.
    Url {
        url: String,
        from: &'static str,
    },
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Target {
    /// `general_settings.database_url`, else `DATABASE_URL` (as LiteLLM reads it), else SQLite
    /// at `--database-path`, `general_settings.database_path` or `switchyard.db`.
    pub fn choose(
        config: &ProxyConfig,
        flag_path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Target, String> {
        let general = &config.general_settings;
        if let Some(secret) = &general.database_url {
            let url = secret.resolve(env).ok_or_else(|| {
                format!(
                    "general_settings.database_url is {secret:?}, which is not set in the environment"
                )
            })?;
            return Ok(Target::Url {
                url,
                from: "general_settings.database_url",
            });
        }
        if let Some(url) = env("DATABASE_URL").filter(|u| !u.trim().is_empty()) {
            return Ok(Target::Url {
                url,
                from: "DATABASE_URL",
            });
        }
        let path = flag_path
            .map(Path::to_path_buf)
            .or_else(|| general.database_path.as_ref().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATABASE_PATH));
        Ok(Target::Sqlite(path))
    }

    /// For logs and errors: the SQLite path, or where the URL came from (never the URL).
    pub fn describe(&self) -> String {
        match self {
            Target::Sqlite(path) => format!("SQLite at {}", path.display()),
            Target::Url { url, from } => {
                let kind = url.split(':').next().unwrap_or("");
                format!("the {kind} database of {from}")
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store and what waits on it.
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Woken after every committed change, for the changes long-poll.
    changed: Notify,
    /// Set when the sidecar shuts down: long-polls answer at once.
    closing: watch::Sender<bool>,
}

/// What went wrong with the database.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    /// The database cannot be reached (down, restarting, locked for too long): 503.
    Unavailable(String),
    /// Anything else: 500.
    Failed(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable(e) | StoreError::Failed(e) => f.write_str(e),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        let unavailable = match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                // PostgreSQL: connection exceptions (08), operator intervention such as a
                // shutdown (57), insufficient resources (53), a database that is gone (3D000).
                // SQLite: busy (5), locked (6), I/O error (10), disk full (13), cannot open (14).
                code.starts_with("08")
                    || code.starts_with("57")
                    || code.starts_with("53")
                    || code == "3D000"
                    || ["5", "6", "10", "13", "14"].contains(&code.as_ref())
            }),
            _ => false,
        };
        if unavailable {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Failed(e.to_string())
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// general_settings.database_connection_pool_limit and database_connection_timeout.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PoolSettings {
    pub max_connections: Option<u32>,
    pub acquire_timeout: Option<Duration>,
}

impl PoolSettings {
    pub fn from_config(config: &ProxyConfig) -> PoolSettings {
        let gs = &config.general_settings;
        PoolSettings {
            max_connections: gs.database_connection_pool_limit.filter(|n| *n > 0),
            acquire_timeout: gs
                .database_connection_timeout
                .filter(|s| *s > 0.0 && s.is_finite())
                .map(Duration::from_secs_f64),
        }
    }
}

impl Store {
    /// Connects, creates the SQLite file if needed, and applies the migrations not yet applied.
    pub async fn open(target: &Target) -> Result<Store, String> {
        Store::open_with(target, PoolSettings::default()).await
    }

    /// [`Store::open`] with the config's pool settings.
    pub async fn open_with(target: &Target, pool: PoolSettings) -> Result<Store, String> {
        sqlx::any::install_default_drivers();
        let what = target.describe();
        let (url, backend) = match target {
            Target::Sqlite(path) => (
                format!("sqlite://{}?mode=rwc", encode_path(path)),
                Backend::Sqlite,
            ),
            Target::Url { url, .. } => {
                let scheme = url.split(':').next().unwrap_or("");
                let backend = match scheme {
                    "postgres" | "postgresql" => Backend::Postgres,
                    "sqlite" => Backend::Sqlite,
                    _ => {
                        return Err(format!(
                            "{what}: Switchyard stores keys and spend in PostgreSQL (postgres://user:password@host:5432/db) or SQLite; {scheme:?} is neither"
                        ))
                    }
                };
                (url.clone(), backend)
            }
        };
        let options = AnyPoolOptions::new()
            .max_connections(pool.max_connections.unwrap_or(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 10,
            }))
            .acquire_timeout(pool.acquire_timeout.unwrap_or(ACQUIRE_TIMEOUT))
            .after_connect(move |conn: &mut AnyConnection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // In WAL mode (set once per file, below) NORMAL keeps the file
                        // consistent and a commit survives the process crashing; only a power
                        // cut can lose the last commits. SQLite recommends it for WAL.
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            });
        let pool = options
            .connect(&url)
            .await
            .map_err(|e| format!("cannot open {what}: {e}"))?;
        let store = Store {
            pool,
            backend,
            changed: Notify::new(),
            closing: watch::channel(false).0,
        };
        store
            .migrate()
            .await
            .map_err(|e| format!("cannot prepare {what}: {e}"))?;
        tracing::info!("store: {what}");
        Ok(store)
    }

    /// Applies the pending migrations. sqlx locks PostgreSQL while it migrates; SQLite has no
    /// such lock, so several sidecars starting on one new file at once may race: the loser's
    /// migration fails (and rolls back) and it tries again, finding the work done.
    async fn migrate(&self) -> Result<(), sqlx::Error> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let mut attempt = 0;
        loop {
            let result = async {
                if self.backend == Backend::Sqlite {
                    self.pool.execute("PRAGMA journal_mode = WAL").await?;
                }
                migrator.run(&self.pool).await.map_err(sqlx::Error::from)
            }
            .await;
            match result {
                Ok(()) => return Ok(()),
                Err(e) if self.backend == Backend::Sqlite && attempt < 5 => {
                    tracing::debug!("migration attempt {attempt} failed, retrying: {e}");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A connection from the pool (an error says the database cannot be reached).
    pub async fn conn(&self) -> StoreResult<sqlx::pool::PoolConnection<sqlx::Any>> {
        Ok(self.pool.acquire().await?)
    }

    /// A write transaction. SQLite's takes the write lock at once (BEGIN IMMEDIATE), so two
    /// transactions that read before they write wait for each other instead of failing.
    pub async fn begin(&self) -> StoreResult<Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Wakes the changes long-polls; call after committing a change.
    pub fn notify_changed(&self) {
        self.changed.notify_waiters();
    }

    /// Ends the long-polls (the sidecar is stopping).
    pub fn close(&self) {
        self.closing.send_replace(true);
        self.changed.notify_waiters();
    }

    pub fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    pub fn changed(&self) -> &Notify {
        &self.changed
    }

    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}

/// A path in a `sqlite://` URL: `%`, `?` and `#` would be read as URL syntax.
fn encode_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// JSON text of a value the store keeps as TEXT.
pub(crate) fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

/// A TEXT column holding JSON, or the type's default when it does not parse.
pub(crate) fn from_json<T: serde::de::DeserializeOwned + Default>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_default()
}

/// An optional amount of USD as a bind parameter. sqlx 0.8.6's Any driver hands PostgreSQL a
/// NULL f64 as a float4 (and a NULL f32 as a float8): the statement PostgreSQL prepares and
/// caches then refuses the next non-NULL f64 ("incorrect binary data format"). So a NULL is
/// bound as f32's, which arrives as the float8 the columns are.
pub(crate) struct Usd(pub Option<f64>);

impl sqlx::Type<sqlx::Any> for Usd {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <f64 as sqlx::Type<sqlx::Any>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, sqlx::Any> for Usd {
    fn encode_by_ref(
        &self,
        buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        match self.0 {
            Some(v) => <f64 as sqlx::Encode<'q, sqlx::Any>>::encode_by_ref(&v, buf),
            None => <Option<f32> as sqlx::Encode<'q, sqlx::Any>>::encode_by_ref(&None, buf),
        }
    }
}

/// The flag columns are INTEGER 0/1 (the Any driver has no boolean SQLite can give back).
pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let config = ProxyConfig::default();
        let none = |_: &str| None;
        assert_eq!(
            Target::choose(&config, None, &none),
            Ok(Target::Sqlite(PathBuf::from("switchyard.db")))
        );
        assert_eq!(
            Target::choose(&config, Some(Path::new("/tmp/x.db")), &none),
            Ok(Target::Sqlite(PathBuf::from("/tmp/x.db")))
        );
        let env = |name: &str| (name == "DATABASE_URL").then(|| "postgres://u:pw@h/db".to_string());
        let target = Target::choose(&config, Some(Path::new("/tmp/x.db")), &env);
        assert!(matches!(
            &target,
            Ok(Target::Url {
                from: "DATABASE_URL",
                ..
            })
        ));
        let shown = format!("{target:?}");
        assert!(!shown.contains("pw"), "{shown}");
        assert_eq!(encode_path(Path::new("/a b/c?d#e%f")), "/a b/c%3Fd%23e%25f");
    }

    #[tokio::test]
    async fn the_pool_takes_the_configs_limits() {
        let config = switchyard_config::load_str(
            "general_settings: {database_connection_pool_limit: 2, database_connection_timeout: 7}",
            None,
        )
        .unwrap()
        .config;
        let pool = PoolSettings::from_config(&config);
        assert_eq!(pool.max_connections, Some(2));
        assert_eq!(pool.acquire_timeout, Some(Duration::from_secs(7)));
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(&Target::Sqlite(dir.path().join("s.db")), pool)
            .await
            .unwrap();
        assert_eq!(store.pool.options().get_max_connections(), 2);
        assert_eq!(
            store.pool.options().get_acquire_timeout(),
            Duration::from_secs(7)
        );
    }
}
