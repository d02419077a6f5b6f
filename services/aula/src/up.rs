//! `aula up`: several services in one process, each on its own standard ports (moved by
//! `--port-offset`, so two stacks can run side by side), sharing one runtime; stopped together
//! on SIGTERM/SIGINT.

use crate::services;
use aula_runtime::{host::Hosted, http, server, spec, telemetry::Telemetry, Env, Settings};
use clap::Args;
use std::{process::ExitCode, time::Duration};

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Services to start (default: all six and the gateway)
    #[arg(value_parser = services::name_parser())]
    pub services: Vec<String>,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Do not start the REST gateway
    #[arg(long)]
    pub no_gateway: bool,
    /// Directory of the SQLite files [env: AULA_DATA_DIR, default ./data]
    #[arg(long)]
    pub data_dir: Option<String>,
    /// Mutual TLS with the certificates `aula certs --out DIR` wrote: each service, and the
    /// gateway, serves and calls with its own <name>.crt/.key, trusting DIR/ca.crt
    #[arg(long, value_name = "DIR")]
    pub tls_dir: Option<std::path::PathBuf>,
    /// Add this to every port (gRPC, metrics, the gateway's) and point the peers at the moved
    /// ports, to run a second stack next to the first (then use a second --data-dir too)
    #[arg(long, env = "AULA_PORT_OFFSET", default_value_t = 0)]
    pub port_offset: u16,
    /// Require end users' tokens (AULA_AUTH=jwt) with a development key generated in the data
    /// directory; mint tokens with `aula token --user 1`
    #[arg(long)]
    pub auth: bool,
    /// Start without the demo rows a stack otherwise gets (five courses with their media, an
    /// appointment and a welcome for user 1) [env: AULA_DEMO_DATA=0]
    #[arg(long)]
    pub no_demo_data: bool,
}

/// `hosted`'s environment in this stack: its ports (moved by `--port-offset`) on `--host`, and
/// its own certificate with `--tls-dir`.
fn own_env(args: &UpArgs, env: &Env, hosted: &Hosted) -> anyhow::Result<Env> {
    let port = |p: u16| services::offset_port(p, args.port_offset);
    let (listen, metrics) = hosted.ports();
    let mut own = env.clone();
    own.set(
        hosted.listen_var(),
        format!("{}:{}", args.host, port(listen)?),
    );
    if let Some(dir) = &args.tls_dir {
        use_certs(&mut own, dir, hosted.name());
    }
    if env.get("AULA_METRICS_LISTEN") != Some("off") {
        own.set(
            "AULA_METRICS_LISTEN",
            format!("{}:{}", args.host, port(metrics)?),
        );
    }
    Ok(own)
}

/// Points `env` at `name`'s certificate in `dir` (as written by `aula certs`).
fn use_certs(env: &mut Env, dir: &std::path::Path, name: &str) {
    for (k, v) in aula_runtime::tls::cert_env(dir, name) {
        env.set(k, v);
    }
}

pub async fn run(args: UpArgs) -> ExitCode {
    if args.no_gateway && args.services.iter().any(|s| s == spec::GATEWAY.name) {
        eprintln!("aula up: --no-gateway contradicts naming gateway: drop one of them");
        return ExitCode::from(2);
    }
    let mut env = Env::from_process();
    if let Some(dir) = &args.data_dir {
        env.set("AULA_DATA_DIR", dir.clone());
    }
    // The demo rows README's commands show, unless asked not to (aula_runtime::demo).
    if args.no_demo_data {
        env.set("AULA_DEMO_DATA", "0");
    } else if env.get("AULA_DEMO_DATA").is_none() {
        env.set("AULA_DEMO_DATA", "1");
    }
    // The fault flags file `aula flags` edits (docs/FLAGS.md).
    let flags = crate::flags::default_path(&env, None);
    env.set("AULA_FLAGS_FILE", flags.display().to_string());
    // Peers dial the loopback when the stack listens on every interface.
    let dial = if args.host == "0.0.0.0" || args.host == "::" {
        "127.0.0.1"
    } else {
        args.host.as_str()
    };
    if let Err(e) = services::apply_port_offset(&mut env, dial, args.port_offset) {
        eprintln!("aula up: {e:#}");
        return ExitCode::from(2);
    }
    if args.auth {
        if let Err(e) = dev_auth(&mut env, args.tls_dir.is_some()) {
            eprintln!("aula up --auth: {e:#}");
            return ExitCode::FAILURE;
        }
    }
    let telemetry = match Telemetry::init("aula", &env) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("aula: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let code = match up(&args, &env).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aula up: {e:#}");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown(Duration::from_secs(5));
    code
}

/// `--auth`: the development key (generated once in `<data dir>/auth/`) and the settings
/// verifying its tokens. Everything runs in this process on loopback, so calls between the
/// services without a user's token are trusted unless mTLS (`--tls-dir`) proves who makes them.
fn dev_auth(env: &mut Env, tls: bool) -> anyhow::Result<()> {
    use aula_runtime::auth::{config::service_identity_configured, dev};
    let dir = std::path::PathBuf::from(env.get("AULA_DATA_DIR").unwrap_or("./data"));
    let keys = dev::DevKeys::in_data_dir(&dir);
    keys.load_or_create()?;
    let trust_network = !tls && !service_identity_configured(env);
    for (k, v) in dev::dev_env(&keys.jwks_path().display().to_string(), trust_network) {
        env.set(k, v);
    }
    println!(
        "auth: on; tokens from `aula token --user <id> [--role staff]` (key set {})",
        keys.jwks_path().display()
    );
    Ok(())
}

async fn up(args: &UpArgs, env: &Env) -> anyhow::Result<()> {
    if args.tls_dir.is_none() && env.get("AULA_TLS_CERT").is_some() {
        anyhow::bail!(
            "AULA_TLS_CERT is set: every service in this process would prove the same identity; \
             use --tls-dir DIR (from `aula certs --out DIR`) to give each its own certificate"
        );
    }
    let wanted = |name: &str| {
        (args.services.is_empty() || args.services.iter().any(|s| s == name))
            && !(args.no_gateway && name == spec::GATEWAY.name)
    };
    let mut running = Vec::new();
    let mut gateway = None;
    for hosted in services::all().into_iter().filter(|h| wanted(h.name())) {
        let mut own = own_env(args, env, &hosted)?;
        match hosted {
            Hosted::Grpc(def) => {
                let settings = Settings::load(def.spec, &own)?;
                running.push(server::start(def, settings).await?);
            }
            Hosted::Http(def) => {
                // The drain delay lets load balancers see /readyz fail before the listener
                // closes; nothing balances in front of `aula up`, so Ctrl-C should not wait.
                if env.get("GATEWAY_DRAIN_DELAY").is_none() {
                    own.set("GATEWAY_DRAIN_DELAY", "0s");
                }
                let settings = def.settings(&own)?;
                gateway = Some(http::start(def, settings, own).await?);
            }
        }
    }
    for r in &running {
        println!(
            "{:<13} grpc {}  metrics {}",
            r.spec.name,
            r.addr,
            r.metrics_addr.map_or("off".into(), |a| a.to_string())
        );
    }
    if let Some(g) = &gateway {
        println!("{:<13} http {}", g.spec.name, g.addr);
    }
    aula_runtime::cli::shutdown_signal().await;
    if let Some(g) = &gateway {
        g.drain();
    }
    for r in &running {
        r.drain();
    }
    let mut first_error = None;
    if let Some(g) = gateway {
        if let Err(e) = g.stop().await {
            first_error.get_or_insert(e);
        }
    }
    for r in running {
        if let Err(e) = r.wait().await {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}
