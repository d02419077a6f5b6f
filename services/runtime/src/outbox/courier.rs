//! What an outbox delivers, and to whom: a [`Courier`]. The outbox keeps the guarantees
//! (stored in the caller's transaction, leased, retried with backoff, given up as a dead letter)
//! and knows nothing of the receiver's API; the courier knows the API and nothing of the table.

use serde::{de::DeserializeOwned, Serialize};
use std::future::Future;

/// Delivers an outbox's messages to one receiver (notificacoes' is `notificacoes::courier`).
///
/// The receiver must store each idempotency key once: an attempt cut off by its timeout may
/// still land, and the retry that follows carries the same key.
pub trait Courier: Send + Sync + 'static {
    /// What is stored, as JSON, in the row's `payload`. Rows outlive releases: a change to this
    /// type must still read the rows written before it (or they become dead letters).
    type Message: Serialize + DeserializeOwned + Send + 'static;
    /// What the receiver answers to a delivery, handed to the caller of `deliver_now`.
    type Receipt: Send + 'static;

    /// The receiver's name, in the reasons a message is pending ("notificacoes").
    fn receiver(&self) -> &'static str;

    /// True while a call to the receiver would fail without dialing (every replica is waiting
    /// out its reconnect backoff, [`crate::peers::PeerChannel::is_known_down`]): the immediate
    /// attempt then leaves the message to the worker at once.
    fn is_known_down(&self) -> bool {
        false
    }

    /// Delivers one message under its idempotency `key`.
    fn deliver(
        &self,
        key: &str,
        message: Self::Message,
    ) -> impl Future<Output = Result<Self::Receipt, Failure>> + Send;
}

/// Why an attempt did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Another attempt may succeed (the receiver is down, overloaded, slow, ...): retried with
    /// the runtime's backoff up to the attempt cap.
    Retryable(String),
    /// The receiver refuses this message for good: a dead letter at once.
    Permanent(String),
}

impl Failure {
    pub fn reason(&self) -> &str {
        match self {
            Self::Retryable(r) | Self::Permanent(r) => r,
        }
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent(_))
    }
}

/// The one classification of a receiver's gRPC refusal, so that every courier retries the same
/// codes and gives up on the same codes.
impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        let text = format!("{:?}: {}", s.code(), s.message());
        if is_permanent(s.code()) {
            Self::Permanent(text)
        } else {
            Self::Retryable(text)
        }
    }
}

/// Codes with which a receiver refuses a message for good: the same message can only be
/// refused again. UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, ABORTED,
/// UNAUTHENTICATED (a certificate or token being rotated) and the rest may pass later.
fn is_permanent(code: tonic::Code) -> bool {
    use tonic::Code as C;
    matches!(
        code,
        C::InvalidArgument
            | C::NotFound
            | C::AlreadyExists
            | C::FailedPrecondition
            | C::PermissionDenied
            | C::OutOfRange
            | C::Unimplemented
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::{Code as C, Status};

    #[test]
    fn refusals_for_good_are_told_from_the_rest() {
        for c in [
            C::InvalidArgument,
            C::NotFound,
            C::FailedPrecondition,
            C::PermissionDenied,
        ] {
            let f = Failure::from(Status::new(c, "no"));
            assert!(f.is_permanent(), "{c:?}");
        }
        for c in [
            C::Unavailable,
            C::DeadlineExceeded,
            C::ResourceExhausted,
            C::Internal,
            C::Unknown,
            C::Aborted,
            C::Unauthenticated,
        ] {
            let f = Failure::from(Status::new(c, "later"));
            assert!(!f.is_permanent(), "{c:?}");
        }
    }

    #[test]
    fn a_failure_says_the_code_and_the_receivers_words() {
        let f = Failure::from(Status::invalid_argument("message too long"));
        assert_eq!(f.reason(), "InvalidArgument: message too long");
    }
}
