//! All of midia's SQL, in the dialect SQLite and PostgreSQL both accept.

use crate::domain::{CourseId, MediaItem, NewMedia};
use aula_runtime::db::{now_ms, Db};
use sqlx::{any::AnyRow, Row};

/// The media table.
#[derive(Clone)]
pub struct Store {
    db: Db,
}

/// What `GetStatus` counts.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub midias: i64,
    pub cursos: i64,
}

const COLUMNS: &str = "id, id_curso, titulo, tipo, url, duracao_segundos, ordem, descricao";

fn item(row: &AnyRow) -> sqlx::Result<MediaItem> {
    Ok(MediaItem {
        id: row.try_get("id")?,
        id_curso: row.try_get("id_curso")?,
        titulo: row.try_get("titulo")?,
        tipo: row.try_get("tipo")?,
        url: row.try_get("url")?,
        duracao_segundos: row.try_get("duracao_segundos")?,
        ordem: row.try_get("ordem")?,
        descricao: row.try_get("descricao")?,
    })
}

impl Store {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub async fn counts(&self) -> sqlx::Result<Counts> {
        let row = sqlx::query("SELECT COUNT(*), COUNT(DISTINCT id_curso) FROM midias")
            .fetch_one(&self.db.pool)
            .await?;
        Ok(Counts {
            midias: row.try_get(0)?,
            cursos: row.try_get(1)?,
        })
    }

    /// A course's media in reading order.
    pub async fn list(&self, id_curso: CourseId) -> sqlx::Result<Vec<MediaItem>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM midias WHERE id_curso = $1 ORDER BY ordem, id"
        ))
        .bind(id_curso.get())
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(item).collect()
    }

    /// Stores a new item; without an `ordem` it goes after the course's last item. One
    /// statement, so it needs no transaction.
    pub async fn add(&self, new: &NewMedia) -> sqlx::Result<MediaItem> {
        let row = sqlx::query(&format!(
            "INSERT INTO midias (id_curso, titulo, tipo, url, duracao_segundos, ordem, descricao, criada_ms)
             VALUES ($1, $2, $3, $4, $5,
                     COALESCE($6, (SELECT COALESCE(MAX(ordem), 0) + 1 FROM midias WHERE id_curso = $1)),
                     $7, $8)
             RETURNING {COLUMNS}"
        ))
        .bind(new.id_curso.get())
        .bind(&new.titulo)
        .bind(new.tipo.as_str())
        .bind(&new.url)
        .bind(new.duracao_segundos)
        .bind(new.ordem)
        .bind(&new.descricao)
        .bind(now_ms())
        .fetch_one(&self.db.pool)
        .await?;
        item(&row)
    }
}
