//! `SendNotification` answers with notificacoes' status, counts included, and must not count
//! the whole table for it on every write (issue #13: 99 ms per call at 2 million rows). The
//! test adds rows behind the service's back: a count made per write would see them at once;
//! the service's counts see only its own writes until the cache's next load.

use aula_api::{
    notificacoes_service_client::NotificacoesServiceClient, Empty, MarkAsReadRequest,
    SendNotificationRequest,
};
use aula_runtime::testing;

#[tokio::test]
async fn a_write_does_not_count_the_whole_table() {
    let dir = tempfile::tempdir().unwrap();
    let svc = testing::spawn(notificacoes::service(), dir.path(), &[])
        .await
        .unwrap();
    let mut c = NotificacoesServiceClient::new(svc.channel());
    let status = c.get_status(Empty {}).await.unwrap().into_inner();
    let (total, unread) = (
        status.contagens["notificacoes"],
        status.contagens["nao_lidas"],
    );

    // 500 rows the service did not write (another replica's, say).
    let mut sql = svc.sql().await;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) \
         INSERT INTO notificacoes (id_usuario, mensagem, lida, criada_ms, origem) \
         SELECT 9, 'de outra réplica', FALSE, 0, 'cursos' FROM n",
    )
    .execute(&mut sql)
    .await
    .unwrap();

    let mut ids = Vec::new();
    for i in 1..=5 {
        let r = c
            .send_notification(SendNotificationRequest {
                id_usuario: "7".into(),
                message: format!("aviso {i}"),
                chave_idempotencia: String::new(),
                origem: "cursos".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let counts = r.notificacao_servico.unwrap().contagens;
        assert_eq!(
            (counts["notificacoes"], counts["nao_lidas"]),
            (total + i, unread + i),
            "write {i}: its own writes counted, the table not scanned"
        );
        ids.push(r.id_notificacao);
    }
    let marked = c
        .mark_as_read(MarkAsReadRequest {
            id_usuario: "7".into(),
            ids: ids[..2].to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(marked.marcadas, 2);
    let status = c.get_status(Empty {}).await.unwrap().into_inner();
    assert_eq!(
        (
            status.contagens["notificacoes"],
            status.contagens["nao_lidas"]
        ),
        (total + 5, unread + 3),
        "marking as read is counted too"
    );
}
