//! The Envoy bootstrap rendered from a config: one listener with the gateway filter, one
//! cluster per model group with the provider filter upstream, and the sidecar's cluster.
//! See docs/architecture.md for why it is shaped this way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::contract::{FilterConfig, GroupConfig, Role, CLUSTER_HEADER, METADATA_NAMESPACE};
use crate::load::ConfigError;
use crate::model::{ProxyConfig, Secret, SslVerify};
use crate::resolve::{deployments, group_timeouts, layered_env, KeySource, Resolved};

/// The default for general_settings.max_request_size_mb.
pub const DEFAULT_MAX_REQUEST_MB: f64 = 16.0;
/// The variable `up` puts a literal master_key into.
pub const MASTER_KEY_VAR: &str = "SWITCHYARD_MASTER_KEY";
/// The system CA bundle (Debian, and the official Envoy image).
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Envoy's limit on client connections across all listeners.
pub const MAX_DOWNSTREAM_CONNECTIONS: u64 = 50_000;
pub const SIDECAR_CLUSTER: &str = "switchyard_sidecar";

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

/// `render` with the process environment replaced by `env` (tests, tools).
pub fn render_with_env(
    config: &ProxyConfig,
    opts: &RenderOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Rendered, ConfigError> {
    let env = layered_env(config, env);
    let deps = deployments(config, (&opts.sidecar_host, opts.sidecar_port), &env)?;
    let max_request_bytes = (config
        .general_settings
        .max_request_size_mb
        .unwrap_or(DEFAULT_MAX_REQUEST_MB)
        * 1024.0
        * 1024.0) as u64;
    // Retries need the whole body buffered; leave room above the gateway's own limit so it,
    // not Envoy, answers an oversized request.
    let buffer_limit = max_request_bytes + 1024 * 1024;

    let env_bindings = env_bindings(config, &deps);
    let master_key_env = config
        .general_settings
        .master_key
        .as_ref()
        .map(|k| match k {
            Secret::Env(var) => var.clone(),
            Secret::Literal(_) => MASTER_KEY_VAR.to_string(),
        });

    // Model groups in config order of first appearance, each with its deployments and a
    // unique cluster name (two model_names may sanitise alike).
    let mut members_of: Vec<(&str, Vec<&Resolved>)> = Vec::new();
    for d in &deps {
        match members_of.iter_mut().find(|(g, _)| *g == d.config.group) {
            Some((_, members)) => members.push(d),
            None => members_of.push((&d.config.group, vec![d])),
        }
    }
    let mut groups: BTreeMap<String, GroupConfig> = BTreeMap::new();
    let mut cluster_names = BTreeSet::new();
    for (name, members) in &members_of {
        let base = format!("group_{}", sanitize(name));
        let mut cluster = base.clone();
        let mut n = 2;
        while !cluster_names.insert(cluster.clone()) {
            cluster = format!("{base}_{n}");
            n += 1;
        }
        let (timeout_ms, stream_timeout_ms) = group_timeouts(config, members);
        groups.insert(
            name.to_string(),
            GroupConfig {
                cluster,
                timeout_ms,
                stream_timeout_ms,
                deployments: members.iter().map(|d| d.config.id.clone()).collect(),
            },
        );
    }
    let aliases = config
        .router_settings
        .model_group_alias
        .iter()
        .map(|(alias, target)| (alias.clone(), target.target().to_string()))
        .collect();
    let filter_config = |role| FilterConfig {
        role,
        groups: groups.clone(),
        aliases: BTreeMap::clone(&aliases),
        deployments: deps
            .iter()
            .map(|d| (d.config.id.clone(), d.config.clone()))
            .collect(),
        master_key_env: master_key_env.clone(),
        max_request_bytes,
    };
    let env_names: Vec<&str> = env_bindings.iter().map(|b| b.name.as_str()).collect();
    let wasm = |role| wasm_filter(role, &filter_config(role), opts, &env_names);

    let mut clusters = vec![sidecar_cluster(opts)];
    for (name, members) in &members_of {
        if let Some(group) = groups.get(*name) {
            clusters.push(group_cluster(
                config,
                &group.cluster,
                members,
                buffer_limit,
                wasm(Role::Provider)?,
            ));
        }
    }
    let bootstrap = json!({
        "admin": {"address": socket(&opts.admin_host, opts.admin_port)},
        "static_resources": {
            "listeners": [listener(config, opts, buffer_limit, wasm(Role::Gateway)?)],
            "clusters": clusters,
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
    for d in deps {
        match (&d.key, &d.config.key_env) {
            (KeySource::Literal(v), Some(var)) => add(var.clone(), Some(v.clone())),
            (KeySource::Env(var), _) => add(var.clone(), config_env(config, var)),
            _ => {}
        }
    }
    out
}

fn wasm_filter(
    role: Role,
    config: &FilterConfig,
    opts: &RenderOptions,
    env_names: &[&str],
) -> Result<Value, ConfigError> {
    let name = match role {
        Role::Gateway => "switchyard_gateway",
        Role::Provider => "switchyard_provider",
    };
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
                "vm_config": {
                    "vm_id": "switchyard",
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
    buffer_limit: u64,
    gateway: Value,
) -> Value {
    let num_retries = config
        .router_settings
        .num_retries
        .or(config.litellm_settings.num_retries)
        .unwrap_or(2);
    let timeout_ms = (config
        .litellm_settings
        .request_timeout
        .unwrap_or(crate::resolve::DEFAULT_TIMEOUT_SECS)
        * 1000.0) as u64;
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "switchyard",
        "codec_type": "AUTO",
        "route_config": {
            "name": "switchyard",
            "virtual_hosts": [{
                "name": "switchyard",
                "domains": ["*"],
                "include_request_attempt_count": true,
                "routes": [
                    {
                        "match": {"prefix": "/health/readiness"},
                        "route": {"cluster": SIDECAR_CLUSTER, "timeout": "5s"},
                    },
                    {
                        "match": {"prefix": "/"},
                        "route": {
                            "cluster_header": CLUSTER_HEADER,
                            "timeout": seconds(timeout_ms),
                            "retry_policy": {
                                "retry_on": "5xx,reset,connect-failure,retriable-status-codes",
                                "retriable_status_codes": [429],
                                "num_retries": num_retries,
                                "retry_host_predicate": [{
                                    "name": "envoy.retry_host_predicates.previous_hosts",
                                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"},
                                }],
                                "host_selection_retry_max_attempts": 5,
                                "retry_back_off": {"base_interval": "0.025s", "max_interval": "0.250s"},
                            },
                        },
                    },
                ],
            }],
        },
        "http_filters": [
            gateway,
            {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
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
        "per_connection_buffer_limit_bytes": buffer_limit,
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": hcm,
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

fn group_cluster(
    config: &ProxyConfig,
    name: &str,
    members: &[&Resolved],
    buffer_limit: u64,
    provider: Value,
) -> Value {
    let rs = &config.router_settings;
    let endpoints: Vec<Value> = members
        .iter()
        .map(|d| {
            let mut metadata = json!({METADATA_NAMESPACE: {"deployment": d.config.id}});
            if d.config.scheme == "https" {
                metadata["envoy.transport_socket_match"] = json!({"tls": d.host});
            }
            json!({
                "endpoint": {"address": socket(&d.host, d.port), "hostname": d.host},
                "load_balancing_weight": d.weight,
                "metadata": {"filter_metadata": metadata},
            })
        })
        .collect();
    let tls_hosts: BTreeSet<&str> = members
        .iter()
        .filter(|d| d.config.scheme == "https")
        .map(|d| d.host.as_str())
        .collect();
    let socket_matches: Vec<Value> = tls_hosts
        .iter()
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
        .collect();
    let cooldown_ms = (rs.cooldown_time.unwrap_or(5.0) * 1000.0) as u64;
    let mut cluster = json!({
        "name": name,
        "type": "STRICT_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": "10s",
        "lb_policy": "ROUND_ROBIN",
        "per_connection_buffer_limit_bytes": buffer_limit,
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": endpoints}]},
        "outlier_detection": {
            "consecutive_5xx": rs.allowed_fails.unwrap_or(3),
            "interval": "5s",
            "base_ejection_time": seconds(cooldown_ms.max(1)),
            "max_ejection_percent": 100,
        },
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
