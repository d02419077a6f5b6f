//! The `ChatbotService` edge: protobuf <-> [`crate::engine`] types, the caller's deadline, the
//! one [`AnswerError`] -> [`Status`] mapping, the `aula_chatbot_questions_total` counter, and
//! `RegisterMetrics` forwarded to insights.

use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use aula_api::{
    chatbot_service_server::ChatbotService, insights_service_client::InsightsServiceClient, limits,
    ChatbotDuvidaChunk, ChatbotDuvidaRequest, ChatbotDuvidaResponse, Empty, MaterialItem,
    RegisterMetricsRequest, RegisterMetricsResponse, StatusResponse,
};
use aula_runtime::{
    auth,
    error::{Kind, ServiceError},
    fields::{self, InvalidField},
    ids::UserId,
    peers::PeerChannel,
};
use futures::stream::{BoxStream, Stream, StreamExt};
use tonic::{metadata::MetadataMap, Code, Request, Response, Status};

use crate::domain::{Answer, AnswerError, Chunk, CourseContext, Material, Question};
use crate::engine::Engine;
use crate::metrics::ChatbotMetrics;
use crate::recorder::{Interaction, Recorder};

/// The counter of questions, by `mode` (gemini/offline) and `outcome` (ok/error).
pub const QUESTIONS_METRIC: &str = "aula_chatbot_questions_total";

pub struct ChatbotGrpc {
    engine: Engine,
    insights: PeerChannel,
    recorder: Recorder,
    metrics: ChatbotMetrics,
}

impl ChatbotGrpc {
    pub fn new(
        engine: Engine,
        insights: PeerChannel,
        recorder: Recorder,
        metrics: ChatbotMetrics,
    ) -> Self {
        ChatbotGrpc {
            engine,
            insights,
            recorder,
            metrics,
        }
    }

    /// A question starting now, to be settled once.
    fn outcome(&self, asker: Asker) -> Outcome {
        Outcome {
            id: new_interaction_id(),
            asker,
            mode: self.engine.mode(),
            model: self.engine.model().to_string(),
            started: Instant::now(),
            recorder: self.recorder.clone(),
            metrics: self.metrics.clone(),
        }
    }

    fn status_message(&self) -> String {
        match &self.engine {
            Engine::Offline(_) => {
                "Chatbot em modo offline (BM25 sobre o material do curso)".to_string()
            }
            Engine::Gemini(g) => format!("Chatbot em modo Gemini ({})", g.model()),
        }
    }
}

impl ServiceError for AnswerError {
    fn kind(&self) -> Kind<'_> {
        match self {
            AnswerError::Invalid { .. } => Kind::Invalid,
            AnswerError::Quota { .. } => Kind::Refused(Code::ResourceExhausted),
            AnswerError::Blocked { .. } => Kind::Refused(Code::FailedPrecondition),
            AnswerError::Timeout | AnswerError::Deadline => Kind::Refused(Code::DeadlineExceeded),
            AnswerError::Unavailable { .. } | AnswerError::CircuitOpen => Kind::Dependency {
                name: "gemini",
                code: Code::Unavailable,
            },
        }
    }
}

// The status of an [`AnswerError`], through the runtime's one mapping. Display texts never
// carry the API key.
aula_runtime::status_from!(AnswerError);

/// The caller's deadline, from the `grpc-timeout` header, brought forward by a margin so the
/// error travels back before the caller (and tonic's own timeout, which answers CANCELLED) gives
/// up: an eighth of the budget, at most 250ms.
pub fn deadline_of(metadata: &MetadataMap) -> Option<Instant> {
    let timeout =
        aula_runtime::peers::parse_grpc_timeout(metadata.get("grpc-timeout")?.to_str().ok()?)?;
    let margin = (timeout / 8).min(Duration::from_millis(250));
    Some(Instant::now() + (timeout - margin))
}

/// Who asked, for the interaction record.
struct Asker {
    id_curso: String,
    id_usuario: String,
}

impl Asker {
    /// insights records only ids it accepts: an `id_usuario` must be one (the course's id is
    /// checked with the rest of the grounding).
    fn check(&self) -> Result<(), AnswerError> {
        UserId::parse_optional(&self.id_usuario)?;
        Ok(())
    }
}

fn to_question(req: ChatbotDuvidaRequest) -> (Question, Asker) {
    let has_course = !req.id_curso.trim().is_empty()
        || !req.nome_curso.trim().is_empty()
        || !req.descricao_curso.trim().is_empty()
        || !req.material.is_empty();
    let asker = Asker {
        id_curso: req.id_curso.trim().to_string(),
        id_usuario: req.id_usuario.trim().to_string(),
    };
    let course = has_course.then(|| CourseContext {
        id: req.id_curso.trim().to_string(),
        nome: req.nome_curso,
        descricao: req.descricao_curso,
        material: req
            .material
            .into_iter()
            .map(
                |MaterialItem {
                     titulo,
                     descricao,
                     tipo,
                 }| Material {
                    titulo,
                    descricao,
                    tipo,
                },
            )
            .collect(),
    });
    let question = Question {
        aula_contexto: req.aula_contexto,
        duvida: req.duvida,
        course,
    };
    (question, asker)
}

