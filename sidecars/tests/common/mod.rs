//! A sidecar with a store, over real HTTP on 127.0.0.1, on SQLite (a temporary file) or on
//! PostgreSQL (127.0.0.1:5432, a fresh database per test, dropped after). Set
//! `SWITCHYARD_TEST_POSTGRES` to another server's URL (without a database name) to use it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::path::PathBuf;

use serde_json::Value;
use sqlx::Connection as _;
use switchyard_config::model::Secret;
use switchyard_config::ProxyConfig;
use switchyard_sidecar::service::{self, AppState};
use switchyard_sidecar::store::{Store, Target};
use tokio::sync::oneshot;

pub const MASTER: &str = "sk-master-test-key";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

fn postgres_server() -> String {
    std::env::var("SWITCHYARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string())
}

/// A database for one test, removed when dropped (even when the test fails).
pub enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Db {
    pub async fn new(kind: Kind) -> Db {
        match kind {
            Kind::Sqlite => Db::Sqlite(tempfile::tempdir().unwrap()),
            Kind::Postgres => {
                let mut bytes = [0u8; 8];
                getrandom::fill(&mut bytes).unwrap();
                let name = format!(
                    "switchyard_test_{}",
                    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
                );
                let mut admin = sqlx::PgConnection::connect(&format!("{}/test", postgres_server()))
                    .await
                    .expect("PostgreSQL at 127.0.0.1:5432 (user postgres, database test)");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                Db::Postgres(name)
            }
        }
    }

    pub fn target(&self) -> Target {
        match self {
            Db::Sqlite(dir) => Target::Sqlite(dir.path().join("switchyard.db")),
            Db::Postgres(name) => Target::Url {
                url: format!("{}/{name}", postgres_server()),
                from: "the test",
            },
        }
    }

    pub fn sqlite_path(&self) -> Option<PathBuf> {
        match self {
            Db::Sqlite(dir) => Some(dir.path().join("switchyard.db")),
            Db::Postgres(_) => None,
        }
    }

    /// Drops the PostgreSQL database now (connections are cut).
    pub async fn drop_now(&self) {
        if let Db::Postgres(name) = self {
            let mut admin = sqlx::PgConnection::connect(&format!("{}/test", postgres_server()))
                .await
                .unwrap();
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .unwrap();
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Db::Postgres(name) = self {
            let name = name.clone();
            // Drop runs outside async; a thread with its own runtime does the async work.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut admin) =
                        sqlx::PgConnection::connect(&format!("{}/test", postgres_server())).await
                    {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut admin)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

/// A config whose master key is [`MASTER`].
pub fn config() -> ProxyConfig {
    let mut config = ProxyConfig::default();
    config.general_settings.master_key = Some(Secret::Literal(MASTER.into()));
    config
}

pub struct Server {
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub client: reqwest::Client,
    pub db: Db,
}

impl Server {
    pub async fn start(kind: Kind) -> Server {
        Server::start_with(kind, config()).await
    }

    pub async fn start_with(kind: Kind, config: ProxyConfig) -> Server {
        let db = Db::new(kind).await;
        Server::on(db, config).await
    }

    /// A server on an existing database (a restart).
    pub async fn on(db: Db, config: ProxyConfig) -> Server {
        let store = Store::open(&db.target()).await.unwrap();
        let state = AppState::new(config).unwrap().with_store(store);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(service::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Server {
            base,
            stop: Some(stop),
            task: Some(task),
            client: reqwest::Client::new(),
            db,
        }
    }

    /// Stops the server; returns its database (to start another on it).
    pub async fn stop(mut self) -> Db {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        std::mem::replace(&mut self.db, Db::Sqlite(tempfile::tempdir().unwrap()))
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// POST with the master key; panics unless 200.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, value) = self
            .call(reqwest::Method::POST, path, Some(&body), Some(MASTER))
            .await;
        assert_eq!(status, 200, "POST {path} {body}: {value}");
        value
    }

    /// GET with the master key; panics unless 200.
    pub async fn get(&self, path: &str) -> Value {
        let (status, value) = self
            .call(reqwest::Method::GET, path, None, Some(MASTER))
            .await;
        assert_eq!(status, 200, "GET {path}: {value}");
        value
    }

    /// POST with the master key, expecting an error: its status and body.
    pub async fn post_err(&self, path: &str, body: Value) -> (u16, Value) {
        let (status, value) = self
            .call(reqwest::Method::POST, path, Some(&body), Some(MASTER))
            .await;
        assert_ne!(status, 200, "POST {path} {body} should fail: {value}");
        (status, value)
    }

    /// The gateway's view of a key (internal API): status and record.
    pub async fn record(&self, token: &str) -> (u16, Value) {
        self.call(
            reqwest::Method::GET,
            &format!("/internal/v1/keys/{token}"),
            None,
            None,
        )
        .await
    }

    pub async fn spend(&self, events: Vec<Value>) -> Value {
        let (status, value) = self
            .call(
                reqwest::Method::POST,
                "/internal/v1/spend",
                Some(&serde_json::json!({ "events": events })),
                None,
            )
            .await;
        assert_eq!(status, 200, "spend: {value}");
        value
    }

    pub async fn changes(&self, after: u64) -> Value {
        let (status, value) = self
            .call(
                reqwest::Method::GET,
                &format!("/internal/v1/changes?after={after}"),
                None,
                None,
            )
            .await;
        assert_eq!(status, 200, "changes: {value}");
        value
    }

    /// Runs SQL on the test's database (to move a budget period's end into the past).
    pub async fn sql(&self, sql: &str) {
        let mut conn = self.connect().await;
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }

    /// A count from the test's database.
    pub async fn count(&self, sql: &str) -> i64 {
        let mut conn = self.connect().await;
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&mut conn).await.unwrap();
        n
    }

    async fn connect(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        let url = match self.db.target() {
            Target::Sqlite(path) => format!("sqlite://{}", path.display()),
            Target::Url { url, .. } => url,
        };
        sqlx::AnyConnection::connect(&url).await.unwrap()
    }
}

/// A spend event with the fields the gateway fills in.
pub fn event(request_id: &str, key_hash: &str, cost: f64) -> Value {
    serde_json::json!({
        "request_id": request_id,
        "key_hash": key_hash,
        "requested_model": "gpt-4o",
        "model_group": "gpt-4o",
        "deployment": "d1",
        "provider": "openai",
        "model": "gpt-4o-2024-08-06",
        "endpoint": "/v1/chat/completions",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost": cost,
        "start_ms": now_ms(),
        "end_ms": now_ms() + 100,
        "status": "success",
        "http_status": 200,
    })
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Both databases for each test: `both!(name);` makes `name_sqlite` and `name_postgres`
/// running `async fn name(kind: Kind)`.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::Kind::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::Kind::Postgres).await;
                }
            )*
        }
    };
}
