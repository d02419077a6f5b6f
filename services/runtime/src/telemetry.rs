//! Logs and traces. Logs are human-readable by default and JSON with `AULA_LOG_FORMAT=json`.
//! When an OTLP endpoint is configured ([`crate::otlp`]: the standard `OTEL_EXPORTER_OTLP_*`
//! variables, gRPC or HTTP/protobuf), spans go to it through a batch processor; the sampler is
//! `OTEL_TRACES_SAMPLER`'s, and the SDK reads the service name, resource attributes and batch
//! settings itself.
//!
//! The batch processor runs on tokio; its shutdown blocks the thread that calls it, which would
//! deadlock a worker of a one-worker runtime. [`Telemetry::shutdown`] therefore runs it on a
//! plain thread, bounded in time.

use crate::config::Env;
use opentelemetry::{
    propagation::{Extractor, Injector},
    trace::TracerProvider as _,
    Context,
};
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider, Resource};
use std::time::Duration;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer};

/// Owns the tracer provider; call [`Telemetry::shutdown`] before exiting to flush spans.
#[derive(Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Installs the global subscriber (once per process; later calls only return a handle).
    pub fn init(default_service_name: &str, env: &Env) -> anyhow::Result<Self> {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let filter = log_filter(env.get("RUST_LOG"))?;
        let json = match env.get("AULA_LOG_FORMAT") {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => anyhow::bail!("AULA_LOG_FORMAT: expected text or json, got {other:?}"),
        };
        // The log shows a request span (and the ids recorded on it) only when the filter lets
        // INFO spans through; otherwise recording the ids is work no line will ever print.
        let logs_spans = filter
            .max_level_hint()
            .is_none_or(|max| max >= tracing_subscriber::filter::LevelFilter::INFO);
        let fmt = if json {
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                // The whole list: trace_id sits on the request's span, maybe not the innermost.
                .with_span_list(true)
                .boxed()
        } else {
            // Colours only on a terminal: piped logs (files, docker) stay plain text.
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
            tracing_subscriber::fmt::layer()
                .with_ansi(ansi)
                .event_format(crate::logfmt::TextFormat)
                .boxed()
        };

        // Spans get OpenTelemetry ids even when nothing is exported, so every log line inside a
        // request carries trace_id/span_id and trace context passes through to the next service.
        let export = crate::otlp::export(env)?;
        let exporting = export.is_some();
        let provider = build_provider(default_service_name, env, export)?;
        // Every request pays for this layer, so it keeps only what a trace viewer uses: no
        // source location (always the observing layer), thread names or busy/idle timings,
        // and no OpenTelemetry context attached on every poll (propagation reads the span's
        // context directly, see `inject_into`).
        let otel = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("aula"))
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_context_activation(false)
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
        // A second init in the same process (tests, `aula up`) keeps the first subscriber.
        let installed = tracing_subscriber::registry()
            .with(otel)
            .with(fmt.with_filter(filter))
            .try_init()
            .is_ok();
        if installed {
            opentelemetry::global::set_tracer_provider(provider.clone());
            LOG_IDS.store(logs_spans, std::sync::atomic::Ordering::Relaxed);
            SPANS_USED.store(
                exporting || logs_spans,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        Ok(Self {
            provider: (installed && exporting).then_some(provider),
        })
    }

    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes and stops the exporter, off the async path, within `timeout`.
    pub fn shutdown(self, timeout: Duration) {
        let Some(provider) = self.provider else {
            return;
        };
        let (done, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = provider.force_flush();
            let _ = provider.shutdown();
            let _ = done.send(());
        });
        if wait.recv_timeout(timeout).is_err() {
            eprintln!("telemetry: span export did not finish within {timeout:?}; exiting anyway");
        }
    }
}

