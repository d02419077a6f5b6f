//! Demo data: the courses, media, appointment and welcome notification that a fresh `aula up`
//! shows, so README's commands answer with something. A service's `demo.sql` is run at start-up
//! when `AULA_DEMO_DATA=1`: `aula up` sets it (unless `--no-demo-data`), so does the compose
//! demo; a service binary, the chart and a production install leave it unset, and their
//! databases hold only what users put there. It is never part of a migration: migrations are
//! the schema, which every database needs; demo rows are a choice.
//!
//! The rows go into a database that start created (no migration applied before), as the
//! migrations once inserted them: rows a user deletes stay deleted across restarts, and a
//! database in use, or one created when the migrations still inserted the rows (see
//! [`crate::db::Released`]), is left alone. Each statement is `ON CONFLICT DO NOTHING` besides,
//! so replicas creating one PostgreSQL schema together insert the rows once.

use crate::db::{Db, Dialect};
use anyhow::Context as _;
use sqlx::Executor as _;

/// A service's demo rows: `demo: Some(aula_runtime::demo!(identities = ["cursos"]))` in its
/// `ServiceDef` embeds the crate's `demo.sql`.
#[derive(Debug, Clone, Copy)]
pub struct Demo {
    /// Statements both SQLite and PostgreSQL accept, each idempotent.
    pub sql: &'static str,
    /// Tables whose demo rows carry explicit ids (other services' demo rows refer to them): on
    /// PostgreSQL their id sequence is moved past the rows, so new rows continue after them
    /// (SQLite's AUTOINCREMENT does so by itself).
    pub identities: &'static [&'static str],
}

/// Embeds the calling crate's `demo.sql`.
#[macro_export]
macro_rules! demo {
    (identities = [$($table:literal),* $(,)?]) => {
        $crate::demo::Demo {
            sql: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/demo.sql")),
            identities: &[$($table),*],
        }
    };
}

/// Inserts `demo`'s rows (those not there already).
pub async fn seed(db: &Db, demo: &Demo) -> anyhow::Result<()> {
    let mut tx = db.pool.begin().await?;
    (&mut *tx)
        .execute(demo.sql)
        .await
        .context("seeding the demo data")?;
    if db.dialect == Dialect::Postgres {
        for table in demo.identities {
            // Never backwards: past the largest id and past what the sequence already gave.
            let seq = format!("pg_get_serial_sequence('{table}', 'id')");
            let sql = format!(
                "SELECT setval({seq}, GREATEST(MAX(id), \
                 COALESCE(pg_sequence_last_value({seq}::regclass), 1))) FROM {table}"
            );
            (&mut *tx)
                .execute(sql.as_str())
                .await
                .with_context(|| format!("moving {table}'s id sequence past the demo rows"))?;
        }
    }
    tx.commit().await?;
    Ok(())
}
