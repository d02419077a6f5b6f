//! The Aula chatbot: answers students' questions about a lesson, grounded in the course and its
//! material. With a Gemini key it asks Gemini (resilient and streamed); without one it answers
//! offline by retrieval over the course material. It owns no table (so it has no `store.rs`):
//! every answered question is recorded in insights, which owns the interactions.
//!
//! # Layout
//! - [`domain`]: questions and their grounding ([`Question`], [`CourseContext`], [`Material`]),
//!   answers ([`Answer`], [`Chunk`]), [`AnswerError`], the one error type of answering, and
//!   [`ConfigError`]. It imports neither engine.
//! - [`engine`]: [`Engine`], which picks Gemini or offline from the environment
//!   ([`Engine::from_env`]).
//! - [`gemini`]: the Gemini REST client, one job per file (client, config, retries, failures,
//!   streaming, metrics, wire types, prompt, breaker).
//! - [`offline`]: the offline answerer (BM25 over the course material, marked `[modo offline]`),
//!   linear in the material and run off the async workers within the caller's deadline.
//! - [`grpc`]: the `ChatbotService` edge: protobuf <-> [`domain`] types, the caller's deadline,
//!   what kind of failure each [`AnswerError`] is (the runtime maps it to a status),
//!   `RegisterMetrics` forwarded to insights.
//! - [`recorder`]: records every answered question in insights (`RecordInteraction`) from a
//!   bounded queue drained in the background, so recording never delays an answer.
//! - [`metrics`]: what the service counts (registered handles); Gemini's calls in [`gemini`].
//!
//! Tests in `tests/` run against `tests/common`, a local HTTP server speaking Gemini's REST
//! protocol; `tests/chatbot.rs` drives the service in-process through gRPC.

pub mod domain;
pub mod engine;
pub mod gemini;
pub mod grpc;
pub mod metrics;
pub mod offline;
pub mod recorder;

pub use domain::{Answer, AnswerError, Chunk, ConfigError, CourseContext, Material, Question};
pub use engine::Engine;
pub use gemini::{GeminiClient, GeminiConfig};
pub use offline::OfflineAnswerer;

use aula_api::chatbot_service_server::ChatbotServiceServer;
use aula_runtime::{
    spec::{CHATBOT, INSIGHTS},
    BuildFuture, ServiceContext, ServiceDef,
};

/// The chatbot service, for `aula up`, the `chatbot` binary and tests. No migrations: the
/// interactions live in insights.
pub fn service() -> ServiceDef {
    ServiceDef {
        spec: CHATBOT,
        migrations: None,
        demo: None,
        build,
    }
}

fn build(ctx: ServiceContext) -> BuildFuture {
    Box::pin(async move {
        // A bad GEMINI_* value fails start-up with a message naming the variable.
        let engine = Engine::from_env(&|k| ctx.settings().env.get(k).map(str::to_string))?;
        tracing::info!(mode = engine.mode(), model = %engine.model(), "chatbot engine ready");
        engine.set_flags(ctx.flags().clone());
        engine.set_metrics(ctx.metrics());
        let metrics = metrics::ChatbotMetrics::register(ctx.metrics());
        let insights = ctx.peer(&INSIGHTS)?;
        let recorder = recorder::Recorder::start(&ctx, insights.clone(), metrics.clone());
        Ok(aula_runtime::routes!(
            ctx,
            ChatbotServiceServer::new(grpc::ChatbotGrpc::new(engine, insights, recorder, metrics))
        ))
    })
}
