//! The overload benchmark's probe (scripts/bench-limits.sh): `GetUserCourses` for user "1" at
//! a fixed, light rate over one connection, open loop, for a while; prints a JSON summary.
//!
//! h2load generates the load itself (it is far cheaper per request than anything in Rust we
//! have), but it cannot tell a served call from a refused one: both are HTTP 200, the gRPC
//! status is in the trailers, which it does not read. So the latency of the *admitted* calls
//! comes from this probe, running next to h2load: the same probe, at the same rate, at half
//! load and at three times the maximum, so the two p99s compare like with like. Its latency
//! counts from each call's due time (a late probe counts its lateness against the server, not
//! in its favour).
//!
//! `overload_probe --url http://127.0.0.1:51051 --rate 200 --seconds 10`

use aula_api::{cursos_service_client::CursosServiceClient, GetUserCoursesRequest};
use std::time::{Duration, Instant};
use tonic::Code;

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
    a
}

/// One call's outcome: its latency from its due time, and its code.
type Outcome = (Duration, Code);

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = args();
    let channel = tonic::transport::Endpoint::from_shared(a.url.clone())
        .expect("a valid URL")
        .tcp_nodelay(true)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", a.url));
    let client = CursosServiceClient::new(channel);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Outcome>();
    let period = Duration::from_secs(1) / a.rate;
    let total = a.rate as u64 * a.seconds;
    let start = tokio::time::Instant::now();
    for i in 0..total {
        let due = start + period * i as u32;
        tokio::time::sleep_until(due).await;
        let (mut client, tx) = (client.clone(), tx.clone());
        let due: Instant = due.into_std();
        tokio::spawn(async move {
            let mut request = tonic::Request::new(GetUserCoursesRequest {
                id_usuario: "1".into(),
            });
            request.set_timeout(Duration::from_secs(5));
            let code = match client.get_user_courses(request).await {
                Ok(_) => Code::Ok,
                Err(status) => status.code(),
            };
            let _ = tx.send((due.elapsed(), code));
        });
    }
    drop(tx);
    let (mut ok, mut refused, mut other) = (Vec::new(), 0u64, 0u64);
    while let Some((latency, code)) = rx.recv().await {
        match code {
            Code::Ok => ok.push(latency),
            Code::ResourceExhausted => refused += 1,
            _ => other += 1,
        }
    }
    ok.sort();
    let ms = |q: f64| -> f64 {
        if ok.is_empty() {
            return 0.0;
        }
        let i = ((ok.len() as f64 * q).ceil() as usize).clamp(1, ok.len()) - 1;
        ok[i].as_secs_f64() * 1000.0
    };
    println!(
        "{}",
        serde_json::json!({
            "sent": total,
            "ok": ok.len(),
            "refused": refused,
            "errors": other,
            "p50_ms": ms(0.50),
            "p99_ms": ms(0.99),
            "max_ms": ms(1.0),
        })
    );
}
