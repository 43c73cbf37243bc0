//! What a request leaves for operators besides its spend: the attempts that failed before
//! the one that answered. Each attempt is its own upstream filter; the one that delivers (or
//! the gateway, when none does) puts them in the request's event, from which the sidecar
//! makes metrics, traces and request logs. Retries of a request stay on its Envoy worker, and
//! both roles run in that worker's VM, so a thread-local store is enough; an entry nobody
//! takes (a client that left) expires.

use std::cell::RefCell;
use std::collections::VecDeque;

use switchyard_config::AttemptLog;

/// How long a failed attempt waits for its request's end (a stream may run for minutes).
const TTL_MS: u64 = 15 * 60_000;
/// Failed attempts kept at most per worker.
const CAPACITY: usize = 4096;

struct Entry {
    request_id: String,
    at_ms: u64,
    log: AttemptLog,
}

thread_local! {
    static FAILED: RefCell<VecDeque<Entry>> = const { RefCell::new(VecDeque::new()) };
}

/// Notes an attempt that failed and did not answer the client. Without a request id (Envoy
/// always sets one) it could not be found again, so it is not kept.
pub fn attempt_failed(request_id: &str, log: AttemptLog, now_ms: u64) {
    if request_id.is_empty() {
        return;
    }
    FAILED.with(|f| {
        let mut f = f.borrow_mut();
        while f.len() >= CAPACITY || f.front().is_some_and(|e| e.at_ms + TTL_MS < now_ms) {
            f.pop_front();
        }
        f.push_back(Entry {
            request_id: request_id.to_string(),
            at_ms: now_ms,
            log,
        });
    });
}

/// The request's failed attempts, in order, taken once.
pub fn take_failed(request_id: &str) -> Vec<AttemptLog> {
    if request_id.is_empty() {
        return Vec::new();
    }
    FAILED.with(|f| {
        let mut f = f.borrow_mut();
        if !f.iter().any(|e| e.request_id == request_id) {
            return Vec::new();
        }
        let (mine, rest): (VecDeque<Entry>, VecDeque<Entry>) =
            f.drain(..).partition(|e| e.request_id == request_id);
        *f = rest;
        mine.into_iter().map(|e| e.log).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_config::ErrorClass;

    fn log(deployment: &str) -> AttemptLog {
        AttemptLog {
            deployment: deployment.into(),
            error_class: ErrorClass::RateLimit,
            http_status: 429,
            ..AttemptLog::default()
        }
    }

    #[test]
    fn failed_attempts_are_taken_once_per_request_in_order() {
        attempt_failed("r1", log("a"), 0);
        attempt_failed("r2", log("x"), 0);
        attempt_failed("r1", log("b"), 1);
        attempt_failed("", log("lost"), 1);
        let taken: Vec<String> = take_failed("r1")
            .into_iter()
            .map(|l| l.deployment)
            .collect();
        assert_eq!(taken, ["a", "b"]);
        assert!(take_failed("r1").is_empty());
        assert_eq!(take_failed("r2").len(), 1);
        assert!(take_failed("").is_empty());
    }

    #[test]
    fn old_and_excess_entries_go() {
        attempt_failed("old", log("a"), 0);
        attempt_failed("new", log("b"), TTL_MS + 1);
        assert!(take_failed("old").is_empty(), "expired");
        for i in 0..CAPACITY + 10 {
            attempt_failed(&format!("r{i}"), log("c"), TTL_MS + 2);
        }
        assert!(take_failed("r0").is_empty(), "pushed out by newer ones");
        assert_eq!(take_failed(&format!("r{}", CAPACITY + 9)).len(), 1);
        take_failed("new");
    }
}
