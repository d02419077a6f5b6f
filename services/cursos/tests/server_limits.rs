//! The limits every service's server enforces (#14), tried on cursos: an oversized message is
//! refused with RESOURCE_EXHAUSTED and the service keeps serving; the HTTP/2 stream limit is
//! advertised in SETTINGS; at the in-flight limit further calls are shed at once while health
//! checks still answer; reflection can be switched off.

mod common;

use aula_api::{AskQuestionRequest, Empty};
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
    let dir = tempfile::tempdir().unwrap();
    let (svc, mut client) = start_cursos(dir.path(), &[]).await;
    let mut big = question("x");
    big.aula_contexto = "a".repeat(5 << 20);
    let status = client.ask_question(big).await.unwrap_err();
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
    let dir = tempfile::tempdir().unwrap();
    let (svc, _) = start_cursos(
        dir.path(),
        &[("AULA_HTTP2_MAX_CONCURRENT_STREAMS".into(), "37".into())],
    )
    .await;
    let tcp = tokio::net::TcpStream::connect(svc.running.addr)
        .await
        .unwrap();
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
    let bot = RecordingChatbot {
        // Long enough that the shed call surely comes while both are held, on a slow CI too.
        delay: Duration::from_secs(3),
        ..Default::default()
    };
    let url = serve_chatbot(bot.clone()).await;
    let (svc, client) = start_cursos(
        dir.path(),
        &[
            ("CHATBOT_ADDR".into(), url),
            ("AULA_MAX_IN_FLIGHT".into(), "2".into()),
        ],
    )
    .await;
    let slow: Vec<_> = (0..2)
        .map(|i| {
            let mut c = client.clone();
            tokio::spawn(async move { c.ask_question(question(&format!("q{i}"))).await })
        })
        .collect();
    // Both are held at the chatbot.
    eventually("two questions at the chatbot", || async {
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
        &[("AULA_REFLECTION".into(), "off".into())],
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
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let dir = tempfile::tempdir().unwrap();
    let (svc, mut client) = start_cursos(
        dir.path(),
        &[("AULA_HTTP2_PREFACE_TIMEOUT".into(), "300ms".into())],
    )
    .await;
    let mut held = Vec::new();
    for i in 0..20 {
        let mut tcp = tokio::net::TcpStream::connect(svc.running.addr)
            .await
            .unwrap();
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
        let mut buf = [0u8; 256];
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "a silent connection is still open");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    svc.running.stop().await.unwrap();
}

/// With `AULA_MAX_CONNECTIONS=2` held by two silent sockets, a third client waits; once the
/// preface timeout closes them, it is served.
#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, mut client) = start_cursos(
        dir.path(),
        &[
            ("AULA_MAX_CONNECTIONS".into(), "2".into()),
            ("AULA_HTTP2_PREFACE_TIMEOUT".into(), "3s".into()),
        ],
    )
    .await;
    let _a = tokio::net::TcpStream::connect(svc.running.addr)
        .await
        .unwrap();
    let _b = tokio::net::TcpStream::connect(svc.running.addr)
        .await
        .unwrap();
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
