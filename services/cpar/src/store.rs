//! All of cpar's SQL, in the dialect SQLite and PostgreSQL both accept. Booleans are read back
//! through `CASE` as integers (sqlx's `Any` driver sees SQLite's booleans as integers). Every
//! write transaction starts with its write, so SQLite takes the write lock first instead of
//! failing to upgrade a read.

use crate::domain::{NewSchedule, Schedule, AGENDADO, CANCELADO};
use aula_runtime::{db::now_ms, paging::Page};
use notificacoes::courier::{Message, Outbox};
use sqlx::{any::AnyRow, Row};

const COLUMNS: &str = "id, id_usuario, titulo, inicio_ms, duracao_minutos, estado, \
     CASE WHEN lembrete_enviado THEN 1 ELSE 0 END, criado_ms";

aula_runtime::store! {
    /// The appointments table.
    pub struct Store;
}

impl Store {
    /// Books an appointment, committed before it returns: a `RETURNING` row read outside a
    /// transaction arrives before the commit's outcome (a full disk or a PostgreSQL shutting
    /// down then fails the commit, and the id answered would not exist; sqlx #1370, #2099).
    pub async fn create(&self, new: &NewSchedule) -> sqlx::Result<Schedule> {
        let now = now_ms();
        let mut tx = self.db.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO agendamentos (id_usuario, titulo, inicio_ms, duracao_minutos, estado, lembrete_enviado, criado_ms) \
             VALUES ($1, $2, $3, $4, $5, FALSE, $6) RETURNING id",
        )
        .bind(new.id_usuario)
        .bind(&new.titulo)
        .bind(new.inicio_ms)
        .bind(new.duracao_minutos)
        .bind(AGENDADO)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Schedule {
            id,
            id_usuario: new.id_usuario,
            titulo: new.titulo.clone(),
            inicio_ms: new.inicio_ms,
            duracao_minutos: new.duracao_minutos,
            estado: AGENDADO.into(),
            lembrete_enviado: false,
            criado_ms: now,
        })
    }

    pub async fn get(&self, id: i64) -> sqlx::Result<Option<Schedule>> {
        let sql = format!("SELECT {COLUMNS} FROM agendamentos WHERE id = $1");
        self.db.by_id(&sql, id, from_row).await
    }

    /// A user's appointments in the order they were booked, keyset-paged on the id.
    pub async fn list(&self, id_usuario: i64, page: Page) -> sqlx::Result<(Vec<Schedule>, String)> {
        let sql = format!(
            "SELECT {COLUMNS} FROM agendamentos WHERE id_usuario = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        let query = sqlx::query(&sql).bind(id_usuario);
        page.fetch(query, &self.db.pool, 0, from_row, |s| s.id)
            .await
    }

    /// Cancels an appointment (cancelling twice is harmless); `None` when unknown.
    pub async fn cancel(&self, id: i64) -> sqlx::Result<Option<Schedule>> {
        sqlx::query("UPDATE agendamentos SET estado = $1 WHERE id = $2")
            .bind(CANCELADO)
            .bind(id)
            .execute(&self.db.pool)
            .await?;
        self.get(id).await
    }

    /// Stores a notice for the appointment's user in the outbox; returns the outbox row.
    pub async fn enqueue_notice(&self, outbox: &Outbox, s: &Schedule) -> sqlx::Result<i64> {
        let key = s.notice_key();
        let mut tx = self.db.pool.begin().await?;
        let id = outbox
            .enqueue(&mut tx, &key, &message(s, s.notice()))
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Appointments due for a reminder: still booked, not reminded, starting within `lead_ms`
    /// and not yet started.
    pub async fn due_reminders(&self, now: i64, lead_ms: i64) -> sqlx::Result<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT id FROM agendamentos WHERE estado = $1 AND lembrete_enviado = FALSE \
             AND inicio_ms > $2 AND inicio_ms <= $3 ORDER BY inicio_ms LIMIT 100",
        )
        .bind(AGENDADO)
        .bind(now)
        .bind(now.saturating_add(lead_ms))
        .fetch_all(&self.db.pool)
        .await
    }

    /// Claims one appointment's reminder and stores it in the outbox, in one transaction;
    /// false when another worker (or replica) claimed it first.
    pub async fn claim_reminder(&self, outbox: &Outbox, id: i64) -> sqlx::Result<bool> {
        let mut tx = self.db.pool.begin().await?;
        let claimed = sqlx::query(
            "UPDATE agendamentos SET lembrete_enviado = TRUE \
             WHERE id = $1 AND lembrete_enviado = FALSE AND estado = $2",
        )
        .bind(id)
        .bind(AGENDADO)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM agendamentos WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let s = from_row(&row)?;
        let key = s.reminder_key();
        outbox
            .enqueue(&mut tx, &key, &message(&s, s.reminder()))
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// (all appointments, booked ones).
    pub async fn counts(&self) -> sqlx::Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN estado = $1 THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM agendamentos",
        )
        .bind(AGENDADO)
        .fetch_one(&self.db.pool)
        .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }
}

fn message(s: &Schedule, text: String) -> Message {
    Message::Schedule {
        id_agendamento: s.id.to_string(),
        id_usuario: s.id_usuario.to_string(),
        message: text,
    }
}

fn from_row(row: &AnyRow) -> sqlx::Result<Schedule> {
    Ok(Schedule {
        id: row.try_get(0)?,
        id_usuario: row.try_get(1)?,
        titulo: row.try_get(2)?,
        inicio_ms: row.try_get(3)?,
        duracao_minutos: row.try_get(4)?,
        estado: row.try_get(5)?,
        lembrete_enviado: row.try_get::<i64, _>(6)? != 0,
        criado_ms: row.try_get(7)?,
    })
}
