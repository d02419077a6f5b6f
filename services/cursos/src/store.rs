//! All of cursos' SQL, in the dialect SQLite and PostgreSQL both accept.
//!
//! The catalogue reads (a course, a page, a user's courses) run inline on SQLite through the
//! runtime's [`Reads`](aula_runtime::reads::Reads) and through the sqlx pool on PostgreSQL:
//! the same SQL text, two row mappings, one branch per read method. Why two paths: sqlx's
//! SQLite driver runs each statement on a worker thread and hands the rows back through
//! channels, which was most of the cost of a GetUserCourses that SQLite answers from its page
//! cache in microseconds; reading inline took cursos from 0.23x to 0.58-0.63x of the reference
//! (BENCHMARKS.md, "What the profiles showed", 1.). PostgreSQL has no such path (its driver is
//! async, its latency the network's). CI runs every test on both (`.ci/run`).
//!
//! Write transactions begin with their write: on SQLite a transaction that reads first and
//! writes later must upgrade its lock, and two of them deadlock (SQLITE_BUSY at once, no
//! waiting); starting with the write takes the lock up front and `busy_timeout` queues the rest.

use crate::domain::{Course, CourseId, CursosError, Enrolment, UserId};
use aula_runtime::db::now_ms;
use notificacoes::courier::{Message, Outbox};
use sqlx::{AnyConnection, FromRow, Row};

aula_runtime::store! {
    /// The catalogue and the enrolments.
    pub struct Store;
}

/// What `GetStatus` counts.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub cursos: i64,
    pub inscricoes: i64,
}

/// The course columns, in the order [`sqlite_course`] reads them.
macro_rules! select_course {
    ($rest:literal) => {
        concat!(
            "SELECT c.id, c.nome, c.descricao, c.carga_horaria, c.instrutor, c.categoria ",
            $rest
        )
    };
}
const COURSE_BY_ID: &str = select_course!("FROM cursos c WHERE c.id = $1");
const COURSE_PAGE: &str = select_course!("FROM cursos c WHERE c.id > $1 ORDER BY c.id LIMIT $2");
// Ordered by the enrolment key's second column (equal to c.id): the rows come out of the key's
// index in that order, where `ORDER BY c.id` built and sorted a temporary B-tree per call.
const USER_COURSES: &str = select_course!(
    "FROM inscricoes i JOIN cursos c ON c.id = i.id_curso WHERE i.id_usuario = $1 ORDER BY i.id_curso"
);
// The counts the triggers of migration 0002 keep (one row on SQLite, 16 on PostgreSQL).
const COUNTS: &str = "SELECT CAST(COALESCE(SUM(cursos), 0) AS BIGINT), \
     CAST(COALESCE(SUM(inscricoes), 0) AS BIGINT) FROM contagens";
const ENROLL: &str = "INSERT INTO inscricoes (id_usuario, id_curso, criada_ms)
     SELECT $1, c.id, $3 FROM cursos c WHERE c.id = $2
     ON CONFLICT (id_usuario, id_curso) DO NOTHING";
const UNENROLL: &str = "DELETE FROM inscricoes WHERE id_usuario = $1 AND id_curso = $2";

/// A row of the course columns, in their order, from the inline SQLite path.
fn sqlite_course(row: &rusqlite::Row<'_>) -> rusqlite::Result<Course> {
    use aula_runtime::reads::text;
    Ok(Course {
        id: row.get(0)?,
        nome: text(row, 1)?,
        descricao: text(row, 2)?,
        carga_horaria: row.get(3)?,
        instrutor: text(row, 4)?,
        categoria: text(row, 5)?,
    })
}

async fn find_course(conn: &mut AnyConnection, id: CourseId) -> sqlx::Result<Option<Course>> {
    sqlx::query(COURSE_BY_ID)
        .bind(id.get())
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(Course::from_row)
        .transpose()
}

impl Store {
    pub async fn counts(&self) -> sqlx::Result<Counts> {
        let row = sqlx::query(COUNTS).fetch_one(&self.db.pool).await?;
        Ok(Counts {
            cursos: row.try_get(0)?,
            inscricoes: row.try_get(1)?,
        })
    }

