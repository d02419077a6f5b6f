//! `fault.chatbot.gemini_outage` (docs/FLAGS.md) on a running chatbot in Gemini mode: switched
//! on, the Gemini client fails as if Gemini answered 503 (nothing reaches Gemini), the question
//! fails UNAVAILABLE like in a real outage, counted as injected; switched off, Gemini answers
//! again, without a restart. In offline mode the flag has nothing to break.

mod common;

use std::time::{Duration, Instant};

use aula_runtime::testing::Reply as _;
use aula_runtime::{flags::file::FlagsFile, testing};
use common::*;
use futures::StreamExt;
use tonic::Code;

fn outage(path: &std::path::Path, on: bool) {
    let mut file = FlagsFile::open(path).unwrap();
    if on {
        file.set("fault.chatbot.gemini_outage", "on").unwrap();
    } else {
        file.clear();
    }
    file.save().unwrap();
}

/// The chatbot with `env` and a flags file, the outage switched on or off in it from the start.
async fn with_flags(
    mut env: Vec<(&'static str, String)>,
    outage_on: bool,
) -> (Chatbot, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags.json");
    outage(&flags, outage_on);
    env.push(("AULA_FLAGS_FILE", flags.display().to_string()));
    (chatbot_in(dir, &env).await, flags)
}

#[tokio::test]
async fn gemini_outage_fails_questions_as_a_503_would() {
    let gemini = StandIn::start(ok("Use &mut T para alterar; &T só lê.")).await;
    let (bot, flags) = with_flags(gemini_env(&gemini), false).await;
    let (svc, mut client) = (bot.service, bot.client);
    client
        .resolve_duvida(rust_question())
        .await
        .expect("Gemini answers");
    assert_eq!(gemini.requests().len(), 1);

    outage(&flags, true);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let t = Instant::now();
    let status = client.resolve_duvida(rust_question()).await.refusal();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // Streamed answers take the same path.
    let mut stream = client
        .resolve_duvida_stream(rust_question())
        .await
        .map(|r| r.into_inner());
    let streamed = match &mut stream {
        Ok(s) => s.next().await.expect("an item").unwrap_err(),
        Err(s) => s.clone(),
    };
    assert_eq!(streamed.code(), Code::Unavailable, "{streamed:?}");
    assert_eq!(gemini.requests().len(), 1, "nothing reached Gemini");
    // The outage is counted as injected, and as Gemini failing.
    svc.assert_metrics(&[
        "aula_fault_injected_total{flag=\"fault.chatbot.gemini_outage\"}",
        "aula_gemini_requests_total{outcome=\"unavailable\"}",
    ])
    .await;
    svc.assert_serving().await;

    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn gemini_outage_switched_off_lets_gemini_answer_again() {
    let gemini = StandIn::start(ok("resposta")).await;
    let (bot, flags) = with_flags(gemini_env(&gemini), true).await;
    let (svc, mut client) = (bot.service, bot.client);
    // One question: three attempts, fewer than the breaker's five.
    let status = client.resolve_duvida(rust_question()).await.refusal();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(gemini.requests().is_empty());

    outage(&flags, false);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let answer = client.resolve_duvida(rust_question()).await.answer();
    assert_eq!(answer.resposta, "resposta");
    assert_eq!(gemini.requests().len(), 1);
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn offline_mode_has_no_gemini_to_break() {
    let offline = vec![("INSIGHTS_ADDR", testing::closed_url())];
    let (bot, _flags) = with_flags(offline, true).await;
    let (svc, mut client) = (bot.service, bot.client);
    let answer = client.resolve_duvida(rust_question()).await.answer();
    assert!(answer.offline);
    svc.running.stop().await.unwrap();
}
