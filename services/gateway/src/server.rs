//! The gateway as the runtime hosts it ([`aula_runtime::http`]): its state, its routes behind
//! the observing and limiting middleware, and the accept loop ([`crate::serve`]) started on the
//! listener the runtime bound. Start-up, `/metrics`, signals and the drain's grace are the
//! runtime's, as for every gRPC service; the drain delay is the gateway's own.

use crate::{
    backends::Backends,
    config::GatewayConfig,
    error::ApiError,
    health, routes,
    state::{AppState, Shared},
};
use aula_runtime::http::{BuildServe, HttpContext, ServeFuture};
use axum::{extract::Request, routing::get, Router};
use std::time::Duration;

/// [`aula_runtime::http::HttpDef::build`] of the gateway.
pub fn build(ctx: HttpContext, listener: tokio::net::TcpListener) -> BuildServe {
    Box::pin(async move {
        let config = GatewayConfig::load(ctx.settings(), ctx.env())?;
        let state = state(&ctx, &config)?;
        if let Some(auth) = &state.auth {
            auth.load().await?;
        }
        // The rate limiter forgets clients whose budget is full again: its table holds only
        // recent clients, however many there were.
        if let Some(rate) = state.rate_limit.clone() {
            let draining = ctx.draining();
            ctx.spawn(async move {
                tokio::pin!(draining);
                let mut tick = tokio::time::interval(Duration::from_secs(10));
                loop {
                    tokio::select! {
                        _ = tick.tick() => rate.forget_idle(),
                        _ = &mut draining => return,
                    }
                }
            });
        }
        let app = router(&state, &config);
        let (draining, grace, delay) = (
            ctx.draining(),
            ctx.settings().shutdown_grace,
            config.drain_delay,
        );
        let shutdown = async move {
            draining.await;
            tracing::info!(service = "gateway", grace = ?grace, delay = ?delay, "draining: not ready");
            // Still serving, not ready: balancers see /readyz fail and stop sending.
            tokio::time::sleep(delay).await;
            tracing::info!(
                service = "gateway",
                "closing the listener; finishing requests in flight"
            );
        };
        let serve: ServeFuture = Box::pin(async move {
            // Header timeout, connection cap, drain (serve.rs).
            crate::serve::serve(listener, app, &config.limits, shutdown).await;
            Ok(())
        });
        Ok(serve)
    })
}

/// What handlers share; nothing connects yet.
fn state(ctx: &HttpContext, config: &GatewayConfig) -> anyhow::Result<AppState> {
    let (env, settings, metrics) = (ctx.env(), ctx.settings(), ctx.metrics());
    Ok(AppState::new(Shared {
        backends: Backends::new(env, settings, metrics)?,
        metrics: metrics.clone(),
        request_metrics: crate::observe::RequestMetrics::new(metrics),
        host: ctx.clone(),
        health_timeout: settings.peer_timeout.min(Duration::from_secs(2)),
        rate_limit: crate::limits::RateLimit::new(&config.limits),
        in_flight: crate::limits::InFlight::new(config.limits.max_in_flight),
        max_body_bytes: config.limits.max_body_bytes,
        body_timeout: config.limits.body_timeout,
        auth: crate::auth::EdgeAuth::new(aula_runtime::auth::AuthConfig::load(env)?, metrics)?,
    }))
}

/// The whole HTTP app: REST routes, `/healthz`, `/livez`, `/readyz`, observed.
fn router(state: &AppState, config: &GatewayConfig) -> Router {
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
            config.limits.max_body_bytes,
        ))
        // Observing, authentication, the client's rate, the in-flight cap and the body's
        // deadline, in that order, as one layer (edge.rs).
        .layer(crate::edge::EdgeLayer(state.clone()))
        .with_state(state.clone())
}
