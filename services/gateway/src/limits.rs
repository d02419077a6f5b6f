//! What one HTTP client can make the gateway hold (#13, #14): the request body's size (413),
//! each client's request rate (429 with `Retry-After`), how long a client may take to send its
//! request headers, and how many connections are open at once. Each is an environment variable
//! (docs/CONFIG.md, "Gateway limits"); the accept loop that enforces the connection limits is
//! [`crate::serve`].

use crate::{error::ApiError, state::AppState};
use aula_runtime::config::{ConfigError, Env};
use axum::extract::{ConnectInfo, Request};
use governor::{clock::Clock as _, DefaultKeyedRateLimiter, Quota};
use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
    time::Duration,
};

/// The gateway's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// `GATEWAY_MAX_BODY`: the largest request body; a larger one is 413 before it is read.
    pub max_body_bytes: usize,
    /// `GATEWAY_RATE_LIMIT`: requests per second each client may make on average; `None`
    /// (`off`) for no limit. Health endpoints are never limited.
    pub rate_per_second: Option<NonZeroU32>,
    /// `GATEWAY_RATE_BURST`: how many requests a client may make at once above its rate.
    pub rate_burst: NonZeroU32,
    /// `GATEWAY_CLIENT_IP_HEADER`: behind a proxy (an ingress), the header whose last address
    /// is the client's (`x-forwarded-for`); unset: the connection's peer address.
    pub client_ip_header: Option<String>,
    /// `GATEWAY_HEADER_TIMEOUT`: how long a client may take to send a request's headers (and,
    /// on a new connection, its first request) before the connection is closed.
    pub header_timeout: Duration,
    /// `GATEWAY_BODY_TIMEOUT`: how long a request's body may take to arrive once its headers
    /// have; a client that declares a length and sends less is answered 408 and let go.
    pub body_timeout: Duration,
    /// `GATEWAY_MAX_CONNECTIONS`: open connections at most; beyond it new ones wait in the
    /// kernel's accept queue.
    pub max_connections: usize,
    /// `GATEWAY_MAX_IN_FLIGHT`: requests handled at once; beyond it 503 with `Retry-After` at
    /// once instead of a queue (health never).
    pub max_in_flight: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            // The largest valid body (a question with a full lesson context) is ~220 KB.
            max_body_bytes: 1 << 20,
            rate_per_second: NonZeroU32::new(50),
            rate_burst: NonZeroU32::new(100).expect("not zero"),
            client_ip_header: None,
            header_timeout: Duration::from_secs(10),
            // The largest valid body (1 MiB) takes well under a second on any real link.
            body_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_in_flight: 1024,
        }
    }
}

impl HttpLimits {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        let bad = |var: &str, value: &str, reason: &str| ConfigError {
            var: var.into(),
            value: value.into(),
            reason: reason.into(),
        };
        let max_body_bytes = match env.get("GATEWAY_MAX_BODY") {
            None => d.max_body_bytes,
            Some(v) => aula_runtime::limits::parse_bytes(v)
                .filter(|n| *n > 0)
                .ok_or_else(|| bad("GATEWAY_MAX_BODY", v, "expected a size such as 1MiB"))?,
        };
        let rate_per_second = match env.get("GATEWAY_RATE_LIMIT") {
            None => d.rate_per_second,
            Some("off") => None,
            Some(v) => Some(v.trim().parse::<NonZeroU32>().map_err(|_| {
                bad(
                    "GATEWAY_RATE_LIMIT",
                    v,
                    "requests per second (1 or more) or off",
                )
            })?),
        };
        let rate_burst = match env.get("GATEWAY_RATE_BURST") {
            None => d.rate_burst,
            Some(v) => v
                .trim()
                .parse::<NonZeroU32>()
                .map_err(|_| bad("GATEWAY_RATE_BURST", v, "must be 1 or more"))?,
        };
        Ok(Self {
            max_body_bytes,
            rate_per_second,
            rate_burst,
            client_ip_header: env
                .get("GATEWAY_CLIENT_IP_HEADER")
                .map(str::to_ascii_lowercase),
            // Env::duration refuses zero: no request could finish in no time.
            header_timeout: env.duration("GATEWAY_HEADER_TIMEOUT", d.header_timeout)?,
            body_timeout: env.duration("GATEWAY_BODY_TIMEOUT", d.body_timeout)?,
            max_connections: env.count("GATEWAY_MAX_CONNECTIONS", d.max_connections)?,
            max_in_flight: env.count("GATEWAY_MAX_IN_FLIGHT", d.max_in_flight)?,
        })
    }
}

/// Each client's request rate, by address.
#[derive(Clone)]
pub struct RateLimit {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    client_ip_header: Option<String>,
}

impl RateLimit {
    /// `None` when the rate is not limited.
    pub fn new(limits: &HttpLimits) -> Option<Self> {
        let rate = limits.rate_per_second?;
        let quota = Quota::per_second(rate).allow_burst(limits.rate_burst);
        Some(Self {
            limiter: Arc::new(DefaultKeyedRateLimiter::dashmap(quota)),
            client_ip_header: limits.client_ip_header.clone(),
        })
    }

    /// Forgets clients whose budget is full again, so that the table holds only clients
    /// seen in the last moments however many there were (called periodically).
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Clients remembered now.
    pub fn clients(&self) -> usize {
        self.limiter.len()
    }

