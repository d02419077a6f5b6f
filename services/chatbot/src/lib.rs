//! The Aula chatbot: answers students' questions about a lesson, grounded in the course and its
//! material. With a Gemini key it asks Gemini (resilient and streamed); without one it answers
//! offline by retrieval over the course material. This crate owns that engine; the gRPC edge
//! converts protobuf to and from [`engine`] types and maps [`AnswerError`] to status codes.
//!
//! # Layout
//! - [`engine`]: the domain types ([`Question`], [`Answer`], [`Chunk`], [`AnswerError`]) and
//!   [`Engine`], which picks Gemini or offline from the environment ([`Engine::from_env`]).
//! - [`gemini`]: the Gemini REST client: [`gemini::client`] (timeouts, retries, breaker, SSE
//!   streaming, metrics and spans), [`gemini::protocol`] (wire types), [`gemini::prompt`],
//!   [`gemini::breaker`].
//! - [`offline`]: the offline answerer (BM25 over the course material, marked `[modo offline]`).
//!
//! Tests in `tests/` run against `tests/common`, a local HTTP server speaking Gemini's REST protocol.

pub mod engine;
pub mod gemini;
pub mod offline;

pub use engine::{
    Answer, AnswerError, Chunk, ConfigError, CourseContext, Engine, Material, Question,
};
pub use gemini::{GeminiClient, GeminiConfig};
pub use offline::OfflineAnswerer;
