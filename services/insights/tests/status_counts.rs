//! `RegisterMetrics` answers with insights' status, counts included, and must not count the
//! whole interactions table on every write (issue #13). Rows added behind the service's back
//! would show at once in a count made per write; the answers count only the service's own
//! registrations until the cache's next load. `GetStatus` still counts afresh.

use aula_api::{insights_service_client::InsightsServiceClient, Empty, RegisterMetricsRequest};
use aula_runtime::testing::{self, Reply};

#[tokio::test]
async fn a_write_does_not_count_the_whole_table() {
    let (_dir, svc, mut c) =
        testing::start_alone(insights::service(), &[], InsightsServiceClient::new).await;
    let register = |id: &str| RegisterMetricsRequest {
        id_interacao: id.into(),
    };
    let first = c.register_metrics(register("int-0")).await.unwrap();
    let base = first.into_inner().insights_servico.unwrap().contagens["interacoes"];

    let mut sql = svc.sql().await;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) \
         INSERT INTO interacoes (id_interacao, criada_ms) SELECT 'outra-' || i, 0 FROM n",
    )
    .execute(&mut sql)
    .await
    .unwrap();

    for i in 1..=3 {
        let r = c
            .register_metrics(register(&format!("int-{i}")))
            .await
            .answer();
        assert_eq!(
            r.insights_servico.unwrap().contagens["interacoes"],
            base + i,
            "write {i}: its own registrations counted, the table not scanned"
        );
    }
    let status = c.get_status(Empty {}).await.answer();
    assert_eq!(
        status.contagens["interacoes"],
        base + 503,
        "GetStatus counts afresh"
    );
}
