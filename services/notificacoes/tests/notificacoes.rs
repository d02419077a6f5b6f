//! notificacoes in-process: every RPC with its error paths, idempotency, paging, live streams,
//! persistence. Runs on SQLite, or on PostgreSQL when AULA_TEST_DATABASE_URL is set.

use aula_api::{
    notificacoes_service_client::NotificacoesServiceClient, Empty, ListNotificationsRequest,
    MarkAsReadRequest, Notification, NotifyScheduleRequest, SendNotificationRequest,
    SubscribeNotificationsRequest,
};
use aula_runtime::testing::{self, Reply, TestService};
use std::{path::Path, time::Duration};
use tonic::{transport::Channel, Code};

type Client = NotificacoesServiceClient<Channel>;

/// The service on the data in `dir`, and a client of it.
async fn start(dir: &Path) -> (TestService, Client) {
    testing::start_in(notificacoes::service(), dir, &[], Client::new).await
}

/// The service alone in a temporary directory of its own, and a client of it.
async fn alone() -> (tempfile::TempDir, TestService, Client) {
    testing::start_alone(notificacoes::service(), &[], Client::new).await
}

async fn send(c: &mut Client, user: &str, message: &str, key: &str) -> String {
    c.send_notification(SendNotificationRequest {
        id_usuario: user.into(),
        message: message.into(),
        chave_idempotencia: key.into(),
        origem: "cursos".into(),
    })
    .await
    .expect("SendNotification")
    .into_inner()
    .id_notificacao
}

async fn list(c: &mut Client, user: &str, unread_only: bool) -> Vec<Notification> {
    testing::notifications_of(c, user, unread_only).await
}

