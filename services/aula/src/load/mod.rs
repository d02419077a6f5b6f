//! `aula load`: drives a realistic, weighted mix of the API over real gRPC (unary calls and the
//! streams: SubscribeNotifications, ResolveDuvidaStream) and, with `--gateway`, the REST
//! gateway's routes, and reports latency percentiles per RPC and route.
//!
//! # Layout
//! - [`mix`]: the RPCs, their weights, `--only`.
//! - [`schedule`]: open-loop pacing at `--rate` and where latency counts from.
//! - [`calls`]: the generated clients and the request each RPC sends.
//! - [`report`]: histograms, the progress line, the final table and the JSON summary.
//!
//! Without `--rate`, `--concurrency` workers send back to back (closed loop: the throughput the
//! services sustain). With `--rate`, requests fall due at fixed intervals and at most
//! `--concurrency` are in flight; a request that waits for a free worker counts its wait as
//! latency (see [`schedule`]).
//!
//! With end-user auth on (`AULA_AUTH=jwt`), `--token` is sent on every call. Before any load,
//! each service is asked for health and then for one call the mix will need the token for
//! ([`calls::Conn::probe`]), so a missing, invalid or too weak token is one line at once.

pub mod calls;
pub mod mix;
pub mod report;
pub mod schedule;

use aula_runtime::{
    config::{duration_arg, peer_addr},
    spec,
};
use calls::{Bearer, Conn};
use clap::Args;
use mix::{Mix, Target};
use rand::{rngs::StdRng, SeedableRng};
use report::{progress_line, Recorder, Summary};
use schedule::{latency_origin, Schedule};
use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
    process::ExitCode,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};
use tokio::time::Instant;

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Requests per second, open loop: latency counts from each request's due time. Flat out
    /// (closed loop) when absent
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Requests in flight at most
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,
    /// How long to measure (after the warm-up)
    #[arg(long, default_value = "30s", value_parser = duration_arg)]
    pub duration: Duration,
    /// Load sent before measuring starts (shown in the progress, not in the results)
    #[arg(long, default_value = "5s", value_parser = duration_arg)]
    pub warmup: Duration,
    /// Only these RPCs: method names (GetUserCourses, GetStatus) or service.Method
    /// (cursos.GetStatus); gateway routes by path ("GET /cursos") or all of them with
    /// `gateway`; comma-separated
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Add the REST gateway's routes to the mix (GET /cursos, ver_inscricoes_do_usuario,
    /// consumir_midia_curso, midia_conteudo, POST /chatbot/duvida)
    #[arg(long)]
    pub gateway: bool,
    /// The gateway's URL [default: http://127.0.0.1:8080, moved by --port-offset; --host
    /// replaces its host]
    #[arg(long)]
    pub gateway_url: Option<String>,
    /// Write a JSON summary (HdrHistogram percentiles per RPC) to this file; `-` writes it to
    /// stdout (and the table to stderr)
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Exit 1 when more than this fraction of the calls failed
    #[arg(long, default_value_t = 0.01)]
    pub max_error_ratio: f64,
    /// Host of every service, keeping each one's port (default: the host of <NAME>_ADDR,
    /// else 127.0.0.1)
    #[arg(long)]
    pub host: Option<String>,
    /// HTTP/2 connections to each service
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub connections: u32,
    /// Deadline of each call
    #[arg(long, default_value = "10s", value_parser = duration_arg)]
    pub timeout: Duration,
    /// The stack's ports are moved by this much (as `aula up --port-offset`)
    #[arg(long, env = "AULA_PORT_OFFSET", default_value_t = 0)]
    pub port_offset: u16,
    /// A user token (JWT) sent as `authorization: Bearer <TOKEN>` on every gRPC call and
    /// gateway request, for a platform with AULA_AUTH=jwt. The mix acts on users 1000-1999,
    /// so it needs the staff role: --token "$(aula token --user 1 --role staff)"
    #[arg(long, env = "AULA_TOKEN", hide_env_values = true)]
    pub token: Option<Token>,
}

/// `--token`'s value, kept out of `Debug` output (tokens never appear in logs or errors).
#[derive(Clone)]
pub struct Token(pub String);

