//! Structure-aware fuzzing of every RPC of the six services on stable Rust (issue #13):
//! proptest draws each request's fields from what breaks parsers (numbers past i64, negative
//! and zero ids, arbitrary Unicode, control characters, token-like garbage for page tokens,
//! texts past every limit) and calls the whole platform in-process. Bad input must get a
//! status that says so: never INTERNAL, UNKNOWN or DATA_LOSS (a panic in a handler surfaces as
//! one of those), never a message longer than the runtime's cap; and every service still
//! answers its health check afterwards.
//!
//! CI runs a bounded number of cases (`AULA_FUZZ_CASES`, 24 by default: about 600 calls); a
//! long run: `AULA_FUZZ_CASES=5000 cargo test -p aula --test fuzz -- --nocapture` (the count
//! of a long run is in RELIABILITY.md).

mod common;

use aula_api::*;
use common::attacker_text;
use proptest::{collection::vec, prelude::*, test_runner::TestCaseError};
use std::time::Duration;
use tonic::{Code, Request, Status};

#[derive(Debug, Clone)]
struct Input {
    a: String,
    b: String,
    c: String,
    d: String,
    n: i32,
    big: i64,
    list: Vec<String>,
    flag: bool,
}

fn input() -> impl Strategy<Value = Input> {
    (
        (
            attacker_text(),
            attacker_text(),
            attacker_text(),
            attacker_text(),
        ),
        any::<i32>(),
        any::<i64>(),
        vec(attacker_text(), 0..6),
        any::<bool>(),
    )
        .prop_map(|((a, b, c, d), n, big, list, flag)| Input {
            a,
            b,
            c,
            d,
            n,
            big,
            list,
            flag,
        })
}

/// A request with a deadline, so a hang is a finding (DEADLINE_EXCEEDED is allowed; the
/// service must still answer health afterwards).
fn req<T>(message: T) -> Request<T> {
    let mut r = Request::new(message);
    r.set_timeout(Duration::from_secs(15));
    r
}

fn verdict<T>(rpc: &str, result: Result<T, Status>) -> Result<(), TestCaseError> {
    // AULA_FUZZ_TRACE=1: each call and its code, to find the one that hangs.
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    if std::env::var_os("AULA_FUZZ_TRACE").is_some() {
        let at = START.get_or_init(std::time::Instant::now).elapsed();
        eprintln!("{at:?} {rpc} {:?}", result.as_ref().err().map(|s| s.code()));
    }
    let Err(status) = result else {
        return Ok(());
    };
    if matches!(
        status.code(),
        Code::Internal | Code::Unknown | Code::DataLoss
    ) {
        return Err(TestCaseError::fail(format!(
            "{rpc}: {:?} {:?}",
            status.code(),
            status.message()
        )));
    }
    if status.message().len() > aula_runtime::error::MAX_MESSAGE_BYTES {
        return Err(TestCaseError::fail(format!(
            "{rpc}: a {} byte message",
            status.message().len()
        )));
    }
    Ok(())
}

