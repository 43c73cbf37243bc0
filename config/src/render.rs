//! The Envoy bootstrap rendered from a config: one listener with the gateway filter and one
//! route per model group; one cluster per deployment, with the provider filter upstream; the
//! sidecar's cluster. See docs/architecture.md for why it is shaped this way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::contract::{
    FilterConfig, ForwardPolicy, GatewayConfig, GroupConfig, ProviderConfig, BACKOFF_SUFFIX,
    PLAN_HEADER, REPLAN_HEADER, RETRY_HEADER, ROUTE_HEADER,
};
use crate::load::ConfigError;
use crate::model::{ProxyConfig, Secret, SslVerify};
use crate::resolve::{deployments, layered_env, Resolved};
use crate::routing::{self, deployment_route, secs_to_ms, GroupRouting, DEFAULT_MAX_FALLBACKS};

/// The default for general_settings.max_request_size_mb.
pub const DEFAULT_MAX_REQUEST_MB: f64 = 16.0;
/// The default for general_settings.max_response_size_mb.
pub const DEFAULT_MAX_RESPONSE_MB: f64 = 64.0;
/// The variable `up` puts a literal master_key into.
pub const MASTER_KEY_VAR: &str = "SWITCHYARD_MASTER_KEY";
/// The system CA bundle (Debian, and the official Envoy image).
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Envoy's limit on client connections across all listeners.
pub const MAX_DOWNSTREAM_CONNECTIONS: u64 = 50_000;
/// Circuit-breaker thresholds of a deployment's cluster when the config sets none: above
/// the listener's connection cap, so Envoy's defaults (1,024 requests, 3 retries) never turn
/// load into errors. The gateway-wide limit is general_settings.global_max_parallel_requests.
pub const DEFAULT_MAX_UPSTREAM_REQUESTS: u64 = 100_000;
/// Seconds a client has to send its request headers, unless the config says otherwise.
pub const DEFAULT_REQUEST_HEADERS_TIMEOUT_SECS: f64 = 30.0;
/// Seconds an idle client connection stays open, unless the config says otherwise.
pub const DEFAULT_CLIENT_IDLE_TIMEOUT_SECS: f64 = 300.0;
/// Seconds a client has to send its whole request (a slow body).
pub const CLIENT_REQUEST_TIMEOUT_SECS: u64 = 300;
pub use crate::sidecar_api::SIDECAR_CLUSTER;

#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Listener address (`127.0.0.1` for `up`, `0.0.0.0` in containers).
    pub host: String,
    pub port: u16,
    /// Envoy admin listener, always bound to 127.0.0.1 by `up`.
    pub admin_host: String,
    pub admin_port: u16,
    /// Where Envoy reaches the sidecar (`127.0.0.1`, or `sidecar` in docker-compose).
    pub sidecar_host: String,
    pub sidecar_port: u16,
    /// The .wasm path as Envoy will see it.
    pub wasm_path: PathBuf,
    /// Debug logs in the filter and an access log on stdout.
    pub detailed_debug: bool,
    /// A listener on `host` serving only `GET /stats/prometheus` (from the admin), for a
    /// sidecar in another container; the admin itself stays on `admin_host`.
    pub stats_port: Option<u16>,
}

/// A variable the Envoy process (and so the wasm VM) must have in its environment.
#[derive(Clone, PartialEq)]
pub struct EnvBinding {
    pub name: String,
    /// Some(value): a literal secret from config.yaml that `up` puts into Envoy's environment
    /// (never into a file). None: read from the environment the operator provides.
    pub value: Option<String>,
}

impl std::fmt::Debug for EnvBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if self.value.is_some() {
            "<secret>"
        } else {
            "from the environment"
        };
        write!(f, "{}={value}", self.name)
    }
}

#[derive(Debug, Clone)]
pub struct Rendered {
    /// The Envoy bootstrap, YAML.
    pub bootstrap_yaml: String,
    /// What Envoy's environment must hold; the bootstrap lists these names in the VM's host_env_keys.
    pub env: Vec<EnvBinding>,
}

/// Renders the bootstrap. `os.environ/VAR` values are resolved now: from the config's own
/// environment_variables first (they override the process environment, as in LiteLLM, and
/// the CLI also sets them in its environment for Envoy), then from this process's environment.
pub fn render(config: &ProxyConfig, opts: &RenderOptions) -> Result<Rendered, ConfigError> {
    let env = |name: &str| std::env::var(name).ok();
    render_with_env(config, opts, &env)
}

