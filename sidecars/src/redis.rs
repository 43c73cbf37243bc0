//! The sidecar's connection to Redis (a fleet's shared state: the response cache, semantic
//! vectors, rate-limit counters). One multiplexed connection, made lazily and remade by
//! redis-rs's connection manager after Redis restarts. Redis is an optimisation the gateway
//! can live without, so every operation is bounded by a short timeout and its failure is a
//! value the caller turns into a miss or a 503: a dead or slow Redis never stalls a request
//! and never stops the sidecar from starting. A background probe pings Redis every few
//! seconds, so readiness knows whether it answers and a Redis that comes back is noticed
//! (and logged) even when nothing else is asking.
//!
//! The URL may carry a password: only the host and port are ever logged or shown.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// A cache lookup waits at most this long: past it, a miss is cheaper than waiting.
pub const GET_TIMEOUT: Duration = Duration::from_millis(100);
/// Any other operation (puts, limit syncs, vector reads).
pub const OP_TIMEOUT: Duration = Duration::from_millis(250);
/// How often the background probe pings Redis.
const PROBE_EVERY: Duration = Duration::from_secs(2);

/// Why a Redis operation gave no answer.
#[derive(Debug, Clone, PartialEq)]
pub enum RedisError {
    /// No answer within the operation's timeout.
    Timeout(Duration),
    /// Redis refused or the connection failed.
    Failed(String),
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisError::Timeout(t) => write!(f, "Redis did not answer within {} ms", t.as_millis()),
            RedisError::Failed(why) => write!(f, "Redis failed: {why}"),
        }
    }
}

/// What readiness reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub connected: bool,
    /// The last failure, while disconnected.
    pub last_error: Option<String>,
}

/// A handle on Redis, cheap to clone.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    /// `host:port`, never the password.
    address: String,
    health: Mutex<Health>,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redis({})", self.inner.address)
    }
}

impl Redis {
    /// A handle on the Redis at `url`, returned at once: the connection is made on first use
    /// and by the background probe. Err only for a URL that cannot be used (the message does
    /// not quote it: it may hold a password). Must be called inside a Tokio runtime.
    pub fn connect(url: &str) -> Result<Redis, String> {
        let client = redis::Client::open(url).map_err(|e| {
            format!("the Redis URL is not usable: {} (redis://[:password@]host[:port][/db] is expected; rediss:// is not supported)", e.category())
        })?;
        let address = client.get_connection_info().addr().to_string();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            // Few retries per attempt: a failed attempt is retried by the next operation or
            // probe anyway, so a Redis that comes back is found within seconds.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("cannot set up the Redis connection: {}", e.category()))?;
        let redis = Redis {
            inner: Arc::new(Inner {
                conn,
                address,
                health: Mutex::new(Health {
                    connected: false,
                    last_error: Some("not connected yet".into()),
                }),
            }),
        };
        tracing::info!("Redis at {}", redis.inner.address);
        tokio::spawn(probe(Arc::downgrade(&redis.inner)));
        Ok(redis)
    }

