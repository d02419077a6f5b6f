//! `aula status`: the seed's gateway test as a tool. One line per service: address, health,
//! round-trip time; exit 1 unless every service is serving.

use aula_runtime::{config::peer_addr, healthcheck, spec, Env};
use clap::Args;
use std::{
    process::ExitCode,
    time::{Duration, Instant},
};
use tonic_health::pb::health_check_response::ServingStatus;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// How long to wait for each service
    #[arg(long, default_value = "2s", value_parser = aula_runtime::config::duration_arg)]
    pub timeout: Duration,
}

pub async fn run(args: StatusArgs) -> ExitCode {
    let env = Env::from_process();
    // With AULA_TLS_* set, `aula status` connects like a peer: an operator's certificate.
    let tls = match aula_runtime::tls::Tls::from_env(&env) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("aula status: {e:#}");
            return ExitCode::from(2);
        }
    };
    let tls = tls.as_ref();
    let checks = spec::ALL.iter().map(|s| {
        let addr = peer_addr(&env, s);
        async move {
            let start = Instant::now();
            let result = healthcheck::check_with(&addr, s.grpc_service, tls, args.timeout).await;
            (s, addr, result, start.elapsed())
        }
    });
    let mut all_serving = true;
    for (s, addr, result, rtt) in futures::future::join_all(checks).await {
        let (state, detail) = match result {
            Ok(ServingStatus::Serving) => (
                "SERVING".to_string(),
                format!("{:.1} ms", rtt.as_secs_f64() * 1000.0),
            ),
            Ok(other) => {
                all_serving = false;
                (
                    other.as_str_name().to_string(),
                    format!("{:.1} ms", rtt.as_secs_f64() * 1000.0),
                )
            }
            Err(e) => {
                all_serving = false;
                ("DOWN".to_string(), format!("{e:#}"))
            }
        };
        println!("{:<13} {:<26} {:<12} {}", s.name, addr, state, detail);
    }
    if all_serving {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