/// Sizes and timeouts of the listener and the clusters.
struct Limits {
    max_request_bytes: u64,
    max_response_bytes: u64,
    /// Listener buffer: retries and internal redirects replay the whole body, so Envoy must
    /// hold it; leave room above the gateway's own limit so it, not Envoy, answers a 413.
    request_buffer: u64,
    /// Cluster buffer: the provider role holds a whole non-streamed answer to translate it.
    response_buffer: u64,
}

fn megabytes(mb: f64) -> u64 {
    (mb * 1024.0 * 1024.0) as u64
}

/// The access groups (model_info.access_groups) of a group's deployments, once each.
fn access_groups(config: &ProxyConfig, deps: &[Resolved], members: &[usize]) -> Vec<String> {
    let mut out: Vec<String> = members
        .iter()
        .filter_map(|&m| config.model_list.get(deps.get(m)?.index))
        .flat_map(|e| e.model_info.access_groups.iter().flatten().cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `render` with the process environment replaced by `env` (tests, tools).
pub fn render_with_env(
    config: &ProxyConfig,
    opts: &RenderOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Rendered, ConfigError> {
    let env = layered_env(config, env);
    let deps = deployments(config, (&opts.sidecar_host, opts.sidecar_port), &env)?;
    let gs = &config.general_settings;
    let max_request_bytes = megabytes(gs.max_request_size_mb.unwrap_or(DEFAULT_MAX_REQUEST_MB));
    let max_response_bytes = megabytes(gs.max_response_size_mb.unwrap_or(DEFAULT_MAX_RESPONSE_MB));
    let limits = Limits {
        max_request_bytes,
        max_response_bytes,
        request_buffer: max_request_bytes + 1024 * 1024,
        response_buffer: max_response_bytes.max(max_request_bytes) + 1024 * 1024,
    };

    let env_bindings = env_bindings(config, &deps);
    let env_names: Vec<&str> = env_bindings.iter().map(|b| b.name.as_str()).collect();
    let master_key_env = gs.master_key.as_ref().map(|k| match k {
        Secret::Env(var) => var.clone(),
        Secret::Literal(_) => MASTER_KEY_VAR.to_string(),
    });
    let routing = routing::groups(config, &deps)?;
    let clusters = cluster_names(&deps);

    let mut groups = BTreeMap::new();
    for (i, g) in routing.iter().enumerate() {
        groups.insert(
            g.name.clone(),
            GroupConfig {
                route: i.to_string(),
                deployments: g
                    .members
                    .iter()
                    .filter_map(|&m| deps.get(m))
                    .map(|d| deployment_route(config, d))
                    .collect(),
                strategy: g.strategy,
                num_retries: g.num_retries,
                retry_policy: g.retry_policy,
                fallbacks: g.fallbacks.clone(),
                context_window_fallbacks: g.context_window_fallbacks.clone(),
                content_policy_fallbacks: g.content_policy_fallbacks.clone(),
                forward_client_headers: g.forward_client_headers,
                cooldown: g.cooldown.clone(),
                access_groups: access_groups(config, &deps, &g.members),
            },
        );
    }
    let gateway = FilterConfig::Gateway(GatewayConfig {
        groups,
        aliases: config
            .router_settings
            .model_group_alias
            .iter()
            .map(|(alias, target)| (alias.clone(), target.target().to_string()))
            .collect(),
        master_key_env,
        max_request_bytes: limits.max_request_bytes,
        max_parallel_requests: gs.global_max_parallel_requests,
        forward: ForwardPolicy {
            all_groups: gs.forward_client_headers_to_llm_api.unwrap_or(false),
            openai_org: gs.forward_openai_org_id.unwrap_or(false),
        },
        max_fallbacks: config
            .router_settings
            .max_fallbacks
            .unwrap_or(DEFAULT_MAX_FALLBACKS),
        pre_call_checks: config
            .router_settings
            .enable_pre_call_checks
            .unwrap_or(false),
        key_cache_ttl_ms: gs
            .user_api_key_cache_ttl
            .map_or(60_000, |s| (s * 1000.0).round() as u64),
        cache: config.cache_config(),
        log_messages: config
            .litellm_settings
            .all_callbacks()
            .iter()
            .any(|c| crate::load::MESSAGE_CALLBACKS.contains(c))
            && config.litellm_settings.turn_off_message_logging != Some(true),
        fleet_limits: matches!(config.redis_url(&env), Ok(Some(_))),
        tag_filtering: config.router_settings.enable_tag_filtering.unwrap_or(false),
        key_header: gs
            .litellm_key_header_name
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_ascii_lowercase),
        enforce_user: gs.enforce_user_param.unwrap_or(false),
    });

    // Every header some deployment sets: an attempt removes those it does not set itself.
    let owned_headers: Vec<String> = deps
        .iter()
        .flat_map(|d| d.config.headers.iter().map(|(n, _)| n.to_ascii_lowercase()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut cluster_values = vec![sidecar_cluster(opts)];
    for (d, name) in deps.iter().zip(&clusters) {
        let group = routing.iter().find(|g| g.name == d.config.group);
        let provider = FilterConfig::Provider(Box::new(ProviderConfig {
            deployment: d.config.clone(),
            owned_headers: owned_headers.clone(),
            secret_envs: env_names.iter().map(|n| n.to_string()).collect(),
            strategy: group.map(|g| g.strategy).unwrap_or_default(),
            cooldown: group.map(|g| g.cooldown.clone()).ok_or_else(|| {
                ConfigError::at(
                    "model_list",
                    format!("deployment {} has no group", d.config.id),
                )
            })?,
            max_response_bytes: limits.max_response_bytes,
            expose_api_base: gs.expose_api_base.unwrap_or(true),
            replicas: d.hosts.len() > 1,
            catalog: crate::prices::catalog(d),
        }));
        let filter = wasm_filter("switchyard_provider", &provider, opts, &env_names)?;
        cluster_values.push(deployment_cluster(config, d, name, &limits, filter));
    }
    let gateway_filter = wasm_filter("switchyard_gateway", &gateway, opts, &env_names)?;
    let routes = group_routes(config, &routing, &clusters);
    let mut listeners = vec![listener(
        config,
        opts,
        &limits,
        &deps,
        routes,
        gateway_filter,
    )];
    if let Some(port) = opts.stats_port {
        listeners.push(stats_listener(opts, port));
        cluster_values.push(json!({
            "name": ADMIN_CLUSTER,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": ADMIN_CLUSTER,
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket(&opts.admin_host, opts.admin_port)}}]}],
            },
        }));
    }
    let bootstrap = json!({
        "admin": {"address": socket(&opts.admin_host, opts.admin_port)},
        "static_resources": {
            "listeners": listeners,
            "clusters": cluster_values,
        },
        // A ceiling on client connections, so a flood cannot exhaust file descriptors (and
        // Envoy stops warning at every start that there is none).
        "overload_manager": {
            "resource_monitors": [{
                "name": "envoy.resource_monitors.global_downstream_max_connections",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                    "max_active_downstream_connections": MAX_DOWNSTREAM_CONNECTIONS,
                },
            }],
        },
    });
    let bootstrap_yaml = serde_yaml_ng::to_string(&bootstrap)
        .map_err(|e| ConfigError::at("bootstrap", format!("cannot write YAML: {e}")))?;
    Ok(Rendered {
        bootstrap_yaml,
        env: env_bindings,
    })
}

