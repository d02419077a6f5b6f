//! The chatbot's domain: questions and what grounds them, answers, and the errors of answering
//! and of configuration. No tonic, no prost, no engine: `grpc.rs` converts at the edge, and the
//! engines (`gemini`, `offline`) build on these types without knowing each other.

use std::time::Duration;

use aula_api::limits;
use aula_runtime::{
    fields::{self, InvalidField},
    ids::CourseId,
};

/// Longest question accepted, in characters: a question is a few sentences, not a document.
pub const MAX_DUVIDA_CHARS: usize = limits::QUESTION_CHARS;
/// Longest lesson context accepted, in characters (keeps prompts and offline indexing bounded).
pub const MAX_CONTEXTO_CHARS: usize = limits::LESSON_CONTEXT_CHARS;
/// Most material items a question may carry: as many as midia lets a course hold.
pub const MAX_MATERIAL_ITEMS: usize = limits::MEDIA_PER_COURSE;

/// A student's question, with what grounds the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Question {
    /// What the lesson is about (free text from the caller).
    pub aula_contexto: String,
    /// The question itself; must not be blank.
    pub duvida: String,
    /// The course the question was asked in, when it came through `cursos.AskQuestion`.
    pub course: Option<CourseContext>,
}

/// The course a question belongs to and its material.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CourseContext {
    pub id: String,
    pub nome: String,
    pub descricao: String,
    pub material: Vec<Material>,
}

/// One media item of a course.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Material {
    pub titulo: String,
    pub descricao: String,
    pub tipo: String,
}

impl Question {
    /// Checks what every engine needs: a non-blank question and every field within the
    /// API's limits (`aula_api::limits`), so that no question costs more than its share.
    pub fn validate(&self) -> Result<(), AnswerError> {
        fields::required_text("duvida", &self.duvida, limits::QUESTION_CHARS)?;
        fields::bounded(
            "aula_contexto",
            &self.aula_contexto,
            limits::LESSON_CONTEXT_CHARS,
        )?;
        if let Some(course) = &self.course {
            course.validate()?;
        }
        Ok(())
    }
}

impl CourseContext {
    /// The grounding cursos sends: the course (within the limits the chatbot accepts) and at
    /// most as many material items as midia lets a course hold, each within midia's limits.
    pub fn validate(&self) -> Result<(), AnswerError> {
        if !self.id.trim().is_empty() {
            // Recorded in insights, which takes only a course id.
            CourseId::parse(&self.id)?;
        }
        fields::bounded("nome_curso", &self.nome, limits::COURSE_NAME_CHARS)?;
        fields::bounded(
            "descricao_curso",
            &self.descricao,
            limits::COURSE_DESCRIPTION_CHARS,
        )?;
        fields::count("material", &self.material, MAX_MATERIAL_ITEMS)?;
        for (n, m) in self.material.iter().enumerate() {
            let at = |e: InvalidField| {
                InvalidField::new(e.field, format!("{} (item {})", e.reason, n + 1))
            };
            fields::bounded("material.titulo", &m.titulo, limits::MEDIA_TITLE_CHARS).map_err(at)?;
            fields::bounded(
                "material.descricao",
                &m.descricao,
                limits::MEDIA_DESCRIPTION_CHARS,
            )
            .map_err(at)?;
            fields::bounded("material.tipo", &m.tipo, limits::MEDIA_KIND_CHARS).map_err(at)?;
        }
        Ok(())
    }
}

/// A complete answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    /// The model that answered (`offline-bm25` for the offline answerer).
    pub model: String,
    pub offline: bool,
    /// Prompt tokens as counted by the model (0 offline).
    pub tokens_in: u32,
    /// Answer tokens as counted by the model (0 offline).
    pub tokens_out: u32,
}

/// One piece of a streamed answer.
///
/// Every stream that ends well ends with exactly one chunk with `is_final == true`; its `text` may be
/// empty, and it is the only one carrying the token counts (the model reports them at the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub text: String,
    pub is_final: bool,
    pub model: String,
    pub offline: bool,
    pub tokens_in: u32,
    pub tokens_out: u32,
}

