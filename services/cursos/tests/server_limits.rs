//! The limits every service's server enforces (#14), tried on cursos: an oversized message is
//! refused with RESOURCE_EXHAUSTED and the service keeps serving; the HTTP/2 stream limit is
//! advertised in SETTINGS; at the in-flight limit further calls are shed at once while health
//! checks still answer; reflection can be switched off.

mod common;

use aula_api::{AskQuestionRequest, Empty};
use aula_runtime::testing::closed_within;
use common::*;
use std::time::{Duration, Instant};
use tonic::Code;

fn question(duvida: &str) -> AskQuestionRequest {
    AskQuestionRequest {
        id_curso: "1".into(),
        aula_contexto: String::new(),
        duvida: duvida.into(),
        id_usuario: String::new(),
    }
}

/// A 5 MiB request (over the 4 MiB default) is RESOURCE_EXHAUSTED naming the limit and the
/// variable; the service answers the next call as usual.
#[tokio::test]
async fn a_5_mib_message_is_refused_and_the_service_stays_up() {
    let (_dir, svc, mut client) = cursos_alone().await;
    let mut big = question("x");
    big.aula_contexto = "a".repeat(5 << 20);
    let status = client.ask_question(big).await.refusal();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("4194304") && status.message().contains("AULA_MAX_MESSAGE_SIZE"),
        "the message names the limit: {}",
        status.message()
    );
    svc.assert_serving().await;
    client
        .get_status(Empty {})
        .await
        .expect("the next call is served");
    svc.running.stop().await.unwrap();
}

/// A raw HTTP/2 client reads SETTINGS_MAX_CONCURRENT_STREAMS from the server's preface.
#[tokio::test]
async fn the_stream_limit_is_advertised_in_settings() {
    let (_dir, svc, _) = cursos_with(&[("AULA_HTTP2_MAX_CONCURRENT_STREAMS", "37")]).await;
    let tcp = svc.tcp().await;
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    // The server's SETTINGS arrive with its preface, read by the connection task; until then
    // the limit reads as unbounded.
    let deadline = Instant::now() + Duration::from_secs(5);
    while send.current_max_send_streams() != 37 {
        assert!(
            Instant::now() < deadline,
            "the server advertised {} streams, not 37",
            send.current_max_send_streams()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    svc.running.stop().await.unwrap();
}

/// With two calls in flight (the limit), a third is RESOURCE_EXHAUSTED within milliseconds
/// with a retry hint, while health still answers SERVING; once they finish, calls are served.
#[tokio::test]
async fn at_the_in_flight_limit_calls_are_shed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // Long enough that the shed call surely comes while both are held, on a slow CI too.
    let bot = slow_chatbot(Duration::from_secs(3));
    let (svc, client) = cursos_asking(dir.path(), &bot, &[("AULA_MAX_IN_FLIGHT", "2")]).await;
    let slow: Vec<_> = (0..2)
        .map(|i| {
            let mut c = client.clone();
            tokio::spawn(async move { c.ask_question(question(&format!("q{i}"))).await })
        })
        .collect();
    // Both are held at the chatbot.
    eventually(SETTLE, "two questions at the chatbot", || async {
        (bot.deadlines.lock().unwrap().len() == 2).then_some(())
    })
    .await;

    let started = Instant::now();
    let status = client.clone().get_status(Empty {}).await.expect_err("shed");
    let took = started.elapsed();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("AULA_MAX_IN_FLIGHT"),
        "{status:?}"
    );
    assert_eq!(
        status.metadata().get("grpc-retry-pushback-ms").unwrap(),
        "1000"
    );
    assert!(took < Duration::from_millis(500), "shed after {took:?}");
    svc.assert_serving().await;

    for call in slow {
        call.await.unwrap().expect("admitted calls are answered");
    }
    client
        .clone()
        .get_status(Empty {})
        .await
        .expect("served again");
    let metrics = svc.metrics_text().await;
    assert!(
        metrics.contains("aula_shed_total{reason=\"in_flight\"} 1"),
        "{metrics}"
    );
    // Refused before the observing layer, yet counted where error ratios look.
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("grpc_server_handled_total{")
                && l.contains("grpc_method=\"GetStatus\"")
                && l.contains("grpc_code=\"ResourceExhausted\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
    svc.running.stop().await.unwrap();
}

/// `AULA_REFLECTION=off`: reflection is not served; health still is.
#[tokio::test]
async fn reflection_can_be_switched_off() {
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, ServerReflectionRequest,
    };
    let ask = || {
        tokio_stream::iter([ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        }])
    };
    let dir = tempfile::tempdir().unwrap();
    let (on, _) = start_cursos(&dir.path().join("on"), &[]).await;
    let mut stream = ServerReflectionClient::new(on.channel())
        .server_reflection_info(ask())
        .await
        .expect("reflection is on by default")
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());
    on.running.stop().await.unwrap();

    let (off, _) = start_cursos(
        &dir.path().join("off"),
        &vars(&[("AULA_REFLECTION", "off")]),
    )
    .await;
    let status = ServerReflectionClient::new(off.channel())
        .server_reflection_info(ask())
        .await
        .expect_err("no reflection");
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    off.assert_serving().await;
    off.running.stop().await.unwrap();
}

