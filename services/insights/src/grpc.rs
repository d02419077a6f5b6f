//! The gRPC edge of insights: protobuf <-> domain, and the one mapping of [`Error`] to a status.

use crate::{parse_id, parse_interaction_id, store::Store, Error, Interaction};
use aula_api::{
    insights_service_server::{InsightsService, InsightsServiceServer},
    CourseInsights, Empty, GetCourseInsightsRequest, RecordInteractionRequest,
    RecordInteractionResponse, RegisterMetricsRequest, RegisterMetricsResponse, StatusResponse,
};
use aula_runtime::ServiceContext;
use std::collections::HashMap;
use tonic::{service::Routes, Request, Response, Status};

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid { .. } => Status::invalid_argument(e.to_string()),
            Error::Storage(e) => aula_runtime::server::internal(e),
        }
    }
}

pub async fn build(ctx: ServiceContext) -> anyhow::Result<Routes> {
    let store = Store::new(ctx.db().pool.clone());
    Ok(Routes::new(InsightsServiceServer::new(Insights { store })))
}

struct Insights {
    store: Store,
}

impl Insights {
    async fn status(&self) -> Result<StatusResponse, Error> {
        let (total, courses) = self.store.counts().await?;
        Ok(StatusResponse {
            message: format!("Insights: {total} interações registradas"),
            servico: "insights".into(),
            versao: env!("CARGO_PKG_VERSION").into(),
            contagens: HashMap::from([
                ("interacoes".to_string(), total),
                ("cursos".to_string(), courses),
            ]),
            modo: String::new(),
        })
    }
}

fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

#[tonic::async_trait]
impl InsightsService for Insights {
    async fn get_status(&self, _: Request<Empty>) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(self.status().await?))
    }

    async fn register_metrics(
        &self,
        request: Request<RegisterMetricsRequest>,
    ) -> Result<Response<RegisterMetricsResponse>, Status> {
        let id = parse_interaction_id(&request.into_inner().id_interacao)?;
        if self.store.register(&id).await.map_err(Error::from)? {
            metrics::counter!("aula_interactions_recorded_total").increment(1);
        }
        Ok(Response::new(RegisterMetricsResponse {
            message: format!("Métricas registradas para a interação {id}"),
            id_interacao: id,
            insights_servico: Some(self.status().await?),
        }))
    }

    async fn record_interaction(
        &self,
        request: Request<RecordInteractionRequest>,
    ) -> Result<Response<RecordInteractionResponse>, Status> {
        let r = request.into_inner();
        let interaction = Interaction::parse(
            &r.id_interacao,
            &r.id_curso,
            &r.id_usuario,
            r.latencia_ms,
            &r.modelo,
            r.sucesso,
        )?;
        let registrada = self.store.record(&interaction).await.map_err(Error::from)?;
        if registrada {
            metrics::counter!("aula_interactions_recorded_total").increment(1);
        }
        Ok(Response::new(RecordInteractionResponse { registrada }))
    }

    async fn get_course_insights(
        &self,
        request: Request<GetCourseInsightsRequest>,
    ) -> Result<Response<CourseInsights>, Status> {
        let id_curso = parse_id("id_curso", &request.into_inner().id_curso)?;
        let i = self.store.course(id_curso).await.map_err(Error::from)?;
        Ok(Response::new(CourseInsights {
            id_curso: i.id_curso.to_string(),
            total_perguntas: i.total_perguntas,
            latencia_media_ms: i.latencia_media_ms,
            taxa_sucesso: i.taxa_sucesso,
            usuarios_distintos: i.usuarios_distintos,
            perguntas_por_modelo: i.perguntas_por_modelo,
            ultima_pergunta: i.ultima_pergunta_ms.map(timestamp),
        }))
    }
}
