//! Switchyard as docker-compose runs it: `switchyard render` writes the Envoy bootstrap, Envoy
//! runs on its own, and `switchyard sidecar` is a separate process that a test can kill
//! (SIGKILL, as a crash or an OOM kill would) and start again while Envoy keeps serving.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::artefacts;
use crate::ports::free_port;
use crate::switchyard::{http_status, register, spawn_tied_to_process, unregister};

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const LOG_TAIL_LINES: usize = 200;

/// Where the sidecar keeps keys and spend.
#[derive(Clone, Debug)]
pub enum Database {
    /// A SQLite file in the gateway's temporary directory.
    Sqlite,
    /// A PostgreSQL URL, given to the sidecar as `DATABASE_URL`.
    Postgres(String),
}

pub struct Split {
    envoy: Child,
    sidecar: Option<Child>,
    /// How many times the sidecar was started (each gets its own log file).
    starts: u32,
    port: u16,
    admin_port: u16,
    sidecar_port: u16,
    database: Database,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Split {
    /// Renders the config, starts the sidecar and Envoy, and waits until both answer.
    pub fn start(config_yaml: &str, env: &[(&str, &str)], database: Database) -> Split {
        let dir = tempfile::Builder::new()
            .prefix("switchyard-split-")
            .tempdir()
            .expect("a temporary directory");
        std::fs::write(dir.path().join("config.yaml"), config_yaml).expect("write config.yaml");
        let (port, admin_port, sidecar_port) = (free_port(), free_port(), free_port());
        let rendered = Command::new(artefacts::switchyard_bin())
            .arg("render")
            .arg("--config")
            .arg(dir.path().join("config.yaml"))
            .arg("--out")
            .arg(dir.path())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--admin-port", &admin_port.to_string()])
            .args(["--sidecar-host", "127.0.0.1"])
            .args(["--sidecar-port", &sidecar_port.to_string()])
            .arg("--wasm")
            .arg(artefacts::filter_wasm())
            .envs(env.iter().copied())
            .output()
            .expect("run switchyard render");
        assert!(
            rendered.status.success(),
            "switchyard render failed: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );

        let log = |name: &str| File::create(dir.path().join(name)).expect("a log file");
        let mut command = Command::new(artefacts::envoy_bin());
        command
            .arg("-c")
            .arg(dir.path().join("envoy.yaml"))
            .args(["--base-id", &port.to_string()])
            .args(["--log-level", "warn"])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log("envoy.out.log"))
            .stderr(log("envoy.log"));
        let envoy = spawn_tied_to_process(command).expect("start Envoy");
        register(envoy.id(), dir.path());

        let mut split = Split {
            envoy,
            sidecar: None,
            starts: 0,
            port,
            admin_port,
            sidecar_port,
            database,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dir,
        };
        split.start_sidecar();
        split.wait(port, "/health/liveliness", "Envoy");
        split
    }

    /// Starts the sidecar (again) and waits until it answers.
    pub fn start_sidecar(&mut self) {
        assert!(self.sidecar.is_none(), "the sidecar is already running");
        self.starts += 1;
        let log = File::create(self.dir.path().join(format!("sidecar.{}.log", self.starts)))
            .expect("a log file");
        let mut command = Command::new(artefacts::switchyard_bin());
        command
            .arg("sidecar")
            .arg("--config")
            .arg(self.dir.path().join("config.yaml"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.sidecar_port.to_string(),
            ])
            .arg("--database-path")
            .arg(self.dir.path().join("switchyard.db"))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log file"))
            .stderr(log);
        if let Database::Postgres(url) = &self.database {
            command.env("DATABASE_URL", url);
        }
        let child = spawn_tied_to_process(command).expect("start the sidecar");
        register(child.id(), self.dir.path());
        self.sidecar = Some(child);
        self.wait(self.sidecar_port, "/internal/v1/health", "the sidecar");
    }

    /// SIGSTOP (`stuck: true`) or SIGCONT: a sidecar that hangs, holding its connections.
    pub fn freeze_sidecar(&mut self, stuck: bool) {
        if let Some(child) = &self.sidecar {
            let signal = if stuck { libc::SIGSTOP } else { libc::SIGCONT };
            // SAFETY: a signal to a child of this process, by its pid.
            unsafe {
                libc::kill(child.id() as libc::pid_t, signal);
            }
        }
    }

    /// SIGKILL: the sidecar gets no chance to finish anything.
    pub fn kill_sidecar(&mut self) {
        if let Some(mut child) = self.sidecar.take() {
            let _ = child.kill();
            let _ = child.wait();
            unregister(child.id());
        }
    }

    fn wait(&mut self, port: u16, path: &str, what: &str) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.envoy.try_wait() {
                panic!("Envoy exited with {status}\n{}", self.logs());
            }
            if let Some(Ok(Some(status))) = self.sidecar.as_mut().map(Child::try_wait) {
                panic!("the sidecar exited with {status}\n{}", self.logs());
            }
            if http_status(port, path) == Ok(200) {
                return;
            }
            if Instant::now() >= deadline {
                panic!("{what} did not answer {path} with 200\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// The SQLite file the sidecar uses (when it uses SQLite).
    pub fn database_path(&self) -> PathBuf {
        self.dir.path().join("switchyard.db")
    }

    /// The end of Envoy's log and of each sidecar run's log.
    pub fn logs(&self) -> String {
        let tail = |name: &str| {
            let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
        };
        let mut out = format!(
            "==== split gateway on port {} (sidecar {}) ====\n---- envoy ----\n{}\n",
            self.port,
            self.sidecar_port,
            tail("envoy.log")
        );
        for n in 1..=self.starts {
            out.push_str(&format!(
                "---- sidecar run {n} ----\n{}\n",
                tail(&format!("sidecar.{n}.log"))
            ));
        }
        out
    }
}

impl Drop for Split {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        self.kill_sidecar();
        // SAFETY: signalling our own child, not yet reaped.
        unsafe { libc::kill(self.envoy.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.envoy.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.envoy.kill();
        let _ = self.envoy.wait();
        unregister(self.envoy.id());
    }
}
