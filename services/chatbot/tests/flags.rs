//! `fault.chatbot.gemini_outage` (docs/FLAGS.md) on a running chatbot in Gemini mode: switched
//! on, the Gemini client fails as if Gemini answered 503 (nothing reaches Gemini), the question
//! fails UNAVAILABLE like in a real outage, counted as injected; switched off, Gemini answers
//! again, without a restart. In offline mode the flag has nothing to break.

mod common;

use std::time::{Duration, Instant};

use aula_api::{chatbot_service_client::ChatbotServiceClient, ChatbotDuvidaRequest};
use aula_runtime::{flags::file::FlagsFile, testing};
use common::*;
use futures::StreamExt;
use tonic::{Code, Request};

fn question() -> Request<ChatbotDuvidaRequest> {
    let mut req = Request::new(ChatbotDuvidaRequest {
        aula_contexto: "Aula 4: ownership".into(),
        duvida: "Qual a diferença entre &T e &mut T?".into(),
        nome_curso: "Rust para Backend".into(),
        ..Default::default()
    });
    req.set_timeout(Duration::from_secs(10));
    req
}

fn closed_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

fn outage(path: &std::path::Path, on: bool) {
    let mut file = FlagsFile::open(path).unwrap();
    if on {
        file.set("fault.chatbot.gemini_outage", "on").unwrap();
    } else {
        file.clear();
    }
    file.save().unwrap();
}

#[tokio::test]
async fn gemini_outage_fails_questions_as_a_503_would() {
    let gemini = StandIn::start(ok("Use &mut T para alterar; &T só lê.")).await;
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags.json");
    outage(&flags, false);
    let env: Vec<(String, String)> = [
        ("GEMINI_API_KEY", KEY.to_string()),
        ("GEMINI_MODEL", MODEL.to_string()),
        ("GEMINI_BASE_URL", gemini.base_url()),
        ("INSIGHTS_ADDR", closed_addr()),
        ("AULA_FLAGS_FILE", flags.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let svc = testing::spawn(chatbot::service(), dir.path(), &env)
        .await
        .unwrap();
    let mut client = ChatbotServiceClient::new(svc.channel());
    client
        .resolve_duvida(question())
        .await
        .expect("Gemini answers");
    assert_eq!(gemini.requests().len(), 1);

    outage(&flags, true);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let t = Instant::now();
    let status = client.resolve_duvida(question()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // Streamed answers take the same path.
    let mut stream = client
        .resolve_duvida_stream(question())
        .await
        .map(|r| r.into_inner());
    let streamed = match &mut stream {
        Ok(s) => s.next().await.expect("an item").unwrap_err(),
        Err(s) => s.clone(),
    };
    assert_eq!(streamed.code(), Code::Unavailable, "{streamed:?}");
    assert_eq!(gemini.requests().len(), 1, "nothing reached Gemini");
    let metrics = svc.metrics_text().await;
    assert!(
        metrics.contains("aula_fault_injected_total{flag=\"fault.chatbot.gemini_outage\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("aula_gemini_requests_total{outcome=\"unavailable\"}"),
        "the outage is counted as Gemini failing: {metrics}"
    );
    svc.assert_serving().await;

    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn gemini_outage_switched_off_lets_gemini_answer_again() {
    let gemini = StandIn::start(ok("resposta")).await;
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags.json");
    outage(&flags, true);
    let env: Vec<(String, String)> = [
        ("GEMINI_API_KEY", KEY.to_string()),
        ("GEMINI_MODEL", MODEL.to_string()),
        ("GEMINI_BASE_URL", gemini.base_url()),
        ("INSIGHTS_ADDR", closed_addr()),
        ("AULA_FLAGS_FILE", flags.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let svc = testing::spawn(chatbot::service(), dir.path(), &env)
        .await
        .unwrap();
    let mut client = ChatbotServiceClient::new(svc.channel());
    // One question: three attempts, fewer than the breaker's five.
    let status = client.resolve_duvida(question()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(gemini.requests().is_empty());

    outage(&flags, false);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let answer = client
        .resolve_duvida(question())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.resposta, "resposta");
    assert_eq!(gemini.requests().len(), 1);
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn offline_mode_has_no_gemini_to_break() {
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags.json");
    outage(&flags, true);
    let env = vec![
        ("INSIGHTS_ADDR".to_string(), closed_addr()),
        ("AULA_FLAGS_FILE".to_string(), flags.display().to_string()),
    ];
    let svc = testing::spawn(chatbot::service(), dir.path(), &env)
        .await
        .unwrap();
    let mut client = ChatbotServiceClient::new(svc.channel());
    let answer = client
        .resolve_duvida(question())
        .await
        .unwrap()
        .into_inner();
    assert!(answer.offline);
    svc.running.stop().await.unwrap();
}
