//! Rate limits at the gateway: requests per minute, tokens per minute and requests in flight
//! for keys, users, teams and end users (LiteLLM's `rpm_limit`, `tpm_limit`,
//! `max_parallel_requests`), counted in Envoy's shared data, so every worker of one Envoy
//! counts against the same numbers.
//!
//! Each holder with a limit has one counter: the current minute (since the epoch), the
//! requests and tokens counted in it, and the requests in flight. A request is admitted when
//! every holder is under its limits, and counted at once (requests, in flight); its tokens
//! are counted when its answer says how many, so a tpm limit is overshot by at most the
//! tokens of the requests in flight when it is reached. Minutes are fixed windows, as
//! LiteLLM's limiter counts them.
//!
//! With Redis (a fleet of Envoys), each counter also holds the other Envoys' counts, and a
//! request is admitted against the sum. Every tick the gateway's root context sends the
//! sidecar what this Envoy counted since the last sync ([`sync`]) and takes back the others'
//! totals ([`apply_totals`]). So each Envoy decides alone, on counts at most a sync old: a
//! limit is overshot by at most what the other Envoys admit in one sync interval (about
//! 200 ms plus the round trip). When the sidecar or Redis does not answer, each Envoy keeps
//! counting alone, and readiness says so.

use std::cell::RefCell;
use std::collections::HashMap;

use switchyard_config::{LimitCount, LimitSync, LimitTotals, Limits, RATE_LIMIT_PREFIX};

use crate::error::ApiError;
use crate::host::{update_shared, Host};

const MINUTE_MS: u64 = 60_000;

/// Shared-data key of this Envoy's name in the fleet (made once per process).
pub const INSTANCE_KEY: &str = "switchyard.instance";

/// A holder's counter: this Envoy's counts, what of them the fleet has been told, and the
/// other Envoys' counts as of the last sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counter {
    minute: u64,
    requests: u64,
    tokens: u64,
    in_flight: u64,
    synced_requests: u64,
    synced_tokens: u64,
    fleet_minute: u64,
    fleet_requests: u64,
    fleet_tokens: u64,
    fleet_in_flight: u64,
}

impl Counter {
    fn decode(bytes: Option<&[u8]>) -> Counter {
        let word = |i: usize| {
            bytes
                .and_then(|b| b.get(i * 8..i * 8 + 8))
                .and_then(|w| <[u8; 8]>::try_from(w).ok())
                .map_or(0, u64::from_le_bytes)
        };
        Counter {
            minute: word(0),
            requests: word(1),
            tokens: word(2),
            in_flight: word(3),
            synced_requests: word(4),
            synced_tokens: word(5),
            fleet_minute: word(6),
            fleet_requests: word(7),
            fleet_tokens: word(8),
            fleet_in_flight: word(9),
        }
    }

    fn encode(&self) -> Vec<u8> {
        [
            self.minute,
            self.requests,
            self.tokens,
            self.in_flight,
            self.synced_requests,
            self.synced_tokens,
            self.fleet_minute,
            self.fleet_requests,
            self.fleet_tokens,
            self.fleet_in_flight,
        ]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
    }

    /// The counter in `minute`: a new minute starts with no requests or tokens.
    fn at(mut self, minute: u64) -> Counter {
        if self.minute != minute {
            self.minute = minute;
            self.requests = 0;
            self.tokens = 0;
            self.synced_requests = 0;
            self.synced_tokens = 0;
        }
        self
    }

    /// What the limits are checked against: this Envoy's counts plus the fleet's.
    fn seen(&self) -> Counter {
        let fleet_now = self.fleet_minute == self.minute;
        Counter {
            requests: self.requests + if fleet_now { self.fleet_requests } else { 0 },
            tokens: self.tokens + if fleet_now { self.fleet_tokens } else { 0 },
            in_flight: self.in_flight + self.fleet_in_flight,
            ..*self
        }
    }
}

