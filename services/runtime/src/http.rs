//! Hosting an HTTP server (the REST gateway) on the runtime: the same start-up, telemetry,
//! `/metrics` listener, signals and drain as every gRPC service ([`crate::host`]). The crate
//! brings its settings, its routes and its accept loop, as the future [`HttpDef::build`]
//! returns; the runtime decides when it starts, when it drains and how long it may take.

use crate::{
    config::{ConfigError, Env, ServerSettings},
    host::{Lifecycle, Running},
    spec::HttpSpec,
};
use anyhow::Context as _;
use futures::future::BoxFuture;
use std::sync::Arc;

/// The future that serves the listener: until [`Lifecycle::draining`] resolves, then it
/// finishes the requests in flight and returns.
pub type ServeFuture = BoxFuture<'static, anyhow::Result<()>>;

/// What [`HttpDef::build`] returns: the server, once its settings are read and its background
/// work has started.
pub type BuildServe = BoxFuture<'static, anyhow::Result<ServeFuture>>;

/// What an HTTP server crate provides: the counterpart of [`crate::ServiceDef`].
#[derive(Clone, Copy)]
pub struct HttpDef {
    pub spec: HttpSpec,
    /// The variable naming its listen address (`GATEWAY_LISTEN`; `--listen` sets it).
    pub listen_var: &'static str,
    /// Builds the server on its listener.
    pub build: fn(HttpContext, tokio::net::TcpListener) -> BuildServe,
}

impl HttpDef {
    /// The settings every hosted server reads, from `env`.
    pub fn settings(&self, env: &Env) -> Result<ServerSettings, ConfigError> {
        ServerSettings::load(env, self.listen_var, self.spec.port, self.spec.metrics_port)
    }
}

/// What an HTTP server gets to build itself: its settings and environment, its metrics
/// registry, the drain signal, and a place to run background work that stops with it.
#[derive(Clone)]
pub struct HttpContext {
    inner: Arc<Inner>,
}

struct Inner {
    settings: ServerSettings,
    /// The full environment, for the server's own settings (`GATEWAY_*`, `AULA_AUTH`).
    env: Env,
    life: Lifecycle,
}

impl HttpContext {
    pub fn settings(&self) -> &ServerSettings {
        &self.inner.settings
    }

    pub fn env(&self) -> &Env {
        &self.inner.env
    }
}

/// The server's registry, drain signal and background work (`metrics`, `spawn`, `draining`,
/// `is_draining`), as every server has them.
impl std::ops::Deref for HttpContext {
    type Target = Lifecycle;

    fn deref(&self) -> &Lifecycle {
        &self.inner.life
    }
}

/// Binds the configured addresses and starts the server.
pub async fn start(
    def: HttpDef,
    settings: ServerSettings,
    env: Env,
) -> anyhow::Result<Running<HttpSpec>> {
    let listener = crate::listen::bind(settings.listen, settings.listen_var).await?;
    let metrics_listener = match settings.metrics_listen {
        Some(addr) => Some(crate::metrics::bind(addr).await?),
        None => None,
    };
    start_on(def, settings, env, listener, metrics_listener).await
}

/// Starts the server on listeners the caller bound (tests bind `127.0.0.1:0`).
pub async fn start_on(
    def: HttpDef,
    settings: ServerSettings,
    env: Env,
    listener: tokio::net::TcpListener,
    metrics_listener: Option<tokio::net::TcpListener>,
) -> anyhow::Result<Running<HttpSpec>> {
    let addr = listener
        .local_addr()
        .context("reading the listener's address")?;
    let life = Lifecycle::new(def.spec.name, settings.shutdown_grace);
    let ctx = HttpContext {
        inner: Arc::new(Inner {
            settings,
            env,
            life: life.clone(),
        }),
    };
    let serve = (def.build)(ctx, listener)
        .await
        .with_context(|| format!("starting {}", def.spec.name))?;
    life.run(def.spec, addr, metrics_listener, serve)
}
