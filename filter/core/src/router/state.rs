//! A model group's routing state, kept in Envoy's shared data so every worker sees it:
//! per deployment, its failures this minute and cooldown, requests in flight, latency
//! averages and usage this minute. Provider roles write it after (and, for least-busy,
//! before) each attempt; the gateway reads it once per request to plan.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchyard_config::{CooldownConfig, ErrorClass, GROUP_STATE_KEY};

use crate::host::{update_shared, Host};

/// Weight of the newest sample in the latency averages.
const EWMA_WEIGHT: f64 = 0.3;
const MINUTE_MS: u64 = 60_000;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    /// Deployment id → its state.
    #[serde(default)]
    pub deployments: BTreeMap<String, DeploymentState>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentState {
    /// Failures that count towards a cooldown, in minute `fail_minute`.
    #[serde(default)]
    pub fails: u32,
    #[serde(default)]
    pub fail_minute: u64,
    /// Cooling down until this time (ms since the epoch).
    #[serde(default)]
    pub cooldown_until: u64,
    #[serde(default)]
    pub in_flight: i64,
    /// Moving averages, 0 until the first sample: a whole answer, and a stream's first token.
    #[serde(default)]
    pub latency_ms: f64,
    #[serde(default)]
    pub ttft_ms: f64,
    /// Requests and tokens in minute `minute`.
    #[serde(default)]
    pub minute: u64,
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub tokens: u64,
}

impl DeploymentState {
    pub fn cooling_down(&self, now_ms: u64) -> bool {
        self.cooldown_until > now_ms
    }

    /// Requests and tokens used in the current minute.
    pub fn usage(&self, now_ms: u64) -> (u64, u64) {
        if self.minute == now_ms / MINUTE_MS {
            (self.requests, self.tokens)
        } else {
            (0, 0)
        }
    }
}

/// How an attempt ended, as the routing state records it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    Success {
        latency_ms: u64,
        /// For streams: time to the first event.
        ttft_ms: Option<u64>,
        /// Tokens the answer reported (usage.total_tokens), if any.
        tokens: Option<u64>,
    },
    Failure(ErrorClass),
    /// The answer had started when the attempt ended without finishing: the client left.
    /// Not the provider's failure; only the request in flight is given back.
    Abandoned,
}

pub fn key(group: &str) -> String {
    format!("{GROUP_STATE_KEY}{group}")
}

