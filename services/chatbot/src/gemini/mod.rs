//! Gemini over its REST API: the resilient client ([`client`]), the wire types ([`protocol`]), the
//! prompt ([`prompt`]) and the circuit breaker ([`breaker`]).

pub mod breaker;
pub mod client;
pub mod prompt;
pub mod protocol;
mod sse;

pub use breaker::{BreakerConfig, BreakerState};
pub use client::{GeminiClient, GeminiConfig};
