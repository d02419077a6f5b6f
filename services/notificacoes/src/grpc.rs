//! The gRPC edge of notificacoes: protobuf <-> domain, and the one mapping of [`Error`] to a
//! status.

use crate::{
    fanout::Fanout, origem_label, parse_id, parse_message, store::Store, Error, NewNotification,
    Notification,
};
use aula_api::{
    notificacoes_service_server::{NotificacoesService, NotificacoesServiceServer},
    Empty, ListNotificationsRequest, ListNotificationsResponse, MarkAsReadRequest,
    MarkAsReadResponse, NotifyScheduleRequest, NotifyScheduleResponse, SendNotificationRequest,
    SendNotificationResponse, StatusResponse, SubscribeNotificationsRequest,
};
use aula_runtime::{paging::Page, ServiceContext};
use futures::{stream::BoxStream, StreamExt as _};
use std::collections::HashMap;
use tokio_stream::wrappers::{errors::BroadcastStreamRecvError, BroadcastStream};
use tonic::{service::Routes, Request, Response, Status};

/// The most ids one MarkAsRead may carry.
const MAX_MARK_IDS: usize = 1000;

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid { .. } => Status::invalid_argument(e.to_string()),
            Error::Storage(e) => aula_runtime::server::internal(e),
        }
    }
}

/// Builds the service's routes and starts its fan-out.
pub async fn build(ctx: ServiceContext) -> anyhow::Result<Routes> {
    let store = Store::new(ctx.db().pool.clone());
    let fanout = Fanout::start(&ctx, store.clone()).await?;
    Ok(Routes::new(NotificacoesServiceServer::new(Notificacoes {
        ctx,
        store,
        fanout,
    })))
}

struct Notificacoes {
    ctx: ServiceContext,
    store: Store,
    fanout: Fanout,
}

impl Notificacoes {
    async fn status(&self) -> Result<StatusResponse, Error> {
        let (total, unread) = self.store.counts().await?;
        Ok(StatusResponse {
            message: format!(
                "Serviço de Notificações ativo: {total} notificações, {unread} não lidas"
            ),
            servico: "notificacoes".into(),
            versao: env!("CARGO_PKG_VERSION").into(),
            contagens: HashMap::from([
                ("notificacoes".to_string(), total),
                ("nao_lidas".to_string(), unread),
            ]),
            modo: String::new(),
        })
    }

    async fn store(&self, new: NewNotification) -> Result<Notification, Error> {
        let (n, created) = self.store.insert(&new).await?;
        if created {
            metrics::counter!("aula_notifications_stored_total", "origem" => origem_label(&n.origem))
                .increment(1);
            self.fanout.stored(&n);
        }
        Ok(n)
    }
}

fn key(chave: &str) -> Option<String> {
    let chave = chave.trim();
    (!chave.is_empty()).then(|| chave.to_string())
}

fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

fn to_proto(n: &Notification) -> aula_api::Notification {
    aula_api::Notification {
        id: n.id.to_string(),
        id_usuario: n.id_usuario.to_string(),
        message: n.message.clone(),
        lida: n.lida,
        criada_em: Some(timestamp(n.criada_ms)),
        origem: n.origem.clone(),
    }
}

#[tonic::async_trait]
impl NotificacoesService for Notificacoes {
    async fn get_status(&self, _: Request<Empty>) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(self.status().await?))
    }

    async fn send_notification(
        &self,
        request: Request<SendNotificationRequest>,
    ) -> Result<Response<SendNotificationResponse>, Status> {
        let r = request.into_inner();
        let id_usuario = parse_id("id_usuario", &r.id_usuario)?;
        let message = parse_message(&r.message)?;
        let origem = match r.origem.trim() {
            "" => "api".to_string(),
            o => o.to_string(),
        };
        let n = self
            .store(NewNotification {
                id_usuario,
                message,
                origem,
                chave: key(&r.chave_idempotencia),
            })
            .await?;
        Ok(Response::new(SendNotificationResponse {
            message: format!("Notificação enviada para o usuário {id_usuario}"),
            notificacao_servico: Some(self.status().await?),
            pendente: false,
            id_notificacao: n.id.to_string(),
        }))
    }

    async fn notify_schedule(
        &self,
        request: Request<NotifyScheduleRequest>,
    ) -> Result<Response<NotifyScheduleResponse>, Status> {
        let r = request.into_inner();
        let id_usuario = parse_id("id_usuario", &r.id_usuario)?;
        let id_agendamento = r.id_agendamento.trim().to_string();
        let message = if r.message.trim().is_empty() {
            parse_message(&format!("Atualização do agendamento {id_agendamento}"))?
        } else {
            parse_message(&r.message)?
        };
        self.store(NewNotification {
            id_usuario,
            message,
            origem: "cpar".into(),
            chave: key(&r.chave_idempotencia),
        })
        .await?;
        Ok(Response::new(NotifyScheduleResponse {
            message: format!(
                "Notificação do agendamento {id_agendamento} enviada para o usuário {id_usuario}"
            ),
            id_agendamento,
            notificacao_servico: Some(self.status().await?),
            pendente: false,
        }))
    }

    async fn list_notifications(
        &self,
        request: Request<ListNotificationsRequest>,
    ) -> Result<Response<ListNotificationsResponse>, Status> {
        let r = request.into_inner();
        let id_usuario = parse_id("id_usuario", &r.id_usuario)?;
        let page = Page::parse(r.page_size, &r.page_token)?;
        let (items, next_page_token) = self
            .store
            .list(id_usuario, r.unread_only, page)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(ListNotificationsResponse {
            notificacoes: items.iter().map(to_proto).collect(),
            next_page_token,
        }))
    }

    async fn mark_as_read(
        &self,
        request: Request<MarkAsReadRequest>,
    ) -> Result<Response<MarkAsReadResponse>, Status> {
        let r = request.into_inner();
        let id_usuario = parse_id("id_usuario", &r.id_usuario)?;
        if r.ids.len() > MAX_MARK_IDS {
            return Err(Status::invalid_argument("ids: at most 1000 per call"));
        }
        let mut ids = r
            .ids
            .iter()
            .map(|id| parse_id("ids", id))
            .collect::<Result<Vec<_>, _>>()?;
        ids.sort_unstable();
        ids.dedup();
        let marked = self
            .store
            .mark_read(id_usuario, &ids)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(MarkAsReadResponse {
            marcadas: marked as i32,
        }))
    }

    type SubscribeNotificationsStream = BoxStream<'static, Result<aula_api::Notification, Status>>;

    async fn subscribe_notifications(
        &self,
        request: Request<SubscribeNotificationsRequest>,
    ) -> Result<Response<Self::SubscribeNotificationsStream>, Status> {
        let id_usuario = parse_id("id_usuario", &request.into_inner().id_usuario)?;
        let stream = BroadcastStream::new(self.fanout.subscribe())
            .filter_map(move |item| {
                futures::future::ready(match item {
                    Ok(n) if n.id_usuario == id_usuario => Some(Ok(to_proto(&n))),
                    Ok(_) => None,
                    Err(BroadcastStreamRecvError::Lagged(skipped)) => {
                        tracing::warn!(
                            id_usuario,
                            skipped,
                            "a slow subscriber skipped notifications"
                        );
                        None
                    }
                })
            })
            // Ends with the service's drain, so open streams do not hold up a shutdown.
            .take_until(self.ctx.draining())
            .boxed();
        Ok(Response::new(stream))
    }
}