fn build_provider(
    default_service_name: &str,
    env: &Env,
    export: Option<crate::otlp::Export>,
) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    // Resource::builder() runs the standard detectors (OTEL_SERVICE_NAME,
    // OTEL_RESOURCE_ATTRIBUTES); our name is only the default when the user set none.
    let resource = if env.get("OTEL_SERVICE_NAME").is_some() {
        Resource::builder().build()
    } else {
        Resource::builder()
            .with_service_name(default_service_name.to_string())
            .build()
    };
    let builder = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(crate::otlp::sampler(env)?);
    let Some(export) = export else {
        return Ok(builder.build());
    };
    let exporter = match export.protocol {
        crate::otlp::Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(export.endpoint)
            .with_timeout(export.timeout)
            .build()?,
        crate::otlp::Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(export.endpoint)
            .with_timeout(export.timeout)
            .build()?,
    };
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
    Ok(builder.with_span_processor(processor).build())
}

/// `RUST_LOG` (default `info`). The OpenTelemetry crates log their own life at info ("Global
/// tracer provider is set") on every start: they speak at warn unless the filter names them.
fn log_filter(rust_log: Option<&str>) -> anyhow::Result<EnvFilter> {
    let spec = rust_log.unwrap_or("info");
    let mut filter =
        EnvFilter::try_new(spec).map_err(|e| anyhow::anyhow!("RUST_LOG={spec:?}: {e}"))?;
    if !spec.contains("opentelemetry") {
        for quiet in [
            "opentelemetry=warn",
            "opentelemetry_sdk=warn",
            "opentelemetry_otlp=warn",
        ] {
            filter = filter.add_directive(quiet.parse().expect("a valid directive"));
        }
    }
    Ok(filter)
}

/// Reads W3C trace context from request headers.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Writes W3C trace context into request headers.
struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Makes `span` a child of the trace context carried by `headers`, if any.
pub fn set_parent_from(span: &tracing::Span, headers: &http::HeaderMap) {
    // Most calls from outside carry no context: skip the propagator (and its lock) for them.
    if !headers.contains_key("traceparent") {
        record_ids(span);
        return;
    }
    let parent =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    let _ = span.set_parent(parent);
    record_ids(span);
}

/// Injects `span`'s trace context into outgoing headers.
pub fn inject_into(span: &tracing::Span, headers: &mut http::HeaderMap) {
    let cx = span.context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(headers))
    });
}

/// The W3C `traceparent` of the current span, to carry a trace across a queue (the outbox).
pub fn current_traceparent() -> Option<String> {
    let mut headers = http::HeaderMap::new();
    inject_into(&tracing::Span::current(), &mut headers);
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Makes `span` a child of a stored `traceparent`.
pub fn set_parent_traceparent(span: &tracing::Span, traceparent: &str) {
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(traceparent) {
        headers.insert("traceparent", v);
    }
    set_parent_from(span, &headers);
}

/// Whether the installed log filter shows request spans (see [`Telemetry::init`]); true until
/// a subscriber is installed.
static LOG_IDS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Whether a request span with no incoming trace context has any use: spans are exported, or
/// the log shows them. True until a subscriber is installed.
static SPANS_USED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Whether the server span of a request with these headers is worth building. With no
/// exporter and request spans hidden from the log (`RUST_LOG=warn`), a span is built, sampled
/// and dropped on every call with nothing ever reading it; unless the caller sent a
/// `traceparent`, which must still reach the services this call calls (their client spans
/// carry it on).
pub fn wants_span(headers: &http::HeaderMap) -> bool {
    SPANS_USED.load(std::sync::atomic::Ordering::Relaxed) || headers.contains_key("traceparent")
}

/// Whether the client span of an outgoing call is worth building: spans are used (exported or
/// logged), or the call is made inside a span, whose trace (one that came from outside, in a
/// `traceparent`) must go on to the peer. Otherwise the span would be built, sampled and
/// dropped unread, and its `traceparent` would make the peer build a server span for nobody
/// too (callgrind: ~18k instructions in cursos per call from the gateway).
pub fn wants_client_span() -> bool {
    SPANS_USED.load(std::sync::atomic::Ordering::Relaxed) || !tracing::Span::current().is_disabled()
}

/// Records `trace_id`/`span_id` on a span that declared them, so every log line inside it
/// carries them.
fn record_ids(span: &tracing::Span) {
    if !LOG_IDS.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    use opentelemetry::trace::TraceContextExt;
    let cx: Context = span.context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        span.record("trace_id", tracing::field::display(sc.trace_id()));
        span.record("span_id", tracing::field::display(sc.span_id()));
    }
}