thread_local! {
    /// Counters this worker touched, and when last: what its root context syncs. (A worker's
    /// request and root contexts share one thread and one VM.)
    static TOUCHED: RefCell<HashMap<String, u64>> = RefCell::new(HashMap::new());
}

/// Counters untouched this long are no longer synced (their minute and gauge are over).
const FORGET_MS: u64 = 2 * MINUTE_MS;

/// What this Envoy counted since its last sync, for the sidecar (None: nothing to sync).
/// Counts handed over here are the fleet's from now on, whichever worker hands them over.
pub fn sync(host: &dyn Host, now_ms: u64) -> Option<LimitSync> {
    let minute = now_ms / MINUTE_MS;
    let names: Vec<String> = TOUCHED.with(|t| {
        let mut t = t.borrow_mut();
        t.retain(|_, last| now_ms.saturating_sub(*last) < FORGET_MS);
        t.keys().cloned().collect()
    });
    if names.is_empty() {
        return None;
    }
    let instance = host
        .shared_get(INSTANCE_KEY)
        .and_then(|(v, _)| String::from_utf8(v).ok())
        .filter(|i| !i.is_empty())?;
    let mut counters = Vec::with_capacity(names.len());
    for name in names {
        let mut count = LimitCount {
            name: name.clone(),
            minute,
            ..LimitCount::default()
        };
        update_shared(host, &name, |current| {
            let mut c = Counter::decode(current).at(minute);
            count.requests = c.requests.saturating_sub(c.synced_requests);
            count.tokens = c.tokens.saturating_sub(c.synced_tokens);
            count.in_flight = c.in_flight;
            c.synced_requests = c.requests;
            c.synced_tokens = c.tokens;
            Some(c.encode())
        });
        counters.push(count);
    }
    Some(LimitSync { instance, counters })
}

/// The other Envoys' counts, from the sidecar.
pub fn apply_totals(host: &dyn Host, totals: &LimitTotals) {
    for t in &totals.counters {
        if !t.name.starts_with(RATE_LIMIT_PREFIX) {
            continue;
        }
        update_shared(host, &t.name, |current| {
            let mut c = Counter::decode(current);
            c.fleet_minute = t.minute;
            c.fleet_requests = t.requests;
            c.fleet_tokens = t.tokens;
            c.fleet_in_flight = t.in_flight;
            Some(c.encode())
        });
    }
}

/// Names this Envoy in the fleet, once per process (at configuration, before requests).
pub fn name_instance(host: &dyn Host, random: u64) {
    if host.shared_get(INSTANCE_KEY).is_none() {
        let name = format!("envoy-{random:016x}");
        let _ = host.shared_set(INSTANCE_KEY, name.as_bytes(), None);
    }
}

/// Who a limit belongs to, for the counter's name and the error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject<'a> {
    /// `key`, `user`, `team` or `customer`.
    pub kind: &'static str,
    pub id: &'a str,
    pub limits: &'a Limits,
}

impl Subject<'_> {
    fn counter_key(&self) -> String {
        format!("{RATE_LIMIT_PREFIX}{}.{}", self.kind, self.id)
    }

    fn who(&self) -> String {
        let kind = match self.kind {
            "customer" => "end user",
            "key" => "api key",
            other => other,
        };
        if self.kind == "key" {
            // The hash is no secret, but a prefix is enough to tell keys apart.
            format!("{kind} {}...", self.id.get(..12).unwrap_or(self.id))
        } else {
            format!("{kind} {}", self.id)
        }
    }
}

/// What an admitted request carries: the counters it is in flight in (holders with
/// max_parallel_requests) and those its tokens go to (holders with tpm_limit), and the
/// `x-ratelimit-*` headers of the tightest limits. Each counter a request touches costs a
/// compare-and-swap of shared data, so only the limits a holder has are counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Admitted {
    pub in_flight: Vec<String>,
    pub tokens: Vec<String>,
    pub headers: Vec<(String, String)>,
}

