//! `main` for every binary the runtime hosts, gRPC service or REST gateway ([`Hosted`]): flags
//! (each overriding an environment variable of docs/CONFIG.md), a multi-threaded runtime,
//! telemetry, SIGTERM/SIGINT handling, and the `healthcheck` subcommand the images use. `--help`
//! names the binary, its ports and every variable it reads; `--version` names the binary.

use crate::{
    config::{ConfigError, Env, Settings},
    host::{Hosted, Running},
    http, server,
    telemetry::Telemetry,
};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use futures::future::LocalBoxFuture;
use std::{future::Future, process::ExitCode, time::Duration};

/// Flags shared by every server; each overrides the environment variable of the same meaning.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// gRPC listen address [env: AULA_LISTEN] (the gateway's: HTTP, GATEWAY_LISTEN)
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
    /// Writes the flags that were given over the environment snapshot; `--listen` sets
    /// `listen_var` ([`Hosted::listen_var`]).
    pub fn apply(&self, env: &mut Env, listen_var: &str) {
        let pairs = [
            (listen_var, &self.listen),
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
        .event_interval(EVENT_INTERVAL)
        .build()
}

/// Tasks a worker runs before it asks the kernel which sockets became ready (tokio's
/// `event_interval`, 61 by default). A call's arrival is noticed only then: under overload a
/// worker's tasks are connections reading and answering many streams each, and 61 of them made
/// a new call wait ~2.4 ms (its median at 3x cursos' maximum, 2026-12-06) before its connection
/// was even queued to read it. At 7 the median was 0.36-0.60 ms, and flat out cursos served the
/// same (h2load, 55.7k vs 55.3k GetUserCourses/s): one more non-blocking `epoll_wait` per 7
/// tasks is noise beside the tasks. BENCHMARKS.md, "Limits under load".
pub const EVENT_INTERVAL: u32 = 7;

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

/// The command line of `hosted`'s binary: its name, version, ports and variables.
fn command(hosted: &Hosted) -> clap::Command {
    let name = hosted.name();
    let (port, metrics_port) = hosted.ports();
    let is_http = matches!(hosted, Hosted::Http(_));
    let binary = crate::help::Binary {
        name,
        port,
        metrics_port,
        stateful: hosted.stateful(),
        http: is_http,
    };
    let (about, listen) = match hosted {
        Hosted::Grpc(d) => (
            format!(
                "{name}: {} (Aula). Serves {} over gRPC",
                d.spec.summary, d.spec.grpc_service
            ),
            "gRPC listen address [env: AULA_LISTEN]".to_string(),
        ),
        Hosted::Http(d) => (
            format!("{name}: {} (Aula). Serves HTTP", d.spec.summary),
            format!("HTTP listen address [env: {}]", d.listen_var),
        ),
    };
    let stateless = !hosted.stateful();
    Cli::command()
        .mut_arg("listen", |a| a.help(listen))
        .mut_arg("data_dir", |a| a.hide(stateless))
        .mut_arg("database_url", |a| a.hide(stateless))
        .mut_subcommand("healthcheck", |c| {
            let c = c.mut_arg("service", |a| a.hide(is_http));
            if is_http {
                c.about("Exits 0 when GET /readyz answers 200 (the image's HEALTHCHECK).")
            } else {
                c
            }
        })
        .name(name)
        .bin_name(name)
        .about(format!(
            "{about} on port {port} and Prometheus metrics on port {metrics_port} (/metrics). \
             Run without a subcommand to serve."
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

/// The whole `main` of a service's or the gateway's binary.
pub fn service_main(hosted: impl Into<Hosted>) -> ExitCode {
    let hosted = hosted.into();
    // Usage errors print clap's message (with a suggestion when one is close) and exit 2.
    let matches = command(&hosted)
        .try_get_matches()
        .unwrap_or_else(|e| variable_hint(e, hosted.name()).exit());
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let mut env = Env::from_process();
    cli.serve.apply(&mut env, hosted.listen_var());
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}: cannot start the runtime: {e}", hosted.name());
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Some(Command::Healthcheck(args)) => rt.block_on(healthcheck(&hosted, &env, args)),
        None => rt.block_on(serve(hosted, env)),
    }
}

/// `<binary> healthcheck`: a gRPC health check, or the gateway's `GET /readyz`.
pub async fn healthcheck(hosted: &Hosted, env: &Env, args: HealthcheckArgs) -> ExitCode {
    let port = env
        .get(hosted.listen_var())
        .and_then(|l| l.rsplit(':').next()?.parse::<u16>().ok())
        .unwrap_or(hosted.ports().0);
    let verdict = match hosted {
        Hosted::Grpc(def) => grpc_health(def, env, args, port).await,
        Hosted::Http(_) if args.service.is_some() => {
            eprintln!("--service names a gRPC service: the gateway has none");
            return ExitCode::from(2);
        }
        Hosted::Http(_) => {
            let addr = args
                .addr
                .unwrap_or_else(|| format!("http://127.0.0.1:{port}"));
            crate::healthcheck::readyz_status(&addr, args.timeout)
                .await
                .map(|status| (status == 200, format!("{addr}/readyz: {status}")))
        }
    };
    match verdict {
        Ok((healthy, line)) => {
            println!("{line}");
            if healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `def`'s service answers SERVING, and the line saying what it answered.
async fn grpc_health(
    def: &server::ServiceDef,
    env: &Env,
    args: HealthcheckArgs,
    port: u16,
) -> anyhow::Result<(bool, String)> {
    use tonic_health::pb::health_check_response::ServingStatus;
    let addr = args.addr.unwrap_or_else(|| {
        let scheme = if env.get("AULA_TLS_CERT").is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{port}")
    });
    // With mTLS on, the check presents this process's own certificate, as a peer would.
    let tls = crate::tls::Tls::from_env(env)?;
    let service = args
        .service
        .unwrap_or_else(|| def.spec.grpc_service.to_string());
    let status =
        crate::healthcheck::check_with(&addr, &service, tls.as_ref(), args.timeout).await?;
    Ok((
        status == ServingStatus::Serving,
        format!("{addr} {service}: {}", status.as_str_name()),
    ))
}

/// Serves until SIGTERM/SIGINT, then drains and flushes telemetry. A setting that cannot be
/// understood, or a start that fails, is one line on stderr and exit 1.
pub async fn serve(hosted: impl Into<Hosted>, env: Env) -> ExitCode {
    let hosted = hosted.into();
    let name = hosted.name();
    let (grace, life) = match prepare(hosted, &env) {
        Ok(p) => p,
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
    let result = life.await;
    telemetry.shutdown(grace.min(Duration::from_secs(5)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `hosted`'s settings, read before anything starts, and its whole life (not yet begun):
/// start, serve until a signal, drain.
fn prepare(
    hosted: Hosted,
    env: &Env,
) -> Result<(Duration, LocalBoxFuture<'static, anyhow::Result<()>>), ConfigError> {
    Ok(match hosted {
        Hosted::Grpc(def) => {
            let settings = Settings::load(def.spec, env)?;
            let grace = settings.server.shutdown_grace;
            (grace, Box::pin(until_signal(server::start(def, settings))))
        }
        Hosted::Http(def) => {
            let settings = def.settings(env)?;
            let grace = settings.shutdown_grace;
            let start = http::start(def, settings, env.clone());
            (grace, Box::pin(until_signal(start)))
        }
    })
}

async fn until_signal<S>(
    start: impl Future<Output = anyhow::Result<Running<S>>>,
) -> anyhow::Result<()> {
    let running = start.await?;
    shutdown_signal().await;
    running.stop().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{help::VARIABLES, spec};

    fn def(spec: spec::ServiceSpec) -> Hosted {
        Hosted::Grpc(server::ServiceDef {
            spec,
            migrations: None,
            demo: None,
            build: |_| Box::pin(async { anyhow::bail!("not built in this test") }),
        })
    }

    fn gateway() -> Hosted {
        Hosted::Http(http::HttpDef {
            spec: spec::GATEWAY,
            listen_var: "GATEWAY_LISTEN",
            build: |_, _| Box::pin(async { anyhow::bail!("not built in this test") }),
        })
    }

    /// `cmd`'s long help, which names each of `needles`.
    fn help_naming(cmd: &mut clap::Command, needles: &[&str]) -> String {
        let help = cmd.render_long_help().to_string();
        for needle in needles {
            assert!(help.contains(needle), "{needle} missing from:\n{help}");
        }
        help
    }

    #[test]
    fn the_gateways_help_names_its_ports_and_variables() {
        let mut cmd = command(&gateway());
        let help = help_naming(
            &mut cmd,
            &[
                "8080",
                "9080",
                "GATEWAY_LISTEN",
                "GATEWAY_DRAIN_DELAY",
                "AULA_PEER_TIMEOUT",
            ],
        );
        assert!(!help.contains("DATABASE_URL"), "{help}");
        assert_eq!(cmd.render_version().trim(), "gateway 0.1.0");
        let mut env = Env::default();
        let cli = Cli::from_arg_matches(
            &command(&gateway())
                .try_get_matches_from(["gateway", "--listen", "127.0.0.1:1"])
                .unwrap(),
        )
        .unwrap();
        cli.serve.apply(&mut env, gateway().listen_var());
        assert_eq!(env.get("GATEWAY_LISTEN"), Some("127.0.0.1:1"));
        assert_eq!(env.get("AULA_LISTEN"), None);
    }

    #[test]
    fn help_and_version_name_the_service_its_ports_and_variables() {
        let mut cmd = command(&def(spec::CHATBOT));
        help_naming(
            &mut cmd,
            &[
                "chatbot",
                "50052",
                "9052",
                "GEMINI_API_KEY",
                "AULA_PEER_TIMEOUT",
            ],
        );
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
