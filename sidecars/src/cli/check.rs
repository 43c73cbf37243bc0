//! `switchyard check`: load, validate and render a config without starting anything.

use std::path::PathBuf;

use clap::Args;
use switchyard_config::{render, RenderOptions};

use super::{summary, ConfigSource, Failure};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The config.yaml to check.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Fail (exit 1) when a key is kept but not acted on, or unknown.
    #[arg(long)]
    strict: bool,
}

pub fn run(args: CheckArgs) -> Result<(), Failure> {
    let source = ConfigSource {
        config: Some(args.config.clone()),
        model: None,
    };
    let (config, warnings) = source.load_with_warnings()?;
    // Rendering catches what only the bootstrap can tell; the result stays in memory.
    let options = RenderOptions {
        host: "127.0.0.1".to_string(),
        port: 4000,
        admin_host: "127.0.0.1".to_string(),
        admin_port: 9901,
        sidecar_host: "127.0.0.1".to_string(),
        sidecar_port: 4001,
        wasm_path: PathBuf::from("switchyard_filter.wasm"),
        detailed_debug: false,
        stats_port: None,
    };
    let rendered = render(&config, &options)
        // An error in an included file names that file.
        .map_err(|e| Failure(config.locate(e).to_string()))?;
    // A callback without its settings stops `up`: say so here too.
    for problem in crate::callbacks::problems(&config, &|name| std::env::var(name).ok()) {
        eprintln!("warning: {problem} (here; `up` stops unless it is set where it runs)");
    }

    // The warnings are printed already, each with its reason.
    let unacted = warnings.iter().filter(|w| w.is_not_acted_on()).count();
    if args.strict && unacted > 0 {
        return Err(Failure(format!(
            "{unacted} key{} kept but not acted on (see the warnings above); --strict makes that a failure",
            if unacted == 1 { " is" } else { "s are" }
        )));
    }

    println!("{}: OK", args.config.display());
    println!("Model groups:");
    let groups = summary::groups(&config);
    if groups.is_empty() {
        println!("  (none)");
    }
    for group in &groups {
        println!("  {}", group.name);
        for d in &group.deployments {
            let host = d.host.as_deref().unwrap_or("-");
            println!("    - {}/{}  at {host}", d.provider, d.model);
        }
    }
    if config.master_key_is_set() {
        println!("master_key: set (clients must send it or a virtual key)");
    } else {
        println!("master_key: not set (the gateway is open to anyone who can reach it)");
    }
    if rendered.env.is_empty() {
        println!("Environment variables: none needed");
    } else {
        println!("Environment variables:");
        let width = rendered.env.iter().map(|b| b.name.len()).max().unwrap_or(0);
        let mut unset = 0;
        for binding in &rendered.env {
            // Only whether it is set: never the value.
            let state = if binding.value.is_some() {
                "set in config.yaml"
            } else if std::env::var_os(&binding.name).is_some_and(|v| !v.is_empty()) {
                "set"
            } else {
                unset += 1;
                "NOT SET in this environment"
            };
            println!("  {:width$}  {state}", binding.name);
        }
        if unset > 0 {
            eprintln!(
                "warning: {unset} variable{} not set here: Envoy needs {} in its environment wherever it runs",
                if unset == 1 { " is" } else { "s are" },
                if unset == 1 { "it" } else { "them" },
            );
        }
    }
    Ok(())
}
