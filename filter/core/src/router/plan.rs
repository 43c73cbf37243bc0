//! A request's attempt plan within one model group: which deployment each attempt goes to.
//!
//! Healthy deployments (not cooling down, big enough for the prompt when pre-call checks are
//! on) are ordered by the group's strategy; attempts cycle through them, each deployment at
//! most 1 + its max_retries times. Envoy carries the plan out: the plan header holds attempt
//! k's position in the group as digit k (base = the group's size), which the route's
//! priority-group cluster specifier decodes on every retry.

use switchyard_config::{max_attempts, Endpoint, GroupConfig};

use super::rng::Rng;
use super::state::GroupState;
use super::strategy::{self, Candidate, Request};

/// What a request asks of the plan beyond the group's configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ask<'a> {
    pub now_ms: u64,
    /// Only deployments serving it are planned.
    pub endpoint: Endpoint,
    pub stream: bool,
    /// Estimated prompt tokens.
    pub prompt_tokens: u64,
    /// router_settings.enable_pre_call_checks.
    pub pre_call_checks: bool,
    /// The request's own num_retries, overriding the group's.
    pub num_retries: Option<u32>,
    /// The request's own timeouts, overriding the deployments' (ms).
    pub timeout_ms: Option<u64>,
    pub stream_timeout_ms: Option<u64>,
    /// Only the deployment at this position of the group (the one holding a stored response).
    pub pinned: Option<usize>,
    /// Only the deployments whose position is true here (tags, a pattern's provider).
    pub only: Option<&'a [bool]>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Attempt by attempt: the deployment's position in the group.
    pub positions: Vec<usize>,
    /// Attempt by attempt: the deployment's id.
    pub deployments: Vec<String>,
    /// The plan header's value.
    pub header: u64,
    /// Retries go back to the same deployment (only one is healthy): wait between attempts.
    pub backoff: bool,
    /// The timeout of each attempt: for streams, the time until the first event.
    pub attempt_timeout_ms: u64,
}

/// Why no attempt can be planned.
#[derive(Debug, Clone, PartialEq)]
pub enum NoPlan {
    /// Every deployment cools down; the first is back after this many ms.
    CoolingDown { retry_after_ms: u64 },
    /// Every deployment is at its rpm/tpm limit for this minute.
    NoHeadroom,
    /// The prompt is larger than every deployment's context window (pre-call checks).
    ContextTooLong { tokens: u64, largest: u64 },
    /// The group has no deployments.
    Empty,
    /// No deployment of the group serves the endpoint.
    Unsupported(Endpoint),
}