/// A socket that connects and sends nothing, or half the HTTP/2 preface, is closed after
/// `AULA_HTTP2_PREFACE_TIMEOUT`; a real client is served meanwhile.
#[tokio::test]
async fn connections_that_never_start_http2_are_closed() {
    use tokio::io::AsyncWriteExt as _;
    let (_dir, svc, mut client) = cursos_with(&[("AULA_HTTP2_PREFACE_TIMEOUT", "300ms")]).await;
    let mut held = Vec::new();
    for i in 0..20 {
        let mut tcp = svc.tcp().await;
        if i % 2 == 0 {
            tcp.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
        }
        held.push(tcp);
    }
    client
        .get_status(Empty {})
        .await
        .expect("a real client is served");
    let started = Instant::now();
    for mut tcp in held {
        let closed = closed_within(&mut tcp, Duration::from_secs(5)).await;
        assert!(closed, "a silent connection is still open");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    svc.running.stop().await.unwrap();
}

/// With `AULA_MAX_CONNECTIONS=2` held by two silent sockets, a third client waits; once the
/// preface timeout closes them, it is served.
#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let cap = ("AULA_MAX_CONNECTIONS", "2");
    let (_dir, svc, mut client) = cursos_with(&[cap, ("AULA_HTTP2_PREFACE_TIMEOUT", "3s")]).await;
    let _a = svc.tcp().await;
    let _b = svc.tcp().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut quick = tonic::Request::new(Empty {});
    quick.set_timeout(Duration::from_millis(500));
    let status = client
        .get_status(quick)
        .await
        .expect_err("no slot for a third connection yet");
    assert!(
        matches!(
            status.code(),
            Code::DeadlineExceeded | Code::Unavailable | Code::Cancelled
        ),
        "{status:?}"
    );
    let mut patient = tonic::Request::new(Empty {});
    patient.set_timeout(Duration::from_secs(10));
    let started = Instant::now();
    client
        .get_status(patient)
        .await
        .expect("served once the silent ones were closed");
    assert!(started.elapsed() < Duration::from_secs(8));
    let metrics = svc.metrics_text().await;
    assert!(metrics.contains("aula_grpc_connections_open"), "{metrics}");
    svc.running.stop().await.unwrap();
}

/// One HTTP/2 frame as read off the wire: type, flags, and when it arrived.
#[derive(Debug, Clone, Copy)]
struct Frame {
    kind: u8,
    flags: u8,
    at: Duration,
}

const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const SETTINGS: u8 = 0x4;

