//! The response cache: answers by their key (switchyard-core's `cache::key`, namespace
//! included), each expiring after its own TTL. [`Answers`] keeps them in Redis when the
//! sidecar has one, so every sidecar of a fleet shares them (`SET key {body, stored_ms} EX
//! ttl`), else in this process's memory ([`ResponseCache`], LiteLLM's `type: local`: bounded
//! in bytes, the least recently used go first when it is full). A Redis that does not
//! answer in time turns a lookup into a miss and drops a put: the gateway then asks the
//! provider, as it would without a cache.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;
use moka::Expiry;
use serde::Serialize;
use switchyard_config::{CachePut, CachedAnswer};

use crate::redis::{Redis, GET_TIMEOUT, OP_TIMEOUT};

/// Bytes of answers kept at most, by default.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// The longest an answer is kept, whatever its TTL says.
const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug)]
struct Entry {
    body: String,
    stored_ms: u64,
    ttl: Duration,
}

struct ByTtl;

impl Expiry<String, Arc<Entry>> for ByTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<Entry>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The answers, shared by the sidecar's handlers.
#[derive(Clone)]
pub struct ResponseCache {
    entries: Cache<String, Arc<Entry>>,
}

impl Default for ResponseCache {
    fn default() -> Self {
        ResponseCache::new(DEFAULT_MAX_BYTES)
    }
}

impl ResponseCache {
    pub fn new(max_bytes: u64) -> ResponseCache {
        let entries = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, e: &Arc<Entry>| {
                u32::try_from(key.len() + e.body.len()).unwrap_or(u32::MAX)
            })
            .expire_after(ByTtl)
            .build();
        ResponseCache { entries }
    }

    /// Keeps an answer (a TTL of 0 keeps nothing).
    pub fn put(&self, put: &CachePut, now_ms: u64) {
        if put.ttl_s == 0 || put.key.is_empty() {
            return;
        }
        let ttl = Duration::from_secs(put.ttl_s).min(MAX_TTL);
        self.entries.insert(
            put.key.clone(),
            Arc::new(Entry {
                body: put.body.clone(),
                stored_ms: now_ms,
                ttl,
            }),
        );
    }

    /// The answer under `key`, if it has not expired (and, with `max_age_s`, was stored at
    /// most that long ago).
    pub fn get(&self, key: &str, max_age_s: Option<u64>, now_ms: u64) -> Option<CachedAnswer> {
        let e = self.entries.get(key)?;
        if !fresh(e.stored_ms, max_age_s, now_ms) {
            return None;
        }
        Some(CachedAnswer {
            body: e.body.clone(),
            stored_ms: e.stored_ms,
        })
    }

    /// Entries and bytes kept now (after pending evictions).
    pub fn size(&self) -> (u64, u64) {
        self.entries.run_pending_tasks();
        (self.entries.entry_count(), self.entries.weighted_size())
    }
}

/// Whether an answer stored at `stored_ms` is young enough for a request's `s-maxage`.
fn fresh(stored_ms: u64, max_age_s: Option<u64>, now_ms: u64) -> bool {
    max_age_s.is_none_or(|age| now_ms.saturating_sub(stored_ms) <= age.saturating_mul(1000))
}

/// Where the answers are: Redis when configured, else memory.
#[derive(Clone, Default)]
pub struct Answers {
    memory: ResponseCache,
    redis: Option<Redis>,
    /// Puts Redis did not take (it was down or slow).
    dropped: Arc<AtomicU64>,
}

/// What became of a batch of puts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PutOutcome {
    pub stored: u64,
    pub dropped: u64,
}

impl Answers {
    /// Answers in Redis when `redis` is Some, else in memory.
    pub fn new(redis: Option<Redis>) -> Answers {
        Answers {
            redis,
            ..Answers::default()
        }
    }

