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
//! - [`metrics`]: what the service counts (registered handles).

pub mod domain;
pub mod grpc;
pub mod metrics;
pub mod reminders;
pub mod store;

use aula_api::cpar_service_server::CparServiceServer;
use aula_runtime::db::Released;
use aula_runtime::{spec::CPAR, BuildFuture, ServiceContext, ServiceDef};
use notificacoes::courier::{Notificacoes, Outbox};

/// Version 1 as first released also inserted the demo rows, now in `demo.sql` ([`Released`]).
const RELEASED: &[Released] = &[Released {
    version: 1,
    sqlite: (
        "e9253e2a5d960433b5d977ade155d4d3ed55d7ed8a5b1a4299b44545c45a86715f4a49671d41d593a2b260c02bfe603b",
        "590f4e53a2f809c993446ffaaf2bc94e11fb0b5885149a84653e900efef845fed833d6b7181ced2830341cdfb21e95fc",
    ),
    postgres: (
        "2fb4315d9abae7b10ff493cf4f5a21dba197a92df23ae6cf5d535b6b12d33a4c9966afd37a3330faf5269278b1cc3110",
        "3aad5033a3f98e83cf74f5b157fdfa02517af70470216c5751805f8efb08b41ba0762ead379363d6ec047bc6549d59d5",
    ),
}];

/// The cpar service, for `aula up`, the `cpar` binary and tests.
pub fn service() -> ServiceDef {
    ServiceDef {
        spec: CPAR,
        migrations: Some(aula_runtime::migrations!(outbox, released = RELEASED)),
        demo: Some(aula_runtime::demo!(identities = ["agendamentos"])),
        build,
    }
}

/// Builds the routes and starts the outbox and the reminder worker.
fn build(ctx: ServiceContext) -> BuildFuture {
    Box::pin(async move {
        let store = store::Store::new(ctx.db().clone());
        let outbox = Outbox::start(&ctx, Notificacoes::new(&ctx)?).await?;
        let metrics = metrics::CparMetrics::register(ctx.metrics());
        reminders::start(&ctx, store.clone(), outbox.clone(), metrics)?;
        Ok(aula_runtime::routes!(
            ctx,
            CparServiceServer::new(grpc::CparGrpc::new(store, outbox))
        ))
    })
}
