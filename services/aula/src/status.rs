//! `aula status`: the seed's gateway test as a tool. One line per service and the gateway:
//! address, health, round-trip time (or `--json`); exit 1 unless every one is serving.

use crate::services;
use aula_runtime::{config::peer_addr, healthcheck, spec};
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
    /// One JSON object on stdout: {"all_serving": bool, "services": [{name, address, state,
    /// rtt_ms, error}]}
    #[arg(long)]
    pub json: bool,
    /// The stack's ports are moved by this much (as `aula up --port-offset`)
    #[arg(long, env = "AULA_PORT_OFFSET", default_value_t = 0)]
    pub port_offset: u16,
    /// The gateway's URL [default: http://127.0.0.1:8080, moved by --port-offset]
    #[arg(long)]
    pub gateway: Option<String>,
}

/// One service's answer.
#[derive(Debug, serde::Serialize)]
pub struct Row {
    pub name: &'static str,
    pub address: String,
    /// SERVING, NOT_SERVING, DOWN, ...
    pub state: String,
    pub rtt_ms: Option<f64>,
    pub error: Option<String>,
}

impl Row {
    fn of(
        name: &'static str,
        address: String,
        rtt: Duration,
        answer: anyhow::Result<String>,
    ) -> Self {
        match answer {
            Ok(state) => Row {
                name,
                address,
                state,
                rtt_ms: Some((rtt.as_secs_f64() * 10_000.0).round() / 10.0),
                error: None,
            },
            Err(e) => Row {
                name,
                address,
                state: "DOWN".into(),
                rtt_ms: None,
                error: Some(format!("{e:#}")),
            },
        }
    }

    pub fn serving(&self) -> bool {
        self.state == "SERVING"
    }
}

pub async fn run(args: StatusArgs) -> ExitCode {
    // With AULA_TLS_* set, `aula status` connects like a peer: an operator's certificate.
    let Some((env, tls)) = services::client_settings("status", args.port_offset) else {
        return ExitCode::from(2);
    };
    let tls = tls.as_ref();
    let checks = spec::ALL.iter().map(|s| {
        let addr = peer_addr(&env, s);
        async move {
            let start = Instant::now();
            let answer = healthcheck::check_with(&addr, s.grpc_service, tls, args.timeout)
                .await
                .map(|st| match st {
                    ServingStatus::Serving => "SERVING".to_string(),
                    other => other.as_str_name().to_string(),
                });
            Row::of(s.name, addr, start.elapsed(), answer)
        }
    });
    let gateway = async {
        let addr = match &args.gateway {
            Some(a) => a.clone(),
            None => match services::offset_port(spec::GATEWAY.port, args.port_offset) {
                Ok(port) => format!("http://127.0.0.1:{port}"),
                Err(e) => {
                    return Row::of(spec::GATEWAY.name, String::new(), Duration::ZERO, Err(e))
                }
            },
        };
        let start = Instant::now();
        let answer = tokio::time::timeout(
            args.timeout,
            aula_runtime::healthcheck::readyz_status(&addr, args.timeout),
        )
        .await
        .unwrap_or_else(|_| {
            Err(anyhow::anyhow!(
                "{addr}: no answer within {:?}",
                args.timeout
            ))
        })
        .map(|code| match code {
            200 => "SERVING".to_string(),
            other => format!("NOT_SERVING (/readyz {other})"),
        });
        Row::of(spec::GATEWAY.name, addr, start.elapsed(), answer)
    };
    let (mut rows, gateway) = tokio::join!(futures::future::join_all(checks), gateway);
    rows.push(gateway);
    let all_serving = rows.iter().all(Row::serving);
    if args.json {
        let out = serde_json::json!({ "all_serving": all_serving, "services": rows });
        println!("{out}");
    } else {
        for r in &rows {
            let detail = match (&r.rtt_ms, &r.error) {
                (_, Some(e)) => e.clone(),
                (Some(ms), None) => format!("{ms:.1} ms"),
                (None, None) => String::new(),
            };
            println!(
                "{:<13} {:<26} {:<12} {}",
                r.name, r.address, r.state, detail
            );
        }
    }
    if all_serving {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
