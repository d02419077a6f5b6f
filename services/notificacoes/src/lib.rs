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
//! - [`metrics`]: what the service counts (registered handles).
//! - [`courier`]: for notificacoes' callers (cursos, cpar): how their outboxes deliver to it.

pub mod courier;
pub mod domain;
pub mod fanout;
pub mod grpc;
pub mod metrics;
pub mod store;
pub mod streams;

use aula_api::notificacoes_service_server::NotificacoesServiceServer;
use aula_runtime::db::Released;
use aula_runtime::{spec::NOTIFICACOES, BuildFuture, ServiceContext, ServiceDef};

/// Version 1 as first released also inserted the demo rows, now in `demo.sql` ([`Released`]).
const RELEASED: &[Released] = &[Released {
    version: 1,
    sqlite: (
        "de605f2fb0a29b05445a45c4a9976c2e4273a7124fabbc0d1ce22a9b86ce8d0f906dec96f65a24ca1ee77569f5380b37",
        "9bd421412a6ca5520e710b044618d0daf6520527990c63923963b7663b03dd136f965f901bd02b065a352c7b39e89f9f",
    ),
    postgres: (
        "0b72bef7f815e7bdfa3c517c307c318681935db51b88130f4851d0af2793b6c7405f0e9f33f3ce8b9b7b692eea60f808",
        "c473229955949a91089472f74dc6d10f875801fdab997f0a4b68e461b42593b23cd70c163e42d3c6842a3069791507e8",
    ),
}];

/// The notificacoes service, for `aula up`, the `notificacoes` binary and tests.
pub fn service() -> ServiceDef {
    ServiceDef {
        spec: NOTIFICACOES,
        migrations: Some(aula_runtime::migrations!(released = RELEASED)),
        demo: Some(aula_runtime::demo!(identities = [])),
        build,
    }
}

/// Builds the routes and starts the fan-out.
fn build(ctx: ServiceContext) -> BuildFuture {
    Box::pin(async move {
        let store = store::Store::new(ctx.db().clone());
        let fanout = fanout::Fanout::start(&ctx, store.clone()).await?;
        Ok(aula_runtime::routes!(
            ctx,
            NotificacoesServiceServer::new(grpc::NotificacoesGrpc::new(ctx, store, fanout))
        ))
    })
}
