//! The gRPC edge: protobuf <-> domain, the calls to midia and chatbot, and the one mapping
//! of [`CursosError`] to a status.

use crate::{
    domain::{self, Course, CourseId, CursosError, UserId},
    store::{Counts, Store},
};
use aula_api::limits;
use aula_api::{
    chatbot_service_client::ChatbotServiceClient, cursos_service_server::CursosService,
    midia_conteudo_service_client::MidiaConteudoServiceClient, AskQuestionRequest,
    AskQuestionResponse, ChatbotDuvidaRequest, Empty, EnrollRequest, EnrollResponse,
    GetCourseMediaRequest, GetCourseMediaResponse, GetCourseRequest, GetUserCoursesRequest,
    GetUserCoursesResponse, ListCoursesRequest, ListCoursesResponse, MaterialItem,
    SendNotificationRequest, SendNotificationResponse, StatusResponse, UnenrollRequest,
    UnenrollResponse,
};
use aula_runtime::{
    auth,
    error::{Kind, ServiceError},
    fields,
    paging::Page,
    peers::{PeerChannel, PeerError},
    recent::Recent,
    spec,
};
use notificacoes::courier::{Delivery, Message, Outbox, Sent};
use std::time::Duration;
use tonic::{Request, Response, Status};

/// How long `SendNotification` waits for notificacoes before answering "queued".
const DELIVER_NOW: Duration = Duration::from_millis(1500);

impl ServiceError for CursosError {
    fn kind(&self) -> Kind<'_> {
        match self {
            CursosError::Invalid(_) => Kind::Invalid,
            CursosError::CourseNotFound(_) => Kind::NotFound,
            CursosError::Peer(e) => Kind::Peer(e),
            CursosError::Storage(e) => Kind::Storage(e),
        }
    }
}
aula_runtime::status_from!(CursosError);

/// `services.CursosService`.
pub struct CursosGrpc {
    pub store: Store,
    pub outbox: Outbox,
    pub midia: MidiaConteudoServiceClient<PeerChannel>,
    pub chatbot: ChatbotServiceClient<PeerChannel>,
    /// GetStatus' answer, its counts at most [`STATUS_TTL`] old: monitors poll it far more
    /// often than courses and enrolments change. The whole message is kept, not only the
    /// counts, so that a call copies it (as the bare-tonic floor does) instead of formatting
    /// the text and hashing a new map on every call.
    pub status: Recent<StatusResponse>,
    pub metrics: crate::metrics::CursosMetrics,
}

/// How old GetStatus' counts may be.
pub const STATUS_TTL: Duration = Duration::from_secs(1);

/// The course's media as the chatbot's grounding, within the limits the chatbot accepts:
/// midia holds a course to them since they existed, but items stored before are clipped rather
/// than make every question on the course fail.
fn material(media: GetCourseMediaResponse) -> Vec<MaterialItem> {
    media
        .itens
        .into_iter()
        .take(limits::MEDIA_PER_COURSE)
        .map(|i| MaterialItem {
            titulo: fields::clip(&i.titulo, limits::MEDIA_TITLE_CHARS).to_string(),
            descricao: fields::clip(&i.descricao, limits::MEDIA_DESCRIPTION_CHARS).to_string(),
            tipo: fields::clip(&i.tipo, limits::MEDIA_KIND_CHARS).to_string(),
        })
        .collect()
}

/// GetStatus' answer for these counts.
fn status_response(counts: Counts, pendentes: i64) -> StatusResponse {
    let message = format!(
        "Serviço de cursos ativo: {} cursos, {} inscrições",
        counts.cursos, counts.inscricoes
    );
    let counts = [
        ("cursos", counts.cursos),
        ("inscricoes", counts.inscricoes),
        ("outbox_pendentes", pendentes),
    ];
    aula_runtime::spec::CURSOS.status(message, &counts)
}

fn to_proto(c: Course) -> aula_api::Course {
    aula_api::Course {
        // Course ids are small (a catalogue, not a log); the API's field is int32.
        id: i32::try_from(c.id).unwrap_or(i32::MAX),
        nome: c.nome,
        descricao: c.descricao,
        carga_horaria: c.carga_horaria,
        instrutor: c.instrutor,
        categoria: c.categoria,
    }
}

