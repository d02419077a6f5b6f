//! The chatbot's input limits and its bound on work: every field over its limit is
//! INVALID_ARGUMENT naming the field and the limit, bad input is quoted short, and the largest
//! question the limits allow is answered within its deadline while health checks keep answering.

use aula_api::{
    chatbot_service_client::ChatbotServiceClient, limits, ChatbotDuvidaRequest, MaterialItem,
    RegisterMetricsRequest,
};
use aula_runtime::testing::{
    assert_invalid, closed_url, distinct_words, over_limit, over_limit_cases, spawn_alone, SetText,
    TestService,
};
use std::time::Duration;

/// The chatbot offline (insights pointed at a closed port), in a directory of its own.
async fn offline() -> (tempfile::TempDir, TestService) {
    spawn_alone(chatbot::service(), &[("INSIGHTS_ADDR", &closed_url())]).await
}

fn item(titulo: &str, descricao: &str) -> MaterialItem {
    MaterialItem {
        titulo: titulo.into(),
        descricao: descricao.into(),
        tipo: "texto".into(),
    }
}

fn question(material: Vec<MaterialItem>) -> ChatbotDuvidaRequest {
    ChatbotDuvidaRequest {
        duvida: "O que é uma variável?".into(),
        id_curso: "1".into(),
        nome_curso: "Python".into(),
        material,
        ..Default::default()
    }
}

#[tokio::test]
async fn every_field_is_bounded_and_bad_input_is_quoted_short() {
    let (_dir, svc) = offline().await;
    let mut client = ChatbotServiceClient::new(svc.channel());
    let mut cases = over_limit_cases(
        question(vec![]),
        &[
            ("duvida", limits::QUESTION_CHARS, |q, t| q.duvida = t),
            ("aula_contexto", limits::LESSON_CONTEXT_CHARS, |q, t| {
                q.aula_contexto = t
            }),
            ("nome_curso", limits::COURSE_NAME_CHARS, |q, t| {
                q.nome_curso = t
            }),
            (
                "descricao_curso",
                limits::COURSE_DESCRIPTION_CHARS,
                |q, t| q.descricao_curso = t,
            ),
        ],
    );
    let too_many = vec![item("t", "d"); limits::MEDIA_PER_COURSE + 1];
    let says = format!("at most {} elements", limits::MEDIA_PER_COURSE);
    cases.push((question(too_many), "material", says));
    let (text, says) = over_limit(limits::MEDIA_TITLE_CHARS);
    cases.push((question(vec![item(&text, "d")]), "material.titulo", says));
    // The case: one description of 80,000 distinct words.
    let says = format!("at most {} characters", limits::MEDIA_DESCRIPTION_CHARS);
    let words = distinct_words(80_000);
    cases.push((
        question(vec![item("t", "d"), item("t", &words)]),
        "material.descricao",
        says,
    ));
    let huge = "5".repeat(1 << 20);
    let ids: [(&str, SetText<ChatbotDuvidaRequest>); 2] = [
        ("id_curso", |q, id| q.id_curso = id),
        ("id_usuario", |q, id| q.id_usuario = id),
    ];
    for (field, set) in ids {
        let mut q = question(vec![]);
        set(&mut q, huge.clone());
        cases.push((q, field, "positive integer".into()));
    }
    for (request, field, says) in cases {
        assert_invalid(client.resolve_duvida(request.clone()).await, field, &says);
        let streamed = match client.resolve_duvida_stream(request).await {
            Ok(stream) => stream.into_inner().message().await.map(|_| ()),
            Err(status) => Err(status),
        };
        assert_invalid(streamed, field, &says);
    }
    let metrics = RegisterMetricsRequest { id_interacao: huge };
    let says = format!("at most {} characters", limits::INTERACTION_ID_CHARS);
    assert_invalid(
        client.register_metrics(metrics).await,
        "id_interacao",
        &says,
    );
    svc.assert_serving().await;
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn the_largest_questions_are_answered_within_their_deadline_and_health_answers_meanwhile() {
    let (_dir, svc) = offline().await;
    // Everything at its limit, and every word a term of its own.
    let words = distinct_words(limits::MEDIA_DESCRIPTION_CHARS / 6);
    let material: Vec<MaterialItem> = (0..limits::MEDIA_PER_COURSE)
        .map(|n| item(&format!("Item {n}"), &words))
        .collect();
    let largest = ChatbotDuvidaRequest {
        aula_contexto: distinct_words(limits::LESSON_CONTEXT_CHARS / 6),
        descricao_curso: distinct_words(limits::COURSE_DESCRIPTION_CHARS / 6),
        duvida: distinct_words(limits::QUESTION_CHARS / 6),
        ..question(material)
    };
    // More questions at once than the machine has cores.
    let answering: Vec<_> = (0..4)
        .map(|_| {
            let mut client = ChatbotServiceClient::new(svc.channel());
            let mut request = tonic::Request::new(largest.clone());
            request.set_timeout(Duration::from_secs(30));
            tokio::spawn(async move { client.resolve_duvida(request).await })
        })
        .collect();
    while !answering.iter().all(|a| a.is_finished()) {
        svc.assert_serving().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for a in answering {
        let answer = a.await.unwrap().expect("answered within the deadline");
        assert!(answer.into_inner().resposta.starts_with("[modo offline]"));
    }
    svc.running.stop().await.unwrap();
}
