//! `main` for every service binary: flags (each also an environment variable, see
//! docs/CONFIG.md), a multi-threaded runtime, telemetry, SIGTERM/SIGINT handling, and the
//! `healthcheck` subcommand the images use.

use crate::{
    config::{Env, Settings},
    server::{self, ServiceDef},
    telemetry::Telemetry,
};
use clap::{Args, Parser, Subcommand};
use std::{process::ExitCode, time::Duration};

/// Flags shared by every server; each overrides the environment variable of the same meaning.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// gRPC listen address [env: AULA_LISTEN]
    #[arg(long)]
    pub listen: Option<String>,
    /// Metrics listen address, or "off" [env: AULA_METRICS_LISTEN]
    #[arg(long)]
    pub metrics_listen: Option<String>,
    /// Directory of the SQLite files [env: AULA_DATA_DIR]
    #[arg(long)]
    pub data_dir: Option<String>,
    /// postgres://... to use PostgreSQL [env: DATABASE_URL]
    #[arg(long)]
    pub database_url: Option<String>,
    /// text or json [env: AULA_LOG_FORMAT]
    #[arg(long)]
    pub log_format: Option<String>,
}

impl ServeArgs {
    /// Writes the flags that were given over the environment snapshot.
    pub fn apply(&self, env: &mut Env) {
        let pairs = [
            ("AULA_LISTEN", &self.listen),
            ("AULA_METRICS_LISTEN", &self.metrics_listen),
            ("AULA_DATA_DIR", &self.data_dir),
            ("DATABASE_URL", &self.database_url),
            ("AULA_LOG_FORMAT", &self.log_format),
        ];
        for (key, value) in pairs {
            if let Some(v) = value {
                env.set(key, v.clone());
            }
        }
    }
}

#[derive(Parser)]
#[command(version, about = "An Aula service. Run without a subcommand to serve.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Exits 0 when the server answers SERVING (used by the image's HEALTHCHECK and helm test).
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Server to check [default: this service on 127.0.0.1 and its port]
    #[arg(long)]
    pub addr: Option<String>,
    /// Service name to ask about ("" is the server as a whole) [default: this service]
    #[arg(long)]
    pub service: Option<String>,
    /// Give up after this long
    #[arg(long, default_value = "3s", value_parser = parse_duration_arg)]
    pub timeout: Duration,
}

fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    crate::config::parse_duration(s)
        .ok_or_else(|| format!("{s:?} is not a duration (500ms, 3s, 1m)"))
}

/// A multi-threaded runtime with one worker per core this process may use (tokio counts the
/// CPU affinity mask and the cgroup quota; `TOKIO_WORKER_THREADS` overrides). A service pinned
/// to one core gets one worker: a second would only add thread switches on every spawned
/// request. Blocking work (span export's shutdown) runs on its own threads, never on a worker.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// The whole `main` of a service binary.
pub fn service_main(def: ServiceDef) -> ExitCode {
    let cli = Cli::parse();
    let mut env = Env::from_process();
    cli.serve.apply(&mut env);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}: cannot start the runtime: {e}", def.spec.name);
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Some(Command::Healthcheck(args)) => rt.block_on(healthcheck(&def, &env, args)),
        None => rt.block_on(serve(def, env)),
    }
}

/// `<service> healthcheck`.
pub async fn healthcheck(def: &ServiceDef, env: &Env, args: HealthcheckArgs) -> ExitCode {
    let addr = args.addr.unwrap_or_else(|| {
        let port = env
            .get("AULA_LISTEN")
            .and_then(|l| l.rsplit(':').next()?.parse::<u16>().ok())
            .unwrap_or(def.spec.port);
        let scheme = if env.get("AULA_TLS_CERT").is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{port}")
    });
    // With mTLS on, the check presents this process's own certificate, as a peer would.
    let tls = match crate::tls::Tls::from_env(env) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::FAILURE;
        }
    };
    let service = args
        .service
        .unwrap_or_else(|| def.spec.grpc_service.to_string());
    match crate::healthcheck::check_with(&addr, &service, tls.as_ref(), args.timeout).await {
        Ok(tonic_health::pb::health_check_response::ServingStatus::Serving) => {
            println!("{addr} {service}: SERVING");
            ExitCode::SUCCESS
        }
        Ok(status) => {
            println!("{addr} {service}: {}", status.as_str_name());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Serves one service until SIGTERM/SIGINT, then drains and flushes telemetry.
pub async fn serve(def: ServiceDef, env: Env) -> ExitCode {
    let name = def.spec.name;
    let telemetry = match Telemetry::init(name, &env) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = async {
        let settings = Settings::load(def.spec, &env)?;
        let running = server::start(def, settings).await?;
        shutdown_signal().await;
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
            tracing::error!(service = name, error = format!("{e:#}"), "failed");
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
