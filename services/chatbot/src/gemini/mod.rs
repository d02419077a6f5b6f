//! Gemini over its REST API, one job per file:
//! - [`client`]: the client and its two calls (answer, answer as a stream);
//! - [`config`]: its settings, validated at start-up;
//! - `retry`: attempts, timeouts, backoff and the breaker around each call;
//! - `failure`: how an attempt failed and what the caller is told;
//! - `stream`: the streamed answer (SSE events to chunks), with `sse`, the event parser;
//! - `observe`: the metrics of each call;
//! - [`protocol`]: the wire types; [`prompt`]: the prompt; [`breaker`]: the circuit breaker.

pub mod breaker;
pub mod client;
pub mod config;
mod failure;
mod observe;
pub mod prompt;
pub mod protocol;
mod retry;
mod sse;
mod stream;

pub use breaker::{BreakerConfig, BreakerState};
pub use client::GeminiClient;
pub use config::{GeminiConfig, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_BASE_URL, DEFAULT_MODEL};
pub use observe::GeminiMetrics;
