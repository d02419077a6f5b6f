//! The outbox with a courier of the test's own (a message type that is not notificacoes'): what
//! it guarantees does not depend on what it delivers. A service whose only tables are the
//! outbox's runs in-process (on PostgreSQL with `AULA_TEST_DATABASE_URL`).

use super::{Courier, Delivery, Failure, Outbox};
use crate::{db::Db, server::ServiceDef, testing};
use serde::{Deserialize, Serialize};
use sqlx::migrate::Migrator;
use std::{
    sync::{
        atomic::{AtomicU32, Ordering::SeqCst},
        Mutex,
    },
    time::Duration,
};

#[derive(Debug, Serialize, Deserialize)]
struct Ping {
    n: u32,
}

/// What the receiver stored: (key, n), once per key as a real receiver stores it.
static STORED: Mutex<Vec<(String, u32)>> = Mutex::new(Vec::new());
/// Attempts at delivering 4, the message that fails twice before it passes.
static CALLS_OF_4: AtomicU32 = AtomicU32::new(0);
/// The outbox and database of the running test service (`build` is a plain function, so it
/// hands them over here).
static STARTED: Mutex<Option<(Outbox<Fake>, Db)>> = Mutex::new(None);

/// Refuses 3 for good; fails 4's first two attempts; stores the rest.
struct Fake;

impl Courier for Fake {
    type Message = Ping;
    type Receipt = u32;

    fn receiver(&self) -> &'static str {
        "fake"
    }

    async fn deliver(&self, key: &str, ping: Ping) -> Result<u32, Failure> {
        match ping.n {
            3 => return Err(tonic::Status::invalid_argument("never").into()),
            4 if CALLS_OF_4.fetch_add(1, SeqCst) < 2 => {
                return Err(tonic::Status::unavailable("later").into())
            }
            _ => {}
        }
        let mut stored = STORED.lock().unwrap();
        if !stored.iter().any(|(k, _)| k == key) {
            stored.push((key.to_string(), ping.n));
        }
        Ok(ping.n)
    }
}

/// The outbox's own migrations, as a service with no tables of its own would run them.
static SQLITE: Migrator = sqlx::migrate!("./migrations/outbox/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/outbox/postgres");

fn service() -> ServiceDef {
    ServiceDef {
        spec: crate::spec::CPAR,
        migrations: Some(crate::db::Migrations {
            sqlite: &SQLITE,
            postgres: &POSTGRES,
            outbox: false,
            released: &[],
        }),
        demo: None,
        build: |ctx| {
            Box::pin(async move {
                let outbox = Outbox::start(&ctx, Fake).await?;
                *STARTED.lock().unwrap() = Some((outbox, ctx.db().clone()));
                Ok(tonic::service::Routes::default())
            })
        },
    }
}

async fn enqueue(outbox: &Outbox<Fake>, db: &Db, key: &str, n: u32, commit: bool) -> i64 {
    let mut tx = db.pool.begin().await.unwrap();
    let id = outbox.enqueue(&mut tx, key, &Ping { n }).await.unwrap();
    if commit {
        tx.commit().await.unwrap();
    } else {
        tx.rollback().await.unwrap();
    }
    id
}

#[tokio::test]
async fn any_courier_gets_the_outboxs_guarantees() {
    let dir = tempfile::tempdir().unwrap();
    let _svc = testing::spawn(service(), dir.path(), &[]).await.unwrap();
    let (outbox, db) = STARTED.lock().unwrap().take().expect("built");

    // Committed, then delivered now, with the receiver's answer.
    let id = enqueue(&outbox, &db, "k1", 1, true).await;
    // (Unless the worker's own look, at start, came after the commit and took it first.)
    match outbox.deliver_now(id, Duration::from_secs(3)).await {
        Delivery::Delivered(n) => assert_eq!(n, 1),
        Delivery::Pending { reason } => assert_eq!(reason, "another worker is delivering it"),
    }
    // Rolled back with the change that caused it: never delivered.
    enqueue(&outbox, &db, "k2", 2, false).await;
    // Refused for good: a dead letter. Failing twice: retried, then delivered once.
    enqueue(&outbox, &db, "k3", 3, true).await;
    enqueue(&outbox, &db, "k4", 4, true).await;
    // One key, one message: a second enqueue of a waiting key fails.
    let mut tx = db.pool.begin().await.unwrap();
    let again = outbox.enqueue(&mut tx, "k4", &Ping { n: 4 }).await;
    assert!(crate::db::is_unique_violation(&again.unwrap_err()));
    drop(tx);
    outbox.wake();

    testing::eventually(testing::SETTLE, "the outbox to settle", || async {
        let settled = outbox.pending().await.unwrap() == 0;
        (settled && outbox.dead_letters().await.unwrap() == 1).then_some(())
    })
    .await;
    let mut stored = STORED.lock().unwrap().clone();
    stored.sort();
    assert_eq!(stored, [("k1".to_string(), 1), ("k4".to_string(), 4)]);
    assert_eq!(
        CALLS_OF_4.load(SeqCst),
        3,
        "4 was retried after each failure, then left"
    );
}
