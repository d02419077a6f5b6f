//! How other services deliver to notificacoes through their outbox (cursos' notifications,
//! cpar's notices and reminders): the [`Courier`] of notificacoes' API. It lives here, with the
//! service whose API it calls, so that the runtime's outbox knows no service's API and the
//! callers share one adapter instead of each writing its own.
//!
//! A caller starts `Outbox::start(&ctx, Notificacoes::new(&ctx)?)` and enqueues [`Message`]s;
//! notificacoes stores each idempotency key once, which is what makes the outbox's retries
//! harmless.

use aula_api::{
    notificacoes_service_client::NotificacoesServiceClient, NotifyScheduleRequest,
    SendNotificationRequest,
};
use aula_runtime::{
    outbox::{Courier, Failure},
    peers::PeerChannel,
    spec::NOTIFICACOES,
    ServiceContext,
};
use serde::{Deserialize, Serialize};

/// An outbox delivering to notificacoes.
pub type Outbox = aula_runtime::outbox::Outbox<Notificacoes>;
/// The outcome of an immediate attempt at delivering to notificacoes.
pub type Delivery = aula_runtime::outbox::Delivery<Sent>;

/// What to deliver: one RPC of notificacoes each.
///
/// This is the JSON in the outbox rows of every database that has them (`{"tipo":
/// "notification", ...}`): renaming a variant or a field strands rows already stored, which
/// would then be dead letters. Add variants or optional fields instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tipo", rename_all = "snake_case")]
pub enum Message {
    /// `NotificacoesService.SendNotification`.
    Notification {
        id_usuario: String,
        message: String,
        /// Who sends it; empty means the sending service.
        origem: String,
    },
    /// `NotificacoesService.NotifySchedule`.
    Schedule {
        id_agendamento: String,
        id_usuario: String,
        message: String,
    },
}

/// What notificacoes answered to a delivery.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The stored notification's id (empty for `NotifySchedule`, which does not answer it).
    pub id_notificacao: String,
    /// notificacoes' own words.
    pub status: String,
}

/// Delivers [`Message`]s to notificacoes over the service's peer channel.
pub struct Notificacoes {
    peer: PeerChannel,
    client: NotificacoesServiceClient<PeerChannel>,
    /// The sending service's name, for notifications that name no `origem`.
    origem: &'static str,
}

impl Notificacoes {
    /// The courier of the service `ctx` runs, to its notificacoes peer (`NOTIFICACOES_ADDR`).
    pub fn new(ctx: &ServiceContext) -> anyhow::Result<Self> {
        let peer = ctx.peer(&NOTIFICACOES)?;
        Ok(Self {
            client: NotificacoesServiceClient::new(peer.clone()),
            peer,
            origem: ctx.settings().spec.name,
        })
    }
}

impl Courier for Notificacoes {
    type Message = Message;
    type Receipt = Sent;

    fn receiver(&self) -> &'static str {
        NOTIFICACOES.name
    }

    fn is_known_down(&self) -> bool {
        self.peer.is_known_down()
    }

    async fn deliver(&self, key: &str, message: Message) -> Result<Sent, Failure> {
        let mut client = self.client.clone();
        let chave_idempotencia = key.to_string();
        match message {
            Message::Notification {
                id_usuario,
                message,
                origem,
            } => {
                let origem = if origem.is_empty() {
                    self.origem.to_string()
                } else {
                    origem
                };
                let r = client
                    .send_notification(SendNotificationRequest {
                        id_usuario,
                        message,
                        chave_idempotencia,
                        origem,
                    })
                    .await?
                    .into_inner();
                Ok(Sent {
                    id_notificacao: r.id_notificacao,
                    status: r.message,
                })
            }
            Message::Schedule {
                id_agendamento,
                id_usuario,
                message,
            } => {
                let r = client
                    .notify_schedule(NotifyScheduleRequest {
                        id_agendamento,
                        id_usuario,
                        message,
                        chave_idempotencia,
                    })
                    .await?
                    .into_inner();
                Ok(Sent {
                    id_notificacao: String::new(),
                    status: r.message,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows written before the outbox was generic (runtime outbox.rs, 2026-12-04) read as the
    /// same messages: the stored format did not change.
    #[test]
    fn rows_stored_before_read_as_the_same_messages() {
        let stored = [
            (
                r#"{"tipo":"notification","id_usuario":"7","message":"Aula amanhã","origem":""}"#,
                Message::Notification {
                    id_usuario: "7".into(),
                    message: "Aula amanhã".into(),
                    origem: String::new(),
                },
            ),
            (
                r#"{"tipo":"schedule","id_agendamento":"3","id_usuario":"2","message":"x"}"#,
                Message::Schedule {
                    id_agendamento: "3".into(),
                    id_usuario: "2".into(),
                    message: "x".into(),
                },
            ),
        ];
        for (json, message) in stored {
            assert_eq!(serde_json::from_str::<Message>(json).unwrap(), message);
            assert_eq!(serde_json::to_string(&message).unwrap(), json);
        }
    }
}
