//! `/metrics`: LiteLLM's Prometheus metrics, made from the request events every gateway
//! sends (the spend feed), and served in one scrape with Envoy's own statistics.
//!
//! Why here and not in Envoy's stats: the events already carry every label LiteLLM's
//! dashboards use (key, team, user, model, deployment, status), the filter pays nothing more
//! per request, and the histograms get LiteLLM's buckets. Envoy's stats have no labels a
//! wasm filter can set per request without a tag-extraction rule for each.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus::{CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, Opts, Registry};
use switchyard_config::{AttemptLog, ErrorClass, SpendEvent};

/// LiteLLM's latency buckets, in seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0,
    5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 15.0, 20.0, 25.0, 30.0, 60.0, 120.0, 180.0,
    240.0, 300.0,
];

/// A deployment that failed within this long of a success is in a partial outage.
const PARTIAL_OUTAGE_MS: u64 = 60_000;

const PROXY_LABELS: &[&str] = &[
    "end_user",
    "hashed_api_key",
    "api_key_alias",
    "requested_model",
    "team",
    "team_alias",
    "user",
];
const DEPLOYMENT_LABELS: &[&str] = &[
    "requested_model",
    "litellm_model_name",
    "model_id",
    "api_base",
    "api_provider",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
];
const PROVIDER_LIMIT_LABELS: &[&str] = &[
    "model_group",
    "api_provider",
    "api_base",
    "litellm_model_name",
    "hashed_api_key",
    "api_key_alias",
];
const FALLBACK_LABELS: &[&str] = &[
    "requested_model",
    "fallback_model",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
    "exception_status",
    "exception_class",
];
const CACHE_LABELS: &[&str] = &[
    "model",
    "hashed_api_key",
    "api_key_alias",
    "team",
    "team_alias",
];

fn with(base: &[&'static str], more: &[&'static str]) -> Vec<&'static str> {
    base.iter().chain(more).copied().collect()
}

/// The exception class LiteLLM's metrics name (as the OpenAI SDKs name the error).
pub fn exception_class(status: u16, class: Option<ErrorClass>) -> &'static str {
    match class {
        Some(ErrorClass::ContextWindow) => return "ContextWindowExceededError",
        Some(ErrorClass::ContentPolicy) => return "ContentPolicyViolationError",
        Some(ErrorClass::Timeout) => return "Timeout",
        Some(ErrorClass::RateLimit) => return "RateLimitError",
        _ => {}
    }
    match status {
        0 => "APIConnectionError",
        400 | 413 => "BadRequestError",
        401 => "AuthenticationError",
        403 => "PermissionDeniedError",
        404 => "NotFoundError",
        408 | 504 => "Timeout",
        422 => "UnprocessableEntityError",
        429 => "RateLimitError",
        502 => "APIConnectionError",
        503 => "ServiceUnavailableError",
        _ => "InternalServerError",
    }
}

/// Who sent a request, as every metric labels it.
struct Who<'a> {
    end_user: &'a str,
    key: &'a str,
    alias: &'a str,
    team: &'a str,
    team_alias: &'a str,
    user: &'a str,
}

/// Request ids seen lately, as hashes, the oldest forgotten first. A gateway sends a batch
/// again only when it got no answer, within seconds: the last [`SEEN`] ids are plenty, and
/// cost about 16 bytes each.
#[derive(Default)]
struct Seen {
    set: std::collections::HashSet<u64>,
    order: std::collections::VecDeque<u64>,
}

/// Request ids remembered.
const SEEN: usize = 200_000;

