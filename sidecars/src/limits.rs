//! Rate limits across a fleet. Each Envoy counts its own requests, tokens and requests in
//! flight per holder (shared data, per process) and periodically syncs: it sends what it
//! counted since its last sync, and gets back what the other Envoys counted, so it can
//! enforce the fleet's total. The sidecar keeps the counts in Redis:
//!
//! - `switchyard:limit:{name}:{minute}`: a hash with `{instance}:r` (requests) and
//!   `{instance}:t` (tokens) per Envoy, incremented by each sync's deltas (`HINCRBY`), gone
//!   after [`MINUTE_KEPT_S`];
//! - `switchyard:inflight:{name}`: a hash with `{instance}` → `{in_flight}:{ms}`, the last
//!   gauge each Envoy reported and when; a gauge older than [`GAUGE_LIVE_MS`] is a dead
//!   Envoy's and is ignored (the hash itself goes after [`MINUTE_KEPT_S`] without syncs).
//!
//! A sync is one pipeline: the writes and the reads of every counter in one round trip. The
//! gauge's time is this sidecar's clock, so a fleet's clocks should agree within seconds.

use std::collections::HashMap;

use switchyard_config::{LimitCount, LimitSync, LimitTotals};

use crate::redis::{Redis, RedisError, OP_TIMEOUT};

/// Seconds a minute's counters (and an idle gauge hash) stay in Redis.
pub const MINUTE_KEPT_S: u64 = 120;
/// A gauge reported longer ago than this is ignored.
pub const GAUGE_LIVE_MS: u64 = 10_000;

fn counts_key(name: &str, minute: u64) -> String {
    format!("switchyard:limit:{name}:{minute}")
}

fn gauges_key(name: &str) -> String {
    format!("switchyard:inflight:{name}")
}

