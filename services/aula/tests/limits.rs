//! The limits services must agree on (`aula_api::limits`) agree: what one service accepts and
//! forwards, the service it forwards to accepts too, and what a service answers fits in one
//! gRPC message. Proved two ways: by the texts and keys each service builds at their largest,
//! and end to end, with the largest inputs the limits allow sent through the real services.

mod common;

use aula_api::{
    limits, AddMediaRequest, AskQuestionRequest, ChatbotDuvidaRequest, CreateScheduleRequest,
    MaterialItem, NotifyScheduleRequest, SendNotificationRequest,
};
use aula_runtime::testing::Reply;
use aula_runtime::testing::{assert_invalid, wide_text};
use common::spawn_platform;
use prost::Message as _;

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// What cursos and cpar build and queue for notificacoes (texts and outbox keys), at their
/// largest, is within what notificacoes accepts; what the chatbot records in insights is within
/// what insights accepts.
#[test]
fn what_services_build_for_their_peers_is_within_the_peers_limits() {
    let schedule = cpar::domain::Schedule {
        id: i64::MAX,
        id_usuario: i64::MAX,
        titulo: wide_text(limits::SCHEDULE_TITLE_CHARS),
        inicio_ms: 253_402_300_799_000, // 9999-12-31T23:59:59Z
        duracao_minutos: 1440,
        estado: cpar::domain::CANCELADO.into(),
        lembrete_enviado: false,
        criado_ms: i64::MAX,
    };
    for text in [schedule.notice(), schedule.reminder()] {
        assert!(chars(&text) <= limits::NOTIFICATION_MESSAGE_CHARS, "{text}");
    }
    for key in [schedule.notice_key(), schedule.reminder_key()] {
        assert!(chars(&key) <= limits::IDEMPOTENCY_KEY_CHARS, "{key}");
    }
    let course = cursos::domain::Course {
        id: i64::MAX,
        nome: wide_text(100 * limits::COURSE_NAME_CHARS),
        descricao: String::new(),
        carga_horaria: 0,
        instrutor: String::new(),
        categoria: String::new(),
    };
    let notice = cursos::domain::enrolment_notice(&course);
    assert!(chars(&notice) <= limits::NOTIFICATION_MESSAGE_CHARS);
    for kind in ["inscricao", "notificacao"] {
        assert!(chars(&cursos::domain::fresh_key(kind)) <= limits::IDEMPOTENCY_KEY_CHARS);
    }
    assert!(chars(&chatbot::grpc::new_interaction_id()) <= limits::INTERACTION_ID_CHARS);
    assert!(chars(chatbot::offline::MODEL) <= limits::MODEL_CHARS);
    // The service names cursos and cpar send as `origem`.
    for name in aula_runtime::spec::NAMES {
        assert!(chars(name) <= limits::NOTIFICATION_ORIGIN_CHARS);
    }
}

/// The largest question cursos can forward (every grounding field at its limit, in 4-byte
/// characters) fits in one gRPC message, and so do the largest answers about media.
#[test]
fn the_largest_messages_fit_in_one_grpc_message() {
    let item = MaterialItem {
        titulo: wide_text(limits::MEDIA_TITLE_CHARS),
        descricao: wide_text(limits::MEDIA_DESCRIPTION_CHARS),
        tipo: wide_text(limits::MEDIA_KIND_CHARS),
    };
    let question = ChatbotDuvidaRequest {
        aula_contexto: wide_text(limits::LESSON_CONTEXT_CHARS),
        duvida: wide_text(limits::QUESTION_CHARS),
        id_curso: i64::MAX.to_string(),
        nome_curso: wide_text(limits::COURSE_NAME_CHARS),
        descricao_curso: wide_text(limits::COURSE_DESCRIPTION_CHARS),
        material: vec![item; limits::MEDIA_PER_COURSE],
        id_usuario: i64::MAX.to_string(),
    };
    assert!(question.encoded_len() < limits::MESSAGE_BYTES / 2);
    let media = aula_api::MediaItem {
        id: i64::MAX,
        titulo: wide_text(limits::MEDIA_TITLE_CHARS),
        tipo: wide_text(limits::MEDIA_KIND_CHARS),
        url: "u".repeat(limits::MEDIA_URL_CHARS),
        duracao_segundos: i32::MAX,
        ordem: i32::MAX,
        descricao: wide_text(limits::MEDIA_DESCRIPTION_CHARS),
        id_curso: i64::MAX.to_string(),
    };
    // The readable summary names every item with its title (and little else).
    let answer = aula_api::GetCourseMediaResponse {
        midia_curso: wide_text(limits::MEDIA_PER_COURSE * (limits::MEDIA_TITLE_CHARS + 40)),
        itens: vec![media; limits::MEDIA_PER_COURSE],
    };
    assert!(answer.encoded_len() < limits::MESSAGE_BYTES / 2);
}

