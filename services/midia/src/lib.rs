//! midia: the media of each course (videos, slides, texts), in order. It owns the media
//! catalogue only, not the course catalogue (that is cursos): a course id with no media is an
//! empty list, not an error. cursos calls `GetMedia` for `GetCourseMedia` and to ground the
//! chatbot's answers in the course material.
//!
//! # Layout
//! - [`domain`]: media items, validated new media ([`domain::NewMedia::parse`]), the readable
//!   summary of a course's media, and [`domain::MidiaError`].
//! - [`store`]: all SQL (one dialect SQLite and PostgreSQL both accept).
//! - [`grpc`]: the `MidiaConteudoService` edge: protobuf <-> domain and the one
//!   error -> `tonic::Status` mapping.

pub mod domain;
pub mod grpc;
pub mod store;

use aula_api::midia_conteudo_service_server::MidiaConteudoServiceServer;
use aula_runtime::{spec::MIDIA, BuildFuture, ServiceContext, ServiceDef};
use tonic::service::Routes;

/// The midia service, for `aula up`, the `midia` binary and tests.
pub fn service() -> ServiceDef {
    ServiceDef {
        spec: MIDIA,
        migrations: Some(aula_runtime::migrations!()),
        build,
    }
}

fn build(ctx: ServiceContext) -> BuildFuture {
    Box::pin(async move {
        let store = store::Store::new(ctx.db().clone());
        // AULA_MAX_MESSAGE_SIZE, both ways (tonic would encode answers of any size).
        let max = ctx.settings().limits.max_message_bytes;
        Ok(Routes::new(
            MidiaConteudoServiceServer::new(grpc::MidiaGrpc::new(store))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        ))
    })
}
