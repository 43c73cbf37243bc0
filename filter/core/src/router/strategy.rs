//! The routing strategies (router_settings.routing_strategy), each a pure function of the
//! group's deployments, their shared state and a random source: they order the healthy
//! deployments, best first. The plan tries them in that order.

use switchyard_config::{DeploymentRoute, Strategy};

use super::rng::Rng;
use super::state::DeploymentState;

/// A deployment the request may go to.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Its position in the group (the plan digit).
    pub position: usize,
    pub route: &'a DeploymentRoute,
    pub state: Option<&'a DeploymentState>,
}

/// What a strategy knows of the request.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    pub now_ms: u64,
    pub stream: bool,
    /// Estimated prompt tokens (usage-based routing's tpm headroom).
    pub tokens: u64,
}

/// Every candidate is over its rpm or tpm for this minute (usage-based-routing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoHeadroom;

/// The candidates in the order to try them.
pub fn order<'a>(
    strategy: Strategy,
    candidates: Vec<Candidate<'a>>,
    request: &Request,
    rng: &mut Rng,
) -> Result<Vec<Candidate<'a>>, NoHeadroom> {
    // A random order first: every strategy's ties are broken at random (sorts are stable).
    let mut shuffled = candidates;
    rng.shuffle(&mut shuffled);
    let now = request.now_ms;
    Ok(match strategy {
        Strategy::SimpleShuffle => weighted_shuffle(shuffled, rng),
        Strategy::LeastBusy => {
            shuffled.sort_by_key(|c| c.state.map_or(0, |s| s.in_flight));
            shuffled
        }
        Strategy::LatencyBasedRouting => {
            // No sample yet counts as fastest: a new deployment gets tried.
            let latency = |c: &Candidate| {
                c.state.map_or(0.0, |s| {
                    if request.stream && s.ttft_ms > 0.0 {
                        s.ttft_ms
                    } else {
                        s.latency_ms
                    }
                })
            };
            shuffled.sort_by(|a, b| latency(a).total_cmp(&latency(b)));
            shuffled
        }
        Strategy::UsageBasedRouting => {
            let usage = |c: &Candidate| c.state.map_or((0, 0), |s| s.usage(now));
            let mut with_room: Vec<Candidate> = shuffled
                .into_iter()
                .filter(|c| {
                    let (requests, tokens) = usage(c);
                    c.route.rpm.is_none_or(|rpm| requests < rpm)
                        && c.route.tpm.is_none_or(|tpm| tokens + request.tokens <= tpm)
                })
                .collect();
            if with_room.is_empty() {
                return Err(NoHeadroom);
            }
            with_room.sort_by_key(|c| usage(c).1);
            with_room
        }
        Strategy::CostBasedRouting => {
            // Deployments without a price go last.
            let cost =
                |c: &Candidate| match (c.route.input_cost_per_token, c.route.output_cost_per_token)
                {
                    (None, None) => f64::INFINITY,
                    (i, o) => i.unwrap_or(0.0) + o.unwrap_or(0.0),
                };
            shuffled.sort_by(|a, b| cost(a).total_cmp(&cost(b)));
            shuffled
        }
    })
}

