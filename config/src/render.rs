//! The Envoy bootstrap rendered from a config: one listener with the gateway filter, one
//! cluster per model group with the provider filter upstream, and the sidecar's cluster.
//! See docs/architecture.md for why it is shaped this way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::contract::{FilterConfig, GroupConfig, Role, CLUSTER_HEADER, METADATA_NAMESPACE};
use crate::load::ConfigError;
use crate::model::{ProxyConfig, Secret};
use crate::resolve::{deployments, KeySource, Resolved};

/// The default for general_settings.max_request_size_mb.
pub const DEFAULT_MAX_REQUEST_MB: f64 = 16.0;
/// The variable `up` puts a literal master_key into.
pub const MASTER_KEY_VAR: &str = "SWITCHYARD_MASTER_KEY";
/// The system CA bundle (Debian, and the official Envoy image).
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
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

pub fn render(config: &ProxyConfig, opts: &RenderOptions) -> Result<Rendered, ConfigError> {
    let env = |name: &str| std::env::var(name).ok();
    render_with_env(config, opts, &env)
}

/// `render` with the environment given, for tests.
pub fn render_with_env(
    config: &ProxyConfig,
    opts: &RenderOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Rendered, ConfigError> {
    let deps = deployments(config, (&opts.sidecar_host, opts.sidecar_port), env)?;
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

    // Groups in config order of first appearance, each with a unique cluster name.
    let mut groups: BTreeMap<String, GroupConfig> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut cluster_names = BTreeSet::new();
    for d in &deps {
        let group = groups.entry(d.config.group.clone()).or_insert_with(|| {
            order.push(d.config.group.clone());
            let base = format!("group_{}", sanitize(&d.config.group));
            let mut name = base.clone();
            let mut n = 2;
            while !cluster_names.insert(name.clone()) {
                name = format!("{base}_{n}");
                n += 1;
            }
            GroupConfig {
                cluster: name,
                timeout_ms: 0,
                stream_timeout_ms: 0,
                deployments: Vec::new(),
            }
        });
        group.timeout_ms = group.timeout_ms.max(d.timeout_ms);
        group.stream_timeout_ms = group.stream_timeout_ms.max(d.stream_timeout_ms);
        group.deployments.push(d.config.id.clone());
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
    for name in &order {
        if let Some(group) = groups.get(name) {
            let members: Vec<&Resolved> = deps.iter().filter(|d| &d.config.group == name).collect();
            clusters.push(group_cluster(
                config,
                &group.cluster,
                &members,
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

/// What the VM's environment must hold: keys and the master key, by name only.
fn env_bindings(config: &ProxyConfig, deps: &[Resolved]) -> Vec<EnvBinding> {
    let mut out: Vec<EnvBinding> = Vec::new();
    let mut add = |name: String, value: Option<String>| {
        if !out.iter().any(|b| b.name == name) {
            out.push(EnvBinding { name, value });
        }
    };
    match &config.general_settings.master_key {
        Some(Secret::Env(var)) => add(var.clone(), None),
        Some(Secret::Literal(v)) => add(MASTER_KEY_VAR.to_string(), Some(v.clone())),
        None => {}
    }
    for d in deps {
        match (&d.key, &d.config.key_env) {
            (KeySource::Literal(v), Some(var)) => add(var.clone(), Some(v.clone())),
            (KeySource::Env(var), _) => add(var.clone(), None),
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
                        "common_tls_context": {"validation_context": {"trusted_ca": {"filename": CA_BUNDLE}}},
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_str;

    fn opts() -> RenderOptions {
        RenderOptions {
            host: "127.0.0.1".into(),
            port: 4000,
            admin_host: "127.0.0.1".into(),
            admin_port: 9901,
            sidecar_host: "127.0.0.1".into(),
            sidecar_port: 4001,
            wasm_path: "/x/switchyard.wasm".into(),
            detailed_debug: false,
        }
    }

    const CONFIG: &str = "
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: sk-literal-openai-key, weight: 2}
  - model_name: gpt-4o
    litellm_params: {model: azure/dep, api_base: https://res.openai.azure.com, api_key: os.environ/AZURE_KEY, api_version: '2024-10-21'}
  - model_name: local
    litellm_params: {model: hosted_vllm/llama, api_base: 'http://127.0.0.1:8000/v1', timeout: 30}
router_settings:
  num_retries: 4
  allowed_fails: 2
  cooldown_time: 7
  model_group_alias: {gpt4: gpt-4o}
general_settings:
  master_key: sk-literal-master
  max_request_size_mb: 2
";

    fn rendered() -> (Value, Rendered) {
        let cfg = load_str(CONFIG, None).unwrap().config;
        let r = render_with_env(&cfg, &opts(), &|_| None).unwrap();
        (serde_yaml_ng::from_str(&r.bootstrap_yaml).unwrap(), r)
    }

    fn filter_config(filter: &Value) -> FilterConfig {
        let s = filter["typed_config"]["config"]["configuration"]["value"]
            .as_str()
            .unwrap();
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn secrets_are_never_in_the_bootstrap() {
        let (_, r) = rendered();
        assert!(
            !r.bootstrap_yaml.contains("sk-literal"),
            "a secret leaked into the bootstrap"
        );
        let names: Vec<_> = r.env.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "SWITCHYARD_MASTER_KEY",
                "SWITCHYARD_KEY_0",
                "AZURE_KEY",
                "HOSTED_VLLM_API_KEY"
            ]
        );
        assert_eq!(r.env[1].value.as_deref(), Some("sk-literal-openai-key"));
        assert_eq!(r.env[2].value, None);
        assert!(!format!("{:?}", r.env).contains("sk-literal"));
    }

    #[test]
    fn listener_route_and_gateway_filter() {
        let (b, _) = rendered();
        let l = &b["static_resources"]["listeners"][0];
        assert_eq!(l["per_connection_buffer_limit_bytes"], 3 * 1024 * 1024);
        let hcm = &l["filter_chains"][0]["filters"][0]["typed_config"];
        let routes = &hcm["route_config"]["virtual_hosts"][0]["routes"];
        assert_eq!(routes[0]["route"]["cluster"], SIDECAR_CLUSTER);
        let main = &routes[1]["route"];
        assert_eq!(main["cluster_header"], CLUSTER_HEADER);
        assert_eq!(main["retry_policy"]["num_retries"], 4);
        let gw = filter_config(&hcm["http_filters"][0]);
        assert_eq!(gw.role, Role::Gateway);
        assert_eq!(gw.max_request_bytes, 2 * 1024 * 1024);
        assert_eq!(gw.master_key_env.as_deref(), Some("SWITCHYARD_MASTER_KEY"));
        assert_eq!(gw.aliases["gpt4"], "gpt-4o");
        assert_eq!(gw.groups["gpt-4o"].deployments.len(), 2);
        assert_eq!(gw.groups["local"].timeout_ms, 30_000);
        let vm = &hcm["http_filters"][0]["typed_config"]["config"]["vm_config"];
        assert_eq!(vm["environment_variables"]["host_env_keys"][2], "AZURE_KEY");
        assert_eq!(hcm["http_filters"][1]["name"], "envoy.filters.http.router");
    }

    #[test]
    fn one_cluster_per_group_with_deployments_as_endpoints() {
        let (b, _) = rendered();
        let clusters = b["static_resources"]["clusters"].as_array().unwrap();
        let names: Vec<_> = clusters
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, [SIDECAR_CLUSTER, "group_gpt-4o", "group_local"]);
        let g = &clusters[1];
        let eps = g["load_assignment"]["endpoints"][0]["lb_endpoints"]
            .as_array()
            .unwrap();
        assert_eq!(
            eps[0]["endpoint"]["address"]["socket_address"]["address"],
            "api.openai.com"
        );
        assert_eq!(
            eps[0]["endpoint"]["address"]["socket_address"]["port_value"],
            443
        );
        assert_eq!(eps[0]["load_balancing_weight"], 2);
        assert_eq!(
            eps[1]["metadata"]["filter_metadata"]["envoy.transport_socket_match"]["tls"],
            "res.openai.azure.com"
        );
        let matches = g["transport_socket_matches"].as_array().unwrap();
        assert_eq!(matches.len(), 2);
        assert_eq!(
            matches[0]["transport_socket"]["typed_config"]["sni"],
            "api.openai.com"
        );
        assert_eq!(g["outlier_detection"]["consecutive_5xx"], 2);
        assert_eq!(g["outlier_detection"]["base_ejection_time"], "7.000s");
        let filters = &g["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"];
        let p = filter_config(&filters[0]);
        assert_eq!(p.role, Role::Provider);
        let id = eps[1]["metadata"]["filter_metadata"]["switchyard"]["deployment"]
            .as_str()
            .unwrap();
        assert_eq!(p.deployments[id].model, "dep");
        assert_eq!(filters[1]["name"], "envoy.filters.http.upstream_codec");
        assert!(
            clusters[2].get("transport_socket_matches").is_none(),
            "plain http needs no TLS"
        );
    }

    /// The rendered bootstraps pass `envoy --mode validate` (the real Envoy from `make setup`).
    #[test]
    fn envoy_accepts_the_rendered_bootstraps() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let envoy = root.join(".venv/bin/envoy");
        assert!(
            envoy.exists(),
            "{} is missing: run `make setup`",
            envoy.display()
        );
        let dir = tempfile_dir();
        // Validate mode loads the module and runs its configuration.
        let wasm = root.join("target/wasm32-wasip1/release/switchyard_filter.wasm");
        assert!(
            wasm.exists(),
            "{} is missing: run `make build`",
            wasm.display()
        );
        for (name, text) in [
            ("inline", CONFIG.to_string()),
            (
                "quickstart",
                std::fs::read_to_string(root.join("config/examples/quickstart.yaml")).unwrap(),
            ),
            (
                "full",
                std::fs::read_to_string(root.join("config/examples/full.yaml")).unwrap(),
            ),
        ] {
            let cfg = load_str(&text, Some(name)).unwrap().config;
            let mut o = opts();
            o.wasm_path = wasm.clone();
            o.detailed_debug = name == "full";
            let env = |v: &str| Some(format!("value-of-{v}")).filter(|_| v.ends_with("_KEY"));
            let r = render_with_env(&cfg, &o, &env).unwrap();
            let file = dir.join(format!("{name}.yaml"));
            std::fs::write(&file, &r.bootstrap_yaml).unwrap();
            let out = std::process::Command::new(&envoy)
                .args(["--mode", "validate", "-c"])
                .arg(&file)
                .envs(
                    r.env
                        .iter()
                        .map(|b| (b.name.clone(), "test-value".to_string())),
                )
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name}: envoy rejected the bootstrap:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("switchyard-render-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
