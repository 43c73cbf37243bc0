//! The Envoy bootstrap: parsed back and checked piece by piece, and validated by the real
//! Envoy (`envoy --mode validate`).
//!
//! The shape under test: one listener whose HCM runs the gateway filter, a `/health/readiness`
//! route to the sidecar, two routes per model group (selected by [`ROUTE_HEADER`], the
//! cluster picked per attempt from [`PLAN_HEADER`] by the priority-group cluster specifier)
//! and a catch-all 404; one cluster per deployment, each with the provider filter for that
//! deployment upstream; the sidecar's cluster.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use switchyard_config::load::{load_str, ConfigError};
use switchyard_config::prices::PriceTable;
use switchyard_config::render::{render_with_env, RenderOptions, Rendered, SIDECAR_CLUSTER};
use switchyard_config::{
    max_attempts, Auth, ClassLimits, CooldownConfig, FilterConfig, GatewayConfig, GroupConfig,
    Prices, Provider, ProviderConfig, Strategy, BACKOFF_SUFFIX, PLAN_HEADER, REPLAN_HEADER,
    RETRY_HEADER, ROUTE_HEADER,
};

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
        stats_port: None,
    }
}

/// Three deployments in gpt-4o (two of them on api.openai.com:443), three groups whose names
/// and ids sanitise alike, the demo; literal and referenced secrets.
const CONFIG: &str = "
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: sk-literal-openai-key, weight: 2, timeout: 100, max_parallel_requests: 8, rpm: 60, tpm: 1000, max_retries: 1}
    model_info: {id: openai-1, max_input_tokens: 128000, input_cost_per_token: 0.000005, output_cost_per_token: 0.000015}
  - model_name: gpt-4o
    litellm_params: {model: azure/dep, api_base: 'https://res.openai.azure.com', api_key: os.environ/AZURE_KEY, api_version: '2024-10-21', timeout: 250, stream_timeout: 40, extra_headers: {X-Team: search}}
    model_info: {id: azure/east}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/AZURE_KEY, organization: org-1, input_cost_per_token: 0.000001, headers: {X-Source: switchyard}}
  - model_name: local
    litellm_params: {model: hosted_vllm/llama, api_base: 'http://127.0.0.1:8000/v1'}
    model_info: {id: local}
  - model_name: local/2
    litellm_params: {model: hosted_vllm/llama, api_base: 'http://127.0.0.1:8001/v1'}
    model_info: {id: local/2}
  - model_name: local_2
    litellm_params: {model: hosted_vllm/llama, api_base: 'http://127.0.0.1:8002/v1'}
    model_info: {id: local_2}
  - model_name: demo
    litellm_params: {model: switchyard_demo/demo-model}
    model_info: {id: demo}
litellm_settings:
  request_timeout: 900
  num_retries: 1
router_settings:
  num_retries: 4
  timeout: 300
  allowed_fails: 2
  cooldown_time: 7.5
  model_group_alias: {gpt4: gpt-4o, hidden: {model: local, hidden: true}}
general_settings:
  master_key: sk-literal-master
  database_url: postgres://u:db-literal-password@h/db
  max_request_size_mb: 2
environment_variables:
  SOME_SETTING: env-literal-value
";

/// Every routing feature at once: three deployments on one host:port, plain and TLS replicas,
/// all kinds of fallbacks, retry and cooldown policies, limits, and a routing strategy
/// (`STRATEGY` is replaced). `envoy_accepts_the_rendered_bootstraps` validates it.
const FEATURES: &str = "
model_list:
  - model_name: chat
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY, weight: 3, max_parallel_requests: 4, timeout: 60, stream_timeout: 20}
    model_info: {id: chat-a}
  - model_name: chat
    litellm_params: {model: openai/gpt-4o-mini, api_key: os.environ/OPENAI_API_KEY, rpm: 100, max_retries: 0}
    model_info: {id: chat-b, max_input_tokens: 16000}
  - model_name: chat
    litellm_params: {model: openai/gpt-4.1, api_key: sk-literal-chat-key, tpm: 100000, input_cost_per_token: 0.000002, output_cost_per_token: 0.000008}
    model_info: {id: chat-c}
  - model_name: azure-chat
    litellm_params: {model: azure/dep, api_base: 'https://res.openai.azure.com/', api_key: os.environ/AZURE_API_KEY, extra_headers: {X-Team: os.environ/TEAM}}
    model_info: {id: azure-chat}
  - model_name: replicas
    litellm_params:
      model: hosted_vllm/llama
      api_base: ['http://127.0.0.1:8000/v1', 'http://127.0.0.2:8001/v1', 'http://[::1]:8002/v1']
    model_info: {id: vllm-replicas}
  - model_name: tls-replicas
    litellm_params:
      model: openai/my-model
      api_base: ['https://a.example.com/v1', 'https://b.example.com:8443/v1', 'https://a.example.com:9443/v1']
      api_key: os.environ/COMPAT_KEY
      max_parallel_requests: 16
    model_info: {id: tls-replicas}
  - model_name: single
    litellm_params: {model: groq/llama-3.1-8b-instant}
    model_info: {id: single}
  - model_name: demo
    litellm_params: {model: switchyard_demo/demo-model}
    model_info: {id: demo}
litellm_settings:
  num_retries: 3
  context_window_fallbacks: [{chat: [azure-chat]}]
  model_group_settings: {forward_client_headers_to_llm_api: [chat, 'tls-*']}
router_settings:
  routing_strategy: STRATEGY
  num_retries: 2
  retry_after: 1
  stream_timeout: 90
  fallbacks: [{chat: [azure-chat, single]}, {'*': [demo]}]
  content_policy_fallbacks: [{chat: [single]}]
  default_fallbacks: [single]
  max_fallbacks: 3
  retry_policy: {RateLimitErrorRetries: 3, TimeoutErrorRetries: 1}
  model_group_retry_policy: {chat: {AuthenticationErrorRetries: 0, BadRequestErrorRetries: 1}}
  allowed_fails: 1
  allowed_fails_policy: {RateLimitErrorAllowedFails: 5, ContentPolicyViolationErrorAllowedFails: 0}
  cooldown_time: 30
  enable_pre_call_checks: true
  model_group_alias: {gpt: chat}
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
  global_max_parallel_requests: 1000
  max_request_size_mb: 4
  max_response_size_mb: 8
  forward_openai_org_id: true
  expose_api_base: false
  request_headers_timeout: 10
  client_idle_timeout: 120.5
environment_variables:
  TEAM: search
";

const STRATEGIES: [(&str, Strategy); 6] = [
    ("simple-shuffle", Strategy::SimpleShuffle),
    ("least-busy", Strategy::LeastBusy),
    ("latency-based-routing", Strategy::LatencyBasedRouting),
    ("usage-based-routing", Strategy::UsageBasedRouting),
    ("usage-based-routing-v2", Strategy::UsageBasedRouting),
    ("cost-based-routing", Strategy::CostBasedRouting),
];

fn features(strategy: &str) -> String {
    FEATURES.replace("STRATEGY", strategy)
}

fn try_render(yaml: &str, opts: &RenderOptions) -> Result<(Value, Rendered), ConfigError> {
    let config = load_str(yaml, Some("config.yaml")).unwrap().config;
    let r = render_with_env(&config, opts, &|_| None)?;
    Ok((serde_yaml_ng::from_str(&r.bootstrap_yaml).unwrap(), r))
}

fn render(yaml: &str, opts: &RenderOptions) -> (Value, Rendered) {
    try_render(yaml, opts).unwrap_or_else(|e| panic!("render failed: {e}\n{yaml}"))
}

fn bootstrap(yaml: &str) -> Value {
    render(yaml, &opts()).0
}

/// The render's error; the config itself must load.
fn render_error(yaml: &str) -> ConfigError {
    match try_render(yaml, &opts()) {
        Ok(_) => panic!("rendered:\n{yaml}"),
        Err(e) => e,
    }
}

/// A config of one model group per entry of `groups`, `n` demo deployments each (ids
/// `<group>-<i>`), and `settings` appended.
fn groups_config(groups: &[(&str, usize)], settings: &str) -> String {
    let mut yaml = String::from("model_list:\n");
    for (group, n) in groups {
        for i in 0..*n {
            yaml.push_str(&format!(
                "  - model_name: {group}\n    litellm_params: {{model: switchyard_demo/m}}\n    model_info: {{id: {group}-{i}}}\n"
            ));
        }
    }
    yaml.push_str(settings);
    yaml
}

/// The environment bindings as (name, literal value) pairs.
fn bindings_of(r: &Rendered) -> Vec<(&str, Option<&str>)> {
    r.env
        .iter()
        .map(|b| (b.name.as_str(), b.value.as_deref()))
        .collect()
}

fn listener(b: &Value) -> &Value {
    &b["static_resources"]["listeners"][0]
}

fn hcm(b: &Value) -> &Value {
    &listener(b)["filter_chains"][0]["filters"][0]["typed_config"]
}

fn virtual_host(b: &Value) -> &Value {
    &hcm(b)["route_config"]["virtual_hosts"][0]
}

fn routes(b: &Value) -> &Vec<Value> {
    virtual_host(b)["routes"].as_array().unwrap()
}

/// The route whose [`ROUTE_HEADER`] match is exactly `value`.
fn group_route<'a>(b: &'a Value, value: &str) -> &'a Value {
    routes(b)
        .iter()
        .find(|r| {
            r["match"]["headers"]
                .as_array()
                .is_some_and(|h| h.iter().any(|h| h["string_match"]["exact"] == value))
        })
        .unwrap_or_else(|| panic!("no route for {ROUTE_HEADER}: {value}"))
}

fn specifier(route: &Value) -> &Value {
    &route["route"]["inline_cluster_specifier_plugin"]["extension"]["typed_config"]
}

fn priority_groups(route: &Value) -> &Vec<Value> {
    specifier(route)["priority_groups"].as_array().unwrap()
}

fn clusters(b: &Value) -> &Vec<Value> {
    b["static_resources"]["clusters"].as_array().unwrap()
}

