//! LiteLLM's router settings, resolved per model group: strategy, retries, fallbacks,
//! cooldowns, timeouts. What the gateway plans with and what the renderer shapes Envoy by.

use std::collections::BTreeMap;

use crate::contract::{max_attempts, ClassLimits, CooldownConfig, DeploymentRoute, Strategy};
use crate::load::ConfigError;
use crate::model::{AllowedFailsPolicy, Fallbacks, ProxyConfig, RetryPolicy};
use crate::resolve::{default_timeout_secs, Resolved};

/// LiteLLM's defaults.
pub const DEFAULT_NUM_RETRIES: u32 = 2;
pub const DEFAULT_ALLOWED_FAILS: u32 = 3;
pub const DEFAULT_COOLDOWN_SECS: f64 = 5.0;
pub const DEFAULT_MAX_FALLBACKS: u32 = 5;

/// A model group as the router sees it.
#[derive(Debug, Clone)]
pub struct GroupRouting {
    pub name: String,
    /// Its deployments, in config order (the order of the route's clusters).
    pub members: Vec<usize>,
    pub strategy: Strategy,
    pub num_retries: u32,
    pub retry_policy: ClassLimits,
    pub fallbacks: Vec<String>,
    pub context_window_fallbacks: Vec<String>,
    pub content_policy_fallbacks: Vec<String>,
    pub forward_client_headers: bool,
    pub cooldown: CooldownConfig,
    /// The most attempts a plan of this group may have (bounded by [`MAX_ATTEMPTS`] and by
    /// what fits in the plan header's 64 bits).
    pub max_attempts: u32,
}