/// Admits a request against every subject's limits and counts it, or refuses it with
/// LiteLLM's 429 (nothing counted).
pub fn admit(
    host: &dyn Host,
    subjects: &[Subject],
    now_ms: u64,
    fleet: bool,
) -> Result<Admitted, ApiError> {
    let minute = now_ms / MINUTE_MS;
    let reset_s = (MINUTE_MS - now_ms % MINUTE_MS).div_ceil(1000);
    let mut admitted = Admitted::default();
    // (limit, remaining) of the tightest rpm and tpm, for the headers.
    let mut requests: Option<(u64, u64)> = None;
    let mut tokens: Option<(u64, u64)> = None;
    for (i, s) in subjects
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.limits.is_empty())
    {
        let key = s.counter_key();
        let parallel = s.limits.max_parallel_requests.is_some();
        let mut verdict = Ok(Counter::default());
        update_shared(host, &key, |current| {
            let c = Counter::decode(current).at(minute);
            let seen = c.seen();
            verdict = refusal(s, &seen, reset_s).map_or(Ok(seen), Err);
            verdict.as_ref().ok()?;
            Some(
                Counter {
                    requests: c.requests + 1,
                    in_flight: c.in_flight + u64::from(parallel),
                    ..c
                }
                .encode(),
            )
        });
        if fleet {
            TOUCHED.with(|t| t.borrow_mut().insert(key.clone(), now_ms));
        }
        let before = match verdict {
            Ok(c) => c,
            Err(e) => {
                // Refused here: the holders before it counted a request that does not go.
                for earlier in subjects[..i].iter().filter(|s| !s.limits.is_empty()) {
                    uncount(host, earlier, minute);
                }
                return Err(e);
            }
        };
        if let Some(limit) = s.limits.rpm_limit {
            let remaining = limit.saturating_sub(before.requests + 1);
            requests = tightest(requests, limit, remaining);
        }
        if let Some(limit) = s.limits.tpm_limit {
            tokens = tightest(tokens, limit, limit.saturating_sub(before.tokens));
        }
        if s.limits.tpm_limit.is_some() {
            admitted.tokens.push(key.clone());
        }
        if parallel {
            admitted.in_flight.push(key);
        }
    }
    for (what, pair) in [("requests", requests), ("tokens", tokens)] {
        if let Some((limit, remaining)) = pair {
            admitted.headers.extend([
                (format!("x-ratelimit-limit-{what}"), limit.to_string()),
                (
                    format!("x-ratelimit-remaining-{what}"),
                    remaining.to_string(),
                ),
                (format!("x-ratelimit-reset-{what}"), format!("{reset_s}s")),
            ]);
        }
    }
    Ok(admitted)
}

fn tightest(current: Option<(u64, u64)>, limit: u64, remaining: u64) -> Option<(u64, u64)> {
    match current {
        Some((_, r)) if r <= remaining => current,
        _ => Some((limit, remaining)),
    }
}

/// Why `c` leaves no room for one more request of `s`, as the client's error.
fn refusal(s: &Subject, c: &Counter, reset_s: u64) -> Option<ApiError> {
    let l = s.limits;
    let (what, limit, used, retry_s) =
        if let Some(max) = l.max_parallel_requests.filter(|max| c.in_flight >= *max) {
            ("parallel requests", max, c.in_flight, 1)
        } else if let Some(max) = l.rpm_limit.filter(|max| c.requests >= *max) {
            ("requests", max, c.requests, reset_s)
        } else if let Some(max) = l.tpm_limit.filter(|max| c.tokens >= *max) {
            ("tokens", max, c.tokens, reset_s)
        } else {
            return None;
        };
    let field = match what {
        "parallel requests" => "max_parallel_requests",
        "requests" => "rpm_limit",
        _ => "tpm_limit",
    };
    let mut e = ApiError::new(
        429,
        "rate_limit_error",
        format!(
            "Rate limit exceeded for {}. Limit type: {what} ({field}). Current limit: {limit}, used: {used}, remaining: 0. {}",
            s.who(),
            if what == "parallel requests" {
                "Retry when a request in flight is done.".to_string()
            } else {
                format!("The limit resets in {reset_s} s.")
            }
        ),
    );
    e.retry_after_s = Some(retry_s);
    let names = match what {
        "requests" => Some([
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
        ]),
        "tokens" => Some([
            "x-ratelimit-limit-tokens",
            "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset-tokens",
        ]),
        _ => None,
    };
    if let Some([limit_name, remaining_name, reset_name]) = names {
        e.headers = vec![
            (limit_name, limit.to_string()),
            (remaining_name, "0".to_string()),
            (reset_name, format!("{reset_s}s")),
        ];
    }
    Some(e)
}