impl From<String> for Token {
    fn from(s: String) -> Self {
        Token(s)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .and_then(Schedule::new)
        .map(|s| s.rate())
        .ok_or_else(|| format!("{s:?} is not a positive number of requests per second"))
}

pub async fn run(args: LoadArgs) -> ExitCode {
    let mix = match Mix::restricted(&mix::split_names(&args.only), args.gateway) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("aula load: {e}");
            return ExitCode::from(2);
        }
    };
    // With AULA_TLS_* set, the load comes over mutual TLS (an admin identity's certificate, as
    // the mix calls RPCs only users reach through the gateway).
    let Some((env, tls)) = crate::services::client_settings("load", args.port_offset) else {
        return ExitCode::from(2);
    };
    let gateway_url = match &args.gateway_url {
        Some(u) => u.clone(),
        None => match crate::services::offset_port(spec::GATEWAY.port, args.port_offset) {
            Ok(port) => format!("http://127.0.0.1:{port}"),
            Err(e) => {
                eprintln!("aula load: {e:#}");
                return ExitCode::from(2);
            }
        },
    };
    let addr = |t: Target| {
        let url = match spec::by_name(t.name()) {
            Some(spec) => peer_addr(&env, spec),
            None => gateway_url.clone(),
        };
        match &args.host {
            Some(h) => with_host(&url, h),
            None => url,
        }
    };
    let bearer = match Bearer::new(args.token.as_ref().map(|t| t.0.as_str())) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("aula load: {e}");
            return ExitCode::from(2);
        }
    };
    let conns: Vec<Conn> = match (0..args.connections)
        .map(|_| Conn::new(&addr, args.timeout, tls.as_ref(), &bearer))
        .collect::<anyhow::Result<_>>()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("aula load: {e:#}");
            return ExitCode::from(2);
        }
    };
    let targets: Vec<String> = mix
        .targets()
        .into_iter()
        .map(|t| format!("{} {}", t.name(), addr(t)))
        .collect();
    eprintln!(
        "aula load: {} RPCs, {}, concurrency {}, warm-up {}s, duration {}s; {}",
        mix.weights().len(),
        args.rate
            .map_or("flat out".to_string(), |r| format!("{r} req/s open loop")),
        args.concurrency,
        args.warmup.as_secs_f64(),
        args.duration.as_secs_f64(),
        targets.join(", ")
    );
    if let Err(e) = all_answer(&mix.targets(), &addr, tls.as_ref()).await {
        eprintln!("aula load: {e:#}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = token_suffices(&mix, &conns[0], bearer.is_some()).await {
        eprintln!("aula load: {e:#}");
        return ExitCode::FAILURE;
    }
    if let Some(pace) = args.rate.and_then(Schedule::new) {
        let planned = pace.due_within(args.duration);
        if planned < mix.cycle() as u64 {
            eprintln!(
                "aula load: only {planned} requests planned, fewer than one cycle of the mix \
                 ({}): some RPCs may not be called",
                mix.cycle()
            );
        }
    }

    let recorder = Arc::new(Recorder::new(mix.rpcs()));
    let measured = drive(&args, Arc::new(mix), conns, recorder.clone()).await;

    let summary = Summary::new(
        args.rate,
        args.concurrency as usize,
        args.warmup,
        measured,
        &recorder.snapshot(),
    );
    let json_to_stdout = args.json.as_deref() == Some(std::path::Path::new("-"));
    if json_to_stdout {
        eprint!("{}", summary.table());
    } else {
        print!("{}", summary.table());
    }
    let _ = std::io::stdout().flush();
    if let Some(path) = &args.json {
        let written = serde_json::to_vec_pretty(&summary)
            .map_err(anyhow::Error::from)
            .and_then(|json| {
                if json_to_stdout {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&json)?;
                    out.write_all(b"\n")?;
                    Ok(out.flush()?)
                } else {
                    Ok(std::fs::write(path, json)?)
                }
            });
        if let Err(e) = written {
            eprintln!("aula load: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let ratio = summary.error_ratio();
    if summary.total.count == 0 {
        eprintln!("aula load: no call completed in the measured time");
        ExitCode::FAILURE
    } else if ratio > args.max_error_ratio {
        eprintln!(
            "aula load: {:.2}% of the calls failed, above --max-error-ratio {}",
            ratio * 100.0,
            args.max_error_ratio
        );
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Checks that every service the mix calls answers health before any load is sent, so a
/// stack that is not running is one line at once rather than a table of failures.
/// Every target's health, asked over the same transport the load will use (mutual TLS when
/// `AULA_TLS_*` is set), so a stack that only speaks TLS is not reported down; the gateway's
/// `/readyz`, as `aula status` reads it.
async fn all_answer(
    targets: &[Target],
    addr: &dyn Fn(Target) -> String,
    tls: Option<&aula_runtime::tls::Tls>,
) -> anyhow::Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    let checks = targets.iter().map(|&t| {
        let url = addr(t);
        async move {
            let wait = Duration::from_secs(2);
            let answer = match spec::by_name(t.name()) {
                Some(spec) => {
                    aula_runtime::healthcheck::check_with(&url, spec.grpc_service, tls, wait).await
                }
                None => aula_runtime::healthcheck::readyz_status(&url, wait)
                    .await
                    .map(|code| match code {
                        200 => ServingStatus::Serving,
                        _ => ServingStatus::NotServing,
                    }),
            };
            (t.name(), url, answer)
        }
    });
    let down: Vec<String> = futures::future::join_all(checks)
        .await
        .into_iter()
        .filter_map(|(name, url, answer)| match answer {
            Ok(ServingStatus::Serving) => None,
            Ok(other) => Some(format!("{name} at {url} is {}", other.as_str_name())),
            // The error starts with the URL already.
            Err(e) => Some(format!("{name}: {e:#}")),
        })
        .collect();
    if down.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "{}; start the platform first (`aula up`, or `docker compose up`), or point \
         <NAME>_ADDR / --host / --port-offset at it",
        down.join("; ")
    )
}

/// How to get a token that can drive the whole mix, for the messages below.
const STAFF_TOKEN: &str = "--token \"$(aula token --user 1 --role staff)\"";

/// Checks, after health (which needs no token), that the token does for every service what the
/// mix will ask of it ([`Conn::probe`]): with auth on and no token, a bad one, or a student's
/// token on a mix acting on the load users, every call would fail for the whole run. Other
/// failures are left to the run, which counts them.
async fn token_suffices(mix: &Mix, conn: &Conn, token: bool) -> anyhow::Result<()> {
    let probes = mix.targets().into_iter().map(|t| {
        let on_users = mix.rpcs().any(|r| r.target() == t && r.acts_on_users());
        let mut conn = conn.clone();
        async move { (t, conn.probe(t, on_users).await) }
    });
    let results = futures::future::join_all(probes).await;
    let refused = |code: tonic::Code| {
        let hits: Vec<_> = results
            .iter()
            .filter_map(|(t, r)| match r {
                Err(s) if s.code() == code => Some((t.name(), s.message())),
                _ => None,
            })
            .collect();
        let names = hits.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
        hits.first().map(|(_, why)| (names, why.to_string()))
    };
    if let Some((names, why)) = refused(tonic::Code::Unauthenticated) {
        if !token {
            anyhow::bail!(
                "{names} require a user token (the platform runs with AULA_AUTH=jwt: {why}); \
                 pass one with --token or AULA_TOKEN, a staff token as the mix acts on other \
                 users: {STAFF_TOKEN}"
            );
        }
        anyhow::bail!("{names} refused the --token ({why}); pass a valid one, e.g. {STAFF_TOKEN}");
    }
    if let Some((names, why)) = refused(tonic::Code::PermissionDenied) {
        anyhow::bail!(
            "{names} refused the --token for the load's users {first}-{last} ({why}); the mix \
             acts on users other than the token's, which needs the staff role: {STAFF_TOKEN}",
            first = calls::FIRST_LOAD_USER,
            last = calls::FIRST_LOAD_USER + 999,
        );
    }
    Ok(())
}

/// Runs the warm-up and the measured phase; returns how long was measured (shorter than
/// `--duration` when interrupted by Ctrl-C).
async fn drive(
    args: &LoadArgs,
    mix: Arc<Mix>,
    conns: Vec<Conn>,
    recorder: Arc<Recorder>,
) -> Duration {
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let stop = Arc::new(AtomicBool::new(false));
    // The number of the next request: its slot in the mix and, at a rate, its due time.
    let next = Arc::new(AtomicU64::new(0));
    let pace = args.rate.and_then(Schedule::new);

    let mut workers = tokio::task::JoinSet::new();
    for w in 0..args.concurrency as usize {
        let mut conn = conns[w % conns.len()].clone();
        let (mix, recorder, next, stop) =
            (mix.clone(), recorder.clone(), next.clone(), stop.clone());
        let mut rng = StdRng::from_rng(&mut rand::rng());
        workers.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let picked_up = Instant::now();
                let (origin, due) = match pace {
                    Some(pace) => {
                        let due = start + pace.due(n);
                        if due >= end || stop.load(Ordering::Relaxed) {
                            return;
                        }
                        tokio::time::sleep_until(due).await;
                        let sent = Instant::now();
                        (
                            latency_origin(due.into_std(), picked_up.into_std(), sent.into_std()),
                            due,
                        )
                    }
                    None => {
                        if picked_up >= end || stop.load(Ordering::Relaxed) {
                            return;
                        }
                        (picked_up.into_std(), picked_up)
                    }
                };
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let rpc = mix.pick(n);
                let outcome = conn.call(rpc, &mut rng).await.map_err(|s| s.code());
                recorder.record(rpc, origin.elapsed(), outcome, due >= measure_from);
            }
        });
    }

    let progress = tokio::spawn(progress(
        recorder.clone(),
        start,
        measure_from,
        stop.clone(),
    ));
    let interrupted = tokio::select! {
        _ = async { while workers.join_next().await.is_some() {} } => false,
        _ = tokio::signal::ctrl_c() => true,
    };
    if interrupted {
        // Stop sending; let the calls in flight finish (each is bounded by --timeout).
        stop.store(true, Ordering::Relaxed);
        let stopped_at = Instant::now();
        while workers.join_next().await.is_some() {}
        stop_progress(&stop, progress).await;
        return stopped_at.min(end).saturating_duration_since(measure_from);
    }
    stop_progress(&stop, progress).await;
    args.duration
}

