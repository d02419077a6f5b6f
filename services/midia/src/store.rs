//! All of midia's SQL, in the dialect SQLite and PostgreSQL both accept.

use crate::domain::{CourseId, MediaItem, MidiaError, NewMedia};
use aula_api::limits::MEDIA_PER_COURSE;
use aula_runtime::db::now_ms;
use sqlx::{FromRow, Row};

aula_runtime::store! {
    /// The media table.
    pub struct Store;
}

/// What `GetStatus` counts.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub midias: i64,
    pub cursos: i64,
}

const COLUMNS: &str = "id, id_curso, titulo, tipo, url, duracao_segundos, ordem, descricao";

impl Store {
    pub async fn counts(&self) -> sqlx::Result<Counts> {
        let row = sqlx::query("SELECT COUNT(*), COUNT(DISTINCT id_curso) FROM midias")
            .fetch_one(&self.db.pool)
            .await?;
        Ok(Counts {
            midias: row.try_get(0)?,
            cursos: row.try_get(1)?,
        })
    }

    /// A course's media in reading order (at most [`MEDIA_PER_COURSE`] items, which `add`
    /// holds every course to).
    pub async fn list(&self, id_curso: CourseId) -> sqlx::Result<Vec<MediaItem>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM midias WHERE id_curso = $1 ORDER BY ordem, id LIMIT $2"
        ))
        .bind(id_curso.get())
        .bind(MEDIA_PER_COURSE as i64)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(MediaItem::from_row).collect()
    }

    /// Stores a new item; without an `ordem` it goes after the course's last item. A course
    /// that already holds [`MEDIA_PER_COURSE`] items takes no more: the condition is part of
    /// the insert (on PostgreSQL two concurrent inserts may both pass it, so a course can end
    /// a few items over; `list` still returns at most the limit).
    pub async fn add(&self, new: &NewMedia) -> Result<MediaItem, MidiaError> {
        let mut tx = self.db.pool.begin().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO midias (id_curso, titulo, tipo, url, duracao_segundos, ordem, descricao, criada_ms)
             SELECT $1, $2, $3, $4, $5,
                    COALESCE($6, (SELECT COALESCE(MAX(ordem), 0) + 1 FROM midias WHERE id_curso = $1)),
                    $7, $8
             WHERE (SELECT COUNT(*) FROM midias WHERE id_curso = $1) < $9
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
        .bind(MEDIA_PER_COURSE as i64)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(MidiaError::CourseFull(new.id_curso.get()));
        };
        let added = MediaItem::from_row(&row)?;
        // Committed before it is answered (a RETURNING row is not a commit).
        tx.commit().await?;
        Ok(added)
    }
}
