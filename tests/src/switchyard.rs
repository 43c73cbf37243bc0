//! A real `switchyard up` (Envoy with the built .wasm, and the sidecar) on free ports.
//!
//! Children are forked from one long-lived thread with `PR_SET_PDEATHSIG`, so a Switchyard
//! kept in a `static` (shared by the tests of a file) still dies with the test process; an
//! `atexit` handler stops the live ones cleanly first and removes their directories.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::artefacts;
use crate::ports::free_port;

/// How long Envoy may take to load the filter and answer `/health/liveliness`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `switchyard up` gets to stop Envoy and the sidecar after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How many lines of each log a failing test prints.
const LOG_TAIL_LINES: usize = 400;

pub struct Switchyard {
    child: Child,
    port: u16,
    admin_port: u16,
    sidecar_port: u16,
    dir: tempfile::TempDir,
    config: String,
}

impl Switchyard {
    /// Starts `switchyard up` with this config.yaml; panics (with its output) if it does not
    /// become ready.
    pub fn start(config_yaml: &str) -> Switchyard {
        Switchyard::start_with_env(config_yaml, &[])
    }

    /// As [`Switchyard::start`], with extra environment variables (provider keys) for it.
    pub fn start_with_env(config_yaml: &str, env: &[(&str, &str)]) -> Switchyard {
        Switchyard::try_start(config_yaml, env, &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `switchyard up --config <file> --host 127.0.0.1 --port P --admin-port A
    /// --sidecar-port S --wasm W --envoy E --base-id P <extra_args>` and waits until
    /// `GET /health/liveliness` answers 200. Keys and spend go to a SQLite file in its own
    /// temporary directory unless `extra_args` name `--database-path`. Set `SWITCHYARD_E2E_DEBUG=1` to add
    /// `--detailed-debug`.
    pub fn try_start(
        config_yaml: &str,
        env: &[(&str, &str)],
        extra_args: &[&str],
    ) -> Result<Switchyard, String> {
        let binary = artefacts::switchyard_bin();
        let wasm = artefacts::filter_wasm();
        let envoy = artefacts::envoy_bin();
        let dir = tempfile::Builder::new()
            .prefix("switchyard-e2e-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, config_yaml)
            .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let open = |name: &str| {
            File::create(dir.path().join(name)).map_err(|e| format!("cannot create {name}: {e}"))
        };
        let (stdout, stderr) = (open("stdout.log")?, open("stderr.log")?);
        let (port, admin_port, sidecar_port) = (free_port(), free_port(), free_port());

        let mut command = Command::new(&binary);
        command
            .arg("up")
            .arg("--config")
            .arg(&config)
            .args(["--host", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .args(["--admin-port", &admin_port.to_string()])
            .args(["--sidecar-port", &sidecar_port.to_string()])
            .arg("--wasm")
            .arg(&wasm)
            .arg("--envoy")
            .arg(&envoy)
            .args(["--base-id", &port.to_string()])
            .args(extra_args)
            .envs(env.iter().copied())
            .current_dir(artefacts::repo_root())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        // Each gateway gets its own store, never the repo's switchyard.db.
        if !extra_args.contains(&"--database-path") {
            command
                .arg("--database-path")
                .arg(dir.path().join("switchyard.db"));
        }
        if std::env::var_os("SWITCHYARD_E2E_DEBUG").is_some_and(|v| !v.is_empty() && v != "0") {
            command.arg("--detailed-debug");
        }
        let child = spawn_tied_to_process(command)
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        register(child.id(), dir.path());

        let mut switchyard = Switchyard {
            child,
            port,
            admin_port,
            sidecar_port,
            dir,
            config: config_yaml.to_string(),
        };
        match switchyard.wait_ready() {
            Ok(()) => Ok(switchyard),
            Err(why) => {
                switchyard.stop();
                Err(format!(
                    "switchyard up did not become ready: {why}\n{}",
                    switchyard.logs()
                ))
            }
        }
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("it exited with {status}"));
            }
            match http_status(self.port, "/health/liveliness") {
                Ok(200) => return Ok(()),
                Ok(_) | Err(_) if Instant::now() >= deadline => {
                    let last = match http_status(self.port, "/health/liveliness") {
                        Ok(status) => format!("GET /health/liveliness answered {status}"),
                        Err(e) => format!("GET /health/liveliness: {e}"),
                    };
                    return Err(format!(
                        "not ready after {} s ({last})",
                        READY_TIMEOUT.as_secs()
                    ));
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// `http://127.0.0.1:<port>`: the gateway, as clients reach it.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `base_url()` + path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// Envoy's admin interface (`/stats`, `/clusters`, `/config_dump`).
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    pub fn sidecar_port(&self) -> u16 {
        self.sidecar_port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The config, what `switchyard up` printed on stdout, and the end of its stderr (which
    /// carries Envoy's log).
    pub fn logs(&self) -> String {
        let read = |name: &str| -> String {
            let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let skip = lines.len().saturating_sub(LOG_TAIL_LINES);
            let mut out = String::new();
            if skip > 0 {
                out.push_str(&format!("[... {skip} earlier lines ...]\n"));
            }
            out.push_str(&lines[skip..].join("\n"));
            out
        };
        format!(
            "==== switchyard up on port {} (admin {}, sidecar {}, pid {}) ====\n---- config.yaml ----\n{}\n---- stdout ----\n{}\n---- stderr (with Envoy's log) ----\n{}\n==== end of switchyard logs ====",
            self.port,
            self.admin_port,
            self.sidecar_port,
            self.child.id(),
            self.config.trim_end(),
            read("stdout.log"),
            read("stderr.log"),
        )
    }

    /// The stdout of `switchyard up` so far, whole.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    /// Waits (bounded) until stdout contains `needle`; false if it never did.
    pub fn wait_for_stdout(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stdout().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Prints [`Switchyard::logs`] when dropped during a panic: for a Switchyard shared
    /// through a `static`, which is never dropped. `let _logs = sy.dump_logs_on_failure();`
    pub fn dump_logs_on_failure(&self) -> LogGuard<'_> {
        LogGuard(self)
    }

    /// SIGTERM, then waits (SIGKILL after the grace period). Returns how it exited.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            unregister(self.child.id());
            return Some(status);
        }
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signalling our own child, which has not been reaped (try_wait said so).
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    eprintln!(
                        "switchyard up (pid {pid}) did not stop within {} s of SIGTERM: killing it",
                        STOP_TIMEOUT.as_secs()
                    );
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
            }
        };
        unregister(self.child.id());
        status
    }
}

impl Drop for Switchyard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        self.stop();
    }
}

pub struct LogGuard<'a>(&'a Switchyard);

impl Drop for LogGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.0.logs());
        }
    }
}

