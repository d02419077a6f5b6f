//! The seed's REST endpoints, each translated to one gRPC call. Handlers only parse the request,
//! call, and shape the JSON ([`crate::json`]); every failure is an [`ApiError`].

use crate::{
    error::ApiError,
    extract::{segment, QueryFields, QueryOf, Segment},
    json,
    state::AppState,
};
use aula_api::{
    AskQuestionRequest, ChatbotDuvidaRequest, Empty, GetCourseMediaRequest, GetUserCoursesRequest,
    NotifyScheduleRequest, RegisterMetricsRequest, SendNotificationRequest,
};
use axum::{
    extract::{rejection::BytesRejection, State},
    response::{IntoResponse, Response},
    routing::{get, post, MethodRouter},
    Json, Router,
};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::future::Future;

type Reply = Result<Response, ApiError>;

/// A JSON answer, serialized here while the gRPC response its shape borrows from is alive.
fn ok(shape: impl Serialize) -> Reply {
    Ok(Json(shape).into_response())
}

/// The notification `GET /cursos/enviar_notificacao/{id}` sends when no `?message=` is given.
pub const DEFAULT_NOTIFICATION: &str = "Você tem uma nova notificação do serviço de cursos.";

/// The REST routes (health and readiness are added by [`crate::server`]).
pub fn api() -> Router<AppState> {
    Router::new()
        .route("/cursos", get(cursos_status))
        .route(
            "/cursos/ver_inscricoes_do_usuario/{id}",
            get(ver_inscricoes_do_usuario),
        )
        .route(
            "/cursos/consumir_midia_curso/{id}",
            get(consumir_midia_curso),
        )
        .route("/cursos/tirar_duvida/{id}", post(tirar_duvida))
        // The seed changed state on GET; its clients keep GET, new ones should POST.
        .route(
            "/cursos/enviar_notificacao/{id}",
            get(enviar_notificacao).post(enviar_notificacao_post),
        )
        .route("/chatbot", get(chatbot_status))
        .route("/chatbot/duvida", post(chatbot_duvida))
        .route(
            "/chatbot/registrar_metricas/{id}",
            get_or_post("id_interacao", register_metrics),
        )
        .route("/cpar", get(cpar_status))
        .route(
            "/cpar/notificar_agendamento/{id}",
            get_or_post("id_agendamento", notify_schedule),
        )
        .route("/notificacoes", get(notificacoes_status))
        .route("/insights", get(insights_status))
        .route("/midia_conteudo", get(midia_status))
        .route("/midia_conteudo/{id}", get(midia_get))
}

// ------------------------------------------------------------------ request bodies

/// The JSON object a POST carries; Flask's `request.get_json()` plus its field checks.
struct JsonBody(Map<String, Value>);

/// A request body as read: over `GATEWAY_MAX_BODY` is 413, anything unreadable 400.
type RawBody = Result<Bytes, BytesRejection>;

fn read(s: &AppState, body: RawBody) -> Result<Bytes, ApiError> {
    body.map_err(|e| ApiError::body(e, s.max_body_bytes))
}

impl JsonBody {
    /// A body that may be empty (the POST forms of the seed's GET routes): empty is `{}`.
    fn parse_optional(body: &Bytes) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Map::new()));
        }
        Self::parse(body)
    }

    fn parse(body: &Bytes) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadRequest(
                "JSON body missing: send an object with the fields aula_contexto and duvida".into(),
            ));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::BadRequest(
                "the body must be a JSON object".into(),
            )),
            Err(e) => Err(ApiError::BadRequest(format!("invalid JSON body: {e}"))),
        }
    }

    /// A text field that must be present and not blank.
    fn required(&self, field: &str) -> Result<String, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Err(ApiError::BadRequest(format!(
                "{field}: required field missing"
            ))),
            Some(Value::String(s)) if s.trim().is_empty() => Err(ApiError::BadRequest(format!(
                "{field}: required field is blank"
            ))),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(ApiError::BadRequest(format!("{field}: must be a string"))),
        }
    }

    /// A text (or integer) field that may be absent.
    fn optional(&self, field: &str) -> Result<String, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) if n.is_u64() => Ok(n.to_string()),
            Some(_) => Err(ApiError::BadRequest(format!(
                "{field}: must be a string or a positive integer"
            ))),
        }
    }
}