/// Adds `sync`'s counts for its instance, and answers the other instances' totals for the
/// same counters.
pub async fn sync(redis: &Redis, sync: &LimitSync, now_ms: u64) -> Result<LimitTotals, RedisError> {
    if sync.counters.is_empty() {
        // Still asks Redis: the answer says whether counts are shared.
        redis
            .run(OP_TIMEOUT, |mut c| async move {
                redis::cmd("PING").query_async::<String>(&mut c).await
            })
            .await?;
        return Ok(LimitTotals::default());
    }
    let me = sync.instance.as_str();
    let mut pipe = redis::pipe();
    for c in &sync.counters {
        let counts = counts_key(&c.name, c.minute);
        let gauges = gauges_key(&c.name);
        pipe.cmd("HINCRBY")
            .arg(&counts)
            .arg(format!("{me}:r"))
            .arg(c.requests)
            .ignore();
        pipe.cmd("HINCRBY")
            .arg(&counts)
            .arg(format!("{me}:t"))
            .arg(c.tokens)
            .ignore();
        pipe.cmd("EXPIRE").arg(&counts).arg(MINUTE_KEPT_S).ignore();
        pipe.cmd("HSET")
            .arg(&gauges)
            .arg(me)
            .arg(format!("{}:{now_ms}", c.in_flight))
            .ignore();
        pipe.cmd("EXPIRE").arg(&gauges).arg(MINUTE_KEPT_S).ignore();
        pipe.cmd("HGETALL").arg(&counts);
        pipe.cmd("HGETALL").arg(&gauges);
    }
    let replies: Vec<HashMap<String, String>> = redis
        .run(
            OP_TIMEOUT,
            |mut c| async move { pipe.query_async(&mut c).await },
        )
        .await?;
    let counters = sync
        .counters
        .iter()
        .zip(replies.chunks(2))
        .map(|(c, pair)| {
            let (counts, gauges) = match pair {
                [counts, gauges] => (Some(counts), Some(gauges)),
                _ => (None, None),
            };
            let mut total = LimitCount {
                name: c.name.clone(),
                minute: c.minute,
                ..LimitCount::default()
            };
            for (field, value) in counts.into_iter().flatten() {
                let Some((instance, what)) = field.rsplit_once(':') else {
                    continue;
                };
                let n = value.parse::<u64>().unwrap_or(0);
                match what {
                    "r" if instance != me => total.requests += n,
                    "t" if instance != me => total.tokens += n,
                    _ => {}
                }
            }
            for (instance, value) in gauges.into_iter().flatten() {
                if instance == me {
                    continue;
                }
                let Some((n, at)) = value.split_once(':') else {
                    continue;
                };
                let (Ok(n), Ok(at)) = (n.parse::<u64>(), at.parse::<u64>()) else {
                    continue;
                };
                if now_ms.saturating_sub(at) <= GAUGE_LIVE_MS {
                    total.in_flight += n;
                }
            }
            total
        })
        .collect();
    Ok(LimitTotals { counters })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::testing::{closed_port, unique, LOCAL};

    fn count(name: &str, minute: u64, requests: u64, tokens: u64, in_flight: u64) -> LimitCount {
        LimitCount {
            name: name.into(),
            minute,
            requests,
            tokens,
            in_flight,
        }
    }

    fn sync_of(instance: &str, counters: Vec<LimitCount>) -> LimitSync {
        LimitSync {
            instance: instance.into(),
            counters,
        }
    }

    #[tokio::test]
    async fn each_instance_gets_the_others_totals() {
        let redis = Redis::connect(LOCAL).expect("url");
        let key = format!("key.{}", unique("limits"));
        let other = format!("team.{}", unique("limits"));
        let now = 1_000_000;

        let a = sync(&redis, &sync_of("a", vec![count(&key, 7, 3, 30, 2)]), now)
            .await
            .expect("redis");
        assert_eq!(a.counters, vec![count(&key, 7, 0, 0, 0)], "nobody else yet");

        let b = sync(
            &redis,
            &sync_of(
                "b",
                vec![count(&key, 7, 1, 10, 1), count(&other, 7, 5, 0, 0)],
            ),
            now + 100,
        )
        .await
        .expect("redis");
        assert_eq!(
            b.counters,
            vec![count(&key, 7, 3, 30, 2), count(&other, 7, 0, 0, 0)]
        );

        // a again: its own counts are not in its answer, b's are, added up over syncs.
        let a = sync(
            &redis,
            &sync_of("a", vec![count(&key, 7, 1, 5, 5)]),
            now + 200,
        )
        .await
        .expect("redis");
        assert_eq!(a.counters, vec![count(&key, 7, 1, 10, 1)]);
        let b = sync(
            &redis,
            &sync_of("b", vec![count(&key, 7, 0, 0, 1)]),
            now + 300,
        )
        .await
        .expect("redis");
        assert_eq!(b.counters, vec![count(&key, 7, 4, 35, 5)]);

        // Another minute starts from nothing; a gauge not renewed for 10 s is a dead
        // instance's.
        let c = sync(
            &redis,
            &sync_of("c", vec![count(&key, 8, 0, 0, 0)]),
            now + 10_250,
        )
        .await
        .expect("redis");
        assert_eq!(
            c.counters,
            vec![count(&key, 8, 0, 0, 1)],
            "a's gauge is stale, b's is not"
        );
    }

    #[tokio::test]
    async fn counters_expire_after_two_minutes() {
        let redis = Redis::connect(LOCAL).expect("url");
        let name = unique("expiry");
        sync(&redis, &sync_of("a", vec![count(&name, 1, 1, 1, 1)]), 0)
            .await
            .expect("redis");
        let key = counts_key(&name, 1);
        let ttl: i64 = redis
            .run(OP_TIMEOUT, |mut c| async move {
                redis::cmd("TTL").arg(&key).query_async(&mut c).await
            })
            .await
            .expect("ttl");
        assert!((100..=120).contains(&ttl), "{ttl}");
    }

    #[tokio::test]
    async fn a_redis_that_does_not_answer_fails_quickly() {
        let redis = Redis::connect(&format!("redis://127.0.0.1:{}", closed_port())).expect("url");
        let started = std::time::Instant::now();
        let r = sync(&redis, &sync_of("a", vec![count("k", 1, 1, 1, 1)]), 0).await;
        assert!(r.is_err());
        assert!(
            sync(&redis, &sync_of("a", vec![]), 0).await.is_err(),
            "even with no counters"
        );
        assert!(started.elapsed() < OP_TIMEOUT + std::time::Duration::from_millis(100));
    }
}
