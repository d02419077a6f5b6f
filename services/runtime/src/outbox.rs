//! A transactional outbox: what must reach notificacoes is stored in the same transaction as
//! the change that caused it, acknowledged, then delivered with retries, backoff and an
//! idempotency key. An outage of notificacoes delays notifications and loses none; a retry
//! never duplicates one (notificacoes stores each key once).
//!
//! Several replicas can share one database: a row is claimed with a lease (a conditional
//! UPDATE) before delivery, so two workers never deliver it at the same time.

use crate::{
    db::{now_ms, Db, Dialect},
    peers::PeerChannel,
    server::ServiceContext,
    telemetry,
};
use aula_api::notificacoes_service_client::NotificacoesServiceClient;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use std::{sync::Arc, time::Duration};
use tracing::Instrument;

const LEASE_MS: i64 = 30_000;
const BATCH: i64 = 32;
const MAX_BACKOFF_MS: i64 = 30_000;

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
    client: NotificacoesServiceClient<PeerChannel>,
    wake: tokio::sync::Notify,
    origem: &'static str,
}

impl Outbox {
    /// Creates the table if needed and starts the delivery worker.
    pub async fn start(ctx: &ServiceContext, notificacoes: PeerChannel) -> anyhow::Result<Self> {
        let db = ctx.db().clone();
        let ddl = match db.dialect {
            Dialect::Sqlite => {
                "CREATE TABLE IF NOT EXISTS outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                chave TEXT NOT NULL UNIQUE,
                payload TEXT NOT NULL,
                tentativas INTEGER NOT NULL DEFAULT 0,
                proxima_ms BIGINT NOT NULL,
                lease_ms BIGINT NOT NULL DEFAULT 0,
                criado_ms BIGINT NOT NULL,
                traceparent TEXT,
                ultimo_erro TEXT)"
            }
            Dialect::Postgres => {
                "CREATE TABLE IF NOT EXISTS outbox (
                id BIGSERIAL PRIMARY KEY,
                chave TEXT NOT NULL UNIQUE,
                payload TEXT NOT NULL,
                tentativas INTEGER NOT NULL DEFAULT 0,
                proxima_ms BIGINT NOT NULL,
                lease_ms BIGINT NOT NULL DEFAULT 0,
                criado_ms BIGINT NOT NULL,
                traceparent TEXT,
                ultimo_erro TEXT)"
            }
        };
        if let Err(e) = sqlx::query(ddl).execute(&db.pool).await {
            // Replicas starting together on PostgreSQL can race on CREATE TABLE IF NOT EXISTS.
            if !crate::db::is_unique_violation(&e) {
                return Err(e.into());
            }
        }
        let outbox = Self {
            inner: Arc::new(Inner {
                db,
                client: NotificacoesServiceClient::new(notificacoes),
                wake: tokio::sync::Notify::new(),
                origem: ctx.settings().spec.name,
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
        let reason = match tokio::time::timeout(timeout, self.try_row(id)).await {
            Ok(Ok(Some(delivered))) => return delivered,
            Ok(Ok(None)) => "another worker is delivering it".to_string(),
            Ok(Err(e)) => e,
            Err(_) => format!("notificacoes did not answer within {timeout:?}"),
        };
        self.wake();
        Delivery::Pending { reason }
    }

    /// Messages waiting for delivery.
    pub async fn pending(&self) -> sqlx::Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(&self.inner.db.pool)
            .await
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
                metrics::gauge!("aula_outbox_pending").set(p as f64);
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
            "SELECT id FROM outbox WHERE proxima_ms <= $1 AND lease_ms <= $1 ORDER BY id LIMIT $2",
        )
        .bind(now)
        .bind(BATCH)
        .fetch_all(&self.inner.db.pool)
        .await?;
        for id in &ids {
            let _ = self.try_row(*id).await;
        }
        if ids.len() as i64 == BATCH {
            return Ok(Duration::ZERO);
        }
        let next: Option<i64> = sqlx::query_scalar("SELECT MIN(proxima_ms) FROM outbox")
            .fetch_one(&self.inner.db.pool)
            .await?;
        Ok(match next {
            Some(t) => Duration::from_millis((t - now_ms()).clamp(50, 5_000) as u64),
            None => Duration::from_secs(5),
        })
    }

    /// Claims and delivers one row. `Ok(None)` when another worker holds it.
    async fn try_row(&self, id: i64) -> Result<Option<Delivery>, String> {
        let db = &self.inner.db;
        let now = now_ms();
        let claimed =
            sqlx::query("UPDATE outbox SET lease_ms = $1 WHERE id = $2 AND lease_ms <= $3")
                .bind(now + LEASE_MS)
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
                .map_err(|e| format!("unreadable outbox row: {e}"))?;
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
                metrics::counter!("aula_outbox_delivered_total").increment(1);
                Ok(Some(delivered))
            }
            Err(reason) => {
                metrics::counter!("aula_outbox_delivery_failures_total").increment(1);
                let backoff = backoff_ms(attempts);
                tracing::info!(id, attempt = attempts + 1, retry_in_ms = backoff, %reason, "outbox: delivery failed; will retry");
                sqlx::query("UPDATE outbox SET tentativas = tentativas + 1, proxima_ms = $1, lease_ms = 0, ultimo_erro = $2 WHERE id = $3")
                    .bind(now_ms() + backoff)
                    .bind(&reason)
                    .bind(id)
                    .execute(&db.pool)
                    .await
                    .map_err(|e| e.to_string())?;
                Err(reason)
            }
        }
    }

    async fn send(&self, key: &str, message: Message) -> Result<Delivery, String> {
        let mut client = self.inner.client.clone();
        let describe = |s: tonic::Status| format!("{:?}: {}", s.code(), s.message());
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

/// Exponential backoff with jitter: 200 ms doubling to 30 s.
fn backoff_ms(attempts: i32) -> i64 {
    let base = 200i64
        .saturating_mul(1 << attempts.clamp(0, 8))
        .min(MAX_BACKOFF_MS);
    base / 2 + rand::random_range(0..=base / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff_ms(0) <= 200);
        assert!(backoff_ms(3) >= 800);
        assert!(backoff_ms(30) <= MAX_BACKOFF_MS);
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
