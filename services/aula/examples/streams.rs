//! Many open `SubscribeNotifications` streams on one notificacoes, and the delay from
//! `SendNotification` to delivery on them (scripts/bench.sh `streams`, #14).
//!
//! Opens `--streams` streams over connections of `--per-connection` streams each (under the
//! server's `AULA_HTTP2_MAX_CONCURRENT_STREAMS`), `--per-user` streams per user (under
//! `NOTIFICACOES_STREAMS_PER_USER`), then sends `--notifications` notifications at `--rate` to
//! random subscribed users and measures each delivery's delay on every stream of that user.
//! A subscription refused with RESOURCE_EXHAUSTED is asked again after the server's pushback (at
//! most 5 times), as a well-behaved client would.
//! Prints a JSON summary (also to `--json`): streams open and refused, deliveries expected and
//! seen, and the delay's p50/p99/max.
//!
//! ```text
//! cargo run --release -p aula --example streams -- --addr http://127.0.0.1:50054 --streams 10000
//! ```

use aula_api::{
    notificacoes_service_client::NotificacoesServiceClient, SendNotificationRequest,
    SubscribeNotificationsRequest,
};
use clap::Parser;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use rand::Rng as _;
use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};
use tonic::transport::{Channel, Endpoint};

#[derive(Parser)]
struct Args {
    /// notificacoes
    #[arg(long, default_value = "http://127.0.0.1:50054")]
    addr: String,
    /// Streams to open
    #[arg(long, default_value_t = 10_000)]
    streams: usize,
    /// Streams per HTTP/2 connection
    #[arg(long, default_value_t = 200)]
    per_connection: usize,
    /// Streams per user
    #[arg(long, default_value_t = 4)]
    per_user: usize,
    /// First user id
    #[arg(long, default_value_t = 1_000_000)]
    first_user: u64,
    /// Notifications to send once the streams are open
    #[arg(long, default_value_t = 200)]
    notifications: usize,
    /// Notifications per second
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// How long to wait with all streams open before sending (RSS is sampled meanwhile)
    #[arg(long, default_value = "3", value_parser = secs)]
    hold: Duration,
    /// Write the summary here too
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Times a refused subscription is asked again.
const RETRIES: u32 = 5;

/// The wait a refusal asks for (`grpc-retry-pushback-ms`), 1 s if it names none.
fn pushback(status: &tonic::Status) -> Duration {
    let ms = status
        .metadata()
        .get("grpc-retry-pushback-ms")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(1000);
    Duration::from_millis(ms)
}

fn secs(s: &str) -> Result<Duration, String> {
    s.trim_end_matches('s')
        .parse::<f64>()
        .map(Duration::from_secs_f64)
        .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let start = Instant::now();
    let delays = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
    ));
    let delivered = Arc::new(AtomicU64::new(0));
    let mut refused: BTreeMap<String, u64> = BTreeMap::new();
    let retried = Arc::new(AtomicU64::new(0));

    // Open the streams, a connection per `per_connection`, many at a time.
    let channels: Vec<Channel> = (0..args.streams.div_ceil(args.per_connection))
        .map(|_| Endpoint::from_shared(args.addr.clone()).map(|e| e.connect_lazy()))
        .collect::<Result<_, _>>()?;
    let opened = futures::stream::iter(0..args.streams)
        .map(|i| {
            let channel = channels[i / args.per_connection].clone();
            let user = args.first_user + (i / args.per_user) as u64;
            let retried = retried.clone();
            async move {
                let mut client = NotificacoesServiceClient::new(channel);
                // As a client that honours the server's pushback: a subscription shed while
                // the burst queues (AULA_MAX_QUEUED) is asked again after the time it names,
                // at most RETRIES times; only what is still refused then counts as refused.
                let mut attempt = 0;
                loop {
                    let r = client
                        .subscribe_notifications(SubscribeNotificationsRequest {
                            id_usuario: user.to_string(),
                        })
                        .await;
                    match r {
                        Err(status)
                            if status.code() == tonic::Code::ResourceExhausted
                                && attempt < RETRIES =>
                        {
                            attempt += 1;
                            retried.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(pushback(&status)).await;
                        }
                        r => break r.map(|r| r.into_inner()),
                    }
                }
            }
        })
        .buffer_unordered(512)
        .collect::<Vec<_>>()
        .await;
    let mut open = 0usize;
    for r in opened {
        match r {
            Ok(mut stream) => {
                open += 1;
                let (delays, delivered) = (delays.clone(), delivered.clone());
                tokio::spawn(async move {
                    while let Ok(Some(n)) = stream.message().await {
                        let Some(sent_us) = n
                            .message
                            .strip_prefix("bench ")
                            .and_then(|t| t.parse::<u64>().ok())
                        else {
                            continue;
                        };
                        let now_us = start.elapsed().as_micros() as u64;
                        delays
                            .lock()
                            .expect("not poisoned")
                            .saturating_record(now_us.saturating_sub(sent_us).max(1));
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            Err(status) => *refused.entry(format!("{:?}", status.code())).or_default() += 1,
        }
    }
    let opened_in = start.elapsed();
    eprintln!(
        "streams: {open} open in {opened_in:?}, refused {refused:?} (after {} retries); holding {:?}",
        retried.load(Ordering::Relaxed),
        args.hold
    );
    tokio::time::sleep(args.hold).await;

    // Send to random users that have streams; each notification reaches all of that user's.
    let users = args.streams.div_ceil(args.per_user) as u64;
    let mut sender =
        NotificacoesServiceClient::new(Endpoint::from_shared(args.addr.clone())?.connect_lazy());
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate.max(0.001)));
    let (mut expected, mut send_errors) = (0u64, 0u64);
    for k in 0..args.notifications {
        tick.tick().await;
        let index = rand::rng().random_range(0..users);
        let user = args.first_user + index;
        let streams_of_user =
            (args.streams as u64 - index * args.per_user as u64).min(args.per_user as u64);
        let sent_us = start.elapsed().as_micros() as u64;
        match sender
            .send_notification(SendNotificationRequest {
                id_usuario: user.to_string(),
                message: format!("bench {sent_us}"),
                origem: "cursos".into(),
                chave_idempotencia: format!("bench-{}-{k}", start.elapsed().as_nanos()),
            })
            .await
        {
            Ok(_) => expected += streams_of_user,
            Err(_) => send_errors += 1,
        }
    }
    // Let the last deliveries arrive.
    let deadline = Instant::now() + Duration::from_secs(10);
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let h = delays.lock().expect("not poisoned").clone();
    let ms = |us: u64| us as f64 / 1000.0;
    let summary = serde_json::json!({
        "streams_requested": args.streams,
        "streams_open": open,
        "streams_refused": refused,
        "subscriptions_retried": retried.load(Ordering::Relaxed),
        "open_seconds": opened_in.as_secs_f64(),
        "notifications_sent": args.notifications as u64 - send_errors,
        "send_errors": send_errors,
        "deliveries_expected": expected,
        "deliveries_seen": delivered.load(Ordering::Relaxed),
        "delay_ms": {
            "p50": ms(h.value_at_quantile(0.5)),
            "p99": ms(h.value_at_quantile(0.99)),
            "max": ms(h.max()),
        },
    });
    let text = serde_json::to_string_pretty(&summary)?;
    println!("{text}");
    if let Some(path) = args.json {
        std::fs::write(path, text)?;
    }
    Ok(())
}