    /// `redis` or `local`.
    pub fn backend(&self) -> &'static str {
        if self.redis.is_some() {
            "redis"
        } else {
            "local"
        }
    }

    /// The answer under `key` (stored at most `max_age_s` ago, when given); a Redis that does
    /// not answer is a miss.
    pub async fn get(
        &self,
        key: &str,
        max_age_s: Option<u64>,
        now_ms: u64,
    ) -> Option<CachedAnswer> {
        let Some(redis) = &self.redis else {
            return self.memory.get(key, max_age_s, now_ms);
        };
        let key = key.to_string();
        let stored = redis
            .run(GET_TIMEOUT, |mut c| async move {
                redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Option<String>>(&mut c)
                    .await
            })
            .await;
        let json = match stored {
            Ok(json) => json?,
            Err(e) => {
                tracing::debug!("cache lookup missed: {e}");
                return None;
            }
        };
        // Not ours (another program's key, or an older format): a miss, not an error.
        let answer: CachedAnswer = serde_json::from_str(&json).ok()?;
        fresh(answer.stored_ms, max_age_s, now_ms).then_some(answer)
    }

    /// Keeps the answers: in Redis in one round trip, or in memory. A TTL of 0 keeps nothing.
    pub async fn put_all(&self, puts: &[CachePut], now_ms: u64) -> PutOutcome {
        let puts: Vec<&CachePut> = puts
            .iter()
            .filter(|p| p.ttl_s > 0 && !p.key.is_empty())
            .collect();
        let n = puts.len() as u64;
        let Some(redis) = &self.redis else {
            for p in puts {
                self.memory.put(p, now_ms);
            }
            return PutOutcome {
                stored: n,
                dropped: 0,
            };
        };
        if puts.is_empty() {
            return PutOutcome::default();
        }
        let mut pipe = redis::pipe();
        for p in puts {
            let value = CachedAnswer {
                body: p.body.clone(),
                stored_ms: now_ms,
            };
            let Ok(json) = serde_json::to_string(&value) else {
                continue;
            };
            let ttl = p.ttl_s.min(MAX_TTL.as_secs());
            pipe.cmd("SET")
                .arg(&p.key)
                .arg(json)
                .arg("EX")
                .arg(ttl)
                .ignore();
        }
        let result = redis
            .run(
                OP_TIMEOUT,
                |mut c| async move { pipe.exec_async(&mut c).await },
            )
            .await;
        match result {
            Ok(()) => PutOutcome {
                stored: n,
                dropped: 0,
            },
            Err(e) => {
                let total = self.dropped.fetch_add(n, Ordering::Relaxed) + n;
                tracing::debug!("{n} cached answers dropped ({total} so far): {e}");
                PutOutcome {
                    stored: 0,
                    dropped: n,
                }
            }
        }
    }

    /// Answers Redis did not take since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, ttl_s: u64, body: &str) -> CachePut {
        CachePut {
            key: key.into(),
            ttl_s,
            body: body.into(),
            semantic: None,
        }
    }

    #[test]
    fn answers_come_back_until_they_expire() {
        let c = ResponseCache::default();
        c.put(&put("k", 1, "{\"a\":1}"), 1_000);
        let got = c.get("k", None, 1_500).expect("kept");
        assert_eq!((got.body.as_str(), got.stored_ms), ("{\"a\":1}", 1_000));
        assert_eq!(c.get("other", None, 1_500), None);
        std::thread::sleep(Duration::from_millis(1_100));
        assert_eq!(c.get("k", None, 2_600), None, "expired");
    }

    #[test]
    fn s_maxage_refuses_older_answers() {
        let c = ResponseCache::default();
        c.put(&put("k", 60, "x"), 10_000);
        assert!(c.get("k", Some(5), 14_000).is_some());
        assert!(c.get("k", Some(5), 16_000).is_none());
        c.put(&put("none", 0, "x"), 0);
        assert!(c.get("none", None, 0).is_none(), "a TTL of 0 keeps nothing");
    }

    #[test]
    fn bounded_in_bytes() {
        let c = ResponseCache::new(10_000);
        let body = "x".repeat(1_000);
        for i in 0..100 {
            c.put(&put(&format!("k{i}"), 60, &body), 0);
        }
        let (_, bytes) = c.size();
        assert!(bytes <= 10_000, "{bytes}");
    }

    #[tokio::test]
    async fn in_redis_answers_are_shared_by_sidecars_and_expire_by_their_ttl() {
        use crate::redis::testing::{unique, LOCAL};
        let one = Answers::new(Some(Redis::connect(LOCAL).expect("url")));
        let other = Answers::new(Some(Redis::connect(LOCAL).expect("url")));
        assert_eq!(one.backend(), "redis");
        let key = unique("answer");
        let outcome = one
            .put_all(&[put(&key, 60, "{\"a\":1}"), put("", 60, "no key")], 5_000)
            .await;
        assert_eq!(
            outcome,
            PutOutcome {
                stored: 1,
                dropped: 0
            }
        );
        let got = other.get(&key, None, 6_000).await.expect("shared");
        assert_eq!((got.body.as_str(), got.stored_ms), ("{\"a\":1}", 5_000));
        assert!(other.get(&key, Some(1), 6_000).await.is_some());
        assert!(other.get(&key, Some(1), 6_001).await.is_none(), "s-maxage");
        assert!(other.get(&unique("absent"), None, 6_000).await.is_none());

        let redis = Redis::connect(LOCAL).expect("url");
        let ttl_key = key.clone();
        let ttl: i64 = redis
            .run(OP_TIMEOUT, |mut c| async move {
                redis::cmd("TTL").arg(&ttl_key).query_async(&mut c).await
            })
            .await
            .expect("ttl");
        assert!((55..=60).contains(&ttl), "{ttl}");
    }

    #[tokio::test]
    async fn a_redis_that_does_not_answer_is_a_quick_miss_and_a_counted_drop() {
        use crate::redis::testing::closed_port;
        let port = closed_port();
        let answers = Answers::new(Some(
            Redis::connect(&format!("redis://127.0.0.1:{port}")).expect("url"),
        ));
        let started = std::time::Instant::now();
        assert!(answers.get("k", None, 0).await.is_none());
        let outcome = answers
            .put_all(&[put("k", 60, "x"), put("l", 60, "y")], 0)
            .await;
        assert_eq!(
            outcome,
            PutOutcome {
                stored: 0,
                dropped: 2
            }
        );
        assert_eq!(answers.dropped(), 2);
        assert!(started.elapsed() < GET_TIMEOUT + OP_TIMEOUT + Duration::from_millis(200));
    }

    #[tokio::test]
    async fn without_redis_answers_stay_in_memory() {
        let answers = Answers::new(None);
        assert_eq!(answers.backend(), "local");
        answers.put_all(&[put("k", 60, "x")], 1_000).await;
        assert_eq!(
            answers.get("k", None, 1_000).await.map(|a| a.body),
            Some("x".into())
        );
        assert!(answers.get("k", Some(0), 1_001).await.is_none());
    }
}
