//! All of the outbox's SQL, on the `outbox` table of the runtime's `migrations/outbox`, in the
//! dialect SQLite and PostgreSQL both accept. A row is live while `morta_ms` is NULL; it is
//! held by a worker while `lease_ms` is in the future; it is due when `proxima_ms` has passed.

use crate::{db::now_ms, telemetry};
use sqlx::{AnyConnection, AnyPool, Row as _};
use std::time::Duration;

/// A claimed row, as the worker reads it.
pub(super) struct Row {
    pub key: String,
    /// The message, as JSON of the courier's `Message`.
    pub payload: String,
    /// Attempts before this one.
    pub attempts: i32,
    pub traceparent: Option<String>,
}

/// Stores a message inside the caller's transaction, due now, with the current trace so that
/// its delivery joins it; returns the row id.
pub(super) async fn insert(
    conn: &mut AnyConnection,
    key: &str,
    payload: String,
) -> sqlx::Result<i64> {
    let now = now_ms();
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

/// Takes the lease on a live row nobody holds, for `lease`: a conditional UPDATE, so of two
/// workers (or replicas) only one gets it. False when it is held, delivered or dead.
pub(super) async fn claim(pool: &AnyPool, id: i64, lease: Duration) -> sqlx::Result<bool> {
    let now = now_ms();
    let claimed = sqlx::query(
        "UPDATE outbox SET lease_ms = $1 WHERE id = $2 AND lease_ms <= $3 AND morta_ms IS NULL",
    )
    .bind(now + lease.as_millis() as i64)
    .bind(id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

pub(super) async fn read(pool: &AnyPool, id: i64) -> sqlx::Result<Row> {
    let row =
        sqlx::query("SELECT chave, payload, tentativas, traceparent FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await?;
    Ok(Row {
        key: row.try_get(0)?,
        payload: row.try_get(1)?,
        attempts: row.try_get(2)?,
        traceparent: row.try_get(3)?,
    })
}

/// The receiver has it: the row goes.
pub(super) async fn delivered(pool: &AnyPool, id: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM outbox WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .map(drop)
}

/// What a failed attempt leaves behind.
pub(super) enum Then {
    /// The row, due again after this long.
    RetryAfter(Duration),
    /// A dead letter: the row stays, out of delivery, with the time it was given up.
    Bury,
}

/// A failed attempt: counted, its reason kept, the lease ended; then due again, or buried.
pub(super) async fn failed(pool: &AnyPool, id: i64, reason: &str, then: Then) -> sqlx::Result<()> {
    let (sql, at) = match then {
        Then::RetryAfter(backoff) => (
            "UPDATE outbox SET tentativas = tentativas + 1, proxima_ms = $1, lease_ms = 0, ultimo_erro = $2 WHERE id = $3",
            now_ms() + backoff.as_millis() as i64,
        ),
        Then::Bury => (
            "UPDATE outbox SET tentativas = tentativas + 1, morta_ms = $1, lease_ms = 0, ultimo_erro = $2 WHERE id = $3",
            now_ms(),
        ),
    };
    sqlx::query(sql)
        .bind(at)
        .bind(reason)
        .bind(id)
        .execute(pool)
        .await
        .map(drop)
}

/// Ends an interrupted attempt's lease: the row is due again now.
pub(super) async fn release(pool: &AnyPool, id: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE outbox SET lease_ms = 0, proxima_ms = $1 WHERE id = $2 AND morta_ms IS NULL",
    )
    .bind(now_ms())
    .bind(id)
    .execute(pool)
    .await
    .map(drop)
}

/// Up to `limit` live rows due at `now` and held by nobody, oldest first.
pub(super) async fn due(pool: &AnyPool, now: i64, limit: i64) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT id FROM outbox WHERE morta_ms IS NULL AND proxima_ms <= $1 AND lease_ms <= $1 \
         ORDER BY id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// When the next live row is due, if there is one.
pub(super) async fn next_due(pool: &AnyPool) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT MIN(proxima_ms) FROM outbox WHERE morta_ms IS NULL")
        .fetch_one(pool)
        .await
}

pub(super) async fn pending(pool: &AnyPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE morta_ms IS NULL")
        .fetch_one(pool)
        .await
}

pub(super) async fn dead_letters(pool: &AnyPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE morta_ms IS NOT NULL")
        .fetch_one(pool)
        .await
}
