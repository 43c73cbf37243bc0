//! `switchyard render`: the Envoy bootstrap and the list of variables Envoy needs, for
//! running Envoy yourself (docker-compose, Kubernetes). Defaults match docker-compose.yaml.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use switchyard_config::{render, EnvBinding, RenderOptions};

use super::{ConfigSource, Failure};

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    source: ConfigSource,
    /// Directory to write envoy.yaml and envoy.env.example into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
    #[arg(long, default_value_t = 4000)]
    port: u16,
    /// Envoy's admin port (on 127.0.0.1 inside the container).
    #[arg(long, default_value_t = 9901)]
    admin_port: u16,
    /// Where Envoy reaches the sidecar.
    #[arg(long, default_value = "sidecar")]
    sidecar_host: String,
    #[arg(long, default_value_t = 4001)]
    sidecar_port: u16,
    /// The filter's path as Envoy sees it.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/etc/switchyard/switchyard.wasm"
    )]
    wasm: PathBuf,
    /// Debug logs in the filter and an access log on stdout.
    #[arg(long)]
    detailed_debug: bool,
    /// A listener on this port serving only Envoy's `/stats/prometheus`, for a sidecar in
    /// another container (its `--envoy-admin`); the admin stays on 127.0.0.1.
    #[arg(long, value_name = "PORT")]
    stats_port: Option<u16>,
}

pub fn run(args: RenderArgs) -> Result<(), Failure> {
    let config = args.source.load()?;
    let options = RenderOptions {
        host: args.host,
        port: args.port,
        admin_host: "127.0.0.1".to_string(),
        admin_port: args.admin_port,
        sidecar_host: args.sidecar_host,
        sidecar_port: args.sidecar_port,
        wasm_path: args.wasm,
        detailed_debug: args.detailed_debug,
        stats_port: args.stats_port,
    };
    let rendered = render(&config, &options)
        // An error in an included file names that file.
        .map_err(|e| Failure(config.locate(e).to_string()))?;

    std::fs::create_dir_all(&args.out)
        .map_err(|e| Failure(format!("cannot create {}: {e}", args.out.display())))?;
    let bootstrap = args.out.join("envoy.yaml");
    let env_file = args.out.join("envoy.env.example");
    let write = |path: &PathBuf, text: &str| {
        std::fs::write(path, text)
            .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))
    };
    write(&bootstrap, &rendered.bootstrap_yaml)?;
    write(&env_file, &env_example(&rendered.env))?;

    println!("wrote {}", bootstrap.display());
    println!(
        "wrote {} ({} variable{} Envoy needs)",
        env_file.display(),
        rendered.env.len(),
        if rendered.env.len() == 1 { "" } else { "s" }
    );
    Ok(())
}

/// The variables Envoy's environment must hold, names only: values never go into files.
fn env_example(env: &[EnvBinding]) -> String {
    let mut out = String::from(
        "# Environment variables the Envoy process needs (written by `switchyard render`).\n\
         # Fill in the values, or better, supply them from your secret store. No value is written here.\n",
    );
    for binding in env {
        if binding.value.is_some() {
            let _ = writeln!(
                out,
                "# {} stands for a secret written literally in config.yaml: it must be supplied via this variable.",
                binding.name
            );
        }
        let _ = writeln!(out, "{}=", binding.name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_never_written() {
        let text = env_example(&[
            EnvBinding {
                name: "OPENAI_API_KEY".into(),
                value: None,
            },
            EnvBinding {
                name: "SWITCHYARD_MASTER_KEY".into(),
                value: Some("sk-secret".into()),
            },
        ]);
        assert!(text.contains("\nOPENAI_API_KEY=\n"));
        assert!(text.contains("\nSWITCHYARD_MASTER_KEY=\n"));
        assert!(text.contains("must be supplied via this variable"));
        assert!(!text.contains("sk-secret"));
    }
}
