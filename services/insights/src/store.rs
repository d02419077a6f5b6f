//! All of insights' SQL, in the dialect SQLite and PostgreSQL both accept. Aggregates are cast
//! to BIGINT / DOUBLE PRECISION (PostgreSQL's SUM and AVG return NUMERIC, which sqlx's `Any`
//! driver cannot read); booleans are compared in SQL, never read back.

use crate::domain::{CourseInsights, Interaction};
use aula_runtime::db::now_ms;
use sqlx::Row;

aula_runtime::store! {
    /// The interactions table.
    pub struct Store;
}

impl Store {
    /// Records an interaction; false when its id was already recorded (a retry). A row left by
    /// `RegisterMetrics` (a bare id, no model yet) is completed instead.
    pub async fn record(&self, i: &Interaction) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "INSERT INTO interacoes (id_interacao, id_curso, id_usuario, latencia_ms, modelo, sucesso, criada_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id_interacao) DO UPDATE SET id_curso = excluded.id_curso, \
             id_usuario = excluded.id_usuario, latencia_ms = excluded.latencia_ms, \
             modelo = excluded.modelo, sucesso = excluded.sucesso \
             WHERE interacoes.modelo = ''",
        )
        .bind(&i.id_interacao)
        .bind(i.id_curso)
        .bind(i.id_usuario)
        .bind(i.latencia_ms)
        .bind(&i.modelo)
        .bind(i.sucesso)
        .bind(now_ms())
        .execute(&self.db.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a bare interaction id (the seed's RegisterMetrics); false when known.
    pub async fn register(&self, id_interacao: &str) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "INSERT INTO interacoes (id_interacao, criada_ms) VALUES ($1, $2) \
             ON CONFLICT (id_interacao) DO NOTHING",
        )
        .bind(id_interacao)
        .bind(now_ms())
        .execute(&self.db.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn course(&self, id_curso: i64) -> sqlx::Result<CourseInsights> {
        let row = sqlx::query(
            "SELECT COUNT(*), CAST(AVG(latencia_ms) AS DOUBLE PRECISION), \
             CAST(COALESCE(SUM(CASE WHEN sucesso THEN 1 ELSE 0 END), 0) AS BIGINT), \
             COUNT(DISTINCT id_usuario), MAX(criada_ms) \
             FROM interacoes WHERE id_curso = $1",
        )
        .bind(id_curso)
        .fetch_one(&self.db.pool)
        .await?;
        let total: i64 = row.try_get(0)?;
        let avg: Option<f64> = row.try_get(1)?;
        let ok: i64 = row.try_get(2)?;
        let users: i64 = row.try_get(3)?;
        let last: Option<i64> = row.try_get(4)?;
        let per_model = sqlx::query(
            "SELECT modelo, COUNT(*) FROM interacoes WHERE id_curso = $1 GROUP BY modelo",
        )
        .bind(id_curso)
        .fetch_all(&self.db.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<sqlx::Result<_>>()?;
        Ok(CourseInsights {
            id_curso,
            total_perguntas: total,
            latencia_media_ms: avg.unwrap_or(0.0),
            taxa_sucesso: if total > 0 {
                ok as f64 / total as f64
            } else {
                0.0
            },
            usuarios_distintos: users,
            perguntas_por_modelo: per_model,
            ultima_pergunta_ms: last,
        })
    }

    /// (interactions, distinct courses).
    pub async fn counts(&self) -> sqlx::Result<(i64, i64)> {
        let row = sqlx::query("SELECT COUNT(*), COUNT(DISTINCT id_curso) FROM interacoes")
            .fetch_one(&self.db.pool)
            .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }
}
