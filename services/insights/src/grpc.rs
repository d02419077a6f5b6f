//! The gRPC edge of insights: protobuf <-> domain, and what kind of failure each
//! [`InsightsError`] is (the runtime maps it to a status).

use crate::metrics::InsightsMetrics;
use crate::{
    domain::{parse_interaction_id, InsightsError, Interaction},
    store::Store,
};
use aula_api::{
    insights_service_server::InsightsService, CourseInsights, Empty, GetCourseInsightsRequest,
    RecordInteractionRequest, RecordInteractionResponse, RegisterMetricsRequest,
    RegisterMetricsResponse, StatusResponse,
};
use aula_runtime::{
    auth,
    error::{Kind, ServiceError},
    ids::CourseId,
    recent::Recent,
};
use std::time::Duration;
use tonic::{Request, Response, Status};

impl ServiceError for InsightsError {
    fn kind(&self) -> Kind<'_> {
        match self {
            InsightsError::Invalid(_) => Kind::Invalid,
            InsightsError::Storage(e) => Kind::Storage(e),
        }
    }
}
aula_runtime::status_from!(InsightsError);

/// How old the counts in a write's answer may be. Every `RegisterMetrics` answers with the
/// status, and counting scans the whole interactions table: for it the counts are loaded at
/// most this often, and the interactions it registers itself are added in between (anything
/// else shows at the next load). `GetStatus` counts afresh.
pub const STATUS_TTL: Duration = Duration::from_secs(10);

/// `services.InsightsService`.
pub struct InsightsGrpc {
    store: Store,
    /// (interactions, distinct courses), at most [`STATUS_TTL`] old.
    counts: Recent<(i64, i64)>,
    metrics: InsightsMetrics,
}

impl InsightsGrpc {
    pub fn new(store: Store, metrics: InsightsMetrics) -> Self {
        Self {
            store,
            counts: Recent::new(STATUS_TTL),
            metrics,
        }
    }

    /// The status with fresh counts (`GetStatus`), or with the cached ones (what a write
    /// answers with: no scan per write).
    async fn status(&self, fresh: bool) -> Result<StatusResponse, InsightsError> {
        let (total, courses) = if fresh {
            self.store.counts().await?
        } else {
            self.counts.get(|| self.store.counts()).await?
        };
        let message = format!("Insights: {total} interações registradas");
        let counts = [("interacoes", total), ("cursos", courses)];
        Ok(aula_runtime::spec::INSIGHTS.status(message, &counts))
    }
}

fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

#[tonic::async_trait]
impl InsightsService for InsightsGrpc {
    async fn get_status(&self, _: Request<Empty>) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(self.status(true).await?))
    }

    async fn register_metrics(
        &self,
        request: Request<RegisterMetricsRequest>,
    ) -> Result<Response<RegisterMetricsResponse>, Status> {
        let id = parse_interaction_id(&request.into_inner().id_interacao)?;
        if self
            .store
            .register(&id)
            .await
            .map_err(InsightsError::from)?
        {
            self.counts.update(|(total, _)| *total += 1);
            self.metrics.interactions_recorded.increment(1);
        }
        Ok(Response::new(RegisterMetricsResponse {
            message: format!("Métricas registradas para a interação {id}"),
            id_interacao: id,
            insights_servico: Some(self.status(false).await?),
        }))
    }

    async fn record_interaction(
        &self,
        request: Request<RecordInteractionRequest>,
    ) -> Result<Response<RecordInteractionResponse>, Status> {
        let r = auth::own_message(request, |r| &mut r.id_usuario)?;
        let interaction = Interaction::parse(
            &r.id_interacao,
            &r.id_curso,
            &r.id_usuario,
            r.latencia_ms,
            &r.modelo,
            r.sucesso,
        )?;
        let registrada = self
            .store
            .record(&interaction)
            .await
            .map_err(InsightsError::from)?;
        if registrada {
            self.metrics.interactions_recorded.increment(1);
        }
        Ok(Response::new(RecordInteractionResponse { registrada }))
    }

    async fn get_course_insights(
        &self,
        request: Request<GetCourseInsightsRequest>,
    ) -> Result<Response<CourseInsights>, Status> {
        let id_curso = CourseId::parse(&request.into_inner().id_curso)?;
        let i = self
            .store
            .course(id_curso.get())
            .await
            .map_err(InsightsError::from)?;
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
