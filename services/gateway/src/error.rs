//! The gateway's one error type and its one mapping to HTTP: every failure is a status code and
//! a JSON body `{"erro": "..."}`, as the seed's Flask API answered.

use axum::{
    response::{IntoResponse, Response},
    Json,
};
use http::StatusCode;
use serde_json::json;
use tonic::Code;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is wrong (body missing, not JSON, a field missing): 400.
    #[error("{0}")]
    BadRequest(String),
    /// No route has this path: 404.
    #[error("rota não encontrada: {0}")]
    NoRoute(String),
    /// The route exists but not for this method: 405.
    #[error("método {method} não permitido em {path}")]
    MethodNotAllowed { method: String, path: String },
    /// A gRPC call to `service` failed; the status maps to an HTTP status.
    #[error("{message}")]
    Grpc {
        service: &'static str,
        code: Code,
        message: String,
    },
}

impl ApiError {
    /// The error of a failed call to `service`.
    pub fn grpc(service: &'static str, status: tonic::Status) -> Self {
        let code = status.code();
        let mut message = status.message().to_string();
        if message.is_empty() {
            message = format!("{service} respondeu {}", code_label(code));
        } else if matches!(code, Code::Unavailable | Code::DeadlineExceeded)
            && !message.contains(service)
        {
            // A 503/504 must say which service is missing, whoever phrased the message.
            message = format!("{service}: {message}");
        }
        Self::Grpc {
            service,
            code,
            message,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NoRoute(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Grpc { code, .. } => http_status(*code),
        }
    }
}

/// The HTTP status of a gRPC code. The table, and why FAILED_PRECONDITION is 422, is in the
/// crate's README.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        // The request is well formed but the resource is not in a state that allows it:
        // 422 keeps it apart from 409 (a conflicting write) and from 412 (HTTP preconditions,
        // If-Match and friends, which this API does not use).
        Code::FailedPrecondition => StatusCode::UNPROCESSABLE_ENTITY,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // The client went away; nginx's 499 is the usual spelling and only shows in logs.
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a valid status"),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// gRPC's upper-case code names (`NOT_FOUND`), as users see them in docs and grpcurl.
pub fn code_label(code: Code) -> &'static str {
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %self, "request failed");
        }
        let body = match &self {
            Self::Grpc { service, code, .. } => json!({
                "erro": self.to_string(),
                "servico": service,
                "codigo": code_label(*code),
            }),
            _ => json!({ "erro": self.to_string() }),
        };
        (status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_statuses() {
        let cases = [
            (Code::InvalidArgument, 400),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::FailedPrecondition, 422),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unknown, 500),
            (Code::PermissionDenied, 403),
            (Code::Unauthenticated, 401),
        ];
        for (code, http) in cases {
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
    }

    #[test]
    fn unavailable_always_names_the_service() {
        let e = ApiError::grpc("midia", tonic::Status::unavailable("connection refused"));
        assert_eq!(e.to_string(), "midia: connection refused");
        let e = ApiError::grpc("midia", tonic::Status::unavailable("midia is unavailable"));
        assert_eq!(e.to_string(), "midia is unavailable");
        let e = ApiError::grpc("cursos", tonic::Status::not_found(""));
        assert_eq!(e.to_string(), "cursos respondeu NOT_FOUND");
    }
}
