//! The gateway's one error type and its one mapping to HTTP: every failure is a status code and
//! a JSON body `{"erro": "..."}`, as the seed's Flask API answered.

use aula_runtime::{
    auth::{AuthFailure, Reason},
    peers::{code_name, PeerError},
};
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
    #[error("no such route: {0}")]
    NoRoute(String),
    /// The route exists but not for this method: 405.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    /// The body is larger than `GATEWAY_MAX_BODY`: 413.
    #[error("request body larger than the limit of {limit} bytes (GATEWAY_MAX_BODY)")]
    PayloadTooLarge { limit: usize },
    /// The client made more requests than `GATEWAY_RATE_LIMIT` allows: 429 with `Retry-After`.
    #[error("request body not received within {}s (GATEWAY_BODY_TIMEOUT)", after.as_secs_f64())]
    BodyTimeout { after: std::time::Duration },
    #[error("too many requests from this client (GATEWAY_RATE_LIMIT): retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// The gateway is handling `GATEWAY_MAX_IN_FLIGHT` requests already: 503 with `Retry-After`.
    #[error("the gateway is at its limit of {limit} requests at once (GATEWAY_MAX_IN_FLIGHT): retry in 1 s")]
    Overloaded { limit: usize },
    /// No token, or one that does not verify (`AULA_AUTH=jwt`): 401 with `WWW-Authenticate`.
    #[error("authentication required: {0}")]
    Unauthenticated(AuthFailure),
    /// A gRPC call failed; the failing service's code maps to an HTTP status.
    #[error("{message}")]
    Grpc {
        /// The service that actually failed: the one called, or one it called in turn.
        service: &'static str,
        code: Code,
        message: String,
    },
}

impl ApiError {
    /// The error of a failed call to `called`. An outage (503/504), or a failure further down
    /// the chain, always names the service that failed; a service's own answer (404, 400, ...)
    /// is its message as it phrased it.
    pub fn grpc(called: &'static str, status: tonic::Status) -> Self {
        let own_words_empty = status.message().is_empty();
        let e = PeerError::from_status(called, status);
        let code = e.code();
        let message = if e.service() != called
            || matches!(code, Code::Unavailable | Code::DeadlineExceeded)
        {
            e.to_string()
        } else if own_words_empty {
            format!("{called} answered {}", code_name(code))
        } else {
            e.detail().to_string()
        };
        Self::Grpc {
            service: e.service(),
            code,
            message,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NoRoute(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Grpc { code, .. } => http_status(*code),
        }
    }

    /// When to come back, in seconds, for a 429 or the gateway's own 503: the client's own
    /// rate, the gateway at its limit, or a service that shed the call (its
    /// `grpc-retry-pushback-ms`, rounded up).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            Self::Overloaded { .. } => Some(1),
            Self::Grpc {
                code: Code::ResourceExhausted,
                ..
            } => Some(aula_runtime::shed::RETRY_PUSHBACK_MS.div_ceil(1000).max(1)),
            _ => None,
        }
    }

    /// The error of a request body that could not be read: 413 over `limit`, else 400.
    pub fn body(rejection: axum::extract::rejection::BytesRejection, limit: usize) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::PayloadTooLarge { limit }
        } else {
            Self::BadRequest(format!("request body unreadable: {rejection}"))
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
                "codigo": code_name(*code),
            }),
            _ => json!({ "erro": self.to_string() }),
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(http::header::WWW_AUTHENTICATE, self.www_authenticate());
        }
        response
    }
}

/// The protection space of `WWW-Authenticate` challenges.
const REALM: &str = "aula";
/// The longest `error_description` sent: a sentence, not a log.
const DESCRIPTION_CHARS: usize = 200;

impl ApiError {
    /// The RFC 6750 challenge of a 401. Without a token (section 3.1: a request that carried
    /// no authentication) only the scheme and realm, so a client knows to send one; with a
    /// token that proved nothing, `error="invalid_token"` and which check failed.
    fn www_authenticate(&self) -> http::HeaderValue {
        let description = match self {
            Self::Unauthenticated(f) if f.reason == Reason::Missing => None,
            Self::Unauthenticated(f) => Some(f.message.as_str()),
            Self::Grpc { message, .. } => Some(message.as_str()),
            _ => None,
        };
        let value = match description {
            None => format!("Bearer realm=\"{REALM}\""),
            Some(d) => format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{}\"",
                error_description(d)
            ),
        };
        http::HeaderValue::from_str(&value).expect("printable ASCII only")
    }
}

