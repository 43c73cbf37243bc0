//! The response cache, in the sidecar's memory (LiteLLM's `type: local`): answers by their
//! key (switchyard-core's `cache::key`), each expiring after its own TTL, the whole bounded
//! in bytes (the least recently used go first when it is full). Redis, for a fleet, comes
//! behind the same two calls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;
use moka::Expiry;
use switchyard_config::{CachePut, CachedAnswer};

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
    pub fn put(&self, put: CachePut, now_ms: u64) {
        if put.ttl_s == 0 || put.key.is_empty() {
            return;
        }
        let ttl = Duration::from_secs(put.ttl_s).min(MAX_TTL);
        self.entries.insert(
            put.key,
            Arc::new(Entry {
                body: put.body,
                stored_ms: now_ms,
                ttl,
            }),
        );
    }

    /// The answer under `key`, if it has not expired (and, with `max_age_s`, was stored at
    /// most that long ago).
    pub fn get(&self, key: &str, max_age_s: Option<u64>, now_ms: u64) -> Option<CachedAnswer> {
        let e = self.entries.get(key)?;
        if let Some(age) = max_age_s {
            if now_ms.saturating_sub(e.stored_ms) > age.saturating_mul(1000) {
                return None;
            }
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
        c.put(put("k", 1, "{\"a\":1}"), 1_000);
        let got = c.get("k", None, 1_500).expect("kept");
        assert_eq!((got.body.as_str(), got.stored_ms), ("{\"a\":1}", 1_000));
        assert_eq!(c.get("other", None, 1_500), None);
        std::thread::sleep(Duration::from_millis(1_100));
        assert_eq!(c.get("k", None, 2_600), None, "expired");
    }

    #[test]
    fn s_maxage_refuses_older_answers() {
        let c = ResponseCache::default();
        c.put(put("k", 60, "x"), 10_000);
        assert!(c.get("k", Some(5), 14_000).is_some());
        assert!(c.get("k", Some(5), 16_000).is_none());
        c.put(put("none", 0, "x"), 0);
        assert!(c.get("none", None, 0).is_none(), "a TTL of 0 keeps nothing");
    }

    #[test]
    fn bounded_in_bytes() {
        let c = ResponseCache::new(10_000);
        let body = "x".repeat(1_000);
        for i in 0..100 {
            c.put(put(&format!("k{i}"), 60, &body), 0);
        }
        let (_, bytes) = c.size();
        assert!(bytes <= 10_000, "{bytes}");
    }
}