pub fn plan(
    group: &GroupConfig,
    state: &GroupState,
    ask: &Ask,
    rng: &mut Rng,
) -> Result<Plan, NoPlan> {
    if group.deployments.is_empty() {
        return Err(NoPlan::Empty);
    }
    let mut candidates = Vec::with_capacity(group.deployments.len());
    let mut back_at = u64::MAX;
    let serving = group.deployments.iter().enumerate().filter(|(i, r)| {
        r.endpoints.contains(&ask.endpoint)
            && ask.pinned.is_none_or(|p| p == *i)
            && ask
                .only
                .is_none_or(|only| only.get(*i).copied().unwrap_or(false))
    });
    let mut any = false;
    for (position, route) in serving {
        any = true;
        let st = state.deployments.get(&route.id);
        match st {
            Some(s) if s.cooling_down(ask.now_ms) => back_at = back_at.min(s.cooldown_until),
            _ => candidates.push(Candidate {
                position,
                route,
                state: st,
            }),
        }
    }
    if !any {
        return Err(NoPlan::Unsupported(ask.endpoint));
    }
    if candidates.is_empty() {
        return Err(NoPlan::CoolingDown {
            retry_after_ms: back_at.saturating_sub(ask.now_ms),
        });
    }
    if ask.pre_call_checks {
        let largest = candidates
            .iter()
            .filter_map(|c| c.route.max_input_tokens)
            .max()
            .unwrap_or(0);
        candidates.retain(|c| {
            c.route
                .max_input_tokens
                .is_none_or(|max| ask.prompt_tokens <= max)
        });
        if candidates.is_empty() {
            return Err(NoPlan::ContextTooLong {
                tokens: ask.prompt_tokens,
                largest,
            });
        }
    }
    let request = Request {
        now_ms: ask.now_ms,
        stream: ask.stream,
        tokens: ask.prompt_tokens,
    };
    let mut ordered = strategy::order(group.strategy, candidates, &request, rng)
        .map_err(|_| NoPlan::NoHeadroom)?;
    // litellm_params.order: the lowest first, the strategy's order within each (a stable
    // sort); deployments without one last.
    ordered.sort_by_key(|c| c.route.order.unwrap_or(u32::MAX));

    let base = group.deployments.len();
    let wanted = ask
        .num_retries
        .unwrap_or(group.num_retries)
        .saturating_add(1)
        .min(max_attempts(base));
    let mut uses = vec![0u32; base];
    let mut positions = Vec::with_capacity(wanted as usize);
    'fill: while positions.len() < wanted as usize {
        let before = positions.len();
        for c in &ordered {
            if positions.len() == wanted as usize {
                break 'fill;
            }
            let allowed = c
                .route
                .max_retries
                .map_or(u32::MAX, |r| r.saturating_add(1));
            if let Some(used) = uses.get_mut(c.position) {
                if *used < allowed {
                    *used += 1;
                    positions.push(c.position);
                }
            }
        }
        if positions.len() == before {
            break;
        }
    }
    let mut header: u64 = 0;
    let mut scale: u64 = 1;
    for &p in &positions {
        header = header.saturating_add((p as u64).saturating_mul(scale));
        scale = scale.saturating_mul(base as u64);
    }
    let deployments: Vec<String> = positions
        .iter()
        .filter_map(|&p| group.deployments.get(p))
        .map(|r| r.id.clone())
        .collect();
    let attempt_timeout_ms = positions
        .iter()
        .filter_map(|&p| group.deployments.get(p))
        .map(
            |r| match (ask.stream, ask.stream_timeout_ms, ask.timeout_ms) {
                (true, Some(t), _) => t,
                (true, None, _) => r.stream_timeout_ms,
                (false, _, Some(t)) => t,
                (false, _, None) => r.timeout_ms,
            },
        )
        .max()
        .unwrap_or(0);
    Ok(Plan {
        backoff: ordered.len() == 1,
        positions,
        deployments,
        header,
        attempt_timeout_ms,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::router::state::DeploymentState;
    use switchyard_config::{DeploymentRoute, Strategy};

    fn group(n: usize) -> GroupConfig {
        GroupConfig {
            deployments: (0..n)
                .map(|i| DeploymentRoute {
                    timeout_ms: 1000 * (i as u64 + 1),
                    stream_timeout_ms: 100 * (i as u64 + 1),
                    ..crate::testing::route(&format!("d{i}"))
                })
                .collect(),
            strategy: Strategy::CostBasedRouting,
            ..crate::testing::group("0", &[])
        }
    }

    /// Cost order makes the order predictable: d0 cheapest.
    fn priced(mut g: GroupConfig) -> GroupConfig {
        for (i, d) in g.deployments.iter_mut().enumerate() {
            d.input_cost_per_token = Some(i as f64);
        }
        g
    }

    fn decode(header: u64, base: u64, attempts: usize) -> Vec<usize> {
        let mut out = vec![];
        let mut h = header;
        for _ in 0..attempts {
            out.push((h % base) as usize);
            h /= base;
        }
        out
    }

    #[test]
    fn attempts_cycle_through_the_ordered_deployments_and_encode_as_digits() {
        let g = priced(group(3));
        let mut rng = Rng::seeded(3);
        let ask = Ask {
            num_retries: Some(4),
            ..Ask::default()
        };
        let p = plan(&g, &GroupState::default(), &ask, &mut rng).unwrap();
        assert_eq!(p.positions, [0, 1, 2, 0, 1]);
        assert_eq!(p.deployments, ["d0", "d1", "d2", "d0", "d1"]);
        assert_eq!(decode(p.header, 3, 5), p.positions);
        assert!(!p.backoff);
        assert_eq!(
            p.attempt_timeout_ms, 3000,
            "the longest timeout of the deployments tried"
        );
    }

    #[test]
    fn the_lowest_order_is_planned_first() {
        let mut g = priced(group(3));
        g.deployments[0].order = Some(2);
        g.deployments[2].order = Some(1);
        let ask = Ask {
            num_retries: Some(2),
            ..Ask::default()
        };
        for seed in 0..20 {
            let p = plan(&g, &GroupState::default(), &ask, &mut Rng::seeded(seed)).unwrap();
            assert_eq!(p.deployments, ["d2", "d0", "d1"], "order 1, 2, then none");
        }
    }

    #[test]
    fn cooling_down_deployments_are_skipped_and_retries_then_back_off() {
        let g = priced(group(3));
        let mut state = GroupState::default();
        for id in ["d0", "d2"] {
            state.deployments.insert(
                id.into(),
                DeploymentState {
                    cooldown_until: 10_000,
                    ..Default::default()
                },
            );
        }
        let ask = Ask {
            now_ms: 4_000,
            stream: true,
            ..Ask::default()
        };
        let p = plan(&g, &state, &ask, &mut Rng::seeded(1)).unwrap();
        assert_eq!(p.positions, [1, 1, 1]);
        assert!(
            p.backoff,
            "the only healthy deployment is retried, with backoff"
        );
        assert_eq!(
            p.attempt_timeout_ms, 200,
            "a stream's attempt timeout is its stream_timeout"
        );
        state.deployments.insert(
            "d1".into(),
            DeploymentState {
                cooldown_until: 7_000,
                ..Default::default()
            },
        );
        assert_eq!(
            plan(&g, &state, &ask, &mut Rng::seeded(1)),
            Err(NoPlan::CoolingDown {
                retry_after_ms: 3_000
            })
        );
    }

    #[test]
    fn max_retries_per_deployment_and_request_overrides() {
        let mut g = priced(group(2));
        g.deployments[0].max_retries = Some(0);
        let ask = Ask {
            num_retries: Some(5),
            timeout_ms: Some(42),
            ..Ask::default()
        };
        let p = plan(&g, &GroupState::default(), &ask, &mut Rng::seeded(1)).unwrap();
        assert_eq!(p.positions, [0, 1, 1, 1, 1, 1]);
        assert_eq!(p.attempt_timeout_ms, 42);
        g.deployments[1].max_retries = Some(1);
        let p = plan(&g, &GroupState::default(), &ask, &mut Rng::seeded(1)).unwrap();
        assert_eq!(
            p.positions,
            [0, 1, 1],
            "no deployment is tried more than allowed"
        );
    }

    #[test]
    fn pre_call_checks_skip_small_context_windows() {
        let mut g = priced(group(2));
        g.deployments[0].max_input_tokens = Some(1000);
        g.deployments[1].max_input_tokens = Some(8000);
        let ask = Ask {
            prompt_tokens: 5000,
            pre_call_checks: true,
            ..Ask::default()
        };
        let p = plan(&g, &GroupState::default(), &ask, &mut Rng::seeded(1)).unwrap();
        assert!(p.positions.iter().all(|&p| p == 1));
        let ask = Ask {
            prompt_tokens: 9000,
            ..ask
        };
        assert_eq!(
            plan(&g, &GroupState::default(), &ask, &mut Rng::seeded(1)),
            Err(NoPlan::ContextTooLong {
                tokens: 9000,
                largest: 8000
            })
        );
    }

    #[test]
    fn a_single_deployment_is_digit_zero_every_time() {
        let g = group(1);
        let p = plan(
            &g,
            &GroupState::default(),
            &Ask::default(),
            &mut Rng::seeded(1),
        )
        .unwrap();
        assert_eq!(
            (p.positions.as_slice(), p.header),
            ([0, 0, 0].as_slice(), 0)
        );
    }
}