impl Seen {
    /// Whether this id is new (and remembers it).
    fn first(&mut self, request_id: &str) -> bool {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hash = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(request_id);
        if !self.set.insert(hash) {
            return false;
        }
        self.order.push_back(hash);
        if self.order.len() > SEEN {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// When a deployment last answered and last failed (ms since the epoch).
#[derive(Default)]
struct Health {
    success_ms: u64,
    failure_ms: u64,
}

pub struct Metrics {
    registry: Registry,
    /// Request ids already counted: a batch the gateway sends again is not counted twice.
    seen: Mutex<Seen>,
    /// LiteLLM leaves the end user out unless told (the labels' cardinality).
    track_end_users: bool,
    /// Team aliases by team id, as the store had them lately.
    team_aliases: moka::sync::Cache<String, String>,
    total_requests: CounterVec,
    failed_requests: CounterVec,
    spend: CounterVec,
    total_tokens: CounterVec,
    input_tokens: CounterVec,
    output_tokens: CounterVec,
    request_latency: HistogramVec,
    llm_latency: HistogramVec,
    ttft: HistogramVec,
    overhead: HistogramVec,
    deployment_success: CounterVec,
    deployment_failure: CounterVec,
    deployment_total: CounterVec,
    deployment_state: GaugeVec,
    fallback_ok: CounterVec,
    fallback_failed: CounterVec,
    cache_hits: CounterVec,
    cache_misses: CounterVec,
    remaining_requests: GaugeVec,
    remaining_tokens: GaugeVec,
    key_remaining_requests: GaugeVec,
    key_remaining_tokens: GaugeVec,
    callback_events: CounterVec,
    health: Mutex<HashMap<String, Health>>,
}

fn counter(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<CounterVec> {
    let m = CounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<GaugeVec> {
    let m = GaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<HistogramVec> {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    let m = HistogramVec::new(opts, labels)?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

impl Metrics {
    pub fn new(track_end_users: bool) -> prometheus::Result<Metrics> {
        let r = Registry::new();
        let who_model = with(PROXY_LABELS, &["model"]);
        Ok(Metrics {
            seen: Mutex::default(),
            track_end_users,
            team_aliases: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            total_requests: counter(
                &r,
                "litellm_proxy_total_requests_metric_total",
                "Requests made to the proxy, by the status the client got",
                &with(PROXY_LABELS, &["status_code"]),
            )?,
            failed_requests: counter(
                &r,
                "litellm_proxy_failed_requests_metric_total",
                "Requests the client did not get a success for",
                &with(PROXY_LABELS, &["exception_status", "exception_class"]),
            )?,
            spend: counter(
                &r,
                "litellm_spend_metric_total",
                "Spend in USD",
                &with(PROXY_LABELS, &["model"])
                    .into_iter()
                    .filter(|l| *l != "requested_model")
                    .collect::<Vec<_>>(),
            )?,
            total_tokens: counter(
                &r,
                "litellm_total_tokens_metric_total",
                "Input and output tokens",
                &who_model,
            )?,
            input_tokens: counter(
                &r,
                "litellm_input_tokens_metric_total",
                "Input tokens",
                &who_model,
            )?,
            output_tokens: counter(
                &r,
                "litellm_output_tokens_metric_total",
                "Output tokens",
                &who_model,
            )?,
            request_latency: histogram(
                &r,
                "litellm_request_total_latency_metric",
                "Seconds from the request's arrival to its answer's end",
                &who_model,
            )?,
            llm_latency: histogram(
                &r,
                "litellm_llm_api_latency_metric",
                "Seconds the serving provider took",
                &who_model,
            )?,
            ttft: histogram(
                &r,
                "litellm_llm_api_time_to_first_token_metric",
                "Seconds to a stream's first event from its provider",
                &["model", "hashed_api_key", "api_key_alias", "team", "team_alias"],
            )?,
            overhead: histogram(
                &r,
                "litellm_overhead_latency_metric",
                "Seconds of a request not spent waiting for the serving provider",
                PROVIDER_LIMIT_LABELS,
            )?,
            deployment_success: counter(
                &r,
                "litellm_deployment_success_responses_total",
                "Successful calls to a deployment",
                DEPLOYMENT_LABELS,
            )?,
            deployment_failure: counter(
                &r,
                "litellm_deployment_failure_responses_total",
                "Failed calls to a deployment (retried ones included)",
                &with(DEPLOYMENT_LABELS, &["exception_status", "exception_class"]),
            )?,
            deployment_total: counter(
                &r,
                "litellm_deployment_total_requests_total",
                "Calls to a deployment",
                DEPLOYMENT_LABELS,
            )?,
            deployment_state: gauge(
                &r,
                "litellm_deployment_state",
                "0 healthy, 1 partial outage (failed within a minute of a success), 2 complete outage",
                &["litellm_model_name", "model_id", "api_base", "api_provider"],
            )?,
            fallback_ok: counter(
                &r,
                "litellm_deployment_successful_fallbacks_total",
                "Requests a fallback group answered",
                FALLBACK_LABELS,
            )?,
            fallback_failed: counter(
                &r,
                "litellm_deployment_failed_fallbacks_total",
                "Requests whose fallback groups failed too",
                FALLBACK_LABELS,
            )?,
            cache_hits: counter(
                &r,
                "litellm_cache_hits_metric_total",
                "Requests the response cache answered",
                CACHE_LABELS,
            )?,
            cache_misses: counter(
                &r,
                "litellm_cache_misses_metric_total",
                "Requests the response cache had nothing for",
                CACHE_LABELS,
            )?,
            remaining_requests: gauge(
                &r,
                "litellm_remaining_requests_metric",
                "The provider's x-ratelimit-remaining-requests",
                PROVIDER_LIMIT_LABELS,
            )?,
            remaining_tokens: gauge(
                &r,
                "litellm_remaining_tokens_metric",
                "The provider's x-ratelimit-remaining-tokens",
                PROVIDER_LIMIT_LABELS,
            )?,
            key_remaining_requests: gauge(
                &r,
                "litellm_remaining_api_key_requests_for_model",
                "Requests a key may still make this minute, by the tightest of the gateway's limits on it",
                &["hashed_api_key", "api_key_alias", "model"],
            )?,
            key_remaining_tokens: gauge(
                &r,
                "litellm_remaining_api_key_tokens_for_model",
                "Tokens a key may still use this minute, by the tightest of the gateway's limits on it",
                &["hashed_api_key", "api_key_alias", "model"],
            )?,
            callback_events: counter(
                &r,
                "switchyard_callback_events_total",
                "Request events per logging callback: delivered, dropped (its queue was full) or failed (given up after retries)",
                &["callback", "outcome"],
            )?,
            health: Mutex::default(),
            registry: r,
        })
    }

    /// The teams of these events whose alias is not known (lately).
    pub fn unknown_teams(&self, events: &[SpendEvent]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for team in events.iter().filter_map(|e| e.team_id.as_ref()) {
            if !self.team_aliases.contains_key(team) && !out.contains(team) {
                out.push(team.clone());
            }
        }
        out
    }

    /// A team's alias (empty: it has none).
    pub fn team_alias(&self, team: &str, alias: &str) {
        self.team_aliases
            .insert(team.to_string(), alias.to_string());
    }

    /// The callbacks' delivery counts.
    pub fn callback_events(&self) -> CounterVec {
        self.callback_events.clone()
    }

    /// Counts a batch of events, each once (by request id); returns those not seen before.
    pub fn observe<'a>(&self, events: &'a [SpendEvent]) -> Vec<&'a SpendEvent> {
        let mut new = Vec::with_capacity(events.len());
        for e in events {
            let first = self
                .seen
                .lock()
                .map_or(true, |mut s| s.first(&e.request_id));
            if !first {
                continue;
            }
            new.push(e);
            let team = e.team_id.as_deref().unwrap_or_default();
            let alias = self.team_aliases.get(team).unwrap_or_default();
            let who = Who {
                end_user: match self.track_end_users {
                    true => e.end_user.as_deref().unwrap_or_default(),
                    false => "",
                },
                key: &e.key_hash,
                alias: e.key_alias.as_deref().unwrap_or_default(),
                team,
                team_alias: &alias,
                user: e.user_id.as_deref().unwrap_or_default(),
            };
            self.observe_one(e, &who);
        }
        new
    }

    fn observe_one(&self, e: &SpendEvent, w: &Who) {
        let proxy = [
            w.end_user,
            w.key,
            w.alias,
            &e.requested_model,
            w.team,
            w.team_alias,
            w.user,
        ];
        let status = e.http_status.to_string();
        let success = e.status == "success";
        let class = exception_class(e.http_status, e.error_class);
        self.total_requests
            .with_label_values(&[&proxy[..], &[status.as_str()]].concat())
            .inc();
        if !success {
            self.failed_requests
                .with_label_values(&[&proxy[..], &[status.as_str(), class]].concat())
                .inc();
        }
        let with_model: Vec<&str> = [&proxy[..], &[e.model.as_str()]].concat();
        if e.cost > 0.0 {
            let spend_labels = [
                w.end_user,
                w.key,
                w.alias,
                w.team,
                w.team_alias,
                w.user,
                &e.model,
            ];
            self.spend.with_label_values(&spend_labels).inc_by(e.cost);
        }
        if e.prompt_tokens + e.completion_tokens > 0 {
            self.input_tokens
                .with_label_values(&with_model)
                .inc_by(e.prompt_tokens as f64);
            self.output_tokens
                .with_label_values(&with_model)
                .inc_by(e.completion_tokens as f64);
            self.total_tokens
                .with_label_values(&with_model)
                .inc_by((e.prompt_tokens + e.completion_tokens) as f64);
        }
        let total_ms = e.end_ms.saturating_sub(e.start_ms);
        if !e.log_only {
            self.request_latency
                .with_label_values(&with_model)
                .observe(secs(total_ms));
        }
        let cache = [e.model_group.as_str(), w.key, w.alias, w.team, w.team_alias];
        if e.cache_hit {
            self.cache_hits.with_label_values(&cache).inc();
        } else if e.cache_miss {
            self.cache_misses.with_label_values(&cache).inc();
        }
        for a in &e.failed_attempts {
            self.attempt_failed(e, a, w);
        }
        let key = [w.key, w.alias, e.model_group.as_str()];
        if let Some(n) = e.key_remaining_requests {
            self.key_remaining_requests
                .with_label_values(&key)
                .set(n as f64);
        }
        if let Some(n) = e.key_remaining_tokens {
            self.key_remaining_tokens
                .with_label_values(&key)
                .set(n as f64);
        }
        if e.fallbacks > 0 {
            let first = e.failed_attempts.first();
            let (st, cl) = first.map_or((String::new(), ""), |a| {
                (
                    a.http_status.to_string(),
                    exception_class(a.http_status, Some(a.error_class)),
                )
            });
            let labels = [
                &e.requested_model,
                &e.model_group,
                w.key,
                w.alias,
                w.team,
                w.team_alias,
                &st,
                cl,
            ];
            match success {
                true => self.fallback_ok.with_label_values(&labels).inc(),
                false => self.fallback_failed.with_label_values(&labels).inc(),
            }
        }
        if e.deployment.is_empty() {
            return;
        }
        // A provider answered: the deployment's own metrics.
        let deployment = [
            &e.requested_model,
            &e.model,
            &e.deployment,
            &e.api_base,
            &e.provider,
            w.key,
            w.alias,
            w.team,
            w.team_alias,
        ];
        self.deployment_total.with_label_values(&deployment).inc();
        if success {
            self.deployment_success.with_label_values(&deployment).inc();
        } else {
            self.deployment_failure
                .with_label_values(&[&deployment[..], &[status.as_str(), class]].concat())
                .inc();
        }
        self.set_state(
            &e.deployment,
            &e.model,
            &e.api_base,
            &e.provider,
            success,
            e.end_ms,
        );
        let limits = [
            e.model_group.as_str(),
            &e.provider,
            &e.api_base,
            &e.model,
            w.key,
            w.alias,
        ];
        if e.attempt_start_ms > 0 {
            self.llm_latency
                .with_label_values(&with_model)
                .observe(secs(e.llm_api_ms));
            self.overhead
                .with_label_values(&limits)
                .observe(secs(total_ms.saturating_sub(e.llm_api_ms)));
        }
        if let Some(t) = e.ttft_ms {
            let labels = [e.model.as_str(), w.key, w.alias, w.team, w.team_alias];
            self.ttft.with_label_values(&labels).observe(secs(t));
        }
        if let Some(n) = e.provider_remaining_requests {
            self.remaining_requests
                .with_label_values(&limits)
                .set(n as f64);
        }
        if let Some(n) = e.provider_remaining_tokens {
            self.remaining_tokens
                .with_label_values(&limits)
                .set(n as f64);
        }
    }

    fn attempt_failed(&self, e: &SpendEvent, a: &AttemptLog, w: &Who) {
        let status = a.http_status.to_string();
        let class = exception_class(a.http_status, Some(a.error_class));
        let deployment = [
            &e.requested_model,
            &a.model,
            &a.deployment,
            &a.api_base,
            &a.provider,
            w.key,
            w.alias,
            w.team,
            w.team_alias,
        ];
        self.deployment_total.with_label_values(&deployment).inc();
        self.deployment_failure
            .with_label_values(&[&deployment[..], &[status.as_str(), class]].concat())
            .inc();
        self.set_state(
            &a.deployment,
            &a.model,
            &a.api_base,
            &a.provider,
            false,
            a.end_ms,
        );
    }

    fn set_state(&self, id: &str, model: &str, api_base: &str, provider: &str, ok: bool, at: u64) {
        let Ok(mut health) = self.health.lock() else {
            return;
        };
        let h = health.entry(id.to_string()).or_default();
        let state = if ok {
            h.success_ms = h.success_ms.max(at);
            0.0
        } else {
            h.failure_ms = h.failure_ms.max(at);
            if h.success_ms + PARTIAL_OUTAGE_MS >= at && h.success_ms > 0 {
                1.0
            } else {
                2.0
            }
        };
        self.deployment_state
            .with_label_values(&[model, id, api_base, provider])
            .set(state);
    }

    /// The scrape, in Prometheus's text format, with `extra` gauges (the budgets, read from
    /// the store at scrape time).
    pub fn render(&self, extra: &Registry) -> String {
        let mut families = self.registry.gather();
        families.extend(extra.gather());
        let mut out = Vec::new();
        match prometheus::TextEncoder::new().encode(&families, &mut out) {
            Ok(()) => String::from_utf8(out).unwrap_or_default(),
            Err(e) => format!("# the metrics could not be written: {e}\n"),
        }
    }
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// The budget gauges: each key's and team's max budget and what is left of it.
pub fn budgets(keys: &[Budget], teams: &[Budget]) -> prometheus::Result<Registry> {
    let r = Registry::new();
    let key_max = gauge(
        &r,
        "litellm_api_key_max_budget_metric",
        "A virtual key's max budget, USD",
        &["hashed_api_key", "api_key_alias"],
    )?;
    let key_left = gauge(
        &r,
        "litellm_remaining_api_key_budget_metric",
        "What is left of a virtual key's budget, USD",
        &["hashed_api_key", "api_key_alias"],
    )?;
    for b in keys {
        let labels = [b.id.as_str(), b.alias.as_deref().unwrap_or_default()];
        key_max.with_label_values(&labels).set(b.max_budget);
        key_left
            .with_label_values(&labels)
            .set(b.max_budget - b.spend);
    }
    let team_max = gauge(
        &r,
        "litellm_team_max_budget_metric",
        "A team's max budget, USD",
        &["team", "team_alias"],
    )?;
    let team_left = gauge(
        &r,
        "litellm_remaining_team_budget_metric",
        "What is left of a team's budget, USD",
        &["team", "team_alias"],
    )?;
    for b in teams {
        let labels = [b.id.as_str(), b.alias.as_deref().unwrap_or_default()];
        team_max.with_label_values(&labels).set(b.max_budget);
        team_left
            .with_label_values(&labels)
            .set(b.max_budget - b.spend);
    }
    Ok(r)
}

/// A key's (by its hash) or a team's budget.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Budget {
    pub id: String,
    pub alias: Option<String>,
    pub max_budget: f64,
    pub spend: f64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(id: &str) -> SpendEvent {
        SpendEvent {
            request_id: id.into(),
            key_hash: "h1".into(),
            key_alias: Some("alias-1".into()),
            team_id: Some("t1".into()),
            end_user: Some("eu".into()),
            requested_model: "gpt".into(),
            model_group: "gpt".into(),
            deployment: "d1".into(),
            provider: "openai".into(),
            model: "gpt-4o".into(),
            api_base: "https://api.openai.com/v1".into(),
            prompt_tokens: 10,
            completion_tokens: 5,
            cost: 0.5,
            start_ms: 1_000,
            end_ms: 1_300,
            attempt_start_ms: 1_050,
            llm_api_ms: 200,
            status: "success".into(),
            http_status: 200,
            ..SpendEvent::default()
        }
    }

    fn line<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    #[test]
    fn an_event_is_counted_once_with_litellms_labels() {
        let m = Metrics::new(false).unwrap();
        m.team_alias("t1", "team-one");
        m.observe(&[event("r1"), event("r1")]);
        let text = m.render(&Registry::new());
        assert_eq!(
            line(&text, "litellm_proxy_total_requests_metric_total{"),
            ["litellm_proxy_total_requests_metric_total{api_key_alias=\"alias-1\",end_user=\"\",hashed_api_key=\"h1\",requested_model=\"gpt\",status_code=\"200\",team=\"t1\",team_alias=\"team-one\",user=\"\"} 1"],
            "counted once, the end user left out unless asked for"
        );
        assert_eq!(
            line(&text, "litellm_spend_metric_total{")[0]
                .rsplit(' ')
                .next(),
            Some("0.5")
        );
        assert!(line(&text, "litellm_proxy_failed_requests_metric_total")
            .iter()
            .all(|l| l.starts_with('#')));
        // 0.3 s in all, 0.2 s at the provider: 0.1 s of overhead, in LiteLLM's buckets.
        assert!(text.contains("litellm_request_total_latency_metric_sum{api_key_alias=\"alias-1\",end_user=\"\",hashed_api_key=\"h1\",model=\"gpt-4o\",requested_model=\"gpt\",team=\"t1\",team_alias=\"team-one\",user=\"\"} 0.3"));
        assert!(text.contains("litellm_overhead_latency_metric_bucket{api_base=\"https://api.openai.com/v1\",api_key_alias=\"alias-1\",api_provider=\"openai\",hashed_api_key=\"h1\",litellm_model_name=\"gpt-4o\",model_group=\"gpt\",le=\"0.1\"} 1"));
        assert!(text.contains("litellm_overhead_latency_metric_bucket{api_base=\"https://api.openai.com/v1\",api_key_alias=\"alias-1\",api_provider=\"openai\",hashed_api_key=\"h1\",litellm_model_name=\"gpt-4o\",model_group=\"gpt\",le=\"0.05\"} 0"));
        assert!(text.contains("le=\"0.00625\""));
        let tracked = Metrics::new(true).unwrap();
        tracked.observe(&[event("r1")]);
        assert!(tracked.render(&Registry::new()).contains("end_user=\"eu\""));
    }

    #[test]
    fn failed_attempts_fallbacks_and_deployment_state() {
        let m = Metrics::new(false).unwrap();
        let failed = AttemptLog {
            model_group: "gpt".into(),
            deployment: "d2".into(),
            provider: "azure".into(),
            model: "gpt-4o".into(),
            start_ms: 1_000,
            end_ms: 1_010,
            http_status: 429,
            error_class: ErrorClass::RateLimit,
            ..AttemptLog::default()
        };
        let mut e = event("r1");
        e.failed_attempts = vec![failed.clone()];
        e.fallbacks = 1;
        e.model_group = "backup".into();
        m.observe(&[e]);
        let text = m.render(&Registry::new());
        assert!(text.contains("exception_class=\"RateLimitError\",exception_status=\"429\""));
        assert!(
            line(&text, "litellm_deployment_failure_responses_total{")[0]
                .contains("model_id=\"d2\"")
        );
        assert!(
            line(&text, "litellm_deployment_successful_fallbacks_total{")[0]
                .contains("fallback_model=\"backup\"")
        );
        assert!(text.contains("litellm_deployment_state{api_base=\"\",api_provider=\"azure\",litellm_model_name=\"gpt-4o\",model_id=\"d2\"} 2"));
        assert!(text.contains("model_id=\"d1\"} 0"));
        // d2 answers, then fails within a minute: a partial outage.
        let mut ok = event("r2");
        ok.deployment = "d2".into();
        ok.end_ms = 2_000;
        let mut bad = event("r3");
        bad.deployment = "d2".into();
        bad.status = "failure".into();
        bad.http_status = 503;
        bad.end_ms = 3_000;
        m.observe(&[ok, bad]);
        let text = m.render(&Registry::new());
        assert!(text
            .contains("api_provider=\"openai\",litellm_model_name=\"gpt-4o\",model_id=\"d2\"} 1"));
        assert!(text.contains("exception_class=\"ServiceUnavailableError\""));
    }

    #[test]
    fn request_ids_are_remembered_boundedly() {
        let mut seen = Seen::default();
        assert!(seen.first("a"));
        assert!(!seen.first("a"));
        for i in 0..SEEN {
            seen.first(&i.to_string());
        }
        assert_eq!(seen.order.len(), SEEN);
        assert!(seen.first("a"), "forgotten, oldest first");
    }

    #[test]
    fn exception_classes_as_the_sdks_name_them() {
        assert_eq!(exception_class(401, None), "AuthenticationError");
        assert_eq!(
            exception_class(400, Some(ErrorClass::ContextWindow)),
            "ContextWindowExceededError"
        );
        assert_eq!(exception_class(500, Some(ErrorClass::Timeout)), "Timeout");
        assert_eq!(
            exception_class(0, Some(ErrorClass::InternalServer)),
            "APIConnectionError"
        );
        assert_eq!(exception_class(504, None), "Timeout");
    }

    #[test]
    fn budgets_as_the_store_has_them() {
        let key = Budget {
            id: "h1".into(),
            alias: Some("k".into()),
            max_budget: 10.0,
            spend: 2.5,
        };
        let r = budgets(&[key], &[]).unwrap();
        let text = Metrics::new(false).unwrap().render(&r);
        assert!(text.contains("litellm_remaining_api_key_budget_metric{api_key_alias=\"k\",hashed_api_key=\"h1\"} 7.5"));
        assert!(text.contains(
            "litellm_api_key_max_budget_metric{api_key_alias=\"k\",hashed_api_key=\"h1\"} 10"
        ));
    }
}
