//! `switchyard up`: Envoy with the Switchyard filter, plus the sidecar in this process.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use switchyard_config::{render, ProxyConfig, RenderOptions};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::envoy::{self, Tail};
use super::{shutdown_signal, summary, ConfigSource, Failure};
use crate::service::{self, AppState};

/// How long Envoy may take to load the filter and become ready.
const READY_LIMIT: Duration = Duration::from_secs(60);
/// How long Envoy and the sidecar get to stop before being killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    source: ConfigSource,
    /// Start nothing: send one chat request to the gateway running at URL (default
    /// http://127.0.0.1:4000) and print its answer, as `litellm --test`.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "http://127.0.0.1:4000")]
    test: Option<String>,
    /// The key `--test` sends.
    #[arg(
        long,
        env = "LITELLM_MASTER_KEY",
        hide_env_values = true,
        value_name = "KEY",
        hide = true
    )]
    key: Option<String>,
    /// Address the gateway listens on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 4000)]
    port: u16,
    /// Envoy's admin port (on 127.0.0.1).
    #[arg(long, default_value_t = 9901)]
    admin_port: u16,
    /// The sidecar's port (on 127.0.0.1).
    #[arg(long, default_value_t = 4001)]
    sidecar_port: u16,
    /// The SQLite file of keys and spend (default: general_settings.database_path, else
    /// switchyard.db here); database_url or DATABASE_URL select PostgreSQL instead.
    #[arg(long, value_name = "FILE")]
    database_path: Option<PathBuf>,
    /// The Envoy binary (default: `envoy` on PATH, else .venv/bin/envoy).
    #[arg(long, env = "ENVOY_BIN", value_name = "PATH")]
    envoy: Option<PathBuf>,
    /// The filter (default: target/wasm32-wasip1/release/switchyard_filter.wasm).
    #[arg(long, env = "SWITCHYARD_WASM", value_name = "PATH")]
    wasm: Option<PathBuf>,
    /// Envoy's --base-id (default: the port), so several instances can run side by side.
    #[arg(long, value_name = "N")]
    base_id: Option<u32>,
    /// Envoy worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    concurrency: Option<u32>,
    /// Debug logs from Envoy, the filter and the sidecar, and an access log on stdout.
    #[arg(long)]
    detailed_debug: bool,
}

pub fn run(args: UpArgs) -> Result<(), Failure> {
    if let Some(url) = &args.test {
        return super::probe::test(url, args.key.as_deref());
    }
    // Everything that can be checked is checked before anything starts.
    let config = args.source.load()?;
    let envoy_bin = envoy::locate_envoy(args.envoy.as_deref())?;
    let wasm = envoy::locate_wasm(args.wasm.as_deref())?;
    let options = RenderOptions {
        host: args.host.clone(),
        port: args.port,
        admin_host: "127.0.0.1".to_string(),
        admin_port: args.admin_port,
        sidecar_host: "127.0.0.1".to_string(),
        sidecar_port: args.sidecar_port,
        wasm_path: wasm,
        detailed_debug: args.detailed_debug,
        stats_port: None,
    };
    let rendered = render(&config, &options)
        // An error in an included file names that file.
        .map_err(|e| Failure(config.locate(e).to_string()))?;
    let target = super::store_target(&config, args.database_path.as_deref())?;

    port_is_free(&args.host, args.port, "--port")?;
    port_is_free("127.0.0.1", args.admin_port, "--admin-port")?;
    let sidecar_listener = StdListener::bind(("127.0.0.1", args.sidecar_port))
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| {
            Failure(format!(
                "cannot listen on 127.0.0.1:{} for the sidecar: {e} (choose another port with --sidecar-port)",
                args.sidecar_port
            ))
        })?;

    // Private to this run and removed when it ends.
    let dir = tempfile::Builder::new()
        .prefix("switchyard-")
        .tempdir()
        .map_err(|e| Failure(format!("cannot create a temporary directory: {e}")))?;
    let bootstrap = dir.path().join("envoy.yaml");
    std::fs::write(&bootstrap, &rendered.bootstrap_yaml)
        .map_err(|e| Failure(format!("cannot write {}: {e}", bootstrap.display())))?;

    super::init_tracing(args.detailed_debug, &config);
    let run = Run {
        envoy_bin,
        bootstrap,
        base_id: args.base_id.unwrap_or(u32::from(args.port)),
        concurrency: args.concurrency,
        env: rendered
            .env
            .into_iter()
            .filter_map(|b| b.value.map(|v| (b.name, v)))
            .collect(),
        admin: SocketAddr::from(([127, 0, 0, 1], args.admin_port)),
        banner: banner(&config, &args.host, args.port),
        detailed_debug: args.detailed_debug,
    };
    let runtime = super::runtime()?;
    let gateway_url = format!("http://{}:{}", summary::client_host(&args.host), args.port);
    let state = AppState::new(config)
        .map_err(Failure)?
        .with_gateway(&gateway_url)
        .with_envoy_admin(&format!("http://127.0.0.1:{}", args.admin_port));
    let state =
        runtime.block_on(async { super::with_redis(state)?.start_tasks().map_err(Failure) })?;
    // Before Envoy starts: a database that cannot be opened stops `up` with its reason.
    let store = runtime.block_on(super::open_store(&target, &state.config))?;
    let state = state.with_store(store);
    let result = runtime.block_on(supervise(run, sidecar_listener, state));
    drop(runtime);
    drop(dir);
    result
}

struct Run {
    envoy_bin: PathBuf,
    bootstrap: PathBuf,
    base_id: u32,
    concurrency: Option<u32>,
    env: Vec<(String, String)>,
    admin: SocketAddr,
    banner: String,
    detailed_debug: bool,
}