/// Why a question could not be answered. `grpc.rs` maps each variant to one status code.
///
/// Display texts are safe to show to callers: they never contain the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// Bad input -> INVALID_ARGUMENT; the message starts with the field.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// Gemini's quota is exhausted, after retries -> RESOURCE_EXHAUSTED.
    #[error("Gemini quota exhausted{}", retry_hint(.retry_after))]
    Quota { retry_after: Option<Duration> },
    /// Gemini's safety filters refused the prompt or the answer -> FAILED_PRECONDITION.
    #[error("blocked by Gemini's safety filters: {reason}")]
    Blocked { reason: String },
    /// No answer before the deadline -> DEADLINE_EXCEEDED.
    #[error("Gemini did not answer before the deadline")]
    Timeout,
    /// Gemini unreachable, failing or answering nonsense -> UNAVAILABLE.
    #[error("Gemini unavailable: {detail}")]
    Unavailable { detail: String },
    /// Gemini kept failing; the breaker fails fast until a probe succeeds -> UNAVAILABLE.
    #[error("Gemini is failing repeatedly; not calling it for a while (circuit open)")]
    CircuitOpen,
    /// The offline answer was abandoned at the caller's deadline (or the service's own budget)
    /// -> DEADLINE_EXCEEDED.
    #[error("the offline answer did not finish before the deadline")]
    Deadline,
}

impl From<InvalidField> for AnswerError {
    fn from(e: InvalidField) -> Self {
        AnswerError::Invalid {
            field: e.field,
            reason: e.reason,
        }
    }
}

fn retry_hint(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(", retry after {:.1}s", d.as_secs_f64()),
        None => String::new(),
    }
}

impl AnswerError {
    /// The `outcome` label of `aula_gemini_requests_total` for this error.
    pub fn outcome(&self) -> &'static str {
        match self {
            AnswerError::Invalid { .. } => "error",
            AnswerError::Quota { .. } => "quota",
            AnswerError::Blocked { .. } => "blocked",
            AnswerError::Timeout => "timeout",
            AnswerError::Unavailable { .. } => "unavailable",
            AnswerError::CircuitOpen => "circuit_open",
            AnswerError::Deadline => "timeout",
        }
    }
}

/// A configuration variable with a bad value; the message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(var: &'static str, reason: impl Into<String>) -> Self {
        ConfigError {
            var,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let q = Question {
            duvida: "   ".into(),
            ..Default::default()
        };
        assert!(matches!(
            q.validate(),
            Err(AnswerError::Invalid {
                field: "duvida",
                ..
            })
        ));
        let q = Question {
            duvida: "ok?".into(),
            aula_contexto: "x".repeat(MAX_CONTEXTO_CHARS + 1),
            ..Default::default()
        };
        assert!(matches!(
            q.validate(),
            Err(AnswerError::Invalid {
                field: "aula_contexto",
                ..
            })
        ));
    }

    #[test]
    fn grounding_is_bounded() {
        let course = |material: Vec<Material>| Question {
            duvida: "ok?".into(),
            course: Some(CourseContext {
                id: "1".into(),
                material,
                ..Default::default()
            }),
            ..Default::default()
        };
        let item = |descricao: String| Material {
            titulo: "t".into(),
            descricao,
            tipo: "video".into(),
        };
        assert!(course(vec![item("d".into()); MAX_MATERIAL_ITEMS])
            .validate()
            .is_ok());
        let too_many = course(vec![item("d".into()); MAX_MATERIAL_ITEMS + 1]).validate();
        assert!(
            matches!(
                &too_many,
                Err(AnswerError::Invalid {
                    field: "material",
                    ..
                })
            ),
            "{too_many:?}"
        );
        let long = course(vec![
            item("d".into()),
            item("x".repeat(limits::MEDIA_DESCRIPTION_CHARS + 1)),
        ])
        .validate()
        .unwrap_err()
        .to_string();
        assert!(
            long.starts_with("material.descricao: must be at most 2000 characters"),
            "{long}"
        );
        assert!(long.ends_with("(item 2)"), "{long}");
        let mut bad_id = course(Vec::new());
        bad_id.course.as_mut().unwrap().id = "x".into();
        assert!(matches!(
            bad_id.validate(),
            Err(AnswerError::Invalid {
                field: "id_curso",
                ..
            })
        ));
    }
}
