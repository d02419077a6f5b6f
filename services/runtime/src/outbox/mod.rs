//! A transactional outbox, generic over what it delivers: a message is stored in the same
//! transaction as the change that caused it, acknowledged after the commit, then delivered with
//! retries, backoff and an idempotency key by a [`Courier`], which knows the receiver's API (the
//! outbox does not). An outage of the receiver delays messages and loses none; a retry never
//! duplicates one (the receiver stores each key once). cursos and cpar deliver to notificacoes
//! with `notificacoes::courier::Notificacoes`.
//!
//! Several replicas can share one database: a row is claimed with a lease (a conditional
//! UPDATE) before delivery, so two workers never deliver it at the same time. A lease lasts as
//! long as the attempt may (the immediate attempt's timeout, or the peer timeout, plus a
//! margin), and an immediate attempt that runs out of time hands its row straight back to the
//! worker: redelivery starts within about a second of the receiver's return, whatever happened.
//!
//! Failures are classified once, here ([`Failure`], from the receiver's `tonic::Code`). The
//! receiver refusing a message for good (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION,
//! PERMISSION_DENIED, ...; or a row that cannot be read) makes it a dead letter at once: kept in
//! the table out of delivery (`morta_ms`, `ultimo_erro`), counted by
//! `aula_outbox_dead_letters_total` and the gauge `aula_outbox_dead_letters`, which the alert
//! `AulaOutboxDeadLetters` watches. Anything else is retried with the runtime's capped backoff,
//! at most `AULA_OUTBOX_MAX_ATTEMPTS` times (default 2880: a day at the 30 s cap), then it is a
//! dead letter too. While the receiver is known to be down ([`Courier::is_known_down`]) the
//! immediate attempt does not dial at all.
//!
//! The table's schema lives in the runtime's `migrations/outbox`; a service using the outbox
//! declares `aula_runtime::migrations!(outbox)`. A row holds the message as the courier's JSON,
//! so the table is the same whatever is delivered.
//!
//! # Layout
//! - [`courier`]: the [`Courier`] trait and [`Failure`], the classification of refusals.
//! - `table`: all of the outbox's SQL.
//! - `worker`: the delivery worker and the attempt at one row; the outbox's metrics.

pub mod courier;
mod table;
mod worker;

pub use courier::{Courier, Failure};

use crate::{db::Db, server::ServiceContext};
use sqlx::AnyConnection;
use std::{sync::Arc, time::Duration};
use worker::{OutboxMetrics, LEASE_MARGIN};

/// Attempts before a message that keeps failing is given up (a day at the 30 s cap).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 2880;

/// The outcome of an immediate delivery attempt.
#[derive(Debug, Clone)]
pub enum Delivery<R> {
    /// Delivered; what the receiver answered.
    Delivered(R),
    /// Stored and queued: the receiver did not take it now; the worker will retry.
    Pending { reason: String },
}

/// One service's outbox, delivering with the courier `C`.
pub struct Outbox<C: Courier> {
    inner: Arc<Inner<C>>,
}

// Not derived: a derive would ask `C: Clone`, and the courier is shared, not copied.
impl<C: Courier> Clone for Outbox<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<C> {
    db: Db,
    courier: C,
    wake: tokio::sync::Notify,
    /// How long the worker's attempt may take: the peer timeout.
    attempt_timeout: Duration,
    max_attempts: u32,
    metrics: OutboxMetrics,
}

impl<C: Courier> Outbox<C> {
    /// Starts the delivery worker (the table comes from the service's migrations:
    /// `aula_runtime::migrations!(outbox)`).
    pub async fn start(ctx: &ServiceContext, courier: C) -> anyhow::Result<Self> {
        let settings = ctx.settings();
        let max_attempts = settings
            .env
            .parse("AULA_OUTBOX_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)?
            .max(1);
        let outbox = Self {
            inner: Arc::new(Inner {
                db: ctx.db().clone(),
                courier,
                wake: tokio::sync::Notify::new(),
                attempt_timeout: settings.server.peer_timeout,
                max_attempts,
                metrics: OutboxMetrics::register(ctx.metrics()),
            }),
        };
        let worker = outbox.clone();
        let draining = ctx.draining();
        ctx.spawn(async move {
            tokio::select! {
                _ = worker.run() => {}
                _ = draining => {}
            }
        });
        Ok(outbox)
    }

    /// Stores a message inside the caller's transaction; returns its row id. `key` makes the
    /// delivery idempotent end to end (and is unique in the table: a second enqueue of the same
    /// key while the first waits fails as a unique violation).
    pub async fn enqueue(
        &self,
        conn: &mut AnyConnection,
        key: &str,
        message: &C::Message,
    ) -> sqlx::Result<i64> {
        let payload = serde_json::to_string(message).expect("messages serialize");
        table::insert(conn, key, payload).await
    }

    /// Wakes the worker after a commit.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Tries to deliver one committed row now, within `timeout`; otherwise leaves it to the
    /// worker. Either way the message is safe.
    pub async fn deliver_now(&self, id: i64, timeout: Duration) -> Delivery<C::Receipt> {
        let receiver = self.inner.courier.receiver();
        // No dial at a peer every replica of which just failed: the worker retries on its
        // backoff, and a storm of callers does not become a storm of connection attempts.
        if self.inner.courier.is_known_down() {
            self.wake();
            return Delivery::Pending {
                reason: format!("{receiver} is down (its reconnect backoff is running)"),
            };
        }
        let lease = timeout + LEASE_MARGIN;
        let reason = match tokio::time::timeout(timeout, self.try_row(id, lease)).await {
            Ok(Ok(Some(delivered))) => return delivered,
            Ok(Ok(None)) => "another worker is delivering it".to_string(),
            Ok(Err(e)) => e,
            Err(_) => {
                // The attempt was cut off holding the lease: hand the row back at once (a
                // delivery still in flight is harmless: the key makes it one message).
                if let Err(e) = table::release(&self.inner.db.pool, id).await {
                    tracing::warn!(id, error = %e, "outbox: releasing a row failed; its lease runs out");
                }
                format!("{receiver} did not answer within {timeout:?}")
            }
        };
        self.wake();
        Delivery::Pending { reason }
    }

    /// Messages waiting for delivery (dead letters excluded).
    pub async fn pending(&self) -> sqlx::Result<i64> {
        table::pending(&self.inner.db.pool).await
    }

    /// Messages given up (dead letters).
    pub async fn dead_letters(&self) -> sqlx::Result<i64> {
        table::dead_letters(&self.inner.db.pool).await
    }
}

#[cfg(test)]
mod tests;
