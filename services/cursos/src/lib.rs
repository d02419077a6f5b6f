//! cursos: the course catalogue and who is enrolled in what. It is the seed's front door, so
//! it also reaches the services that own the rest: a course's media (midia), answers to
//! questions grounded in the course and its material (chatbot), and notifications
//! (notificacoes), which go through a transactional outbox so that none acknowledged is lost.
//!
//! # Layout
//! - [`domain`]: ids ("parse, don't validate"), courses, the user-facing texts, and
//!   [`domain::CursosError`], the one error type of the service.
//! - [`store`]: all SQL (one dialect SQLite and PostgreSQL both accept), including the
//!   enrolment transaction that enqueues its notice in the outbox.
//! - [`grpc`]: the `CursosService` edge: protobuf <-> domain, the calls to midia and chatbot,
//!   and the one `CursosError` -> `tonic::Status` mapping.

pub mod domain;
pub mod grpc;
pub mod store;

use aula_api::{
    chatbot_service_client::ChatbotServiceClient, cursos_service_server::CursosServiceServer,
    midia_conteudo_service_client::MidiaConteudoServiceClient,
};
use aula_runtime::{
    outbox::Outbox,
    spec::{CHATBOT, CURSOS, MIDIA, NOTIFICACOES},
    BuildFuture, ServiceContext, ServiceDef,
};
use tonic::service::Routes;

/// The cursos service, for `aula up`, the `cursos` binary and tests.
pub fn service() -> ServiceDef {
    ServiceDef {
        spec: CURSOS,
        migrations: Some(aula_runtime::migrations!(outbox)),
        build,
    }
}

fn build(ctx: ServiceContext) -> BuildFuture {
    Box::pin(async move {
        let outbox = Outbox::start(&ctx, ctx.peer(&NOTIFICACOES)?).await?;
        let service = grpc::CursosGrpc {
            store: store::Store::new(ctx.db().clone()),
            outbox,
            midia: MidiaConteudoServiceClient::new(ctx.peer(&MIDIA)?),
            chatbot: ChatbotServiceClient::new(ctx.peer(&CHATBOT)?),
            status: aula_runtime::recent::Recent::new(grpc::STATUS_TTL),
        };
        // AULA_MAX_MESSAGE_SIZE, both ways (tonic would encode answers of any size).
        let max = ctx.settings().limits.max_message_bytes;
        Ok(Routes::new(
            CursosServiceServer::new(service)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        ))
    })
}
