//! The runtime every Aula service shares, so the six cannot drift apart: configuration,
//! telemetry, metrics, health, reflection, graceful shutdown, peers and storage.
//!
//! # Layout
//! - [`spec`]: the catalogue of services (generated from `services/catalogue.toml`).
//! - [`config`]: settings from the environment (a parameter, for tests).
//! - [`server`]: [`server::ServiceDef`], [`server::ServiceContext`] and [`server::start`].
//! - [`http`]: [`http::HttpDef`], the same for an HTTP server (the REST gateway).
//! - [`host`]: what both share: the metrics listener, background work, the drain and its grace;
//!   [`host::Hosted`] is either.
//! - [`cli`]: `main` for a service's or the gateway's binary (flags, runtime, signals,
//!   `healthcheck`).
//! - [`peers`]: DNS-discovered, balanced, observed channels to other services; [`peers::PeerError`].
//! - [`limits`]: the explicit limits of every server (message sizes, HTTP/2 streams, keepalive,
//!   calls in flight, reflection); [`shed`]: calls beyond the in-flight limit refused at once;
//!   [`connections`]: connections capped and made to start HTTP/2 in time.
//! - [`serve`]: hyper's HTTP/2 server driven by the runtime (tonic's serve loop, redone);
//!   [`arrival`]: calls meet the layers when their stream arrives, refusals answered in place;
//!   [`grpc_timeout`]: the caller's `grpc-timeout` enforced.
//! - [`deadline`]: the deadline of the call being served, handed on to peers.
//! - [`backoff`]: the one exponential backoff every retry uses.
//! - [`bad_message`]: a request body that is not the method's message is INVALID_ARGUMENT.
//! - [`observe`]: the gRPC layer recording metrics and spans.
//! - [`metrics`]: one Prometheus registry per service and its `/metrics` endpoint.
//! - [`telemetry`]: logs, OTLP traces, W3C propagation.
//! - [`db`]: SQLite/PostgreSQL pools and migrations.
//! - [`demo`]: the demo rows `aula up` seeds (`AULA_DEMO_DATA`), never in a migration.
//! - [`reads`]: inline reads from the SQLite file on hot paths.
//! - [`storage_health`]: health NOT_SERVING while the database cannot write (a write probe).
//! - [`outbox`]: a transactional outbox, generic over what it delivers and to whom (a
//!   [`outbox::Courier`]), with its table's own migrations (`migrations/outbox`).
//! - [`error`]: the one mapping of every service's domain error to a gRPC status.
//! - [`fields`]: request fields checked at the edge (lengths, URLs) and short quotes of bad input.
//! - [`identity`]: the caller's proved service identity (mTLS), read by authorization.
//! - [`tls`]: mutual TLS: settings, certificates and their rotation, acceptor and connector.
//! - [`authz`]: per-RPC authorization of the proved identity against the catalogue.
//! - [`flags`]: fault flags from `AULA_FLAGS_FILE` (drills: errors, latency, unavailable).
//! - [`auth`]: end users' tokens (JWT), the table of who may call what, the checks on `id_usuario`.
//! - [`ids`]: identifier fields (strings holding positive integers) and the shared id types.
//! - [`paging`]: page sizes and opaque page tokens.
//! - [`recent`]: values recomputed at most once per interval (status counts).
//! - [`health`]: the gRPC health service; watch streams end when the drain starts.
//! - [`healthcheck`]: the images' own health probe (gRPC health, or the gateway's `/readyz`).
//! - `harness` (cargo feature `harness`, for `aula faults` and tests): filling a file system,
//!   finding PostgreSQL's tools.
//! - `testing` (cargo feature `testing`, for tests only): services in-process on ephemeral
//!   ports, and the assertions the services' tests share.

/// Every binary built on the runtime allocates through mimalloc: a request allocates and frees
/// dozens of small objects (headers, futures, span data), and glibc's malloc spent ~18% of a
/// saturated core on them (BENCHMARKS.md). Its one setting is in `.cargo/config.toml`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[macro_use]
mod middleware;

pub mod arrival;
pub mod auth;
pub mod authz;
pub mod backoff;
pub mod bad_message;
pub mod cli;
pub mod config;
pub mod connections;
pub mod db;
pub mod deadline;
pub mod demo;
pub mod error;
pub mod fields;
pub mod flags;
pub mod grpc_timeout;
#[cfg(feature = "harness")]
pub mod harness;
pub mod health;
pub mod healthcheck;
pub mod help;
pub mod host;
pub mod http;
pub mod identity;
pub mod ids;
pub mod limits;
pub mod listen;
pub mod logfmt;
pub mod metric_help;
pub mod metrics;
pub mod observe;
pub mod otlp;
pub mod outbox;
pub mod paging;
pub mod peers;
pub mod reads;
pub mod recent;
pub mod serve;
pub mod server;
pub mod shed;
pub mod spec;
pub mod storage_health;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

pub use config::{Env, Settings};
pub use server::{BuildFuture, ServiceContext, ServiceDef};
