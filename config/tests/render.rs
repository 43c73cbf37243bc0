//! The Envoy bootstrap: parsed back and checked piece by piece, and validated by the real
//! Envoy (`envoy --mode validate`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use switchyard_config::load::load_str;
use switchyard_config::render::{render_with_env, RenderOptions, Rendered, SIDECAR_CLUSTER};
use switchyard_config::{FilterConfig, Role, CLUSTER_HEADER};

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
    litellm_params: {model: openai/gpt-4o, api_key: sk-literal-openai-key, weight: 2, timeout: 100}
  - model_name: gpt-4o
    litellm_params: {model: azure/dep, api_base: 'https://res.openai.azure.com', api_key: os.environ/AZURE_KEY, api_version: '2024-10-21', timeout: 250, stream_timeout: 40}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/AZURE_KEY}
  - model_name: local
    litellm_params: {model: hosted_vllm/llama, api_base: 'http://127.0.0.1:8000/v1'}
  - model_name: local/2
    litellm_params: {model: hosted_vllm/llama, api_base: 'http://127.0.0.1:8001/v1'}
  - model_name: local_2
    litellm_params: {model: hosted_vllm/llama, api_base: 'http://127.0.0.1:8002/v1'}
  - model_name: demo
    litellm_params: {model: switchyard_demo/demo-model}
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

fn render(yaml: &str, opts: &RenderOptions) -> (Value, Rendered) {
    let config = load_str(yaml, None).unwrap().config;
    let r = render_with_env(&config, opts, &|_| None).unwrap();
    (serde_yaml_ng::from_str(&r.bootstrap_yaml).unwrap(), r)
}

/// The environment bindings as (name, literal value) pairs.
fn bindings_of(r: &Rendered) -> Vec<(&str, Option<&str>)> {
    r.env
        .iter()
        .map(|b| (b.name.as_str(), b.value.as_deref()))
        .collect()
}

fn hcm(b: &Value) -> &Value {
    &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
}

fn clusters(b: &Value) -> &Vec<Value> {
    b["static_resources"]["clusters"].as_array().unwrap()
}

fn cluster<'a>(b: &'a Value, name: &str) -> &'a Value {
    clusters(b)
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no cluster {name}"))
}

