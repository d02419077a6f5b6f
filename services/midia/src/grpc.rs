//! The gRPC edge: protobuf <-> domain, and the one mapping of [`MidiaError`] to a status.

use crate::{
    domain::{self, AddMediaFields, CourseId, MidiaError, NewMedia},
    store::Store,
};
use aula_api::{
    midia_conteudo_service_server::MidiaConteudoService, AddMediaRequest, Empty,
    GetCourseMediaRequest, GetCourseMediaResponse, MediaItem, StatusResponse,
};
use aula_runtime::error::{Kind, ServiceError};
use tonic::{Code, Request, Response, Status};

impl ServiceError for MidiaError {
    fn kind(&self) -> Kind<'_> {
        match self {
            MidiaError::Invalid(_) => Kind::Invalid,
            MidiaError::CourseFull(_) => Kind::Refused(Code::FailedPrecondition),
            MidiaError::Storage(e) => Kind::Storage(e),
        }
    }
}
aula_runtime::status_from!(MidiaError);

/// `services.MidiaConteudoService`.
pub struct MidiaGrpc {
    store: Store,
}

impl MidiaGrpc {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn to_proto(item: domain::MediaItem) -> MediaItem {
    MediaItem {
        id: item.id,
        titulo: item.titulo,
        tipo: item.tipo,
        url: item.url,
        duracao_segundos: item.duracao_segundos,
        ordem: item.ordem,
        descricao: item.descricao,
        id_curso: item.id_curso.to_string(),
    }
}

#[tonic::async_trait]
impl MidiaConteudoService for MidiaGrpc {
    async fn get_status(&self, _: Request<Empty>) -> Result<Response<StatusResponse>, Status> {
        let counts = self.store.counts().await.map_err(MidiaError::from)?;
        let message = format!(
            "Serviço de mídia ativo: {} mídias de {} cursos",
            counts.midias, counts.cursos
        );
        let counts = [("midias", counts.midias), ("cursos", counts.cursos)];
        Ok(Response::new(
            aula_runtime::spec::MIDIA.status(message, &counts),
        ))
    }

    async fn get_media(
        &self,
        request: Request<GetCourseMediaRequest>,
    ) -> Result<Response<GetCourseMediaResponse>, Status> {
        let id_curso = CourseId::parse(&request.get_ref().id_curso)?;
        let items: Vec<domain::MediaItem> = self
            .store
            .list(id_curso)
            .await
            .map_err(MidiaError::from)?
            .into_iter()
            .map(domain::MediaItem::within_limits)
            .collect();
        Ok(Response::new(GetCourseMediaResponse {
            midia_curso: domain::summary(id_curso, &items),
            itens: items.into_iter().map(to_proto).collect(),
        }))
    }

    async fn add_media(
        &self,
        request: Request<AddMediaRequest>,
    ) -> Result<Response<MediaItem>, Status> {
        let r = request.get_ref();
        let new = NewMedia::parse(AddMediaFields {
            id_curso: &r.id_curso,
            titulo: &r.titulo,
            tipo: &r.tipo,
            url: &r.url,
            duracao_segundos: r.duracao_segundos,
            ordem: r.ordem,
            descricao: &r.descricao,
        })?;
        let item = self.store.add(&new).await?;
        tracing::info!(id = item.id, id_curso = item.id_curso, "media added");
        Ok(Response::new(to_proto(item)))
    }
}
