//! notificacoes owns each user's notifications: it stores what other services send (once per
//! idempotency key, so outbox retries never duplicate), lists them newest first, marks them as
//! read and streams new ones live to connected clients, whichever replica stored them.
//!
//! # Layout
//! - [`grpc`]: the edge: protobuf <-> domain, and the one mapping of [`Error`] to a status.
//! - [`store`]: all SQL (SQLite and PostgreSQL through one dialect).
//! - [`fanout`]: live delivery to subscribers: an in-process broadcast, fed on PostgreSQL by
//!   LISTEN/NOTIFY so that every replica hears about every notification.

pub mod fanout;
pub mod grpc;
pub mod store;

use aula_runtime::{spec, ServiceDef};

/// The notificacoes service, for `aula up`, its binary and tests.
pub fn service() -> ServiceDef {
    ServiceDef {
        spec: spec::NOTIFICACOES,
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

impl From<aula_runtime::ids::InvalidField> for Error {
    fn from(e: aula_runtime::ids::InvalidField) -> Self {
        Error::Invalid {
            field: e.field,
            reason: e.reason,
        }
    }
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

/// The longest message accepted, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// A required identifier field (the runtime's one parser).
pub fn parse_id(field: &'static str, value: &str) -> Result<i64, Error> {
    Ok(aula_runtime::ids::parse_id(field, value)?)
}

/// A message to store: required, bounded.
pub fn parse_message(value: &str) -> Result<String, Error> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::Invalid {
            field: "message",
            reason: "required".into(),
        });
    }
    if value.chars().count() > MAX_MESSAGE_CHARS {
        return Err(Error::Invalid {
            field: "message",
            reason: "at most 2000 characters".into(),
        });
    }
    Ok(value.to_string())
}

/// The `origem` label of `aula_notifications_stored_total`: the known senders (the services of
/// the catalogue, "api" for a call that names none, "aula" for the CLI), anything else folded
/// into "outra" so a client cannot grow the metric's cardinality.
pub fn origem_label(origem: &str) -> &'static str {
    const CLIENTS: [&str; 2] = ["api", "aula"];
    aula_runtime::spec::NAMES
        .into_iter()
        .chain(CLIENTS)
        .find(|k| *k == origem)
        .unwrap_or("outra")
}

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
