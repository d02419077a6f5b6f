//! `SendNotification` answers with notificacoes' status, counts included, and must not count
//! the whole table for it (issues #13 and #16: a COUNT(*) took 99 ms per call, then ~1 s per
//! reload, at 2 million rows). The writes keep the counts in a row of their own, in the same
//! transaction (migration 0002_contagens), so they stay exact whoever writes: this replica,
//! another one, or SQL behind the service's back, however many at once. On PostgreSQL too
//! when `AULA_TEST_DATABASE_URL` is set.

use aula_api::{
    notificacoes_service_client::NotificacoesServiceClient, Empty, MarkAsReadRequest,
    SendNotificationRequest,
};
use aula_runtime::testing::{self, Reply};
use notificacoes::grpc::STATUS_TTL;
use sqlx::Row as _;

fn send(user: u32, key: String) -> SendNotificationRequest {
    SendNotificationRequest {
        id_usuario: user.to_string(),
        message: format!("aviso {key}"),
        chave_idempotencia: key,
        origem: "cursos".into(),
    }
}

/// (all, unread) as the status says.
fn counts(s: &aula_api::StatusResponse) -> (i64, i64) {
    (s.contagens["notificacoes"], s.contagens["nao_lidas"])
}

#[tokio::test]
async fn every_answer_counts_its_own_write() {
    let (_dir, _svc, mut c) =
        testing::start_alone(notificacoes::service(), &[], NotificacoesServiceClient::new).await;
    let (total, unread) = counts(&c.get_status(Empty {}).await.answer());
    assert_eq!((total, unread), (1, 1), "the demo's welcome");
    let mut ids = Vec::new();
    for i in 1..=5 {
        let r = c
            .send_notification(send(7, format!("proprio-{i}")))
            .await
            .answer();
        assert_eq!(
            counts(&r.notificacao_servico.unwrap()),
            (total + i, unread + i),
            "write {i} is in its own answer"
        );
        ids.push(r.id_notificacao);
    }
    // A retry of a key stored already is not a new notification.
    let again = c
        .send_notification(send(7, "proprio-1".into()))
        .await
        .answer();
    assert_eq!(
        counts(&again.notificacao_servico.unwrap()),
        (total + 5, unread + 5)
    );
    let marked = c
        .mark_as_read(MarkAsReadRequest {
            id_usuario: "7".into(),
            ids: ids[..2].to_vec(),
        })
        .await
        .answer();
    assert_eq!(marked.marcadas, 2);
    let status = c.get_status(Empty {}).await.answer();
    assert_eq!(
        counts(&status),
        (total + 5, unread + 3),
        "reads counted too"
    );
}

#[tokio::test]
async fn counts_stay_exact_under_concurrent_writes_from_anywhere() {
    let (_dir, svc) = testing::spawn_alone(notificacoes::service(), &[]).await;
    let client = NotificacoesServiceClient::new(svc.channel());

    // Eight writers at once: new notifications, retries of the same keys (stored once), and
    // each writer marking its own as read, some twice.
    let writers = (0..8u32).map(|w| {
        let mut c = client.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..20 {
                // Writers 0 and 1 send the same keys: each is stored once.
                let key = format!("w{}-{i}", w.max(1));
                let r = c.send_notification(send(100 + w, key)).await.unwrap();
                ids.push(r.into_inner().id_notificacao);
                if i % 5 == 4 {
                    let read = ids[ids.len() - 3..].to_vec();
                    c.mark_as_read(MarkAsReadRequest {
                        id_usuario: (100 + w).to_string(),
                        ids: read,
                    })
                    .await
                    .unwrap();
                }
            }
        })
    });
    // Meanwhile, rows written and removed behind the service's back (another replica, an
    // operator's SQL): the triggers count them as well.
    let mut sql = svc.sql().await;
    for i in 0..10 {
        sqlx::query(&format!(
            "INSERT INTO notificacoes (id_usuario, mensagem, lida, criada_ms, origem, chave) \
             VALUES (9, 'de outra réplica', {}, 0, 'cursos', 'fora-{i}')",
            if i % 2 == 0 { "TRUE" } else { "FALSE" }
        ))
        .execute(&mut sql)
        .await
        .unwrap();
    }
    for r in futures::future::join_all(writers).await {
        r.unwrap();
    }
    sqlx::query("DELETE FROM notificacoes WHERE chave IN ('fora-0', 'fora-1', 'w3-0')")
        .execute(&mut sql)
        .await
        .unwrap();

    // The truth, by a scan the service never makes.
    let truth = sqlx::query(
        "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN lida THEN 0 ELSE 1 END), 0) AS BIGINT) \
         FROM notificacoes",
    )
    .fetch_one(&mut sql)
    .await
    .unwrap();
    let truth: (i64, i64) = (truth.get(0), truth.get(1));
    // 1 welcome + 7 writers' 20 keys (0 and 1 share theirs) + 10 behind the back - 3 removed.
    assert_eq!(truth.0, 1 + 7 * 20 + 10 - 3);
    // What the service reports, once its counts are reloaded.
    tokio::time::sleep(STATUS_TTL + std::time::Duration::from_millis(50)).await;
    let status = client.clone().get_status(Empty {}).await.answer();
    assert_eq!(
        counts(&status),
        truth,
        "the counts the writes kept are exact"
    );
}
