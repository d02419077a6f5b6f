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
use aula_runtime::db::Released;
use aula_runtime::{spec::MIDIA, BuildFuture, ServiceContext, ServiceDef};

/// Version 1 as first released also inserted the demo rows, now in `demo.sql` ([`Released`]).
const RELEASED: &[Released] = &[Released {
    version: 1,
    sqlite: (
        "718b98a3eb28e2ac681ad921b568a12bc5149e4477adc1dc4cfd41d959e25bba91465ff98aa055c74ef99ff55b6f9c70",
        "e664e849ab44ffb4d5fa9553548ce9392f60d5daec2333d6c3e4f7b31ac6e6471b7c57fa9384427f54e455e024de4bdf",
    ),
    postgres: (
        "bb73b312678a4a6d8159810263c92ba34bb1cfba40c16b1e30565a4604081de6180990d6934911f7bcad8d04d4ef8c76",
        "9104c4691f2d9566cea9aa32b86d9e4627c9a6ed67e19ebab0919e734adfd559832d29d57cc5f8095475037fdb1e81b0",
    ),
}];

/// The midia service, for `aula up`, the `midia` binary and tests.
pub fn service() -> ServiceDef {
    ServiceDef {
        spec: MIDIA,
        migrations: Some(aula_runtime::migrations!(released = RELEASED)),
        demo: Some(aula_runtime::demo!(identities = ["midias"])),
        build,
    }
}

fn build(ctx: ServiceContext) -> BuildFuture {
    Box::pin(async move {
        let store = store::Store::new(ctx.db().clone());
        Ok(aula_runtime::routes!(
            ctx,
            MidiaConteudoServiceServer::new(grpc::MidiaGrpc::new(store))
        ))
    })
}
