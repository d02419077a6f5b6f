//! An OTLP/gRPC trace receiver that only counts: the collector stand-in for the tracing-cost
//! benchmark (scripts/bench.sh). It accepts `ExportTraceServiceRequest`s, counts spans and
//! requests, and writes `<spans> <requests>` to `--report` every second and on exit, so the
//! benchmark can check that spans really flowed.
//!
//! ```text
//! cargo run --release -p aula --example otlp_sink -- --listen 127.0.0.1:4317 --report /tmp/spans
//! ```

use clap::Parser;
use opentelemetry_proto::tonic::collector::trace::v1::{
    trace_service_server::{TraceService, TraceServiceServer},
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};
use tonic::{Request, Response, Status};

#[derive(Parser)]
struct Args {
    /// Address to receive OTLP/gRPC on
    #[arg(long, default_value = "127.0.0.1:4317")]
    listen: SocketAddr,
    /// File to write "<spans> <requests>" to
    #[arg(long)]
    report: Option<PathBuf>,
}

#[derive(Default)]
struct Counts {
    spans: AtomicU64,
    requests: AtomicU64,
}

struct Sink(Arc<Counts>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.spans.fetch_add(spans as u64, Ordering::Relaxed);
        self.0.requests.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn report(counts: &Counts, path: Option<&PathBuf>) -> String {
    let line = format!(
        "{} {}",
        counts.spans.load(Ordering::Relaxed),
        counts.requests.load(Ordering::Relaxed)
    );
    if let Some(p) = path {
        let _ = std::fs::write(p, format!("{line}\n"));
    }
    line
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let counts = Arc::new(Counts::default());
    let reporter = {
        let (counts, path) = (counts.clone(), args.report.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                report(&counts, path.as_ref());
            }
        })
    };
    eprintln!("otlp_sink: receiving on {}", args.listen);
    tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(Sink(counts.clone())))
        .serve_with_shutdown(args.listen, shutdown())
        .await?;
    reporter.abort();
    let line = report(&counts, args.report.as_ref());
    eprintln!("otlp_sink: spans requests = {line}");
    Ok(())
}

async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
