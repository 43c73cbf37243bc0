//! The `switchyard` binary, run as a user would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

const GOOD: &str = r#"
model_list:
  - model_name: demo
    litellm_params:
      model: switchyard_demo/demo
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_key: os.environ/SWITCHYARD_TEST_UNSET_KEY
general_settings:
  master_key: sk-test-master-do-not-print
"#;

/// A deployment without litellm_params.model.
const BAD: &str = r#"
model_list:
  - model_name: broken
    litellm_params:
      api_base: http://127.0.0.1:9
"#;

fn switchyard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env_remove("ENVOY_BIN")
        .env_remove("SWITCHYARD_WASM")
        .env_remove("SWITCHYARD_TEST_UNSET_KEY")
        .output()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn check_accepts_a_good_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "config.yaml", GOOD);
    let out = switchyard(&["check", "--config", &config]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("demo"), "{text}");
    assert!(text.contains("gpt-4o-mini"), "{text}");
    assert!(text.contains("api.openai.com"), "{text}");
    assert!(text.contains("master_key: set"), "{text}");
    assert!(text.contains("SWITCHYARD_TEST_UNSET_KEY"), "{text}");
    assert!(!text.contains("sk-test-master-do-not-print"), "{text}");
    assert!(!stderr(&out).contains("sk-test-master-do-not-print"));
}

#[test]
fn check_rejects_a_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "bad.yaml", BAD);
    let out = switchyard(&["check", "--config", &config]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("bad.yaml"), "{err}");
    assert!(err.contains("model_list[0]"), "{err}");
}

