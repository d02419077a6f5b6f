//! insights owns the record of every question the chatbot answered (course, user, latency,
//! model, outcome) and turns it into per-course statistics.
//!
//! # Layout
//! - [`grpc`]: the edge: protobuf <-> domain, and the one mapping of [`Error`] to a status.
//! - [`store`]: all SQL (SQLite and PostgreSQL through one dialect).

pub mod grpc;
pub mod store;

use aula_runtime::{spec, ServiceDef};
use std::collections::HashMap;

/// The insights service, for `aula up`, its binary and tests.
pub fn service() -> ServiceDef {
    ServiceDef {
        spec: spec::INSIGHTS,
        migrations: Some(aula_runtime::migrations!()),
        build: |ctx| Box::pin(grpc::build(ctx)),
    }
}

/// Why a request failed; [`grpc`] maps each to a status code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input, naming the field.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field,
        reason: reason.into(),
    }
}

impl From<aula_runtime::ids::InvalidField> for Error {
    fn from(e: aula_runtime::ids::InvalidField) -> Self {
        Error::Invalid {
            field: e.field,
            reason: e.reason,
        }
    }
}

/// The longest interaction id or model name accepted.
const MAX_TEXT: usize = 200;

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

/// A required identifier field (the runtime's one parser).
pub fn parse_id(field: &'static str, value: &str) -> Result<i64, Error> {
    Ok(aula_runtime::ids::parse_id(field, value)?)
}

/// An interaction id: any non-empty text the chatbot chose, bounded.
pub fn parse_interaction_id(value: &str) -> Result<String, Error> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid("id_interacao", "required"));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(invalid("id_interacao", "at most 200 characters"));
    }
    Ok(value.to_string())
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
    ) -> Result<Self, Error> {
        let id_interacao = parse_interaction_id(id_interacao)?;
        // The course and who asked are optional: a question can come outside a course, and
        // AskQuestion's id_usuario is optional. Given, they must be valid ids.
        let id_curso = match id_curso.trim() {
            "" => None,
            c => Some(parse_id("id_curso", c)?),
        };
        let id_usuario = match id_usuario.trim() {
            "" => None,
            u => Some(parse_id("id_usuario", u)?),
        };
        if latencia_ms < 0 {
            return Err(invalid("latencia_ms", "must not be negative"));
        }
        let modelo = match modelo.trim() {
            "" => "desconhecido".to_string(),
            m if m.chars().count() > MAX_TEXT => {
                return Err(invalid("modelo", "at most 200 characters"))
            }
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
