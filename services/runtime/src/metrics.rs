//! Prometheus metrics, one registry per service.
//!
//! `aula up` runs six services in one process, each with its own metrics port, so there is no
//! global recorder: every service owns a [`Metrics`] registry. The gRPC layers record through
//! handles registered once per method; everything else (business metrics, Gemini, the outbox)
//! uses the `metrics` macros inside futures wrapped by [`Metrics::scope_future`], which installs
//! the service's recorder as the thread-local recorder while the future is polled.

use metrics::{Counter, Gauge, Histogram, Key, Label, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Duration,
};

/// Buckets for every `*_seconds` histogram: 100 us to 10 s.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// One service's registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    process: metrics_process::Collector,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .expect("static, non-empty buckets")
            .build_recorder();
        let handle = recorder.handle();
        let process = metrics_process::Collector::default();
        let this = Self {
            inner: Arc::new(Inner {
                recorder,
                handle,
                process,
            }),
        };
        crate::metric_help::describe(&this.inner.recorder);
        this.scope(|| {
            this.inner.process.describe();
            metrics::gauge!("aula_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        });
        this
    }

    /// Runs `f` with this registry as the recorder of the `metrics` macros.
    pub fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        metrics::with_local_recorder(&self.inner.recorder, f)
    }

    /// Wraps a future so that the `metrics` macros inside it record into this registry.
    pub fn scope_future<F: Future>(&self, future: F) -> Scoped<F> {
        Scoped {
            metrics: self.clone(),
            future,
        }
    }

    pub fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.inner
            .recorder
            .register_counter(&Key::from_parts(name, labels), &meta())
    }

    pub fn gauge(&self, name: &'static str, labels: Vec<Label>) -> Gauge {
        self.inner
            .recorder
            .register_gauge(&Key::from_parts(name, labels), &meta())
    }

    pub fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        self.inner
            .recorder
            .register_histogram(&Key::from_parts(name, labels), &meta())
    }

    /// The Prometheus text exposition, with fresh process metrics.
    pub fn render(&self) -> String {
        self.scope(|| self.inner.process.collect());
        self.inner.handle.render()
    }

    /// The recorder, for code that installs it around a poll.
    pub fn recorder(&self) -> &dyn Recorder {
        &self.inner.recorder
    }

    /// Drains histograms' old samples; the exporter needs this run periodically.
    pub fn run_upkeep(&self) {
        self.inner.handle.run_upkeep();
    }
}

fn meta() -> metrics::Metadata<'static> {
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, None)
}

pin_project_lite::pin_project! {
    /// A future polled with a service's registry as the thread-local recorder.
    pub struct Scoped<F> {
        metrics: Metrics,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let future = this.future;
        metrics::with_local_recorder(&this.metrics.inner.recorder, || future.poll(cx))
    }
}

/// gRPC's canonical code names, as go-grpc-prometheus spells them in `grpc_code`.
pub fn code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("Unknown")
}

/// The handles of one method on one side (server or client), registered once.
pub struct MethodMetrics {
    started: Counter,
    received: Counter,
    sent: Counter,
    seconds: Histogram,
    handled: [OnceLock<Counter>; 17],
    handled_name: &'static str,
    labels: Vec<Label>,
    metrics: Metrics,
}

/// Which side of a call the metrics describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Server,
    Client,
}

impl MethodMetrics {
    pub fn new(
        metrics: &Metrics,
        side: Side,
        grpc_type: &'static str,
        service: &str,
        method: &str,
    ) -> Self {
        let labels = vec![
            Label::new("grpc_type", grpc_type),
            Label::new("grpc_service", service.to_string()),
            Label::new("grpc_method", method.to_string()),
        ];
        let (started, received, sent, seconds, handled_name) = match side {
            Side::Server => (
                "grpc_server_started_total",
                "grpc_server_msg_received_total",
                "grpc_server_msg_sent_total",
                "grpc_server_handling_seconds",
                "grpc_server_handled_total",
            ),
            Side::Client => (
                "grpc_client_started_total",
                "grpc_client_msg_received_total",
                "grpc_client_msg_sent_total",
                "grpc_client_handling_seconds",
                "grpc_client_handled_total",
            ),
        };
        Self {
            started: metrics.counter(started, labels.clone()),
            received: metrics.counter(received, labels.clone()),
            sent: metrics.counter(sent, labels.clone()),
            seconds: metrics.histogram(seconds, labels.clone()),
            handled: Default::default(),
            handled_name,
            labels,
            metrics: metrics.clone(),
        }
    }

    pub fn started(&self) {
        self.started.increment(1);
    }

    pub fn msg_received(&self) {
        self.received.increment(1);
    }

    pub fn msg_sent(&self) {
        self.sent.increment(1);
    }

    pub fn handled(&self, code: i32, elapsed: Duration) {
        let idx = usize::try_from(code).ok().filter(|i| *i < 17).unwrap_or(2);
        let counter = self.handled[idx].get_or_init(|| {
            let mut labels = self.labels.clone();
            labels.push(Label::new("grpc_code", code_name(idx as i32)));
            self.metrics.counter(self.handled_name, labels)
        });
        counter.increment(1);
        self.seconds.record(elapsed.as_secs_f64());
    }
}

/// Serves `GET /metrics` (and `/` for humans) until `shutdown` resolves.
pub async fn serve(
    metrics: Metrics,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::{routing::get, Router};
    let upkeep = metrics.clone();
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    let render = move || {
        let metrics = metrics.clone();
        async move {
            (
                [(
                    http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                metrics.render(),
            )
        }
    };
    // Only /metrics: anything else is 404, so a typo in a scrape config shows as an error.
    let app = Router::new().route("/metrics", get(render));
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    upkeep.abort();
    result
}

/// Binds the metrics listener; a helpful error names the address.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    Ok(crate::listen::bind(addr, "AULA_METRICS_LISTEN").await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_canonical_codes_and_histogram_buckets() {
        let m = Metrics::new();
        let mm = MethodMetrics::new(
            &m,
            Side::Server,
            "unary",
            "services.CursosService",
            "GetStatus",
        );
        mm.started();
        mm.handled(0, Duration::from_millis(2));
        mm.handled(1, Duration::from_millis(2));
        m.scope(|| metrics::counter!("aula_enrolments_total").increment(3));
        let text = m.render();
        assert!(text.contains(r#"grpc_code="OK""#), "{text}");
        assert!(text.contains(r#"grpc_code="Canceled""#), "{text}");
        assert!(
            text.contains("grpc_server_handling_seconds_bucket"),
            "{text}"
        );
        assert!(text.contains(r#"le="0.0001""#), "{text}");
        assert!(text.contains("aula_enrolments_total 3"), "{text}");
        assert!(text.contains("aula_build_info"), "{text}");
        // Two registries never see each other's samples.
        assert!(!Metrics::new().render().contains("aula_enrolments_total"));
    }

    #[tokio::test]
    async fn scoped_futures_record_into_their_registry() {
        let m = Metrics::new();
        m.scope_future(async {
            tokio::task::yield_now().await;
            metrics::counter!("aula_reminders_sent_total").increment(1);
        })
        .await;
        assert!(m.render().contains("aula_reminders_sent_total 1"));
    }
}
