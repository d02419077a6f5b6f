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
use std::{sync::Arc, time::Duration};
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

/// `client.method(message)` with a deadline, judged by [`verdict`] under the method's name.
macro_rules! call {
    ($client:ident.$method:ident($message:expr)) => {
        verdict(
            concat!(stringify!($client), ".", stringify!($method)),
            $client.$method(req($message)).await,
        )?
    };
}

async fn every_rpc(p: Arc<common::Platform>, i: Input) -> Result<(), TestCaseError> {
    let (mut cursos, mut chatbot, mut cpar) = (p.cursos(), p.chatbot(), p.cpar());
    let (mut notificacoes, mut insights, mut midia) = (p.notificacoes(), p.insights(), p.midia());
    let timestamp = Some(prost_types::Timestamp {
        seconds: i.big,
        nanos: i.n,
    });
    // What two services each take: cursos relays notices, cpar sends reminders, cursos asks
    // midia for a course's media, chatbot records its answers' metrics in insights.
    let notice = SendNotificationRequest {
        id_usuario: i.a.clone(),
        message: i.b.clone(),
        chave_idempotencia: i.c.clone(),
        origem: i.d.clone(),
    };
    let media = GetCourseMediaRequest {
        id_curso: i.a.clone(),
    };
    let metrics = RegisterMetricsRequest {
        id_interacao: i.b.clone(),
    };
    let reminder = NotifyScheduleRequest {
        id_agendamento: i.a.clone(),
        id_usuario: i.b.clone(),
        message: i.c.clone(),
        chave_idempotencia: i.d.clone(),
    };

    call!(cursos.get_user_courses(GetUserCoursesRequest {
        id_usuario: i.a.clone(),
    }));
    call!(cursos.get_course_media(media.clone()));
    call!(cursos.ask_question(AskQuestionRequest {
        id_curso: i.a.clone(),
        aula_contexto: i.b.clone(),
        duvida: i.c.clone(),
        id_usuario: i.d.clone(),
    }));
    call!(cursos.send_notification(notice.clone()));
    call!(cursos.list_courses(ListCoursesRequest {
        page_size: i.n,
        page_token: i.a.clone(),
    }));
    call!(cursos.get_course(GetCourseRequest {
        id_curso: i.b.clone(),
    }));
    call!(cursos.enroll(EnrollRequest {
        id_usuario: i.a.clone(),
        id_curso: i.b.clone(),
    }));
    call!(cursos.unenroll(UnenrollRequest {
        id_usuario: i.a.clone(),
        id_curso: i.b.clone(),
    }));

    let duvida = ChatbotDuvidaRequest {
        aula_contexto: i.a.clone(),
        duvida: i.b.clone(),
        id_curso: i.c.clone(),
        nome_curso: i.d.clone(),
        ..Default::default()
    };
    call!(chatbot.resolve_duvida(duvida.clone()));
    let streamed = async {
        let mut s = chatbot
            .resolve_duvida_stream(req(duvida))
            .await?
            .into_inner();
        while s.message().await?.is_some() {}
        Ok::<_, Status>(())
    };
    verdict("chatbot.resolve_duvida_stream", streamed.await)?;
    call!(chatbot.register_metrics(metrics.clone()));

    call!(cpar.create_schedule(CreateScheduleRequest {
        id_usuario: i.a.clone(),
        titulo: i.b.clone(),
        inicio: timestamp,
        duracao_minutos: i.n,
    }));
    call!(cpar.notify_schedule(reminder.clone()));
    call!(cpar.get_schedule(GetScheduleRequest {
        id_agendamento: i.c.clone(),
    }));
    call!(cpar.list_schedules(ListSchedulesRequest {
        id_usuario: i.a.clone(),
        page_size: i.n,
        page_token: i.d.clone(),
    }));
    call!(cpar.cancel_schedule(CancelScheduleRequest {
        id_agendamento: i.d.clone(),
    }));

    call!(notificacoes.send_notification(notice));
    call!(notificacoes.notify_schedule(reminder));
    call!(notificacoes.list_notifications(ListNotificationsRequest {
        id_usuario: i.a.clone(),
        unread_only: i.flag,
        page_size: i.n,
        page_token: i.b.clone(),
    }));
    call!(notificacoes.mark_as_read(MarkAsReadRequest {
        id_usuario: i.a.clone(),
        ids: i.list.clone(),
    }));
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
        verdict("notificacoes.subscribe_notifications", result)?;
    }

    call!(insights.register_metrics(metrics));
    call!(insights.record_interaction(RecordInteractionRequest {
        id_interacao: i.a.clone(),
        id_curso: i.b.clone(),
        id_usuario: i.c.clone(),
        latencia_ms: i.big,
        modelo: i.d.clone(),
        sucesso: i.flag,
    }));
    call!(insights.get_course_insights(GetCourseInsightsRequest {
        id_curso: i.c.clone(),
    }));

    call!(midia.get_media(media));
    call!(midia.add_media(AddMediaRequest {
        id_curso: i.a.clone(),
        titulo: i.b.clone(),
        tipo: i.c.clone(),
        url: i.d.clone(),
        duracao_segundos: i.n,
        ordem: i.n.wrapping_mul(7),
        descricao: i.list.join(" "),
    }));
    for (name, status) in [
        ("cursos", cursos.get_status(req(Empty {})).await),
        ("chatbot", chatbot.get_status(req(Empty {})).await),
        ("cpar", cpar.get_status(req(Empty {})).await),
        ("notificacoes", notificacoes.get_status(req(Empty {})).await),
        ("insights", insights.get_status(req(Empty {})).await),
        ("midia", midia.get_status(req(Empty {})).await),
    ] {
        verdict(&format!("{name}.get_status"), status)?;
    }
    Ok(())
}

#[test]
fn no_request_gets_internal_or_breaks_a_service() {
    let cases = common::run_cases_on_platform(input(), 24, 64, every_rpc);
    eprintln!("{cases} cases, every RPC of the six services each; all answered as they should");
}