/// Model groups in config order of first appearance.
pub fn groups(config: &ProxyConfig, deps: &[Resolved]) -> Result<Vec<GroupRouting>, ConfigError> {
    let mut members_of: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, d) in deps.iter().enumerate() {
        match members_of.iter_mut().find(|(g, _)| *g == d.config.group) {
            Some((_, members)) => members.push(i),
            None => members_of.push((d.config.group.clone(), vec![i])),
        }
    }
    let names: Vec<&str> = members_of.iter().map(|(n, _)| n.as_str()).collect();
    let rs = &config.router_settings;
    let ls = &config.litellm_settings;
    let file = config.source.as_deref();

    let strategy = match rs.routing_strategy.as_deref() {
        None => Strategy::SimpleShuffle,
        Some(s) => Strategy::from_litellm(s).ok_or_else(|| {
            ConfigError::at(
                "router_settings.routing_strategy",
                format!("\"{s}\" is not a routing strategy; use simple-shuffle, least-busy, latency-based-routing, usage-based-routing or cost-based-routing"),
            )
            .in_file(file)
        })?,
    };
    let num_retries = rs
        .num_retries
        .or(ls.num_retries)
        .unwrap_or(DEFAULT_NUM_RETRIES);
    // LiteLLM reads each from router_settings, else litellm_settings.
    let section = |in_router: bool| {
        if in_router {
            "router_settings"
        } else {
            "litellm_settings"
        }
    };
    let fallbacks = FallbackTable::new(
        &format!("{}.fallbacks", section(rs.fallbacks.is_some())),
        rs.fallbacks.as_ref().or(ls.fallbacks.as_ref()),
        &names,
        file,
    )?;
    let cw = FallbackTable::new(
        &format!(
            "{}.context_window_fallbacks",
            section(rs.context_window_fallbacks.is_some())
        ),
        rs.context_window_fallbacks
            .as_ref()
            .or(ls.context_window_fallbacks.as_ref()),
        &names,
        file,
    )?;
    let cp = FallbackTable::new(
        &format!(
            "{}.content_policy_fallbacks",
            section(rs.content_policy_fallbacks.is_some())
        ),
        rs.content_policy_fallbacks
            .as_ref()
            .or(ls.content_policy_fallbacks.as_ref()),
        &names,
        file,
    )?;
    let default_fallbacks = rs
        .default_fallbacks
        .as_ref()
        .or(ls.default_fallbacks.as_ref())
        .cloned()
        .unwrap_or_default();
    for g in &default_fallbacks {
        if !names.contains(&g.as_str()) {
            return Err(ConfigError::at(
                format!(
                    "{}.default_fallbacks",
                    section(rs.default_fallbacks.is_some())
                ),
                format!("names \"{g}\", which is no model_name in model_list"),
            )
            .in_file(file));
        }
    }
    if let Some(policies) = &rs.model_group_retry_policy {
        for group in policies.keys() {
            if !names.contains(&group.as_str()) {
                return Err(ConfigError::at(
                    format!("router_settings.model_group_retry_policy.{group}"),
                    format!("\"{group}\" is no model_name in model_list"),
                )
                .in_file(file));
            }
        }
    }
    let forward_groups = ls
        .model_group_settings
        .as_ref()
        .map(|m| m.forward_client_headers_to_llm_api.clone())
        .unwrap_or_default();
    let forward_all = config
        .general_settings
        .forward_client_headers_to_llm_api
        .unwrap_or(false);
    let cooldown_ms = secs_to_ms(rs.cooldown_time.unwrap_or(DEFAULT_COOLDOWN_SECS));

    Ok(members_of
        .into_iter()
        .map(|(name, members)| {
            let retry_policy = rs
                .model_group_retry_policy
                .as_ref()
                .and_then(|m| m.get(&name))
                .or(rs.retry_policy.as_ref())
                .map(retry_limits)
                .unwrap_or_default();
            // The group's own entry; else default_fallbacks, which LiteLLM adds as the last
            // `*` entry (so it wins over a configured `*`); else the `*` entry.
            let regular = match fallbacks.own(&name) {
                Some(own) => own,
                None if !default_fallbacks.is_empty() => default_fallbacks
                    .iter()
                    .filter(|g| **g != name)
                    .cloned()
                    .collect(),
                None => fallbacks.for_group(&name),
            };
            let forward_client_headers = forward_all
                || forward_groups
                    .iter()
                    .any(|pattern| matches_group(pattern, &name));
            let cooldown = CooldownConfig {
                allowed_fails: rs.allowed_fails.unwrap_or(DEFAULT_ALLOWED_FAILS),
                per_class: rs
                    .allowed_fails_policy
                    .as_ref()
                    .map(allowed_fails_limits)
                    .unwrap_or_default(),
                cooldown_ms,
                disabled: rs.disable_cooldowns.unwrap_or(false),
                single_deployment: members.len() == 1,
            };
            GroupRouting {
                context_window_fallbacks: cw.for_group(&name),
                content_policy_fallbacks: cp.for_group(&name),
                max_attempts: max_attempts(members.len()),
                name,
                members,
                strategy,
                num_retries,
                retry_policy,
                fallbacks: regular,
                forward_client_headers,
                cooldown,
            }
        })
        .collect())
}

/// The gateway's view of a deployment.
pub fn deployment_route(config: &ProxyConfig, d: &Resolved) -> DeploymentRoute {
    let entry = config.model_list.get(d.index);
    let params = entry.map(|e| &e.litellm_params);
    let info = entry.map(|e| &e.model_info);
    let rs = &config.router_settings;
    let timeout_ms = d
        .timeout_ms
        .unwrap_or_else(|| secs_to_ms(default_timeout_secs(config)));
    let stream_timeout_ms = d
        .stream_timeout_ms
        .or(rs.stream_timeout.map(secs_to_ms))
        .unwrap_or(timeout_ms);
    let (input_cost_per_token, output_cost_per_token) = d.pricing.routing_costs();
    DeploymentRoute {
        id: d.config.id.clone(),
        weight: params.and_then(|p| p.weight),
        rpm: params.and_then(|p| p.rpm),
        tpm: params.and_then(|p| p.tpm),
        // The prices the spend is computed from, so that routing and spend agree.
        input_cost_per_token,
        output_cost_per_token,
        max_input_tokens: d.pricing.max_input_tokens,
        timeout_ms,
        stream_timeout_ms,
        max_retries: params.and_then(|p| p.max_retries),
        speaks: d.config.provider.speaks(&d.config.model).to_vec(),
        endpoints: crate::resolve::endpoints(
            d.config.provider,
            &d.config.model,
            info.and_then(|i| i.mode.as_deref()),
        ),
        tags: params.and_then(|p| p.tags.clone()).unwrap_or_default(),
        order: params.and_then(|p| p.order),
        passes_through: crate::wildcard::is_pattern(&d.config.model).then_some(d.config.provider),
    }
}