impl CursosGrpc {
    async fn media(&self, id: CourseId) -> Result<GetCourseMediaResponse, CursosError> {
        self.midia
            .clone()
            .get_media(GetCourseMediaRequest {
                id_curso: id.to_string(),
            })
            .await
            .map(Response::into_inner)
            .map_err(|s| PeerError::from_status(spec::MIDIA.name, s).into())
    }
}

#[tonic::async_trait]
impl CursosService for CursosGrpc {
    async fn get_status(&self, _: Request<Empty>) -> Result<Response<StatusResponse>, Status> {
        let status = self
            .status
            .get(|| async {
                let counts = self.store.counts().await?;
                Ok::<_, CursosError>(status_response(counts, self.outbox.pending().await?))
            })
            .await?;
        Ok(Response::new(status))
    }

    async fn get_user_courses(
        &self,
        request: Request<GetUserCoursesRequest>,
    ) -> Result<Response<GetUserCoursesResponse>, Status> {
        let (_, user) = auth::own_message_user(request, |r| &mut r.id_usuario)?;
        let courses = self
            .store
            .user_courses(user)
            .await
            .map_err(CursosError::from)?;
        Ok(Response::new(GetUserCoursesResponse {
            message: domain::user_courses_message(user, courses.len()),
            cursos_inscritos: courses.into_iter().map(to_proto).collect(),
        }))
    }

    async fn get_course_media(
        &self,
        request: Request<GetCourseMediaRequest>,
    ) -> Result<Response<GetCourseMediaResponse>, Status> {
        let id = CourseId::parse(&request.get_ref().id_curso)?;
        self.store.course(id).await?;
        Ok(Response::new(self.media(id).await?))
    }

    async fn ask_question(
        &self,
        request: Request<AskQuestionRequest>,
    ) -> Result<Response<AskQuestionResponse>, Status> {
        let r = auth::own_message(request, |r| &mut r.id_usuario)?;
        let id = CourseId::parse(&r.id_curso)?;
        let duvida = fields::required_text("duvida", &r.duvida, limits::QUESTION_CHARS)?;
        let aula_contexto = fields::bounded(
            "aula_contexto",
            &r.aula_contexto,
            limits::LESSON_CONTEXT_CHARS,
        )?;
        let user = UserId::parse_optional(&r.id_usuario)?;
        let course = self.store.course(id).await?;
        // The material grounds the answer; without midia the chatbot still answers from the
        // course's name and description.
        let material = match self.media(id).await {
            Ok(media) => material(media),
            Err(e) => {
                tracing::warn!(error = %e, id_curso = id.get(), "answering without the course material");
                Vec::new()
            }
        };
        let mut ask = Request::new(ChatbotDuvidaRequest {
            aula_contexto: aula_contexto.to_string(),
            duvida,
            id_curso: id.to_string(),
            nome_curso: fields::clip(&course.nome, limits::COURSE_NAME_CHARS).to_string(),
            descricao_curso: fields::clip(&course.descricao, limits::COURSE_DESCRIPTION_CHARS)
                .to_string(),
            material,
            id_usuario: user.map(|u| u.to_string()).unwrap_or_default(),
        });
        ask.set_timeout(aula_runtime::peers::ANSWER_BUDGET);
        let answer = self
            .chatbot
            .clone()
            .resolve_duvida(ask)
            .await
            .map_err(|s| CursosError::from(PeerError::from_status(spec::CHATBOT.name, s)))?
            .into_inner();
        Ok(Response::new(AskQuestionResponse {
            resposta: answer.resposta,
            modelo: answer.modelo,
            id_interacao: answer.id_interacao,
            offline: answer.offline,
        }))
    }