/// One unique cluster name per deployment: `deployment_<id>`.
fn cluster_names(deps: &[Resolved]) -> Vec<String> {
    let mut taken = BTreeSet::new();
    deps.iter()
        .map(|d| {
            let base = format!("deployment_{}", sanitize(&d.config.id));
            let mut name = base.clone();
            let mut n = 2;
            while !taken.insert(name.clone()) {
                name = format!("{base}_{n}");
                n += 1;
            }
            name
        })
        .collect()
}

/// Per model group, two routes selected by [`ROUTE_HEADER`]: one that retries at once (the
/// plan moves to another deployment) and one that backs off (it retries the same one, as
/// LiteLLM does when no other deployment is healthy). Each picks the attempt's cluster from
/// the plan header with Envoy's priority-group cluster specifier: priority group k lists the
/// group's deployments with weight base^(k-1), so the plan's k-th digit (base = the group's
/// size) picks attempt k's deployment.
fn group_routes(config: &ProxyConfig, routing: &[GroupRouting], clusters: &[String]) -> Vec<Value> {
    let rs = &config.router_settings;
    let max_fallbacks = rs.max_fallbacks.unwrap_or(DEFAULT_MAX_FALLBACKS);
    // LiteLLM: 0.5 s doubling to 8 s, at least router_settings.retry_after.
    let backoff_base_ms = secs_to_ms(rs.retry_after.unwrap_or(0.0)).max(500);
    let mut routes = Vec::new();
    for (i, g) in routing.iter().enumerate() {
        let base = g.members.len().max(1) as u64;
        let mut weight: u64 = 1;
        let mut priority_groups = Vec::new();
        for attempt in 1..=g.max_attempts {
            let members: Vec<Value> = g
                .members
                .iter()
                .filter_map(|&m| clusters.get(m))
                .map(|c| json!({"cluster_name": c, "weight": weight}))
                .collect();
            priority_groups
                .push(json!({"name": format!("attempt-{attempt}"), "clusters": members}));
            weight = weight.saturating_mul(base);
        }
        for backoff in [false, true] {
            let route = if backoff {
                format!("{i}{BACKOFF_SUFFIX}")
            } else {
                i.to_string()
            };
            let mut retry_policy = json!({
                // Envoy retries what never reached a provider (resets, refused connections,
                // per-attempt timeouts); for an answer, the provider role decides and says so
                // with RETRY_HEADER, from the error class and the plan.
                "retry_on": "reset,connect-failure,retriable-headers",
                "retriable_headers": [{"name": RETRY_HEADER, "present_match": true}],
                "num_retries": g.max_attempts.saturating_sub(1),
                "refresh_cluster_on_retry": true,
                // Replicas of one deployment: retry another one.
                "retry_host_predicate": [{
                    "name": "envoy.retry_host_predicates.previous_hosts",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"},
                }],
                "host_selection_retry_max_attempts": 3,
                "retry_back_off": {"base_interval": "0.001s", "max_interval": "0.001s"},
            });
            if backoff {
                retry_policy["retry_back_off"] = json!({
                    "base_interval": seconds(backoff_base_ms),
                    "max_interval": seconds(backoff_base_ms.max(8000)),
                });
                // A provider's Retry-After, up to a minute, instead of the backoff.
                retry_policy["rate_limited_retry_back_off"] = json!({
                    "reset_headers": [{"name": "retry-after", "format": "SECONDS"}],
                    "max_interval": "60s",
                });
            }
            routes.push(json!({
                "match": {
                    "prefix": "/",
                    "headers": [{"name": ROUTE_HEADER, "string_match": {"exact": route}}],
                },
                "route": {
                    "inline_cluster_specifier_plugin": {"extension": {
                        "name": "envoy.router.cluster_specifier_plugin.priority_group",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.router.cluster_specifiers.priority_group.v3.PriorityGroupClusterSpecifier",
                            "header_name": PLAN_HEADER,
                            "priority_groups": priority_groups,
                        },
                    }},
                    // Attempts are bounded by their own timeouts, which the gateway sets per
                    // request (x-envoy-upstream-rq-per-try-timeout-ms).
                    "timeout": "0s",
                    "retry_policy": retry_policy,
                    // A fallback group: the provider role answers 307 and Envoy brings the
                    // request back through the gateway, body and all.
                    "internal_redirect_policy": {
                        "max_internal_redirects": max_fallbacks,
                        "redirect_response_codes": [307],
                        "response_headers_to_copy": [REPLAN_HEADER],
                    },
                },
            }));
        }
    }
    routes
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn socket(host: &str, port: u16) -> Value {
    json!({"socket_address": {"address": host, "port_value": port}})
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

/// A variable set by the config's environment_variables section.
fn config_env(config: &ProxyConfig, name: &str) -> Option<String> {
    config.environment_variables.get(name).map(|v| v.0.clone())
}

/// What the VM's environment must hold: keys and the master key, by name only. A value is
/// given when it comes from config.yaml (a literal, or the environment_variables section).
fn env_bindings(config: &ProxyConfig, deps: &[Resolved]) -> Vec<EnvBinding> {
    let mut out: Vec<EnvBinding> = Vec::new();
    let mut add = |name: String, value: Option<String>| {
        if !out.iter().any(|b| b.name == name) {
            out.push(EnvBinding { name, value });
        }
    };
    match &config.general_settings.master_key {
        Some(Secret::Env(var)) => add(var.clone(), config_env(config, var)),
        Some(Secret::Literal(v)) => add(MASTER_KEY_VAR.to_string(), Some(v.clone())),
        None => {}
    }
    for secret in deps.iter().flat_map(|d| &d.secrets) {
        match &secret.literal {
            Some(v) => add(secret.var.clone(), Some(v.clone())),
            None => add(secret.var.clone(), config_env(config, &secret.var)),
        }
    }
    out
}

/// Envoy's own admin, as a cluster the stats listener routes to.
const ADMIN_CLUSTER: &str = "envoy_admin";

/// Envoy's statistics for a sidecar in another container, as Istio's stats port does: only
/// `GET /stats/prometheus` reaches the admin; its other endpoints (`/quitquitquit`,
/// `/runtime_modify`, ...) stay on the admin's own address.
fn stats_listener(opts: &RenderOptions, port: u16) -> Value {
    json!({
        "name": "switchyard_stats",
        "address": socket(&opts.host, port),
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "switchyard_stats",
                "route_config": {"virtual_hosts": [{
                    "name": "stats",
                    "domains": ["*"],
                    "routes": [
                        {
                            "match": {"path": "/stats/prometheus", "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
                            "route": {"cluster": ADMIN_CLUSTER, "timeout": "5s"},
                        },
                        {"match": {"prefix": "/"}, "direct_response": {"status": 404}},
                    ],
                }]},
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
            },
        }]}],
    })
}

