//! Observing every HTTP request: a server span `http.server` (a child of the caller's
//! `traceparent`, and the parent of the gRPC client spans, whose context travels to the
//! services), and `http_requests_total{method,route,status}` and
//! `http_request_duration_seconds{method,route}`.
//!
//! `route` is the matched route template (`/cursos/tirar_duvida/{id}`), never the raw path,
//! so that ids cannot blow up the number of series; requests that match no route share
//! `route="unmatched"`.

use crate::state::AppState;
use aula_runtime::metrics::Label;
use aula_runtime::telemetry;
use axum::{
    extract::{MatchedPath, Request},
    response::Response,
};
use std::time::Instant;
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
    route: String,
    span: tracing::Span,
    start: Instant,
}

impl Observed {
    pub fn start(req: &Request) -> Self {
        let method = method_label(req.method());
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or(UNMATCHED, |p| p.as_str())
            .to_string();
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
            route,
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
        let labels = vec![
            Label::new("method", method),
            Label::new("route", route.clone()),
        ];
        let mut with_status = labels.clone();
        with_status.push(Label::new("status", status.as_u16().to_string()));
        state
            .metrics
            .counter("http_requests_total", with_status)
            .increment(1);
        state
            .metrics
            .histogram("http_request_duration_seconds", labels)
            .record(start.elapsed().as_secs_f64());
        tracing::debug!(parent: &span, method, route, status = status.as_u16(), elapsed = ?start.elapsed(), "handled");
    }
}
