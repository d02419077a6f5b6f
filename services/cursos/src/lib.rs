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
//! - [`metrics`]: what the service counts (registered handles).

pub mod domain;
pub mod grpc;
pub mod metrics;
pub mod store;

use aula_api::{
    chatbot_service_client::ChatbotServiceClient, cursos_service_server::CursosServiceServer,
    midia_conteudo_service_client::MidiaConteudoServiceClient,
};
use aula_runtime::db::Released;
use aula_runtime::{
    spec::{CHATBOT, CURSOS, MIDIA},
    BuildFuture, ServiceContext, ServiceDef,
};
use notificacoes::courier::{Notificacoes, Outbox};

/// Version 1 as first released also inserted the demo rows, now in `demo.sql` ([`Released`]).
const RELEASED: &[Released] = &[Released {
    version: 1,
    sqlite: (
        "70fa6abe9f298968429d3276c267ec032dc853dc057d4f378f065555c0a13946d8ef0789fce2b3b1f4487f176dd4c2ce",
        "6d0ab8413a22b640a70a19a16b9f74b3365b353ae5b997d166898e3460a36e6045096ae0abac61b5560be04ce5b5909e",
    ),
    postgres: (
        "cc0b84f6b6af0d0ca1ffd7c3441e693aef0db9745a4e3c22e24951ae97e10ee2b070b56beac2c6a8c34a6fae19660cdf",
        "4b295c8df6da9f72e2035c59bdda6af6674d6f48f0229d416abe22766df764f48916da309f07587668b137b515349b0a",
    ),
}];

/// The cursos service, for `aula up`, the `cursos` binary and tests.
pub fn service() -> ServiceDef {
    ServiceDef {
        spec: CURSOS,
        migrations: Some(aula_runtime::migrations!(outbox, released = RELEASED)),
        demo: Some(aula_runtime::demo!(identities = ["cursos"])),
        build,
    }
}

fn build(ctx: ServiceContext) -> BuildFuture {
    Box::pin(async move {
        let outbox = Outbox::start(&ctx, Notificacoes::new(&ctx)?).await?;
        let service = grpc::CursosGrpc {
            store: store::Store::new(ctx.db().clone()),
            outbox,
            midia: MidiaConteudoServiceClient::new(ctx.peer(&MIDIA)?),
            chatbot: ChatbotServiceClient::new(ctx.peer(&CHATBOT)?),
            status: aula_runtime::recent::Recent::new(grpc::STATUS_TTL),
            metrics: metrics::CursosMetrics::register(ctx.metrics()),
        };
        Ok(aula_runtime::routes!(
            ctx,
            CursosServiceServer::new(service)
        ))
    })
}