async fn stop_progress(stop: &AtomicBool, progress: tokio::task::JoinHandle<()>) {
    stop.store(true, Ordering::Relaxed);
    let _ = progress.await;
}

/// A line a second on stderr: one updating line on a terminal, plain lines otherwise (logs, CI).
async fn progress(
    recorder: Arc<Recorder>,
    start: Instant,
    measure_from: Instant,
    stop: Arc<AtomicBool>,
) {
    let tty = std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = start;
    let mut printed = false;
    while !stop.load(Ordering::Relaxed) {
        // Wake at least every 100 ms to notice the end promptly.
        let now = tokio::select! {
            now = tick.tick() => now,
            _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
        };
        // The line describes the second that just ended.
        let phase = if now <= measure_from { "warmup" } else { "run" };
        let line = progress_line(phase, now - start, now - last, &recorder.take_window());
        last = now;
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
        printed = true;
    }
    if tty && printed {
        eprintln!();
    }
}

/// `url` with its host replaced, keeping the scheme and port: `--host` for every service.
pub fn with_host(url: &str, host: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    // The port follows the last ':' unless that ':' is inside an IPv6 literal.
    let port = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => &authority[i..],
        _ => "",
    };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    format!("{scheme}://{host}{port}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    #[test]
    fn host_replaces_only_the_host() {
        assert_eq!(
            with_host("http://127.0.0.1:50051", "10.1.2.3"),
            "http://10.1.2.3:50051"
        );
        assert_eq!(
            with_host("http://cursos:50051", "localhost"),
            "http://localhost:50051"
        );
        assert_eq!(with_host("https://[::1]:50056/", "h"), "https://h:50056/");
        assert_eq!(with_host("http://midia:50056", "::1"), "http://[::1]:50056");
        assert_eq!(with_host("cpar:50053", "h"), "http://h:50053");
        assert_eq!(with_host("http://cpar", "h"), "http://h");
    }

    #[test]
    fn flags_and_defaults() {
        let a = Cli::parse_from(["x"]).load;
        assert_eq!(a.rate, None);
        assert_eq!(a.concurrency, 16);
        assert_eq!(a.duration, Duration::from_secs(30));
        assert_eq!(a.warmup, Duration::from_secs(5));
        assert_eq!(a.max_error_ratio, 0.01);
        assert!(a.only.is_empty() && a.json.is_none() && a.host.is_none());

        let a = Cli::parse_from([
            "x",
            "--rate",
            "250",
            "--duration",
            "2s",
            "--warmup",
            "500ms",
            "--only",
            "GetUserCourses,AskQuestion",
            "--concurrency",
            "4",
        ])
        .load;
        assert_eq!(a.rate, Some(250.0));
        assert_eq!(a.duration, Duration::from_secs(2));
        assert_eq!(a.warmup, Duration::from_millis(500));
        assert_eq!(a.only, ["GetUserCourses", "AskQuestion"]);
        assert_eq!(a.concurrency, 4);

        // The token is taken as given (checked by `Bearer::new`) and never shown by Debug.
        let a = Cli::parse_from(["x", "--token", "eyJh.secret-part.sig"]).load;
        assert_eq!(a.token.as_ref().unwrap().0, "eyJh.secret-part.sig");
        assert!(!format!("{a:?}").contains("secret-part"), "{a:?}");

        for bad in [
            &["x", "--rate", "0"][..],
            &["x", "--rate", "fast"],
            &["x", "--duration", "soon"],
            &["x", "--concurrency", "0"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