    fn client(&self, req: &Request) -> Option<IpAddr> {
        if let Some(header) = &self.client_ip_header {
            // The last address is the one the proxy in front of the gateway saw; any earlier
            // ones are whatever the client wrote.
            let from_header = req
                .headers()
                .get(header.as_str())
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|ip| ip.trim().parse().ok());
            if from_header.is_some() {
                return from_header;
            }
        }
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
    }

    /// `Err(wait)` when the client must wait before its next request.
    fn check(&self, client: IpAddr) -> Result<(), Duration> {
        self.limiter.check_key(&client).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::DefaultClock::default().now())
        })
    }
}

/// Requests the gateway handles at once (`GATEWAY_MAX_IN_FLIGHT`).
#[derive(Clone)]
pub struct InFlight {
    permits: Arc<tokio::sync::Semaphore>,
    limit: usize,
}

impl InFlight {
    pub fn new(limit: usize) -> Self {
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(limit)),
            limit,
        }
    }
}

/// A request's body must arrive within `GATEWAY_BODY_TIMEOUT`, or the answer is 408: the
/// header timeout (serve.rs) ends once the headers are in, and a client that declared a
/// `Content-Length` and then sent less would otherwise hold its connection and an in-flight
/// place for as long as it liked. The body is read here, up to one byte over
/// `GATEWAY_MAX_BODY` (so the handler still answers 413 for a body over the limit), and handed
/// on whole; bodies are small (1 MiB at most), so reading them a step earlier costs nothing.
pub async fn read_body(state: &AppState, req: Request) -> Result<Request, ApiError> {
    let (parts, body) = req.into_parts();
    let read = axum::body::to_bytes(body, state.max_body_bytes.saturating_add(1));
    match tokio::time::timeout(state.body_timeout, read).await {
        Ok(Ok(bytes)) => Ok(Request::from_parts(parts, axum::body::Body::from(bytes))),
        // Over the limit by more than one byte: the same 413 the handler gives.
        Ok(Err(e)) if is_length_limit(&e) => Err(ApiError::PayloadTooLarge {
            limit: state.max_body_bytes,
        }),
        Ok(Err(e)) => Err(ApiError::BadRequest(format!(
            "request body unreadable: {e}"
        ))),
        Err(_) => Err(ApiError::BodyTimeout {
            after: state.body_timeout,
        }),
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    std::error::Error::source(e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
}

/// Probes and balancers must always reach health, however busy the gateway is.
fn is_health(req: &Request) -> bool {
    matches!(req.uri().path(), "/healthz" | "/livez" | "/readyz")
}

/// A place among the `GATEWAY_MAX_IN_FLIGHT` requests handled at once, held until the answer
/// (`None` for health, which never waits). Beyond the limit, 503 with `Retry-After` at once: a
/// gateway that queued would hold every request's memory and answer them all after their
/// clients gave up.
pub fn take_place(
    state: &AppState,
    req: &Request,
) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, ApiError> {
    if is_health(req) {
        return Ok(None);
    }
    match state.in_flight.permits.clone().try_acquire_owned() {
        Ok(place) => Ok(Some(place)),
        Err(_) => Err(ApiError::Overloaded {
            limit: state.in_flight.limit,
        }),
    }
}

/// The client's request rate (`GATEWAY_RATE_LIMIT`): over it, 429 with `Retry-After`.
pub fn check_rate(state: &AppState, req: &Request) -> Result<(), ApiError> {
    let Some(limit) = &state.rate_limit else {
        return Ok(());
    };
    if is_health(req) {
        return Ok(());
    }
    let Some(client) = limit.client(req) else {
        return Ok(());
    };
    limit.check(client).map_err(|wait| ApiError::RateLimited {
        retry_after: wait.as_secs() + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors_name_the_variable() {
        aula_runtime::testing::assert_defaults(HttpLimits::from_env);
        let l = aula_runtime::testing::loaded(
            HttpLimits::from_env,
            &[
                ("GATEWAY_RATE_LIMIT", "off"),
                ("GATEWAY_MAX_BODY", "64KiB"),
                ("GATEWAY_HEADER_TIMEOUT", "2s"),
                ("GATEWAY_CLIENT_IP_HEADER", "X-Forwarded-For"),
            ],
        );
        assert_eq!(l.rate_per_second, None);
        assert_eq!(l.max_body_bytes, 64 << 10);
        assert_eq!(l.header_timeout, Duration::from_secs(2));
        assert_eq!(l.client_ip_header.as_deref(), Some("x-forwarded-for"));
        aula_runtime::testing::assert_each_refused(
            HttpLimits::from_env,
            &[
                ("GATEWAY_RATE_LIMIT", "0"),
                ("GATEWAY_RATE_LIMIT", "fast"),
                ("GATEWAY_RATE_BURST", "0"),
                ("GATEWAY_MAX_BODY", "big"),
                ("GATEWAY_HEADER_TIMEOUT", "0s"),
                ("GATEWAY_MAX_CONNECTIONS", "0"),
                ("GATEWAY_MAX_IN_FLIGHT", "0"),
            ],
        );
    }

    #[test]
    fn a_client_over_its_burst_waits_and_others_do_not() {
        let limits = HttpLimits {
            rate_per_second: NonZeroU32::new(1),
            rate_burst: NonZeroU32::new(2).unwrap(),
            ..Default::default()
        };
        let limit = RateLimit::new(&limits).unwrap();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limit.check(a).is_ok());
        assert!(limit.check(a).is_ok());
        let wait = limit.check(a).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limit.check(b).is_ok());
        assert_eq!(limit.clients(), 2);
    }
}