    /// `host:port` of the server.
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    pub fn health(&self) -> Health {
        match self.inner.health.lock() {
            Ok(h) => h.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Runs `op` on the connection, bounded by `timeout`; the outcome also updates the health
    /// readiness reports.
    pub async fn run<T, F, Fut>(&self, timeout: Duration, op: F) -> Result<T, RedisError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let result = match tokio::time::timeout(timeout, op(self.inner.conn.clone())).await {
            Ok(Ok(value)) => Ok(value),
            // Connection and server errors name no part of the URL.
            Ok(Err(e)) => Err(RedisError::Failed(e.to_string())),
            Err(_) => Err(RedisError::Timeout(timeout)),
        };
        self.inner.record(result.as_ref().err());
        result
    }

    /// Whether Redis answers a PING now.
    pub async fn ping(&self) -> bool {
        self.run(OP_TIMEOUT, |mut c| async move {
            redis::cmd("PING").query_async::<String>(&mut c).await
        })
        .await
        .is_ok()
    }
}

impl Inner {
    /// Keeps the health current and logs its changes (not every failed operation: a dead
    /// Redis under load would flood the log).
    fn record(&self, error: Option<&RedisError>) {
        let mut health = match self.health.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        match error {
            None => {
                if !health.connected {
                    tracing::info!("Redis at {} is connected", self.address);
                }
                *health = Health {
                    connected: true,
                    last_error: None,
                };
            }
            Some(e) => {
                if health.connected || health.last_error.as_deref() == Some("not connected yet") {
                    tracing::warn!(
                        "Redis at {} does not answer ({e}): the response cache misses and rate limits are counted per instance until it is back",
                        self.address
                    );
                }
                *health = Health {
                    connected: false,
                    last_error: Some(e.to_string()),
                };
            }
        }
    }
}

/// Pings Redis until the handle is dropped: keeps reconnecting while Redis is away.
async fn probe(inner: Weak<Inner>) {
    loop {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        Redis { inner }.ping().await;
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// Helpers for tests that need Redis: the machine's at 127.0.0.1:6379, one of their own
/// they can stop, or a port nothing listens on.
#[cfg(test)]
pub mod testing {
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    pub const LOCAL: &str = "redis://127.0.0.1:6379";

    /// A name no other test run uses.
    pub fn unique(prefix: &str) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!(
            "test:{prefix}:{}:{nanos}:{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A port nothing listens on.
    pub fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    }

    /// A redis-server of the test's own, killed when dropped.
    pub struct Server {
        pub port: u16,
        child: Option<Child>,
    }

    impl Server {
        pub fn start() -> Server {
            let mut server = Server {
                port: closed_port(),
                child: None,
            };
            server.restart();
            server
        }

        pub fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.port)
        }

        /// Starts it (again, on the same port) and waits until it accepts connections.
        pub fn restart(&mut self) {
            let child = Command::new("redis-server")
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server is installed");
            self.child = Some(child);
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            panic!("redis-server did not start on port {}", self.port);
        }

        /// Kills it (by its pid) and waits until it is gone.
        pub fn stop(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_a_quick_failure_and_disconnected() {
        let port = closed_port();
        let redis = Redis::connect(&format!("redis://:secret@127.0.0.1:{port}")).expect("url");
        assert_eq!(redis.address(), format!("127.0.0.1:{port}"));
        let started = std::time::Instant::now();
        assert!(!redis.ping().await);
        assert!(started.elapsed() < OP_TIMEOUT + Duration::from_millis(100));
        let health = redis.health();
        assert!(!health.connected);
        assert!(!format!("{health:?}").contains("secret"));
        assert!(!format!("{redis:?}").contains("secret"));
    }

    #[test]
    fn a_bad_url_is_an_error_that_does_not_quote_it() {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let _guard = rt.enter();
        let e = Redis::connect("http://:secret@host").expect_err("not redis");
        assert!(!e.contains("secret"), "{e}");
    }

    #[tokio::test]
    async fn the_local_redis_is_connected() {
        let redis = Redis::connect(LOCAL).expect("url");
        assert!(redis.ping().await, "{:?}", redis.health());
        assert!(redis.health().connected);
    }

    #[tokio::test]
    async fn a_redis_that_stops_is_disconnected_within_the_timeout_and_found_again() {
        let mut server = Server::start();
        let redis = Redis::connect(&server.url()).expect("url");
        assert!(redis.ping().await);
        server.stop();
        let started = std::time::Instant::now();
        assert!(!redis.ping().await);
        assert!(started.elapsed() < OP_TIMEOUT + Duration::from_millis(100));
        assert!(!redis.health().connected);
        server.restart();
        let mut back = false;
        for _ in 0..50 {
            if redis.ping().await {
                back = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(back, "reconnected: {:?}", redis.health());
        assert!(redis.health().connected);
    }
}
