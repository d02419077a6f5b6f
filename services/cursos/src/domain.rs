//! The course domain: validated ids, courses, the texts users read, and the service's errors.

/// Why a cursos request failed; `grpc.rs` maps each variant to a status code, in one place.
#[derive(Debug, thiserror::Error)]
pub enum CursosError {
    /// Bad input, naming the field (INVALID_ARGUMENT). The message starts with the field.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// No course with this id (NOT_FOUND).
    #[error("id_curso {0}: no such course")]
    CourseNotFound(i64),
    /// A peer could not be reached (UNAVAILABLE, naming it).
    #[error("{peer} is unavailable: {detail}")]
    PeerUnavailable { peer: &'static str, detail: String },
    /// A peer answered with an error of its own; its gRPC code is passed on, the message
    /// names the peer.
    #[error("{peer}: {detail}")]
    PeerRejected {
        peer: &'static str,
        /// The peer's gRPC status code (`tonic::Code as i32`).
        code: i32,
        detail: String,
    },
    /// The database failed (INTERNAL, opaque to the caller).
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
}

impl CursosError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// Parses an identifier field (the runtime's one parser).
fn positive_id(field: &'static str, raw: &str) -> Result<i64, CursosError> {
    aula_runtime::ids::parse_id(field, raw).map_err(|e| CursosError::invalid(e.field, e.reason))
}

/// A course id (`id_curso`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CourseId(i64);

impl CourseId {
    pub fn parse(raw: &str) -> Result<Self, CursosError> {
        positive_id("id_curso", raw).map(Self)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for CourseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A user id (`id_usuario`). Users are not owned here: any positive integer is a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserId(i64);

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, CursosError> {
        positive_id("id_usuario", raw).map(Self)
    }

    /// An optional `id_usuario` (AskQuestion): empty is `None`, anything else must parse.
    pub fn parse_optional(raw: &str) -> Result<Option<Self>, CursosError> {
        if raw.trim().is_empty() {
            Ok(None)
        } else {
            Self::parse(raw).map(Some)
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A required free-text field: trimmed, not blank.
pub fn required_text(field: &'static str, raw: &str) -> Result<String, CursosError> {
    let text = raw.trim();
    if text.is_empty() {
        Err(CursosError::invalid(field, "must not be empty"))
    } else {
        Ok(text.to_string())
    }
}

/// A course of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    format!("Inscrição confirmada no curso {}", course.nome)
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
    fn ids_name_their_field() {
        assert_eq!(CourseId::parse(" 3 ").unwrap().get(), 3);
        for bad in ["", "x", "0", "-1"] {
            let e = CourseId::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("id_curso: "), "{e}");
            let e = UserId::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("id_usuario: "), "{e}");
        }
        assert_eq!(UserId::parse_optional("").unwrap(), None);
        assert!(UserId::parse_optional("a").is_err());
        assert_eq!(
            required_text("duvida", " ").unwrap_err().to_string(),
            "duvida: must not be empty"
        );
    }

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
