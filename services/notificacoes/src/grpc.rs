//! The gRPC edge of notificacoes: protobuf <-> domain, and what kind of failure each
//! [`NotificacoesError`] is (the runtime maps it to a status).

use crate::{
    domain::{
        parse_key, parse_message, parse_origem, NewNotification, NotificacoesError, Notification,
    },
    fanout::Fanout,
    store::Store,
};
use aula_api::{
    limits, notificacoes_service_server::NotificacoesService, Empty, ListNotificationsRequest,
    ListNotificationsResponse, MarkAsReadRequest, MarkAsReadResponse, NotifyScheduleRequest,
    NotifyScheduleResponse, SendNotificationRequest, SendNotificationResponse, StatusResponse,
    SubscribeNotificationsRequest,
};
use aula_runtime::{
    auth, deadline,
    error::{Kind, ServiceError},
    fields,
    ids::parse_id,
    paging::Page,
    recent::Recent,
    ServiceContext,
};
use futures::{stream::BoxStream, StreamExt as _};
use std::time::Duration;
use tokio_stream::wrappers::{errors::BroadcastStreamRecvError, BroadcastStream};
use tonic::{Request, Response, Status};

impl ServiceError for NotificacoesError {
    fn kind(&self) -> Kind<'_> {
        match self {
            NotificacoesError::Invalid(_) => Kind::Invalid,
            NotificacoesError::Storage(e) => Kind::Storage(e),
            NotificacoesError::TooManyStreams(_) => Kind::Refused(tonic::Code::ResourceExhausted),
        }
    }
}
aula_runtime::status_from!(NotificacoesError);

/// How old the counts in a status may be. Every `SendNotification` answers with the status;
/// reading the counts is one small query (the writes keep them, migration 0002), but one
/// more round trip to PostgreSQL per call: so they are loaded at most this often and kept
/// exact in between for this replica's own writes; what other replicas wrote shows at the
/// next load.
pub const STATUS_TTL: Duration = Duration::from_secs(1);

/// `services.NotificacoesService`.
pub struct NotificacoesGrpc {
    ctx: ServiceContext,
    store: Store,
    fanout: Fanout,
    /// (all notifications, unread ones), at most [`STATUS_TTL`] old.
    counts: Recent<(i64, i64)>,
    metrics: crate::metrics::NotificacoesMetrics,
}

impl NotificacoesGrpc {
    pub fn new(ctx: ServiceContext, store: Store, fanout: Fanout) -> Self {
        Self {
            metrics: crate::metrics::NotificacoesMetrics::register(ctx.metrics()),
            ctx,
            store,
            fanout,
            counts: Recent::new(STATUS_TTL),
        }
    }

    async fn status(&self) -> Result<StatusResponse, NotificacoesError> {
        let (total, unread) = self.counts.get(|| self.store.counts()).await?;
        let message =
            format!("Serviço de Notificações ativo: {total} notificações, {unread} não lidas");
        let counts = [("notificacoes", total), ("nao_lidas", unread)];
        Ok(aula_runtime::spec::NOTIFICACOES.status(message, &counts))
    }

