//! Starting one gRPC service: storage, the service's routes, health, reflection, the observing
//! layer; its metrics listener and drain are [`crate::host`]'s, as for the gateway. Every service
//! starts through [`start`]; a service crate only says what it is ([`ServiceDef`]) and how to
//! build its routes.

use crate::{
    config::Settings,
    db::{Db, Migrations},
    host::Lifecycle,
    metrics,
    observe::ServerLayer,
    peers::PeerChannel,
    spec::ServiceSpec,
    tls::Tls,
};
use anyhow::Context as _;
use futures::future::BoxFuture;
use std::{sync::Arc, time::Duration};
use tonic::service::Routes;
use tonic_health::ServingStatus;

/// What a service's `build` returns: its routes, once its background work has started.
pub type BuildFuture = BoxFuture<'static, anyhow::Result<Routes>>;

pub use crate::host::Running;

/// What a service crate provides.
#[derive(Clone, Copy)]
pub struct ServiceDef {
    pub spec: ServiceSpec,
    /// `None` for a service without storage.
    pub migrations: Option<Migrations>,
    /// Rows seeded when `AULA_DEMO_DATA=1` (`aula up`), never by the migrations.
    pub demo: Option<crate::demo::Demo>,
    /// Builds the service's gRPC routes (and starts its background work through the context).
    pub build: fn(ServiceContext) -> BuildFuture,
}

/// What a service gets to build itself: its settings, metrics, database, peers, and a place
/// to run background work that stops with the service.
#[derive(Clone)]
pub struct ServiceContext {
    inner: Arc<ContextInner>,
}

struct ContextInner {
    settings: Settings,
    db: Option<Db>,
    /// The registry, the drain signal and the background work.
    life: Lifecycle,
    /// The live certificates when TLS is on (servers and peer clients use them).
    tls: Option<Tls>,
    /// Fault flags (`AULA_FLAGS_FILE`), for faults a service injects itself (Gemini's outage).
    flags: crate::flags::Flags,
}

impl ServiceContext {
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The service's live fault flags (docs/FLAGS.md).
    pub fn flags(&self) -> &crate::flags::Flags {
        &self.inner.flags
    }

    /// The service's database. Panics for a service declared without migrations: a bug.
    pub fn db(&self) -> &Db {
        self.inner
            .db
            .as_ref()
            .expect("a service with storage declares its migrations")
    }

    /// A balanced channel to a peer, from `<NAME>_ADDR` (lazy: nothing connects yet).
    pub fn peer(&self, peer: &ServiceSpec) -> anyhow::Result<PeerChannel> {
        let s = &self.inner.settings;
        Ok(PeerChannel::with_tls(
            peer,
            &s.peer_addr(peer),
            s.server.peer_timeout,
            s.server.dns_refresh,
            self.inner.life.metrics(),
            self.inner.tls.as_ref(),
        )?
        .calling_as(s.spec.name))
    }
}

/// The service's registry, drain signal and background work (`metrics`, `spawn`, `draining`,
/// `is_draining`), as every server has them.
impl std::ops::Deref for ServiceContext {
    type Target = Lifecycle;

    fn deref(&self) -> &Lifecycle {
        &self.inner.life
    }
}

