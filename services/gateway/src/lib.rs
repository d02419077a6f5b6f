//! The Aula REST compatibility gateway: the seed's original Flask REST API (`GET /cursos`,
//! `POST /chatbot/duvida`, ...) with its JSON shapes, each request translated to one gRPC call
//! on the six services over balanced, observed [`aula_runtime::peers::PeerChannel`]s. It owns
//! no data: gRPC codes become HTTP statuses, `/healthz` aggregates the services' health.
//!
//! # Layout
//! - [`auth`]: tokens at the edge (401 before any call; the token goes on to the services).
//! - [`server`]: [`Gateway`] (the configured app), [`start`] and [`RunningGateway`] (drain, stop).
//! - [`routes`]: the REST endpoints and their request checks.
//! - [`extract`]: the path segment and query string, refused as JSON naming the field.
//! - [`json`]: protobuf responses as the seed's JSON.
//! - [`error`]: [`ApiError`], the one mapping of failures (and gRPC codes) to HTTP.
//! - [`limits`]: body size (413), each client's request rate (429), header timeout.
//! - [`serve`]: the accept loop (header timeout, first-request deadline, connection cap, drain).
//! - [`health`]: `/healthz`, `/livez`, `/readyz`.
//! - [`observe`]: the `http.server` span and the `http_*` metrics of every request.
//! - [`backends`]: the six services' channels and clients.
//! - [`config`]: settings from the environment.
//! - [`cli`]: the binary's `main` ([`main_entry`]) and [`healthcheck`] its subcommand.
//! - [`state`]: what handlers share.

pub mod auth;
pub mod backends;
pub mod cli;
pub mod config;
pub mod error;
pub mod extract;
pub mod health;
pub mod healthcheck;
pub mod json;
pub mod limits;
pub mod observe;
pub mod routes;
pub mod serve;
pub mod server;
pub mod state;

pub use cli::main_entry;
pub use config::GatewayConfig;
pub use error::ApiError;
pub use server::{start, Gateway, RunningGateway};
