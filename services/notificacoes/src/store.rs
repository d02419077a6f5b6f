//! All of notificacoes' SQL, in the dialect SQLite and PostgreSQL both accept. Booleans are
//! read back through `CASE` as integers: sqlx's `Any` driver sees SQLite's booleans as integers.

use crate::domain::{NewNotification, Notification};
use aula_runtime::{db::now_ms, paging::Page};
use sqlx::{any::AnyRow, Row};

const COLUMNS: &str =
    "id, id_usuario, mensagem, CASE WHEN lida THEN 1 ELSE 0 END, criada_ms, origem";

const INSERT: &str =
    "INSERT INTO notificacoes (id_usuario, mensagem, lida, criada_ms, origem, chave) \
     VALUES ($1, $2, FALSE, $3, $4, $5) ON CONFLICT (chave) DO NOTHING RETURNING id";

/// The counts of GetStatus: the sum of the rows the triggers of migration 0002 keep (one row
/// on SQLite, 16 on PostgreSQL).
const COUNTS: &str = "SELECT CAST(COALESCE(SUM(total), 0) AS BIGINT), \
     CAST(COALESCE(SUM(nao_lidas), 0) AS BIGINT) FROM contagens";

/// A page of a user's notifications, newest first (keyset on the id).
fn list_sql(unread_only: bool) -> String {
    let unread = if unread_only { " AND lida = FALSE" } else { "" };
    format!(
        "SELECT {COLUMNS} FROM notificacoes WHERE id_usuario = $1 AND id < $2{unread} \
         ORDER BY id DESC LIMIT $3"
    )
}

aula_runtime::store! {
    /// The notifications table.
    pub struct Store;
}

impl Store {
    /// Stores a notification unless one with the same key exists; returns the stored one and
    /// whether it is new.
    ///
    /// In a transaction committed before it returns: a `RETURNING` row read from the pool
    /// outside one arrives before the commit's outcome, and a commit that then fails (a
    /// PostgreSQL shutting down, a full disk) would leave an acknowledged id that does not
    /// exist (sqlx issues #1370, #2099).
    pub async fn insert(&self, new: &NewNotification) -> sqlx::Result<(Notification, bool)> {
        let now = now_ms();
        let mut tx = self.db.pool.begin().await?;
        let inserted: Option<i64> = sqlx::query_scalar(INSERT)
            .bind(new.id_usuario)
            .bind(&new.message)
            .bind(now)
            .bind(&new.origem)
            .bind(new.chave.clone())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        if let Some(id) = inserted {
            let n = Notification {
                id,
                id_usuario: new.id_usuario,
                message: new.message.clone(),
                lida: false,
                criada_ms: now,
                origem: new.origem.clone(),
            };
            return Ok((n, true));
        }
        // A retry: the key is stored (committed: the conflict saw it), read it back.
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notificacoes WHERE chave = $1"
        ))
        .bind(new.chave.clone())
        .fetch_one(&self.db.pool)
        .await?;
        Ok((from_row(&row)?, false))
    }

    pub async fn get(&self, id: i64) -> sqlx::Result<Option<Notification>> {
        let sql = format!("SELECT {COLUMNS} FROM notificacoes WHERE id = $1");
        self.db.by_id(&sql, id, from_row).await
    }

    /// A user's notifications, newest first, keyset-paged on the id.
    pub async fn list(
        &self,
        id_usuario: i64,
        unread_only: bool,
        page: Page,
    ) -> sqlx::Result<(Vec<Notification>, String)> {
        let sql = list_sql(unread_only);
        let query = sqlx::query(&sql).bind(id_usuario);
        page.fetch(query, &self.db.pool, i64::MAX, from_row, |n| n.id)
            .await
    }

    /// Marks the user's notifications among `ids` as read; returns how many of `ids` are the
    /// user's (all of them read now) and how many of those were unread. Other users' ids are
    /// ignored.
    pub async fn mark_read(&self, id_usuario: i64, ids: &[i64]) -> sqlx::Result<(u64, u64)> {
        if ids.is_empty() {
            return Ok((0, 0));
        }
        let params = (0..ids.len())
            .map(|i| format!("${}", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        // The write first: on SQLite a transaction that reads first cannot take the write lock.
        let update = format!(
            "UPDATE notificacoes SET lida = TRUE WHERE id_usuario = $1 AND id IN ({params}) AND lida = FALSE"
        );
        let mine =
            format!("SELECT COUNT(*) FROM notificacoes WHERE id_usuario = $1 AND id IN ({params})");
        let mut tx = self.db.pool.begin().await?;
        let mut q = sqlx::query(&update).bind(id_usuario);
        for id in ids {
            q = q.bind(*id);
        }
        let newly_read = q.execute(&mut *tx).await?.rows_affected();
        let mut q = sqlx::query_scalar::<_, i64>(&mine).bind(id_usuario);
        for id in ids {
            q = q.bind(*id);
        }
        let marked = q.fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok((marked as u64, newly_read))
    }

    /// (all notifications, unread ones), from the rows the writes keep (migration
    /// 0002_contagens): a few rows whatever the size of the table.
    pub async fn counts(&self) -> sqlx::Result<(i64, i64)> {
        let row = sqlx::query(COUNTS).fetch_one(&self.db.pool).await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }
}

fn from_row(row: &AnyRow) -> sqlx::Result<Notification> {
    Ok(Notification {
        id: row.try_get(0)?,
        id_usuario: row.try_get(1)?,
        message: row.try_get(2)?,
        lida: row.try_get::<i64, _>(3)? != 0,
        criada_ms: row.try_get(4)?,
        origem: row.try_get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aula_runtime::testing::SqlitePlans;

    /// SendNotification and ListNotifications find their rows through an index (SQLite's
    /// plans): their cost does not grow with the table. The counts of GetStatus read only the
    /// counts' own row, which the writes keep (migration 0002).
    #[tokio::test]
    async fn no_call_scans_a_table() {
        let calls = [
            ("SendNotification", INSERT.to_string()),
            (
                "SendNotification (a retry)",
                format!("SELECT {COLUMNS} FROM notificacoes WHERE chave = $1"),
            ),
            (
                "a notification by id",
                format!("SELECT {COLUMNS} FROM notificacoes WHERE id = $1"),
            ),
            ("ListNotifications", list_sql(false)),
            ("ListNotifications (unread)", list_sql(true)),
        ];
        SqlitePlans::assert_service(&crate::service(), &calls, COUNTS).await;
    }
}
