//! Appointments, their validation, the texts users read about them, and the service's errors.

use aula_api::limits;
use aula_runtime::{
    fields::{self, InvalidField},
    ids::UserId,
};

/// Why a cpar request failed; `grpc.rs` says which kind of failure each variant is, and the
/// runtime's one mapping turns it into a status.
#[derive(Debug, thiserror::Error)]
pub enum CparError {
    /// Bad input, naming the field (INVALID_ARGUMENT).
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// No appointment with this id (NOT_FOUND).
    #[error("id_agendamento {0}: no such appointment")]
    NotFound(i64),
    /// The database failed (classified by the runtime; never shown to the caller).
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
}

pub const AGENDADO: &str = "agendado";
pub const CANCELADO: &str = "cancelado";
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
    ) -> Result<Self, InvalidField> {
        let id_usuario = UserId::parse(id_usuario)?.get();
        let titulo = fields::required_text("titulo", titulo, limits::SCHEDULE_TITLE_CHARS)?;
        let inicio_ms =
            inicio_ms.ok_or_else(|| InvalidField::new("inicio", "must not be empty"))?;
        if inicio_ms <= now_ms {
            return Err(InvalidField::new("inicio", "must be in the future"));
        }
        if duracao_minutos <= 0 {
            return Err(InvalidField::new("duracao_minutos", "must be positive"));
        }
        if duracao_minutos > MAX_MINUTES {
            return Err(InvalidField::new(
                "duracao_minutos",
                format!("must be at most {MAX_MINUTES} (one day)"),
            ));
        }
        Ok(Self {
            id_usuario,
            titulo,
            inicio_ms,
            duracao_minutos,
        })
    }
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

    /// The outbox key of a notice: each NotifySchedule call is a notice of its own.
    pub fn notice_key(&self) -> String {
        format!(
            "cpar-aviso-{}-{}-{:016x}",
            self.id,
            aula_runtime::db::now_ms(),
            rand::random::<u64>()
        )
    }

    /// The outbox key of the reminder: one per appointment, ever (the creation time keeps it
    /// unique if the database is recreated while notificacoes keeps its keys).
    pub fn reminder_key(&self) -> String {
        format!("cpar-lembrete-{}-{}", self.id, self.criado_ms)
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
        let field = |r: Result<NewSchedule, InvalidField>| match r {
            Err(e) => e.field,
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
