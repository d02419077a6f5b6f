//! The course domain: validated ids, courses, the texts users read, and the service's errors.

use aula_runtime::fields::InvalidField;
pub use aula_runtime::ids::{CourseId, UserId};

/// Why a cursos request failed; `grpc.rs` says which kind of failure each variant is, and the
/// runtime's one mapping turns it into a status.
#[derive(Debug, thiserror::Error)]
pub enum CursosError {
    /// Bad input, naming the field (INVALID_ARGUMENT). The message starts with the field.
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// No course with this id (NOT_FOUND).
    #[error("id_curso {0}: no such course")]
    CourseNotFound(i64),
    /// A call to a peer failed: it names the service that failed (also further down a
    /// chain) and keeps its code.
    #[error(transparent)]
    Peer(#[from] aula_runtime::peers::PeerError),
    /// The database failed (classified by the runtime; never shown to the caller).
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
}

/// A course of the catalogue.
/// Read from a row by column name (`sqlx::FromRow`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Course {
    pub id: i64,
    pub nome: String,
    pub descricao: String,
    /// Workload in hours.
    pub carga_horaria: i32,
    pub instrutor: String,
    pub categoria: String,
}

/// What `Enroll` did.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub course: Course,
    /// False when the user was already enrolled (nothing changed, nobody notified).
    pub nova: bool,
}

/// The notice an enrolment sends to the user.
pub fn enrolment_notice(course: &Course) -> String {
    // Within notificacoes' message limit, whatever the catalogue holds.
    let nome = aula_runtime::fields::clip(&course.nome, aula_api::limits::COURSE_NAME_CHARS);
    format!("Inscrição confirmada no curso {nome}")
}

/// `GetUserCourses`' message: "Usuário 1 está inscrito em 2 cursos".
pub fn user_courses_message(user: UserId, count: usize) -> String {
    match count {
        0 => format!("Usuário {user} não está inscrito em nenhum curso"),
        1 => format!("Usuário {user} está inscrito em 1 curso"),
        n => format!("Usuário {user} está inscrito em {n} cursos"),
    }
}

/// A fresh outbox key: unique per message, so each notice is delivered (and stored) once.
pub fn fresh_key(kind: &str) -> String {
    format!(
        "cursos:{kind}:{}:{:016x}",
        aula_runtime::db::now_ms(),
        rand::random::<u64>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_naturally() {
        let u = UserId::parse("1").unwrap();
        assert_eq!(
            user_courses_message(u, 2),
            "Usuário 1 está inscrito em 2 cursos"
        );
        assert_eq!(
            user_courses_message(u, 1),
            "Usuário 1 está inscrito em 1 curso"
        );
        assert_ne!(fresh_key("x"), fresh_key("x"));
    }
}
