//! `main` of the `gateway` binary: flags (each also an environment variable), runtime,
//! telemetry, SIGTERM/SIGINT, and the `healthcheck` subcommand the image uses.

use crate::{config::GatewayConfig, server};
use aula_runtime::{cli as rt_cli, config::Env, metrics, telemetry::Telemetry};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::{process::ExitCode, time::Duration};

#[derive(Parser)]
#[command(
    name = "gateway",
    version,
    about = "gateway: the Aula REST API over the gRPC services. Serves HTTP on port 8080 and \
             Prometheus metrics on port 9080 (/metrics). Run without a subcommand to serve."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// HTTP listen address [env: GATEWAY_LISTEN] [default: 0.0.0.0:8080]
    #[arg(long)]
    listen: Option<String>,
    /// Metrics listen address, or "off" [env: AULA_METRICS_LISTEN] [default: 0.0.0.0:9080]
    #[arg(long)]
    metrics_listen: Option<String>,
    /// text or json [env: AULA_LOG_FORMAT]
    #[arg(long)]
    log_format: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Exits 0 when GET /readyz answers 200 (the image's HEALTHCHECK).
    Healthcheck(HealthcheckArgs),
}

#[derive(Args)]
struct HealthcheckArgs {
    /// The gateway to check [default: http://127.0.0.1:<port of GATEWAY_LISTEN, or 8080>]
    #[arg(long)]
    addr: Option<String>,
    /// Give up after this long
    #[arg(long, default_value = "3s", value_parser = aula_runtime::config::duration_arg)]
    timeout: Duration,
}

/// The whole `main` of the binary.
pub fn main_entry() -> ExitCode {
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    let mut env = Env::from_process();
    for (key, value) in [
        ("GATEWAY_LISTEN", &cli.listen),
        ("AULA_METRICS_LISTEN", &cli.metrics_listen),
        ("AULA_LOG_FORMAT", &cli.log_format),
    ] {
        if let Some(v) = value {
            env.set(key, v.clone());
        }
    }
    let rt = match rt_cli::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gateway: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Some(Command::Healthcheck(args)) => rt.block_on(healthcheck(&env, args)),
        None => rt.block_on(serve(env)),
    }
}

/// The command line, with every variable the gateway reads (docs/CONFIG.md) in `--help`.
fn command() -> clap::Command {
    let spec = aula_runtime::spec::GATEWAY;
    Cli::command().after_help(aula_runtime::help::variables(&aula_runtime::help::Binary {
        name: spec.name,
        port: spec.port,
        metrics_port: spec.metrics_port,
        stateful: false,
        http: true,
    }))
}

async fn healthcheck(env: &Env, args: HealthcheckArgs) -> ExitCode {
    let addr = args.addr.unwrap_or_else(|| {
        let port = env
            .get("GATEWAY_LISTEN")
            .and_then(|l| l.rsplit(':').next()?.parse::<u16>().ok())
            .unwrap_or(crate::config::PORT);
        format!("http://127.0.0.1:{port}")
    });
    match crate::healthcheck::readyz_status(&addr, args.timeout).await {
        Ok(200) => {
            println!("{addr}/readyz: 200");
            ExitCode::SUCCESS
        }
        Ok(status) => {
            println!("{addr}/readyz: {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Serves the gateway until SIGTERM/SIGINT (also `aula serve gateway`).
pub async fn serve(env: Env) -> ExitCode {
    let config = match GatewayConfig::from_env(&env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let telemetry = match Telemetry::init("gateway", &env) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("gateway: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let grace = config.shutdown_grace;
    let result = async {
        let listener = aula_runtime::listen::bind(config.listen, "GATEWAY_LISTEN").await?;
        let metrics_listener = match config.metrics_listen {
            Some(a) => Some(metrics::bind(a).await?),
            None => None,
        };
        let running = server::start(&env, listener, metrics_listener).await?;
        rt_cli::shutdown_signal().await;
        running.stop().await
    }
    .await;
    telemetry.shutdown(grace.min(Duration::from_secs(5)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn help_names_the_ports_and_variables() {
        let help = super::command().render_long_help().to_string();
        for needle in [
            "8080",
            "9080",
            "GATEWAY_LISTEN",
            "GATEWAY_DRAIN_DELAY",
            "AULA_PEER_TIMEOUT",
        ] {
            assert!(help.contains(needle), "{needle} missing from:\n{help}");
        }
        assert!(!help.contains("DATABASE_URL"), "{help}");
    }
}