    async fn send_notification(
        &self,
        request: Request<SendNotificationRequest>,
    ) -> Result<Response<SendNotificationResponse>, Status> {
        let (r, user) = auth::own_message_user(request, |r| &mut r.id_usuario)?;
        // The limits are notificacoes' own: what is queued here must be accepted there.
        let message =
            fields::required_text("message", &r.message, limits::NOTIFICATION_MESSAGE_CHARS)?;
        let origem = fields::bounded("origem", &r.origem, limits::NOTIFICATION_ORIGIN_CHARS)?;
        let chave = fields::bounded(
            "chave_idempotencia",
            &r.chave_idempotencia,
            limits::IDEMPOTENCY_KEY_CHARS,
        )?;
        // A caller's idempotency key makes its retries one notification; otherwise each call
        // is a notification of its own.
        let key = match chave {
            "" => domain::fresh_key("notificacao"),
            k => k.to_string(),
        };
        let notice = Message::Notification {
            id_usuario: user.to_string(),
            message,
            origem: origem.to_string(),
        };
        let row = match self
            .store
            .queue_notification(&self.outbox, &key, &notice)
            .await
        {
            Ok(row) => row,
            // The same key is still waiting in the outbox: this is a retry of it.
            Err(e) if aula_runtime::db::is_unique_violation(&e) => {
                return Ok(Response::new(SendNotificationResponse {
                    message: format!(
                        "Notificação para o usuário {user} já estava na fila; será entregue assim que o serviço de notificações responder"
                    ),
                    notificacao_servico: None,
                    pendente: true,
                    id_notificacao: String::new(),
                }))
            }
            Err(e) => return Err(CursosError::from(e).into()),
        };
        Ok(Response::new(
            match self.outbox.deliver_now(row, DELIVER_NOW).await {
                Delivery::Delivered(Sent {
                    id_notificacao,
                    status,
                }) => SendNotificationResponse {
                    message: format!("Notificação enviada ao usuário {user}"),
                    notificacao_servico: Some(StatusResponse {
                        message: status,
                        servico: "notificacoes".into(),
                        ..Default::default()
                    }),
                    pendente: false,
                    id_notificacao,
                },
                Delivery::Pending { reason } => {
                    tracing::info!(%reason, "notification queued");
                    SendNotificationResponse {
                        message: format!(
                            "Notificação para o usuário {user} registrada e na fila: o serviço de notificações não respondeu agora; será entregue assim que possível"
                        ),
                        notificacao_servico: None,
                        pendente: true,
                        id_notificacao: String::new(),
                    }
                }
            },
        ))
    }

    async fn list_courses(
        &self,
        request: Request<ListCoursesRequest>,
    ) -> Result<Response<ListCoursesResponse>, Status> {
        let r = request.get_ref();
        let page = Page::parse(r.page_size, &r.page_token)?;
        let rows = self
            .store
            .courses(page.after, page.limit())
            .await
            .map_err(CursosError::from)?;
        let (rows, next_page_token) = page.finish(rows, |c| c.id);
        Ok(Response::new(ListCoursesResponse {
            cursos: rows.into_iter().map(to_proto).collect(),
            next_page_token,
        }))
    }

    async fn get_course(
        &self,
        request: Request<GetCourseRequest>,
    ) -> Result<Response<aula_api::Course>, Status> {
        let id = CourseId::parse(&request.get_ref().id_curso)?;
        Ok(Response::new(to_proto(self.store.course(id).await?)))
    }

    async fn enroll(
        &self,
        request: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let (r, user) = auth::own_message_user(request, |r| &mut r.id_usuario)?;
        let id = CourseId::parse(&r.id_curso)?;
        let enrolment = self.store.enroll(&self.outbox, user, id).await?;
        let message = if enrolment.nova {
            self.metrics.enrolments.increment(1);
            self.outbox.wake();
            format!("Usuário {user} inscrito no curso {}", enrolment.course.nome)
        } else {
            format!(
                "Usuário {user} já estava inscrito no curso {}",
                enrolment.course.nome
            )
        };
        Ok(Response::new(EnrollResponse {
            message,
            nova_inscricao: enrolment.nova,
            curso: Some(to_proto(enrolment.course)),
        }))
    }

    async fn unenroll(
        &self,
        request: Request<UnenrollRequest>,
    ) -> Result<Response<UnenrollResponse>, Status> {
        let (r, user) = auth::own_message_user(request, |r| &mut r.id_usuario)?;
        let id = CourseId::parse(&r.id_curso)?;
        let removida = self.store.unenroll(user, id).await?;
        Ok(Response::new(UnenrollResponse {
            message: if removida {
                format!("Inscrição do usuário {user} no curso {id} removida")
            } else {
                format!("Usuário {user} não estava inscrito no curso {id}")
            },
            removida,
        }))
    }
}