/// A seed GET route `{id}` that changes state, and its POST form (an empty or `{}` JSON body),
/// which new clients should use: both `call` with the id, named `field` in errors.
fn get_or_post<F, Fut>(field: &'static str, call: F) -> MethodRouter<AppState>
where
    F: Fn(AppState, String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let post_call = call.clone();
    get(move |State(s): State<AppState>, id: Segment| {
        let call = call.clone();
        async move { call(s, segment(field, id)?).await }
    })
    .post(
        move |State(s): State<AppState>, id: Segment, body: RawBody| {
            let call = post_call.clone();
            async move {
                let id = segment(field, id)?;
                JsonBody::parse_optional(&read(&s, body)?)?;
                call(s, id).await
            }
        },
    )
}

/// `backends.<service>().<rpc>(request)`, its failure an [`ApiError`] naming the service.
macro_rules! call {
    ($s:expr, $service:ident.$rpc:ident($request:expr)) => {
        $s.backends
            .$service()
            .$rpc($request)
            .await
            .map_err(|e| ApiError::grpc(stringify!($service), e))?
    };
}

/// A question waits for the chatbot's answer, far longer than `AULA_PEER_TIMEOUT`.
fn answer_budget<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(aula_runtime::peers::ANSWER_BUDGET);
    request
}

// ------------------------------------------------------------------ cursos

async fn cursos_status(State(s): State<AppState>) -> Reply {
    let r = call!(s, cursos.get_status(Empty {}));
    ok(json::status(r.get_ref()))
}

async fn ver_inscricoes_do_usuario(State(s): State<AppState>, id: Segment) -> Reply {
    let id = segment("id_usuario", id)?;
    let r = call!(
        s,
        cursos.get_user_courses(GetUserCoursesRequest { id_usuario: id })
    );
    ok(json::user_courses(r.get_ref()))
}

async fn consumir_midia_curso(State(s): State<AppState>, id: Segment) -> Reply {
    let id = segment("id_curso", id)?;
    let r = call!(
        s,
        cursos.get_course_media(GetCourseMediaRequest { id_curso: id })
    );
    ok(json::course_media(r.get_ref()))
}

async fn tirar_duvida(State(s): State<AppState>, id: Segment, body: RawBody) -> Reply {
    let id = segment("id_curso", id)?;
    let body = JsonBody::parse(&read(&s, body)?)?;
    let request = AskQuestionRequest {
        id_curso: id,
        aula_contexto: body.required("aula_contexto")?,
        duvida: body.required("duvida")?,
        id_usuario: body.optional("id_usuario")?,
    };
    let r = call!(s, cursos.ask_question(answer_budget(request)));
    ok(json::answer(r.get_ref()))
}

#[derive(Deserialize)]
struct NotificationQuery {
    message: Option<String>,
}

impl QueryFields for NotificationQuery {
    const FIELDS: &'static str = "message";
}

async fn enviar_notificacao(
    State(s): State<AppState>,
    id: Segment,
    QueryOf(q): QueryOf<NotificationQuery>,
) -> Reply {
    let id = segment("id_usuario", id)?;
    send_notification(s, id, q.message).await
}

/// `POST /cursos/enviar_notificacao/{id}` with `{"message": "..."}` (optional, as `?message=`).
async fn enviar_notificacao_post(State(s): State<AppState>, id: Segment, body: RawBody) -> Reply {
    let id = segment("id_usuario", id)?;
    let body = JsonBody::parse_optional(&read(&s, body)?)?;
    let message = body.optional("message")?;
    send_notification(s, id, Some(message)).await
}

