//! The server layer injecting a service's faults into its calls, placed inside the observing
//! layer (so an injected failure is counted, timed and traced like a real one) and after
//! shedding and authorization (a refused call is refused before any drill touches it).
//!
//! Each injected fault is labelled so nobody mistakes a drill for an incident: the status
//! message says `injected fault (<flag>)`, the call's span carries `aula.fault=<flag>`, and
//! `aula_fault_injected_total{flag}` counts them. Health and reflection are never touched:
//! `fault.<service>.unavailable` turns health NOT_SERVING through the health reporter instead.

use super::Flags;
use crate::metrics::Metrics;
use futures::future::Either;
use metrics::Label;
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

/// Paths no fault touches.
const EXEMPT: [&str; 2] = ["/grpc.health.v1.Health/", "/grpc.reflection."];

/// The layer; one per service.
#[derive(Clone)]
pub struct FaultLayer {
    flags: Flags,
    metrics: Metrics,
}

impl FaultLayer {
    /// `aula_fault_injected_total`'s help is in [`crate::metric_help`].
    pub fn new(flags: Flags, metrics: &Metrics) -> Self {
        Self {
            flags,
            metrics: metrics.clone(),
        }
    }
}

middleware!(FaultLayer => FaultService);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for FaultService<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, BoxFuture<Result<S::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        // Flags off: one atomic load, and the call goes on as if the layer were not there.
        if !self.layer.flags.active() {
            return Either::Left(self.inner.call(req));
        }
        let path = req.uri().path();
        if EXEMPT.iter().any(|p| path.starts_with(p)) {
            return Either::Left(self.inner.call(req));
        }
        let method = path.rsplit('/').next().unwrap_or_default().to_string();
        let deadline = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| crate::deadline::parse_grpc_timeout(v.to_str().ok()?))
            .map(|t| Instant::now() + t);
        let faults = self.layer.flags.current();
        let metrics = self.layer.metrics.clone();
        // Take the service that was driven to readiness; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Either::Right(Box::pin(async move {
            if let Some(flag) = &faults.unavailable {
                return Ok(injected(&metrics, flag, tonic::Code::Unavailable, ""));
            }
            let m = faults.method(&method);
            if let Some(latency) = &m.latency {
                mark(&metrics, &latency.flag);
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                match left {
                    // The caller would give up first: it gets what a slow service gives it.
                    Some(left) if left <= latency.value => {
                        tokio::time::sleep(left).await;
                        return Ok(status(
                            &latency.flag,
                            tonic::Code::DeadlineExceeded,
                            &format!(
                                ": {} ms added, more than the call's deadline",
                                latency.value.as_millis()
                            ),
                        ));
                    }
                    _ => tokio::time::sleep(latency.value).await,
                }
            }
            if let Some(ratio) = &m.error_ratio {
                if rand::random::<f64>() < ratio.value {
                    let code = m.error_code.unwrap_or(tonic::Code::Unavailable);
                    return Ok(injected(&metrics, &ratio.flag, code, ""));
                }
            }
            inner.call(req).await
        }))
    }
}

/// Counts an injected fault and labels the call's span with its flag.
fn mark(metrics: &Metrics, flag: &Arc<str>) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    metrics
        .counter(
            "aula_fault_injected_total",
            vec![Label::new("flag", flag.to_string())],
        )
        .increment(1);
    tracing::Span::current().set_attribute("aula.fault", flag.to_string());
}

fn injected<B: Default>(
    metrics: &Metrics,
    flag: &Arc<str>,
    code: tonic::Code,
    detail: &str,
) -> http::Response<B> {
    mark(metrics, flag);
    status(flag, code, detail)
}

fn status<B: Default>(flag: &str, code: tonic::Code, detail: &str) -> http::Response<B> {
    tonic::Status::new(code, format!("injected fault ({flag}){detail}")).into_http()
}
