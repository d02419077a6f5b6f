//! What every handler shares.

use crate::{
    backends::Backends,
    limits::{InFlight, RateLimit},
};
use aula_runtime::{http::HttpContext, metrics::Metrics};
use std::{ops::Deref, sync::Arc, time::Duration};

/// The handlers' state: one reference count. axum clones the state for every middleware and
/// every `State` extractor of every request; cloning [`Shared`] itself copied the vector of six
/// channels and a dozen reference counts each time (~18k instructions per request, callgrind).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub backends: Backends,
    pub metrics: Metrics,
    /// The `http_*` metrics' handles (observe.rs).
    pub request_metrics: crate::observe::RequestMetrics,
    /// The runtime hosting the gateway: once it drains, `/readyz` answers 503.
    pub host: HttpContext,
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
