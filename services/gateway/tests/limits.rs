//! What one HTTP client can make the gateway hold (#13, #14): a body over `GATEWAY_MAX_BODY` is
//! 413, a client over its rate is 429 with `Retry-After` (health never is), a service that sheds
//! the call is 429 too, and a connection that sends half a request is closed after
//! `GATEWAY_HEADER_TIMEOUT`. Also the POST forms of the seed's three state-changing GET routes.

mod common;

use aula_runtime::testing::closed_within;
use common::{assert_erro_names, spawn_app, spawn_app_with};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app_with(&[], &[("GATEWAY_MAX_BODY", "1KiB")]).await;
    let context = "a".repeat(4096);
    let body = app
        .post_as(
            "/chatbot/duvida",
            &format!(r#"{{"aula_contexto": "{context}", "duvida": "e REST?"}}"#),
            413,
        )
        .await;
    assert_erro_names(&body, "GATEWAY_MAX_BODY");
    // Within the limit, as usual.
    app.post_as("/chatbot/duvida", common::QUESTION, 200).await;
    app.stop().await;
}

#[tokio::test]
async fn a_client_over_its_rate_is_429_with_retry_after_and_health_still_answers() {
    let app = spawn_app_with(
        &[],
        &[
            ("GATEWAY_RATE_LIMIT", "1"),
            ("GATEWAY_RATE_BURST", "2"),
            ("GATEWAY_CLIENT_IP_HEADER", "x-forwarded-for"),
        ],
    )
    .await;
    let get = |client: &'static str| {
        app.http
            .get(format!("{}/cursos", app.base))
            .header("x-forwarded-for", format!("198.51.100.7, {client}"))
            .send()
    };
    assert_eq!(get("203.0.113.1").await.unwrap().status(), 200);
    // The burst is 2 at 1/s: a slow machine may refill one between calls, never ten.
    let mut refused = None;
    for _ in 0..10 {
        let r = get("203.0.113.1").await.unwrap();
        if r.status() == 429 {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status(), 200);
    }
    let refused = refused.expect("a client over its rate is refused");
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After: {retry}");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_erro_names(&body, "GATEWAY_RATE_LIMIT");
    // Another client is not held back by the first.
    assert_eq!(get("203.0.113.2").await.unwrap().status(), 200);
    // Probes are never limited.
    for _ in 0..5 {
        let (status, _) = app.get("/livez").await;
        assert_eq!(status, 200);
    }
    assert!(app
        .metrics_text()
        .await
        .contains(r#"http_requests_total{method="GET",route="/cursos",status="429"}"#));
    app.stop().await;
}

#[tokio::test]
async fn a_service_that_sheds_the_call_is_429_with_retry_after() {
    let app = spawn_app(&[]).await;
    let r = app
        .get_response("/cursos/ver_inscricoes_do_usuario/888")
        .await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["codigo"], "RESOURCE_EXHAUSTED", "{body}");
    assert_eq!(body["servico"], "cursos", "{body}");
    app.stop().await;
}

