//! Notifications, their validation, and the service's errors.

use aula_api::limits;
use aula_runtime::fields::{self, InvalidField};

/// Why a notificacoes request failed; `grpc.rs` says which kind of failure each variant is,
/// and the runtime's one mapping turns it into a status.
#[derive(Debug, thiserror::Error)]
pub enum NotificacoesError {
    /// Bad input, naming the field (INVALID_ARGUMENT).
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// A subscription beyond the open streams' limits (RESOURCE_EXHAUSTED).
    #[error(transparent)]
    TooManyStreams(#[from] crate::streams::Refused),
    /// The database failed (classified by the runtime; never shown to the caller).
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: i64,
    pub id_usuario: i64,
    pub message: String,
    pub lida: bool,
    /// Epoch milliseconds.
    pub criada_ms: i64,
    pub origem: String,
}

/// A notification to store.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub id_usuario: i64,
    pub message: String,
    pub origem: String,
    /// The sender's idempotency key; `None` stores every call.
    pub chave: Option<String>,
}

/// A message to store: required, at most [`limits::NOTIFICATION_MESSAGE_CHARS`] (what cursos
/// and cpar hold their senders to as well).
pub fn parse_message(value: &str) -> Result<String, InvalidField> {
    fields::required_text("message", value, limits::NOTIFICATION_MESSAGE_CHARS)
}

/// The sender (`origem`): "api" when not given.
pub fn parse_origem(value: &str) -> Result<String, InvalidField> {
    Ok(
        match fields::bounded("origem", value, limits::NOTIFICATION_ORIGIN_CHARS)? {
            "" => "api".to_string(),
            o => o.to_string(),
        },
    )
}

/// A sender's idempotency key (`chave_idempotencia`); `None` when not given.
pub fn parse_key(value: &str) -> Result<Option<String>, InvalidField> {
    let key = fields::bounded("chave_idempotencia", value, limits::IDEMPOTENCY_KEY_CHARS)?;
    Ok((!key.is_empty()).then(|| key.to_string()))
}

/// The `origem` label of `aula_notifications_stored_total`: the known senders (the services of
/// the catalogue, "api" for a call that names none, "aula" for the CLI), anything else folded
/// into "outra" so a client cannot grow the metric's cardinality.
pub fn origem_label(origem: &str) -> &'static str {
    origem_labels()
        .find(|k| *k == origem)
        .unwrap_or(OTHER_SENDER)
}

/// Every sender [`origem_label`] can return ("outra" last).
pub fn origem_labels() -> impl Iterator<Item = &'static str> {
    const CLIENTS: [&str; 2] = ["api", "aula"];
    aula_runtime::spec::NAMES
        .into_iter()
        .chain(CLIENTS)
        .chain([OTHER_SENDER])
}

const OTHER_SENDER: &str = "outra";

#[cfg(test)]
mod tests {
    #[test]
    fn every_service_of_the_catalogue_is_a_known_sender() {
        for name in aula_runtime::spec::NAMES {
            assert_eq!(super::origem_label(name), name);
        }
        assert_eq!(super::origem_label("api"), "api");
        assert_eq!(super::origem_label("someone"), "outra");
    }
}