async fn every_rpc(p: &common::Platform, i: Input) -> Result<(), TestCaseError> {
    let (mut cursos, mut chatbot, mut cpar) = (p.cursos(), p.chatbot(), p.cpar());
    let (mut notificacoes, mut insights, mut midia) = (p.notificacoes(), p.insights(), p.midia());
    let timestamp = Some(prost_types::Timestamp {
        seconds: i.big,
        nanos: i.n,
    });

    verdict(
        "cursos.GetUserCourses",
        cursos
            .get_user_courses(req(GetUserCoursesRequest {
                id_usuario: i.a.clone(),
            }))
            .await,
    )?;
    verdict(
        "cursos.GetCourseMedia",
        cursos
            .get_course_media(req(GetCourseMediaRequest {
                id_curso: i.a.clone(),
            }))
            .await,
    )?;
    verdict(
        "cursos.AskQuestion",
        cursos
            .ask_question(req(AskQuestionRequest {
                id_curso: i.a.clone(),
                aula_contexto: i.b.clone(),
                duvida: i.c.clone(),
                id_usuario: i.d.clone(),
            }))
            .await,
    )?;
    verdict(
        "cursos.SendNotification",
        cursos
            .send_notification(req(SendNotificationRequest {
                id_usuario: i.a.clone(),
                message: i.b.clone(),
                chave_idempotencia: i.c.clone(),
                origem: i.d.clone(),
            }))
            .await,
    )?;
    verdict(
        "cursos.ListCourses",
        cursos
            .list_courses(req(ListCoursesRequest {
                page_size: i.n,
                page_token: i.a.clone(),
            }))
            .await,
    )?;
    verdict(
        "cursos.GetCourse",
        cursos
            .get_course(req(GetCourseRequest {
                id_curso: i.b.clone(),
            }))
            .await,
    )?;
    verdict(
        "cursos.Enroll",
        cursos
            .enroll(req(EnrollRequest {
                id_usuario: i.a.clone(),
                id_curso: i.b.clone(),
            }))
            .await,
    )?;
    verdict(
        "cursos.Unenroll",
        cursos
            .unenroll(req(UnenrollRequest {
                id_usuario: i.a.clone(),
                id_curso: i.b.clone(),
            }))
            .await,
    )?;

    let duvida = ChatbotDuvidaRequest {
        aula_contexto: i.a.clone(),
        duvida: i.b.clone(),
        id_curso: i.c.clone(),
        nome_curso: i.d.clone(),
        ..Default::default()
    };
    verdict(
        "chatbot.ResolveDuvida",
        chatbot.resolve_duvida(req(duvida.clone())).await,
    )?;
    let streamed = async {
        let mut s = chatbot
            .resolve_duvida_stream(req(duvida))
            .await?
            .into_inner();
        while s.message().await?.is_some() {}
        Ok::<_, Status>(())
    };
    verdict("chatbot.ResolveDuvidaStream", streamed.await)?;
    verdict(
        "chatbot.RegisterMetrics",
        chatbot
            .register_metrics(req(RegisterMetricsRequest {
                id_interacao: i.a.clone(),
            }))
            .await,
    )?;

    verdict(
        "cpar.CreateSchedule",
        cpar.create_schedule(req(CreateScheduleRequest {
            id_usuario: i.a.clone(),
            titulo: i.b.clone(),
            inicio: timestamp,
            duracao_minutos: i.n,
        }))
        .await,
    )?;
    verdict(
        "cpar.NotifySchedule",
        cpar.notify_schedule(req(NotifyScheduleRequest {
            id_agendamento: i.a.clone(),
            id_usuario: i.b.clone(),
            message: i.c.clone(),
            chave_idempotencia: i.d.clone(),
        }))
        .await,
    )?;
    verdict(
        "cpar.GetSchedule",
        cpar.get_schedule(req(GetScheduleRequest {
            id_agendamento: i.c.clone(),
        }))
        .await,
    )?;
    verdict(
        "cpar.ListSchedules",
        cpar.list_schedules(req(ListSchedulesRequest {
            id_usuario: i.a.clone(),
            page_size: i.n,
            page_token: i.d.clone(),
        }))
        .await,
    )?;
    verdict(
        "cpar.CancelSchedule",
        cpar.cancel_schedule(req(CancelScheduleRequest {
            id_agendamento: i.d.clone(),
        }))
        .await,
    )?;

    verdict(
        "notificacoes.SendNotification",
        notificacoes
            .send_notification(req(SendNotificationRequest {
                id_usuario: i.a.clone(),
                message: i.b.clone(),
                chave_idempotencia: i.c.clone(),
                origem: i.d.clone(),
            }))
            .await,
    )?;
    verdict(
        "notificacoes.NotifySchedule",
        notificacoes
            .notify_schedule(req(NotifyScheduleRequest {
                id_agendamento: i.a.clone(),
                id_usuario: i.b.clone(),
                message: i.c.clone(),
                chave_idempotencia: i.d.clone(),
            }))
            .await,
    )?;
    verdict(
        "notificacoes.ListNotifications",
        notificacoes
            .list_notifications(req(ListNotificationsRequest {
                id_usuario: i.a.clone(),
                unread_only: i.flag,
                page_size: i.n,
                page_token: i.b.clone(),
            }))
            .await,
    )?;
    verdict(
        "notificacoes.MarkAsRead",
        notificacoes
            .mark_as_read(req(MarkAsReadRequest {
                id_usuario: i.a.clone(),
                ids: i.list.clone(),
            }))
            .await,
    )?;
    // A stream that stays open when the request is good (until the call's deadline, 15 s):
    // its first answer, or nothing for a moment.
    let subscribed = async {
        let mut s = notificacoes
            .subscribe_notifications(req(SubscribeNotificationsRequest {
                id_usuario: i.c.clone(),
            }))
            .await?
            .into_inner();
        s.message().await.map(drop)
    };
    if let Ok(result) = tokio::time::timeout(Duration::from_millis(200), subscribed).await {
        verdict("notificacoes.SubscribeNotifications", result)?;
    }

    verdict(
        "insights.RegisterMetrics",
        insights
            .register_metrics(req(RegisterMetricsRequest {
                id_interacao: i.b.clone(),
            }))
            .await,
    )?;
    verdict(
        "insights.RecordInteraction",
        insights
            .record_interaction(req(RecordInteractionRequest {
                id_interacao: i.a.clone(),
                id_curso: i.b.clone(),
                id_usuario: i.c.clone(),
                latencia_ms: i.big,
                modelo: i.d.clone(),
                sucesso: i.flag,
            }))
            .await,
    )?;
    verdict(
        "insights.GetCourseInsights",
        insights
            .get_course_insights(req(GetCourseInsightsRequest {
                id_curso: i.c.clone(),
            }))
            .await,
    )?;

    verdict(
        "midia.GetMedia",
        midia
            .get_media(req(GetCourseMediaRequest {
                id_curso: i.d.clone(),
            }))
            .await,
    )?;
    verdict(
        "midia.AddMedia",
        midia
            .add_media(req(AddMediaRequest {
                id_curso: i.a.clone(),
                titulo: i.b.clone(),
                tipo: i.c.clone(),
                url: i.d.clone(),
                duracao_segundos: i.n,
                ordem: i.n.wrapping_mul(7),
                descricao: i.list.join(" "),
            }))
            .await,
    )?;
    for (name, status) in [
        ("cursos", cursos.get_status(req(Empty {})).await),
        ("chatbot", chatbot.get_status(req(Empty {})).await),
        ("cpar", cpar.get_status(req(Empty {})).await),
        ("notificacoes", notificacoes.get_status(req(Empty {})).await),
        ("insights", insights.get_status(req(Empty {})).await),
        ("midia", midia.get_status(req(Empty {})).await),
    ] {
        verdict(&format!("{name}.GetStatus"), status)?;
    }
    Ok(())
}

#[test]
fn no_request_gets_internal_or_breaks_a_service() {
    let rt = common::runtime();
    let platform = rt.block_on(common::spawn_platform());
    let cases = common::run_cases(&rt, input(), 24, 64, |i| every_rpc(&platform, i));
    rt.block_on(platform.assert_serving());
    eprintln!("{cases} cases, every RPC of the six services each; all answered as they should");
}
