//! `aula`: the platform in one command.
//!
//! - `aula up [SERVICE...]` runs the six services (and the REST gateway) in one process, each
//!   on its standard port (`--port-offset N` moves them all), like the seed's `start_grpc_services.py`.
//! - `aula serve <SERVICE>` runs one, like its own binary.
//! - `aula status` checks every service's health and round-trip time.
//! - `aula load` drives a realistic mix of the API and reports latency percentiles.
//! - `aula token --user 7` mints a development token for `aula up --auth`.
//! - `aula faults` writes under injected faults and checks that nothing acknowledged is lost.
//! - `aula certs` writes a development CA and certificates for mutual TLS.
//! - `aula flags` switches fault flags of the local stack on and off (docs/FLAGS.md).

mod certs;
mod faults;
mod flags;
mod load;
mod services;
mod status;
mod token;
mod up;

use aula_runtime::{cli::ServeArgs, Env};
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    version,
    about = "Aula: the online-learning backend, six gRPC services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run services in this process (all six and the gateway when none is named).
    Up(up::UpArgs),
    /// Run one service, as its own binary would.
    Serve {
        /// cursos, chatbot, cpar, notificacoes, insights, midia or gateway
        #[arg(value_parser = services::name_parser())]
        service: String,
        #[command(flatten)]
        args: ServeArgs,
    },
    /// Print each service's address, health and round-trip time; exit 1 unless all serve.
    Status(status::StatusArgs),
    /// Print a development token for `aula up --auth`: `aula token --user 7 [--role staff]`.
    Token(token::TokenArgs),
    /// Generate load: a realistic mix of the API at a target rate or flat out.
    Load(load::LoadArgs),
    /// Write under injected faults (kill -9, SIGSTOP, a full disk, database restarts) and
    /// check that every acknowledged write is present exactly once; exit 1 if not.
    Faults(faults::FaultsArgs),
    /// Write a development CA and a key + certificate for every service, the gateway and an
    /// `operator` (mutual TLS: docs/CONFIG.md, "Mutual TLS").
    Certs(certs::CertsArgs),
    /// Fault flags for drills: `list`, `set NAME VARIANT`, `clear` (docs/FLAGS.md)
    Flags(flags::FlagsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match aula_runtime::cli::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("aula: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Up(args) => rt.block_on(up::run(args)),
        Command::Serve { service, args } => {
            let hosted =
                services::by_name(&service).expect("clap accepts only the catalogue's names");
            let mut env = Env::from_process();
            args.apply(&mut env, hosted.listen_var());
            rt.block_on(aula_runtime::cli::serve(hosted, env))
        }
        Command::Status(args) => rt.block_on(status::run(args)),
        Command::Token(args) => token::run(args),
        Command::Load(args) => rt.block_on(load::run(args)),
        Command::Faults(args) => rt.block_on(faults::run(args)),
        Command::Certs(args) => certs::run(args),
        Command::Flags(args) => flags::run(args),
    }
}
