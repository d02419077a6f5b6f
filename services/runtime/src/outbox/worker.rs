//! Delivery: the worker that looks for due rows, and the attempt at one row that both the
//! worker and [`Outbox::deliver_now`] make (claim, deliver, then delete, retry or bury).

use super::{
    table::{self, Then},
    Courier, Delivery, Failure, Outbox,
};
use crate::{
    backoff::Backoff,
    db::now_ms,
    metrics::{Counter, Gauge, Metrics},
    telemetry,
};
use std::time::Duration;
use tracing::Instrument;

/// Rows claimed per look; a full batch means more are due, so the worker looks again at once.
const BATCH: i64 = 32;
/// Between attempts at one message: 200 ms doubling to 30 s.
const RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
/// What a lease adds to the time an attempt may take, so that a slow attempt finishes (or is
/// cut off and releases its row) before another worker may claim the row.
pub(super) const LEASE_MARGIN: Duration = Duration::from_secs(2);
/// How much of a failure's text is kept in `ultimo_erro`.
const REASON_CHARS: usize = 500;

/// The outbox's handles in the service's registry (the worker runs in a task of its own).
pub(super) struct OutboxMetrics {
    pending: Gauge,
    dead_letters: Gauge,
    delivered: Counter,
    failures: Counter,
    dead_lettered: Counter,
}

impl OutboxMetrics {
    pub(super) fn register(m: &Metrics) -> Self {
        Self {
            pending: m.gauge("aula_outbox_pending", vec![]),
            dead_letters: m.gauge("aula_outbox_dead_letters", vec![]),
            delivered: m.counter("aula_outbox_delivered_total", vec![]),
            failures: m.counter("aula_outbox_delivery_failures_total", vec![]),
            dead_lettered: m.counter("aula_outbox_dead_letters_total", vec![]),
        }
    }
}

impl<C: Courier> Outbox<C> {
    /// The worker: delivers what is due, refreshes the gauges, then sleeps until the next row is
    /// due or a commit wakes it. It ends with the task when the service drains.
    pub(super) async fn run(&self) {
        loop {
            let next = match self.deliver_due().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: reading due messages failed");
                    Duration::from_secs(1)
                }
            };
            if let Ok(p) = self.pending().await {
                self.inner.metrics.pending.set(p as f64);
            }
            if let Ok(d) = self.dead_letters().await {
                self.inner.metrics.dead_letters.set(d as f64);
            }
            tokio::select! {
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(next) => {}
            }
        }
    }

    /// Delivers every due row; returns how long to wait before the next look.
    async fn deliver_due(&self) -> sqlx::Result<Duration> {
        let pool = &self.inner.db.pool;
        let ids = table::due(pool, now_ms(), BATCH).await?;
        let lease = self.inner.attempt_timeout + LEASE_MARGIN;
        for id in &ids {
            let attempt = self.try_row(*id, lease);
            if tokio::time::timeout(lease, attempt).await.is_err() {
                let _ = table::release(pool, *id).await;
            }
        }
        if ids.len() as i64 == BATCH {
            return Ok(Duration::ZERO);
        }
        // Woken early by a commit; otherwise at most 5 s, so that rows of another replica (or
        // written before this one started) are not left waiting.
        Ok(match table::next_due(pool).await? {
            Some(t) => Duration::from_millis((t - now_ms()).clamp(50, 5_000) as u64),
            None => Duration::from_secs(5),
        })
    }

    /// Claims and delivers one row, holding it for `lease`. `Ok(None)` when another worker
    /// holds it or it is a dead letter; `Err` says why it was not delivered.
    pub(super) async fn try_row(
        &self,
        id: i64,
        lease: Duration,
    ) -> Result<Option<Delivery<C::Receipt>>, String> {
        let pool = &self.inner.db.pool;
        let text = |e: sqlx::Error| e.to_string();
        if !table::claim(pool, id, lease).await.map_err(text)? {
            return Ok(None);
        }
        let row = table::read(pool, id).await.map_err(text)?;
        let span = tracing::info_span!(
            "outbox.deliver",
            otel.kind = "internal",
            outbox.id = id,
            outbox.attempt = row.attempts + 1,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty
        );
        if let Some(tp) = &row.traceparent {
            telemetry::set_parent_traceparent(&span, tp);
        }
        let result = async {
            // A row no release of the courier can read will never deliver: a dead letter.
            let message: C::Message = serde_json::from_str(&row.payload)
                .map_err(|e| Failure::Permanent(format!("unreadable outbox row: {e}")))?;
            self.inner.courier.deliver(&row.key, message).await
        }
        .instrument(span)
        .await;
        let metrics = &self.inner.metrics;
        let failure = match result {
            Ok(receipt) => {
                table::delivered(pool, id).await.map_err(text)?;
                metrics.delivered.increment(1);
                return Ok(Some(Delivery::Delivered(receipt)));
            }
            Err(failure) => failure,
        };
        metrics.failures.increment(1);
        let attempt = row.attempts.max(0) as u32 + 1;
        let reason: String = failure.reason().chars().take(REASON_CHARS).collect();
        if failure.is_permanent() || attempt >= self.inner.max_attempts {
            tracing::error!(id, attempt, %reason, "outbox: message given up (a dead letter)");
            table::failed(pool, id, &reason, Then::Bury)
                .await
                .map_err(text)?;
            metrics.dead_lettered.increment(1);
            return Err(format!("given up: {reason}"));
        }
        let backoff = RETRY.delay(attempt - 1);
        tracing::info!(id, attempt, retry_in = ?backoff, %reason, "outbox: delivery failed; will retry");
        table::failed(pool, id, &reason, Then::RetryAfter(backoff))
            .await
            .map_err(text)?;
        Err(reason)
    }
}
