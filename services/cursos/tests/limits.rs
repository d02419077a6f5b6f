//! cursos' input limits (`aula_api::limits`): every field over its limit is INVALID_ARGUMENT
//! naming the field and the limit, a 1 MB bad id comes back as a short message, and cursos keeps
//! serving; what it forwards stays within what its peers accept.

mod common;

use aula_api::{
    limits, AskQuestionRequest, EnrollRequest, GetCourseMediaRequest, GetCourseRequest,
    GetUserCoursesRequest, ListCoursesRequest, SendNotificationRequest, UnenrollRequest,
};
use aula_runtime::testing::{assert_invalid, distinct_words, spawn};
use common::*;
use std::time::Duration;

fn ask(duvida: &str, aula_contexto: &str) -> AskQuestionRequest {
    AskQuestionRequest {
        id_curso: "1".into(),
        aula_contexto: aula_contexto.into(),
        duvida: duvida.into(),
        id_usuario: String::new(),
    }
}

fn notify(message: &str) -> SendNotificationRequest {
    SendNotificationRequest {
        id_usuario: "1".into(),
        message: message.into(),
        ..Default::default()
    }
}

fn over(limit: usize) -> (String, String) {
    ("a".repeat(limit + 1), format!("at most {limit} characters"))
}

#[tokio::test]
async fn every_text_field_is_bounded() {
    let (_dir, svc, mut client) = cursos_alone().await;

    let (text, says) = over(limits::QUESTION_CHARS);
    assert_invalid(client.ask_question(ask(&text, "")).await, "duvida", &says);
    let (text, says) = over(limits::LESSON_CONTEXT_CHARS);
    assert_invalid(
        client.ask_question(ask("Oi?", &text)).await,
        "aula_contexto",
        &says,
    );
    // notificacoes' own limits: a message cursos queued but notificacoes refused would sit in
    // the outbox forever (the 2,000-character case).
    let (text, says) = over(limits::NOTIFICATION_MESSAGE_CHARS);
    assert_invalid(
        client.send_notification(notify(&text)).await,
        "message",
        &says,
    );
    let (text, says) = over(limits::NOTIFICATION_ORIGIN_CHARS);
    let request = SendNotificationRequest {
        origem: text,
        ..notify("Oi")
    };
    assert_invalid(client.send_notification(request).await, "origem", &says);
    let (text, says) = over(limits::IDEMPOTENCY_KEY_CHARS);
    let request = SendNotificationRequest {
        chave_idempotencia: text,
        ..notify("Oi")
    };
    assert_invalid(
        client.send_notification(request).await,
        "chave_idempotencia",
        &says,
    );
    let (text, says) = over(limits::PAGE_TOKEN_CHARS);
    let request = ListCoursesRequest {
        page_size: 5,
        page_token: text,
    };
    assert_invalid(client.list_courses(request).await, "page_token", &says);
    // Nothing was queued.
    let status = client.get_status(aula_api::Empty {}).await.answer();
    assert_eq!(status.contagens["outbox_pendentes"], 0);
    svc.assert_serving().await;
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_one_megabyte_bad_id_gets_a_short_message() {
    let (_dir, svc, mut client) = cursos_alone().await;
    let huge = "7".repeat(1 << 20);
    let says = "must be a positive integer";
    let user = GetUserCoursesRequest {
        id_usuario: huge.clone(),
    };
    assert_invalid(client.get_user_courses(user).await, "id_usuario", says);
    let course = GetCourseRequest {
        id_curso: huge.clone(),
    };
    assert_invalid(client.get_course(course).await, "id_curso", says);
    let media = GetCourseMediaRequest {
        id_curso: huge.clone(),
    };
    assert_invalid(client.get_course_media(media).await, "id_curso", says);
    let enroll = EnrollRequest {
        id_usuario: "1".into(),
        id_curso: huge.clone(),
    };
    assert_invalid(client.enroll(enroll).await, "id_curso", says);
    let unenroll = UnenrollRequest {
        id_usuario: huge.clone(),
        id_curso: "1".into(),
    };
    assert_invalid(client.unenroll(unenroll).await, "id_usuario", says);
    let question = AskQuestionRequest {
        id_curso: huge.clone(),
        ..ask("Oi?", "")
    };
    assert_invalid(client.ask_question(question).await, "id_curso", says);
    let notice = SendNotificationRequest {
        id_usuario: huge,
        ..notify("Oi")
    };
    assert_invalid(client.send_notification(notice).await, "id_usuario", says);
    svc.assert_serving().await;
    svc.running.stop().await.unwrap();
}

/// The attack, end to end: a media description of 80,000 distinct words, stored before
/// midia had limits, used to cost the offline chatbot ~6 s of CPU per question on that course
/// (and starve its health checks). cursos now forwards the material within the chatbot's limits
/// and the chatbot answers within the deadline, healthy all along.
#[tokio::test]
async fn a_huge_stored_description_does_not_hold_up_the_chatbot() {
    use sqlx::Executor as _;
    let dir = tempfile::tempdir().unwrap();
    let midia = start_midia(dir.path()).await;
    let mut db = midia.sql().await;
    db.execute(
        sqlx::query(
            "INSERT INTO midias (id_curso, titulo, tipo, url, duracao_segundos, ordem, descricao, criada_ms) \
             VALUES (1, 'Glossário', 'texto', 'https://h/g', 0, 9, $1, 0)",
        )
        .bind(distinct_words(80_000)),
    )
    .await
    .unwrap();
    let chatbot = spawn(chatbot::service(), &dir.path().join("chatbot"), &[])
        .await
        .unwrap();
    let (svc, mut client) = start_cursos(dir.path(), &[midia.addr_var(), chatbot.addr_var()]).await;
    let mut question = tonic::Request::new(ask("O que é uma variável em Python?", ""));
    question.set_timeout(Duration::from_secs(20));
    let answering = tokio::spawn(async move { client.ask_question(question).await });
    // The chatbot keeps answering its health checks while the question is answered.
    while !answering.is_finished() {
        chatbot.assert_serving().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answer = answering
        .await
        .unwrap()
        .expect("answered within the deadline");
    let answer = answer.into_inner();
    assert!(answer.offline, "{answer:?}");
    assert!(
        answer.resposta.starts_with("[modo offline]"),
        "{}",
        answer.resposta
    );
    chatbot.assert_serving().await;
    svc.running.stop().await.unwrap();
}
