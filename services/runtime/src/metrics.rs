//! Prometheus metrics, one registry per service.
//!
//! `aula up` runs six services in one process, each with its own metrics port, so there is no
//! global recorder: every service owns a [`Metrics`] registry, and every metric is a handle
//! ([`Counter`], [`Gauge`], [`Histogram`]) registered once against it: the gRPC layers per
//! method, the runtime's parts (storage, outbox, TLS, ...) when they start, and each service's
//! own in a struct of its `metrics.rs` built in its `build`. A handle records into its
//! registry from any task or thread; nothing depends on which recorder is installed where (the
//! `metrics` macros, which use a global or thread-local recorder, are not used: a count made
//! inside a `tokio::spawn` would be lost). Every name has its `# HELP` in [`crate::metric_help`].

pub use metrics::{Counter, Gauge, Histogram, Label};
use metrics::{Key, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use std::{
    future::Future,
    net::SocketAddr,
    sync::{Arc, OnceLock},
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
        this.with_process_recorder(|| this.inner.process.describe());
        this.gauge(
            "aula_build_info",
            vec![Label::new("version", env!("CARGO_PKG_VERSION"))],
        )
        .set(1.0);
        this
    }

    /// metrics-process records through the `metrics` macros: it alone runs with this registry
    /// as the thread-local recorder, synchronously, around its describe and collect.
    fn with_process_recorder(&self, f: impl FnOnce()) {
        metrics::with_local_recorder(&self.inner.recorder, f)
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
        self.with_process_recorder(|| self.inner.process.collect());
        self.inner.handle.render()
    }

    /// Drains histograms' old samples; the exporter needs this run periodically.
    pub fn run_upkeep(&self) {
        self.inner.handle.run_upkeep();
    }
}

fn meta() -> metrics::Metadata<'static> {
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, None)
}

/// The `grpc_code` label of a code, as go-grpc-prometheus spells it (`Canceled`, with one `l`):
/// dashboards, alerts and tests select on these exact values. (Messages and JSON use
/// [`crate::peers::code_name`]'s `NOT_FOUND` instead.)
pub fn grpc_code_label(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// How many codes gRPC has: one `grpc_code` series per code, registered on first use.
const CODES: usize = tonic::Code::Unauthenticated as usize + 1;

/// The handles of one method on one side (server or client), registered once.
pub struct MethodMetrics {
    started: Counter,
    received: Counter,
    sent: Counter,
    seconds: Histogram,
    handled: [OnceLock<Counter>; CODES],
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

    pub fn handled(&self, code: tonic::Code, elapsed: Duration) {
        let counter = self.handled[code as usize].get_or_init(|| {
            let mut labels = self.labels.clone();
            labels.push(Label::new("grpc_code", grpc_code_label(code)));
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn grpc_code_labels_are_go_grpc_prometheus_names() {
        // Dashboards, alerts and tests/observability select on these exact values.
        let labels: Vec<_> = (0..CODES as i32)
            .map(|i| grpc_code_label(tonic::Code::from_i32(i)))
            .collect();
        assert_eq!(
            labels,
            [
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
            ]
        );
        assert_eq!(CODES, 17);
    }

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
        mm.handled(tonic::Code::Ok, Duration::from_millis(2));
        mm.handled(tonic::Code::Cancelled, Duration::from_millis(2));
        m.counter("aula_enrolments_total", vec![]).increment(3);
        let text = m.render();
        assert!(text.contains(r#"grpc_code="OK""#), "{text}");
        assert!(text.contains(r#"grpc_code="Canceled""#), "{text}");
        assert!(
            text.contains("grpc_server_handling_seconds_bucket"),
            "{text}"
        );
        assert!(text.contains(r#"le="0.0001""#), "{text}");
        assert!(text.contains("aula_enrolments_total 3"), "{text}");
        assert!(text.contains("# HELP aula_enrolments_total"), "{text}");
        assert!(text.contains("aula_build_info"), "{text}");
        // Two registries never see each other's samples.
        assert!(!Metrics::new().render().contains("aula_enrolments_total"));
    }

    /// The body of `GET /metrics` on `addr`.
    async fn scrape(addr: SocketAddr) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: metrics\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    /// What the thread-local recorder lost: a count made in a task of its own (a worker, a
    /// handler's `tokio::spawn`) reaches its service's /metrics, and only that one, while two
    /// services share the process as under `aula up`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_count_from_a_spawned_task_reaches_its_own_service_only() {
        let (cursos, cpar) = (Metrics::new(), Metrics::new());
        let stop = tokio_util::sync::CancellationToken::new();
        let mut addrs = Vec::new();
        for m in [&cursos, &cpar] {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs.push(l.local_addr().unwrap());
            let _server = tokio::spawn(serve(m.clone(), l, stop.clone().cancelled_owned()));
        }
        let enrolments = cursos.counter("aula_enrolments_total", vec![]);
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            enrolments.increment(2);
        })
        .await
        .unwrap();
        let (own, other) = (scrape(addrs[0]).await, scrape(addrs[1]).await);
        stop.cancel();
        assert!(own.contains("\naula_enrolments_total 2\n"), "{own}");
        assert!(!other.contains("aula_enrolments_total"), "{other}");
    }
}
