//! `main` of the `gateway` binary: flags (each also an environment variable), runtime,
//! telemetry, SIGTERM/SIGINT, and the `healthcheck` subcommand the image uses.

use crate::{config::GatewayConfig, server};
use aula_runtime::{cli as rt_cli, config::Env, metrics, telemetry::Telemetry};
use clap::{Args, Parser, Subcommand};
use std::{process::ExitCode, time::Duration};

#[derive(Parser)]
#[command(
    name = "gateway",
    version,
    about = "The Aula REST gateway: the seed's REST API over the gRPC services. Run without a subcommand to serve."
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
    #[arg(long, default_value = "3s", value_parser = parse_duration_arg)]
    timeout: Duration,
}

fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    aula_runtime::config::parse_duration(s)
        .ok_or_else(|| format!("{s:?} is not a duration (500ms, 3s, 1m)"))
}

/// The whole `main` of the binary.
pub fn main_entry() -> ExitCode {
    let cli = Cli::parse();
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
    let telemetry = match Telemetry::init("gateway", &env) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("gateway: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = async {
        let config = GatewayConfig::from_env(&env)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| {
                anyhow::anyhow!("binding the gateway listener on {}: {e}", config.listen)
            })?;
        let metrics_listener = match config.metrics_listen {
            Some(a) => Some(metrics::bind(a).await?),
            None => None,
        };
        let running = server::start(&env, listener, metrics_listener).await?;
        rt_cli::shutdown_signal().await;
        running.stop().await
    }
    .await;
    let grace = env
        .duration("AULA_SHUTDOWN_GRACE", Duration::from_secs(10))
        .unwrap_or(Duration::from_secs(10));
    telemetry.shutdown(grace.min(Duration::from_secs(5)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(service = "gateway", error = format!("{e:#}"), "failed");
            eprintln!("gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}
