//! The one mapping from a service's domain error to a gRPC status.
//!
//! Each service has one `thiserror` enum in its `domain.rs` and says, per variant, what kind
//! of failure it is ([`ServiceError::kind`]); everything else (the code, the message, what is
//! logged, what the caller never sees) is decided here, once for all six:
//!
//! - bad input is INVALID_ARGUMENT with the error's text, which names the field;
//! - a missing thing is NOT_FOUND; other refusals carry the code the variant names;
//! - a failed call to another Aula service is its [`PeerError`]: the status keeps the code,
//!   names the service that failed, and carries it in the details for the next hop up;
//! - a dependency outside the platform (Gemini) keeps its code and is named;
//! - a storage failure goes through [`storage_status`], the one place the database's errors
//!   are classified;
//! - anything unexpected is an opaque INTERNAL, its cause chain logged.
//!
//! Every message is capped at [`MAX_MESSAGE_BYTES`]: a status message travels in an HTTP/2
//! trailer, and clients refuse large metadata (16 KiB is a common limit) with an error that
//! hides the real one.
//!
//! ```ignore
//! impl aula_runtime::error::ServiceError for MidiaError {
//!     fn kind(&self) -> Kind<'_> {
//!         match self {
//!             Self::Invalid(_) => Kind::Invalid,
//!             Self::Storage(e) => Kind::Storage(e),
//!         }
//!     }
//! }
//! aula_runtime::status_from!(MidiaError);
//! ```

use crate::peers::PeerError;
use tonic::{Code, Status};