/// The routes of a service: its generated tonic server with `AULA_MAX_MESSAGE_SIZE` applied
/// both ways (tonic would encode answers of any size), as every service's `build` returns them.
/// `aula_runtime::routes!(ctx, FooServiceServer::new(service))`.
#[macro_export]
macro_rules! routes {
    ($ctx:expr, $server:expr) => {{
        let max = $ctx.settings().limits.max_message_bytes;
        ::tonic::service::Routes::new(
            $server
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
    }};
}

/// Binds the configured addresses and starts the service.
pub async fn start(def: ServiceDef, settings: Settings) -> anyhow::Result<Running> {
    let listener = crate::listen::bind(settings.server.listen, settings.server.listen_var).await?;
    let metrics_listener = match settings.server.metrics_listen {
        Some(addr) => Some(metrics::bind(addr).await?),
        None => None,
    };
    start_on(def, settings, listener, metrics_listener).await
}

/// Starts the service on listeners the caller bound (tests bind `127.0.0.1:0`).
pub async fn start_on(
    def: ServiceDef,
    settings: Settings,
    listener: tokio::net::TcpListener,
    metrics_listener: Option<tokio::net::TcpListener>,
) -> anyhow::Result<Running> {
    let spec = def.spec;
    let addr = listener.local_addr()?;
    let life = Lifecycle::new(spec.name, settings.server.shutdown_grace);
    let metrics_registry = life.metrics().clone();
    let db = match def.migrations {
        Some(m) => Some(Db::connect(&settings, m, &metrics_registry).await?),
        None => None,
    };
    // Into a database this start created only: rows a user deleted stay deleted, and a
    // database in use (or created by the migrations that still inserted the demo rows) is left
    // as it is.
    if let (Some(db), Some(demo), true) = (&db, &def.demo, settings.demo_data) {
        if db.created() {
            crate::demo::seed(db, demo).await?;
        }
    }
    let tls = settings.tls.as_ref().map(Tls::load).transpose()?;
    if let Some(t) = &tls {
        t.watch(&metrics_registry);
    }
    let authz = crate::authz::AuthzLayer::new(spec, settings.tls.as_ref(), &metrics_registry);
    let auth = crate::auth::AuthLayer::start(settings.auth.as_ref(), &metrics_registry).await?;
    let grace = settings.server.shutdown_grace;
    let flags_file = settings.flags_file.clone();
    let flags = crate::flags::load(spec.name, flags_file.as_deref());
    let ctx = ServiceContext {
        inner: Arc::new(ContextInner {
            settings,
            db: db.clone(),
            life: life.clone(),
            tls: tls.clone(),
            flags: flags.clone(),
        }),
    };
    if let Some(db) = db {
        let draining = life.draining();
        ctx.spawn(async move {
            tokio::pin!(draining);
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tokio::select! {
                    _ = tick.tick() => db.record_pool_metrics(),
                    _ = &mut draining => return,
                }
            }
        });
    }
    let routes = (def.build)(ctx.clone())
        .await
        .with_context(|| format!("starting {}", spec.name))?;

    let reporter = tonic_health::server::HealthReporter::new();
    let health = crate::health::server(&reporter, life.drain_token());
    reporter
        .set_service_status(spec.grpc_service, ServingStatus::Serving)
        .await;
    if let Some(db) = &ctx.inner.db {
        let probe = crate::storage_health::watch(
            db.clone(),
            &metrics_registry,
            reporter.clone(),
            spec.grpc_service,
            life.drain_token(),
        );
        ctx.spawn(probe);
    }
    if let Some(path) = flags_file {
        let watch = crate::flags::watch(
            flags.clone(),
            path,
            reporter.clone(),
            spec.grpc_service,
            life.drain_token(),
        );
        ctx.spawn(watch);
    }
    // Reflection lists what this port serves: the service, health and reflection itself
    // (the descriptor set holds all six services; a client must not be told to call them here).
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(aula_api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(spec.grpc_service)
            .with_service_name("grpc.health.v1.Health")
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let limits = ctx.settings().limits.clone();
    let mut routes = routes.add_service(health);
    if limits.reflection {
        routes = routes
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);
    }
    let observe = ServerLayer::new(metrics_registry.clone(), spec.grpc_service);
    let stack = tower::ServiceBuilder::new()
        // Beyond AULA_MAX_IN_FLIGHT calls, RESOURCE_EXHAUSTED at once (health never). First,
        // so that a refusal skips every other layer's work (shed.rs), and called when the
        // call's stream arrives (arrival.rs), so that the limit counts every call queued;
        // it counts itself in the observing layer's metrics.
        .layer(crate::shed::ShedLayer::new(
            &metrics_registry,
            spec.name,
            &limits,
            observe.methods(),
        ))
        // What tonic's server did around every service: one body type for hyper, errors
        // (a layer's, the timeout's) answered as gRPC statuses, the caller's grpc-timeout.
        .map_response(boxed_body)
        .layer(tonic::service::RecoverErrorLayer::new())
        .layer(crate::grpc_timeout::GrpcTimeoutLayer)
        .layer(observe)
        // Who is calling (proved by mTLS) and whether they may call this RPC.
        .layer(authz)
        // Fault flags (docs/FLAGS.md): inside observe, so a drill is counted and traced.
        .layer(crate::flags::FaultLayer::new(flags, &metrics_registry))
        // Who the end user is and whether the rule of the method lets them call (auth::policy).
        .layer(auth)
        // The caller's deadline, for the calls the handler makes to other services.
        .layer(crate::deadline::DeadlineLayer)
        // A body that is not the method's message is INVALID_ARGUMENT, not tonic's INTERNAL.
        .layer(crate::bad_message::BadMessageLayer)
        .service(routes.prepare());

    // Set per accepted socket here: Nagle + delayed ACK would stall small responses by 40 ms.
    let incoming = tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)));
    let draining = life.draining();
    let metrics_tls = metrics_registry.clone();
    let serve = async move {
        let shutdown = async move {
            draining.await;
            reporter
                .set_service_status(spec.grpc_service, ServingStatus::NotServing)
                .await;
            reporter
                .set_service_status("", ServingStatus::NotServing)
                .await;
            tracing::info!(service = spec.name, grace = ?grace, "draining");
        };
        // Streams per connection, resets, keepalive (limits.rs); GOAWAY at the connection's
        // age, so that clients rebalance onto new replicas (serve.rs). At most
        // AULA_MAX_CONNECTIONS, each starting HTTP/2 in time and closed at the end of its
        // age's grace (connections.rs).
        let http2 = limits.http2();
        let age = limits.max_connection_age;
        let bounds = crate::connections::Bounds::of(&limits);
        match &tls {
            Some(tls) => {
                let incoming = crate::tls::accept::incoming(incoming, tls.clone(), &metrics_tls);
                let incoming = crate::connections::guard(incoming, bounds, &metrics_tls);
                crate::serve::serve(incoming, stack, http2, age, shutdown).await
            }
            None => {
                let incoming = crate::connections::guard(incoming, bounds, &metrics_tls);
                crate::serve::serve(incoming, stack, http2, age, shutdown).await
            }
        }
        Ok(())
    };
    life.run(spec, addr, metrics_listener, serve)
}

/// One response body type for hyper, whatever the layers below return (as tonic's server did).
fn boxed_body<B>(response: http::Response<B>) -> http::Response<tonic::body::Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    response.map(tonic::body::Body::new)
}

/// Maps a domain error that a service did not expect to an opaque INTERNAL status, logging
/// the cause chain (the caller gets no internals).
pub fn internal(error: impl Into<anyhow::Error>) -> tonic::Status {
    let error = error.into();
    tracing::error!(error = format!("{error:#}"), "internal error");
    tonic::Status::internal("internal error")
}
