//! The gRPC edge of cpar: protobuf <-> domain, and what kind of failure each [`CparError`] is
//! (the runtime maps it to a status).

use crate::{
    domain::{CparError, NewSchedule, Schedule},
    store::Store,
};
use aula_api::{
    cpar_service_server::CparService, limits, CancelScheduleRequest, CreateScheduleRequest, Empty,
    GetScheduleRequest, ListSchedulesRequest, ListSchedulesResponse, NotifyScheduleRequest,
    NotifyScheduleResponse, StatusResponse,
};
use aula_runtime::{
    auth,
    db::now_ms,
    error::{Kind, ServiceError},
    fields::{self, InvalidField},
    ids::{parse_id, UserId},
    paging::Page,
};
use notificacoes::courier::{Delivery, Outbox, Sent};
use std::time::Duration;
use tonic::{Request, Response, Status};

/// How long NotifySchedule waits for notificacoes before answering `pendente`.
const DELIVER_NOW: Duration = Duration::from_millis(1500);

impl ServiceError for CparError {
    fn kind(&self) -> Kind<'_> {
        match self {
            CparError::Invalid(_) => Kind::Invalid,
            CparError::NotFound(_) => Kind::NotFound,
            CparError::Storage(e) => Kind::Storage(e),
        }
    }
}
aula_runtime::status_from!(CparError);

/// `services.CPARService`.
pub struct CparGrpc {
    store: Store,
    outbox: Outbox,
}

impl CparGrpc {
    pub fn new(store: Store, outbox: Outbox) -> Self {
        Self { store, outbox }
    }

    async fn status(&self) -> Result<StatusResponse, CparError> {
        let (total, booked) = self.store.counts().await?;
        let pending = self.outbox.pending().await?;
        let message = format!("CPAR: {total} agendamentos, {booked} ativos");
        let counts = [
            ("agendamentos", total),
            ("agendados", booked),
            ("notificacoes_pendentes", pending),
        ];
        Ok(aula_runtime::spec::CPAR.status(message, &counts))
    }

    async fn find(&self, id: &str) -> Result<Schedule, CparError> {
        let id = parse_id("id_agendamento", id)?;
        self.store.get(id).await?.ok_or(CparError::NotFound(id))
    }

    /// The appointment the request's `id` names, once the caller is known to act on its owner's data (the
    /// owner, or staff): checked before anything is read out or changed.
    async fn owned<T>(
        &self,
        request: &Request<T>,
        id: impl Fn(&T) -> &String,
    ) -> Result<Schedule, Status> {
        let s = self.find(id(request.get_ref())).await?;
        auth::may_act_on(request, UserId::from_stored(s.id_usuario))?;
        Ok(s)
    }
}

fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

fn millis(t: &prost_types::Timestamp) -> Result<i64, InvalidField> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(InvalidField::new("inicio", "not a valid timestamp"));
    }
    t.seconds
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(i64::from(t.nanos / 1_000_000)))
        .ok_or_else(|| InvalidField::new("inicio", "out of range"))
}

fn to_proto(s: &Schedule) -> aula_api::Schedule {
    aula_api::Schedule {
        id_agendamento: s.id.to_string(),
        id_usuario: s.id_usuario.to_string(),
        titulo: s.titulo.clone(),
        inicio: Some(timestamp(s.inicio_ms)),
        duracao_minutos: s.duracao_minutos,
        estado: s.estado.clone(),
        lembrete_enviado: s.lembrete_enviado,
    }
}

#[tonic::async_trait]
impl CparService for CparGrpc {
    async fn get_status(&self, _: Request<Empty>) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(self.status().await?))
    }

    async fn notify_schedule(
        &self,
        request: Request<NotifyScheduleRequest>,
    ) -> Result<Response<NotifyScheduleResponse>, Status> {
        let r = request.get_ref();
        // The other fields are what cpar itself sets when it delivers to notificacoes; they
        // are ignored here, but bounded like everything that arrives.
        fields::bounded("message", &r.message, limits::NOTIFICATION_MESSAGE_CHARS)?;
        fields::bounded(
            "chave_idempotencia",
            &r.chave_idempotencia,
            limits::IDEMPOTENCY_KEY_CHARS,
        )?;
        UserId::parse_optional(&r.id_usuario)?;
        let s = self.owned(&request, |r| &r.id_agendamento).await?;
        let row = self
            .store
            .enqueue_notice(&self.outbox, &s)
            .await
            .map_err(CparError::from)?;
        let servico = |message: String| StatusResponse {
            message,
            servico: "notificacoes".into(),
            ..Default::default()
        };
        let (message, status, pendente) = match self.outbox.deliver_now(row, DELIVER_NOW).await {
            Delivery::Delivered(Sent { status, .. }) => (
                format!(
                    "Notificação do agendamento {} enviada para o usuário {}",
                    s.id, s.id_usuario
                ),
                servico(status),
                false,
            ),
            Delivery::Pending { reason } => (
                format!(
                    "Notificação do agendamento {} registrada; será entregue ao usuário {} quando o serviço de notificações responder",
                    s.id, s.id_usuario
                ),
                servico(reason),
                true,
            ),
        };
        Ok(Response::new(NotifyScheduleResponse {
            message,
            id_agendamento: s.id.to_string(),
            notificacao_servico: Some(status),
            pendente,
        }))
    }

    async fn create_schedule(
        &self,
        mut request: Request<CreateScheduleRequest>,
    ) -> Result<Response<aula_api::Schedule>, Status> {
        auth::own_user(&mut request, |r| &mut r.id_usuario)?;
        let r = request.into_inner();
        let inicio = r.inicio.as_ref().map(millis).transpose()?;
        let new = NewSchedule::parse(
            &r.id_usuario,
            &r.titulo,
            inicio,
            r.duracao_minutos,
            now_ms(),
        )?;
        let s = self.store.create(&new).await.map_err(CparError::from)?;
        Ok(Response::new(to_proto(&s)))
    }

    async fn get_schedule(
        &self,
        request: Request<GetScheduleRequest>,
    ) -> Result<Response<aula_api::Schedule>, Status> {
        let s = self.owned(&request, |r| &r.id_agendamento).await?;
        Ok(Response::new(to_proto(&s)))
    }

    async fn list_schedules(
        &self,
        mut request: Request<ListSchedulesRequest>,
    ) -> Result<Response<ListSchedulesResponse>, Status> {
        auth::own_user(&mut request, |r| &mut r.id_usuario)?;
        let r = request.into_inner();
        let id_usuario = UserId::parse(&r.id_usuario)?.get();
        let page = Page::parse(r.page_size, &r.page_token)?;
        let (items, next_page_token) = self
            .store
            .list(id_usuario, page)
            .await
            .map_err(CparError::from)?;
        Ok(Response::new(ListSchedulesResponse {
            agendamentos: items.iter().map(to_proto).collect(),
            next_page_token,
        }))
    }

    async fn cancel_schedule(
        &self,
        request: Request<CancelScheduleRequest>,
    ) -> Result<Response<aula_api::Schedule>, Status> {
        let id = self.owned(&request, |r| &r.id_agendamento).await?.id;
        let s = self
            .store
            .cancel(id)
            .await
            .map_err(CparError::from)?
            .ok_or(CparError::NotFound(id))?;
        Ok(Response::new(to_proto(&s)))
    }
}
