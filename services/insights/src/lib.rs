//! insights owns the record of every question the chatbot answered (course, user, latency,
//! model, outcome) and turns it into per-course statistics.
//!
//! # Layout
//! - [`domain`]: interactions and course statistics, their validation, and
//!   [`domain::InsightsError`], the one error type of the service.
//! - [`store`]: all SQL (one dialect SQLite and PostgreSQL both accept).
//! - [`grpc`]: the `InsightsService` edge: protobuf <-> domain, and what kind of failure each
//!   error is (the runtime maps it to a status).
//! - [`metrics`]: what the service counts (registered handles).

pub mod domain;
pub mod grpc;
pub mod metrics;
pub mod store;

use aula_api::insights_service_server::InsightsServiceServer;
use aula_runtime::{spec::INSIGHTS, BuildFuture, ServiceContext, ServiceDef};

/// The insights service, for `aula up`, the `insights` binary and tests.
pub fn service() -> ServiceDef {
    ServiceDef {
        spec: INSIGHTS,
        migrations: Some(aula_runtime::migrations!()),
        demo: None,
        build,
    }
}

fn build(ctx: ServiceContext) -> BuildFuture {
    Box::pin(async move {
        let store = store::Store::new(ctx.db().clone());
        let metrics = metrics::InsightsMetrics::register(ctx.metrics());
        let service = grpc::InsightsGrpc::new(store, metrics);
        Ok(aula_runtime::routes!(
            ctx,
            InsightsServiceServer::new(service)
        ))
    })
}
