//! What the writers did and what each call answered: the history the verdict is checked
//! against.
//!
//! A call ends in one of three ways a client can tell apart. Acknowledged: the service said
//! OK, so the write must be there at the end, exactly once. Failed: the service said no in a
//! way that means nothing was written (bad input, not found, overloaded). Indeterminate: the
//! call timed out, the connection broke, or the service failed internally; the write may or
//! may not have happened, and the check accepts either (but never twice).

use serde::Serialize;
use tonic::Code;

/// How a call ended, as its client can know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Acked,
    Failed,
    Indeterminate,
}

impl Outcome {
    pub fn of<T>(result: &Result<T, tonic::Status>) -> Self {
        match result {
            Ok(_) => Outcome::Acked,
            Err(status) => Self::of_code(status.code()),
        }
    }

    /// Codes that say "nothing was written" are definite failures; everything else (a
    /// timeout, a broken connection, an internal error, a cancelled call) may have been
    /// applied before it failed.
    pub fn of_code(code: Code) -> Self {
        match code {
            Code::Ok => Outcome::Acked,
            Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::Unimplemented
            | Code::ResourceExhausted => Outcome::Failed,
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Unknown
            | Code::Internal
            | Code::Aborted
            | Code::DataLoss => Outcome::Indeterminate,
        }
    }

    /// The outcome of a write retried with the same idempotency key: acknowledged if any
    /// attempt was, failed only if every attempt definitely failed.
    pub fn of_attempts(attempts: &[Outcome]) -> Self {
        if attempts.contains(&Outcome::Acked) {
            Outcome::Acked
        } else if attempts.contains(&Outcome::Indeterminate) || attempts.is_empty() {
            Outcome::Indeterminate
        } else {
            Outcome::Failed
        }
    }
}

/// One user enrolled in one course, and perhaps unenrolled again.
#[derive(Debug, Clone, Serialize)]
pub struct Enrolment {
    pub user: i64,
    pub course: i64,
    pub enroll: Outcome,
    /// `nova_inscricao` of an acknowledged Enroll.
    pub nova: Option<bool>,
    /// The Unenroll sent after an acknowledged Enroll, if any.
    pub unenroll: Option<Outcome>,
}

/// Which door a notification went in by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeVia {
    /// `CursosService.SendNotification`: cursos' outbox, delivered to notificacoes.
    Cursos,
    /// `NotificacoesService.SendNotification`, stored directly.
    Notificacoes,
}

/// One notification sent (and, with a key, perhaps re-sent).
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub via: NoticeVia,
    pub keyed: bool,
    pub user: i64,
    /// Unique text inside the message: how the final read finds it.
    pub token: String,
    /// Every attempt; only keyed notices are retried (a retry without a key is a new one).
    pub attempts: Vec<Outcome>,
    /// `id_notificacao` of an acknowledged direct send.
    pub id: Option<String>,
}

impl Notice {
    pub fn outcome(&self) -> Outcome {
        Outcome::of_attempts(&self.attempts)
    }
}

/// An appointment booked at cpar, with the notices and the cancellation sent for it.
#[derive(Debug, Clone, Serialize)]
pub struct Appointment {
    pub user: i64,
    /// Unique text inside the title.
    pub token: String,
    pub create: Outcome,
    pub id: Option<i64>,
    /// One entry per NotifySchedule call, in order.
    pub notifies: Vec<Outcome>,
    pub cancel: Option<Outcome>,
}

/// A media item added at midia.
#[derive(Debug, Clone, Serialize)]
pub struct Media {
    pub course: i64,
    pub token: String,
    pub outcome: Outcome,
    pub id: Option<i64>,
}

/// An interaction recorded directly at insights (`id_interacao` is the token).
#[derive(Debug, Clone, Serialize)]
pub struct Interaction {
    pub course: i64,
    pub id: String,
    pub outcome: Outcome,
}

/// A question asked through cursos (cursos -> midia, chatbot -> insights).
#[derive(Debug, Clone, Serialize)]
pub struct Question {
    pub course: i64,
    pub outcome: Outcome,
    /// The `id_interacao` the chatbot answered with, under which insights records it.
    pub id_interacao: Option<String>,
}

/// Everything every writer did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct History {
    pub enrolments: Vec<Enrolment>,
    pub notices: Vec<Notice>,
    pub appointments: Vec<Appointment>,
    pub media: Vec<Media>,
    pub interactions: Vec<Interaction>,
    pub questions: Vec<Question>,
}

impl History {
    pub fn merge(&mut self, other: History) {
        self.enrolments.extend(other.enrolments);
        self.notices.extend(other.notices);
        self.appointments.extend(other.appointments);
        self.media.extend(other.media);
        self.interactions.extend(other.interactions);
        self.questions.extend(other.questions);
    }

    /// How many calls were made.
    pub fn calls(&self) -> usize {
        self.enrolments
            .iter()
            .map(|e| 1 + usize::from(e.unenroll.is_some()))
            .sum::<usize>()
            + self.notices.iter().map(|n| n.attempts.len()).sum::<usize>()
            + self
                .appointments
                .iter()
                .map(|a| 1 + a.notifies.len() + usize::from(a.cancel.is_some()))
                .sum::<usize>()
            + self.media.len()
            + self.interactions.len()
            + self.questions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_that_promise_nothing_was_written_are_failures() {
        assert_eq!(Outcome::of_code(Code::Ok), Outcome::Acked);
        assert_eq!(Outcome::of_code(Code::InvalidArgument), Outcome::Failed);
        assert_eq!(Outcome::of_code(Code::ResourceExhausted), Outcome::Failed);
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Internal,
            Code::Unknown,
            Code::Cancelled,
        ] {
            assert_eq!(Outcome::of_code(code), Outcome::Indeterminate, "{code:?}");
        }
    }

    #[test]
    fn a_retried_write_is_acknowledged_if_any_attempt_was() {
        use Outcome::*;
        assert_eq!(Outcome::of_attempts(&[Indeterminate, Acked]), Acked);
        assert_eq!(
            Outcome::of_attempts(&[Indeterminate, Failed]),
            Indeterminate
        );
        assert_eq!(Outcome::of_attempts(&[Failed, Failed]), Failed);
    }
}