fn sidecar_cluster(opts: &RenderOptions) -> Value {
    json!({
        "name": SIDECAR_CLUSTER,
        "type": "STRICT_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": SIDECAR_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket(&opts.sidecar_host, opts.sidecar_port)}}]}],
        },
    })
}

/// Certificate checks for providers, from litellm_settings.ssl_verify.
fn tls_context(config: &ProxyConfig) -> Value {
    match &config.litellm_settings.ssl_verify {
        // LiteLLM's `ssl_verify: false`: encrypted, not verified.
        Some(SslVerify::Enabled(false)) => json!({}),
        Some(SslVerify::CaBundle(path)) => {
            json!({"validation_context": {"trusted_ca": {"filename": path}}})
        }
        _ => json!({"validation_context": {"trusted_ca": {"filename": CA_BUNDLE}}}),
    }
}

fn wasm_filter(
    name: &str,
    config: &FilterConfig,
    opts: &RenderOptions,
    env_names: &[&str],
) -> Result<Value, ConfigError> {
    let configuration = serde_json::to_string(config)
        .map_err(|e| ConfigError::at("filter", format!("cannot serialise: {e}")))?;
    Ok(json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": "switchyard",
                // Both roles pause headers while they read the body; without this Envoy stops
                // the body too and the request hangs.
                "allow_on_headers_stop_iteration": true,
                "fail_open": false,
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": configuration,
                },
                // The same vm_config everywhere: one VM per worker serves every plugin.
                "vm_config": {
                    "vm_id": crate::sidecar_api::VM_ID,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": opts.wasm_path.display().to_string()}},
                    "environment_variables": {"host_env_keys": env_names},
                },
            },
        },
    }))
}

