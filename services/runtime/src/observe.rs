//! One tower layer that observes every gRPC call a server handles: go-grpc-prometheus metrics
//! (handles registered per method at start, so nothing depends on a recorder installed around
//! a poll) and an OpenTelemetry server span (parent taken from the caller's `traceparent`),
//! entered while the handler and its response stream run.
//! The client side ([`ClientCall`]) is used by [`crate::peers::PeerChannel`] for every peer call.

use crate::{
    metrics::{MethodMetrics, Metrics, Side},
    telemetry,
};
use bytes::Bytes;
use http_body::{Body, Frame};
use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
    time::Instant,
};
use tonic::Code;

/// The kind of each method, by path (`/services.CursosService/GetStatus`).
#[derive(Clone)]
pub struct MethodTable {
    server: Arc<HashMap<String, Arc<MethodMetrics>>>,
    unknown: Arc<MethodMetrics>,
}

/// Lists every method of the given services from the API's descriptor set, plus health and
/// reflection, with its go-grpc-prometheus `grpc_type`.
pub fn known_methods(services: &[&str]) -> Vec<(String, &'static str)> {
    use prost::Message;
    let fds = prost_types::FileDescriptorSet::decode(aula_api::FILE_DESCRIPTOR_SET)
        .expect("the build wrote a valid descriptor set");
    let mut out = Vec::new();
    for file in &fds.file {
        for svc in &file.service {
            let full = format!("{}.{}", file.package(), svc.name());
            if !services.contains(&full.as_str()) {
                continue;
            }
            for m in &svc.method {
                let kind = match (m.client_streaming(), m.server_streaming()) {
                    (false, false) => "unary",
                    (false, true) => "server_stream",
                    (true, false) => "client_stream",
                    (true, true) => "bidi_stream",
                };
                out.push((format!("/{full}/{}", m.name()), kind));
            }
        }
    }
    out.push(("/grpc.health.v1.Health/Check".into(), "unary"));
    out.push(("/grpc.health.v1.Health/Watch".into(), "server_stream"));
    for v in ["v1", "v1alpha"] {
        out.push((
            format!("/grpc.reflection.{v}.ServerReflection/ServerReflectionInfo"),
            "bidi_stream",
        ));
    }
    out
}

/// The span of one call of `path` (OpenTelemetry's RPC conventions), named `$name`, of kind
/// `$kind`, with the side's own fields after the common ones. Plain `&str` values, not `%`
/// (Display): the OpenTelemetry layer copies a string directly but runs a formatter for a
/// Display value, on every request.
macro_rules! rpc_span {
    ($name:literal, $kind:literal, $path:expr, $($fields:tt)*) => {{
        let (svc, method) = split_path($path);
        tracing::info_span!(
            $name,
            otel.name = $path.trim_start_matches('/'),
            otel.kind = $kind,
            rpc.system = "grpc",
            rpc.service = svc,
            rpc.method = method,
            $($fields)*
        )
    }};
}

fn split_path(path: &str) -> (&str, &str) {
    let trimmed = path.trim_start_matches('/');
    trimmed.split_once('/').unwrap_or((trimmed, ""))
}

impl MethodTable {
    pub fn new(metrics: &Metrics, side: Side, methods: &[(String, &'static str)]) -> Self {
        let server = methods
            .iter()
            .map(|(path, kind)| {
                let (svc, method) = split_path(path);
                (
                    path.clone(),
                    Arc::new(MethodMetrics::new(metrics, side, kind, svc, method)),
                )
            })
            .collect();
        Self {
            server: Arc::new(server),
            unknown: Arc::new(MethodMetrics::new(
                metrics, side, "unknown", "unknown", "unknown",
            )),
        }
    }

    /// The handles for a path; any path not in the API shares one label value.
    pub fn get(&self, path: &str) -> &Arc<MethodMetrics> {
        self.server.get(path).unwrap_or(&self.unknown)
    }
}

/// The server-side layer.
#[derive(Clone)]
pub struct ServerLayer {
    table: MethodTable,
}

impl ServerLayer {
    pub fn new(metrics: Metrics, grpc_service: &str) -> Self {
        let table = MethodTable::new(&metrics, Side::Server, &known_methods(&[grpc_service]));
        Self { table }
    }

    /// The per-method metrics, for a layer outside this one that answers calls itself (the
    /// shedding layer counts its refusals in them).
    pub fn methods(&self) -> MethodTable {
        self.table.clone()
    }
}

middleware!(ServerLayer => ServerService);

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for ServerService<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone,
    ResBody: Body<Data = Bytes>,
{
    type Response = http::Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = ObservedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        // Borrowed from the request: the span copies what it keeps, and the metric handles
        // were registered per method at start, so nothing here allocates a label.
        let path = req.uri().path();
        let method = self.layer.table.get(path).clone();
        let span = if telemetry::wants_span(req.headers()) {
            let span = rpc_span!(
                "grpc.server",
                "server",
                path,
                rpc.grpc.status_code = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
                trace_id = tracing::field::Empty,
                span_id = tracing::field::Empty,
            );
            telemetry::set_parent_from(&span, req.headers());
            span
        } else {
            tracing::Span::none()
        };
        method.started();
        method.msg_received();
        let start = Instant::now();
        // Take the service that was driven to readiness; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        ObservedFuture {
            inner: inner.call(req),
            state: Some(CallState {
                method,
                start,
                span,
                side: Side::Server,
            }),
        }
    }
}

