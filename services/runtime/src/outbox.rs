//! A transactional outbox: what must reach notificacoes is stored in the same transaction as
//! the change that caused it, acknowledged, then delivered with retries, backoff and an
//! idempotency key. An outage of notificacoes delays notifications and loses none; a retry
//! never duplicates one (notificacoes stores each key once).
//!
//! Several replicas can share one database: a row is claimed with a lease (a conditional
//! UPDATE) before delivery, so two workers never deliver it at the same time. A lease lasts as
//! long as the attempt may (the immediate attempt's timeout, or the peer timeout, plus a
//! margin), and an immediate attempt that runs out of time hands its row straight back to the
//! worker: redelivery starts within about a second of notificacoes' return, whatever happened.
//!
//! Failures are classified. notificacoes refusing a message for good (INVALID_ARGUMENT,
//! NOT_FOUND, FAILED_PRECONDITION, PERMISSION_DENIED, ...; or a row that cannot be read) makes
//! it a dead letter at once: kept in the table out of delivery (`morta_ms`, `ultimo_erro`),
//! counted by `aula_outbox_dead_letters_total` and the gauge `aula_outbox_dead_letters`, which
//! the alert `AulaOutboxDeadLetters` watches. Anything else is retried with the runtime's
//! capped backoff, at most `AULA_OUTBOX_MAX_ATTEMPTS` times (default 2880: a day at the 30 s
//! cap), then it is a dead letter too. While notificacoes is known to be down
//! ([`PeerChannel::is_known_down`]) the immediate attempt does not dial at all.
//!
//! The table's schema lives in the runtime's `migrations/outbox`; a service using the outbox
//! declares `aula_runtime::migrations!(outbox)`.

use crate::{
    backoff::Backoff,
    db::{now_ms, Db},
    metrics::{Counter, Gauge, Metrics},
    peers::PeerChannel,
    server::ServiceContext,
    telemetry,
};
use aula_api::notificacoes_service_client::NotificacoesServiceClient;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use std::{sync::Arc, time::Duration};
use tracing::Instrument;

const BATCH: i64 = 32;
/// Between attempts at one message: 200 ms doubling to 30 s.
const RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
/// Attempts before a message that keeps failing is given up (a day at the 30 s cap).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 2880;
/// What a lease adds to the time an attempt may take.
const LEASE_MARGIN: Duration = Duration::from_secs(2);

/// What to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tipo", rename_all = "snake_case")]
pub enum Message {
    /// `NotificacoesService.SendNotification`.
    Notification {
        id_usuario: String,
        message: String,
        origem: String,
    },
    /// `NotificacoesService.NotifySchedule`.
    Schedule {
        id_agendamento: String,
        id_usuario: String,
        message: String,
    },
}

/// The outcome of an immediate delivery attempt.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// Delivered; what notificacoes said.
    Delivered {
        id_notificacao: String,
        status: String,
    },
    /// Stored and queued: notificacoes did not take it now; the worker will retry.
    Pending { reason: String },
}

/// One service's outbox.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    peer: PeerChannel,
    client: NotificacoesServiceClient<PeerChannel>,
    wake: tokio::sync::Notify,
    origem: &'static str,
    /// How long the worker's attempt may take: the peer timeout.
    attempt_timeout: Duration,
    max_attempts: u32,
    metrics: OutboxMetrics,
}

/// The outbox's handles in the service's registry (the worker runs in a task of its own).
struct OutboxMetrics {
    pending: Gauge,
    dead_letters: Gauge,
    delivered: Counter,
    failures: Counter,
    dead_lettered: Counter,
}

impl OutboxMetrics {
    fn register(m: &Metrics) -> Self {
        Self {
            pending: m.gauge("aula_outbox_pending", vec![]),
            dead_letters: m.gauge("aula_outbox_dead_letters", vec![]),
            delivered: m.counter("aula_outbox_delivered_total", vec![]),
            failures: m.counter("aula_outbox_delivery_failures_total", vec![]),
            dead_lettered: m.counter("aula_outbox_dead_letters_total", vec![]),
        }
    }
}

/// Why an attempt did not deliver.
enum Failure {
    /// Retry later.
    Transient(String),
    /// notificacoes will never take it: a dead letter.
    Permanent(String),
}

impl Failure {
    fn reason(&self) -> &str {
        match self {
            Self::Transient(r) | Self::Permanent(r) => r,
        }
    }
}

/// Codes with which notificacoes refuses a message for good: retrying cannot help.
fn is_permanent(code: tonic::Code) -> bool {
    use tonic::Code as C;
    matches!(
        code,
        C::InvalidArgument
            | C::NotFound
            | C::AlreadyExists
            | C::FailedPrecondition
            | C::PermissionDenied
            | C::OutOfRange
            | C::Unimplemented
    )
}