/// The longest status message sent, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// What kind of failure a domain error is.
#[derive(Debug)]
pub enum Kind<'a> {
    /// The request is wrong: INVALID_ARGUMENT; the error's text names the field.
    Invalid,
    /// What the request names does not exist: NOT_FOUND.
    NotFound,
    /// A refusal with another code the caller should see with the error's text
    /// (FAILED_PRECONDITION, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ...).
    Refused(Code),
    /// A call to another Aula service failed (it names the service, also down a chain).
    Peer(&'a PeerError),
    /// A dependency outside the platform (Gemini) failed with `code`; the message names it.
    Dependency { name: &'static str, code: Code },
    /// The database failed: classified by [`storage_status`].
    Storage(&'a sqlx::Error),
    /// A bug or an unexpected state: INTERNAL, opaque to the caller, its cause logged.
    Internal,
}

/// A service's domain error: says which [`Kind`] each variant is. Implemented once per
/// service, next to the enum; [`crate::status_from!`] then gives `?` in handlers.
pub trait ServiceError: std::error::Error + Send + Sync + 'static {
    fn kind(&self) -> Kind<'_>;
}

/// The status a domain error becomes.
pub fn status<E: ServiceError>(error: &E) -> Status {
    match error.kind() {
        Kind::Invalid => message(Code::InvalidArgument, error),
        Kind::NotFound => message(Code::NotFound, error),
        Kind::Refused(code) => message(code, error),
        Kind::Peer(e) => Status::from(e.clone()),
        Kind::Dependency { name, code } => {
            let text = error.to_string();
            if text.starts_with(name) {
                capped(code, text)
            } else {
                capped(code, format!("{name}: {text}"))
            }
        }
        Kind::Storage(e) => storage_status(e),
        Kind::Internal => internal(error),
    }
}

/// The one place a database error becomes a status, classified by [`crate::db::classify`]:
/// a full disk is RESOURCE_EXHAUSTED, a read-only, busy or unreachable database UNAVAILABLE, a
/// conflict with a concurrent write ABORTED, each naming the cause (retrying later can
/// succeed); anything else is an opaque INTERNAL with its cause logged.
pub fn storage_status(error: &sqlx::Error) -> Status {
    use crate::db::StorageFault as F;
    let Some(fault) = crate::db::classify(error) else {
        return internal(error);
    };
    tracing::warn!(error = %error, ?fault, "storage failure");
    let code = match fault {
        F::Full => Code::ResourceExhausted,
        F::ReadOnly | F::Busy | F::Unreachable => Code::Unavailable,
        F::Conflict => Code::Aborted,
    };
    capped(code, format!("storage: {}; retry later", fault.describe()))
}

/// An opaque INTERNAL status; the error's cause chain goes to the log, not to the caller.
pub fn internal(error: &(dyn std::error::Error + 'static)) -> Status {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    tracing::error!(error = chain, "internal error");
    Status::internal("internal error")
}

fn message(code: Code, error: &dyn std::fmt::Display) -> Status {
    capped(code, error.to_string())
}

/// A status whose message is at most [`MAX_MESSAGE_BYTES`] (cut at a character boundary).
pub fn capped(code: Code, mut text: String) -> Status {
    if text.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES - '…'.len_utf8();
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    Status::new(code, text)
}

/// `impl From<E> for tonic::Status` through [`status`], for each domain error type named, so
/// handlers can use `?`. (The orphan rule forbids a blanket impl in the runtime.)
#[macro_export]
macro_rules! status_from {
    ($($error:ty),+ $(,)?) => {$(
        impl ::std::convert::From<$error> for ::tonic::Status {
            fn from(error: $error) -> Self {
                $crate::error::status(&error)
            }
        }
    )+};
}

/// An error and its causes on one line. Libraries keep the useful part in the source chain:
/// sqlx's "pool timed out" hides "Connection refused", reqwest's "error sending request" hides
/// an unknown CA; an operator needs those. A cause already quoted by its parent is not repeated.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Demo {
        #[error(transparent)]
        Invalid(#[from] crate::fields::InvalidField),
        #[error("id_curso {0}: no such course")]
        Missing(i64),
        #[error("quota")]
        Quota,
        #[error("midia is unavailable: connection refused")]
        PeerNamed,
        #[error("no such media")]
        PeerUnnamed,
        #[error("storage: {0}")]
        Storage(#[from] sqlx::Error),
        #[error("a bug: secret detail")]
        Bug,
    }

    impl ServiceError for Demo {
        fn kind(&self) -> Kind<'_> {
            match self {
                Demo::Invalid(_) => Kind::Invalid,
                Demo::Missing(_) => Kind::NotFound,
                Demo::Quota => Kind::Refused(Code::ResourceExhausted),
                Demo::PeerNamed => Kind::Dependency {
                    name: "midia",
                    code: Code::Unavailable,
                },
                Demo::PeerUnnamed => Kind::Dependency {
                    name: "midia",
                    code: Code::NotFound,
                },
                Demo::Storage(e) => Kind::Storage(e),
                Demo::Bug => Kind::Internal,
            }
        }
    }

    crate::status_from!(Demo);

    #[test]
    fn one_mapping() {
        let s: Status = Demo::from(crate::fields::InvalidField::new(
            "titulo",
            "must not be empty",
        ))
        .into();
        assert_eq!(
            (s.code(), s.message()),
            (Code::InvalidArgument, "titulo: must not be empty")
        );
        let s: Status = Demo::Missing(3).into();
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(Status::from(Demo::Quota).code(), Code::ResourceExhausted);
        let s = Status::from(Demo::PeerNamed);
        assert_eq!(
            (s.code(), s.message()),
            (
                Code::Unavailable,
                "midia is unavailable: connection refused"
            )
        );
        let s = Status::from(Demo::PeerUnnamed);
        assert_eq!(
            (s.code(), s.message()),
            (Code::NotFound, "midia: no such media")
        );
        let s = Status::from(Demo::Storage(sqlx::Error::PoolTimedOut));
        assert_eq!(s.code(), Code::Unavailable);
        assert!(
            s.message().starts_with("storage: the database is busy"),
            "{s:?}"
        );
        let s = Status::from(Demo::Storage(sqlx::Error::RowNotFound));
        assert_eq!((s.code(), s.message()), (Code::Internal, "internal error"));
        let s = Status::from(Demo::Bug);
        assert_eq!((s.code(), s.message()), (Code::Internal, "internal error"));
    }

    #[test]
    fn messages_are_capped() {
        let s = capped(Code::InvalidArgument, "é".repeat(5000));
        assert!(s.message().len() <= MAX_MESSAGE_BYTES);
        assert!(s.message().ends_with('…'));
        assert_eq!(capped(Code::Ok, "short".into()).message(), "short");
    }
}
