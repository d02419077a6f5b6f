//! What every handler shares.

use crate::{
    backends::Backends,
    limits::{InFlight, RateLimit},
};
use aula_runtime::metrics::Metrics;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct AppState {
    pub backends: Backends,
    pub metrics: Metrics,
    /// Cancelled when the gateway starts draining: `/readyz` answers 503 from then on.
    pub draining: CancellationToken,
    /// The deadline of each backend health check behind `/healthz`.
    pub health_timeout: Duration,
    /// Each client's request rate (`None`: not limited).
    pub rate_limit: Option<RateLimit>,
    /// Requests being handled, against `GATEWAY_MAX_IN_FLIGHT`.
    pub in_flight: InFlight,
    /// `GATEWAY_MAX_BODY`, for the 413's message.
    pub max_body_bytes: usize,
    /// `GATEWAY_BODY_TIMEOUT`: a request's body must arrive within it (408).
    pub body_timeout: Duration,
    /// End-user authentication, when `AULA_AUTH=jwt`.
    pub auth: Option<crate::auth::EdgeAuth>,
}
