//! What switchyard-core needs from outside: the clock and Envoy's shared data (one store per
//! Envoy process, shared by its workers). The filter implements it on proxy-wasm calls; tests
//! use [`MemoryHost`].

use std::cell::RefCell;
use std::collections::HashMap;

/// A compare-and-swap write lost to a concurrent one: read again and retry.
#[derive(Debug, PartialEq, Eq)]
pub struct CasMismatch;

pub trait Host {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// A value and its version, if the key is set.
    fn shared_get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes the value if the key's version is still `cas` (None or 0: unconditionally).
    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), CasMismatch>;
    /// Appends an item to a shared queue (one per Envoy process); false if the queue does
    /// not exist (yet) or the host refused.
    fn enqueue(&self, queue: &str, item: &[u8]) -> bool;
    /// Takes the oldest item of a shared queue.
    fn dequeue(&self, queue: &str) -> Option<Vec<u8>>;
}

/// Read-modify-write of one shared-data key, retried on a lost race (a few times: contention
/// is between Envoy's workers, a handful of threads).
pub fn update_shared(
    host: &dyn Host,
    key: &str,
    mut change: impl FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
) {
    for _ in 0..8 {
        let current = host.shared_get(key);
        let Some(new) = change(current.as_ref().map(|(v, _)| v.as_slice())) else {
            return;
        };
        // Envoy checks a non-zero version only: the first write of a key is unconditional,
        // so two workers creating it at once may lose one update (once per key).
        let cas = current.map(|(_, cas)| cas);
        if host.shared_set(key, &new, cas).is_ok() {
            return;
        }
    }
}

/// An in-memory [`Host`] with a settable clock, for tests.
#[derive(Default)]
pub struct MemoryHost {
    pub now: std::cell::Cell<u64>,
    data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    queues: RefCell<HashMap<String, std::collections::VecDeque<Vec<u8>>>>,
}

impl MemoryHost {
    pub fn at(now_ms: u64) -> MemoryHost {
        let host = MemoryHost::default();
        host.now.set(now_ms);
        host
    }
}

impl Host for MemoryHost {
    fn now_ms(&self) -> u64 {
        self.now.get()
    }

    fn shared_get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.data.borrow().get(key).cloned()
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), CasMismatch> {
        let mut data = self.data.borrow_mut();
        let version = data.get(key).map_or(0, |(_, v)| *v);
        if cas.is_some_and(|c| c != 0 && c != version) {
            return Err(CasMismatch);
        }
        data.insert(key.to_string(), (value.to_vec(), version + 1));
        Ok(())
    }

    fn enqueue(&self, queue: &str, item: &[u8]) -> bool {
        self.queues
            .borrow_mut()
            .entry(queue.to_string())
            .or_default()
            .push_back(item.to_vec());
        true
    }

    fn dequeue(&self, queue: &str) -> Option<Vec<u8>> {
        self.queues.borrow_mut().get_mut(queue)?.pop_front()
    }
}