    pub async fn course(&self, id: CourseId) -> Result<Course, CursosError> {
        let found = match self.db.sqlite_reads() {
            Some(reads) => reads.run(|c| {
                use rusqlite::OptionalExtension;
                c.prepare_cached(COURSE_BY_ID)?
                    .query_row([id.get()], sqlite_course)
                    .optional()
            })?,
            None => find_course(&mut *self.db.pool.acquire().await?, id).await?,
        };
        found.ok_or(CursosError::CourseNotFound(id.get()))
    }

    /// One page of the catalogue by id (keyset): courses after `after`, at most `limit`.
    pub async fn courses(&self, after: Option<i64>, limit: i64) -> sqlx::Result<Vec<Course>> {
        let after = after.unwrap_or(0);
        if let Some(reads) = self.db.sqlite_reads() {
            return reads.run(|c| {
                c.prepare_cached(COURSE_PAGE)?
                    .query_map([after, limit], sqlite_course)?
                    .collect()
            });
        }
        let rows = sqlx::query(COURSE_PAGE)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter().map(Course::from_row).collect()
    }

    /// The courses a user is enrolled in, by course id.
    pub async fn user_courses(&self, user: UserId) -> sqlx::Result<Vec<Course>> {
        if let Some(reads) = self.db.sqlite_reads() {
            return reads.run(|c| {
                c.prepare_cached(USER_COURSES)?
                    .query_map([user.get()], sqlite_course)?
                    .collect()
            });
        }
        let rows = sqlx::query(USER_COURSES)
            .bind(user.get())
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter().map(Course::from_row).collect()
    }

    /// Enrols a user, idempotently. Only the call whose insert created the enrolment enqueues
    /// the notice, in the same transaction: concurrent identical calls give one enrolment and
    /// one notification. The caller wakes the outbox after this returns.
    pub async fn enroll(
        &self,
        outbox: &Outbox,
        user: UserId,
        id: CourseId,
    ) -> Result<Enrolment, CursosError> {
        let mut tx = self.db.pool.begin().await?;
        let inserted = sqlx::query(ENROLL)
            .bind(user.get())
            .bind(id.get())
            .bind(now_ms())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        let Some(course) = find_course(&mut tx, id).await? else {
            return Err(CursosError::CourseNotFound(id.get()));
        };
        if inserted {
            let notice = Message::Notification {
                id_usuario: user.to_string(),
                message: crate::domain::enrolment_notice(&course),
                origem: String::new(),
            };
            outbox
                .enqueue(&mut tx, &crate::domain::fresh_key("inscricao"), &notice)
                .await?;
        }
        tx.commit().await?;
        Ok(Enrolment {
            course,
            nova: inserted,
        })
    }

    /// Removes an enrolment; `Ok(false)` when there was none.
    pub async fn unenroll(&self, user: UserId, id: CourseId) -> Result<bool, CursosError> {
        let removed = sqlx::query(UNENROLL)
            .bind(user.get())
            .bind(id.get())
            .execute(&self.db.pool)
            .await?
            .rows_affected()
            > 0;
        if !removed {
            // Distinguish "not enrolled" from "no such course".
            self.course(id).await?;
        }
        Ok(removed)
    }

    /// Stores a notification in the outbox (its own transaction); returns the row id for
    /// `Outbox::deliver_now`.
    pub async fn queue_notification(
        &self,
        outbox: &Outbox,
        key: &str,
        message: &Message,
    ) -> sqlx::Result<i64> {
        let mut tx = self.db.pool.begin().await?;
        let id = outbox.enqueue(&mut tx, key, message).await?;
        tx.commit().await?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aula_runtime::testing::SqlitePlans;

    /// Every call's query finds its rows through an index (SQLite's plans; PostgreSQL's are
    /// checked on seeded data by scripts/seed.sh's users, BENCHMARKS.md): the cost of a call
    /// does not grow with the catalogue or the enrolments. GetStatus reads the counts the
    /// writes keep (migration 0002), never the catalogue or the enrolments.
    #[tokio::test]
    async fn no_call_scans_a_table() {
        let calls = [
            ("GetUserCourses", USER_COURSES),
            ("GetCourse", COURSE_BY_ID),
            ("ListCourses", COURSE_PAGE),
            ("Enroll", ENROLL),
            ("Unenroll", UNENROLL),
        ];
        SqlitePlans::assert_service(&crate::service(), &calls, COUNTS).await;
    }
}