fn listener(
    config: &ProxyConfig,
    opts: &RenderOptions,
    limits: &Limits,
    deps: &[Resolved],
    group_routes: Vec<Value>,
    gateway: Value,
) -> Value {
    let gs = &config.general_settings;
    let mut routes = vec![json!({
        "match": {"prefix": "/health/readiness"},
        "route": {"cluster": SIDECAR_CLUSTER, "timeout": "5s"},
    })];
    routes.extend(group_routes);
    // A request without a route header: the gateway answers every such request itself,
    // but a fallback's internal redirect needs a route to start from before the gateway
    // sets the fallback group's (Envoy then picks the route again).
    routes.push(json!({
        "match": {"prefix": "/"},
        "route": {"cluster": SIDECAR_CLUSTER, "timeout": "5s"},
    }));
    // A stream is idle when neither side sends anything: allow the longest attempt (a
    // request's own `timeout` up to LiteLLM's default of 600 s included).
    let longest_attempt_ms = deps
        .iter()
        .map(|d| deployment_route(config, d))
        .map(|r| r.timeout_ms.max(r.stream_timeout_ms))
        .chain([secs_to_ms(crate::resolve::DEFAULT_TIMEOUT_SECS)])
        .max()
        .unwrap_or(0);
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "switchyard",
        "codec_type": "AUTO",
        // Slow clients: the headers, the whole request, and an idle connection are bounded.
        "request_headers_timeout": seconds(secs_to_ms(gs.request_headers_timeout.unwrap_or(DEFAULT_REQUEST_HEADERS_TIMEOUT_SECS))),
        "request_timeout": format!("{CLIENT_REQUEST_TIMEOUT_SECS}s"),
        "stream_idle_timeout": seconds(longest_attempt_ms + 30_000),
        "common_http_protocol_options": {
            "idle_timeout": seconds(secs_to_ms(gs.client_idle_timeout.unwrap_or(DEFAULT_CLIENT_IDLE_TIMEOUT_SECS))),
        },
        "route_config": {
            "name": "switchyard",
            "virtual_hosts": [{
                "name": "switchyard",
                "domains": ["*"],
                // The provider role reads the attempt number; the gateway reports retries.
                "include_request_attempt_count": true,
                "routes": routes,
            }],
        },
        "http_filters": [
            gateway,
            // The router's x-envoy-* response headers would only be removed again: the
            // provider role writes LiteLLM's headers, attempt count included.
            {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", "suppress_envoy_headers": true}},
        ],
    });
    if opts.detailed_debug {
        hcm["access_log"] = json!([{
            "name": "envoy.access_loggers.stdout",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"},
        }]);
    }
    json!({
        "name": "switchyard",
        "address": socket(&opts.host, opts.port),
        "per_connection_buffer_limit_bytes": limits.request_buffer,
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": hcm,
        }]}],
    })
}