fn upstream_filters(cluster: &Value) -> &Value {
    &cluster["typed_extension_protocol_options"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"]
}

fn filter_config(filter: &Value) -> FilterConfig {
    let value = filter["typed_config"]["config"]["configuration"]["value"]
        .as_str()
        .unwrap();
    serde_json::from_str(value).unwrap()
}

#[test]
fn secrets_are_never_in_the_bootstrap() {
    let (_, r) = render(CONFIG, &opts());
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

#[test]
fn env_bindings_name_every_secret_variable_once() {
    let (b, r) = render(CONFIG, &opts());
    let bindings = bindings_of(&r);
    assert_eq!(
        bindings,
        [
            ("SWITCHYARD_MASTER_KEY", Some("sk-literal-master")),
            ("SWITCHYARD_KEY_0", Some("sk-literal-openai-key")),
            ("AZURE_KEY", None),
            ("HOSTED_VLLM_API_KEY", None),
        ],
        "master key, literal key by index, os.environ once, provider default; demo needs none"
    );
    for filter in [
        &hcm(&b)["http_filters"][0],
        &upstream_filters(cluster(&b, "group_gpt-4o"))[0],
    ] {
        let keys = &filter["typed_config"]["config"]["vm_config"]["environment_variables"]
            ["host_env_keys"];
        assert_eq!(
            keys,
            &serde_json::json!([
                "SWITCHYARD_MASTER_KEY",
                "SWITCHYARD_KEY_0",
                "AZURE_KEY",
                "HOSTED_VLLM_API_KEY"
            ])
        );
    }

    // os.environ/ master key; a key variable set by environment_variables carries its value.
    let (_, r) = render(
        "
model_list:
  - model_name: a
    litellm_params: {model: openai/x, api_key: os.environ/MY_KEY}
general_settings: {master_key: os.environ/LITELLM_MASTER_KEY}
environment_variables: {MY_KEY: sk-from-config}
",
        &opts(),
    );
    let bindings = bindings_of(&r);
    assert_eq!(
        bindings,
        [
            ("LITELLM_MASTER_KEY", None),
            ("MY_KEY", Some("sk-from-config"))
        ]
    );
    assert!(!r.bootstrap_yaml.contains("sk-from-config"));
}

#[test]
fn admin_listener_and_route() {
    let (b, _) = render(CONFIG, &opts());
    assert_eq!(
        b["admin"]["address"]["socket_address"],
        serde_json::json!({"address": "127.0.0.1", "port_value": 9901})
    );
    let l = &b["static_resources"]["listeners"][0];
    assert_eq!(l["name"], "switchyard");
    assert_eq!(l["address"]["socket_address"]["port_value"], 4000);
    assert_eq!(l["per_connection_buffer_limit_bytes"], 3 * 1024 * 1024);
    let h = hcm(&b);
    assert_eq!(h["stat_prefix"], "switchyard");
    assert_eq!(h["codec_type"], "AUTO");
    assert!(h.get("access_log").is_none(), "quiet unless debugging");
    let vh = &h["route_config"]["virtual_hosts"][0];
    assert_eq!(vh["domains"], serde_json::json!(["*"]));
    assert_eq!(vh["include_request_attempt_count"], true);
    let routes = vh["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0]["match"]["prefix"], "/health/readiness");
    assert_eq!(routes[0]["route"]["cluster"], SIDECAR_CLUSTER);
    assert_eq!(routes[0]["route"]["timeout"], "5s");
    assert_eq!(routes[1]["match"]["prefix"], "/");
    let route = &routes[1]["route"];
    assert_eq!(route["cluster_header"], CLUSTER_HEADER);
    assert_eq!(
        route["timeout"], "900.000s",
        "litellm_settings.request_timeout"
    );
    let retry = &route["retry_policy"];
    assert_eq!(
        retry["retry_on"],
        "5xx,reset,connect-failure,retriable-status-codes"
    );
    assert_eq!(retry["retriable_status_codes"], serde_json::json!([429]));
    assert_eq!(retry["num_retries"], 4, "router_settings wins");
    assert_eq!(
        retry["retry_host_predicate"][0]["name"],
        "envoy.retry_host_predicates.previous_hosts"
    );
    assert_eq!(retry["host_selection_retry_max_attempts"], 5);
    assert_eq!(retry["retry_back_off"]["base_interval"], "0.025s");
    assert_eq!(retry["retry_back_off"]["max_interval"], "0.250s");
    let filters = h["http_filters"].as_array().unwrap();
    assert_eq!(filters.len(), 2);
    assert_eq!(filters[1]["name"], "envoy.filters.http.router");

    // Defaults: 600 s, 2 retries, 16 MiB (+1 MiB of buffer).
    let (b, _) = render(
        "model_list:\n  - model_name: d\n    litellm_params: {model: switchyard_demo/d}\n",
        &opts(),
    );
    let route = &hcm(&b)["route_config"]["virtual_hosts"][0]["routes"][1]["route"];
    assert_eq!(route["timeout"], "600.000s");
    assert_eq!(route["retry_policy"]["num_retries"], 2);
    assert_eq!(
        b["static_resources"]["listeners"][0]["per_connection_buffer_limit_bytes"],
        17 * 1024 * 1024
    );
    let (b, _) = render(
        "litellm_settings: {num_retries: 5}\nmodel_list:\n  - model_name: d\n    litellm_params: {model: switchyard_demo/d}\n",
        &opts(),
    );
    assert_eq!(
        hcm(&b)["route_config"]["virtual_hosts"][0]["routes"][1]["route"]["retry_policy"]
            ["num_retries"],
        5
    );
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
}

#[test]
fn both_roles_get_the_same_filter_definition() {
    let (b, _) = render(CONFIG, &opts());
    let gateway = &hcm(&b)["http_filters"][0];
    let provider = &upstream_filters(cluster(&b, "group_local"))[0];
    for (filter, name, role) in [
        (gateway, "switchyard_gateway", Role::Gateway),
        (provider, "switchyard_provider", Role::Provider),
    ] {
        assert_eq!(filter["name"], "envoy.filters.http.wasm");
        let config = &filter["typed_config"]["config"];
        assert_eq!(config["name"], name);
        assert_eq!(config["root_id"], "switchyard");
        assert_eq!(config["allow_on_headers_stop_iteration"], true);
        let vm = &config["vm_config"];
        assert_eq!(vm["vm_id"], "switchyard");
        assert_eq!(vm["runtime"], "envoy.wasm.runtime.v8");
        assert_eq!(vm["code"]["local"]["filename"], "/x/switchyard.wasm");
        assert_eq!(
            config["configuration"]["@type"],
            "type.googleapis.com/google.protobuf.StringValue"
        );
        let fc = filter_config(filter);
        assert_eq!(fc.role, role);
        assert_eq!(fc.max_request_bytes, 2 * 1024 * 1024);
        assert_eq!(fc.master_key_env.as_deref(), Some("SWITCHYARD_MASTER_KEY"));
        assert_eq!(
            fc.aliases,
            BTreeMap::from([
                ("gpt4".to_string(), "gpt-4o".to_string()),
                ("hidden".to_string(), "local".to_string())
            ])
        );
        assert_eq!(fc.deployments.len(), 7);
        assert_eq!(fc.groups.len(), 5);
    }
    assert_eq!(
        filter_config(gateway).groups,
        filter_config(provider).groups
    );
}

#[test]
fn groups_and_their_timeouts() {
    let (b, _) = render(CONFIG, &opts());
    let fc = filter_config(&hcm(&b)["http_filters"][0]);
    let g = &fc.groups["gpt-4o"];
    assert_eq!(g.cluster, "group_gpt-4o");
    assert_eq!(g.deployments.len(), 3);
    assert_eq!(
        (g.timeout_ms, g.stream_timeout_ms),
        (250_000, 40_000),
        "the longest timeout a deployment sets"
    );
    let local = &fc.groups["local"];
    assert_eq!(
        (local.timeout_ms, local.stream_timeout_ms),
        (300_000, 300_000),
        "router_settings.timeout, and stream_timeout falls back to it"
    );
    // Names that sanitise alike still get distinct clusters.
    assert_eq!(fc.groups["local/2"].cluster, "group_local_2");
    assert_eq!(fc.groups["local_2"].cluster, "group_local_2_2");
    for (i, d) in g.deployments.iter().enumerate() {
        let dep = &fc.deployments[d];
        assert_eq!(dep.group, "gpt-4o", "{i}");
    }

    let (b, _) = render(
        "
model_list:
  - model_name: a
    litellm_params: {model: switchyard_demo/d}
litellm_settings: {request_timeout: 50}
router_settings: {stream_timeout: 20}
",
        &opts(),
    );
    let fc = filter_config(&hcm(&b)["http_filters"][0]);
    assert_eq!(
        (fc.groups["a"].timeout_ms, fc.groups["a"].stream_timeout_ms),
        (50_000, 20_000)
    );
}

#[test]
fn clusters_endpoints_metadata_and_tls() {
    let (b, _) = render(CONFIG, &opts());
    let names: Vec<&str> = clusters(&b)
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            SIDECAR_CLUSTER,
            "group_gpt-4o",
            "group_local",
            "group_local_2",
            "group_local_2_2",
            "group_demo"
        ]
    );
    let sidecar = cluster(&b, SIDECAR_CLUSTER);
    assert_eq!(sidecar["type"], "STRICT_DNS");
    assert_eq!(sidecar["connect_timeout"], "1s");
    assert_eq!(
        sidecar["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
            ["socket_address"]["port_value"],
        4001
    );

    let g = cluster(&b, "group_gpt-4o");
    assert_eq!(g["type"], "STRICT_DNS");
    assert_eq!(g["dns_lookup_family"], "V4_PREFERRED");
    assert_eq!(g["connect_timeout"], "10s");
    assert_eq!(g["lb_policy"], "ROUND_ROBIN");
    assert_eq!(g["per_connection_buffer_limit_bytes"], 3 * 1024 * 1024);
    let priorities = g["load_assignment"]["endpoints"].as_array().unwrap();
    assert_eq!(priorities.len(), 1, "one priority level");
    let eps = priorities[0]["lb_endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 3);
    let fc = filter_config(&upstream_filters(g)[0]);
    let ids = &fc.groups["gpt-4o"].deployments;
    for (ep, id) in eps.iter().zip(ids) {
        assert_eq!(
            ep["metadata"]["filter_metadata"]["switchyard"]["deployment"],
            *id
        );
    }
    let addr = |ep: &Value| {
        (
            ep["endpoint"]["address"]["socket_address"]["address"].clone(),
            ep["endpoint"]["address"]["socket_address"]["port_value"].clone(),
            ep["endpoint"]["hostname"].clone(),
        )
    };
    assert_eq!(
        addr(&eps[0]),
        ("api.openai.com".into(), 443.into(), "api.openai.com".into())
    );
    assert_eq!(eps[0]["load_balancing_weight"], 2);
    assert_eq!(eps[1]["load_balancing_weight"], 1);
    assert_eq!(
        eps[1]["metadata"]["filter_metadata"]["envoy.transport_socket_match"]["tls"],
        "res.openai.azure.com"
    );
    assert_eq!(fc.deployments[&ids[1]].model, "dep");
    assert_eq!(
        fc.deployments[&ids[1]].api_version.as_deref(),
        Some("2024-10-21")
    );

    // One TLS context per distinct https host (two deployments share api.openai.com).
    let matches = g["transport_socket_matches"].as_array().unwrap();
    assert_eq!(matches.len(), 2);
    for (m, host) in matches
        .iter()
        .zip(["api.openai.com", "res.openai.azure.com"])
    {
        assert_eq!(m["match"]["tls"], host);
        let tls = &m["transport_socket"]["typed_config"];
        assert_eq!(
            tls["@type"],
            "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
        );
        assert_eq!(tls["sni"], host);
        assert_eq!(
            tls["common_tls_context"]["validation_context"]["trusted_ca"]["filename"],
            "/etc/ssl/certs/ca-certificates.crt"
        );
    }

    let od = &g["outlier_detection"];
    assert_eq!(od["consecutive_5xx"], 2);
    assert_eq!(od["base_ejection_time"], "7.500s");
    assert_eq!(od["interval"], "5s");
    assert_eq!(od["max_ejection_percent"], 100);

    let options = &g["typed_extension_protocol_options"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert_eq!(
        options["explicit_http_config"]["http_protocol_options"],
        serde_json::json!({})
    );
    let filters = upstream_filters(g).as_array().unwrap();
    assert_eq!(filters.len(), 2);
    assert_eq!(fc.role, Role::Provider);
    assert_eq!(filters[1]["name"], "envoy.filters.http.upstream_codec");

    // Plain http: no TLS, port from the api_base; the demo points at the sidecar.
    let local = cluster(&b, "group_local");
    assert!(local.get("transport_socket_matches").is_none());
    let ep = &local["load_assignment"]["endpoints"][0]["lb_endpoints"][0];
    assert_eq!(
        addr(ep),
        ("127.0.0.1".into(), 8000.into(), "127.0.0.1".into())
    );
    assert!(ep["metadata"]["filter_metadata"]
        .get("envoy.transport_socket_match")
        .is_none());
    let demo = cluster(&b, "group_demo");
    let ep = &demo["load_assignment"]["endpoints"][0]["lb_endpoints"][0];
    assert_eq!(
        addr(ep),
        ("127.0.0.1".into(), 4001.into(), "127.0.0.1".into())
    );
    let fc = filter_config(&upstream_filters(demo)[0]);
    let d = fc.deployments.values().find(|d| d.group == "demo").unwrap();
    assert_eq!(
        (d.authority.as_str(), d.base_path.as_str()),
        ("127.0.0.1:4001", "/demo/v1")
    );

    // Defaults of outlier detection.
    let (b, _) = render(
        "model_list:\n  - model_name: d\n    litellm_params: {model: switchyard_demo/d}\n",
        &opts(),
    );
    let od = &cluster(&b, "group_d")["outlier_detection"];
    assert_eq!(
        (
            od["consecutive_5xx"].clone(),
            od["base_ejection_time"].clone()
        ),
        (3.into(), "5.000s".into())
    );
}

#[test]
fn unresolvable_references_fail_the_render() {
    let config = load_str(
        "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, api_base: os.environ/SWITCHYARD_TEST_UNSET_BASE}\n",
        Some("my-config.yaml"),
    )
    .unwrap()
    .config;
    let e = render_with_env(&config, &opts(), &|_| None).unwrap_err();
    assert_eq!(e.file.as_deref(), Some("my-config.yaml"), "{e}");
    assert_eq!(
        e.path.as_deref(),
        Some("model_list[0].litellm_params.api_base")
    );
    assert!(e.message.contains("SWITCHYARD_TEST_UNSET_BASE"), "{e}");
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

/// `envoy --mode validate` accepts the bootstraps of both examples and the test config.
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
    for (name, text, debug) in [
        ("inline", CONFIG.to_string(), false),
        ("quickstart", example("quickstart.yaml"), false),
        ("full", example("full.yaml"), true),
    ] {
        let config = load_str(&text, Some(name)).unwrap().config;
        let mut o = opts();
        o.wasm_path = wasm.clone();
        o.detailed_debug = debug;
        let r = render_with_env(&config, &o, &|_| None).unwrap();
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
fn ssl_verify_picks_the_ca_bundle_or_turns_verification_off() {
    let tls = |settings: &str| {
        let yaml = format!(
            "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/gpt-4o, api_key: k}}\n{settings}"
        );
        let (b, _) = render(&yaml, &opts());
        cluster(&b, "group_m")["transport_socket_matches"][0]["transport_socket"]["typed_config"]
            ["common_tls_context"]
            .clone()
    };
    assert_eq!(
        tls("")["validation_context"]["trusted_ca"]["filename"],
        "/etc/ssl/certs/ca-certificates.crt"
    );
    assert_eq!(
        tls("litellm_settings: {ssl_verify: /etc/corp-ca.pem}\n")["validation_context"]
            ["trusted_ca"]["filename"],
        "/etc/corp-ca.pem"
    );
    assert!(tls("litellm_settings: {ssl_verify: false}\n")
        .get("validation_context")
        .is_none());
    let warnings = load_str("litellm_settings: {ssl_verify: false}\n", None)
        .unwrap()
        .warnings;
    assert!(warnings
        .iter()
        .any(|w| w.path == "litellm_settings.ssl_verify"));
}
