//! notificacoes owns each user's notifications: it stores what other services send (once per
//! idempotency key, so outbox retries never duplicate), lists them newest first, marks them as
//! read and streams new ones live to connected clients, whichever replica stored them.
//!
//! # Layout
//! - [`domain`]: notifications, their validation, and [`domain::NotificacoesError`], the one
//!   error type of the service.
//! - [`store`]: all SQL (one dialect SQLite and PostgreSQL both accept).
//! - [`grpc`]: the `NotificacoesService` edge: protobuf <-> domain, and what kind of failure
//!   each error is (the runtime maps it to a status).
//! - [`fanout`]: live delivery to subscribers: an in-process broadcast, fed on PostgreSQL by
//!   LISTEN/NOTIFY so that every replica hears about every notification.
//! - [`streams`]: the bounds on open subscriptions, per user and in total.

pub mod domain;
pub mod fanout;
pub mod grpc;
pub mod store;
pub mod streams;

use aula_api::notificacoes_service_server::NotificacoesServiceServer;
use aula_runtime::{spec::NOTIFICACOES, BuildFuture, ServiceContext, ServiceDef};
use tonic::service::Routes;

/// The notificacoes service, for `aula up`, the `notificacoes` binary and tests.
pub fn service() -> ServiceDef {
    ServiceDef {
        spec: NOTIFICACOES,
        migrations: Some(aula_runtime::migrations!()),
        build,
    }
}

/// Builds the routes and starts the fan-out.
fn build(ctx: ServiceContext) -> BuildFuture {
    Box::pin(async move {
        let store = store::Store::new(ctx.db().clone());
        let fanout = fanout::Fanout::start(&ctx, store.clone()).await?;
        // AULA_MAX_MESSAGE_SIZE, both ways (tonic would encode answers of any size).
        let max = ctx.settings().limits.max_message_bytes;
        Ok(Routes::new(
            NotificacoesServiceServer::new(grpc::NotificacoesGrpc::new(ctx, store, fanout))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        ))
    })
}