/// Starts the sidecar and Envoy, waits for Envoy to be ready, then until a signal or until
/// either of them stops.
async fn supervise(
    run: Run,
    sidecar_listener: StdListener,
    state: AppState,
) -> Result<(), Failure> {
    let mut shutdown = Box::pin(shutdown_signal()?);

    let listener = tokio::net::TcpListener::from_std(sidecar_listener)
        .map_err(|e| Failure(format!("cannot use the sidecar's listener: {e}")))?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let mut sidecar = Sidecar {
        task: tokio::spawn(service::serve(listener, state, async {
            let _ = stop_rx.await;
        })),
        stop: Some(stop_tx),
    };

    // Spawned here, on the thread that runs block_on (the main thread), not in a task:
    // Envoy's parent-death signal is tied to the thread that forked it.
    let mut child = envoy::spawn(envoy::Launch {
        binary: &run.envoy_bin,
        bootstrap: &run.bootstrap,
        base_id: run.base_id,
        concurrency: run.concurrency,
        detailed_debug: run.detailed_debug,
        env: run.env,
    })?;
    let tail = Tail::default();
    let stderr_task = child
        .stderr
        .take()
        .map(|stderr| envoy::forward_stderr(stderr, tail.clone()));

    tokio::select! {
        _ = &mut shutdown => {
            envoy::stop(&mut child, STOP_GRACE).await;
            sidecar.stop().await;
            return Ok(());
        }
        status = child.wait() => {
            // Let the last lines arrive before quoting them.
            if let Some(task) = stderr_task {
                let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
            }
            sidecar.stop().await;
            let lines = tail.lines();
            let quoted = if lines.is_empty() {
                match status {
                    Ok(status) => format!("  (Envoy printed nothing and exited with {status})"),
                    Err(e) => format!("  (Envoy printed nothing: {e})"),
                }
            } else {
                lines.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
            };
            return Err(Failure(format!("Envoy rejected the configuration:\n{quoted}")));
        }
        ready = envoy::wait_ready(run.admin, READY_LIMIT) => {
            if let Err(failure) = ready {
                envoy::stop(&mut child, STOP_GRACE).await;
                sidecar.stop().await;
                return Err(failure);
            }
        }
        result = &mut sidecar.task => {
            envoy::stop(&mut child, STOP_GRACE).await;
            return Err(sidecar_ended(result));
        }
    }

    // Write errors ignored: a closed stdout must not stop a running gateway.
    let _ = writeln!(std::io::stdout(), "{}", run.banner);

    tokio::select! {
        _ = &mut shutdown => {
            let _ = writeln!(std::io::stderr(), "Stopping Switchyard...");
            envoy::stop(&mut child, STOP_GRACE).await;
            sidecar.stop().await;
            Ok(())
        }
        status = child.wait() => {
            sidecar.stop().await;
            let how = match status {
                Ok(status) => status.to_string(),
                Err(e) => e.to_string(),
            };
            Err(Failure(format!("Envoy exited unexpectedly ({how}); its last log lines are above")))
        }
        result = &mut sidecar.task => {
            envoy::stop(&mut child, STOP_GRACE).await;
            Err(sidecar_ended(result))
        }
    }
}

struct Sidecar {
    task: JoinHandle<std::io::Result<()>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Sidecar {
    /// Graceful shutdown, bounded by STOP_GRACE.
    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(STOP_GRACE, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

fn sidecar_ended(result: Result<std::io::Result<()>, tokio::task::JoinError>) -> Failure {
    match result {
        Ok(Ok(())) => Failure("the sidecar stopped unexpectedly".to_string()),
        Ok(Err(e)) => Failure(format!("the sidecar failed: {e}")),
        Err(e) => Failure(format!("the sidecar failed: {e}")),
    }
}

/// A clear message now beats Envoy's bind error later. (Racy, but only a courtesy.)
fn port_is_free(host: &str, port: u16, flag: &str) -> Result<(), Failure> {
    StdListener::bind((host, port)).map(drop).map_err(|e| {
        Failure(format!(
            "cannot listen on {host}:{port}: {e} (choose another port with {flag})"
        ))
    })
}

/// What `up` prints once Envoy is ready: where to reach it and a request to try.
fn banner(config: &ProxyConfig, host: &str, port: u16) -> String {
    let url = format!("http://{}:{port}", summary::client_host(host));
    let model = summary::first_model_name(config).unwrap_or_else(|| "MODEL".to_string());
    let model = serde_json::Value::String(model);
    let body =
        format!(r#"{{"model": {model}, "messages": [{{"role": "user", "content": "Hello"}}]}}"#);
    let mut lines = vec![
        format!("Switchyard is listening on {url}"),
        "Try it:".to_string(),
    ];
    let auth = if config.master_key_is_set() {
        // Double quotes so the shell expands the variable; the key itself is never printed.
        format!(
            " -H \"Authorization: Bearer ${}\"",
            summary::master_key_variable(config)
        )
    } else {
        String::new()
    };
    lines.push(format!(
        "  curl {url}/v1/chat/completions -H 'Content-Type: application/json'{auth} -d {}",
        shell_quote(&body)
    ));
    if config.master_key_is_set() {
        lines.push(format!(
            "  (with {} holding your master_key)",
            summary::master_key_variable(config)
        ));
    } else {
        lines.push("No master_key set: the gateway is open to anyone who can reach it".to_string());
    }
    lines.push("Press Ctrl-C to stop.".to_string());
    lines.join("\n")
}

/// Single-quotes for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
