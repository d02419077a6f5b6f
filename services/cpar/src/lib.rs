//! cpar owns appointments (office hours): students book them, cancel them and are notified
//! about them. Notices and reminders reach notificacoes through the runtime's transactional
//! outbox, so an outage of notificacoes delays them and loses none.
//!
//! # Layout
//! - [`domain`]: appointments, their validation, the texts users read, and
//!   [`domain::CparError`], the one error type of the service.
//! - [`store`]: all SQL (one dialect SQLite and PostgreSQL both accept), including the
//!   reminder claim and its outbox row in one transaction.
//! - [`grpc`]: the `CPARService` edge: protobuf <-> domain, and what kind of failure each
//!   error is (the runtime maps it to a status).
//! - [`reminders`]: the worker sending one reminder per appointment shortly before it starts.

pub mod domain;
pub mod grpc;
pub mod reminders;
pub mod store;

use aula_api::cpar_service_server::CparServiceServer;
use aula_runtime::{
    outbox::Outbox,
    spec::{CPAR, NOTIFICACOES},
    BuildFuture, ServiceContext, ServiceDef,
};
use tonic::service::Routes;

/// The cpar service, for `aula up`, the `cpar` binary and tests.
pub fn service() -> ServiceDef {
    ServiceDef {
        spec: CPAR,
        migrations: Some(aula_runtime::migrations!(outbox)),
        build,
    }
}

/// Builds the routes and starts the outbox and the reminder worker.
fn build(ctx: ServiceContext) -> BuildFuture {
    Box::pin(async move {
        let store = store::Store::new(ctx.db().clone());
        let outbox = Outbox::start(&ctx, ctx.peer(&NOTIFICACOES)?).await?;
        reminders::start(&ctx, store.clone(), outbox.clone())?;
        // AULA_MAX_MESSAGE_SIZE, both ways (tonic would encode answers of any size).
        let max = ctx.settings().limits.max_message_bytes;
        Ok(Routes::new(
            CparServiceServer::new(grpc::CparGrpc::new(store, outbox))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        ))
    })
}
