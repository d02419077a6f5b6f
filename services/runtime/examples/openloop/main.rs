//! `openloop`: calls at a fixed rate that it keeps, latency from each call's due time
//! (generator/mod.rs says how). scripts/bench-data.sh takes every "at half the maximum" figure with
//! it; h2load measures the maximum, flat out.
//!
//! ```text
//! openloop --url http://127.0.0.1:51051 --call GetUserCourses --rate 10000 --seconds 10
//! openloop --url http://127.0.0.1:51051 --call GetStatus --rate 5000 --connections 1
//! openloop --url http://127.0.0.1:51051/services.NotificacoesService/GetStatus --rate 500
//! openloop --url http://127.0.0.1:51080/cursos/ver_inscricoes_do_usuario/1 --get --rate 4000
//! ```
//!
//! Prints `key<TAB>value` lines on stdout (generator/report.rs's `Report::tsv`) and one line for
//! people on stderr. Exits 1 when the run could not start (no server), 0 otherwise: what the
//! calls did is in the figures.

mod generator;

use aula_api::GetUserCoursesRequest;
use clap::Parser;
use generator::{Call, Plan, Protocol, Schedule};
use prost::Message as _;
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "Open-loop load at a rate it keeps; latency from each call's due time")]
struct Args {
    /// The server (`http://host:port`), or the full URL of the call (a gRPC method's path, or
    /// what `--get` fetches).
    #[arg(long)]
    url: String,
    /// gRPC: `GetUserCourses` (of `--user`), `GetStatus` (of `--service`), or nothing when
    /// `--url` has the method's path (the request's bytes in `--body-hex`).
    #[arg(long, conflicts_with = "get")]
    call: Option<String>,
    /// The service of `--call GetStatus`.
    #[arg(long, default_value = "CursosService")]
    service: String,
    /// The user of `--call GetUserCourses`.
    #[arg(long, default_value = "1")]
    user: String,
    /// The request message's protobuf bytes in hex, for a method given by its path (empty: the
    /// empty message).
    #[arg(long, default_value = "")]
    body_hex: String,
    /// HTTP GET of `--url` instead of gRPC (HTTP/1.1 keep-alive unless `--h2`).
    #[arg(long)]
    get: bool,
    /// `--get` over HTTP/2 (h2c, prior knowledge) instead of HTTP/1.1.
    #[arg(long, requires = "get")]
    h2: bool,
    /// Calls per second, all connections together (see `--per-connection`).
    #[arg(long)]
    rate: f64,
    /// `--rate` is each connection's: the total is rate x connections.
    #[arg(long)]
    per_connection: bool,
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// The measured window, seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Calls at the same rate before the window, sent and not measured, seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Calls in flight or queued at most; a call due beyond that is dropped and counted.
    #[arg(long, default_value_t = 4096)]
    max_outstanding: usize,
    /// A call's time limit (gRPC: grpc-timeout), and how long the run waits for the calls
    /// still out after the last one went out, seconds.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// How many tasks the runtime polls between two looks at its sockets and the alarm (tokio's
    /// event_interval, 61 by default): small keeps a busy generator's calls on time.
    #[arg(long, default_value_t = 8)]
    event_interval: u32,
}

fn plan(a: &Args) -> Result<Plan, String> {
    let secs = |s: f64, what: &str| {
        Duration::try_from_secs_f64(s).map_err(|_| format!("--{what}: a number of seconds"))
    };
    let base: http::Uri = a.url.parse().map_err(|e| format!("--url: {e}"))?;
    if base.scheme_str() != Some("http") || base.authority().is_none() {
        return Err("--url: http://host:port[/path] (plaintext: h2c for gRPC)".into());
    }
    let timeout = secs(a.timeout, "timeout")?;
    let origin = |path: &str| -> Result<http::Uri, String> {
        format!("http://{}{path}", base.authority().expect("checked"))
            .parse()
            .map_err(|e| format!("--url: {e}"))
    };
    let (call, url) = if a.get {
        (Call::get(&base), base.clone())
    } else {
        let (path, message) = match a.call.as_deref() {
            Some("GetUserCourses") => (
                "/services.CursosService/GetUserCourses".to_string(),
                GetUserCoursesRequest {
                    id_usuario: a.user.clone(),
                }
                .encode_to_vec(),
            ),
            Some("GetStatus") => (format!("/services.{}/GetStatus", a.service), Vec::new()),
            Some(other) => {
                return Err(format!(
                "--call {other}: GetUserCourses or GetStatus (any other method: its path in --url)"
            ))
            }
            None if base.path().len() > 1 => (base.path().to_string(), hex(&a.body_hex)?),
            None => return Err("--call, or the method's path in --url".into()),
        };
        let url = origin(&path)?;
        (Call::grpc(&url, &message, timeout), url)
    };
    let connections = a.connections.max(1);
    let rate = if a.per_connection {
        a.rate * connections as f64
    } else {
        a.rate
    };
    let schedule = Schedule::new(rate, secs(a.warmup, "warmup")?, secs(a.seconds, "seconds")?)
        .ok_or("--rate and --seconds must be positive")?;
    Ok(Plan {
        url,
        call,
        protocol: if a.get && !a.h2 {
            Protocol::Http1
        } else {
            Protocol::Http2
        },
        connections,
        schedule,
        max_outstanding: a.max_outstanding.max(1),
        drain: timeout,
    })
}

fn hex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err("--body-hex: an even number of hex digits".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("--body-hex: not hex: {s}"))
        })
        .collect()
}

fn main() {
    let args = Args::parse();
    let plan = plan(&args).unwrap_or_else(|e| {
        eprintln!("openloop: {e}");
        std::process::exit(2)
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .event_interval(args.event_interval.max(1))
        .build()
        .expect("a runtime");
    match runtime.block_on(generator::run(plan)) {
        Ok(report) => {
            print!("{}", report.tsv());
            eprintln!("openloop: {}", report.line());
        }
        Err(e) => {
            eprintln!("openloop: {e}");
            std::process::exit(1)
        }
    }
}
