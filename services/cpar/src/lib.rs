//! cpar owns appointments (office hours): students book them, cancel them and are notified
//! about them. Notices and reminders reach notificacoes through the runtime's transactional
//! outbox, so an outage of notificacoes delays them and loses none.
//!
//! # Layout
//! - [`grpc`]: the edge: protobuf <-> domain, and the one mapping of [`Error`] to a status.
//! - [`store`]: all SQL (SQLite and PostgreSQL through one dialect), including the reminder
//!   claim and its outbox row in one transaction.
//! - [`reminders`]: the worker sending one reminder per appointment shortly before it starts.

pub mod grpc;
pub mod reminders;
pub mod store;

use aula_runtime::{spec, ServiceDef};

/// The cpar service, for `aula up`, its binary and tests.
pub fn service() -> ServiceDef {
    ServiceDef {
        spec: spec::CPAR,
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
    #[error("agendamento {0} não encontrado")]
    NotFound(i64),
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

pub const AGENDADO: &str = "agendado";
pub const CANCELADO: &str = "cancelado";
const MAX_TITLE_CHARS: usize = 200;
const MAX_MINUTES: i32 = 24 * 60;

/// A stored appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub id: i64,
    pub id_usuario: i64,
    pub titulo: String,
    /// Epoch milliseconds.
    pub inicio_ms: i64,
    pub duracao_minutos: i32,
    /// [`AGENDADO`] or [`CANCELADO`].
    pub estado: String,
    pub lembrete_enviado: bool,
    /// Epoch milliseconds; with the id, it makes the reminder's idempotency key unique even
    /// if the database is recreated while notificacoes keeps its keys.
    pub criado_ms: i64,
}

/// A validated appointment to create.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    pub id_usuario: i64,
    pub titulo: String,
    pub inicio_ms: i64,
    pub duracao_minutos: i32,
}

impl NewSchedule {
    /// `inicio_ms` is `None` when the request had no start; `now_ms` is the present.
    pub fn parse(
        id_usuario: &str,
        titulo: &str,
        inicio_ms: Option<i64>,
        duracao_minutos: i32,
        now_ms: i64,
    ) -> Result<Self, Error> {
        let id_usuario = parse_id("id_usuario", id_usuario)?;
        let titulo = titulo.trim();
        if titulo.is_empty() {
            return Err(invalid("titulo", "required"));
        }
        if titulo.chars().count() > MAX_TITLE_CHARS {
            return Err(invalid("titulo", "at most 200 characters"));
        }
        let inicio_ms = inicio_ms.ok_or_else(|| invalid("inicio", "required"))?;
        if inicio_ms <= now_ms {
            return Err(invalid("inicio", "must be in the future"));
        }
        if duracao_minutos <= 0 {
            return Err(invalid("duracao_minutos", "must be positive"));
        }
        if duracao_minutos > MAX_MINUTES {
            return Err(invalid("duracao_minutos", "at most 1440 (one day)"));
        }
        Ok(Self {
            id_usuario,
            titulo: titulo.to_string(),
            inicio_ms,
            duracao_minutos,
        })
    }
}

/// A required identifier field (the runtime's one parser).
pub fn parse_id(field: &'static str, value: &str) -> Result<i64, Error> {
    Ok(aula_runtime::ids::parse_id(field, value)?)
}

/// A start time as users read it: `04/03/2030 às 17:00 (UTC)`.
pub fn format_start(ms: i64) -> String {
    let format = time::macros::format_description!("[day]/[month]/[year] às [hour]:[minute]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .map(|s| format!("{s} (UTC)"))
        .unwrap_or_else(|| ms.to_string())
}

impl Schedule {
    /// What NotifySchedule tells the user.
    pub fn notice(&self) -> String {
        let start = format_start(self.inicio_ms);
        if self.estado == CANCELADO {
            format!("Agendamento cancelado: \"{}\" de {start}", self.titulo)
        } else {
            format!("Agendamento confirmado: \"{}\" em {start}", self.titulo)
        }
    }

    /// What the reminder worker tells the user.
    pub fn reminder(&self) -> String {
        format!(
            "Lembrete: \"{}\" começa em {}",
            self.titulo,
            format_start(self.inicio_ms)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_are_readable() {
        assert_eq!(format_start(1898874000000), "04/03/2030 às 17:00 (UTC)");
    }

    #[test]
    fn new_schedules_are_validated() {
        let now = 1_000_000;
        let field = |r: Result<NewSchedule, Error>| match r {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(NewSchedule::parse("", "t", Some(now + 1), 30, now)),
            "id_usuario"
        );
        assert_eq!(
            field(NewSchedule::parse("1", " ", Some(now + 1), 30, now)),
            "titulo"
        );
        assert_eq!(field(NewSchedule::parse("1", "t", None, 30, now)), "inicio");
        assert_eq!(
            field(NewSchedule::parse("1", "t", Some(now - 1), 30, now)),
            "inicio"
        );
        assert_eq!(
            field(NewSchedule::parse("1", "t", Some(now + 1), 0, now)),
            "duracao_minutos"
        );
        assert!(NewSchedule::parse("1", "t", Some(now + 1), 30, now).is_ok());
    }
}