/// A fresh interaction id: a random UUID (v4).
pub fn new_interaction_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn tokens(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn to_response(a: Answer, id: String) -> ChatbotDuvidaResponse {
    ChatbotDuvidaResponse {
        resposta: a.text,
        modelo: a.model,
        id_interacao: id,
        tokens_entrada: tokens(a.tokens_in),
        tokens_saida: tokens(a.tokens_out),
        offline: a.offline,
    }
}

fn to_chunk(c: Chunk, id: &str) -> ChatbotDuvidaChunk {
    ChatbotDuvidaChunk {
        texto: c.text,
        r#final: c.is_final,
        modelo: c.model,
        id_interacao: id.to_string(),
        tokens_entrada: tokens(c.tokens_in),
        tokens_saida: tokens(c.tokens_out),
    }
}

/// One question in flight: when it settles, counts it and queues its record for insights.
/// Not recorded (only counted): bad input, as nothing was asked of a model. Questions asked
/// outside a course (no `id_curso`) are recorded without one: insights counts them in its
/// totals, not in any course's statistics.
struct Outcome {
    id: String,
    asker: Asker,
    mode: &'static str,
    model: String,
    started: Instant,
    recorder: Recorder,
    metrics: ChatbotMetrics,
}

impl Outcome {
    fn settle(self, result: Result<(), &AnswerError>) {
        let ok = result.is_ok();
        self.metrics.question(self.mode, ok);
        if matches!(result, Err(AnswerError::Invalid { .. })) {
            return;
        }
        self.recorder.record(Interaction {
            id_interacao: self.id,
            id_curso: self.asker.id_curso,
            id_usuario: self.asker.id_usuario,
            latencia_ms: i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX),
            modelo: self.model,
            sucesso: ok,
        });
    }
}

/// A streamed answer (tonic polls it outside the handler), settled exactly once: on the
/// final chunk, on an error, or, if the caller goes away first, when dropped (as an error).
struct AnswerStream {
    inner: BoxStream<'static, Result<Chunk, AnswerError>>,
    id: String,
    outcome: Option<Outcome>,
    done: bool,
}

impl Stream for AnswerStream {
    type Item = Result<ChatbotDuvidaChunk, Status>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let item = match this.inner.poll_next_unpin(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        let (settled, relayed) = match item {
            Some(Ok(chunk)) => {
                let settled = chunk.is_final.then_some(Ok(()));
                (settled, Some(Ok(to_chunk(chunk, &this.id))))
            }
            Some(Err(e)) => {
                this.done = true;
                let status = Status::from(e.clone());
                (Some(Err(e)), Some(Err(status)))
            }
            None if this.outcome.is_none() => {
                this.done = true;
                (None, None)
            }
            None => {
                this.done = true;
                let e = AnswerError::Unavailable {
                    detail: "the answer ended without a final chunk".into(),
                };
                let status = Status::from(e.clone());
                (Some(Err(e)), Some(Err(status)))
            }
        };
        if let Some(result) = settled {
            if let Some(o) = this.outcome.take() {
                o.settle(result.as_ref().map(|_| ()));
            }
        }
        Poll::Ready(relayed)
    }
}

impl Drop for AnswerStream {
    fn drop(&mut self) {
        if let Some(o) = self.outcome.take() {
            let cancelled = AnswerError::Unavailable {
                detail: "the caller went away before the answer ended".into(),
            };
            o.settle(Err(&cancelled));
        }
    }
}

