//! The life every server the runtime hosts shares, gRPC service ([`crate::server`]) or HTTP
//! server ([`crate::http`], the REST gateway): `/metrics` on its own listener, up through the
//! drain so the last scrape sees it; background work that stops with the server; the drain,
//! bounded by `AULA_SHUTDOWN_GRACE` counted from its start; and the log lines marking each step.
//! A server brings only the future that serves its listener until [`Lifecycle::draining`].

use crate::{
    http::HttpDef,
    metrics::{self, Metrics},
    server::ServiceDef,
    spec::ServiceSpec,
};
use anyhow::Context as _;
use std::{future::Future, net::SocketAddr, time::Duration};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// What a binary runs: one of the gRPC services, or an HTTP server (the gateway). The command
/// line, `aula serve` and `aula up` start either the same way.
#[derive(Clone, Copy)]
pub enum Hosted {
    Grpc(ServiceDef),
    Http(HttpDef),
}

impl From<ServiceDef> for Hosted {
    fn from(def: ServiceDef) -> Self {
        Self::Grpc(def)
    }
}

impl From<HttpDef> for Hosted {
    fn from(def: HttpDef) -> Self {
        Self::Http(def)
    }
}

impl Hosted {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Grpc(d) => d.spec.name,
            Self::Http(d) => d.spec.name,
        }
    }

    /// Its port and its metrics port (services/catalogue.toml).
    pub fn ports(&self) -> (u16, u16) {
        match self {
            Self::Grpc(d) => (d.spec.port, d.spec.metrics_port),
            Self::Http(d) => (d.spec.port, d.spec.metrics_port),
        }
    }

    /// The variable naming its listen address (`--listen` sets it).
    pub fn listen_var(&self) -> &'static str {
        match self {
            Self::Grpc(_) => "AULA_LISTEN",
            Self::Http(d) => d.listen_var,
        }
    }

    /// It keeps data (reads `DATABASE_URL`, `AULA_DATA_DIR` ...).
    pub fn stateful(&self) -> bool {
        matches!(self, Self::Grpc(d) if d.spec.stateful)
    }
}

/// The clock of a background watcher: a tick every period (a late one is waited for, never
/// bunched with the next), until the drain.
pub struct Ticks(tokio::time::Interval);

impl Ticks {
    pub fn every(period: Duration) -> Self {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self(interval)
    }

    /// Waits for the next tick: `true`; `false` when `drain` resolves first.
    pub async fn next(&mut self, drain: impl Future<Output = ()>) -> bool {
        tokio::select! {
            _ = self.0.tick() => true,
            _ = drain => false,
        }
    }
}

/// A server's metrics registry, drain signal and background work, from start-up to stop.
#[derive(Clone)]
pub struct Lifecycle {
    name: &'static str,
    metrics: Metrics,
    drain: CancellationToken,
    tasks: TaskTracker,
    grace: Duration,
}

impl Lifecycle {
    /// A fresh registry: `aula up` hosts several servers in one process, each with its own.
    pub fn new(name: &'static str, grace: Duration) -> Self {
        Self {
            name,
            metrics: Metrics::new(),
            drain: CancellationToken::new(),
            tasks: TaskTracker::new(),
            grace,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Runs background work; it is awaited (within the grace period) when the server stops,
    /// so it should watch [`Self::draining`].
    pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(fut);
    }

    /// Resolves when the drain starts.
    pub fn draining(&self) -> impl Future<Output = ()> + Send + 'static {
        self.drain.clone().cancelled_owned()
    }

    pub fn is_draining(&self) -> bool {
        self.drain.is_cancelled()
    }

    /// The drain signal itself, for the runtime's own watchers (health, storage, flags).
    pub(crate) fn drain_token(&self) -> CancellationToken {
        self.drain.clone()
    }

    /// Serves: `serve` runs the server on `addr` until [`Self::draining`] resolves, then
    /// finishes what is in flight and returns; whatever still runs a grace period after the
    /// drain started is abandoned.
    pub fn run<S: Send + 'static>(
        self,
        spec: S,
        addr: SocketAddr,
        metrics_listener: Option<tokio::net::TcpListener>,
        serve: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> anyhow::Result<Running<S>> {
        let Self {
            name,
            metrics,
            drain,
            tasks,
            grace,
        } = self;
        let metrics_stop = CancellationToken::new();
        let (metrics_addr, metrics_task) = match metrics_listener {
            Some(l) => {
                let a = l
                    .local_addr()
                    .context("reading the metrics listener's address")?;
                let (m, stop) = (metrics.clone(), metrics_stop.clone().cancelled_owned());
                let task = tokio::spawn(async move {
                    if let Err(e) = metrics::serve(m, l, stop).await {
                        tracing::error!(error = %e, "metrics server failed");
                    }
                });
                (Some(a), Some(task))
            }
            None => (None, None),
        };
        let drain_started = drain.clone();
        let done = tokio::spawn(async move {
            tokio::pin!(serve);
            let result = tokio::select! {
                r = &mut serve => r,
                _ = async { drain_started.cancelled().await; tokio::time::sleep(grace).await } => {
                    tracing::warn!(service = name, "requests still running after the grace period; stopping anyway");
                    Ok(())
                }
            };
            tasks.close();
            if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
                tracing::warn!(
                    service = name,
                    "background work did not stop within the grace period"
                );
            }
            metrics_stop.cancel();
            if let Some(task) = metrics_task {
                let _ = task.await;
            }
            tracing::info!(service = name, "stopped");
            result
        });
        let metrics_at = metrics_addr.map_or("off".to_string(), |a| a.to_string());
        tracing::info!(service = name, %addr, metrics = %metrics_at, "serving");
        Ok(Running {
            spec,
            addr,
            metrics_addr,
            metrics,
            drain,
            done,
        })
    }
}

/// A started server: a gRPC service's ([`ServiceSpec`]) or the gateway's
/// ([`crate::spec::HttpSpec`]).
pub struct Running<S = ServiceSpec> {
    pub spec: S,
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub metrics: Metrics,
    drain: CancellationToken,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl<S> Running<S> {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/metrics` listens, unless metrics are off.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Starts draining: health turns NOT_SERVING (the gateway's `/readyz` 503), then no new
    /// connections are accepted, and in-flight calls get the grace period to finish.
    pub fn drain(&self) {
        self.drain.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.drain.is_cancelled()
    }

    /// Waits until the server has stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.done.await.context("the server task panicked")?
    }

    /// Drains and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.drain();
        self.wait().await
    }
}
