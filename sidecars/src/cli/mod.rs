//! The `switchyard` command line: `up`, `render`, `check`, `sidecar` and `health`.

mod check;
mod envoy;
mod probe;
mod render;
mod sidecar;
mod summary;
mod up;

use std::fmt;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use switchyard_config::{ProxyConfig, Warning};

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Switchyard: an LLM gateway inside Envoy, a drop-in for the LiteLLM proxy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway: Envoy with the Switchyard filter, and the sidecar.
    Up(up::UpArgs),
    /// Write the Envoy bootstrap and the list of variables Envoy needs (for containers).
    Render(render::RenderArgs),
    /// Validate a config.yaml and summarise what it serves.
    Check(check::CheckArgs),
    /// Run only the sidecar service (docker-compose runs Envoy separately).
    Sidecar(sidecar::SidecarArgs),
    /// Call every deployment through a running gateway (its /health) and print the result.
    Health(probe::HealthArgs),
}

/// Where the config comes from: a LiteLLM config.yaml, or a single `--model`.
#[derive(Debug, Clone, Args)]
#[group(required = false, multiple = false)]
pub struct ConfigSource {
    /// A LiteLLM-compatible config.yaml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve one model without a config file, e.g. `openai/gpt-4o-mini` or `switchyard_demo/demo`.
    #[arg(long, value_name = "PROVIDER/MODEL")]
    model: Option<String>,
}

impl ConfigSource {
    /// Loads the config, prints its warnings, and applies its environment_variables to this
    /// process (as LiteLLM does). Call it before any thread is started: it sets variables.
    fn load(&self) -> Result<ProxyConfig, Failure> {
        self.load_with_warnings().map(|(config, _)| config)
    }

    /// [`ConfigSource::load`], with the warnings it printed.
    fn load_with_warnings(&self) -> Result<(ProxyConfig, Vec<Warning>), Failure> {
        let (config, warnings) = match (&self.config, &self.model) {
            (Some(path), _) => {
                let loaded = switchyard_config::load(path).map_err(|e| Failure(e.to_string()))?;
                for warning in &loaded.warnings {
                    eprintln!("warning: {warning}");
                }
                (loaded.config, loaded.warnings)
            }
            (None, Some(model)) => (
                ProxyConfig::from_model_flag(model)
                    .map_err(|e| Failure(format!("--model {model}: {e}")))?,
                Vec::new(),
            ),
            // A usage error (exit 2), as clap's own: the group is optional only so that
            // `up --test` needs neither.
            (None, None) => clap::Error::raw(
                clap::error::ErrorKind::MissingRequiredArgument,
                "pass --config FILE or --model PROVIDER/MODEL\n",
            )
            .exit(),
        };
        for (name, value) in config.environment_variables() {
            std::env::set_var(name, value);
        }
        Ok((config, warnings))
    }
}

/// An error for the user: printed as `error: <message>`, exit code 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure(message)
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up::run(args),
        Command::Render(args) => render::run(args),
        Command::Check(args) => check::run(args),
        Command::Sidecar(args) => sidecar::run(args),
        Command::Health(args) => probe::health(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// Logs of the sidecar on stderr, as JSON lines with litellm_settings.json_logs; RUST_LOG
/// overrides the default level.
fn init_tracing(detailed_debug: bool, config: &switchyard_config::ProxyConfig) {
    let default = if detailed_debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Fails only if a subscriber is already set, which is harmless.
    let _ = if config.litellm_settings.json_logs == Some(true) {
        logs.json().try_init()
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).try_init()
    };
}

/// Where the store lives: database_url / DATABASE_URL, else the SQLite file.
fn store_target(
    config: &ProxyConfig,
    flag_path: Option<&Path>,
) -> Result<crate::store::Target, Failure> {
    let env = |name: &str| std::env::var(name).ok();
    let target = crate::store::Target::choose(config, flag_path, &env).map_err(Failure)?;
    if flag_path.is_some() && matches!(target, crate::store::Target::Url { .. }) {
        eprintln!(
            "warning: --database-path is ignored: {} is set",
            target.describe()
        );
    }
    Ok(target)
}

/// The state with Redis, when the config or the environment names one: a handle made at
/// once (Redis being down does not stop the start; it is logged and retried). A URL that
/// cannot be used, or an `os.environ/` reference that is not set, stops it with the reason.
/// Must run inside the Tokio runtime.
fn with_redis(state: crate::service::AppState) -> Result<crate::service::AppState, Failure> {
    let env = |name: &str| std::env::var(name).ok();
    match state.config.redis_url(&env).map_err(Failure)? {
        None => Ok(state),
        Some(url) => {
            let redis = crate::redis::Redis::connect(&url).map_err(Failure)?;
            Ok(state.with_redis(redis))
        }
    }
}

/// Opens the store and applies its migrations.
async fn open_store(
    target: &crate::store::Target,
    config: &switchyard_config::ProxyConfig,
) -> Result<crate::store::Store, Failure> {
    let pool = crate::store::PoolSettings::from_config(config);
    crate::store::Store::open_with(target, pool).await.map_err(|e| {
        Failure(format!(
            "{e}\n(keys and spend live there: check that the database is reachable, or point --database-path / general_settings.database_url elsewhere)"
        ))
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("cannot start the async runtime: {e}")))
}

/// Completes on Ctrl-C or SIGTERM. The handlers are installed when this is called, so call
/// it early: from then on these signals no longer kill the process outright.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send + 'static, Failure> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Failure(format!("cannot handle SIGTERM: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| Failure(format!("cannot handle SIGINT: {e}")))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
