//! `main` for every service binary: flags (each overriding an environment variable of
//! docs/CONFIG.md), a multi-threaded runtime, telemetry, SIGTERM/SIGINT handling, and the
//! `healthcheck` subcommand the images use. `--help` names the binary, its ports and every
//! variable it reads; `--version` names the binary.

use crate::{
    config::{Env, Settings},
    server::{self, ServiceDef},
    telemetry::Telemetry,
};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
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

/// The flags of [`ServeArgs`], for the test that compares them with docs/CONFIG.md.
pub const SERVE_FLAGS: [&str; 5] = [
    "--listen",
    "--metrics-listen",
    "--data-dir",
    "--database-url",
    "--log-format",
];

#[derive(Parser)]
#[command(version)]
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
    #[arg(long, default_value = "3s", value_parser = crate::config::duration_arg)]
    pub timeout: Duration,
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

/// The command line of `def`'s binary: its name, version, ports and variables.
fn command(def: &ServiceDef) -> clap::Command {
    let s = def.spec;
    let binary = crate::help::Binary {
        name: s.name,
        port: s.port,
        metrics_port: s.metrics_port,
        stateful: s.stateful,
        http: false,
    };
    let stateless = !s.stateful;
    Cli::command()
        .mut_arg("data_dir", |a| a.hide(stateless))
        .mut_arg("database_url", |a| a.hide(stateless))
        .name(s.name)
        .bin_name(s.name)
        .about(format!(
            "{}: {} (Aula). Serves {} over gRPC on port {} and Prometheus metrics on port {} \
             (/metrics). Run without a subcommand to serve.",
            s.name, s.summary, s.grpc_service, s.port, s.metrics_port
        ))
        .after_help(crate::help::variables(&binary))
}

/// `--peer-timeout` is not a flag, but `AULA_PEER_TIMEOUT` is a variable: say so.
fn variable_hint(mut e: clap::Error, binary: &str) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return e;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return e;
    };
    let wanted = arg
        .trim_start_matches('-')
        .split('=')
        .next()
        .unwrap_or_default()
        .replace('-', "_")
        .to_ascii_uppercase();
    let var = crate::help::VARIABLES
        .iter()
        .flat_map(|v| v.names())
        .find(|n| *n == wanted || n.strip_prefix("AULA_") == Some(wanted.as_str()));
    if let Some(var) = var {
        e.insert(
            ContextKind::Suggested,
            ContextValue::StyledStrs(vec![format!(
                "{var} is an environment variable, not a flag: {var}=<value> {binary} \
                 (docs/CONFIG.md)"
            )
            .into()]),
        );
    }
    e
}

/// The whole `main` of a service binary.
pub fn service_main(def: ServiceDef) -> ExitCode {
    // Usage errors print clap's message (with a suggestion when one is close) and exit 2.
    let matches = command(&def)
        .try_get_matches()
        .unwrap_or_else(|e| variable_hint(e, def.spec.name).exit());
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
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

/// Serves one service until SIGTERM/SIGINT, then drains and flushes telemetry. A setting
/// that cannot be understood, or a start that fails, is one line on stderr and exit 1.
pub async fn serve(def: ServiceDef, env: Env) -> ExitCode {
    let name = def.spec.name;
    let settings = match Settings::load(def.spec, &env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let telemetry = match Telemetry::init(name, &env) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let grace = settings.shutdown_grace;
    let result = async {
        let running = server::start(def, settings).await?;
        shutdown_signal().await;
        running.stop().await
    }
    .await;
    telemetry.shutdown(grace.min(Duration::from_secs(5)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{help::VARIABLES, spec};

    fn def(spec: spec::ServiceSpec) -> ServiceDef {
        ServiceDef {
            spec,
            migrations: None,
            demo: None,
            build: |_| Box::pin(async { anyhow::bail!("not built in this test") }),
        }
    }

    #[test]
    fn help_and_version_name_the_service_its_ports_and_variables() {
        let mut cmd = command(&def(spec::CHATBOT));
        let help = cmd.render_long_help().to_string();
        for needle in [
            "chatbot",
            "50052",
            "9052",
            "GEMINI_API_KEY",
            "AULA_PEER_TIMEOUT",
        ] {
            assert!(help.contains(needle), "{needle} missing from:\n{help}");
        }
        assert_eq!(cmd.render_version().trim(), "chatbot 0.1.0");
    }

    /// docs/CONFIG.md names a variable's flag as `(--flag)`: exactly the flags that exist.
    #[test]
    fn config_md_names_exactly_the_flags_that_exist() {
        let documented: Vec<&str> = VARIABLES
            .iter()
            .flat_map(|v| v.meaning.split("(`").skip(1))
            .filter_map(|rest| rest.split('`').next())
            .filter(|f| f.starts_with("--"))
            .collect();
        let mut expected = SERVE_FLAGS.to_vec();
        expected.sort();
        let mut documented = documented;
        documented.sort();
        assert_eq!(documented, expected, "docs/CONFIG.md's flags vs ServeArgs");
        for flag in SERVE_FLAGS {
            let id = flag.trim_start_matches("--").replace('-', "_");
            assert!(
                Cli::command()
                    .get_arguments()
                    .any(|a| a.get_id() == id.as_str()),
                "{flag} is not a flag of the service binaries"
            );
        }
    }

    #[test]
    fn usage_errors_exit_2() {
        let err = command(&def(spec::CURSOS))
            .try_get_matches_from(["cursos", "--peer-timeout", "1s"])
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = variable_hint(err, "cursos").render().to_string();
        assert!(
            err.contains("AULA_PEER_TIMEOUT is an environment variable"),
            "{err}"
        );
    }
}