pub fn secs_to_ms(secs: f64) -> u64 {
    (secs * 1000.0).round() as u64
}

/// `gpt-4o` matches itself; `openai/*` matches every name starting with `openai/`.
fn matches_group(pattern: &str, name: &str) -> bool {
    crate::wildcard::captures(pattern, name).is_some()
}

fn retry_limits(p: &RetryPolicy) -> ClassLimits {
    ClassLimits {
        bad_request: p.BadRequestErrorRetries,
        authentication: p.AuthenticationErrorRetries,
        timeout: p.TimeoutErrorRetries,
        rate_limit: p.RateLimitErrorRetries,
        content_policy: p.ContentPolicyViolationErrorRetries,
        internal_server: p.InternalServerErrorRetries,
    }
}

fn allowed_fails_limits(p: &AllowedFailsPolicy) -> ClassLimits {
    ClassLimits {
        bad_request: p.BadRequestErrorAllowedFails,
        authentication: p.AuthenticationErrorAllowedFails,
        timeout: p.TimeoutErrorAllowedFails,
        rate_limit: p.RateLimitErrorAllowedFails,
        content_policy: p.ContentPolicyViolationErrorAllowedFails,
        internal_server: p.InternalServerErrorAllowedFails,
    }
}

/// One kind of fallbacks: model_name (or `*`) → the groups to try next.
struct FallbackTable {
    by_group: BTreeMap<String, Vec<String>>,
}

impl FallbackTable {
    fn new(
        field: &str,
        table: Option<&Fallbacks>,
        names: &[&str],
        file: Option<&str>,
    ) -> Result<FallbackTable, ConfigError> {
        let mut by_group = BTreeMap::new();
        for (i, entry) in table.into_iter().flatten().enumerate() {
            for (from, to) in entry {
                let at = format!("{field}[{i}].{from}");
                if from != "*" && !names.contains(&from.as_str()) {
                    return Err(ConfigError::at(
                        at,
                        format!("\"{from}\" is no model_name in model_list"),
                    )
                    .in_file(file));
                }
                for g in to {
                    if !names.contains(&g.as_str()) {
                        return Err(ConfigError::at(
                            at,
                            format!("falls back to \"{g}\", which is no model_name in model_list"),
                        )
                        .in_file(file));
                    }
                }
                by_group.insert(from.clone(), to.clone());
            }
        }
        Ok(FallbackTable { by_group })
    }

    /// The group's own entry, if it has one.
    fn own(&self, name: &str) -> Option<Vec<String>> {
        self.by_group
            .get(name)
            .map(|to| to.iter().filter(|g| *g != name).cloned().collect())
    }

    /// The group's own entry, else the `*` entry; never the group itself.
    fn for_group(&self, name: &str) -> Vec<String> {
        self.by_group
            .get(name)
            .or_else(|| self.by_group.get("*"))
            .map(|to| to.iter().filter(|g| *g != name).cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_patterns() {
        assert!(matches_group("gpt-4o", "gpt-4o"));
        assert!(!matches_group("gpt-4o", "gpt-4o-mini"));
        assert!(matches_group("openai/*", "openai/gpt-4o"));
        assert!(matches_group("*", "anything"));
    }
}
