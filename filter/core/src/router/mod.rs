//! LiteLLM's Router on Envoy's machinery: the attempt plan (strategies, cooldowns, retries,
//! pre-call checks), the decision after each provider error, the routing state shared by
//! Envoy's workers, and fallback hand-offs. Envoy carries the plan out (see
//! switchyard_config::contract for how).

pub mod decide;
pub mod plan;
pub mod replan;
pub mod rng;
pub mod state;
pub mod strategy;