/// The group's state now (empty when nothing was recorded yet or it cannot be read).
pub fn read(host: &dyn Host, group: &str) -> GroupState {
    host.shared_get(&key(group))
        .and_then(|(bytes, _)| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Whether a failure of this class counts towards a cooldown, as LiteLLM decides: rate
/// limits, auth errors, not-found, timeouts and server errors do; other client errors do not.
pub fn counts_for_cooldown(class: ErrorClass) -> bool {
    !matches!(
        class,
        ErrorClass::BadRequest | ErrorClass::ContextWindow | ErrorClass::ContentPolicy
    )
}

/// An attempt starts on `deployment` (only strategies that count requests in flight need it).
pub fn record_start(host: &dyn Host, group: &str, deployment: &str) {
    change(host, group, deployment, |d, _| d.in_flight += 1);
}

/// An attempt on `deployment` ended. `started` says whether [`record_start`] counted it.
pub fn record_end(
    host: &dyn Host,
    group: &str,
    deployment: &str,
    cooldown: &CooldownConfig,
    outcome: Outcome,
    started: bool,
) {
    change(host, group, deployment, |d, now| {
        if started {
            d.in_flight = (d.in_flight - 1).max(0);
        }
        apply(d, now, cooldown, outcome);
    });
}

/// The state change of one attempt's end: usage, latency and cooldown accounting.
pub fn apply(d: &mut DeploymentState, now_ms: u64, cooldown: &CooldownConfig, outcome: Outcome) {
    if outcome == Outcome::Abandoned {
        return;
    }
    let minute = now_ms / MINUTE_MS;
    if d.minute != minute {
        d.minute = minute;
        d.requests = 0;
        d.tokens = 0;
    }
    d.requests += 1;
    match outcome {
        Outcome::Success {
            latency_ms,
            ttft_ms,
            tokens,
        } => {
            d.latency_ms = average(d.latency_ms, latency_ms as f64);
            if let Some(ttft) = ttft_ms {
                d.ttft_ms = average(d.ttft_ms, ttft as f64);
            }
            d.tokens += tokens.unwrap_or(0);
        }
        Outcome::Abandoned => {}
        Outcome::Failure(class) => {
            if cooldown.disabled || cooldown.single_deployment || !counts_for_cooldown(class) {
                return;
            }
            if d.fail_minute != minute {
                d.fail_minute = minute;
                d.fails = 0;
            }
            d.fails += 1;
            let allowed = cooldown
                .per_class
                .get(class)
                .unwrap_or(cooldown.allowed_fails);
            if d.fails > allowed {
                d.cooldown_until = now_ms + cooldown.cooldown_ms;
                d.fails = 0;
            }
        }
    }
}

fn average(current: f64, sample: f64) -> f64 {
    if current <= 0.0 {
        sample
    } else {
        current + EWMA_WEIGHT * (sample - current)
    }
}

fn change(
    host: &dyn Host,
    group: &str,
    deployment: &str,
    mut f: impl FnMut(&mut DeploymentState, u64),
) {
    let now = host.now_ms();
    update_shared(host, &key(group), |current| {
        let mut state: GroupState = current
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or_default();
        f(
            state.deployments.entry(deployment.to_string()).or_default(),
            now,
        );
        serde_json::to_vec(&state).ok()
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::host::MemoryHost;

    fn cooldown(allowed: u32) -> CooldownConfig {
        CooldownConfig {
            allowed_fails: allowed,
            ..crate::testing::cooldown()
        }
    }

    #[test]
    fn failures_beyond_the_allowance_cool_a_deployment_down() {
        let host = MemoryHost::at(1_000_000);
        let cd = cooldown(2);
        for _ in 0..2 {
            record_end(
                &host,
                "g",
                "a",
                &cd,
                Outcome::Failure(ErrorClass::RateLimit),
                false,
            );
        }
        assert!(!read(&host, "g").deployments["a"].cooling_down(1_000_000));
        record_end(
            &host,
            "g",
            "a",
            &cd,
            Outcome::Failure(ErrorClass::InternalServer),
            false,
        );
        let a = read(&host, "g").deployments["a"].clone();
        assert!(a.cooling_down(1_000_000) && a.cooling_down(1_004_999));
        assert!(!a.cooling_down(1_005_000), "cooldown_time is 5 s");
    }

    #[test]
    fn client_errors_never_count_and_old_failures_expire() {
        let host = MemoryHost::at(0);
        let cd = cooldown(1);
        for class in [
            ErrorClass::BadRequest,
            ErrorClass::ContextWindow,
            ErrorClass::ContentPolicy,
        ] {
            for _ in 0..5 {
                record_end(&host, "g", "a", &cd, Outcome::Failure(class), false);
            }
        }
        assert!(!read(&host, "g").deployments["a"].cooling_down(0));
        record_end(
            &host,
            "g",
            "a",
            &cd,
            Outcome::Failure(ErrorClass::Timeout),
            false,
        );
        host.now.set(61_000);
        record_end(
            &host,
            "g",
            "a",
            &cd,
            Outcome::Failure(ErrorClass::Timeout),
            false,
        );
        assert!(
            !read(&host, "g").deployments["a"].cooling_down(61_000),
            "one failure a minute is within allowed_fails: 1"
        );
    }

    #[test]
    fn per_class_allowance_single_deployment_and_disabled() {
        let host = MemoryHost::at(0);
        let mut cd = cooldown(5);
        cd.per_class.rate_limit = Some(0);
        record_end(
            &host,
            "g",
            "a",
            &cd,
            Outcome::Failure(ErrorClass::RateLimit),
            false,
        );
        assert!(read(&host, "g").deployments["a"].cooling_down(0));
        for (single, disabled) in [(true, false), (false, true)] {
            let cd = CooldownConfig {
                single_deployment: single,
                disabled,
                ..cooldown(0)
            };
            record_end(
                &host,
                "g",
                "b",
                &cd,
                Outcome::Failure(ErrorClass::RateLimit),
                false,
            );
            assert!(!read(&host, "g").deployments["b"].cooling_down(0));
        }
    }

    #[test]
    fn in_flight_latency_and_usage() {
        let host = MemoryHost::at(120_000);
        let cd = cooldown(3);
        record_start(&host, "g", "a");
        record_start(&host, "g", "a");
        assert_eq!(read(&host, "g").deployments["a"].in_flight, 2);
        let ok = |latency_ms, tokens| Outcome::Success {
            latency_ms,
            ttft_ms: Some(latency_ms / 2),
            tokens: Some(tokens),
        };
        record_end(&host, "g", "a", &cd, ok(100, 10), true);
        record_end(&host, "g", "a", &cd, ok(200, 30), true);
        let a = read(&host, "g").deployments["a"].clone();
        assert_eq!(a.in_flight, 0);
        assert!((a.latency_ms - 130.0).abs() < 1e-9, "{}", a.latency_ms);
        assert!((a.ttft_ms - 65.0).abs() < 1e-9);
        assert_eq!(a.usage(120_000), (2, 40));
        assert_eq!(a.usage(180_000), (0, 0), "a new minute starts empty");
        record_end(&host, "g", "a", &cd, ok(100, 10), false);
        assert_eq!(
            read(&host, "g").deployments["a"].in_flight,
            0,
            "never below zero"
        );
    }
}