/// Takes back a request counted by [`admit`] that does not go.
fn uncount(host: &dyn Host, s: &Subject, minute: u64) {
    update_shared(host, &s.counter_key(), |current| {
        let mut c = Counter::decode(current);
        if c.minute == minute {
            c.requests = c.requests.saturating_sub(1);
        }
        if s.limits.max_parallel_requests.is_some() {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
        Some(c.encode())
    });
}

/// The request is done: no longer in flight.
pub fn release(host: &dyn Host, counters: &[String]) {
    for key in counters {
        update_shared(host, key, |current| {
            let mut c = Counter::decode(current);
            c.in_flight = c.in_flight.saturating_sub(1);
            Some(c.encode())
        });
    }
}

/// The answer used `tokens`: counted in the current minute.
pub fn add_tokens(host: &dyn Host, counters: &[String], tokens: u64, now_ms: u64) {
    if tokens == 0 {
        return;
    }
    let minute = now_ms / MINUTE_MS;
    for key in counters {
        update_shared(host, key, |current| {
            let mut c = Counter::decode(current).at(minute);
            c.tokens += tokens;
            Some(c.encode())
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::host::MemoryHost;

    fn limits(rpm: Option<u64>, tpm: Option<u64>, parallel: Option<u64>) -> Limits {
        Limits {
            rpm_limit: rpm,
            tpm_limit: tpm,
            max_parallel_requests: parallel,
        }
    }

    #[test]
    fn requests_per_minute_at_the_edge_then_a_new_minute() {
        let host = MemoryHost::at(0);
        let l = limits(Some(3), None, None);
        let s = [Subject {
            kind: "key",
            id: "abcdef0123456789",
            limits: &l,
        }];
        for i in 0..3 {
            let a = admit(&host, &s, 1_000, false).unwrap();
            assert!(
                a.in_flight.is_empty() && a.tokens.is_empty(),
                "rpm only: one update"
            );
            let remaining = a
                .headers
                .iter()
                .find(|(n, _)| n == "x-ratelimit-remaining-requests")
                .unwrap();
            assert_eq!(remaining.1, (2 - i).to_string());
        }
        let e = admit(&host, &s, 1_000, false).unwrap_err();
        assert_eq!((e.status, e.kind), (429, "rate_limit_error"));
        assert_eq!(e.retry_after_s, Some(59));
        assert!(
            e.message.contains("api key abcdef012345..."),
            "{}",
            e.message
        );
        assert!(e.message.contains("rpm_limit"), "{}", e.message);
        assert!(e
            .headers
            .contains(&("x-ratelimit-remaining-requests", "0".to_string())));
        assert!(admit(&host, &s, 60_000, false).is_ok(), "a new minute");
    }

    #[test]
    fn parallel_requests_count_until_released() {
        let host = MemoryHost::at(0);
        let l = limits(None, None, Some(2));
        let s = [Subject {
            kind: "team",
            id: "t",
            limits: &l,
        }];
        let a = admit(&host, &s, 0, false).unwrap();
        let b = admit(&host, &s, 0, false).unwrap();
        let e = admit(&host, &s, 0, false).unwrap_err();
        assert!(e.message.contains("team t"), "{}", e.message);
        assert_eq!(e.retry_after_s, Some(1));
        release(&host, &a.in_flight);
        assert!(admit(&host, &s, 0, false).is_ok());
        release(&host, &b.in_flight);
    }

    #[test]
    fn tokens_count_after_the_answer() {
        let host = MemoryHost::at(0);
        let l = limits(None, Some(100), None);
        let s = [Subject {
            kind: "customer",
            id: "c",
            limits: &l,
        }];
        let a = admit(&host, &s, 0, false).unwrap();
        add_tokens(&host, &a.tokens, 99, 0);
        let b = admit(&host, &s, 0, false).unwrap();
        assert!(b
            .headers
            .contains(&("x-ratelimit-remaining-tokens".to_string(), "1".to_string())));
        add_tokens(&host, &b.tokens, 10, 0);
        let e = admit(&host, &s, 0, false).unwrap_err();
        assert!(e.message.contains("end user c"), "{}", e.message);
        assert!(e.message.contains("tpm_limit"), "{}", e.message);
    }

    #[test]
    fn a_refusal_takes_back_what_the_holders_before_it_counted() {
        let host = MemoryHost::at(0);
        let key = limits(Some(10), None, None);
        let team = limits(Some(1), None, None);
        let unlimited = Limits::default();
        let s = [
            Subject {
                kind: "key",
                id: "k",
                limits: &key,
            },
            Subject {
                kind: "user",
                id: "u",
                limits: &unlimited,
            },
            Subject {
                kind: "team",
                id: "t",
                limits: &team,
            },
        ];
        admit(&host, &s, 0, false).unwrap();
        assert!(admit(&host, &s, 0, false).is_err());
        let c = Counter::decode(
            host.shared_get(&s[0].counter_key())
                .map(|(v, _)| v)
                .as_deref(),
        );
        assert_eq!(c.requests, 1, "the refused one was taken back");
        assert!(
            host.shared_get(&s[1].counter_key()).is_none(),
            "a holder without limits has no counter"
        );
    }

    #[test]
    fn no_limits_no_counters() {
        let host = MemoryHost::at(0);
        let none = Limits::default();
        let s = [Subject {
            kind: "key",
            id: "k",
            limits: &none,
        }];
        assert_eq!(admit(&host, &s, 0, false).unwrap(), Admitted::default());
    }

    #[test]
    fn a_fleet_shares_counts_through_syncs() {
        let host = MemoryHost::at(0);
        name_instance(&host, 7);
        name_instance(&host, 8);
        let l = limits(Some(5), Some(1_000), Some(10));
        let s = [Subject {
            kind: "team",
            id: "t1",
            limits: &l,
        }];
        let a = admit(&host, &s, 1_000, true).unwrap();
        admit(&host, &s, 1_000, true).unwrap();
        add_tokens(&host, &a.tokens, 40, 1_000);
        let first = sync(&host, 1_100).unwrap();
        assert_eq!(first.instance, format!("envoy-{:016x}", 7), "named once");
        let c = &first.counters[0];
        assert_eq!((c.name.as_str(), c.minute), ("switchyard.limit.team.t1", 0));
        assert_eq!((c.requests, c.tokens, c.in_flight), (2, 40, 2));
        // What was handed over is not handed over again.
        let again = sync(&host, 1_200).unwrap();
        assert_eq!(
            (again.counters[0].requests, again.counters[0].tokens),
            (0, 0)
        );
        // The others admitted two more: only one is left here.
        apply_totals(
            &host,
            &LimitTotals {
                counters: vec![LimitCount {
                    name: c.name.clone(),
                    minute: 0,
                    requests: 2,
                    tokens: 0,
                    in_flight: 0,
                }],
            },
        );
        let third = admit(&host, &s, 1_300, true).unwrap();
        assert_eq!(
            third.headers[1],
            (
                "x-ratelimit-remaining-requests".to_string(),
                "0".to_string()
            )
        );
        let e = admit(&host, &s, 1_300, true).unwrap_err();
        assert!(e.message.contains("used: 5"), "{}", e.message);
        // Last minute's fleet counts do not count in this one.
        assert!(admit(&host, &s, 61_000, true).is_ok());
    }
}
