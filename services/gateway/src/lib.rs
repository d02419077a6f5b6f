//! The Aula REST compatibility gateway: the seed's original Flask REST API (`GET /cursos`,
//! `POST /chatbot/duvida`, ...) with its JSON shapes, each request translated to one gRPC call
//! on the six services over balanced, observed [`aula_runtime::peers::PeerChannel`]s. It owns
//! no data: gRPC codes become HTTP statuses, `/healthz` aggregates the services' health. The
//! runtime hosts it like every service ([`service`]): the same start-up, flags, telemetry,
//! `/metrics`, signals, drain and `healthcheck` subcommand.
//!
//! # Layout
//! - [`server`]: the state and the app the runtime starts ([`service`], [`start`]).
//! - [`edge`]: the one layer before every route: observe, authenticate, limit.
//! - [`auth`]: tokens at the edge (401 before any call; the token goes on to the services).
//! - [`routes`]: the REST endpoints and their request checks.
//! - [`extract`]: the path segment and query string, refused as JSON naming the field.
//! - [`json`]: protobuf responses as the seed's JSON.
//! - [`error`]: [`ApiError`], the one mapping of failures (and gRPC codes) to HTTP.
//! - [`limits`]: body size (413), each client's request rate (429), header timeout.
//! - [`serve`]: the accept loop (header timeout, first-request deadline, connection cap, drain).
//! - [`health`]: `/healthz`, `/livez`, `/readyz`.
//! - [`observe`]: the `http.server` span and the `http_*` metrics of every request.
//! - [`backends`]: the six services' channels and clients.
//! - [`config`]: the settings only the gateway reads.
//! - [`state`]: what handlers share.

pub mod auth;
pub mod backends;
pub mod config;
pub mod edge;
pub mod error;
pub mod extract;
pub mod health;
pub mod json;
pub mod limits;
pub mod observe;
pub mod routes;
pub mod serve;
pub mod server;
pub mod state;

pub use config::GatewayConfig;
pub use error::ApiError;

use aula_runtime::{config::Env, http::HttpDef, spec};

/// A serving gateway: drain, wait, stop, its addresses.
pub type RunningGateway = aula_runtime::host::Running<spec::HttpSpec>;

/// The gateway, as the runtime hosts it: its binary, `aula serve gateway` and `aula up`.
pub fn service() -> HttpDef {
    HttpDef {
        spec: spec::GATEWAY,
        listen_var: "GATEWAY_LISTEN",
        build: server::build,
    }
}

/// Starts the gateway on listeners the caller bound (tests bind `127.0.0.1:0`).
pub async fn start(
    env: &Env,
    listener: tokio::net::TcpListener,
    metrics_listener: Option<tokio::net::TcpListener>,
) -> anyhow::Result<RunningGateway> {
    let def = service();
    aula_runtime::http::start_on(
        def,
        def.settings(env)?,
        env.clone(),
        listener,
        metrics_listener,
    )
    .await
}