/// A deployment's cluster: its api_base host (or replicas), TLS, outlier detection for the
/// replicas, circuit breakers, and the provider role for this deployment upstream.
fn deployment_cluster(
    config: &ProxyConfig,
    d: &Resolved,
    name: &str,
    limits: &Limits,
    provider: Value,
) -> Value {
    let rs = &config.router_settings;
    let tls = d.config.scheme == "https";
    let replicas = d.hosts.len() > 1;
    let endpoints: Vec<Value> = d
        .hosts
        .iter()
        .map(|h| {
            let mut metadata = json!({});
            if replicas {
                // Each replica has its own :authority; the provider role reads it here.
                metadata["switchyard"] = json!({"authority": h.authority});
            }
            if tls {
                metadata["envoy.transport_socket_match"] = json!({"tls": h.name});
            }
            json!({
                "endpoint": {"address": socket(&h.name, h.port), "hostname": h.name},
                "metadata": {"filter_metadata": metadata},
            })
        })
        .collect();
    let socket_matches: Vec<Value> = if tls {
        d.hosts
            .iter()
            .map(|h| h.name.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|host| {
                json!({
                    "name": format!("tls_{host}"),
                    "match": {"tls": host},
                    "transport_socket": {
                        "name": "envoy.transport_sockets.tls",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                            "sni": host,
                            "common_tls_context": tls_context(config),
                        },
                    },
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let cooldown_ms = secs_to_ms(rs.cooldown_time.unwrap_or(routing::DEFAULT_COOLDOWN_SECS));
    // LiteLLM's max_parallel_requests is a semaphore: requests wait for a slot. Over
    // HTTP/1.1 one request holds one connection, so cap the connections and let the rest
    // wait as pending requests.
    let max_parallel = config
        .model_list
        .get(d.index)
        .and_then(|e| e.litellm_params.max_parallel_requests)
        .or(rs.default_max_parallel_requests)
        .map_or(DEFAULT_MAX_UPSTREAM_REQUESTS, u64::from);
    let mut cluster = json!({
        "name": name,
        "type": "STRICT_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": "10s",
        "lb_policy": "ROUND_ROBIN",
        "per_connection_buffer_limit_bytes": limits.response_buffer,
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": endpoints}]},
        // Replicas (several api_base hosts, or a name resolving to several addresses) that
        // fail are ejected; the deployment itself cools down in the filter, as LiteLLM's.
        "outlier_detection": {
            "consecutive_5xx": rs.allowed_fails.unwrap_or(routing::DEFAULT_ALLOWED_FAILS).max(1),
            "interval": "5s",
            "base_ejection_time": seconds(cooldown_ms.max(1)),
            "max_ejection_percent": 100,
        },
        "circuit_breakers": {"thresholds": [{
            "priority": "DEFAULT",
            "max_connections": max_parallel,
            "max_pending_requests": DEFAULT_MAX_UPSTREAM_REQUESTS,
            "max_requests": DEFAULT_MAX_UPSTREAM_REQUESTS,
            "max_retries": DEFAULT_MAX_UPSTREAM_REQUESTS,
        }]},
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http_protocol_options": {}},
                "http_filters": [
                    provider,
                    {"name": "envoy.filters.http.upstream_codec", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"}},
                ],
            },
        },
    });
    if !socket_matches.is_empty() {
        cluster["transport_socket_matches"] = Value::Array(socket_matches);
    }
    cluster
}
