//! Deadlines along a chain of calls: the caller's remaining time travels, a call may declare a
//! longer budget than `AULA_PEER_TIMEOUT` (AskQuestion waiting for the chatbot), and a peer that
//! does not answer is DEADLINE_EXCEEDED naming it, also for the caller's caller.

mod common;

use aula_api::{AskQuestionRequest, GetCourseMediaRequest};
use aula_runtime::peers::PeerError;
use common::*;
use std::time::{Duration, Instant};

fn question() -> AskQuestionRequest {
    AskQuestionRequest {
        id_curso: "1".into(),
        aula_contexto: String::new(),
        duvida: "O que é uma variável?".into(),
        id_usuario: String::new(),
    }
}

/// The chatbot answers after `AULA_PEER_TIMEOUT` (here 300 ms; 5 s in production, where
/// Gemini takes 8): AskQuestion still gets the answer, within its own budget.
#[tokio::test]
async fn ask_question_waits_for_the_chatbot_beyond_the_peer_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let bot = slow_chatbot(Duration::from_millis(1200));
    let (svc, mut client) =
        cursos_asking(dir.path(), &bot, &[("AULA_PEER_TIMEOUT", "300ms")]).await;
    let answer = client.ask_question(question()).await.expect("answered");
    assert_eq!(answer.get_ref().modelo, "stand-in");
    let seen = bot.deadlines.lock().unwrap()[0].expect("a deadline");
    assert!(
        seen > Duration::from_secs(30),
        "the chatbot was given {seen:?}"
    );
    svc.running.stop().await.unwrap();
}

/// The client gives cursos 2 s: the chatbot is given what is left of them, not a fresh budget.
#[tokio::test]
async fn the_callers_remaining_time_travels_down_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let bot = RecordingChatbot::default();
    let (svc, mut client) = cursos_asking(dir.path(), &bot, &[]).await;
    let mut ask = tonic::Request::new(question());
    ask.set_timeout(Duration::from_secs(2));
    client.ask_question(ask).await.expect("answered");
    let seen = bot.deadlines.lock().unwrap()[0].expect("a deadline");
    assert!(
        seen < Duration::from_secs(2) && seen > Duration::from_millis(500),
        "the chatbot was given {seen:?} of the client's 2 s"
    );
    svc.running.stop().await.unwrap();
}

/// midia is stalled (its kernel accepts, the process never answers): the client sees
/// DEADLINE_EXCEEDED naming midia within its own deadline, not UNAVAILABLE naming cursos.
#[tokio::test]
async fn a_stalled_midia_is_deadline_exceeded_naming_midia() {
    let dir = tempfile::tempdir().unwrap();
    let stalled = std::net::TcpListener::bind("127.0.0.1:0").unwrap(); // never accepts
    let midia_url = format!("http://{}", stalled.local_addr().unwrap());
    let (svc, mut client) = start_cursos(dir.path(), &vars(&[("MIDIA_ADDR", &midia_url)])).await;
    let mut get = tonic::Request::new(GetCourseMediaRequest {
        id_curso: "1".into(),
    });
    get.set_timeout(Duration::from_secs(1));
    let started = Instant::now();
    let err = client.get_course_media(get).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err:?}");
    assert!(err.message().starts_with("midia: "), "{err:?}");
    assert_eq!(PeerError::from_status("cursos", err).service(), "midia");
    svc.running.stop().await.unwrap();
    drop(stalled);
}