    async fn store(&self, new: NewNotification) -> Result<Notification, NotificacoesError> {
        let (n, created) = self.store.insert(&new).await?;
        if created {
            self.counts.update(|(total, unread)| {
                *total += 1;
                *unread += 1;
            });
            self.metrics.stored(&n.origem);
            self.fanout.stored(&n);
        }
        Ok(n)
    }
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
impl NotificacoesService for NotificacoesGrpc {
    async fn get_status(&self, _: Request<Empty>) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(self.status().await?))
    }

    async fn send_notification(
        &self,
        request: Request<SendNotificationRequest>,
    ) -> Result<Response<SendNotificationResponse>, Status> {
        let (r, user) = auth::own_message_user(request, |r| &mut r.id_usuario)?;
        let message = parse_message(&r.message)?;
        let origem = parse_origem(&r.origem)?;
        let chave = parse_key(&r.chave_idempotencia)?;
        let n = self
            .store(NewNotification {
                id_usuario: user.get(),
                message,
                origem,
                chave,
            })
            .await?;
        Ok(Response::new(SendNotificationResponse {
            message: format!("Notificação enviada para o usuário {user}"),
            notificacao_servico: Some(self.status().await?),
            pendente: false,
            id_notificacao: n.id.to_string(),
        }))
    }

    async fn notify_schedule(
        &self,
        request: Request<NotifyScheduleRequest>,
    ) -> Result<Response<NotifyScheduleResponse>, Status> {
        let (r, user) = auth::own_message_user(request, |r| &mut r.id_usuario)?;
        let id_agendamento = parse_id("id_agendamento", &r.id_agendamento)?;
        let message = fields::bounded("message", &r.message, limits::NOTIFICATION_MESSAGE_CHARS)?;
        let message = if message.is_empty() {
            format!("Atualização do agendamento {id_agendamento}")
        } else {
            message.to_string()
        };
        let chave = parse_key(&r.chave_idempotencia)?;
        self.store(NewNotification {
            id_usuario: user.get(),
            message,
            origem: "cpar".into(),
            chave,
        })
        .await?;
        Ok(Response::new(NotifyScheduleResponse {
            message: format!(
                "Notificação do agendamento {id_agendamento} enviada para o usuário {user}"
            ),
            id_agendamento: id_agendamento.to_string(),
            notificacao_servico: Some(self.status().await?),
            pendente: false,
        }))
    }

    async fn list_notifications(
        &self,
        request: Request<ListNotificationsRequest>,
    ) -> Result<Response<ListNotificationsResponse>, Status> {
        let (r, user) = auth::own_message_user(request, |r| &mut r.id_usuario)?;
        let page = Page::parse(r.page_size, &r.page_token)?;
        let (items, next_page_token) = self
            .store
            .list(user.get(), r.unread_only, page)
            .await
            .map_err(NotificacoesError::from)?;
        Ok(Response::new(ListNotificationsResponse {
            notificacoes: items.iter().map(to_proto).collect(),
            next_page_token,
        }))
    }

    async fn mark_as_read(
        &self,
        request: Request<MarkAsReadRequest>,
    ) -> Result<Response<MarkAsReadResponse>, Status> {
        let (r, user) = auth::own_message_user(request, |r| &mut r.id_usuario)?;
        fields::count("ids", &r.ids, limits::MARK_AS_READ_IDS)?;
        let mut ids = r
            .ids
            .iter()
            .map(|id| parse_id("ids", id))
            .collect::<Result<Vec<_>, _>>()?;
        ids.sort_unstable();
        ids.dedup();
        let (marked, newly_read) = self
            .store
            .mark_read(user.get(), &ids)
            .await
            .map_err(NotificacoesError::from)?;
        self.counts
            .update(|(_, unread)| *unread -= newly_read as i64);
        Ok(Response::new(MarkAsReadResponse {
            marcadas: marked as i32,
        }))
    }

    type SubscribeNotificationsStream = BoxStream<'static, Result<aula_api::Notification, Status>>;

    async fn subscribe_notifications(
        &self,
        request: Request<SubscribeNotificationsRequest>,
    ) -> Result<Response<Self::SubscribeNotificationsStream>, Status> {
        let (_, user) = auth::own_message_user(request, |r| &mut r.id_usuario)?;
        let id_usuario = user.get();
        let (receiver, permit) = self
            .fanout
            .subscribe(id_usuario)
            .map_err(NotificacoesError::from)?;
        let stream = BroadcastStream::new(receiver)
            .filter_map(move |item| {
                // The stream's place among the open ones, given back when the stream is dropped.
                let _held = &permit;
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
            .take_until(self.ctx.draining());
        // And at the caller's deadline: DEADLINE_EXCEEDED, its place given back.
        Ok(Response::new(deadline::ends_at_deadline(stream)))
    }
}
