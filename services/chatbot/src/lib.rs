//! The Aula chatbot: answers students' questions about a lesson, grounded in the course and its
//! material. With a Gemini key it asks Gemini (resilient and streamed); without one it answers
//! offline by retrieval over the course material. It owns no table: every answered question is
//! recorded in insights, which owns the interactions.
//!
//! # Layout
//! - [`engine`]: the domain types ([`Question`], [`Answer`], [`Chunk`], [`AnswerError`]) and
//!   [`Engine`], which picks Gemini or offline from the environment ([`Engine::from_env`]).
//! - [`gemini`]: the Gemini REST client: [`gemini::client`] (timeouts, retries, breaker, SSE
//!   streaming, metrics and spans), [`gemini::protocol`] (wire types), [`gemini::prompt`],
//!   [`gemini::breaker`].
//! - [`offline`]: the offline answerer (BM25 over the course material, marked `[modo offline]`).
//! - [`grpc`]: the `ChatbotService` edge: protobuf <-> [`engine`] types, the caller's deadline,
//!   the one [`AnswerError`] -> `tonic::Status` mapping, `RegisterMetrics` forwarded to insights.
//! - [`recorder`]: records every answered question in insights (`RecordInteraction`) from a
//!   bounded queue drained in the background, so recording never delays an answer.
//!
//! Tests in `tests/` run against `tests/common`, a local HTTP server speaking Gemini's REST
//! protocol; `tests/grpc.rs` drives the service in-process through gRPC.

pub mod engine;
pub mod gemini;
pub mod grpc;
pub mod offline;
pub mod recorder;

pub use engine::{
    Answer, AnswerError, Chunk, ConfigError, CourseContext, Engine, Material, Question,
};
pub use gemini::{GeminiClient, GeminiConfig};
pub use offline::OfflineAnswerer;

use aula_api::chatbot_service_server::ChatbotServiceServer;
use aula_runtime::{
    spec::{CHATBOT, INSIGHTS},
    ServiceContext, ServiceDef,
};
use futures::future::BoxFuture;
use tonic::service::Routes;

/// The chatbot service, for `aula up`, the `chatbot` binary and tests. No migrations: the
/// interactions live in insights.
pub fn service() -> ServiceDef {
    ServiceDef {
        spec: CHATBOT,
        migrations: None,
        build,
    }
}

fn build(ctx: ServiceContext) -> BoxFuture<'static, anyhow::Result<Routes>> {
    Box::pin(async move {
        // A bad GEMINI_* value fails start-up with a message naming the variable.
        let engine = Engine::from_env(&|k| ctx.settings().env.get(k).map(str::to_string))?;
        tracing::info!(mode = engine.mode(), model = %engine.model(), "chatbot engine ready");
        let insights = ctx.peer(&INSIGHTS)?;
        let recorder = recorder::Recorder::start(&ctx, insights.clone());
        Ok(Routes::new(ChatbotServiceServer::new(
            grpc::ChatbotGrpc::new(engine, insights, recorder, ctx.metrics().clone()),
        )))
    })
}
