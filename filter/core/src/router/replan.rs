//! Hand-offs from a provider role to the gateway: a request that goes to a fallback group
//! leaves its attempt as an internal redirect (307) carrying a nonce, and comes back through
//! the gateway, which takes the hand-off by that nonce. Both roles run in the same wasm VM on
//! the same Envoy worker (a redirect stays on its connection's worker), so a thread-local
//! store is enough; entries are taken once and expire unused.

use std::cell::RefCell;
use std::collections::VecDeque;

use switchyard_config::RequestInfo;

use super::decide::FallbackKind;
use super::rng::Rng;

/// How long an unclaimed hand-off is kept (a failed redirect leaves one behind).
const TTL_MS: u64 = 60_000;
/// Hand-offs kept at most per worker.
const CAPACITY: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub struct Replan {
    /// The request as planned for the pass that failed.
    pub info: RequestInfo,
    pub kind: FallbackKind,
    /// Attempts the failed pass made.
    pub attempts: u32,
    /// The failed pass's last answer: the client gets it should the redirect fail.
    pub status: u16,
    pub body: Vec<u8>,
}

struct Entry {
    nonce: String,
    at_ms: u64,
    replan: Replan,
}

thread_local! {
    static STORE: RefCell<VecDeque<Entry>> = const { RefCell::new(VecDeque::new()) };
}

/// Keeps a hand-off; returns the nonce that claims it.
pub fn put(replan: Replan, now_ms: u64) -> String {
    let mut rng = Rng::from_entropy();
    let nonce = format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
    STORE.with(|s| {
        let mut s = s.borrow_mut();
        while s.len() >= CAPACITY || s.front().is_some_and(|e| e.at_ms + TTL_MS < now_ms) {
            s.pop_front();
        }
        s.push_back(Entry {
            nonce: nonce.clone(),
            at_ms: now_ms,
            replan,
        });
    });
    nonce
}

/// Claims a hand-off (once).
pub fn take(nonce: &str) -> Option<Replan> {
    STORE.with(|s| {
        let mut s = s.borrow_mut();
        let i = s.iter().position(|e| e.nonce == nonce)?;
        s.remove(i).map(|e| e.replan)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replan() -> Replan {
        Replan {
            info: crate::testing::info(&["a"]),
            kind: FallbackKind::Regular,
            attempts: 1,
            status: 500,
            body: b"{}".to_vec(),
        }
    }

    #[test]
    fn taken_once_by_nonce_only() {
        let nonce = put(replan(), 0);
        assert_eq!(nonce.len(), 32);
        assert!(take("not-it").is_none());
        assert_eq!(take(&nonce).map(|r| r.status), Some(500));
        assert!(take(&nonce).is_none(), "a nonce is good once");
    }

    #[test]
    fn stale_entries_expire() {
        let old = put(replan(), 0);
        let _new = put(replan(), TTL_MS + 1);
        assert!(take(&old).is_none());
    }
}
