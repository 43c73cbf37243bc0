//! What a request leaves for operators besides its spend: the attempts that failed before
//! the one that answered, and its prompt when a logging callback takes prompts. Each attempt is its own upstream filter; the one that delivers (or
//! the gateway, when none does) puts them in the request's event, from which the sidecar
//! makes metrics, traces and request logs. Retries of a request stay on its Envoy worker, and
//! both roles run in that worker's VM, so a thread-local store is enough; an entry nobody
//! takes (a client that left) expires.

use std::cell::RefCell;
use std::collections::VecDeque;

use switchyard_config::{AttemptLog, LOGGED_MESSAGE_BYTES};

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
    static PROMPTS: RefCell<VecDeque<(String, u64, serde_json::Value)>> =
        const { RefCell::new(VecDeque::new()) };
}

/// A prompt or an answer as logged: its JSON, or a note of its size when it is larger than
/// [`LOGGED_MESSAGE_BYTES`] (or not JSON).
pub fn logged(bytes: &[u8]) -> serde_json::Value {
    if bytes.len() > LOGGED_MESSAGE_BYTES {
        return serde_json::Value::String(format!(
            "[{} bytes, more than Switchyard logs]",
            bytes.len()
        ));
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| {
        serde_json::Value::String(format!("[{} bytes that are not JSON]", bytes.len()))
    })
}

/// Keeps the request's prompt (`messages`, else `prompt`, else `input`) until its event is
/// made.
pub fn keep_prompt(request_id: &str, body: &[u8], now_ms: u64) {
    #[derive(serde::Deserialize)]
    struct Prompt<'a> {
        #[serde(borrow, default)]
        messages: Option<&'a serde_json::value::RawValue>,
        #[serde(borrow, default)]
        prompt: Option<&'a serde_json::value::RawValue>,
        #[serde(borrow, default)]
        input: Option<&'a serde_json::value::RawValue>,
    }
    if request_id.is_empty() {
        return;
    }
    let Ok(p) = serde_json::from_slice::<Prompt>(body) else {
        return;
    };
    let Some(raw) = p.messages.or(p.prompt).or(p.input) else {
        return;
    };
    let value = logged(raw.get().as_bytes());
    PROMPTS.with(|s| {
        let mut s = s.borrow_mut();
        while s.len() >= CAPACITY || s.front().is_some_and(|e| e.1 + TTL_MS < now_ms) {
            s.pop_front();
        }
        s.retain(|e| e.0 != request_id);
        s.push_back((request_id.to_string(), now_ms, value));
    });
}

/// The request's prompt, taken once.
pub fn take_prompt(request_id: &str) -> Option<serde_json::Value> {
    PROMPTS.with(|s| {
        let mut s = s.borrow_mut();
        let i = s.iter().position(|e| e.0 == request_id)?;
        s.remove(i).map(|e| e.2)
    })
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
    fn prompts_are_kept_once_and_bounded() {
        keep_prompt(
            "p1",
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
            0,
        );
        keep_prompt("p2", br#"{"model":"m","input":"text"}"#, 0);
        assert_eq!(take_prompt("p1").unwrap()[0]["content"], "hi");
        assert!(take_prompt("p1").is_none());
        assert_eq!(take_prompt("p2").unwrap(), "text");
        let big = format!(r#"{{"prompt":"{}"}}"#, "x".repeat(LOGGED_MESSAGE_BYTES));
        keep_prompt("p3", big.as_bytes(), 0);
        assert!(take_prompt("p3")
            .unwrap()
            .as_str()
            .unwrap()
            .contains("more than Switchyard logs"));
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
