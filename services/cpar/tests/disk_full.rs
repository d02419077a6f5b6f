//! A full disk under SQLite loses no acknowledged booking (issue #13).
//!
//! cpar's data directory is a small tmpfs the test fills while writers book appointments, then
//! frees (`testing::disk::fill_and_free_under_load`). Every acknowledged id must exist
//! afterwards, and no two bookings may have been answered with the same id. Before the fix,
//! `INSERT ... RETURNING` outside a transaction answered the id before the commit failed for
//! the full disk: the fault harness saw 62 bookings acknowledged as the same id, none stored.
//!
//! Needs root to mount the tmpfs (CI runs as root; elsewhere it says loudly that it skipped).

mod common;

use aula_runtime::testing::assert_none_lost;
use aula_runtime::testing::disk::{fill_and_free_under_load, SmallDisk};
use common::{booking, cpar, start_cpar};
use sqlx::Row;
use std::{collections::BTreeSet, time::Duration};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_loses_no_acknowledged_booking() {
    let Some((dir, disk)) = SmallDisk::for_sqlite("", 8 << 10) else {
        return;
    };
    let closed = aula_runtime::testing::closed_url();
    let svc = start_cpar(dir.path(), &[("NOTIFICACOES_ADDR", &closed)]).await;
    let client = cpar(&svc);
    let seen = fill_and_free_under_load(&svc, &disk, 6, move |n| {
        let mut client = client.clone();
        async move {
            let mut request = tonic::Request::new(booking(&n.to_string(), "Revisão", 3600));
            request.set_timeout(Duration::from_secs(20));
            let s = client.create_schedule(request).await?.into_inner();
            Ok(s.id_agendamento.parse::<i64>().expect("a numeric id"))
        }
    })
    .await;

    let mut sql = svc.sql().await;
    let present: BTreeSet<i64> = sqlx::query("SELECT id FROM agendamentos")
        .fetch_all(&mut sql)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<i64, _>(0))
        .collect();
    drop(sql);
    svc.running.stop().await.unwrap();
    let distinct: BTreeSet<i64> = seen.acked.iter().copied().collect();
    let lost: Vec<_> = distinct.difference(&present).collect();
    eprintln!(
        "acknowledged {} ids, {} distinct",
        seen.acked.len(),
        distinct.len()
    );
    assert_eq!(
        distinct.len(),
        seen.acked.len(),
        "two bookings were answered with the same id"
    );
    assert_none_lost(distinct.len(), &lost, "acknowledged bookings lost");
}