/// A raw HTTP/2 client that opens no stream: it sends the preface and empty SETTINGS, acks
/// the server's SETTINGS and, when `pong`, its PINGs, and reads frames until the server closes
/// the connection or `limit` passes. Returns the frames and when the connection closed.
async fn idle_client(
    addr: std::net::SocketAddr,
    pong: bool,
    limit: Duration,
) -> (Vec<Frame>, Option<Duration>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let started = Instant::now();
    let (mut frames, mut buf, mut chunk) = (Vec::new(), Vec::new(), [0u8; 4096]);
    loop {
        let left = limit.saturating_sub(started.elapsed());
        let n = match tokio::time::timeout(left, tcp.read(&mut chunk)).await {
            Err(_) => return (frames, None),
            Ok(Ok(0) | Err(_)) => return (frames, Some(started.elapsed())),
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        while buf.len() >= 9 {
            let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
            if buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (buf[3], buf[4]);
            let reply: Option<Vec<u8>> = match kind {
                SETTINGS if flags & 1 == 0 => Some(b"\0\0\0\x04\x01\0\0\0\0".to_vec()),
                PING if flags & 1 == 0 && pong => {
                    let mut ack = b"\0\0\x08\x06\x01\0\0\0\0".to_vec();
                    ack.extend_from_slice(&buf[9..17]);
                    Some(ack)
                }
                _ => None,
            };
            if let Some(reply) = reply {
                // The server may have closed already; the read says so next.
                let _ = tcp.write_all(&reply).await;
            }
            frames.push(Frame {
                kind,
                flags,
                at: started.elapsed(),
            });
            buf.drain(..9 + len);
        }
    }
}

/// HTTP/2 keepalive (`AULA_HTTP2_KEEPALIVE_INTERVAL`, `AULA_HTTP2_KEEPALIVE_TIMEOUT`): an idle
/// connection whose peer stops answering PINGs is closed within interval + timeout; one that
/// answers stays open.
#[tokio::test]
async fn keepalive_closes_an_idle_connection_whose_peer_does_not_answer() {
    let interval = ("AULA_HTTP2_KEEPALIVE_INTERVAL", "200ms");
    let timeout = ("AULA_HTTP2_KEEPALIVE_TIMEOUT", "200ms");
    let (_dir, svc, mut client) = cursos_with(&[interval, timeout]).await;
    let addr = svc.running.addr;
    let (silent, answering) = tokio::join!(
        idle_client(addr, false, Duration::from_secs(5)),
        idle_client(addr, true, Duration::from_millis(1500)),
    );
    let (frames, closed) = silent;
    let closed = closed.expect("the silent peer's connection is closed");
    assert!(
        frames.iter().any(|f| f.kind == PING && f.flags & 1 == 0),
        "the server pinged: {frames:?}"
    );
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
    let (frames, closed) = answering;
    assert_eq!(closed, None, "a peer answering PINGs keeps its connection");
    assert!(
        frames.iter().filter(|f| f.kind == PING).count() >= 3,
        "pinged every 200 ms: {frames:?}"
    );
    client.get_status(Empty {}).await.expect("still serving");
    svc.running.stop().await.unwrap();
}

/// `AULA_MAX_CONNECTION_AGE`: an idle connection gets GOAWAY at its age and is closed then,
/// well before the grace runs out (tonic's own grace would cut it at age + grace with no
/// GOAWAY at all).
#[tokio::test]
async fn an_idle_connection_gets_goaway_at_its_age() {
    let age = ("AULA_MAX_CONNECTION_AGE", "300ms");
    let (_dir, svc, _) = cursos_with(&[age, ("AULA_MAX_CONNECTION_AGE_GRACE", "10s")]).await;
    let (frames, closed) = idle_client(svc.running.addr, true, Duration::from_secs(8)).await;
    let goaway = frames
        .iter()
        .find(|f| f.kind == GOAWAY)
        .unwrap_or_else(|| panic!("no GOAWAY: {frames:?}"));
    assert!(goaway.at >= Duration::from_millis(250), "{goaway:?}");
    let closed = closed.expect("closed after the GOAWAY");
    assert!(closed < Duration::from_secs(5), "closed after {closed:?}");
    svc.running.stop().await.unwrap();
}

/// `AULA_MAX_CONNECTION_AGE_GRACE`: a call still open on an aged connection (here a request
/// whose body never ends) runs through the grace, then the connection is closed anyway.
#[tokio::test]
async fn a_call_outliving_the_grace_is_cut_with_its_connection() {
    let age = ("AULA_MAX_CONNECTION_AGE", "300ms");
    let grace = ("AULA_MAX_CONNECTION_AGE_GRACE", "700ms");
    let (_dir, svc, mut client) = cursos_with(&[age, grace]).await;
    let tcp = svc.tcp().await;
    let started = Instant::now();
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(async move {
        let r = connection.await;
        (r, started.elapsed())
    });
    let mut send = send.ready().await.unwrap();
    let request = tonic::codegen::http::Request::post(format!(
        "http://{}/services.CursosService/GetStatus",
        svc.running.addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    // The body is never finished: the call stays open until the connection goes.
    let (response, _body) = send.send_request(request, false).unwrap();
    let (result, closed) = tokio::time::timeout(Duration::from_secs(8), connection)
        .await
        .expect("closed within the grace and some")
        .unwrap();
    assert!(
        closed >= Duration::from_millis(900),
        "the open call had its grace: closed after {closed:?} ({result:?})"
    );
    assert!(response.await.is_err(), "the call was cut");
    client.get_status(Empty {}).await.expect("still serving");
    svc.running.stop().await.unwrap();
}
