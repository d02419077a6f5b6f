//! The interactions insights records and the statistics it derives, their validation, and the
//! service's errors.

use aula_api::limits;
use aula_runtime::{
    fields::{self, InvalidField},
    ids::{parse_optional_id, CourseId, UserId},
};
use std::collections::HashMap;

/// Why an insights request failed; `grpc.rs` says which kind of failure each variant is, and
/// the runtime's one mapping turns it into a status.
#[derive(Debug, thiserror::Error)]
pub enum InsightsError {
    /// Bad input, naming the field (INVALID_ARGUMENT).
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// The database failed (classified by the runtime; never shown to the caller).
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
}

/// One answered question.
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    pub id_interacao: String,
    /// `None` for a question asked outside a course (the seed's ResolveDuvida called directly).
    pub id_curso: Option<i64>,
    pub id_usuario: Option<i64>,
    pub latencia_ms: i64,
    pub modelo: String,
    pub sucesso: bool,
}

/// A course's statistics; all zeros for a course without questions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CourseInsights {
    pub id_curso: i64,
    pub total_perguntas: i64,
    pub latencia_media_ms: f64,
    pub taxa_sucesso: f64,
    pub usuarios_distintos: i64,
    pub perguntas_por_modelo: HashMap<String, i64>,
    /// Epoch milliseconds of the latest question.
    pub ultima_pergunta_ms: Option<i64>,
}

/// An interaction id: any non-empty text the chatbot chose, bounded.
pub fn parse_interaction_id(value: &str) -> Result<String, InvalidField> {
    fields::required_text("id_interacao", value, limits::INTERACTION_ID_CHARS)
}

impl Interaction {
    /// Validates a recording request's fields ("parse, don't validate").
    pub fn parse(
        id_interacao: &str,
        id_curso: &str,
        id_usuario: &str,
        latencia_ms: i64,
        modelo: &str,
        sucesso: bool,
    ) -> Result<Self, InvalidField> {
        let id_interacao = parse_interaction_id(id_interacao)?;
        // The course and who asked are optional: a question can come outside a course, and
        // AskQuestion's id_usuario is optional. Given, they must be valid ids.
        let id_curso = parse_optional_id(CourseId::FIELD, id_curso)?;
        let id_usuario = parse_optional_id(UserId::FIELD, id_usuario)?;
        if latencia_ms < 0 {
            return Err(InvalidField::new("latencia_ms", "must not be negative"));
        }
        let modelo = match fields::bounded("modelo", modelo, limits::MODEL_CHARS)? {
            "" => "desconhecido".to_string(),
            m => m.to_string(),
        };
        Ok(Self {
            id_interacao,
            id_curso,
            id_usuario,
            latencia_ms,
            modelo,
            sucesso,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interactions_are_validated() {
        let ok = Interaction::parse("i-1", "", " 3 ", 5, "", true).unwrap();
        assert_eq!((ok.id_curso, ok.id_usuario), (None, Some(3)));
        assert_eq!(ok.modelo, "desconhecido");
        let field = |r: Result<Interaction, InvalidField>| r.unwrap_err().field;
        assert_eq!(
            field(Interaction::parse(" ", "", "", 0, "m", true)),
            "id_interacao"
        );
        assert_eq!(
            field(Interaction::parse("i", "x", "", 0, "m", true)),
            "id_curso"
        );
        assert_eq!(
            field(Interaction::parse("i", "", "0", 0, "m", true)),
            "id_usuario"
        );
        assert_eq!(
            field(Interaction::parse("i", "", "", -1, "m", true)),
            "latencia_ms"
        );
        let long = "m".repeat(limits::MODEL_CHARS + 1);
        assert_eq!(
            field(Interaction::parse("i", "", "", 0, &long, true)),
            "modelo"
        );
    }
}
