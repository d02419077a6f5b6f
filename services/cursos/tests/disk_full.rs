//! A full disk under SQLite loses no acknowledged enrolment (issue #13).
//!
//! cursos' data directory is a small tmpfs the test fills with a ballast file while writers
//! enrol users, then frees (what must hold meanwhile: `testing::disk::fill_and_free_under_load`).
//! Every acknowledged enrolment must be in the file afterwards. Before the fix, a connection
//! left inside a transaction by a failed COMMIT acknowledged writes that were never committed,
//! and after the space was freed every write failed with "database is locked".
//!
//! Needs root to mount the tmpfs (CI runs as root; elsewhere it says loudly that it skipped).

mod common;

use aula_runtime::testing::assert_none_lost;
use aula_runtime::testing::disk::{fill_and_free_under_load, SmallDisk};
use common::{enroll, start_cursos};
use sqlx::Row;
use std::{collections::BTreeSet, time::Duration};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_loses_no_acknowledged_enrolment() {
    let Some((dir, disk)) = SmallDisk::for_sqlite("cursos", 8 << 10) else {
        return;
    };
    // start_cursos puts the data under <dir>/cursos: the tmpfs.
    let (svc, client) = start_cursos(dir.path(), &[]).await;
    let seen = fill_and_free_under_load(&svc, &disk, 6, move |n| {
        let mut client = client.clone();
        async move {
            let (user, course) = (n as i64, n as i64 % 5 + 1);
            let mut request = tonic::Request::new(enroll(&user.to_string(), &course.to_string()));
            request.set_timeout(Duration::from_secs(20));
            client.enroll(request).await.map(|_| (user, course))
        }
    })
    .await;

    let mut sql = svc.sql().await;
    let present: BTreeSet<(i64, i64)> =
        sqlx::query("SELECT id_usuario, id_curso FROM inscricoes WHERE id_usuario >= 1000000")
            .fetch_all(&mut sql)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1)))
            .collect();
    drop(sql);
    svc.running.stop().await.unwrap();
    let lost: Vec<_> = seen.acked.iter().filter(|a| !present.contains(a)).collect();
    assert_none_lost(seen.acked.len(), &lost, "acknowledged enrolments lost");
}