#[tonic::async_trait]
impl ChatbotService for ChatbotGrpc {
    async fn get_status(&self, _: Request<Empty>) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(StatusResponse {
            modo: self.engine.mode().to_string(),
            ..aula_runtime::spec::CHATBOT.status(self.status_message(), &[])
        }))
    }

    async fn resolve_duvida(
        &self,
        mut request: Request<ChatbotDuvidaRequest>,
    ) -> Result<Response<ChatbotDuvidaResponse>, Status> {
        auth::own_user(&mut request, |r| &mut r.id_usuario)?;
        let deadline = deadline_of(request.metadata());
        let (question, asker) = to_question(request.into_inner());
        let outcome = self.outcome(asker);
        let id = outcome.id.clone();
        if let Err(e) = outcome.asker.check() {
            outcome.settle(Err(&e));
            return Err(e.into());
        }
        match self.engine.answer(&question, deadline).await {
            Ok(answer) => {
                outcome.settle(Ok(()));
                Ok(Response::new(to_response(answer, id)))
            }
            Err(e) => {
                outcome.settle(Err(&e));
                Err(e.into())
            }
        }
    }

    type ResolveDuvidaStreamStream = BoxStream<'static, Result<ChatbotDuvidaChunk, Status>>;

    async fn resolve_duvida_stream(
        &self,
        mut request: Request<ChatbotDuvidaRequest>,
    ) -> Result<Response<Self::ResolveDuvidaStreamStream>, Status> {
        auth::own_user(&mut request, |r| &mut r.id_usuario)?;
        let deadline = deadline_of(request.metadata());
        let (question, asker) = to_question(request.into_inner());
        let outcome = self.outcome(asker);
        if let Err(e) = outcome.asker.check() {
            outcome.settle(Err(&e));
            return Err(e.into());
        }
        let stream = AnswerStream {
            id: outcome.id.clone(),
            inner: self.engine.answer_stream(&question, deadline),
            outcome: Some(outcome),
            done: false,
        };
        Ok(Response::new(stream.boxed()))
    }

    async fn register_metrics(
        &self,
        request: Request<RegisterMetricsRequest>,
    ) -> Result<Response<RegisterMetricsResponse>, Status> {
        let id = fields::required_text(
            "id_interacao",
            &request.into_inner().id_interacao,
            limits::INTERACTION_ID_CHARS,
        )?;
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(InvalidField::new(
                "id_interacao",
                format!(
                    "must be letters, digits, '-' or '_' (got {})",
                    fields::quote(&id)
                ),
            )
            .into());
        }
        let reply = InsightsServiceClient::new(self.insights.clone())
            .register_metrics(RegisterMetricsRequest {
                id_interacao: id.clone(),
            })
            .await
            .map_err(|s| Status::from(self.insights.error(s)))?
            .into_inner();
        let message = if reply.message.is_empty() {
            format!("Métricas da interação {id} registradas no insights")
        } else {
            reply.message
        };
        Ok(Response::new(RegisterMetricsResponse {
            message,
            id_interacao: id,
            insights_servico: reply.insights_servico,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_leave_a_margin() {
        let mut md = MetadataMap::new();
        assert_eq!(deadline_of(&md), None);
        md.insert("grpc-timeout", "2S".parse().unwrap());
        let d = deadline_of(&md).unwrap();
        let left = d.saturating_duration_since(Instant::now());
        assert!(left <= Duration::from_millis(1750), "{left:?}");
        assert!(left > Duration::from_millis(1500), "{left:?}");
    }

    #[test]
    fn errors_map_to_codes() {
        let cases = [
            (
                AnswerError::Invalid {
                    field: "duvida",
                    reason: "must not be empty".into(),
                },
                Code::InvalidArgument,
                "duvida: must not be empty",
            ),
            (
                AnswerError::Quota { retry_after: None },
                Code::ResourceExhausted,
                "quota",
            ),
            (
                AnswerError::Blocked {
                    reason: "SAFETY".into(),
                },
                Code::FailedPrecondition,
                "SAFETY",
            ),
            (AnswerError::Timeout, Code::DeadlineExceeded, "deadline"),
            (
                AnswerError::Unavailable {
                    detail: "HTTP 500".into(),
                },
                Code::Unavailable,
                "gemini: ",
            ),
            (AnswerError::CircuitOpen, Code::Unavailable, "gemini: "),
        ];
        for (e, code, needle) in cases {
            let s = Status::from(e.clone());
            assert_eq!(s.code(), code, "{e:?}");
            assert!(s.message().contains(needle), "{s:?}");
        }
    }

    #[test]
    fn interaction_ids_are_uuid_shaped_and_fresh() {
        let a = new_interaction_id();
        let b = new_interaction_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_eq!(a.matches('-').count(), 4);
    }

    #[test]
    fn course_context_only_when_given() {
        let (q, asker) = to_question(ChatbotDuvidaRequest {
            duvida: "o quê?".into(),
            ..Default::default()
        });
        assert!(q.course.is_none());
        assert_eq!(asker.id_curso, "");
        let (q, asker) = to_question(ChatbotDuvidaRequest {
            duvida: "o quê?".into(),
            id_curso: " 7 ".into(),
            id_usuario: "3".into(),
            material: vec![MaterialItem {
                titulo: "t".into(),
                descricao: "d".into(),
                tipo: "video".into(),
            }],
            ..Default::default()
        });
        let course = q.course.unwrap();
        assert_eq!(course.id, "7");
        assert_eq!(course.material[0].titulo, "t");
        assert_eq!(
            (asker.id_curso.as_str(), asker.id_usuario.as_str()),
            ("7", "3")
        );
    }
}
