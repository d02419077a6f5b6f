//! notificacoes' input limits (`aula_api::limits`, the ones cursos and cpar hold their senders
//! to): every field over its limit is INVALID_ARGUMENT naming the field and the limit, a 1 MB bad
//! id comes back as a short message, and notificacoes keeps serving.

use aula_api::{
    limits, notificacoes_service_client::NotificacoesServiceClient, ListNotificationsRequest,
    MarkAsReadRequest, NotifyScheduleRequest, SendNotificationRequest,
    SubscribeNotificationsRequest,
};
use aula_runtime::testing::{assert_invalid, spawn, wide_text};

fn send(message: &str) -> SendNotificationRequest {
    SendNotificationRequest {
        id_usuario: "1".into(),
        message: message.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn every_field_is_bounded_and_bad_input_is_quoted_short() {
    let dir = tempfile::tempdir().unwrap();
    let svc = spawn(notificacoes::service(), dir.path(), &[])
        .await
        .unwrap();
    let mut c = NotificacoesServiceClient::new(svc.channel());
    let over = |limit: usize| ("a".repeat(limit + 1), format!("at most {limit} characters"));

    let (text, says) = over(limits::NOTIFICATION_MESSAGE_CHARS);
    assert_invalid(c.send_notification(send(&text)).await, "message", &says);
    let longest = wide_text(limits::NOTIFICATION_MESSAGE_CHARS);
    c.send_notification(send(&longest)).await.unwrap();
    let (text, says) = over(limits::NOTIFICATION_ORIGIN_CHARS);
    let r = SendNotificationRequest {
        origem: text,
        ..send("Oi")
    };
    assert_invalid(c.send_notification(r).await, "origem", &says);
    let (text, says) = over(limits::IDEMPOTENCY_KEY_CHARS);
    let r = SendNotificationRequest {
        chave_idempotencia: text.clone(),
        ..send("Oi")
    };
    assert_invalid(c.send_notification(r).await, "chave_idempotencia", &says);
    let r = NotifyScheduleRequest {
        id_agendamento: "1".into(),
        id_usuario: "1".into(),
        chave_idempotencia: text,
        ..Default::default()
    };
    assert_invalid(c.notify_schedule(r).await, "chave_idempotencia", &says);
    let (text, says) = over(limits::NOTIFICATION_MESSAGE_CHARS);
    let r = NotifyScheduleRequest {
        id_agendamento: "1".into(),
        id_usuario: "1".into(),
        message: text,
        ..Default::default()
    };
    assert_invalid(c.notify_schedule(r).await, "message", &says);
    let ids = vec!["1".to_string(); limits::MARK_AS_READ_IDS + 1];
    let r = MarkAsReadRequest {
        id_usuario: "1".into(),
        ids,
    };
    let says = format!("at most {} elements", limits::MARK_AS_READ_IDS);
    assert_invalid(c.mark_as_read(r).await, "ids", &says);
    let (text, says) = over(limits::PAGE_TOKEN_CHARS);
    let r = ListNotificationsRequest {
        id_usuario: "1".into(),
        page_token: text,
        ..Default::default()
    };
    assert_invalid(c.list_notifications(r).await, "page_token", &says);

    let huge = "8".repeat(1 << 20);
    let id = "must be a positive integer";
    let r = SendNotificationRequest {
        id_usuario: huge.clone(),
        ..send("Oi")
    };
    assert_invalid(c.send_notification(r).await, "id_usuario", id);
    let r = NotifyScheduleRequest {
        id_agendamento: huge.clone(),
        id_usuario: "1".into(),
        ..Default::default()
    };
    assert_invalid(c.notify_schedule(r).await, "id_agendamento", id);
    let r = MarkAsReadRequest {
        id_usuario: "1".into(),
        ids: vec![huge.clone()],
    };
    assert_invalid(c.mark_as_read(r).await, "ids", id);
    let r = ListNotificationsRequest {
        id_usuario: huge.clone(),
        ..Default::default()
    };
    assert_invalid(c.list_notifications(r).await, "id_usuario", id);
    let r = SubscribeNotificationsRequest { id_usuario: huge };
    assert_invalid(c.subscribe_notifications(r).await, "id_usuario", id);
    svc.assert_serving().await;
    svc.running.stop().await.unwrap();
}
