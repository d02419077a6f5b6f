//! How one attempt at Gemini went wrong ([`Failure`]): whether it is worth retrying, whether it
//! says the upstream is unhealthy (the breaker), the upstream's retry hint, and the
//! [`AnswerError`] the caller sees, with the key scrubbed from every detail.

use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use reqwest::StatusCode;

use super::client::GeminiClient;
use super::protocol::ErrorResponse;
use crate::domain::AnswerError;

/// Largest response body read (a generateContent answer is a few KiB).
const MAX_BODY: usize = 8 * 1024 * 1024;
/// Longest upstream error message kept in an error detail.
const MAX_DETAIL: usize = 300;

pub(super) async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Failure::transport)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Failure::Malformed(format!(
                "response body larger than {MAX_BODY} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How one attempt went wrong.
#[derive(Debug)]
pub(super) enum Failure {
    /// An HTTP error status, with the upstream's message and its retry hint.
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
        detail: String,
    },
    /// Could not connect, or the connection broke.
    Transport(String),
    Timeout,
    /// A body that is not what Gemini sends.
    Malformed(String),
    Blocked(String),
}

impl Failure {
    pub(super) fn transport(e: reqwest::Error) -> Failure {
        // A connect timeout means unreachable (UNAVAILABLE), not a slow answer (DEADLINE_EXCEEDED).
        if e.is_timeout() && !e.is_connect() {
            return Failure::Timeout;
        }
        // reqwest's Display names the URL (no key in it) and the sources say why.
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        Failure::Transport(text)
    }

    pub(super) async fn from_status(response: reqwest::Response) -> Failure {
        let status = response.status();
        let header_retry = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = read_limited(response).await.unwrap_or_default();
        let parsed = serde_json::from_slice::<ErrorResponse>(&body).ok();
        let mut detail = format!("HTTP {status}");
        if let Some(e) = &parsed {
            if !e.error.status.is_empty() {
                detail.push(' ');
                detail.push_str(&e.error.status);
            }
            if !e.error.message.is_empty() {
                detail.push_str(": ");
                detail.extend(e.error.message.chars().take(MAX_DETAIL));
            }
        }
        Failure::Status {
            status,
            retry_after: header_retry.or_else(|| parsed.and_then(|e| e.error.retry_delay())),
            detail,
        }
    }

    pub(super) fn retryable(&self) -> bool {
        match self {
            Failure::Status { status, .. } => {
                matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
            }
            Failure::Transport(_) | Failure::Timeout => true,
            Failure::Malformed(_) | Failure::Blocked(_) => false,
        }
    }

    /// Whether this says the upstream is unhealthy (feeds the breaker). A quota error, a refused
    /// request or a safety block come from a healthy upstream.
    pub(super) fn counts_against_upstream(&self) -> bool {
        match self {
            Failure::Status { status, .. } => status.is_server_error(),
            Failure::Transport(_) | Failure::Timeout | Failure::Malformed(_) => true,
            Failure::Blocked(_) => false,
        }
    }

    pub(super) fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(super) fn outcome(&self) -> &'static str {
        match self {
            Failure::Status { status, .. } if *status == StatusCode::TOO_MANY_REQUESTS => "quota",
            Failure::Status { .. } | Failure::Transport(_) | Failure::Malformed(_) => "unavailable",
            Failure::Timeout => "timeout",
            Failure::Blocked(_) => "blocked",
        }
    }

    pub(super) fn redacted(&self, client: &GeminiClient) -> String {
        match self {
            Failure::Status { detail, .. } | Failure::Transport(detail) => client.scrub(detail),
            Failure::Malformed(detail) => client.scrub(detail),
            Failure::Timeout => "timed out".into(),
            Failure::Blocked(reason) => format!("blocked: {}", client.scrub(reason)),
        }
    }

    pub(super) fn into_error(self, client: &GeminiClient) -> AnswerError {
        match self {
            Failure::Status {
                status,
                retry_after,
                ..
            } if status == StatusCode::TOO_MANY_REQUESTS => AnswerError::Quota { retry_after },
            Failure::Status { detail, .. }
            | Failure::Transport(detail)
            | Failure::Malformed(detail) => AnswerError::Unavailable {
                detail: client.scrub(&detail),
            },
            Failure::Timeout => AnswerError::Timeout,
            Failure::Blocked(reason) => AnswerError::Blocked {
                reason: client.scrub(&reason),
            },
        }
    }
}

/// `Retry-After`: delta-seconds, or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let secs = (when - time::OffsetDateTime::now_utc()).as_seconds_f64();
    Some(Duration::from_secs_f64(secs.max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(100);
        let http_date = later
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap();
        let d = parse_retry_after(&http_date).unwrap();
        assert!(
            d > Duration::from_secs(90) && d <= Duration::from_secs(100),
            "{d:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