#[test]
fn check_of_a_missing_file() {
    let out = switchyard(&["check", "--config", "/nonexistent/config.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("/nonexistent/config.yaml"), "{err}");
}

#[test]
fn check_strict_fails_on_keys_kept_but_not_acted_on() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{GOOD}litellm_settings:\n  modify_params: true\n  frobnicate: 1\n");
    let config = write(dir.path(), "config.yaml", &text);
    let out = switchyard(&["check", "--config", &config]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: litellm_settings.modify_params: not acted on: "),
        "{err}"
    );
    assert!(
        err.contains("warning: litellm_settings.frobnicate: unknown key"),
        "{err}"
    );

    let out = switchyard(&["check", "--strict", "--config", &config]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("error: 2 keys are kept but not acted on") && err.contains("--strict"),
        "{err}"
    );

    // The quickstart keeps nothing unused.
    let quickstart =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples/quickstart.yaml");
    let out = switchyard(&[
        "check",
        "--strict",
        "--config",
        quickstart.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains(": OK"), "{}", stdout(&out));
}

#[test]
fn check_refuses_a_setting_that_would_weaken_security() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{GOOD}  custom_auth: custom_auth.user_api_key_auth\n");
    let config = write(dir.path(), "config.yaml", &text);
    let out = switchyard(&["check", "--config", &config]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: ")
            && err.contains("config.yaml: general_settings.custom_auth: refused: "),
        "{err}"
    );
    assert!(err.contains("ext_authz"), "says what to use instead: {err}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(switchyard(&["check"]).status.code(), Some(2));
    assert_eq!(switchyard(&["up"]).status.code(), Some(2));
    assert_eq!(
        switchyard(&["up", "--config", "a.yaml", "--model", "openai/x"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(switchyard(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn render_writes_the_bootstrap_and_the_env_example() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "config.yaml", GOOD);
    let out_dir = dir.path().join("out");
    let out = switchyard(&[
        "render",
        "--config",
        &config,
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bootstrap = std::fs::read_to_string(out_dir.join("envoy.yaml")).unwrap();
    assert!(bootstrap.contains("/etc/switchyard/switchyard.wasm"));
    assert!(bootstrap.contains("0.0.0.0"));
    assert!(bootstrap.contains("sidecar"));
    let env = std::fs::read_to_string(out_dir.join("envoy.env.example")).unwrap();
    assert!(env.contains("SWITCHYARD_TEST_UNSET_KEY="), "{env}");
    for text in [&bootstrap, &env] {
        assert!(!text.contains("sk-test-master-do-not-print"));
    }
    assert!(stdout(&out).contains("envoy.yaml"));
}

#[test]
fn render_with_the_model_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = switchyard(&[
        "render",
        "--model",
        "switchyard_demo/demo",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(dir.path().join("envoy.yaml").is_file());
    assert!(dir.path().join("envoy.env.example").is_file());
}

#[test]
fn up_without_envoy_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "config.yaml", GOOD);
    let out = switchyard(&["up", "--config", &config, "--envoy", "/nonexistent/envoy"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error: Envoy not found"), "{err}");
    assert!(err.contains("make setup"), "{err}");
    assert!(err.contains("ENVOY_BIN"), "{err}");
}

#[test]
fn up_with_an_invalid_config_fails_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "bad.yaml", BAD);
    // A port in use would be the next error: the config must be rejected first.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let out = switchyard(&[
        "up",
        "--config",
        &config,
        "--port",
        &port,
        "--sidecar-port",
        &port,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("bad.yaml"), "{err}");
    assert!(!err.contains("Envoy"), "{err}");
    assert!(!err.contains("listen"), "{err}");
}

#[test]
fn up_without_the_wasm_says_how_to_build_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "config.yaml", GOOD);
    // Any executable stands in for Envoy: nothing is started before the wasm is found.
    let out = switchyard(&[
        "up",
        "--config",
        &config,
        "--envoy",
        "/bin/true",
        "--wasm",
        "/nonexistent/switchyard.wasm",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("make build"), "{err}");
}

/// `switchyard up` with tests/fixtures/fake_envoy.py standing in for Envoy.
mod up_with_a_fake_envoy {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use super::{write, GOOD};

    struct Up {
        child: Child,
        lines: mpsc::Receiver<String>,
        stderr: std::thread::JoinHandle<String>,
        record: std::path::PathBuf,
        sidecar_port: u16,
        _dir: tempfile::TempDir,
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn start(mode: &str) -> Up {
        let dir = tempfile::tempdir().unwrap();
        let config = write(dir.path(), "config.yaml", GOOD);
        let wasm = write(dir.path(), "filter.wasm", "not really wasm");
        let record = dir.path().join("record.json");
        let (port, admin, sidecar) = (free_port(), free_port(), free_port());
        let fake = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fake_envoy.py");
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["up", "--config", &config, "--envoy", fake, "--wasm", &wasm])
            .args([
                "--port",
                &port.to_string(),
                "--admin-port",
                &admin.to_string(),
            ])
            .args(["--sidecar-port", &sidecar.to_string()])
            .arg("--database-path")
            .arg(dir.path().join("switchyard.db"))
            .env("FAKE_ENVOY_MODE", mode)
            .env("FAKE_ENVOY_ADMIN_PORT", admin.to_string())
            .env("FAKE_ENVOY_RECORD", &record)
            .env("FAKE_ENVOY_SECRET", "sk-test-master-do-not-print")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let _ = tx.send(line.unwrap());
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Up {
            child,
            lines,
            stderr,
            record,
            sidecar_port: sidecar,
            _dir: dir,
        }
    }

    impl Up {
        fn wait_for_line(&mut self, needle: &str) -> String {
            let deadline = Instant::now() + Duration::from_secs(20);
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                match self.lines.recv_timeout(left) {
                    Ok(line) if line.contains(needle) => return line,
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            let _ = self.child.kill();
            panic!("`up` never printed {needle:?}");
        }

        fn wait(&mut self) -> ExitStatus {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Some(status) = self.child.try_wait().unwrap() {
                    return status;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            panic!("`up` did not exit");
        }

        fn record(&self) -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(&self.record).unwrap()).unwrap()
        }

        fn stderr(&mut self) -> String {
            let handle = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new));
            handle.join().unwrap()
        }
    }

    impl Drop for Up {
        /// A failed assertion must not leave `up` (and its fake Envoy) running.
        fn drop(&mut self) {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }

    fn alive(pid: i64) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
    }

    fn get(port: u16, path: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn runs_until_sigterm_then_stops_envoy() {
        let mut up = start("serve");
        let listening = up.wait_for_line("Switchyard is listening on http://127.0.0.1:");
        assert!(listening.contains("http://127.0.0.1:"));
        let curl = up.wait_for_line("curl ");
        assert!(curl.contains("/v1/chat/completions"), "{curl}");
        assert!(curl.contains(r#""model": "demo""#), "{curl}");
        assert!(curl.contains("Authorization: Bearer $"), "{curl}");
        assert!(!curl.contains("sk-test-master-do-not-print"), "{curl}");

        // The sidecar runs in the same process.
        let readiness = get(up.sidecar_port, "/health/readiness");
        assert!(readiness.starts_with("HTTP/1.1 200"), "{readiness}");
        // With its store, in the file --database-path names.
        assert!(readiness.contains(r#""db":"connected""#), "{readiness}");

        let record = up.record();
        let argv: Vec<String> = serde_json::from_value(record["argv"].clone()).unwrap();
        let joined = argv.join(" ");
        assert!(joined.contains("--log-level warn"), "{joined}");
        assert!(
            joined.contains("--component-log-level wasm:warn"),
            "{joined}"
        );
        assert!(joined.contains("--base-id "), "{joined}");
        assert!(!joined.contains("sk-test-master-do-not-print"), "{joined}");
        let bootstrap = std::path::PathBuf::from(&argv[1]);
        assert_eq!(argv[0], "-c");
        assert!(bootstrap.is_file());
        let envoy_pid = record["pid"].as_i64().unwrap();
        assert!(alive(envoy_pid));
        // The literal master_key reached Envoy through its environment only.
        assert_ne!(record["secret_vars"], serde_json::json!([]), "{record}");

        // SAFETY: SIGTERM to the child we started.
        unsafe { libc::kill(up.child.id() as libc::pid_t, libc::SIGTERM) };
        let status = up.wait();
        assert_eq!(status.code(), Some(0));
        assert!(!alive(envoy_pid), "Envoy outlived `up`");
        assert!(
            !bootstrap.exists(),
            "the temporary bootstrap was left behind"
        );
        assert!(!up.stderr().contains("sk-test-master-do-not-print"));
    }

    #[test]
    fn reports_a_rejected_configuration() {
        let mut up = start("reject");
        let status = up.wait();
        assert_eq!(status.code(), Some(1));
        let err = up.stderr();
        assert!(err.contains("Envoy rejected the configuration:"), "{err}");
        assert!(err.contains("fake rejection"), "{err}");
    }

    #[test]
    fn fails_when_envoy_dies() {
        let mut up = start("die");
        up.wait_for_line("Switchyard is listening");
        let status = up.wait();
        assert_eq!(status.code(), Some(1));
        let err = up.stderr();
        assert!(err.contains("Envoy exited unexpectedly"), "{err}");
    }

    #[test]
    fn envoy_dies_with_us_even_on_sigkill() {
        let mut up = start("serve");
        up.wait_for_line("Switchyard is listening");
        let envoy_pid = up.record()["pid"].as_i64().unwrap();
        assert!(alive(envoy_pid));
        up.child.kill().unwrap();
        up.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(envoy_pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!alive(envoy_pid), "Envoy outlived a SIGKILLed `up`");
    }
}

/// `switchyard sidecar` with its store: a SQLite file by default, PostgreSQL by URL.
mod sidecar {
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use super::write;

    const CONFIG: &str = "
model_list:
  - model_name: demo
    litellm_params:
      model: switchyard_demo/demo
general_settings:
  master_key: sk-cli-master
";

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn start(config: &str, port: u16, db: &std::path::Path) -> Child {
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["sidecar", "--config", config, "--port", &port.to_string()])
            .arg("--database-path")
            .arg(db)
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    async fn ready(port: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("http://127.0.0.1:{port}/health/readiness"))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "the sidecar did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stop(mut child: Child) {
        // SAFETY: SIGTERM to the child we started.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(child.wait().unwrap().code(), Some(0));
    }

    #[tokio::test]
    async fn keys_outlive_a_restart_in_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = write(dir.path(), "config.yaml", CONFIG);
        let db = dir.path().join("keys.db");
        let port = free_port();
        let child = start(&config, port, &db);
        ready(port).await;
        let client = reqwest::Client::new();
        let made: serde_json::Value = client
            .post(format!("http://127.0.0.1:{port}/key/generate"))
            .header("authorization", "Bearer sk-cli-master")
            .json(&serde_json::json!({"key_alias": "kept"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = made["key"].as_str().unwrap().to_string();
        stop(child);
        assert!(db.is_file());

        let port = free_port();
        let child = start(&config, port, &db);
        ready(port).await;
        let info = client
            .get(format!("http://127.0.0.1:{port}/key/info"))
            .header("authorization", format!("Bearer {key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(info.status(), 200);
        let info: serde_json::Value = info.json().await.unwrap();
        assert_eq!(info["info"]["key_alias"], "kept");
        stop(child);
    }

    #[tokio::test]
    async fn json_logs_are_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let config = write(
            dir.path(),
            "config.yaml",
            &format!("{CONFIG}litellm_settings:\n  json_logs: true\n"),
        );
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["sidecar", "--config", &config, "--port", &port.to_string()])
            .arg("--database-path")
            .arg(dir.path().join("s.db"))
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        ready(port).await;
        // SAFETY: SIGTERM to the child we started.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let logged: Vec<serde_json::Value> = err
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect();
        assert!(
            logged
                .iter()
                .any(|l| l["level"] == "INFO" && l["fields"]["message"].is_string()),
            "{err}"
        );
    }

    #[test]
    fn a_database_that_cannot_be_opened_stops_it_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let config = write(dir.path(), "config.yaml", CONFIG);
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args([
                "sidecar",
                "--config",
                &config,
                "--port",
                &free_port().to_string(),
            ])
            .env(
                "DATABASE_URL",
                "postgres://postgres:pw-do-not-print@127.0.0.1:1/nothing",
            )
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("cannot open the postgres database of DATABASE_URL"),
            "{err}"
        );
        assert!(!err.contains("pw-do-not-print"), "{err}");
    }
}
