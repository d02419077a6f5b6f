//! Building the app and serving it: the REST routes, health endpoints, the observing
//! middleware, `/metrics` on its own listener, and a graceful drain.

use crate::{
    backends::Backends, config::GatewayConfig, error::ApiError, health, observe, routes,
    state::AppState,
};
use anyhow::Context as _;
use aula_runtime::{config::Env, metrics::Metrics};
use axum::{extract::Request, routing::get, Router};
use std::{net::SocketAddr, time::Duration};
use tokio_util::sync::CancellationToken;

/// The gateway, configured but not yet serving.
pub struct Gateway {
    config: GatewayConfig,
    state: AppState,
}

impl Gateway {
    /// Reads the configuration and prepares the backends' channels (nothing connects yet).
    pub fn new(env: &Env) -> anyhow::Result<Self> {
        let config = GatewayConfig::from_env(env)?;
        let metrics = Metrics::new();
        let backends = Backends::new(env, &config, &metrics)?;
        let auth =
            crate::auth::EdgeAuth::new(aula_runtime::auth::AuthConfig::load(env)?, &metrics)?;
        let state = AppState {
            backends,
            metrics,
            draining: CancellationToken::new(),
            health_timeout: config.peer_timeout.min(Duration::from_secs(2)),
            rate_limit: crate::limits::RateLimit::new(&config.limits),
            in_flight: crate::limits::InFlight::new(config.limits.max_in_flight),
            max_body_bytes: config.limits.max_body_bytes,
            body_timeout: config.limits.body_timeout,
            auth,
        };
        Ok(Self { config, state })
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// The gateway's metrics registry (HTTP and gRPC client metrics).
    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// The whole HTTP app: REST routes, `/healthz`, `/livez`, `/readyz`, observed.
    pub fn router(&self) -> Router {
        routes::api()
            .route("/healthz", get(health::healthz))
            .route("/livez", get(health::livez))
            .route("/readyz", get(health::readyz))
            .fallback(|req: Request| async move {
                ApiError::NoRoute(crate::extract::quoted(req.uri().path()))
            })
            .method_not_allowed_fallback(|req: Request| async move {
                ApiError::MethodNotAllowed {
                    method: crate::extract::quoted(req.method().as_str()),
                    path: crate::extract::quoted(req.uri().path()),
                }
            })
            // Bodies over GATEWAY_MAX_BODY are refused (413) while being read.
            .layer(axum::extract::DefaultBodyLimit::max(
                self.config.limits.max_body_bytes,
            ))
            // Inside in_flight: a body that is slow to arrive holds its place for
            // GATEWAY_BODY_TIMEOUT at most.
            .layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                crate::limits::body_deadline,
            ))
            // Inside observe, so that 429s and 503s are counted like every other answer; a
            // client over its rate is refused before it takes an in-flight place.
            .layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                crate::limits::in_flight,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                crate::limits::rate_limit,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                crate::auth::authenticate,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                observe::observe,
            ))
            .with_state(self.state.clone())
    }

    /// Serves on `listener` (and `/metrics` on `metrics_listener`) until drained.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        metrics_listener: Option<tokio::net::TcpListener>,
    ) -> anyhow::Result<RunningGateway> {
        let addr = listener
            .local_addr()
            .context("reading the gateway listener's address")?;
        if let Some(auth) = &self.state.auth {
            auth.load().await?;
        }
        let app = self.router();
        let metrics = self.state.metrics.clone();
        let drain = self.state.draining.clone();
        let grace = self.config.shutdown_grace;
        let delay = self.config.drain_delay;

        // Metrics stay up through the drain, so the last scrape sees it; they stop after.
        let metrics_stop = CancellationToken::new();
        let (metrics_addr, metrics_task) = match metrics_listener {
            Some(l) => {
                let a = l
                    .local_addr()
                    .context("reading the metrics listener's address")?;
                let stop = metrics_stop.clone().cancelled_owned();
                let m = metrics.clone();
                let task = tokio::spawn(async move {
                    if let Err(e) = aula_runtime::metrics::serve(m, l, stop).await {
                        tracing::error!(error = %e, "metrics server failed");
                    }
                });
                (Some(a), Some(task))
            }
            None => (None, None),
        };

        // The rate limiter forgets clients whose budget is full again: its table holds only
        // recent clients, however many there were.
        if let Some(rate) = self.state.rate_limit.clone() {
            let stop = drain.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(10));
                loop {
                    tokio::select! {
                        _ = tick.tick() => rate.forget_idle(),
                        _ = stop.cancelled() => return,
                    }
                }
            });
        }
        let limits = self.config.limits.clone();
        let signal = drain.clone();
        let done = tokio::spawn(async move {
            let shutdown = async move {
                signal.cancelled().await;
                tracing::info!(service = "gateway", grace = ?grace, delay = ?delay, "draining: not ready");
                // Still serving, not ready: balancers see /readyz fail and stop sending.
                tokio::time::sleep(delay).await;
                tracing::info!(
                    service = "gateway",
                    "closing the listener; finishing requests in flight"
                );
            };
            // Header timeout, connection cap, drain (serve.rs).
            let serve = crate::serve::serve(listener, app, &limits, shutdown);
            tokio::pin!(serve);
            let drain_started = drain.clone();
            let result = tokio::select! {
                () = &mut serve => Ok(()),
                _ = async { drain_started.cancelled().await; tokio::time::sleep(grace).await } => {
                    tracing::warn!(service = "gateway", "requests still running after the grace period; stopping anyway");
                    Ok(())
                }
            };
            metrics_stop.cancel();
            if let Some(task) = metrics_task {
                let _ = task.await;
            }
            tracing::info!(service = "gateway", "stopped");
            result
        });
        let metrics_at = metrics_addr.map_or("off".to_string(), |a| a.to_string());
        tracing::info!(service = "gateway", %addr, metrics = %metrics_at, "serving");
        Ok(RunningGateway {
            addr,
            metrics_addr,
            metrics,
            drain: self.state.draining,
            done,
        })
    }
}

/// Starts the gateway on listeners the caller bound (the binary, `aula up`, tests).
pub async fn start(
    env: &Env,
    listener: tokio::net::TcpListener,
    metrics_listener: Option<tokio::net::TcpListener>,
) -> anyhow::Result<RunningGateway> {
    Gateway::new(env)?.serve(listener, metrics_listener).await
}

/// A serving gateway.
pub struct RunningGateway {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    metrics: Metrics,
    drain: CancellationToken,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningGateway {
    /// Where the REST API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/metrics` listens, unless metrics are off.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts draining: `/readyz` turns 503 at once; after `GATEWAY_DRAIN_DELAY` no new
    /// connections are accepted; whatever still runs when `AULA_SHUTDOWN_GRACE` (counted
    /// from now) is over is abandoned.
    pub fn drain(&self) {
        self.drain.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.drain.is_cancelled()
    }

    /// Waits until the gateway has stopped (after [`Self::drain`]).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.done.await.context("the gateway task panicked")?
    }

    /// Drains and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.drain();
        self.wait().await
    }
}