/// The status of a plain `GET path` on 127.0.0.1:port, over a raw socket (no runtime needed).
pub fn http_status(port: u16, path: &str) -> Result<u16, String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .map_err(|e| format!("cannot connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("cannot send: {e}"))?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        match stream.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) => return Err(format!("no answer: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head[..len]);
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
}

type Job = Box<dyn FnOnce() + Send>;

/// Forks `command` from a thread that lives as long as the process, with the parent-death
/// signal set: the child gets SIGTERM when this process dies, however it dies.
/// (PR_SET_PDEATHSIG fires when the forking *thread* ends, so not from a test's thread.)
pub(crate) fn spawn_tied_to_process(mut command: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("switchyard-spawner".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("cannot start the spawner thread");
        // SAFETY: atexit with a plain extern "C" fn that never unwinds.
        unsafe { libc::atexit(stop_all_at_exit) };
        Mutex::new(tx)
    });
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl: then nobody would ever signal us.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(command.spawn());
    });
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send(job)
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// Live children and their directories, for the atexit handler.
static LIVE: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());

pub(crate) fn register(pid: u32, dir: &Path) {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((pid, dir.to_path_buf()));
}

pub(crate) fn unregister(pid: u32) {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(p, _)| *p != pid);
}

/// Runs when the test binary exits (libtest calls `exit`): SIGTERM every Switchyard still
/// running (those in `static`s), wait for them to stop Envoy, remove their directories.
extern "C" fn stop_all_at_exit() {
    let Ok(mut live) = LIVE.try_lock() else {
        return;
    };
    let children: Vec<(u32, PathBuf)> = live.drain(..).collect();
    for (pid, _) in &children {
        // SAFETY: signalling children of this process that were not reaped.
        unsafe { libc::kill(*pid as libc::pid_t, libc::SIGTERM) };
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    for (pid, dir) in &children {
        loop {
            let mut status = 0;
            // SAFETY: waitpid on our own child pid with a valid status pointer.
            let done = unsafe { libc::waitpid(*pid as libc::pid_t, &mut status, libc::WNOHANG) };
            if done != 0 {
                break;
            }
            if Instant::now() >= deadline {
                // SAFETY: as above.
                unsafe {
                    libc::kill(*pid as libc::pid_t, libc::SIGKILL);
                    libc::waitpid(*pid as libc::pid_t, &mut status, 0);
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_dies_with_its_spawning_process_thread_not_with_the_test_thread() {
        // Spawned from a short-lived thread: it must outlive that thread.
        let child = std::thread::spawn(|| {
            let mut command = Command::new("sleep");
            command.arg("30");
            spawn_tied_to_process(command).expect("sleep runs")
        })
        .join()
        .expect("thread ends");
        std::thread::sleep(Duration::from_millis(200));
        let mut child = child;
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "still running"
        );
        child.kill().expect("kill");
        child.wait().expect("wait");
    }

    #[test]
    fn http_status_reads_the_status_line() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        });
        assert_eq!(http_status(port, "/x"), Ok(204));
        server.join().unwrap();
        assert!(http_status(crate::closed_port(), "/x").is_err());
    }
}