pin_project_lite::pin_project! {
    /// The handler's future, polled inside the call's span; its response comes out wrapped in
    /// an [`ObservedBody`].
    pub struct ObservedFuture<F> {
        #[pin]
        inner: F,
        state: Option<CallState>,
    }
}

impl<F, B, E> Future for ObservedFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: Body<Data = Bytes>,
{
    type Output = Result<http::Response<ObservedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let state = this.state.as_ref().expect("polled after completion");
        let polled = {
            let _enter = state.span.enter();
            this.inner.poll(cx)
        };
        // An error drops the call's state unrecorded: the connection is failing, no status.
        let response = ready!(polled);
        let state = this.state.take().expect("polled after completion");
        Poll::Ready(Ok(ObservedBody::wrap(response?, state)))
    }
}

/// One call being observed, until its status is known.
struct CallState {
    method: Arc<MethodMetrics>,
    start: Instant,
    /// Entered while a server's response stream is polled (not on the client side).
    span: tracing::Span,
    side: Side,
}

pin_project_lite::pin_project! {
    /// A response body that counts messages and records the call when its status is known.
    pub struct ObservedBody<B> {
        #[pin]
        inner: B,
        state: Option<CallState>,
    }

    impl<B> PinnedDrop for ObservedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            // The client went away before the status was sent.
            let this = this.project();
            if let Some(state) = this.state.take() {
                record(state, Code::Cancelled);
            }
        }
    }
}

/// An empty body observing nothing (what an outer layer answering by itself sends).
impl<B: Default> Default for ObservedBody<B> {
    fn default() -> Self {
        Self {
            inner: B::default(),
            state: None,
        }
    }
}

/// The status of a response whose headers carry one (a trailers-only response), or of its
/// trailers. A value that is not a number counts as no status in the headers (the trailers will
/// tell) and as UNKNOWN in the trailers; a number gRPC does not define is UNKNOWN.
fn status_in(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?;
    value.to_str().ok()?.parse::<i32>().ok().map(Code::from_i32)
}

fn record(state: CallState, code: Code) {
    state.method.handled(code, state.start.elapsed());
    // OpenTelemetry's semantic conventions make this attribute the code's number.
    state.span.record("rpc.grpc.status_code", code as i32);
    if code != Code::Ok {
        state.span.record("otel.status_code", "ERROR");
    }
}

impl<B> ObservedBody<B> {
    /// The response with its body observed: the call is recorded when its status is known,
    /// at once for a trailers-only response (every error tonic returns: the status is in the
    /// headers), else when the trailers come.
    fn wrap(response: http::Response<B>, state: CallState) -> http::Response<Self> {
        let (parts, body) = response.into_parts();
        let status = status_in(&parts.headers);
        let mut observed = ObservedBody {
            inner: body,
            state: Some(state),
        };
        if let Some(code) = status {
            observed.finish(code);
        }
        http::Response::from_parts(parts, observed)
    }

    fn finish(&mut self, code: Code) {
        if let Some(state) = self.state.take() {
            record(state, code);
        }
    }
}

impl<B: Body<Data = Bytes>> Body for ObservedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        let polled = match this.state.as_ref() {
            Some(state) if state.side == Side::Server => {
                let _enter = state.span.enter();
                this.inner.as_mut().poll_frame(cx)
            }
            _ => this.inner.as_mut().poll_frame(cx),
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if frame.is_data() {
                    match this.state.as_ref() {
                        Some(s) if s.side == Side::Server => s.method.msg_sent(),
                        Some(s) => s.method.msg_received(),
                        None => {}
                    }
                } else if let Some(trailers) = frame.trailers_ref() {
                    let code = status_in(trailers).unwrap_or(Code::Unknown);
                    if let Some(state) = this.state.take() {
                        record(state, code);
                    }
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(state) = this.state.take() {
                    record(state, Code::Unknown);
                }
            }
            Poll::Ready(None) => {
                if let Some(state) = this.state.take() {
                    record(state, Code::Ok);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Observes one outgoing call: client metrics and a client span whose context travels in the
/// request's `traceparent`.
pub struct ClientCall {
    state: CallState,
}

impl ClientCall {
    pub fn start(
        table: &MethodTable,
        peer: &str,
        headers: &mut http::HeaderMap,
        path: &str,
    ) -> Self {
        let method = table.get(path).clone();
        let span = if telemetry::wants_client_span() {
            let span = rpc_span!(
                "grpc.client",
                "client",
                path,
                peer.service = peer,
                rpc.grpc.status_code = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
            );
            telemetry::inject_into(&span, headers);
            span
        } else {
            tracing::Span::none()
        };
        method.started();
        method.msg_sent();
        Self {
            state: CallState {
                method,
                start: Instant::now(),
                span,
                side: Side::Client,
            },
        }
    }

    pub fn span(&self) -> &tracing::Span {
        &self.state.span
    }

    /// The call failed before a response arrived.
    pub fn fail(self, code: Code) {
        record(self.state, code);
    }

    /// Wraps the response: the call is recorded when its status arrives.
    pub fn response<B: Body<Data = Bytes>>(
        self,
        response: http::Response<B>,
    ) -> http::Response<ObservedBody<B>> {
        ObservedBody::wrap(response, self.state)
    }
}
