//! Live delivery of new notifications to subscribers.
//!
//! Subscribers listen on an in-process broadcast. On SQLite (one process owns the file's
//! subscribers) the storing handler publishes to it directly. On PostgreSQL several replicas
//! share the table, so an insert trigger announces each new id with `pg_notify` on a channel
//! named after the schema, and a task per replica LISTENs (a `PgListener`, which reconnects by
//! itself), reads the row once and publishes it; the storing replica hears its own inserts the
//! same way, so nothing is published twice.
//!
//! Every subscription holds a place in [`Streams`] (per user and in total), so the number of
//! receivers, and the memory they hold, is bounded.

use crate::{
    domain::Notification,
    store::Store,
    streams::{Refused, StreamPermit, Streams},
};
use anyhow::Context as _;
use aula_runtime::{db::Dialect, ServiceContext};
use std::{sync::Arc, time::Duration};
use tokio::sync::broadcast;

/// How many notifications a slow subscriber may fall behind before it skips some.
const CAPACITY: usize = 1024;

#[derive(Clone)]
pub struct Fanout {
    tx: broadcast::Sender<Arc<Notification>>,
    /// True when the storing handler publishes (SQLite); false when LISTEN/NOTIFY does.
    local: bool,
    streams: Streams,
}

impl Fanout {
    /// Starts the fan-out; on PostgreSQL the LISTEN is in place when this returns, so a
    /// subscriber connected right after start-up misses nothing.
    pub async fn start(ctx: &ServiceContext, store: Store) -> anyhow::Result<Self> {
        let (tx, _) = broadcast::channel(CAPACITY);
        let streams = Streams::from_env(&ctx.settings().env, ctx.metrics())?;
        let db = ctx.db();
        if db.dialect == Dialect::Sqlite {
            return Ok(Self {
                tx,
                local: true,
                streams,
            });
        }
        let (url, schema) = db
            .postgres()
            .context("a PostgreSQL database without its URL")?;
        let mut listener = sqlx::postgres::PgListener::connect(url)
            .await
            .context("connecting the notification listener to PostgreSQL")?;
        listener
            .listen(schema)
            .await
            .with_context(|| format!("LISTEN on channel {schema}"))?;
        let publish = tx.clone();
        let draining = ctx.draining();
        ctx.spawn(async move {
            tokio::pin!(draining);
            loop {
                let received = tokio::select! {
                    _ = &mut draining => return,
                    r = listener.recv() => r,
                };
                match received {
                    Ok(n) => {
                        let Ok(id) = n.payload().parse::<i64>() else {
                            tracing::warn!(payload = n.payload(), "unexpected notification payload");
                            continue;
                        };
                        match store.get(id).await {
                            Ok(Some(n)) => {
                                let _ = publish.send(Arc::new(n));
                            }
                            Ok(None) => {}
                            Err(e) => tracing::warn!(error = %e, id, "reading an announced notification failed"),
                        }
                    }
                    Err(e) => {
                        // PgListener reconnects on the next recv; notifications announced
                        // while it was away reach subscribers only through ListNotifications.
                        tracing::warn!(error = %e, "notification listener lost PostgreSQL; reconnecting");
                        tokio::select! {
                            _ = &mut draining => return,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
        });
        Ok(Self {
            tx,
            local: false,
            streams,
        })
    }

    /// Called after a new notification is stored.
    pub fn stored(&self, n: &Notification) {
        if self.local {
            let _ = self.tx.send(Arc::new(n.clone()));
        }
    }

    /// A receiver of every new notification, and the place it holds among `user`'s streams;
    /// refused beyond the limits.
    pub fn subscribe(
        &self,
        user: i64,
    ) -> Result<(broadcast::Receiver<Arc<Notification>>, StreamPermit), Refused> {
        let permit = self.streams.open(user)?;
        Ok((self.tx.subscribe(), permit))
    }
}
