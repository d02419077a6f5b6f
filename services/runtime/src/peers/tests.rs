//! PeerChannel against real gRPC servers (the standard health service stands in for a peer),
//! a listener that never answers (a stalled process), one that accepts and closes, and a
//! closed port.

use super::*;
use crate::spec::MIDIA;
use std::{
    sync::atomic::AtomicU32,
    time::{Duration, Instant},
};
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

fn channel(addr: &str, timeout: Duration, m: &Metrics) -> PeerChannel {
    PeerChannel::new(&MIDIA, addr, timeout, Duration::from_secs(1), m).unwrap()
}

/// A real gRPC server (health) on an ephemeral port; stops when the token is cancelled.
async fn health_server(listener: tokio::net::TcpListener) -> tokio_util::sync::CancellationToken {
    let (_reporter, service) = tonic_health::server::health_reporter();
    let stop = tokio_util::sync::CancellationToken::new();
    let until = stop.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                until.cancelled_owned(),
            )
            .await
            .unwrap();
    });
    stop
}

async fn check(ch: &PeerChannel) -> Result<(), tonic::Status> {
    HealthClient::new(ch.clone())
        .check(HealthCheckRequest::default())
        .await
        .map(|_| ())
}

fn attempts(m: &Metrics) -> u64 {
    let text = m.render();
    text.lines()
        .find(|l| l.starts_with(r#"aula_peer_connect_attempts_total{peer="midia"}"#))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn bad_addresses_name_the_variable() {
    let m = Metrics::new();
    let err = PeerChannel::new(
        &MIDIA,
        "midia:50056",
        Duration::from_secs(1),
        Duration::from_secs(1),
        &m,
    )
    .err()
    .unwrap();
    assert!(err.to_string().starts_with("MIDIA_ADDR"), "{err}");
    assert!(PeerChannel::new(
        &MIDIA,
        "http://midia:x",
        Duration::from_secs(1),
        Duration::from_secs(1),
        &m
    )
    .is_err());
    let ok = channel("http://localhost:50056", Duration::from_secs(1), &m);
    assert_eq!(ok.peer(), "midia");
}

#[tokio::test]
async fn a_peer_that_is_down_is_unavailable_naming_it() {
    let m = Metrics::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let ch = channel(
        &format!("http://127.0.0.1:{port}"),
        Duration::from_secs(5),
        &m,
    );
    let mut client = aula_api::midia_conteudo_service_client::MidiaConteudoServiceClient::new(ch);
    let err = client.get_status(aula_api::Empty {}).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(err.message().contains("midia"), "{err:?}");
    let text = m.render();
    assert!(text.contains(r#"grpc_client_handled_total{grpc_type="unary",grpc_service="services.MidiaConteudoService",grpc_method="GetStatus",grpc_code="Unavailable"} 1"#), "{text}");
}

/// A stalled replica (its kernel accepts, the process never answers: SIGSTOP) costs the calls
/// sent to it their deadline, as DEADLINE_EXCEEDED naming the peer; neither replica is taken
/// out of rotation for it, and the healthy one keeps answering.
#[tokio::test]
async fn a_stalled_replica_is_deadline_exceeded_and_the_healthy_one_stays() {
    let m = Metrics::new();
    let healthy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let healthy_addr = healthy.local_addr().unwrap();
    let _stop = health_server(healthy).await;
    let stalled = std::net::TcpListener::bind("127.0.0.1:0").unwrap(); // never accepts
    let stalled_addr = stalled.local_addr().unwrap();

    let ch = channel("http://127.0.0.1:1", Duration::from_millis(300), &m);
    *ch.inner.replicas.write().unwrap() = vec![
        Arc::new(new_replica(&ch.inner, healthy_addr)),
        Arc::new(new_replica(&ch.inner, stalled_addr)),
    ];
    let (mut ok, mut late) = (0, 0);
    for _ in 0..30 {
        match check(&ch).await {
            Ok(()) => ok += 1,
            Err(e) => {
                assert_eq!(e.code(), tonic::Code::DeadlineExceeded, "{e:?}");
                assert!(e.message().starts_with("midia: "), "{e:?}");
                assert_eq!(ch.error(e).service(), "midia");
                late += 1;
            }
        }
    }
    assert!(
        ok > 0 && late > 0,
        "both replicas were called: {ok} ok, {late} late"
    );
    let replicas = ch.inner.replicas.read().unwrap().clone();
    assert!(
        replicas.iter().all(|r| !r.dial.failing()),
        "no replica marked down"
    );
    assert!(!ch.is_known_down());
    drop(stalled);
}

/// With the peer down, a caller calling flat out dials it a handful of times (once per backoff
/// period), not once per call; calls fail at once meanwhile; the peer is known down; calls
/// resume within a few seconds of the peer's return.
#[tokio::test]
async fn reconnects_to_a_down_peer_back_off_and_resume() {
    let m = Metrics::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ch = channel(
        &format!("http://127.0.0.1:{port}"),
        Duration::from_secs(2),
        &m,
    );
    assert!(!ch.is_known_down(), "nothing known before the first call");
    let started = Instant::now();
    let mut calls = 0;
    while started.elapsed() < Duration::from_secs(2) {
        let e = check(&ch).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
        assert!(e.message().starts_with("midia: unavailable"), "{e:?}");
        calls += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let dials = attempts(&m);
    // 250 ms doubling to 2 s: about 4 dials in 2 s; before the backoff, one per call.
    assert!(calls > 100, "{calls} calls");
    assert!((1..=8).contains(&dials), "{dials} dials for {calls} calls");
    assert!(ch.is_known_down());

    // The peer returns on the same port: calls succeed again within the backoff's cap.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let _stop = health_server(listener).await;
    let back = Instant::now();
    loop {
        if check(&ch).await.is_ok() {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "calls never resumed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        back.elapsed() < Duration::from_secs(4),
        "{:?}",
        back.elapsed()
    );
    assert!(!ch.is_known_down());
}

/// A listener that accepts and closes at once (a process starting up, not speaking HTTP/2)
/// is not dialed once per call either: counted where the connections arrive.
#[tokio::test]
async fn a_peer_that_accepts_and_closes_is_not_stormed() {
    let m = Metrics::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicU32::new(0));
    let count = accepted.clone();
    let acceptor = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::Relaxed);
            drop(tcp);
        }
    });
    let ch = channel(&format!("http://{addr}"), Duration::from_secs(2), &m);
    let started = Instant::now();
    let mut calls = 0;
    while started.elapsed() < Duration::from_secs(2) {
        let e = check(&ch).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
        calls += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let n = accepted.load(Ordering::Relaxed);
    assert!(calls > 100, "{calls} calls");
    assert!((1..=8).contains(&n), "{n} connections for {calls} calls");
    acceptor.abort();
}

/// A call gets its own budget (even beyond the default), or the default, and never more than
/// what is left of the call being served.
#[tokio::test]
async fn deadlines_follow_the_caller() {
    let default = Duration::from_secs(5);
    let mut own = http::HeaderMap::new();
    own.insert("grpc-timeout", "60S".parse().unwrap());
    assert_eq!(deadline_of(&own, default), Duration::from_secs(60));
    assert_eq!(deadline_of(&http::HeaderMap::new(), default), default);
    let in_call = crate::deadline::scope(Instant::now() + Duration::from_secs(2), async {
        (
            deadline_of(&own, default),
            deadline_of(&http::HeaderMap::new(), default),
        )
    })
    .await;
    assert!(in_call.0 < Duration::from_secs(2) && in_call.0 > Duration::from_secs(1));
    assert!(in_call.1 < Duration::from_secs(2));
}
