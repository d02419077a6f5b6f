//! cpar's input limits (`aula_api::limits`): every field over its limit is INVALID_ARGUMENT
//! naming the field and the limit, a 1 MB bad id comes back as a short message, and cpar keeps
//! serving.

mod common;

use aula_api::{limits, ListSchedulesRequest, NotifyScheduleRequest};
use aula_runtime::testing::{assert_invalid, closed_url};
use common::*;

#[tokio::test]
async fn every_field_is_bounded_and_bad_input_is_quoted_short() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start_cpar(dir.path(), &[("NOTIFICACOES_ADDR", &closed_url())]).await;
    let mut c = cpar(&svc);
    let limit = limits::SCHEDULE_TITLE_CHARS;
    let says = format!("at most {limit} characters");
    let titulo = "a".repeat(limit + 1);
    assert_invalid(
        c.create_schedule(booking("1", &titulo, 3600)).await,
        "titulo",
        &says,
    );
    let wide = aula_runtime::testing::wide_text(limit);
    c.create_schedule(booking("1", &wide, 3600)).await.unwrap();

    let huge = "3".repeat(1 << 20);
    let id = "must be a positive integer";
    assert_invalid(
        c.create_schedule(booking(&huge, "t", 3600)).await,
        "id_usuario",
        id,
    );
    let get = schedule(&huge);
    assert_invalid(c.get_schedule(get).await, "id_agendamento", id);
    let cancel = cancel(&huge);
    assert_invalid(c.cancel_schedule(cancel).await, "id_agendamento", id);
    let list = ListSchedulesRequest {
        id_usuario: huge.clone(),
        ..Default::default()
    };
    assert_invalid(c.list_schedules(list).await, "id_usuario", id);
    let notify = NotifyScheduleRequest {
        id_agendamento: huge,
        ..Default::default()
    };
    assert_invalid(c.notify_schedule(notify).await, "id_agendamento", id);
    // The fields cpar sets itself when it delivers are bounded like notificacoes bounds them.
    let notify = NotifyScheduleRequest {
        id_agendamento: "1".into(),
        message: "a".repeat(limits::NOTIFICATION_MESSAGE_CHARS + 1),
        ..Default::default()
    };
    let says = format!("at most {} characters", limits::NOTIFICATION_MESSAGE_CHARS);
    assert_invalid(c.notify_schedule(notify).await, "message", &says);
    let list = ListSchedulesRequest {
        id_usuario: "1".into(),
        page_token: "a".repeat(limits::PAGE_TOKEN_CHARS + 1),
        ..Default::default()
    };
    assert_invalid(c.list_schedules(list).await, "page_token", "at most");
    svc.assert_serving().await;
    svc.running.stop().await.unwrap();
}
