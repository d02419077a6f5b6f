//! The property the runtime serves its own connections for: under a burst of calls that keep
//! the server's one thread busy, the in-flight limit counts calls from their arrival, so the
//! calls beyond it are refused within milliseconds and the admitted ones wait only behind
//! the few admitted before them. Under tonic's `Server` the same burst was refused nothing:
//! every call was spawned, then admitted one after another as each finished, the last after
//! the whole burst's work (BENCHMARKS.md, "Overload").
//!
//! And the same with an in-flight limit the burst does not reach (one sized for calls that
//! wait on peers): the bound on calls waiting for the CPU (`AULA_MAX_QUEUED`) refuses the rest.
//! And a light client's call is served ahead of a heavy client's queue (`AULA_MAX_RUNNABLE`).

use super::serve;
use crate::{
    limits::Limits,
    metrics::{Metrics, Side},
    observe::MethodTable,
    shed::ShedLayer,
};
use bytes::Bytes;
use std::time::{Duration, Instant};
use tonic::Code;

/// How long one admitted call holds the server's only thread: CPU work, as far as every
/// other task on that thread can tell.
const WORK: Duration = Duration::from_millis(5);
const LIMIT: usize = 4;
const BURST: usize = 100;

/// A unary gRPC answer: an empty message (any message type decodes it) and status OK.
fn ok_answer() -> http::Response<tonic::body::Body> {
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let frames = futures::stream::iter([
        Ok::<_, tonic::Status>(http_body::Frame::data(Bytes::from_static(&[0; 5]))),
        Ok(http_body::Frame::trailers(trailers)),
    ]);
    http::Response::builder()
        .header("content-type", "application/grpc")
        .body(tonic::body::Body::new(http_body_util::StreamBody::new(
            frames,
        )))
        .unwrap()
}

/// The server on a thread and a one-thread runtime of its own (one core, as in production
/// under `taskset`), with these `AULA_MAX_IN_FLIGHT` and `AULA_MAX_QUEUED`; its address, and
/// a sender that stops it.
fn start_server(
    max_in_flight: usize,
    max_queued: usize,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    start_server_with(Limits {
        max_in_flight,
        max_queued,
        ..Limits::default()
    })
}

fn start_server_with(limits: Limits) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        // As often as production's runtime asks which sockets are ready (cli::runtime).
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .event_interval(crate::cli::EVENT_INTERVAL)
            .build()
            .unwrap();
        rt.block_on(async move {
            let metrics = Metrics::new();
            let methods = MethodTable::new(&metrics, Side::Server, &[]);
            let handler = tower::service_fn(|_req: http::Request<tonic::body::Body>| async {
                std::thread::sleep(WORK);
                Ok::<_, std::convert::Infallible>(ok_answer())
            });
            let stack = tower::ServiceBuilder::new()
                .layer(ShedLayer::new(&metrics, "cursos", &limits, methods))
                .service(handler);
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let shutdown = async {
                let _ = stopped.await;
            };
            serve(
                incoming,
                stack,
                limits.http2(),
                limits.max_connection_age,
                shutdown,
            )
            .await;
        });
    });
    (addr, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_in_flight_limit_is_refused_at_arrival_and_admitted_calls_stay_fast() {
    burst_is_refused_beyond(start_server(LIMIT, usize::MAX)).await;
}

/// Without the queue's bound, all BURST calls are admitted (the in-flight limit is above the
/// burst) and the last is served after the whole burst's work, ~500 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_calls_waiting_for_the_cpu_is_refused_below_the_in_flight_limit() {
    burst_is_refused_beyond(start_server(BURST * 2, LIMIT)).await;
}

/// A light client's call starts ahead of a heavy client's queued calls (starts.rs): with 40
/// calls of WORK queued on one connection (200 ms of the server's thread), a call from another
/// connection is served after a few calls' work, not after the queue's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_clients_call_is_served_ahead_of_a_heavy_clients_queue() {
    let (addr, stop) = start_server_with(Limits {
        max_in_flight: BURST,
        max_queued: BURST,
        max_runnable: 2,
        ..Limits::default()
    });
    let (heavy, light) = (connect(addr).await, connect(addr).await);
    for c in [&heavy, &light] {
        c.clone()
            .get_status(aula_api::Empty {})
            .await
            .expect("a lone call is served");
    }
    let queue = (0..40).map(|_| {
        let mut c = heavy.clone();
        async move {
            c.get_status(aula_api::Empty {})
                .await
                .expect("a heavy call is served");
            Instant::now()
        }
    });
    let queue = tokio::spawn(futures::future::join_all(queue));
    // A few of the heavy calls served, the rest queued.
    tokio::time::sleep(WORK * 4).await;
    let sent = Instant::now();
    light
        .clone()
        .get_status(aula_api::Empty {})
        .await
        .expect("the light call is served");
    let light_took = sent.elapsed();
    let heavy_last = queue.await.unwrap().into_iter().max().unwrap();
    let _ = stop.send(());
    // Behind the queue it would have waited for ~36 calls' work (~180 ms); ahead of it, for
    // the calls already runnable (2) and the one running.
    assert!(
        light_took < WORK * 12,
        "the light call took {light_took:?}: it waited behind the heavy client's queue"
    );
    assert!(
        heavy_last > sent + light_took + WORK * 10,
        "the heavy queue was served before the light call ({:?} after it was sent)",
        heavy_last - sent
    );
}

/// A burst of BURST calls at a server bounded to about LIMIT calls: most refused at once, the
/// admitted ones served within a few calls' work.
async fn burst_is_refused_beyond(
    (addr, stop): (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>),
) {
    let client = connect(addr).await;
    // The connection is up and serving before the burst.
    client
        .clone()
        .get_status(aula_api::Empty {})
        .await
        .expect("a lone call is served");

    let calls = (0..BURST).map(|_| {
        let mut c = client.clone();
        async move {
            let sent = Instant::now();
            let answer = c.get_status(aula_api::Empty {}).await;
            (answer.map(|_| ()).map_err(|s| s.code()), sent.elapsed())
        }
    });
    let answers = futures::future::join_all(calls).await;
    let _ = stop.send(());

    let (mut served, mut refused) = (vec![], vec![]);
    for (answer, took) in answers {
        match answer {
            Ok(()) => served.push(took),
            Err(Code::ResourceExhausted) => refused.push(took),
            Err(other) => panic!("a call failed with {other:?} after {took:?}"),
        }
    }
    let slowest = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();
    // Serving the whole burst takes BURST x WORK = 500 ms of the server's thread: calls
    // admitted one after another as each finishes (tonic's `Server`), or all admitted at once
    // (no bound below the burst), are all served, the last after ~500 ms. Counted at arrival,
    // at most LIMIT are admitted or waiting at a time and each waits for at most
    // LIMIT x WORK = 20 ms; the bounds leave room for a busy machine.
    assert!(
        refused.len() >= BURST / 2,
        "only {} of {BURST} refused (served {}, the slowest after {:?})",
        refused.len(),
        served.len(),
        slowest(&served)
    );
    assert!(!served.is_empty(), "nothing served");
    let bound = WORK * 30;
    assert!(
        slowest(&refused) < bound,
        "a refusal took {:?}",
        slowest(&refused)
    );
    assert!(
        slowest(&served) < bound,
        "an admitted call took {:?} ({} served)",
        slowest(&served),
        served.len()
    );
}

/// A client on a connection of its own.
async fn connect(
    addr: std::net::SocketAddr,
) -> aula_api::cursos_service_client::CursosServiceClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    aula_api::cursos_service_client::CursosServiceClient::new(channel)
}
