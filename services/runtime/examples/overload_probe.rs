//! The overload benchmark's probe (scripts/bench-limits.sh): `GetUserCourses` for user "1" at
//! a fixed, light rate over one connection, open loop, for a while; prints a JSON summary.
//!
//! h2load generates the load itself (it is far cheaper per request than anything in Rust we
//! have), but it cannot tell a served call from a refused one: both are HTTP 200, the gRPC
//! status is in the trailers, which it does not read. So the latency of the *admitted* calls
//! comes from this probe, running next to h2load: the same probe, at the same rate, at half
//! load and at three times the maximum, so the two p99s compare like with like. Its latency
//! counts from each call's due time (a late probe counts its lateness against the server, not
//! in its favour). The schedule and the calls are the `openloop` generator's
//! (openloop/generator/), with no warm-up and nothing dropped.
//!
//! `overload_probe --url http://127.0.0.1:51051 --rate 200 --seconds 10`

// The probe uses a part of the generator (gRPC on one connection, not HTTP/1.1 GETs).
#[allow(dead_code)]
#[path = "openloop/generator/mod.rs"]
mod generator;

use aula_api::GetUserCoursesRequest;
use generator::{Call, Plan, Protocol, Schedule};
use prost::Message as _;
use std::time::Duration;

struct Args {
    url: String,
    rate: u32,
    seconds: u64,
}

fn args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:50051".into(),
        rate: 200,
        seconds: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value,
            "--rate" => a.rate = value.parse().expect("--rate: calls per second"),
            "--seconds" => a.seconds = value.parse().expect("--seconds: a whole number"),
            other => panic!("unknown flag {other} (--url, --rate, --seconds)"),
        }
    }
    assert!(a.rate > 0, "--rate must be at least 1");
    assert!(a.seconds > 0, "--seconds must be at least 1");
    a
}

fn main() {
    let a = args();
    let url: http::Uri = format!(
        "{}/services.CursosService/GetUserCourses",
        a.url.trim_end_matches('/')
    )
    .parse()
    .expect("a valid URL");
    let message = GetUserCoursesRequest {
        id_usuario: "1".into(),
    }
    .encode_to_vec();
    let timeout = Duration::from_secs(5);
    let plan = Plan {
        call: Call::grpc(&url, &message, timeout),
        url,
        protocol: Protocol::Http2,
        connections: 1,
        schedule: Schedule::new(
            a.rate.into(),
            Duration::ZERO,
            Duration::from_secs(a.seconds),
        )
        .expect("a positive rate and duration"),
        max_outstanding: usize::MAX,
        drain: timeout,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let r = runtime
        .block_on(generator::run(plan))
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", a.url));
    let refused = r.errors.get("ResourceExhausted").copied().unwrap_or(0);
    println!(
        "{}",
        serde_json::json!({
            "sent": r.scheduled,
            "ok": r.ok,
            "refused": refused,
            // Every other failure, and the calls still unanswered after the timeout.
            "errors": r.error_count() - refused + r.unfinished,
            "p50_ms": r.p50_ms,
            "p99_ms": r.p99_ms,
            "max_ms": r.max_ms,
        })
    );
    eprintln!("overload_probe: {}", r.line());
}