/// 50 connections send half a request (and 10 nothing at all): each is closed within the
/// header timeout, and a whole request is answered meanwhile.
#[tokio::test]
async fn connections_that_send_half_a_header_are_closed() {
    let app = spawn_app_with(&[], &[("GATEWAY_HEADER_TIMEOUT", "300ms")]).await;
    let addr = app.gateway.addr();
    let started = Instant::now();
    let mut held = Vec::new();
    for i in 0..60 {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        if i < 50 {
            tcp.write_all(b"GET /cursos HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
                .await
                .unwrap();
        }
        held.push(tcp);
    }
    let (status, _) = app.get("/cursos").await;
    assert_eq!(status, 200);
    for mut tcp in held {
        // Closed: EOF or a reset (hyper may answer 408 first); never still open after 5 s.
        let closed = closed_within(&mut tcp, Duration::from_secs(5)).await;
        assert!(closed, "a half-sent request is still held open");
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    app.stop().await;
}

/// A client that declares a body and sends only part of it is answered 408 within the body
/// timeout and let go (its in-flight place with it), while other requests are answered.
#[tokio::test]
async fn a_body_that_never_arrives_is_answered_408() {
    let app = spawn_app_with(&[], &[("GATEWAY_BODY_TIMEOUT", "300ms")]).await;
    let mut tcp = tokio::net::TcpStream::connect(app.gateway.addr())
        .await
        .unwrap();
    tcp.write_all(
        b"POST /cursos/enviar_notificacao/42 HTTP/1.1\r\nHost: gateway\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"message\": ",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let (status, _) = app.get("/cursos").await;
    assert_eq!(status, 200);
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                        return;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the half-sent body is still held after 5 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("GATEWAY_BODY_TIMEOUT"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Nothing reached cursos: the request was refused before its handler.
    assert!(!app
        .seen
        .calls()
        .iter()
        .any(|c| c.method == "cursos.SendNotification"));
    app.stop().await;
}

/// The seed's GET routes that change state also take POST with a JSON body (or none).
#[tokio::test]
async fn the_three_state_changing_routes_accept_post() {
    let app = spawn_app(&[]).await;
    let body = app
        .post_as(
            "/cursos/enviar_notificacao/42",
            r#"{"message": "olá"}"#,
            200,
        )
        .await;
    assert_eq!(body["message"], "Notificação enviada: olá");
    let sent = app.seen.last("cursos.SendNotification").request;
    assert!(sent.contains(r#"id_usuario: "42""#), "{sent}");

    let body = app.post_as("/cursos/enviar_notificacao/42", "", 200).await;
    let default = gateway::routes::DEFAULT_NOTIFICATION;
    assert_eq!(body["message"], common::notice_sent(default));

    let body = app
        .post_as("/cpar/notificar_agendamento/5", "{}", 200)
        .await;
    assert_eq!(body["id_agendamento"], "5");

    let body = app
        .post_as("/chatbot/registrar_metricas/int-2", "", 200)
        .await;
    assert_eq!(body["id_interacao"], "int-2");

    app.post_as("/cursos/enviar_notificacao/42", "{", 400).await;
    app.post_as("/cursos/enviar_notificacao/42", r#"{"message": []}"#, 400)
        .await;
    // GET still works for the seed's clients.
    let (status, _) = app.get("/cpar/notificar_agendamento/5").await;
    assert_eq!(status, 200);
    app.stop().await;
}

/// With `GATEWAY_MAX_IN_FLIGHT=1` and one request held by a stalled cursos, the next request is
/// 503 with `Retry-After` at once; health still answers.
#[tokio::test]
async fn at_its_in_flight_limit_the_gateway_answers_503_at_once() {
    // Bound, never accepted from: connects, then nothing answers.
    let stalled = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stalled_url = format!("http://{}", stalled.local_addr().unwrap());
    let app = spawn_app_with(
        &[],
        &[
            ("CURSOS_ADDR", stalled_url.as_str()),
            ("AULA_PEER_TIMEOUT", "2s"),
            ("GATEWAY_MAX_IN_FLIGHT", "1"),
        ],
    )
    .await;
    let held = tokio::spawn({
        let (http, base) = (app.http.clone(), app.base.clone());
        async move { http.get(format!("{base}/cursos")).send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let r = app.get_response("/chatbot").await;
    assert_eq!(r.status(), 503);
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(r.headers()["retry-after"], "1");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_erro_names(&body, "GATEWAY_MAX_IN_FLIGHT");
    let (status, _) = app.get("/livez").await;
    assert_eq!(status, 200);
    // The held request ends (504 at the peer timeout); then requests are served again.
    let held = held.await.unwrap().unwrap();
    assert_eq!(held.status(), 504);
    let (status, _) = app.get("/chatbot").await;
    assert_eq!(status, 200);
    app.stop().await;
}