fn assert_invalid(r: Result<impl std::fmt::Debug, tonic::Status>, field: &str) {
    let e = r.expect_err("an invalid request is refused");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with(field), "{field}: {e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_demo_welcome() {
    let (_dir, s, mut c) = alone().await;
    let status = c.get_status(Empty {}).await.answer();
    assert_eq!(status.servico, "notificacoes");
    assert_eq!(status.contagens["notificacoes"], 1);
    assert_eq!(status.contagens["nao_lidas"], 1);
    let welcome = list(&mut c, "1", false).await;
    assert_eq!(welcome.len(), 1);
    assert!(welcome[0].message.contains("Bem-vindo"));
    assert!(!welcome[0].lida);
    assert!(welcome[0].criada_em.is_some());
    s.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_validates_and_stores_once_per_key() {
    let (_dir, s, mut c) = alone().await;

    let req = |user: &str, msg: &str| SendNotificationRequest {
        id_usuario: user.into(),
        message: msg.into(),
        chave_idempotencia: String::new(),
        origem: String::new(),
    };
    assert_invalid(c.send_notification(req("", "oi")).await, "id_usuario");
    assert_invalid(c.send_notification(req("abc", "oi")).await, "id_usuario");
    assert_invalid(c.send_notification(req("-3", "oi")).await, "id_usuario");
    assert_invalid(c.send_notification(req("7", "  ")).await, "message");
    assert_invalid(
        c.send_notification(req("7", &"x".repeat(2001))).await,
        "message",
    );

    let r = c
        .send_notification(SendNotificationRequest {
            id_usuario: "7".into(),
            message: "Inscrição confirmada".into(),
            chave_idempotencia: "k-1".into(),
            origem: "cursos".into(),
        })
        .await
        .answer();
    assert_eq!(r.message, "Notificação enviada para o usuário 7");
    assert!(!r.pendente);
    assert_eq!(r.notificacao_servico.unwrap().servico, "notificacoes");
    let again = send(&mut c, "7", "Inscrição confirmada", "k-1").await;
    assert_eq!(
        again, r.id_notificacao,
        "a retry returns the same notification"
    );
    let other = send(&mut c, "7", "Inscrição confirmada", "k-2").await;
    assert_ne!(other, r.id_notificacao);
    // Without a key every call is stored.
    c.send_notification(req("7", "sem chave")).await.unwrap();
    c.send_notification(req("7", "sem chave")).await.unwrap();

    let mine = list(&mut c, "7", false).await;
    assert_eq!(mine.len(), 4);
    assert_eq!(mine[3].origem, "cursos");
    assert_eq!(mine[0].origem, "api");

    let text = s.metrics_text().await;
    assert!(
        text.contains(r#"aula_notifications_stored_total{origem="cursos"} 2"#),
        "{text}"
    );
    s.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_schedule_stores_for_the_user_once() {
    let (_dir, s, mut c) = alone().await;
    let req = |user: &str, key: &str| NotifyScheduleRequest {
        id_agendamento: "9".into(),
        id_usuario: user.into(),
        message: "Seu plantão começa amanhã".into(),
        chave_idempotencia: key.into(),
    };
    assert_invalid(c.notify_schedule(req("", "a")).await, "id_usuario");
    let r = c.notify_schedule(req("5", "cpar-9")).await.answer();
    assert_eq!(r.id_agendamento, "9");
    assert!(r.message.contains('5'));
    assert!(!r.pendente);
    c.notify_schedule(req("5", "cpar-9")).await.unwrap();
    let got = list(&mut c, "5", false).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].origem, "cpar");
    assert_eq!(got[0].message, "Seu plantão começa amanhã");
    s.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_is_newest_first_without_repeats_while_new_items_arrive() {
    let (_dir, s, mut c) = alone().await;
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(send(&mut c, "8", &format!("n{i}"), "").await);
    }
    let page = |token: String| ListNotificationsRequest {
        id_usuario: "8".into(),
        unread_only: false,
        page_size: 2,
        page_token: token,
    };
    let first = c.list_notifications(page(String::new())).await.answer();
    assert_eq!(
        first
            .notificacoes
            .iter()
            .map(|n| n.message.as_str())
            .collect::<Vec<_>>(),
        ["n4", "n3"]
    );
    // New notifications between pages land before the first page: no repeats, none skipped.
    for i in 5..8 {
        send(&mut c, "8", &format!("n{i}"), "").await;
    }
    let mut seen: Vec<String> = first
        .notificacoes
        .iter()
        .map(|n| n.message.clone())
        .collect();
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let p = c.list_notifications(page(token)).await.answer();
        seen.extend(p.notificacoes.iter().map(|n| n.message.clone()));
        token = p.next_page_token;
    }
    assert_eq!(seen, ["n4", "n3", "n2", "n1", "n0"]);

    let bad = |size: i32, token: &str| ListNotificationsRequest {
        id_usuario: "8".into(),
        unread_only: false,
        page_size: size,
        page_token: token.into(),
    };
    assert_invalid(c.list_notifications(bad(-1, "")).await, "page_size");
    assert_invalid(c.list_notifications(bad(2, "nope")).await, "page_token");
    assert_invalid(
        c.list_notifications(ListNotificationsRequest::default())
            .await,
        "id_usuario",
    );
    s.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_as_read_only_touches_the_users_notifications() {
    let (_dir, s, mut c) = alone().await;
    let a = send(&mut c, "11", "a", "").await;
    let b = send(&mut c, "11", "b", "").await;
    let theirs = send(&mut c, "12", "c", "").await;

    let r = c
        .mark_as_read(MarkAsReadRequest {
            id_usuario: "11".into(),
            ids: vec![a.clone(), theirs.clone(), a.clone()],
        })
        .await
        .answer();
    assert_eq!(r.marcadas, 1);
    let unread = list(&mut c, "11", true).await;
    assert_eq!(unread.iter().map(|n| n.id.clone()).collect::<Vec<_>>(), [b]);
    let all = list(&mut c, "11", false).await;
    assert!(all.iter().any(|n| n.id == a && n.lida));
    assert!(
        !list(&mut c, "12", false).await[0].lida,
        "another user's stays unread"
    );

    assert_invalid(
        c.mark_as_read(MarkAsReadRequest {
            id_usuario: "11".into(),
            ids: vec!["x".into()],
        })
        .await,
        "ids",
    );
    assert_invalid(
        c.mark_as_read(MarkAsReadRequest {
            id_usuario: String::new(),
            ids: vec![a],
        })
        .await,
        "id_usuario",
    );
    let none = c
        .mark_as_read(MarkAsReadRequest {
            id_usuario: "11".into(),
            ids: vec![],
        })
        .await
        .answer();
    assert_eq!(none.marcadas, 0);
    s.running.stop().await.unwrap();
}

async fn next_for(
    stream: &mut tonic::Streaming<Notification>,
) -> Option<Result<Notification, tonic::Status>> {
    tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("a notification within 20 s")
        .transpose()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_receive_their_new_notifications_and_streams_end_on_drain() {
    let (_dir, s, mut c) = alone().await;
    assert_invalid(
        c.subscribe_notifications(SubscribeNotificationsRequest::default())
            .await
            .map(|_| ()),
        "id_usuario",
    );
    let mut stream = c
        .subscribe_notifications(SubscribeNotificationsRequest {
            id_usuario: "21".into(),
        })
        .await
        .answer();
    send(&mut c, "22", "para outro", "").await;
    let id = send(&mut c, "21", "para você", "s-1").await;
    send(&mut c, "21", "para você", "s-1").await; // a retry is not announced again
    let second = send(&mut c, "21", "de novo", "").await;

    let n = next_for(&mut stream).await.unwrap().unwrap();
    assert_eq!(
        (n.id.as_str(), n.message.as_str()),
        (id.as_str(), "para você")
    );
    assert_eq!(n.id_usuario, "21");
    assert_eq!(n.origem, "cursos");
    let n = next_for(&mut stream).await.unwrap().unwrap();
    assert_eq!(n.id, second);

    // Draining ends the stream instead of holding the shutdown up.
    s.running.drain();
    let end = next_for(&mut stream).await;
    assert!(!matches!(end, Some(Ok(_))), "{end:?}");
    tokio::time::timeout(Duration::from_secs(20), s.running.wait())
        .await
        .expect("stops within 20 s")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_survive_a_restart() {
    let (dir, s, mut c) = alone().await;
    let id = send(&mut c, "31", "guardada", "p-1").await;
    s.running.stop().await.unwrap();

    let (s, mut c) = start(dir.path()).await;
    let got = list(&mut c, "31", false).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, id);
    assert_eq!(
        send(&mut c, "31", "guardada", "p-1").await,
        id,
        "keys survive too"
    );
    s.running.stop().await.unwrap();
}

/// Two replicas sharing one PostgreSQL schema: a subscriber on one hears what the other
/// stores (LISTEN/NOTIFY). On SQLite replicas share a file but not memory: not applicable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_hears_notifications_stored_by_another_replica() {
    if !testing::on_postgres() {
        eprintln!("skipped: needs AULA_TEST_DATABASE_URL (PostgreSQL)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, mut ca) = start(dir.path()).await;
    let (b, mut cb) = start(dir.path()).await;
    let mut stream = ca
        .subscribe_notifications(SubscribeNotificationsRequest {
            id_usuario: "41".into(),
        })
        .await
        .answer();
    let id = send(&mut cb, "41", "via réplica B", "r-1").await;
    send(&mut cb, "41", "via réplica B", "r-1").await;
    let n = next_for(&mut stream).await.unwrap().unwrap();
    assert_eq!(n.id, id);
    assert_eq!(n.message, "via réplica B");
    let later = send(&mut ca, "41", "via réplica A", "").await;
    let n = next_for(&mut stream).await.unwrap().unwrap();
    assert_eq!(n.id, later, "the retry was announced once");
    a.running.stop().await.unwrap();
    b.running.stop().await.unwrap();
}