impl Outbox {
    /// Starts the delivery worker (the table comes from the service's migrations:
    /// `aula_runtime::migrations!(outbox)`).
    pub async fn start(ctx: &ServiceContext, notificacoes: PeerChannel) -> anyhow::Result<Self> {
        let db = ctx.db().clone();
        let settings = ctx.settings();
        let max_attempts = settings
            .env
            .parse("AULA_OUTBOX_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)?
            .max(1);
        let outbox = Self {
            inner: Arc::new(Inner {
                db,
                client: NotificacoesServiceClient::new(notificacoes.clone()),
                peer: notificacoes,
                wake: tokio::sync::Notify::new(),
                origem: settings.spec.name,
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
    /// delivery idempotent end to end.
    pub async fn enqueue(
        &self,
        conn: &mut AnyConnection,
        key: &str,
        message: &Message,
    ) -> sqlx::Result<i64> {
        let now = now_ms();
        let payload = serde_json::to_string(message).expect("messages serialize");
        let row = sqlx::query(
            "INSERT INTO outbox (chave, payload, proxima_ms, criado_ms, traceparent) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(key)
        .bind(payload)
        .bind(now)
        .bind(now)
        .bind(telemetry::current_traceparent())
        .fetch_one(conn)
        .await?;
        row.try_get(0)
    }

    /// Wakes the worker after a commit.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Tries to deliver one committed row now, within `timeout`; otherwise leaves it to the
    /// worker. Either way the message is safe.
    pub async fn deliver_now(&self, id: i64, timeout: Duration) -> Delivery {
        // No dial at a peer every replica of which just failed: the worker retries on its
        // backoff, and a storm of callers does not become a storm of connection attempts.
        if self.inner.peer.is_known_down() {
            self.wake();
            return Delivery::Pending {
                reason: "notificacoes is down (its reconnect backoff is running)".into(),
            };
        }
        let lease = timeout + LEASE_MARGIN;
        let reason = match tokio::time::timeout(timeout, self.try_row(id, lease)).await {
            Ok(Ok(Some(delivered))) => return delivered,
            Ok(Ok(None)) => "another worker is delivering it".to_string(),
            Ok(Err(e)) => e,
            Err(_) => {
                // The attempt was cut off holding the lease: hand the row back at once (a
                // delivery still in flight is harmless: the key makes it one notification).
                if let Err(e) = self.release(id).await {
                    tracing::warn!(id, error = %e, "outbox: releasing a row failed; its lease runs out");
                }
                format!("notificacoes did not answer within {timeout:?}")
            }
        };
        self.wake();
        Delivery::Pending { reason }
    }

    /// Messages waiting for delivery (dead letters excluded).
    pub async fn pending(&self) -> sqlx::Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE morta_ms IS NULL")
            .fetch_one(&self.inner.db.pool)
            .await
    }

    /// Messages given up (dead letters).
    pub async fn dead_letters(&self) -> sqlx::Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE morta_ms IS NOT NULL")
            .fetch_one(&self.inner.db.pool)
            .await
    }

    /// Ends an interrupted attempt's lease: the row is due again now.
    async fn release(&self, id: i64) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE outbox SET lease_ms = 0, proxima_ms = $1 WHERE id = $2 AND morta_ms IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.inner.db.pool)
        .await
        .map(drop)
    }

    async fn run(&self) {
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
        let now = now_ms();
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM outbox WHERE morta_ms IS NULL AND proxima_ms <= $1 AND lease_ms <= $1 \
             ORDER BY id LIMIT $2",
        )
        .bind(now)
        .bind(BATCH)
        .fetch_all(&self.inner.db.pool)
        .await?;
        let lease = self.inner.attempt_timeout + LEASE_MARGIN;
        for id in &ids {
            let attempt = self.try_row(*id, lease);
            if tokio::time::timeout(lease, attempt).await.is_err() {
                let _ = self.release(*id).await;
            }
        }
        if ids.len() as i64 == BATCH {
            return Ok(Duration::ZERO);
        }
        let next: Option<i64> =
            sqlx::query_scalar("SELECT MIN(proxima_ms) FROM outbox WHERE morta_ms IS NULL")
                .fetch_one(&self.inner.db.pool)
                .await?;
        Ok(match next {
            Some(t) => Duration::from_millis((t - now_ms()).clamp(50, 5_000) as u64),
            None => Duration::from_secs(5),
        })
    }

    /// Claims and delivers one row, holding it for `lease`. `Ok(None)` when another worker
    /// holds it or it is a dead letter.
    async fn try_row(&self, id: i64, lease: Duration) -> Result<Option<Delivery>, String> {
        let db = &self.inner.db;
        let now = now_ms();
        let claimed = sqlx::query(
            "UPDATE outbox SET lease_ms = $1 WHERE id = $2 AND lease_ms <= $3 AND morta_ms IS NULL",
        )
        .bind(now + lease.as_millis() as i64)
        .bind(id)
        .bind(now)
        .execute(&db.pool)
        .await
        .map_err(|e| e.to_string())?;
        if claimed.rows_affected() == 0 {
            return Ok(None);
        }
        let row =
            sqlx::query("SELECT chave, payload, tentativas, traceparent FROM outbox WHERE id = $1")
                .bind(id)
                .fetch_one(&db.pool)
                .await
                .map_err(|e| e.to_string())?;
        let key: String = row.try_get(0).map_err(|e| e.to_string())?;
        let payload: String = row.try_get(1).map_err(|e| e.to_string())?;
        let attempts: i32 = row.try_get(2).map_err(|e| e.to_string())?;
        let traceparent: Option<String> = row.try_get(3).map_err(|e| e.to_string())?;

        let span = tracing::info_span!(
            "outbox.deliver",
            otel.kind = "internal",
            outbox.id = id,
            outbox.attempt = attempts + 1,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty
        );
        if let Some(tp) = &traceparent {
            telemetry::set_parent_traceparent(&span, tp);
        }
        let result = async {
            let message: Message = serde_json::from_str(&payload)
                .map_err(|e| Failure::Permanent(format!("unreadable outbox row: {e}")))?;
            self.send(&key, message).await
        }
        .instrument(span)
        .await;
        match result {
            Ok(delivered) => {
                sqlx::query("DELETE FROM outbox WHERE id = $1")
                    .bind(id)
                    .execute(&db.pool)
                    .await
                    .map_err(|e| e.to_string())?;
                self.inner.metrics.delivered.increment(1);
                Ok(Some(delivered))
            }
            Err(failure) => {
                self.inner.metrics.failures.increment(1);
                let attempt = attempts.max(0) as u32 + 1;
                let reason: String = failure.reason().chars().take(500).collect();
                let dead =
                    matches!(failure, Failure::Permanent(_)) || attempt >= self.inner.max_attempts;
                if dead {
                    tracing::error!(id, attempt, %reason, "outbox: message given up (a dead letter)");
                    sqlx::query("UPDATE outbox SET tentativas = tentativas + 1, morta_ms = $1, lease_ms = 0, ultimo_erro = $2 WHERE id = $3")
                        .bind(now_ms())
                        .bind(&reason)
                        .bind(id)
                        .execute(&db.pool)
                        .await
                        .map_err(|e| e.to_string())?;
                    self.inner.metrics.dead_lettered.increment(1);
                    return Err(format!("given up: {reason}"));
                }
                let backoff = RETRY.delay(attempt - 1);
                tracing::info!(id, attempt, retry_in = ?backoff, %reason, "outbox: delivery failed; will retry");
                sqlx::query("UPDATE outbox SET tentativas = tentativas + 1, proxima_ms = $1, lease_ms = 0, ultimo_erro = $2 WHERE id = $3")
                    .bind(now_ms() + backoff.as_millis() as i64)
                    .bind(&reason)
                    .bind(id)
                    .execute(&db.pool)
                    .await
                    .map_err(|e| e.to_string())?;
                Err(reason)
            }
        }
    }

    async fn send(&self, key: &str, message: Message) -> Result<Delivery, Failure> {
        let mut client = self.inner.client.clone();
        let describe = |s: tonic::Status| {
            let text = format!("{:?}: {}", s.code(), s.message());
            if is_permanent(s.code()) {
                Failure::Permanent(text)
            } else {
                Failure::Transient(text)
            }
        };
        match message {
            Message::Notification {
                id_usuario,
                message,
                origem,
            } => {
                let origem = if origem.is_empty() {
                    self.inner.origem.to_string()
                } else {
                    origem
                };
                let r = client
                    .send_notification(aula_api::SendNotificationRequest {
                        id_usuario,
                        message,
                        chave_idempotencia: key.to_string(),
                        origem,
                    })
                    .await
                    .map_err(describe)?
                    .into_inner();
                Ok(Delivery::Delivered {
                    id_notificacao: r.id_notificacao,
                    status: r.message,
                })
            }
            Message::Schedule {
                id_agendamento,
                id_usuario,
                message,
            } => {
                let r = client
                    .notify_schedule(aula_api::NotifyScheduleRequest {
                        id_agendamento,
                        id_usuario,
                        message,
                        chave_idempotencia: key.to_string(),
                    })
                    .await
                    .map_err(describe)?
                    .into_inner();
                Ok(Delivery::Delivered {
                    id_notificacao: String::new(),
                    status: r.message,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_for_good_are_told_from_the_rest() {
        use tonic::Code as C;
        for c in [
            C::InvalidArgument,
            C::NotFound,
            C::FailedPrecondition,
            C::PermissionDenied,
        ] {
            assert!(is_permanent(c), "{c:?}");
        }
        for c in [
            C::Unavailable,
            C::DeadlineExceeded,
            C::ResourceExhausted,
            C::Internal,
            C::Unknown,
            C::Aborted,
            C::Unauthenticated,
        ] {
            assert!(!is_permanent(c), "{c:?}");
        }
    }

    #[test]
    fn messages_round_trip() {
        let m = Message::Schedule {
            id_agendamento: "1".into(),
            id_usuario: "2".into(),
            message: "x".into(),
        };
        let s = serde_json::to_string(&m).unwrap();
        assert!(s.contains(r#""tipo":"schedule""#));
        assert_eq!(serde_json::from_str::<Message>(&s).unwrap(), m);
    }
}
