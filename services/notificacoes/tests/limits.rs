//! notificacoes' input limits (`aula_api::limits`, the ones cursos and cpar hold their senders
//! to): every field over its limit is INVALID_ARGUMENT naming the field and the limit, a 1 MB bad
//! id comes back as a short message, and notificacoes keeps serving.

use aula_api::{
    limits, notificacoes_service_client::NotificacoesServiceClient as Client,
    ListNotificationsRequest, MarkAsReadRequest, NotifyScheduleRequest, SendNotificationRequest,
    SubscribeNotificationsRequest,
};
use aula_runtime::testing::{assert_invalid, over_limit, start_alone, wide_text, NOT_AN_ID};

fn send(message: &str) -> SendNotificationRequest {
    SendNotificationRequest {
        id_usuario: "1".into(),
        message: message.into(),
        ..Default::default()
    }
}

/// A reminder of appointment 1 to user 1.
fn remind() -> NotifyScheduleRequest {
    NotifyScheduleRequest {
        id_agendamento: "1".into(),
        id_usuario: "1".into(),
        ..Default::default()
    }
}

fn mark(ids: Vec<String>) -> MarkAsReadRequest {
    MarkAsReadRequest {
        id_usuario: "1".into(),
        ids,
    }
}

fn list(id_usuario: &str, page_token: String) -> ListNotificationsRequest {
    ListNotificationsRequest {
        id_usuario: id_usuario.into(),
        page_token,
        ..Default::default()
    }
}

#[tokio::test]
async fn every_field_is_bounded_and_bad_input_is_quoted_short() {
    let (_dir, svc, mut c) = start_alone(notificacoes::service(), &[], Client::new).await;

    let (text, says) = over_limit(limits::NOTIFICATION_MESSAGE_CHARS);
    assert_invalid(c.send_notification(send(&text)).await, "message", &says);
    let longest = wide_text(limits::NOTIFICATION_MESSAGE_CHARS);
    c.send_notification(send(&longest)).await.unwrap();
    let (origem, says) = over_limit(limits::NOTIFICATION_ORIGIN_CHARS);
    let r = SendNotificationRequest {
        origem,
        ..send("Oi")
    };
    assert_invalid(c.send_notification(r).await, "origem", &says);
    let (key, says) = over_limit(limits::IDEMPOTENCY_KEY_CHARS);
    let mut r = send("Oi");
    r.chave_idempotencia = key.clone();
    assert_invalid(c.send_notification(r).await, "chave_idempotencia", &says);
    let mut r = remind();
    r.chave_idempotencia = key;
    assert_invalid(c.notify_schedule(r).await, "chave_idempotencia", &says);
    let (message, says) = over_limit(limits::NOTIFICATION_MESSAGE_CHARS);
    let r = NotifyScheduleRequest {
        message,
        ..remind()
    };
    assert_invalid(c.notify_schedule(r).await, "message", &says);
    let r = mark(vec!["1".to_string(); limits::MARK_AS_READ_IDS + 1]);
    let says = format!("at most {} elements", limits::MARK_AS_READ_IDS);
    assert_invalid(c.mark_as_read(r).await, "ids", &says);
    let (token, says) = over_limit(limits::PAGE_TOKEN_CHARS);
    assert_invalid(
        c.list_notifications(list("1", token)).await,
        "page_token",
        &says,
    );

    let huge = "8".repeat(1 << 20);
    let mut r = send("Oi");
    r.id_usuario = huge.clone();
    assert_invalid(c.send_notification(r).await, "id_usuario", NOT_AN_ID);
    let mut r = remind();
    r.id_agendamento = huge.clone();
    assert_invalid(c.notify_schedule(r).await, "id_agendamento", NOT_AN_ID);
    let r = mark(vec![huge.clone()]);
    assert_invalid(c.mark_as_read(r).await, "ids", NOT_AN_ID);
    let r = list(&huge, String::new());
    assert_invalid(c.list_notifications(r).await, "id_usuario", NOT_AN_ID);
    let r = SubscribeNotificationsRequest { id_usuario: huge };
    assert_invalid(c.subscribe_notifications(r).await, "id_usuario", NOT_AN_ID);
    svc.assert_serving().await;
    svc.running.stop().await.unwrap();
}