/// End to end over real gRPC: the largest inputs each limit allows go through every hop.
#[tokio::test]
async fn the_largest_inputs_are_accepted_at_every_hop() {
    let p = spawn_platform().await;
    let mut cursos = p.cursos();

    // cursos -> notificacoes: the longest message is delivered, not left queued (a message
    // cursos accepted but notificacoes refused used to retry in the outbox forever).
    let sent = cursos
        .send_notification(SendNotificationRequest {
            id_usuario: "1".into(),
            message: wide_text(limits::NOTIFICATION_MESSAGE_CHARS),
            chave_idempotencia: wide_text(limits::IDEMPOTENCY_KEY_CHARS),
            origem: wide_text(limits::NOTIFICATION_ORIGIN_CHARS),
        })
        .await
        .answer();
    assert!(!sent.pendente, "{sent:?}");
    let longer = SendNotificationRequest {
        id_usuario: "1".into(),
        message: "a".repeat(limits::NOTIFICATION_MESSAGE_CHARS + 1),
        ..Default::default()
    };
    assert_invalid(cursos.send_notification(longer).await, "message", "at most");

    // midia -> cursos -> chatbot: a course full of the largest items, and the largest question.
    let mut midia = p.midia();
    let existing = 4; // course 1's demo media
    for n in existing..limits::MEDIA_PER_COURSE {
        midia
            .add_media(AddMediaRequest {
                id_curso: "1".into(),
                titulo: format!("{n} {}", wide_text(limits::MEDIA_TITLE_CHARS - 4)),
                tipo: "texto".into(),
                url: format!("https://h/{}", "u".repeat(limits::MEDIA_URL_CHARS - 10)),
                descricao: wide_text(limits::MEDIA_DESCRIPTION_CHARS),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let mut question = tonic::Request::new(AskQuestionRequest {
        id_curso: "1".into(),
        aula_contexto: wide_text(limits::LESSON_CONTEXT_CHARS),
        duvida: wide_text(limits::QUESTION_CHARS),
        id_usuario: i64::MAX.to_string(),
    });
    question.set_timeout(std::time::Duration::from_secs(30));
    let answer = cursos.ask_question(question).await.answer();
    assert!(answer.offline, "{answer:?}");
    let media = cursos
        .get_course_media(aula_api::GetCourseMediaRequest {
            id_curso: "1".into(),
        })
        .await
        .answer();
    assert_eq!(media.itens.len(), limits::MEDIA_PER_COURSE);

    // cpar -> notificacoes: the longest title makes a notice notificacoes stores.
    let mut cpar = p.cpar();
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 3600;
    let schedule = cpar
        .create_schedule(CreateScheduleRequest {
            id_usuario: "1".into(),
            titulo: wide_text(limits::SCHEDULE_TITLE_CHARS),
            inicio: Some(prost_types::Timestamp {
                seconds: start,
                nanos: 0,
            }),
            duracao_minutos: 30,
        })
        .await
        .answer();
    let notified = cpar
        .notify_schedule(NotifyScheduleRequest {
            id_agendamento: schedule.id_agendamento,
            ..Default::default()
        })
        .await
        .answer();
    assert!(!notified.pendente, "{notified:?}");
    p.stop().await;
}