fn cluster_names(b: &Value) -> Vec<&str> {
    clusters(b)
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

fn cluster<'a>(b: &'a Value, name: &str) -> &'a Value {
    clusters(b)
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no cluster {name} in {:?}", cluster_names(b)))
}

fn endpoints(cluster: &Value) -> &Vec<Value> {
    let priorities = cluster["load_assignment"]["endpoints"].as_array().unwrap();
    assert_eq!(priorities.len(), 1, "one priority level");
    priorities[0]["lb_endpoints"].as_array().unwrap()
}

/// (address, port, hostname) of an endpoint; the hostname is empty when there is none.
fn address(ep: &Value) -> (&str, u64, &str) {
    let a = &ep["endpoint"]["address"]["socket_address"];
    (
        a["address"].as_str().unwrap(),
        a["port_value"].as_u64().unwrap(),
        ep["endpoint"]["hostname"].as_str().unwrap_or(""),
    )
}

fn upstream_filters(cluster: &Value) -> &Vec<Value> {
    cluster["typed_extension_protocol_options"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"]
        .as_array()
        .unwrap()
}

fn filter_config(filter: &Value) -> FilterConfig {
    let value = filter["typed_config"]["config"]["configuration"]["value"]
        .as_str()
        .unwrap();
    serde_json::from_str(value).unwrap()
}

fn gateway_filter(b: &Value) -> &Value {
    &hcm(b)["http_filters"][0]
}

fn gateway(b: &Value) -> GatewayConfig {
    match filter_config(gateway_filter(b)) {
        FilterConfig::Gateway(g) => g,
        other => panic!("the listener runs {other:?}"),
    }
}

fn provider_of(cluster: &Value) -> ProviderConfig {
    match filter_config(&upstream_filters(cluster)[0]) {
        FilterConfig::Provider(p) => *p,
        other => panic!("{} runs {other:?}", cluster["name"]),
    }
}

fn provider(b: &Value, cluster_name: &str) -> ProviderConfig {
    provider_of(cluster(b, cluster_name))
}

/// Envoy's weighted choice among a priority group's clusters, with the plan header as the
/// random value: the cluster whose cumulative weight range holds `plan mod total`.
fn pick(priority_group: &Value, plan: u64) -> usize {
    let weights: Vec<u64> = priority_group["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["weight"].as_u64().unwrap())
        .collect();
    let total: u64 = weights.iter().sum();
    let mut r = plan % total;
    for (i, w) in weights.iter().enumerate() {
        if r < *w {
            return i;
        }
        r -= w;
    }
    unreachable!()
}

/// The plan header for these positions, as the gateway writes it: digit k (base = the
/// group's size) is attempt k+1's position.
fn plan_header(positions: &[usize], base: usize) -> u64 {
    positions
        .iter()
        .rev()
        .fold(0, |acc, p| acc * base as u64 + *p as u64)
}

#[test]
fn secrets_are_never_in_the_bootstrap() {
    for yaml in [CONFIG.to_string(), features("least-busy")] {
        let (_, r) = render(&yaml, &opts());
        for secret in [
            "sk-literal",
            "db-literal-password",
            "env-literal-value",
            "postgres://",
        ] {
            assert!(
                !r.bootstrap_yaml.contains(secret),
                "{secret} leaked into the bootstrap"
            );
        }
        assert!(
            !format!("{r:?}").contains("sk-literal"),
            "Debug masks values"
        );
    }
}

#[test]
fn env_bindings_name_every_secret_variable_once() {
    let (b, r) = render(CONFIG, &opts());
    let names = [
        "SWITCHYARD_MASTER_KEY",
        "SWITCHYARD_KEY_0",
        "AZURE_KEY",
        "HOSTED_VLLM_API_KEY",
    ];
    assert_eq!(
        bindings_of(&r),
        [
            (names[0], Some("sk-literal-master")),
            (names[1], Some("sk-literal-openai-key")),
            (names[2], None),
            (names[3], None),
        ],
        "master key, literal key by index, os.environ once, provider default; demo needs none"
    );
    // Every plugin's VM gets the same variables; every provider knows all secrets to scrub.
    let mut filters = vec![gateway_filter(&b)];
    for c in clusters(&b).iter().filter(|c| c["name"] != SIDECAR_CLUSTER) {
        filters.push(&upstream_filters(c)[0]);
        assert_eq!(provider_of(c).secret_envs, names, "{}", c["name"]);
    }
    assert_eq!(filters.len(), 8);
    for filter in filters {
        let keys = &filter["typed_config"]["config"]["vm_config"]["environment_variables"]
            ["host_env_keys"];
        assert_eq!(keys, &json!(names));
    }
    let auth = |cluster: &str| provider(&b, cluster).deployment.auth;
    let key = |name: &str| Auth::Key { env: name.into() };
    assert_eq!(auth("deployment_openai-1"), key(names[1]));
    assert_eq!(auth("deployment_azure_east"), key(names[2]));
    assert_eq!(auth("deployment_local"), key(names[3]));
    assert_eq!(auth("deployment_demo"), Auth::None);

    // os.environ/ master key; a key variable set by environment_variables carries its value.
    let (b, r) = render(
        "
model_list:
  - model_name: a
    litellm_params: {model: openai/x, api_key: os.environ/MY_KEY}
general_settings: {master_key: os.environ/LITELLM_MASTER_KEY}
environment_variables: {MY_KEY: sk-from-config}
",
        &opts(),
    );
    assert_eq!(
        bindings_of(&r),
        [
            ("LITELLM_MASTER_KEY", None),
            ("MY_KEY", Some("sk-from-config"))
        ]
    );
    assert!(!r.bootstrap_yaml.contains("sk-from-config"));
    assert_eq!(
        gateway(&b).master_key_env.as_deref(),
        Some("LITELLM_MASTER_KEY")
    );

    // No master key: the gateway names none.
    let b = bootstrap(&groups_config(&[("a", 1)], ""));
    assert_eq!(gateway(&b).master_key_env, None);
}

#[test]
fn admin_listener_and_routes() {
    let (b, _) = render(CONFIG, &opts());
    assert_eq!(
        b["admin"]["address"]["socket_address"],
        json!({"address": "127.0.0.1", "port_value": 9901})
    );
    assert_eq!(
        b["overload_manager"]["resource_monitors"][0]["typed_config"]
            ["max_active_downstream_connections"],
        50_000
    );
    let listeners = b["static_resources"]["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 1);
    let l = listener(&b);
    assert_eq!(l["name"], "switchyard");
    assert_eq!(
        l["address"]["socket_address"],
        json!({"address": "127.0.0.1", "port_value": 4000})
    );
    assert_eq!(
        l["per_connection_buffer_limit_bytes"],
        3 * 1024 * 1024,
        "max_request_size_mb and a MiB of room"
    );
    let h = hcm(&b);
    assert_eq!(h["stat_prefix"], "switchyard");
    assert_eq!(h["codec_type"], "AUTO");
    assert!(h.get("access_log").is_none(), "quiet unless debugging");
    let router = h["http_filters"].as_array().unwrap().last().unwrap();
    assert_eq!(router["name"], "envoy.filters.http.router");
    assert_eq!(
        router["typed_config"]["suppress_envoy_headers"], true,
        "no x-envoy-* response header to strip on each answer"
    );
    let vh = virtual_host(&b);
    assert_eq!(vh["domains"], json!(["*"]));
    assert_eq!(vh["include_request_attempt_count"], true);
    assert_eq!(vh.get("include_attempt_count_in_response"), None);

    // Readiness, two routes per group in config order, then 404.
    let all = routes(&b);
    assert_eq!(all.len(), 1 + 2 * 5 + 1);
    assert_eq!(all[0]["match"], json!({"prefix": "/health/readiness"}));
    assert_eq!(
        all[0]["route"],
        json!({"cluster": SIDECAR_CLUSTER, "timeout": "5s"})
    );
    for i in 0..5 {
        for (offset, value) in [(1, i.to_string()), (2, format!("{i}{BACKOFF_SUFFIX}"))] {
            let m = &all[2 * i + offset]["match"];
            assert_eq!(
                m,
                &json!({
                    "prefix": "/",
                    "headers": [{"name": ROUTE_HEADER, "string_match": {"exact": value}}],
                })
            );
        }
    }
    // Without a route header: a real route (a fallback's internal redirect starts there),
    // to the sidecar.
    let last = all.last().unwrap();
    assert_eq!(last["match"], json!({"prefix": "/"}));
    assert_eq!(last["route"]["cluster"], SIDECAR_CLUSTER);

    let filters = h["http_filters"].as_array().unwrap();
    assert_eq!(filters.len(), 2);
    assert_eq!(filters[0]["name"], "envoy.filters.http.wasm");
    assert_eq!(filters[1]["name"], "envoy.filters.http.router");

    // Defaults: 16 MiB (+1 MiB of buffer).
    let b = bootstrap(&groups_config(&[("d", 1)], ""));
    assert_eq!(
        listener(&b)["per_connection_buffer_limit_bytes"],
        17 * 1024 * 1024
    );
    assert_eq!(routes(&b).len(), 4);
}

#[test]
fn listener_timeouts_from_config_and_defaults() {
    // Defaults; the stream idle timeout is the longest attempt, at least LiteLLM's default
    // request timeout (600 s, which a request's own `timeout` may use), plus 30 s.
    let h = hcm(&bootstrap(CONFIG)).clone();
    assert_eq!(h["request_headers_timeout"], "30.000s");
    assert_eq!(h["request_timeout"], "300s");
    assert_eq!(h["stream_idle_timeout"], "630.000s");
    assert_eq!(
        h["common_http_protocol_options"],
        json!({"idle_timeout": "300.000s"})
    );

    let h = hcm(&bootstrap(&groups_config(
        &[("d", 1)],
        "general_settings: {request_headers_timeout: 2.5, client_idle_timeout: 61}\n",
    )))
    .clone();
    assert_eq!(h["request_headers_timeout"], "2.500s");
    assert_eq!(h["common_http_protocol_options"]["idle_timeout"], "61.000s");
    assert_eq!(h["request_timeout"], "300s");
    assert_eq!(
        h["stream_idle_timeout"], "630.000s",
        "600 s by default, plus 30"
    );

    // The longest of every deployment's timeout and stream timeout.
    let h = hcm(&bootstrap(
        "
model_list:
  - model_name: a
    litellm_params: {model: switchyard_demo/m, timeout: 100, stream_timeout: 700}
  - model_name: b
    litellm_params: {model: switchyard_demo/m, timeout: 50}
litellm_settings: {request_timeout: 20}
",
    ))
    .clone();
    assert_eq!(h["stream_idle_timeout"], "730.000s");
    let h = hcm(&bootstrap(
        "
model_list:
  - model_name: a
    litellm_params: {model: switchyard_demo/m, timeout: 10}
router_settings: {stream_timeout: 900}
",
    ))
    .clone();
    assert_eq!(h["stream_idle_timeout"], "930.000s");
}

#[test]
fn access_log_only_with_detailed_debug() {
    let mut o = opts();
    o.detailed_debug = true;
    let (b, _) = render(CONFIG, &o);
    assert_eq!(
        hcm(&b)["access_log"][0]["name"],
        "envoy.access_loggers.stdout"
    );
    assert_eq!(
        hcm(&b)["access_log"][0]["typed_config"]["@type"],
        "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
    );
}

#[test]
fn both_roles_get_the_same_filter_definition() {
    let b = bootstrap(CONFIG);
    let gateway_f = gateway_filter(&b);
    let provider_f = &upstream_filters(cluster(&b, "deployment_local"))[0];
    for (filter, name) in [
        (gateway_f, "switchyard_gateway"),
        (provider_f, "switchyard_provider"),
    ] {
        assert_eq!(filter["name"], "envoy.filters.http.wasm");
        assert_eq!(
            filter["typed_config"]["@type"],
            "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
        );
        let config = &filter["typed_config"]["config"];
        assert_eq!(config["name"], name);
        assert_eq!(config["root_id"], "switchyard");
        assert_eq!(config["allow_on_headers_stop_iteration"], true);
        assert_eq!(config["fail_open"], false);
        let vm = &config["vm_config"];
        assert_eq!(vm["vm_id"], "switchyard");
        assert_eq!(vm["runtime"], "envoy.wasm.runtime.v8");
        assert_eq!(vm["code"]["local"]["filename"], "/x/switchyard.wasm");
        assert_eq!(
            config["configuration"]["@type"],
            "type.googleapis.com/google.protobuf.StringValue"
        );
    }
    // One VM per worker serves every plugin: the vm_config is the same everywhere.
    let vm = &gateway_f["typed_config"]["config"]["vm_config"];
    for c in clusters(&b).iter().filter(|c| c["name"] != SIDECAR_CLUSTER) {
        assert_eq!(
            &upstream_filters(c)[0]["typed_config"]["config"]["vm_config"],
            vm,
            "{}",
            c["name"]
        );
    }
    // The role tags the JSON.
    let raw = |f: &Value| -> Value {
        serde_json::from_str(
            f["typed_config"]["config"]["configuration"]["value"]
                .as_str()
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(raw(gateway_f)["role"], "gateway");
    assert_eq!(raw(provider_f)["role"], "provider");
}

#[test]
fn the_gateway_config() {
    let b = bootstrap(CONFIG);
    let g = gateway(&b);
    assert_eq!(g.max_request_bytes, 2 * 1024 * 1024);
    assert_eq!(g.master_key_env.as_deref(), Some("SWITCHYARD_MASTER_KEY"));
    assert_eq!(
        g.aliases,
        BTreeMap::from([
            ("gpt4".to_string(), "gpt-4o".to_string()),
            ("hidden".to_string(), "local".to_string())
        ])
    );
    assert_eq!(g.max_parallel_requests, None);
    assert!(!g.forward.all_groups && !g.forward.openai_org);
    assert_eq!(g.max_fallbacks, 5, "LiteLLM's default");
    assert!(!g.pre_call_checks);

    // Groups keep config order in their route values.
    let routes: Vec<(&str, &str)> = g
        .groups
        .iter()
        .map(|(name, group)| (name.as_str(), group.route.as_str()))
        .collect();
    assert_eq!(
        routes,
        [
            ("demo", "4"),
            ("gpt-4o", "0"),
            ("local", "1"),
            ("local/2", "2"),
            ("local_2", "3")
        ]
    );

    let gpt = &g.groups["gpt-4o"];
    let ids: Vec<&str> = gpt.deployments.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(&ids[..2], ["openai-1", "azure/east"], "config order");
    assert_eq!(ids[2].len(), 12, "a generated id: {}", ids[2]);
    let d = &gpt.deployments[0];
    assert_eq!(d.weight, Some(2.0));
    assert_eq!((d.rpm, d.tpm), (Some(60), Some(1000)));
    assert_eq!(d.max_retries, Some(1));
    assert_eq!(
        (d.input_cost_per_token, d.output_cost_per_token),
        (Some(0.000005), Some(0.000015)),
        "from model_info"
    );
    assert_eq!(d.max_input_tokens, Some(128_000));
    assert_eq!(
        (d.timeout_ms, d.stream_timeout_ms),
        (100_000, 100_000),
        "the stream timeout falls back to the deployment's timeout"
    );
    let d = &gpt.deployments[1];
    assert_eq!((d.timeout_ms, d.stream_timeout_ms), (250_000, 40_000));
    assert_eq!(
        (d.weight, d.rpm, d.tpm, d.max_retries),
        (None, None, None, None)
    );
    let d = &gpt.deployments[2];
    assert_eq!(
        (d.timeout_ms, d.stream_timeout_ms),
        (300_000, 300_000),
        "router_settings.timeout wins over litellm_settings.request_timeout"
    );
    assert_eq!(
        (d.input_cost_per_token, d.output_cost_per_token),
        (Some(0.000001), Some(0.0)),
        "from litellm_params; what a deployment's own prices leave out costs nothing"
    );

    // litellm_settings.request_timeout, router_settings.stream_timeout.
    let g = gateway(&bootstrap(&groups_config(
        &[("a", 1)],
        "litellm_settings: {request_timeout: 50}\nrouter_settings: {stream_timeout: 20}\n",
    )));
    let d = &g.groups["a"].deployments[0];
    assert_eq!((d.timeout_ms, d.stream_timeout_ms), (50_000, 20_000));
    // Costs in litellm_params win over model_info.
    let g = gateway(&bootstrap(
        "
model_list:
  - model_name: a
    litellm_params: {model: switchyard_demo/m, input_cost_per_token: 0.5, output_cost_per_token: 0.25}
    model_info: {input_cost_per_token: 9, output_cost_per_token: 9}
",
    ));
    let d = &g.groups["a"].deployments[0];
    assert_eq!(
        (d.input_cost_per_token, d.output_cost_per_token),
        (Some(0.5), Some(0.25))
    );
    assert_eq!(d.timeout_ms, 600_000, "LiteLLM's default");
}

/// Every deployment's prices reach its provider role (spend) and the gateway (cost-based
/// routing), from one resolution: its own, else the price table's, else none.
#[test]
fn the_plugin_configurations_carry_the_prices() {
    let b = bootstrap(
        "
model_list:
  - model_name: mini
    litellm_params: {model: openai/gpt-4o-mini, api_key: k}
    model_info: {id: listed}
  - model_name: mini
    litellm_params: {model: azure/my-deployment, api_base: 'https://r.openai.azure.com', api_key: k}
    model_info: {id: azure, base_model: azure/gpt-4o-mini}
  - model_name: mini
    litellm_params: {model: openai/gpt-4o-mini, api_key: k, input_cost_per_token: 0.001, output_cost_per_token: 0.002}
    model_info: {id: own, max_input_tokens: 4000}
  - model_name: mini
    litellm_params: {model: hosted_vllm/llama, api_base: 'http://127.0.0.1:8000/v1'}
    model_info: {id: unknown}
router_settings: {routing_strategy: cost-based-routing}
",
    );
    let table = PriceTable::builtin();
    for (id, key) in [("listed", "gpt-4o-mini"), ("azure", "azure/gpt-4o-mini")] {
        let (_, listed) = table.get(key).unwrap();
        let prices = provider(&b, &format!("deployment_{id}")).deployment.prices;
        assert_eq!(
            prices,
            Prices {
                input: listed.input_cost_per_token.unwrap(),
                output: listed.output_cost_per_token.unwrap(),
                cache_read: listed.cache_read_input_token_cost,
                cache_creation: listed.cache_creation_input_token_cost,
                reasoning: listed.output_cost_per_reasoning_token,
                per_second: None,
            },
            "{id}: the table's {key}"
        );
        assert!(prices.input > 0.0, "{id}");
    }
    assert_eq!(
        provider(&b, "deployment_own").deployment.prices,
        Prices {
            input: 0.001,
            output: 0.002,
            ..Prices::default()
        }
    );
    assert!(provider(&b, "deployment_unknown")
        .deployment
        .prices
        .is_free());

    let g = gateway(&b);
    for d in &g.groups["mini"].deployments {
        let prices = provider(&b, &format!("deployment_{}", d.id))
            .deployment
            .prices;
        let routed = (d.input_cost_per_token, d.output_cost_per_token);
        if d.id == "unknown" {
            assert_eq!(routed, (None, None), "unpriced deployments route last");
            assert_eq!(d.max_input_tokens, None);
        } else {
            assert_eq!(
                routed,
                (Some(prices.input), Some(prices.output)),
                "{}",
                d.id
            );
        }
    }
    let window = |id: &str| {
        g.groups["mini"]
            .deployments
            .iter()
            .find(|d| d.id == id)
            .and_then(|d| d.max_input_tokens)
    };
    assert_eq!(
        window("listed"),
        table.get("gpt-4o-mini").unwrap().1.max_input_tokens,
        "the table's context window"
    );
    assert_eq!(window("own"), Some(4000), "model_info's wins");
}

#[test]
fn one_cluster_per_deployment() {
    let b = bootstrap(CONFIG);
    let g = gateway(&b);
    let generated = &g.groups["gpt-4o"].deployments[2].id;
    assert_eq!(
        cluster_names(&b),
        [
            SIDECAR_CLUSTER.to_string(),
            "deployment_openai-1".into(),
            "deployment_azure_east".into(),
            format!("deployment_{generated}"),
            "deployment_local".into(),
            "deployment_local_2".into(),
            "deployment_local_2_2".into(),
            "deployment_demo".into(),
        ],
        "ids that sanitise alike still get distinct clusters"
    );
    assert_eq!(provider(&b, "deployment_local_2").deployment.id, "local/2");
    assert_eq!(
        provider(&b, "deployment_local_2_2").deployment.id,
        "local_2"
    );

    let sidecar = cluster(&b, SIDECAR_CLUSTER);
    assert_eq!(sidecar["type"], "STRICT_DNS");
    assert_eq!(sidecar["connect_timeout"], "1s");
    assert_eq!(address(&endpoints(sidecar)[0]).1, 4001);
    assert!(sidecar.get("typed_extension_protocol_options").is_none());

    // Every deployment cluster: its own provider filter naming its deployment, then the codec.
    let mut served = Vec::new();
    for c in clusters(&b).iter().filter(|c| c["name"] != SIDECAR_CLUSTER) {
        let name = c["name"].as_str().unwrap();
        assert_eq!(c["type"], "STRICT_DNS", "{name}");
        assert_eq!(c["dns_lookup_family"], "V4_PREFERRED");
        assert_eq!(c["connect_timeout"], "10s");
        assert_eq!(c["lb_policy"], "ROUND_ROBIN");
        assert_eq!(c["load_assignment"]["cluster_name"], name);
        assert_eq!(
            c["per_connection_buffer_limit_bytes"],
            65 * 1024 * 1024,
            "the 64 MiB response limit and a MiB of room"
        );
        let options = &c["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
        assert_eq!(
            options["@type"],
            "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
        );
        assert_eq!(
            options["explicit_http_config"],
            json!({"http_protocol_options": {}})
        );
        let filters = upstream_filters(c);
        assert_eq!(filters.len(), 2);
        assert_eq!(
            filters[0]["typed_config"]["config"]["name"],
            "switchyard_provider"
        );
        assert_eq!(filters[1]["name"], "envoy.filters.http.upstream_codec");
        let p = provider_of(c);
        assert!(
            name.starts_with(&format!("deployment_{}", p.deployment.id.replace('/', "_"))),
            "{name} runs {}",
            p.deployment.id
        );
        served.push(p.deployment.id.clone());
        assert!(!p.replicas);
        assert_eq!(endpoints(c).len(), 1);
        assert!(endpoints(c)[0]["metadata"]["filter_metadata"]
            .get("switchyard")
            .is_none());
    }

    let mut ids: Vec<String> = g
        .groups
        .values()
        .flat_map(|group| group.deployments.iter().map(|d| d.id.clone()))
        .collect();
    ids.sort();
    served.sort();
    assert_eq!(
        served, ids,
        "each deployment the gateway plans with has one cluster"
    );

    // Two deployments on api.openai.com:443, and TLS to each.
    for (name, host, port) in [
        ("deployment_openai-1", "api.openai.com", 443),
        (&format!("deployment_{generated}"), "api.openai.com", 443),
        ("deployment_azure_east", "res.openai.azure.com", 443),
    ] {
        let c = cluster(&b, name);
        let ep = &endpoints(c)[0];
        assert_eq!(address(ep), (host, port, host));
        assert_eq!(
            ep["metadata"]["filter_metadata"]["envoy.transport_socket_match"],
            json!({"tls": host})
        );
        let matches = c["transport_socket_matches"].as_array().unwrap();
        assert_eq!(matches.len(), 1);
        assert_eq!(matches[0]["name"], format!("tls_{host}"));
        assert_eq!(matches[0]["match"], json!({"tls": host}));
        let tls = &matches[0]["transport_socket"];
        assert_eq!(tls["name"], "envoy.transport_sockets.tls");
        assert_eq!(
            tls["typed_config"]["@type"],
            "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
        );
        assert_eq!(tls["typed_config"]["sni"], host);
        assert_eq!(
            tls["typed_config"]["common_tls_context"]["validation_context"]["trusted_ca"]
                ["filename"],
            "/etc/ssl/certs/ca-certificates.crt"
        );
    }

    // Plain http: no TLS, the port from the api_base; the demo points at the sidecar.
    let local = cluster(&b, "deployment_local");
    assert!(local.get("transport_socket_matches").is_none());
    let ep = &endpoints(local)[0];
    assert_eq!(address(ep), ("127.0.0.1", 8000, "127.0.0.1"));
    assert_eq!(ep["metadata"]["filter_metadata"], json!({}));
    let demo = cluster(&b, "deployment_demo");
    assert_eq!(
        address(&endpoints(demo)[0]),
        ("127.0.0.1", 4001, "127.0.0.1")
    );
    let d = provider_of(demo).deployment;
    assert_eq!(
        (d.provider, d.authority.as_str(), d.base_path.as_str()),
        (Provider::Demo, "127.0.0.1:4001", "/demo/v1")
    );
}

#[test]
fn deployments_sharing_a_host_are_separate_clusters() {
    let b = bootstrap(&features("simple-shuffle"));
    let g = gateway(&b);
    let chat = &g.groups["chat"];
    assert_eq!(chat.deployments.len(), 3);
    let mut seen = Vec::new();
    for (d, model) in chat
        .deployments
        .iter()
        .zip(["gpt-4o", "gpt-4o-mini", "gpt-4.1"])
    {
        let name = format!("deployment_{}", d.id);
        let c = cluster(&b, &name);
        assert_eq!(
            address(&endpoints(c)[0]),
            ("api.openai.com", 443, "api.openai.com")
        );
        let p = provider_of(c);
        assert_eq!(p.deployment.id, d.id);
        assert_eq!(p.deployment.group, "chat");
        assert_eq!(p.deployment.model, model);
        assert_eq!(p.deployment.authority, "api.openai.com");
        seen.push(name);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "three distinct clusters");
    // The same goes for two groups on one host: each deployment is its own cluster.
    let b = bootstrap(
        "
model_list:
  - model_name: a
    litellm_params: {model: hosted_vllm/x, api_base: 'http://h:8000/v1'}
    model_info: {id: a}
  - model_name: b
    litellm_params: {model: hosted_vllm/y, api_base: 'http://h:8000/v1'}
    model_info: {id: b}
",
    );
    assert_eq!(
        cluster_names(&b),
        [SIDECAR_CLUSTER, "deployment_a", "deployment_b"]
    );
    assert_eq!(provider(&b, "deployment_b").deployment.model, "y");
}

#[test]
fn the_provider_config() {
    let b = bootstrap(CONFIG);
    let p = provider(&b, "deployment_azure_east");
    let d = &p.deployment;
    assert_eq!(d.group, "gpt-4o");
    assert_eq!(d.provider, Provider::Azure);
    assert_eq!(d.model, "dep");
    assert_eq!(
        (
            d.scheme.as_str(),
            d.authority.as_str(),
            d.base_path.as_str()
        ),
        ("https", "res.openai.azure.com", "")
    );
    assert_eq!(d.params.api_version.as_deref(), Some("2024-10-21"));
    assert_eq!(
        d.auth,
        Auth::Key {
            env: "AZURE_KEY".into()
        }
    );
    assert_eq!(d.headers, [("x-team".to_string(), "search".to_string())]);
    assert_eq!(
        p.owned_headers,
        ["x-source", "x-team"],
        "every header some deployment sets"
    );
    assert_eq!(p.strategy, Strategy::SimpleShuffle);
    assert_eq!(p.max_response_bytes, 64 * 1024 * 1024);
    assert!(p.expose_api_base);
    assert!(!p.replicas);
    assert_eq!(
        p.cooldown,
        CooldownConfig {
            allowed_fails: 2,
            per_class: ClassLimits::default(),
            cooldown_ms: 7500,
            disabled: false,
            single_deployment: false,
        }
    );
    let g = gateway(&b);
    for c in clusters(&b).iter().filter(|c| c["name"] != SIDECAR_CLUSTER) {
        let p = provider_of(c);
        assert_eq!(
            p.cooldown, g.groups[&p.deployment.group].cooldown,
            "the group's cooldown rules"
        );
        assert_eq!(p.owned_headers, ["x-source", "x-team"]);
    }
    let p = provider(&b, "deployment_openai-1");
    assert_eq!(p.deployment.provider, Provider::Openai);
    assert!(matches!(p.deployment.auth, Auth::Key { .. }));
    assert_eq!(p.deployment.base_path, "/v1");
    assert!(p.deployment.headers.is_empty());
    assert!(provider(&b, "deployment_local").cooldown.single_deployment);

    // Limits and the api_base header from general_settings.
    let b = bootstrap(&features("cost-based-routing"));
    let c = cluster(&b, "deployment_single");
    let p = provider_of(c);
    assert_eq!(p.max_response_bytes, 8 * 1024 * 1024);
    assert_eq!(
        c["per_connection_buffer_limit_bytes"],
        9 * 1024 * 1024,
        "max_response_size_mb and a MiB of room"
    );
    assert!(!p.expose_api_base);
    assert_eq!(p.strategy, Strategy::CostBasedRouting);
    let p = provider(&b, "deployment_azure-chat");
    assert_eq!(
        p.deployment.headers,
        [("x-team".to_string(), "search".to_string())],
        "os.environ/ header values resolve from environment_variables"
    );
    assert_eq!(
        p.deployment.params.api_version.as_deref(),
        Some("2024-10-21")
    );
    // The cluster buffer holds at least a whole request (retries replay it).
    let b = bootstrap(&groups_config(
        &[("a", 1)],
        "general_settings: {max_request_size_mb: 100, max_response_size_mb: 1}\n",
    ));
    assert_eq!(
        cluster(&b, "deployment_a-0")["per_connection_buffer_limit_bytes"],
        101 * 1024 * 1024
    );
    assert_eq!(
        provider(&b, "deployment_a-0").max_response_bytes,
        1024 * 1024
    );
}

#[test]
fn two_routes_per_group_decode_the_plan() {
    let b = bootstrap(&groups_config(
        &[("one", 1), ("two", 2), ("three", 3), ("hundred", 100)],
        "",
    ));
    let g = gateway(&b);
    for (name, route, n) in [
        ("one", "0", 1usize),
        ("two", "1", 2),
        ("three", "2", 3),
        ("hundred", "3", 100),
    ] {
        let group = &g.groups[name];
        assert_eq!(group.route, route);
        assert_eq!(group.deployments.len(), n);
        let expected_clusters: Vec<String> = group
            .deployments
            .iter()
            .map(|d| format!("deployment_{}", d.id))
            .collect();
        let attempts = max_attempts(n) as usize;
        for value in [route.to_string(), format!("{route}{BACKOFF_SUFFIX}")] {
            let r = group_route(&b, &value);
            let ext = &r["route"]["inline_cluster_specifier_plugin"]["extension"];
            assert_eq!(
                ext["name"],
                "envoy.router.cluster_specifier_plugin.priority_group"
            );
            let spec = specifier(r);
            assert_eq!(
                spec["@type"],
                "type.googleapis.com/envoy.extensions.router.cluster_specifiers.priority_group.v3.PriorityGroupClusterSpecifier"
            );
            assert_eq!(spec["header_name"], PLAN_HEADER);
            assert!(r["route"].get("cluster").is_none());
            assert!(r["route"].get("cluster_header").is_none());
            let pgs = priority_groups(r);
            assert_eq!(
                pgs.len(),
                attempts,
                "{name}: one priority group per attempt"
            );
            // Priority group k lists the group's clusters in the gateway's order, each
            // weighing base^(k-1).
            let base = n as u64;
            for (k, pg) in pgs.iter().enumerate() {
                assert_eq!(pg["name"], format!("attempt-{}", k + 1));
                let members = pg["clusters"].as_array().unwrap();
                let names: Vec<&str> = members
                    .iter()
                    .map(|c| c["cluster_name"].as_str().unwrap())
                    .collect();
                assert_eq!(names, expected_clusters, "{name} attempt {}", k + 1);
                for c in members {
                    assert_eq!(c["weight"].as_u64(), Some(base.pow(k as u32)), "{name}");
                    assert!(c["weight"].as_u64().unwrap() <= u64::from(u32::MAX));
                }
            }
        }
    }
    let weights = |route: &str, k: usize| -> u64 {
        priority_groups(group_route(&b, route))[k]["clusters"][0]["weight"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        (0..10).map(|k| weights("2", k)).collect::<Vec<_>>(),
        [1, 3, 9, 27, 81, 243, 729, 2187, 6561, 19683],
        "the digit weights of a group of three"
    );
    assert_eq!(
        (0..10).map(|k| weights("1-backoff", k)).collect::<Vec<_>>(),
        [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    );
    assert_eq!(
        (0..10).map(|k| weights("0", k)).collect::<Vec<_>>(),
        [1; 10],
        "one deployment: every attempt goes to it"
    );
    assert_eq!(
        (0..5).map(|k| weights("3", k)).collect::<Vec<_>>(),
        [1, 100, 10_000, 1_000_000, 100_000_000],
        "100^4 fits in 32 bits, 100^5 does not"
    );

    // Whatever the plan, Envoy's weighted pick with the plan as its random value lands on
    // attempt k's position.
    for (route, n, plans) in [
        (
            "2",
            3usize,
            vec![vec![0, 1, 2], vec![2, 2, 0, 1], vec![1; 10], vec![2; 10]],
        ),
        ("1", 2, vec![vec![1, 0, 1, 1, 0, 0, 1, 0, 1, 1], vec![0]]),
        ("0", 1, vec![vec![0; 10]]),
        ("3", 100, vec![vec![99, 0, 42, 7, 99], vec![5, 17]]),
    ] {
        let pgs = priority_groups(group_route(&b, route));
        for positions in plans {
            let plan = plan_header(&positions, n);
            for (k, p) in positions.iter().enumerate() {
                assert_eq!(pick(&pgs[k], plan), *p, "route {route}, plan {positions:?}");
            }
        }
    }
}

#[test]
fn the_retry_policy() {
    let b = bootstrap(CONFIG);
    let plain = &group_route(&b, "0")["route"];
    let backoff = &group_route(&b, "0-backoff")["route"];
    for route in [plain, backoff] {
        assert_eq!(route["timeout"], "0s", "attempts have their own timeouts");
        let retry = &route["retry_policy"];
        assert_eq!(retry["retry_on"], "reset,connect-failure,retriable-headers");
        assert_eq!(
            retry["retriable_headers"],
            json!([{"name": RETRY_HEADER, "present_match": true}])
        );
        assert_eq!(
            retry["num_retries"], 9,
            "a plan over three deployments has at most 10 attempts"
        );
        assert_eq!(retry["refresh_cluster_on_retry"], true);
        assert_eq!(
            retry["retry_host_predicate"],
            json!([{
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"},
            }])
        );
        assert_eq!(retry["host_selection_retry_max_attempts"], 3);
        assert_eq!(
            route["internal_redirect_policy"],
            json!({
                "max_internal_redirects": 5,
                "redirect_response_codes": [307],
                "response_headers_to_copy": [REPLAN_HEADER],
            })
        );
    }
    // Retrying another deployment: at once. The same one: LiteLLM's backoff, or the
    // provider's Retry-After.
    assert_eq!(
        plain["retry_policy"]["retry_back_off"],
        json!({"base_interval": "0.001s", "max_interval": "0.001s"})
    );
    assert!(plain["retry_policy"]
        .get("rate_limited_retry_back_off")
        .is_none());
    assert_eq!(
        backoff["retry_policy"]["retry_back_off"],
        json!({"base_interval": "0.500s", "max_interval": "8.000s"})
    );
    assert_eq!(
        backoff["retry_policy"]["rate_limited_retry_back_off"],
        json!({
            "reset_headers": [{"name": "retry-after", "format": "SECONDS"}],
            "max_interval": "60s",
        })
    );
    // Both routes of a group are alike but for the backoff.
    let without_backoff = |r: &Value| {
        let mut r = r.clone();
        let policy = r["retry_policy"].as_object_mut().unwrap();
        policy.remove("retry_back_off");
        policy.remove("rate_limited_retry_back_off");
        r
    };
    assert_eq!(without_backoff(plain), without_backoff(backoff));

    // The number of retries follows the group's size (the plan's digits).
    let b = bootstrap(&groups_config(&[("a", 1), ("b", 100), ("c", 1000)], ""));
    for (route, retries) in [("0", 9), ("1", 4), ("2", 3), ("2-backoff", 3)] {
        assert_eq!(
            group_route(&b, route)["route"]["retry_policy"]["num_retries"],
            retries,
            "{route}"
        );
    }

    // router_settings.retry_after raises the backoff; max_fallbacks bounds the redirects.
    let b = bootstrap(&groups_config(
        &[("a", 2)],
        "router_settings: {retry_after: 2, max_fallbacks: 1}\n",
    ));
    let backoff = &group_route(&b, "0-backoff")["route"];
    assert_eq!(
        backoff["retry_policy"]["retry_back_off"],
        json!({"base_interval": "2.000s", "max_interval": "8.000s"})
    );
    assert_eq!(
        backoff["internal_redirect_policy"]["max_internal_redirects"],
        1
    );
    assert_eq!(
        group_route(&b, "0")["route"]["internal_redirect_policy"]["max_internal_redirects"],
        1
    );
    assert_eq!(gateway(&b).max_fallbacks, 1);
    let b = bootstrap(&groups_config(
        &[("a", 2)],
        "router_settings: {retry_after: 12.25}\n",
    ));
    assert_eq!(
        group_route(&b, "0-backoff")["route"]["retry_policy"]["retry_back_off"],
        json!({"base_interval": "12.250s", "max_interval": "12.250s"}),
        "the ceiling is never below the base"
    );
    assert_eq!(
        group_route(&b, "0")["route"]["retry_policy"]["retry_back_off"],
        json!({"base_interval": "0.001s", "max_interval": "0.001s"})
    );
}

#[test]
fn circuit_breakers_and_outlier_detection() {
    let b = bootstrap(CONFIG);
    let thresholds = |c: &str| cluster(&b, c)["circuit_breakers"]["thresholds"].clone();
    assert_eq!(
        thresholds("deployment_openai-1"),
        json!([{
            "priority": "DEFAULT",
            "max_connections": 8,
            "max_pending_requests": 100_000,
            "max_requests": 100_000,
            "max_retries": 100_000,
        }]),
        "max_parallel_requests caps the connections; requests wait for one"
    );
    assert_eq!(
        thresholds("deployment_azure_east"),
        json!([{
            "priority": "DEFAULT",
            "max_connections": 100_000,
            "max_pending_requests": 100_000,
            "max_requests": 100_000,
            "max_retries": 100_000,
        }]),
        "Envoy's own defaults (1,024 requests, 3 retries) would turn load into errors"
    );
    assert!(
        thresholds(SIDECAR_CLUSTER).is_null(),
        "the sidecar keeps Envoy's"
    );

    let od = &cluster(&b, "deployment_local")["outlier_detection"];
    assert_eq!(
        od,
        &json!({
            "consecutive_5xx": 2,
            "interval": "5s",
            "base_ejection_time": "7.500s",
            "max_ejection_percent": 100,
        }),
        "allowed_fails and cooldown_time"
    );
    let b = bootstrap(&groups_config(&[("d", 1)], ""));
    let od = &cluster(&b, "deployment_d-0")["outlier_detection"];
    assert_eq!(
        (
            od["consecutive_5xx"].clone(),
            od["base_ejection_time"].clone()
        ),
        (3.into(), "5.000s".into()),
        "LiteLLM's defaults"
    );
    let b = bootstrap(&groups_config(
        &[("d", 1)],
        "router_settings: {allowed_fails: 0}\n",
    ));
    assert_eq!(
        cluster(&b, "deployment_d-0")["outlier_detection"]["consecutive_5xx"],
        1,
        "Envoy needs at least one failure"
    );
}

#[test]
fn group_routing_settings() {
    // Strategies: LiteLLM's names, for the gateway and the providers.
    for (name, strategy) in STRATEGIES {
        let b = bootstrap(&features(name));
        let g = gateway(&b);
        assert!(
            g.groups.values().all(|group| group.strategy == strategy),
            "{name}"
        );
        assert_eq!(provider(&b, "deployment_chat-b").strategy, strategy);
    }
    let g = gateway(&bootstrap(&groups_config(&[("a", 1)], "")));
    assert_eq!(g.groups["a"].strategy, Strategy::SimpleShuffle);

    // num_retries: router_settings, else litellm_settings, else 2.
    for (settings, retries) in [
        (
            "router_settings: {num_retries: 4}\nlitellm_settings: {num_retries: 1}\n",
            4,
        ),
        ("litellm_settings: {num_retries: 5}\n", 5),
        ("router_settings: {num_retries: 0}\n", 0),
        ("", 2),
    ] {
        let g = gateway(&bootstrap(&groups_config(&[("a", 2), ("b", 1)], settings)));
        assert!(
            g.groups.values().all(|group| group.num_retries == retries),
            "{settings:?}"
        );
    }

    let b = bootstrap(&features("simple-shuffle"));
    let g = gateway(&b);
    let group = |name: &str| -> &GroupConfig { &g.groups[name] };
    assert_eq!(group("chat").num_retries, 2);
    assert_eq!(g.max_parallel_requests, Some(1000));
    assert_eq!(g.max_fallbacks, 3);
    assert!(g.pre_call_checks);
    assert!(!g.forward.all_groups);
    assert!(g.forward.openai_org);
    assert_eq!(g.max_request_bytes, 4 * 1024 * 1024);
    assert_eq!(g.aliases["gpt"], "chat");

    // Fallbacks: the group's own entry, else `*`, never the group itself; default_fallbacks
    // when neither names one.
    assert_eq!(group("chat").fallbacks, ["azure-chat", "single"]);
    assert_eq!(
        group("demo").fallbacks,
        ["single"],
        "`*` names only itself: default_fallbacks"
    );
    let g2 = gateway(&bootstrap(&groups_config(
        &[("a", 1), ("b", 1), ("c", 1)],
        "router_settings: {fallbacks: [{a: [b]}, {'*': [c, a]}]}\n",
    )));
    assert_eq!(g2.groups["a"].fallbacks, ["b"]);
    assert_eq!(g2.groups["b"].fallbacks, ["c", "a"]);
    assert_eq!(g2.groups["c"].fallbacks, ["a"], "`*` minus itself");
    assert_eq!(group("chat").context_window_fallbacks, ["azure-chat"]);
    assert_eq!(group("chat").content_policy_fallbacks, ["single"]);
    for name in ["azure-chat", "replicas", "single", "demo"] {
        assert!(group(name).context_window_fallbacks.is_empty(), "{name}");
        assert!(group(name).content_policy_fallbacks.is_empty(), "{name}");
    }
    let g2 = gateway(&bootstrap(&groups_config(
        &[("a", 1), ("b", 1), ("c", 1)],
        "router_settings: {fallbacks: [{a: [b]}], default_fallbacks: [c, a]}\n",
    )));
    assert_eq!(g2.groups["a"].fallbacks, ["b"]);
    assert_eq!(g2.groups["b"].fallbacks, ["c", "a"]);
    assert_eq!(g2.groups["c"].fallbacks, ["a"], "never itself");
    // litellm_settings holds them too; router_settings wins.
    let g2 = gateway(&bootstrap(&groups_config(
        &[("a", 1), ("b", 1), ("c", 1)],
        "litellm_settings: {fallbacks: [{a: [b]}], default_fallbacks: [c], content_policy_fallbacks: [{b: [a]}]}\n",
    )));
    assert_eq!(g2.groups["a"].fallbacks, ["b"]);
    assert_eq!(g2.groups["b"].fallbacks, ["c"]);
    assert_eq!(g2.groups["b"].content_policy_fallbacks, ["a"]);
    let g2 = gateway(&bootstrap(&groups_config(
        &[("a", 1), ("b", 1), ("c", 1)],
        "litellm_settings: {fallbacks: [{a: [b]}]}\nrouter_settings: {fallbacks: [{a: [c]}]}\n",
    )));
    assert_eq!(g2.groups["a"].fallbacks, ["c"]);
    assert!(g2.groups["b"].fallbacks.is_empty());

    // retry_policy: the group's own in model_group_retry_policy, else the general one.
    assert_eq!(
        group("chat").retry_policy,
        ClassLimits {
            authentication: Some(0),
            bad_request: Some(1),
            ..ClassLimits::default()
        }
    );
    for name in ["azure-chat", "single"] {
        assert_eq!(
            group(name).retry_policy,
            ClassLimits {
                rate_limit: Some(3),
                timeout: Some(1),
                ..ClassLimits::default()
            }
        );
    }
    let g2 = gateway(&bootstrap(&groups_config(&[("a", 1)], "")));
    assert_eq!(g2.groups["a"].retry_policy, ClassLimits::default());

    // Cooldowns: allowed_fails, allowed_fails_policy, cooldown_time; never the only
    // deployment of a group.
    assert_eq!(
        group("chat").cooldown,
        CooldownConfig {
            allowed_fails: 1,
            per_class: ClassLimits {
                rate_limit: Some(5),
                content_policy: Some(0),
                ..ClassLimits::default()
            },
            cooldown_ms: 30_000,
            disabled: false,
            single_deployment: false,
        }
    );
    assert!(group("single").cooldown.single_deployment);
    assert!(
        group("replicas").cooldown.single_deployment,
        "replicas are one deployment"
    );
    let g2 = gateway(&bootstrap(&groups_config(
        &[("a", 2)],
        "router_settings: {disable_cooldowns: true}\n",
    )));
    assert_eq!(
        g2.groups["a"].cooldown,
        CooldownConfig {
            allowed_fails: 3,
            per_class: ClassLimits::default(),
            cooldown_ms: 5000,
            disabled: true,
            single_deployment: false,
        }
    );

    // Client headers: per group by name or pattern, or everywhere.
    assert!(group("chat").forward_client_headers);
    assert!(group("tls-replicas").forward_client_headers, "tls-*");
    for name in ["azure-chat", "replicas", "single", "demo"] {
        assert!(!group(name).forward_client_headers, "{name}");
    }
    let g2 = gateway(&bootstrap(&groups_config(
        &[("a", 1), ("b", 1)],
        "general_settings: {forward_client_headers_to_llm_api: true}\n",
    )));
    assert!(g2.forward.all_groups);
    assert!(g2.groups.values().all(|g| g.forward_client_headers));
    assert!(!g2.forward.openai_org);
}

#[test]
fn replicas_are_endpoints_of_one_deployment() {
    let b = bootstrap(&features("least-busy"));
    let c = cluster(&b, "deployment_vllm-replicas");
    let eps = endpoints(c);
    let got: Vec<((&str, u64, &str), Value)> = eps
        .iter()
        .map(|ep| (address(ep), ep["metadata"]["filter_metadata"].clone()))
        .collect();
    assert_eq!(
        got,
        [
            (
                ("127.0.0.1", 8000, "127.0.0.1"),
                json!({"switchyard": {"authority": "127.0.0.1:8000"}})
            ),
            (
                ("127.0.0.2", 8001, "127.0.0.2"),
                json!({"switchyard": {"authority": "127.0.0.2:8001"}})
            ),
            (
                ("::1", 8002, "::1"),
                json!({"switchyard": {"authority": "[::1]:8002"}})
            ),
        ]
    );
    assert!(c.get("transport_socket_matches").is_none());
    let p = provider_of(c);
    assert!(p.replicas);
    assert_eq!(
        p.deployment.authority, "127.0.0.1:8000",
        "the first replica's"
    );
    assert_eq!(p.deployment.base_path, "/v1");
    assert_eq!(gateway(&b).groups["replicas"].deployments.len(), 1);

    // TLS replicas: one transport socket per host name, each with its SNI.
    let c = cluster(&b, "deployment_tls-replicas");
    let eps = endpoints(c);
    let got: Vec<((&str, u64, &str), Value)> = eps
        .iter()
        .map(|ep| (address(ep), ep["metadata"]["filter_metadata"].clone()))
        .collect();
    assert_eq!(
        got,
        [
            (
                ("a.example.com", 443, "a.example.com"),
                json!({"switchyard": {"authority": "a.example.com"}, "envoy.transport_socket_match": {"tls": "a.example.com"}})
            ),
            (
                ("b.example.com", 8443, "b.example.com"),
                json!({"switchyard": {"authority": "b.example.com:8443"}, "envoy.transport_socket_match": {"tls": "b.example.com"}})
            ),
            (
                ("a.example.com", 9443, "a.example.com"),
                json!({"switchyard": {"authority": "a.example.com:9443"}, "envoy.transport_socket_match": {"tls": "a.example.com"}})
            ),
        ]
    );
    let matches = c["transport_socket_matches"].as_array().unwrap();
    let snis: Vec<(&Value, &Value, &Value)> = matches
        .iter()
        .map(|m| {
            (
                &m["name"],
                &m["match"]["tls"],
                &m["transport_socket"]["typed_config"]["sni"],
            )
        })
        .collect();
    assert_eq!(
        snis,
        [
            (
                &json!("tls_a.example.com"),
                &json!("a.example.com"),
                &json!("a.example.com")
            ),
            (
                &json!("tls_b.example.com"),
                &json!("b.example.com"),
                &json!("b.example.com")
            ),
        ]
    );
    assert_eq!(
        c["circuit_breakers"]["thresholds"][0]["max_connections"], 16,
        "max_parallel_requests is the deployment's, across its replicas"
    );
    let p = provider_of(c);
    assert!(p.replicas);
    assert_eq!(
        (
            p.deployment.scheme.as_str(),
            p.deployment.authority.as_str()
        ),
        ("https", "a.example.com")
    );

    // A one-element list is a plain deployment; references resolve in each replica.
    let b = bootstrap(
        "
model_list:
  - model_name: a
    litellm_params: {model: hosted_vllm/m, api_base: ['http://h1:1/v1']}
    model_info: {id: one}
  - model_name: b
    litellm_params: {model: hosted_vllm/m, api_base: [os.environ/BASE_1, 'http://h3:3/v1']}
    model_info: {id: two}
environment_variables: {BASE_1: 'http://h2:2/v1'}
",
    );
    let one = cluster(&b, "deployment_one");
    assert_eq!(endpoints(one).len(), 1);
    assert_eq!(endpoints(one)[0]["metadata"]["filter_metadata"], json!({}));
    assert!(!provider_of(one).replicas);
    let two = cluster(&b, "deployment_two");
    let hosts: Vec<(&str, u64, &str)> = endpoints(two).iter().map(address).collect();
    assert_eq!(hosts, [("h2", 2, "h2"), ("h3", 3, "h3")]);

    // Replicas share scheme and path.
    for (bases, why) in [
        ("['http://h1/v1', 'https://h2/v1']", "scheme"),
        ("['http://h1/v1', 'http://h2/v2']", "path"),
        ("['http://h1/v1', 'http://h2']", "path"),
    ] {
        let e = render_error(&format!(
            "model_list:\n  - model_name: ok\n    litellm_params: {{model: switchyard_demo/m}}\n  - model_name: a\n    litellm_params: {{model: hosted_vllm/m, api_base: {bases}}}\n"
        ));
        assert_eq!(e.file.as_deref(), Some("config.yaml"), "{why}: {e}");
        assert_eq!(
            e.path.as_deref(),
            Some("model_list[1].litellm_params.api_base"),
            "{why}"
        );
        assert!(
            e.message.contains("share the scheme and the path"),
            "{why}: {e}"
        );
    }
    let e = render_error(
        "model_list:\n  - model_name: a\n    litellm_params: {model: hosted_vllm/m, api_base: []}\n",
    );
    assert_eq!(
        e.path.as_deref(),
        Some("model_list[0].litellm_params.api_base")
    );
    assert!(e.message.contains("empty list"), "{e}");
}

#[test]
fn bad_routing_settings_fail_the_render() {
    let e = render_error(&groups_config(
        &[("a", 1)],
        "router_settings: {routing_strategy: fastest-first}\n",
    ));
    assert_eq!(e.file.as_deref(), Some("config.yaml"));
    assert_eq!(e.path.as_deref(), Some("router_settings.routing_strategy"));
    assert!(e.message.contains("\"fastest-first\""), "{e}");
    assert!(e.message.contains("least-busy"), "names the choices: {e}");

    // Fallbacks name model groups (or `*` as the source).
    for (settings, path, words) in [
        (
            "router_settings: {fallbacks: [{a: [nope]}]}\n",
            "router_settings.fallbacks[0].a",
            "\"nope\"",
        ),
        (
            "router_settings: {fallbacks: [{a: [b]}, {ghost: [a]}]}\n",
            "router_settings.fallbacks[1].ghost",
            "\"ghost\"",
        ),
        (
            "router_settings: {fallbacks: [{'*': [nope]}]}\n",
            "router_settings.fallbacks[0].*",
            "\"nope\"",
        ),
        (
            "router_settings: {context_window_fallbacks: [{a: [b, nope]}]}\n",
            "router_settings.context_window_fallbacks[0].a",
            "\"nope\"",
        ),
        (
            "router_settings: {content_policy_fallbacks: [{a: [nope]}]}\n",
            "router_settings.content_policy_fallbacks[0].a",
            "\"nope\"",
        ),
        (
            "router_settings: {default_fallbacks: [b, nope]}\n",
            "router_settings.default_fallbacks",
            "\"nope\"",
        ),
    ] {
        let e = render_error(&groups_config(&[("a", 1), ("b", 1)], settings));
        assert_eq!(e.file.as_deref(), Some("config.yaml"), "{settings}");
        assert_eq!(e.path.as_deref(), Some(path), "{settings}: {e}");
        assert!(e.message.contains(words), "{settings}: {e}");
        assert!(e.message.contains("no model_name"), "{settings}: {e}");
    }
    // An alias is not a model group.
    let e = render_error(&groups_config(
        &[("a", 1), ("b", 1)],
        "router_settings: {model_group_alias: {bee: b}, fallbacks: [{a: [bee]}]}\n",
    ));
    assert_eq!(e.path.as_deref(), Some("router_settings.fallbacks[0].a"));
    // litellm_settings' fallbacks are checked too.
    let e = render_error(&groups_config(
        &[("a", 1)],
        "litellm_settings: {fallbacks: [{a: [nope]}]}\n",
    ));
    assert!(e.message.contains("\"nope\""), "{e}");
    let e = render_error(&groups_config(
        &[("a", 1)],
        "litellm_settings: {default_fallbacks: [nope]}\n",
    ));
    assert!(e.message.contains("\"nope\""), "{e}");
}

#[test]
fn unresolvable_references_fail_the_render() {
    for (field, params, value) in [
        (
            "api_base",
            "model: openai/x, api_base: os.environ/SWITCHYARD_TEST_UNSET_BASE",
            "http://from-env/v1",
        ),
        (
            "api_base",
            "model: openai/x, api_base: ['http://h/v1', os.environ/SWITCHYARD_TEST_UNSET_BASE]",
            "http://from-env/v1",
        ),
        (
            "api_version",
            "model: azure/x, api_base: 'http://h/v1', api_version: os.environ/SWITCHYARD_TEST_UNSET_BASE",
            "http://from-env/v1",
        ),
        (
            "aws_region_name",
            "model: bedrock/x, aws_region_name: os.environ/SWITCHYARD_TEST_UNSET_BASE",
            "eu-west-1",
        ),
        (
            "extra_headers.X-Team",
            "model: openai/x, extra_headers: {X-Team: os.environ/SWITCHYARD_TEST_UNSET_BASE}",
            "http://from-env/v1",
        ),
    ] {
        let config = load_str(
            &format!("model_list:\n  - model_name: a\n    litellm_params: {{{params}}}\n"),
            Some("my-config.yaml"),
        )
        .unwrap()
        .config;
        let e = render_with_env(&config, &opts(), &|_| None).unwrap_err();
        assert_eq!(e.file.as_deref(), Some("my-config.yaml"), "{e}");
        let path = format!("model_list[0].litellm_params.{field}");
        assert_eq!(e.path.as_deref(), Some(path.as_str()));
        assert!(e.message.contains("SWITCHYARD_TEST_UNSET_BASE"), "{e}");
        // The process environment is asked when the config does not set the variable.
        let r = render_with_env(&config, &opts(), &|name| {
            (name == "SWITCHYARD_TEST_UNSET_BASE").then(|| value.to_string())
        });
        assert!(r.is_ok(), "{params}: {:?}", r.err());
    }
}

#[test]
fn ssl_verify_picks_the_ca_bundle_or_turns_verification_off() {
    let tls = |settings: &str| {
        let yaml = format!(
            "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/gpt-4o, api_key: k}}\n    model_info: {{id: m}}\n{settings}"
        );
        let b = bootstrap(&yaml);
        cluster(&b, "deployment_m")["transport_socket_matches"][0]["transport_socket"]
            ["typed_config"]["common_tls_context"]
            .clone()
    };
    assert_eq!(
        tls("")["validation_context"]["trusted_ca"]["filename"],
        "/etc/ssl/certs/ca-certificates.crt"
    );
    assert_eq!(
        tls("litellm_settings: {ssl_verify: true}\n")["validation_context"]["trusted_ca"]
            ["filename"],
        "/etc/ssl/certs/ca-certificates.crt"
    );
    assert_eq!(
        tls("litellm_settings: {ssl_verify: /etc/corp-ca.pem}\n")["validation_context"]
            ["trusted_ca"]["filename"],
        "/etc/corp-ca.pem"
    );
    assert_eq!(tls("litellm_settings: {ssl_verify: false}\n"), json!({}));
    let warnings = load_str("litellm_settings: {ssl_verify: false}\n", None)
        .unwrap()
        .warnings;
    assert!(warnings
        .iter()
        .any(|w| w.path == "litellm_settings.ssl_verify"));
}

/// The smallest module Envoy's wasm runtime accepts as a proxy-wasm plugin: it exports the
/// ABI version marker, memory, malloc and the root callbacks, and accepts any configuration.
/// Validate mode loads the module, so the test needs one; this keeps it independent of the
/// filter's build.
fn minimal_proxy_wasm() -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    fn vec(items: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        leb(items.len(), &mut out);
        items.iter().for_each(|i| out.extend(i));
        out
    }
    fn name(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        leb(s.len(), &mut out);
        out.extend(s.as_bytes());
        out
    }
    fn section(id: u8, body: Vec<u8>, out: &mut Vec<u8>) {
        out.push(id);
        leb(body.len(), out);
        out.extend(body);
    }
    const I32: u8 = 0x7f;
    let func_type = |params: &[u8], results: &[u8]| {
        let mut t = vec![0x60];
        t.extend(vec(&params.iter().map(|p| vec![*p]).collect::<Vec<_>>()));
        t.extend(vec(&results.iter().map(|r| vec![*r]).collect::<Vec<_>>()));
        t
    };
    // (export name, type index, body instructions)
    let funcs: [(&str, usize, &[u8]); 5] = [
        ("proxy_abi_version_0_2_1", 0, &[]),
        ("proxy_on_vm_start", 1, &[0x41, 1]), // i32.const 1: started
        ("proxy_on_configure", 1, &[0x41, 1]), // i32.const 1: accepted
        ("proxy_on_context_create", 2, &[]),
        ("malloc", 3, &[0x41, 0]),
    ];
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    section(
        1,
        vec(&[
            func_type(&[], &[]),
            func_type(&[I32, I32], &[I32]),
            func_type(&[I32, I32], &[]),
            func_type(&[I32], &[I32]),
        ]),
        &mut m,
    );
    let type_indices: Vec<Vec<u8>> = funcs.iter().map(|(_, t, _)| vec![*t as u8]).collect();
    section(3, vec(&type_indices), &mut m);
    section(5, vec(&[vec![0x00, 0x01]]), &mut m); // one memory, min 1 page
    let mut exports: Vec<Vec<u8>> = funcs
        .iter()
        .enumerate()
        .map(|(i, (n, _, _))| [name(n), vec![0x00, i as u8]].concat())
        .collect();
    exports.push([name("memory"), vec![0x02, 0x00]].concat());
    section(7, vec(&exports), &mut m);
    let bodies: Vec<Vec<u8>> = funcs
        .iter()
        .map(|(_, _, code)| {
            let body = [&[0x00][..], code, &[0x0b]].concat(); // no locals, code, end
            let mut out = Vec::new();
            leb(body.len(), &mut out);
            out.extend(body);
            out
        })
        .collect();
    section(10, vec(&bodies), &mut m);
    m
}

/// `envoy --mode validate` accepts the bootstraps of the examples, the test config, and a
/// config using every routing feature (several deployments on one host:port, replicas with
/// and without TLS, fallbacks, retry and cooldown policies, limits, routing strategies, a
/// large group, backoff routes).
#[test]
fn envoy_accepts_the_rendered_bootstraps() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let envoy = root.join(".venv/bin/envoy");
    assert!(
        envoy.exists(),
        "{} is missing: run `make setup`",
        envoy.display()
    );
    let dir = TempDir::new("render");
    let wasm = dir.0.join("minimal.wasm");
    std::fs::write(&wasm, minimal_proxy_wasm()).unwrap();
    let example =
        |name: &str| std::fs::read_to_string(root.join("config/examples").join(name)).unwrap();
    let mut cases = vec![
        ("inline".to_string(), CONFIG.to_string(), false),
        ("quickstart".into(), example("quickstart.yaml"), false),
        ("full".into(), example("full.yaml"), true),
        ("coding-agents".into(), example("coding-agents.yaml"), false),
        ("first-proxy".into(), example("first-proxy.yaml"), false),
        ("openai-proxy".into(), example("openai-proxy.yaml"), false),
        (
            "codellama-server".into(),
            example("codellama-server.yaml"),
            false,
        ),
        ("proxy-service".into(), example("proxy-service.yaml"), false),
        (
            "large-group".into(),
            groups_config(
                &[("big", 300), ("pair", 2)],
                "router_settings: {retry_after: 3}\n",
            ),
            false,
        ),
        (
            "insecure".into(),
            format!(
                "{}litellm_settings: {{ssl_verify: false}}\n",
                groups_config(&[("d", 1)], "")
            )
            .replace("switchyard_demo/m", "openai/gpt-4o"),
            false,
        ),
    ];
    for (name, _) in STRATEGIES {
        cases.push((
            format!("features-{name}"),
            features(name),
            name == "least-busy",
        ));
    }
    let mut inline = String::new();
    for (name, text, debug) in cases {
        let config = load_str(&text, Some(&name)).unwrap().config;
        let mut o = opts();
        o.wasm_path = wasm.clone();
        o.detailed_debug = debug;
        // The compose bootstrap's stats-only listener, validated with the rest.
        if name == "quickstart" {
            o.stats_port = Some(9902);
        }
        let r = render_with_env(&config, &o, &|_| None).unwrap();
        let b: Value = serde_yaml_ng::from_str(&r.bootstrap_yaml).unwrap();
        if name.starts_with("features") {
            // What this case is for: backoff routes, three clusters on one host:port, plain
            // and TLS replicas.
            assert_eq!(routes(&b).len(), 1 + 2 * 6 + 1, "{name}");
            assert_eq!(clusters(&b).len(), 1 + 8, "{name}");
            group_route(&b, "0-backoff");
            let on_openai = clusters(&b)
                .iter()
                .filter(|c| c["name"] != SIDECAR_CLUSTER)
                .filter(|c| address(&endpoints(c)[0]) == ("api.openai.com", 443, "api.openai.com"))
                .count();
            assert_eq!(on_openai, 3, "{name}");
            assert_eq!(endpoints(cluster(&b, "deployment_vllm-replicas")).len(), 3);
            let tls = cluster(&b, "deployment_tls-replicas");
            assert_eq!(endpoints(tls).len(), 3);
            assert_eq!(tls["transport_socket_matches"].as_array().unwrap().len(), 2);
        }
        let file = dir.0.join(format!("{name}.yaml"));
        std::fs::write(&file, &r.bootstrap_yaml).unwrap();
        let out = std::process::Command::new(&envoy)
            .args(["--mode", "validate", "--log-level", "warn", "-c"])
            .arg(&file)
            .envs(
                r.env
                    .iter()
                    .map(|b| (b.name.clone(), "test-value".to_string())),
            )
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("OK"),
            "{name}: envoy rejected {}:\n{log}",
            file.display()
        );
        assert!(
            !log.contains("deprecated"),
            "{name}: the bootstrap uses deprecated fields:\n{log}"
        );
        if name == "inline" {
            inline = r.bootstrap_yaml.clone();
        }
    }

    // Controls: validation does look into the priority groups (a missing cluster, a
    // misspelt field) and the retry policy.
    for (from, to) in [
        (
            "cluster_name: deployment_local_2_2",
            "cluster_name: deployment_missing",
        ),
        (
            "header_name: x-switchyard-plan",
            "header_nam: x-switchyard-plan",
        ),
        (
            "refresh_cluster_on_retry: true",
            "refresh_cluster_on_retri: true",
        ),
    ] {
        assert!(inline.contains(from), "{from}");
        let file = dir.0.join("control.yaml");
        std::fs::write(&file, inline.replace(from, to)).unwrap();
        let out = std::process::Command::new(&envoy)
            .args(["--mode", "validate", "--log-level", "critical", "-c"])
            .arg(&file)
            .env("SWITCHYARD_MASTER_KEY", "x")
            .env("SWITCHYARD_KEY_0", "x")
            .env("AZURE_KEY", "x")
            .env("HOSTED_VLLM_API_KEY", "x")
            .output()
            .unwrap();
        assert!(!out.status.success(), "envoy accepted {to}");
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("switchyard-config-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn wildcard_groups_render_their_catalog_tags_and_tag_filtering() {
    let yaml = r#"
model_list:
  - model_name: "openai/*"
    litellm_params: {model: "openai/*", api_key: os.environ/OPENAI_API_KEY}
  - model_name: "*"
    litellm_params: {model: "anthropic/*", api_key: os.environ/ANTHROPIC_API_KEY}
  - model_name: "*"
    litellm_params: {model: "openai/*", api_key: os.environ/OPENAI_API_KEY, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}
  - model_name: tiers
    litellm_params: {model: switchyard_demo/m, tags: [free]}
    model_info: {id: free}
  - model_name: tiers
    litellm_params: {model: switchyard_demo/m, tags: [paid, default]}
    model_info: {id: paid}
router_settings:
  enable_tag_filtering: true
"#;
    let loaded = load_str(yaml, Some("config.yaml")).unwrap();
    assert!(
        loaded
            .warnings
            .iter()
            .all(|w| !w.path.contains("model_list")),
        "patterns are priced per model and tags are honoured: {:?}",
        loaded.warnings
    );
    let b = bootstrap(yaml);
    let g = gateway(&b);
    assert!(g.tag_filtering);
    assert_eq!(g.groups["tiers"].deployments[1].tags, ["paid", "default"]);
    let any = &g.groups["*"];
    assert_eq!(
        any.deployments
            .iter()
            .map(|d| d.passes_through)
            .collect::<Vec<_>>(),
        [Some(Provider::Anthropic), Some(Provider::Openai)]
    );
    let providers: Vec<ProviderConfig> = clusters(&b)
        .iter()
        .filter(|c| {
            c["typed_extension_protocol_options"]
                ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"]
                .is_array()
        })
        .map(provider_of)
        .collect();
    let pattern = |group: &str, provider: Provider| {
        providers
            .iter()
            .find(|p| p.deployment.group == group && p.deployment.provider == provider)
            .unwrap()
    };
    // From LiteLLM's table, by the provider's own names.
    let openai = pattern("openai/*", Provider::Openai);
    assert_eq!(openai.deployment.model, "*");
    let nano = &openai.catalog["gpt-4.1-nano"];
    assert!(nano.input > 0.0 && nano.output > nano.input, "{nano:?}");
    assert!(openai.catalog.keys().all(|k| !k.starts_with("openai/")));
    assert!(pattern("*", Provider::Anthropic)
        .catalog
        .keys()
        .any(|k| k.starts_with("claude-")));
    assert!(
        pattern("*", Provider::Openai).catalog.is_empty(),
        "a pattern with its own prices needs no catalog"
    );
}

#[test]
fn a_star_model_and_an_unfilled_star_are_refused_with_what_to_write() {
    let e = load_str(
        "model_list:\n  - model_name: \"*\"\n    litellm_params: {model: \"*\"}\n",
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("openai/*, anthropic/*"), "{e}");
    let e = load_str(
        "model_list:\n  - model_name: gpt\n    litellm_params: {model: \"openai/*\"}\n",
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("make model_name a pattern"), "{e}");
}

#[test]
fn access_groups_default_parallel_limits_custom_providers_and_order() {
    let yaml = r#"
model_list:
  - model_name: o3
    litellm_params: {model: o3, custom_llm_provider: openai, order: 1}
    model_info: {id: first, access_groups: [beta, research]}
  - model_name: o3
    litellm_params: {model: openai/o3, max_parallel_requests: 7}
    model_info: {id: second, access_groups: [beta]}
router_settings:
  default_max_parallel_requests: 40
"#;
    let loaded = load_str(yaml, Some("config.yaml")).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(
        loaded.config.model_list[0].litellm_params.model,
        "openai/o3"
    );
    let b = bootstrap(yaml);
    let g = gateway(&b);
    assert_eq!(g.groups["o3"].access_groups, ["beta", "research"]);
    assert_eq!(
        g.groups["o3"]
            .deployments
            .iter()
            .map(|d| d.order)
            .collect::<Vec<_>>(),
        [Some(1), None]
    );
    let limits: Vec<u64> = clusters(&b)
        .iter()
        .filter_map(|c| c["circuit_breakers"]["thresholds"][0]["max_connections"].as_u64())
        .collect();
    assert!(limits.contains(&40) && limits.contains(&7), "{limits:?}");
}
