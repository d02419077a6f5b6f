//! The demo rows come from seeding at start-up (`AULA_DEMO_DATA=1`, which `aula up` and these
//! tests set), never from the migrations, and only into a database that start creates: one
//! created without them holds none, and a restart adds nothing to a database in use
//! (cursos' tests/cursos.rs: a deleted demo enrolment stays deleted).

use aula_api::{midia_conteudo_service_client::MidiaConteudoServiceClient, Empty};
use aula_runtime::testing::{spawn, Reply, TestService};
use std::path::Path;

async fn start(dir: &Path, demo: &str) -> TestService {
    spawn(
        midia::service(),
        dir,
        &[("AULA_DEMO_DATA".into(), demo.into())],
    )
    .await
    .expect("midia starts")
}

async fn media_count(svc: &TestService) -> i64 {
    let mut client = MidiaConteudoServiceClient::new(svc.channel());
    let status = client.get_status(Empty {}).await.answer();
    status.contagens["midias"]
}

#[tokio::test]
async fn the_migrations_hold_no_demo_rows_and_seeding_fills_only_a_new_database() {
    let dir = tempfile::tempdir().unwrap();
    let off = start(&dir.path().join("off"), "0").await;
    assert_eq!(media_count(&off).await, 0);
    // Version 1 is recorded with the checksum of its first release, so databases created by
    // that release (demo rows included) keep starting.
    let checksum: Vec<u8> =
        sqlx::query_scalar("SELECT checksum FROM _sqlx_migrations WHERE version = 1")
            .fetch_one(&mut off.sql().await)
            .await
            .unwrap();
    let hex: String = checksum.iter().map(|b| format!("{b:02x}")).collect();
    let released = midia::service().migrations.unwrap().released[0];
    assert!([released.sqlite.0, released.postgres.0].contains(&hex.as_str()));
    off.running.stop().await.unwrap();
    // A database in use gets no rows it did not have.
    let again = start(&dir.path().join("off"), "1").await;
    assert_eq!(media_count(&again).await, 0);
    again.running.stop().await.unwrap();

    // A new one gets the 17 demo media, and keeps them once across a restart.
    for _ in 0..2 {
        let on = start(&dir.path().join("on"), "1").await;
        assert_eq!(media_count(&on).await, 17);
        on.running.stop().await.unwrap();
    }
}