/// `text` as an RFC 6750 `error_description`: only %x20-21 / %x23-5B / %x5D-7E (printable
/// ASCII without `"` and `\`), at most [`DESCRIPTION_CHARS`]. Quotes become `'`, anything
/// else outside the set `?`.
fn error_description(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .take(DESCRIPTION_CHARS)
        .collect()
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
    fn a_shed_call_is_429_with_retry_after() {
        let e = ApiError::grpc("cursos", tonic::Status::resource_exhausted("busy"));
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[http::header::RETRY_AFTER], "1");
        let r = ApiError::RateLimited { retry_after: 3 }.into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[http::header::RETRY_AFTER], "3");
        let r = ApiError::PayloadTooLarge { limit: 10 }.into_response();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn a_401_challenges_as_rfc_6750_says() {
        let www = |e: ApiError| {
            let r = e.into_response();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            r.headers()[http::header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .to_string()
        };
        // No token: the scheme and realm only (section 3.1), no error code.
        let missing = AuthFailure::new(Reason::Missing, "no token");
        assert_eq!(
            www(ApiError::Unauthenticated(missing)),
            r#"Bearer realm="aula""#
        );
        // A token that proves nothing: invalid_token and which check failed, quotes and
        // anything outside printable ASCII replaced, clipped.
        let bad_issuer = AuthFailure::new(
            Reason::Issuer,
            "the token's issuer (iss) is not \"aula-dev\" — \\ \n".to_string() + &"x".repeat(500),
        );
        let value = www(ApiError::Unauthenticated(bad_issuer));
        let (head, description) = value
            .split_once(", error_description=")
            .expect("a description");
        assert_eq!(head, r#"Bearer realm="aula", error="invalid_token""#);
        let inner = description
            .strip_prefix('"')
            .and_then(|d| d.strip_suffix('"'))
            .expect("quoted");
        assert!(
            inner.starts_with("the token's issuer (iss) is not 'aula-dev' ? / "),
            "{inner}"
        );
        assert_eq!(inner.chars().count(), DESCRIPTION_CHARS);
        assert!(inner
            .bytes()
            .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)));
        // A service refusing the token (UNAUTHENTICATED) is a 401 with the same challenge.
        let e = ApiError::grpc(
            "cursos",
            tonic::Status::unauthenticated("authentication failed: the token has expired (exp)"),
        );
        assert_eq!(
            www(e),
            r#"Bearer realm="aula", error="invalid_token", error_description="authentication failed: the token has expired (exp)""#
        );
        // Other statuses carry no challenge.
        let r = ApiError::BadRequest("x".into()).into_response();
        assert!(r.headers().get(http::header::WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn outages_and_failures_down_the_chain_name_the_service() {
        let e = ApiError::grpc("midia", tonic::Status::unavailable("connection refused"));
        assert_eq!(e.to_string(), "midia: connection refused");
        let e = ApiError::grpc("cursos", tonic::Status::not_found(""));
        assert_eq!(e.to_string(), "cursos answered NOT_FOUND");
        let e = ApiError::grpc(
            "cursos",
            tonic::Status::not_found("id_usuario 9: no such user"),
        );
        assert_eq!(e.to_string(), "id_usuario 9: no such user");
        // cursos relays that midia did not answer: the gateway names midia, a 504.
        let relayed: tonic::Status =
            PeerError::new("midia", Code::DeadlineExceeded, "no answer within 1s").into();
        let e = ApiError::grpc("cursos", relayed);
        assert_eq!(e.to_string(), "midia: no answer within 1s");
        assert_eq!(e.status(), StatusCode::GATEWAY_TIMEOUT);
        assert!(matches!(
            e,
            ApiError::Grpc {
                service: "midia",
                ..
            }
        ));
    }
}