async fn send_notification(s: AppState, id: String, message: Option<String>) -> Reply {
    let message = message
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_NOTIFICATION.to_string());
    let r = call!(
        s,
        cursos.send_notification(SendNotificationRequest {
            id_usuario: id,
            message,
            origem: "gateway".into(),
            ..Default::default()
        })
    );
    ok(json::notification(r.get_ref()))
}

// ------------------------------------------------------------------ chatbot

async fn chatbot_status(State(s): State<AppState>) -> Reply {
    let r = call!(s, chatbot.get_status(Empty {}));
    ok(json::status(r.get_ref()))
}

async fn chatbot_duvida(State(s): State<AppState>, body: RawBody) -> Reply {
    let body = JsonBody::parse(&read(&s, body)?)?;
    let request = ChatbotDuvidaRequest {
        aula_contexto: body.required("aula_contexto")?,
        duvida: body.required("duvida")?,
        id_curso: body.optional("id_curso")?,
        id_usuario: body.optional("id_usuario")?,
        ..Default::default()
    };
    let r = call!(s, chatbot.resolve_duvida(answer_budget(request)));
    ok(json::chatbot_answer(r.get_ref()))
}

async fn register_metrics(s: AppState, id: String) -> Reply {
    let r = call!(
        s,
        chatbot.register_metrics(RegisterMetricsRequest { id_interacao: id })
    );
    ok(json::registered_metrics(r.get_ref()))
}

// ------------------------------------------------------------------ cpar, notificacoes, insights, midia

async fn cpar_status(State(s): State<AppState>) -> Reply {
    let r = call!(s, cpar.get_status(Empty {}));
    ok(json::status(r.get_ref()))
}

async fn notify_schedule(s: AppState, id: String) -> Reply {
    let r = call!(
        s,
        cpar.notify_schedule(NotifyScheduleRequest {
            id_agendamento: id,
            ..Default::default()
        })
    );
    ok(json::schedule_notified(r.get_ref()))
}

async fn notificacoes_status(State(s): State<AppState>) -> Reply {
    let r = call!(s, notificacoes.get_status(Empty {}));
    ok(json::status(r.get_ref()))
}

async fn insights_status(State(s): State<AppState>) -> Reply {
    let r = call!(s, insights.get_status(Empty {}));
    ok(json::status(r.get_ref()))
}

async fn midia_status(State(s): State<AppState>) -> Reply {
    let r = call!(s, midia.get_status(Empty {}));
    ok(json::status(r.get_ref()))
}

async fn midia_get(State(s): State<AppState>, id: Segment) -> Reply {
    let id = segment("id_curso", id)?;
    let r = call!(s, midia.get_media(GetCourseMediaRequest { id_curso: id }));
    ok(json::course_media(r.get_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        match JsonBody::parse(&Bytes::from(body.to_string()))
            .and_then(|b| b.required("aula_contexto").and(b.required("duvida")))
        {
            Err(e) => e.to_string(),
            Ok(_) => "ok".into(),
        }
    }

    #[test]
    fn bodies_are_checked_like_the_seed() {
        assert!(err("").contains("missing"));
        assert!(err("{").contains("invalid JSON"));
        assert!(err("[]").contains("object"));
        assert_eq!(
            err(r#"{"duvida":"x"}"#),
            "aula_contexto: required field missing"
        );
        assert_eq!(
            err(r#"{"aula_contexto":"a","duvida":" "}"#),
            "duvida: required field is blank"
        );
        assert_eq!(
            err(r#"{"aula_contexto":1,"duvida":"x"}"#),
            "aula_contexto: must be a string"
        );
        assert_eq!(err(r#"{"aula_contexto":"a","duvida":"x"}"#), "ok");
    }
}
