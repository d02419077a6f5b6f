//! [`PeerError`]: a failed call to another service, as a value (the service that failed, its
//! code, what it said) that crosses services without string parsing.
//!
//! When a service answers its own caller with a `PeerError` (`Status::from(e)`), the failing
//! service travels in the status' details as a standard `google.rpc.ErrorInfo` (domain
//! [`DOMAIN`], metadata `service` and `detail`), so the next hop up still knows who failed:
//! the gateway names midia when cursos could not reach midia.

use std::{collections::HashMap, fmt};
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of a relayed peer failure.
pub const DOMAIN: &str = "aula.peers";
/// The `ErrorInfo.reason` of a relayed peer failure.
pub const REASON: &str = "PEER_FAILED";
/// What a peer's own words may add to a status; longer details are cut (a peer must not make
/// our answers large).
const MAX_DETAIL: usize = 512;

/// A call to a peer that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerError {
    service: &'static str,
    code: Code,
    detail: String,
}

impl PeerError {
    /// The failure of a call to `peer` (the service called, e.g. `spec::MIDIA.name`). When
    /// `peer` was relaying a failure of a service further down, the error names that one.
    pub fn from_status(peer: &'static str, status: tonic::Status) -> Self {
        if let Some(info) = status.get_details_error_info() {
            if info.domain == DOMAIN {
                let service = info
                    .metadata
                    .get("service")
                    .and_then(|name| known_service(name))
                    .unwrap_or(peer);
                let detail = info
                    .metadata
                    .get("detail")
                    .cloned()
                    .unwrap_or_else(|| status.message().to_string());
                return Self::new(service, status.code(), detail);
            }
        }
        let detail = if status.message().is_empty() {
            format!("answered {}", code_name(status.code()))
        } else {
            status.message().to_string()
        };
        Self::new(peer, status.code(), detail)
    }

    /// A failure observed here (the peer could not be reached, or did not answer in time).
    pub fn new(service: &'static str, code: Code, detail: impl Into<String>) -> Self {
        let mut detail = detail.into();
        if detail.len() > MAX_DETAIL {
            let mut cut = MAX_DETAIL;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
            detail.push('…');
        }
        Self {
            service,
            code,
            detail,
        }
    }

    /// The service that actually failed (the deepest one in a chain).
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The code the failing service answered with (or UNAVAILABLE / DEADLINE_EXCEEDED when it
    /// could not be reached or did not answer in time).
    pub fn code(&self) -> Code {
        self.code
    }

    /// What the failing service said, or why it could not be reached.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Worth retrying later: the service is down, slow or overloaded, or failed on its side.
    /// Everything else (INVALID_ARGUMENT, NOT_FOUND, ...) is its considered answer and will not
    /// change on a retry.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.code,
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::ResourceExhausted
                | Code::Aborted
                | Code::Unknown
                | Code::Internal
                | Code::Cancelled
        )
    }

    /// The code a service answers its own caller with when this peer failed: a peer's internal
    /// failure is a dependency being unavailable, not an internal error of ours; a peer's
    /// considered answer (bad input, not found, quota, timeout) keeps its code.
    pub fn relayed_code(&self) -> Code {
        match self.code {
            Code::Unknown | Code::Internal | Code::DataLoss | Code::Cancelled | Code::Ok => {
                Code::Unavailable
            }
            code => code,
        }
    }
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.service, self.detail)
    }
}

impl std::error::Error for PeerError {}

impl From<PeerError> for tonic::Status {
    fn from(e: PeerError) -> Self {
        let details = ErrorDetails::with_error_info(
            REASON,
            DOMAIN,
            HashMap::from([
                ("service".to_string(), e.service.to_string()),
                ("detail".to_string(), e.detail.clone()),
            ]),
        );
        tonic::Status::with_error_details(e.relayed_code(), e.to_string(), details)
    }
}

/// A service name from another process, as one of ours (anything else is not trusted into
/// logs and messages).
fn known_service(name: &str) -> Option<&'static str> {
    crate::spec::by_name(name).map(|s| s.name)
}

/// gRPC's upper-case code names (`NOT_FOUND`), as users see them in docs and grpcurl.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_own_answer_names_it() {
        let e = PeerError::from_status("midia", tonic::Status::not_found("id_curso 9: no media"));
        assert_eq!(e.service(), "midia");
        assert_eq!(e.code(), Code::NotFound);
        assert_eq!(e.to_string(), "midia: id_curso 9: no media");
        assert!(!e.is_transient());
        let e = PeerError::from_status("midia", tonic::Status::internal(""));
        assert_eq!(e.detail(), "answered INTERNAL");
        assert_eq!(e.relayed_code(), Code::Unavailable);
    }

    #[test]
    fn the_failing_service_survives_a_chain() {
        // cursos could not reach midia and answers the gateway with that...
        let at_cursos = PeerError::new("midia", Code::DeadlineExceeded, "no answer within 1s");
        let status: tonic::Status = at_cursos.clone().into();
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert_eq!(status.message(), "midia: no answer within 1s");
        // ...and the gateway, which called cursos, still sees midia, with midia's words.
        let at_gateway = PeerError::from_status("cursos", status);
        assert_eq!(at_gateway, at_cursos);
        // Through one more hop, and after the status went over the wire as headers.
        let again: tonic::Status = at_gateway.into();
        let wire = again.into_http::<()>();
        let back = tonic::Status::from_header_map(wire.headers()).expect("a status");
        assert_eq!(PeerError::from_status("chatbot", back), at_cursos);
    }

    #[test]
    fn unknown_names_are_not_trusted() {
        let forged = PeerError::new("midia", Code::Unavailable, "x");
        let mut status: tonic::Status = forged.into();
        let details = ErrorDetails::with_error_info(
            REASON,
            DOMAIN,
            HashMap::from([("service".to_string(), "\u{1b}[31mevil".to_string())]),
        );
        status = tonic::Status::with_error_details(status.code(), status.message(), details);
        assert_eq!(PeerError::from_status("cursos", status).service(), "cursos");
    }

    #[test]
    fn long_details_are_cut() {
        let e = PeerError::new("midia", Code::InvalidArgument, "é".repeat(2000));
        assert!(e.detail().len() <= MAX_DETAIL + '…'.len_utf8());
    }
}
