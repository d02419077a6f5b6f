//! Observing every HTTP request: a server span `http.server` (a child of the caller's
//! `traceparent`, and the parent of the gRPC client spans, whose context travels to the
//! services), and `http_requests_total{method,route,status}` and
//! `http_request_duration_seconds{method,route}`.
//!
//! `route` is the matched route template (`/cursos/tirar_duvida/{id}`), never the raw path,
//! so that ids cannot blow up the number of series; requests that match no route share
//! `route="unmatched"`.

use crate::state::AppState;
use aula_runtime::metrics::{Counter, Histogram, Label, Metrics};
use aula_runtime::telemetry;
use axum::{
    extract::{MatchedPath, Request},
    response::Response,
};
use std::{
    collections::HashMap,
    sync::{PoisonError, RwLock},
    time::{Duration, Instant},
};
use tracing::field::Empty;

/// The `route` label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// The `method` label: the standard methods by name, anything else folded into `other`.
fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::PATCH => "PATCH",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// One request being observed, from the moment it reaches its route ([`crate::edge`]).
pub struct Observed {
    method: &'static str,
    /// The route template (`None`: no route matched); an `Arc` inside, not a new string.
    route: Option<MatchedPath>,
    span: tracing::Span,
    start: Instant,
}

/// The `route` label of a request.
fn route_label(route: &Option<MatchedPath>) -> &str {
    route.as_ref().map_or(UNMATCHED, MatchedPath::as_str)
}

impl Observed {
    pub fn start(req: &Request) -> Self {
        let method = method_label(req.method());
        let matched = req.extensions().get::<MatchedPath>().cloned();
        let route = route_label(&matched);
        // As for the services' gRPC calls (aula_runtime::observe): with no exporter and request
        // spans hidden from the log, a span here is built, sampled and dropped with nothing ever
        // reading it, and its context would make every service called build a server span of its
        // own for nobody either. A caller's `traceparent` still gets its child span, so a trace
        // that started outside goes on through the services.
        let span = if telemetry::wants_span(req.headers()) {
            let span = tracing::info_span!(
                "http.server",
                otel.name = %format!("{method} {route}"),
                otel.kind = "server",
                http.request.method = method,
                http.route = %route,
                url.path = %req.uri().path(),
                http.response.status_code = Empty,
                otel.status_code = Empty,
                trace_id = Empty,
                span_id = Empty,
            );
            telemetry::set_parent_from(&span, req.headers());
            span
        } else {
            tracing::Span::none()
        };
        Self {
            method,
            route: matched,
            span,
            start: Instant::now(),
        }
    }

    /// The span the rest of the request runs in: the handler, and so every gRPC call it makes,
    /// runs inside it; PeerChannel's client spans are its children and carry its trace id to
    /// the services.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Records the answer: on the span, and in `http_requests_total` and
    /// `http_request_duration_seconds`.
    pub fn finish(self, state: &AppState, response: &Response) {
        let Self {
            method,
            route,
            span,
            start,
        } = self;
        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
        let route = route_label(&route);
        let elapsed = start.elapsed();
        state
            .request_metrics
            .record(method, route, status.as_u16(), elapsed);
        tracing::debug!(parent: &span, method, route, status = status.as_u16(), elapsed = ?elapsed, "handled");
    }
}

/// `http_requests_total` and `http_request_duration_seconds`, with the handles of each
/// (route, method, status) kept once registered: registering them on every request built a
/// vector of labels, the route and the status as new strings, and looked both up in the registry
/// by name and labels. Routes are templates (or `unmatched`), methods and statuses few: the table
/// stays small.
pub struct RequestMetrics {
    metrics: Metrics,
    seen: RwLock<HashMap<String, ByMethodAndStatus>>,
}

/// One route's handles, by method label and status code.
type ByMethodAndStatus = HashMap<(&'static str, u16), Handles>;

struct Handles {
    requests: Counter,
    duration: Histogram,
}

impl RequestMetrics {
    pub fn new(metrics: &Metrics) -> Self {
        Self {
            metrics: metrics.clone(),
            seen: RwLock::default(),
        }
    }

    fn record(&self, method: &'static str, route: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        {
            let seen = self.seen.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(h) = seen.get(route).and_then(|r| r.get(&(method, status))) {
                h.requests.increment(1);
                h.duration.record(seconds);
                return;
            }
        }
        let labels = vec![
            Label::new("method", method),
            Label::new("route", route.to_string()),
        ];
        let mut with_status = labels.clone();
        with_status.push(Label::new("status", status.to_string()));
        let h = Handles {
            requests: self.metrics.counter("http_requests_total", with_status),
            duration: self
                .metrics
                .histogram("http_request_duration_seconds", labels),
        };
        h.requests.increment(1);
        h.duration.record(seconds);
        self.seen
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(route.to_string())
            .or_default()
            .insert((method, status), h);
    }
}