/// LiteLLM's simple-shuffle: weighted by `weight` when the group sets it, else by rpm, else
/// by tpm, else uniform. Every candidate stays in the order (weight 0 goes last), so retries
/// still reach it.
fn weighted_shuffle<'a>(mut rest: Vec<Candidate<'a>>, rng: &mut Rng) -> Vec<Candidate<'a>> {
    let weigh: fn(&DeploymentRoute) -> f64 = if rest.iter().any(|c| c.route.weight.is_some()) {
        |r| r.weight.unwrap_or(0.0)
    } else if rest.iter().any(|c| c.route.rpm.is_some()) {
        |r| r.rpm.unwrap_or(0) as f64
    } else if rest.iter().any(|c| c.route.tpm.is_some()) {
        |r| r.tpm.unwrap_or(0) as f64
    } else {
        return rest;
    };
    let mut out = Vec::with_capacity(rest.len());
    while !rest.is_empty() {
        let total: f64 = rest.iter().map(|c| weigh(c.route).max(0.0)).sum();
        if total <= 0.0 {
            out.append(&mut rest);
            break;
        }
        let mut pick = rng.unit() * total;
        let mut chosen = rest.len() - 1;
        for (i, c) in rest.iter().enumerate() {
            let w = weigh(c.route).max(0.0);
            if pick < w {
                chosen = i;
                break;
            }
            pick -= w;
        }
        out.push(rest.remove(chosen));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testing::route;

    const REQ: Request = Request {
        now_ms: 60_000,
        stream: false,
        tokens: 100,
    };

    fn firsts(
        strategy: Strategy,
        routes: &[DeploymentRoute],
        states: &[DeploymentState],
        runs: usize,
    ) -> Vec<usize> {
        let mut rng = Rng::seeded(7);
        let mut counts = vec![0; routes.len()];
        for _ in 0..runs {
            let candidates = routes
                .iter()
                .enumerate()
                .map(|(position, route)| Candidate {
                    position,
                    route,
                    state: states.get(position),
                })
                .collect();
            let ordered = order(strategy, candidates, &REQ, &mut rng).unwrap();
            assert_eq!(
                ordered.len(),
                routes.len(),
                "every candidate stays in the order"
            );
            counts[ordered[0].position] += 1;
        }
        counts
    }

    #[test]
    fn simple_shuffle_follows_weight_then_rpm_else_uniform() {
        let mut routes = vec![route("a"), route("b")];
        routes[0].weight = Some(3.0);
        routes[1].weight = Some(1.0);
        let c = firsts(Strategy::SimpleShuffle, &routes, &[], 4000);
        assert!((2800..3200).contains(&c[0]), "3:1 by weight: {c:?}");
        routes[0].weight = None;
        routes[1].weight = None;
        routes[0].rpm = Some(100);
        routes[1].rpm = Some(900);
        let c = firsts(Strategy::SimpleShuffle, &routes, &[], 4000);
        assert!((300..500).contains(&c[0]), "1:9 by rpm: {c:?}");
        let c = firsts(
            Strategy::SimpleShuffle,
            &[route("a"), route("b"), route("c")],
            &[],
            3000,
        );
        assert!(c.iter().all(|n| (850..1150).contains(n)), "uniform: {c:?}");
    }

    #[test]
    fn least_busy_and_latency_pick_the_least_loaded_and_fastest() {
        let routes = [route("a"), route("b"), route("c")];
        let busy = [3, 0, 1].map(|n| DeploymentState {
            in_flight: n,
            ..Default::default()
        });
        assert_eq!(firsts(Strategy::LeastBusy, &routes, &busy, 50), [0, 50, 0]);
        let latency = [120.0, 80.0, 300.0].map(|l| DeploymentState {
            latency_ms: l,
            ..Default::default()
        });
        assert_eq!(
            firsts(Strategy::LatencyBasedRouting, &routes, &latency, 50),
            [0, 50, 0]
        );
        let unknown = [
            DeploymentState {
                latency_ms: 50.0,
                ..Default::default()
            },
            DeploymentState::default(),
        ];
        assert_eq!(
            firsts(Strategy::LatencyBasedRouting, &routes[..2], &unknown, 20),
            [0, 20],
            "a deployment without samples gets tried"
        );
    }

    #[test]
    fn usage_based_skips_deployments_without_headroom() {
        let mut routes = [route("a"), route("b")];
        routes[0].tpm = Some(1000);
        routes[1].tpm = Some(1000);
        let used = |tokens| DeploymentState {
            minute: 1,
            requests: 1,
            tokens,
            ..Default::default()
        };
        assert_eq!(
            firsts(
                Strategy::UsageBasedRouting,
                &routes,
                &[used(500), used(100)],
                30
            ),
            [0, 30]
        );
        let mut rng = Rng::seeded(1);
        let full = [used(950), used(990)];
        let candidates = routes
            .iter()
            .enumerate()
            .map(|(position, route)| Candidate {
                position,
                route,
                state: full.get(position),
            })
            .collect();
        assert_eq!(
            order(Strategy::UsageBasedRouting, candidates, &REQ, &mut rng).err(),
            Some(NoHeadroom)
        );
    }

    #[test]
    fn cost_based_prefers_the_cheapest_and_unpriced_last() {
        let mut routes = [route("a"), route("b"), route("c")];
        routes[0].input_cost_per_token = Some(0.00001);
        routes[1].input_cost_per_token = Some(0.000001);
        routes[1].output_cost_per_token = Some(0.000002);
        let c = firsts(Strategy::CostBasedRouting, &routes, &[], 40);
        assert_eq!(c, [0, 40, 0]);
    }
}
