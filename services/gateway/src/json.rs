//! Protobuf messages as the JSON the seed's REST API returned: the seed's field names first,
//! the API's extensions beside them (empty extensions are left out, so old clients see the
//! shapes they know).

use aula_api::{
    AskQuestionResponse, ChatbotDuvidaResponse, Course, GetCourseMediaResponse,
    GetUserCoursesResponse, MediaItem, NotifyScheduleResponse, RegisterMetricsResponse,
    SendNotificationResponse, StatusResponse,
};
use serde_json::{json, Map, Value};

fn put_if(obj: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        obj.insert(key.into(), Value::String(value.into()));
    }
}

pub fn status(s: &StatusResponse) -> Value {
    let mut obj = Map::new();
    obj.insert("message".into(), Value::String(s.message.clone()));
    put_if(&mut obj, "servico", &s.servico);
    put_if(&mut obj, "versao", &s.versao);
    if !s.contagens.is_empty() {
        let counts: Map<String, Value> = s
            .contagens
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        obj.insert("contagens".into(), Value::Object(counts));
    }
    put_if(&mut obj, "modo", &s.modo);
    Value::Object(obj)
}

fn optional_status(s: &Option<StatusResponse>) -> Value {
    s.as_ref().map_or(Value::Null, status)
}

pub fn course(c: &Course) -> Value {
    json!({
        "id": c.id,
        "nome": c.nome,
        "descricao": c.descricao,
        "carga_horaria": c.carga_horaria,
        "instrutor": c.instrutor,
        "categoria": c.categoria,
    })
}

pub fn user_courses(r: &GetUserCoursesResponse) -> Value {
    json!({
        "message": r.message,
        "cursos_inscritos": r.cursos_inscritos.iter().map(course).collect::<Vec<_>>(),
    })
}

pub fn media_item(m: &MediaItem) -> Value {
    json!({
        "id": m.id,
        "titulo": m.titulo,
        "tipo": m.tipo,
        "url": m.url,
        "duracao_segundos": m.duracao_segundos,
        "ordem": m.ordem,
        "descricao": m.descricao,
        "id_curso": m.id_curso,
    })
}

pub fn course_media(r: &GetCourseMediaResponse) -> Value {
    json!({
        "midia_curso": r.midia_curso,
        "itens": r.itens.iter().map(media_item).collect::<Vec<_>>(),
    })
}

pub fn answer(r: &AskQuestionResponse) -> Value {
    json!({
        "resposta": r.resposta,
        "modelo": r.modelo,
        "id_interacao": r.id_interacao,
        "offline": r.offline,
    })
}

pub fn notification(r: &SendNotificationResponse) -> Value {
    let mut v = json!({
        "message": r.message,
        "notificacao_servico": optional_status(&r.notificacao_servico),
        "pendente": r.pendente,
    });
    put_if(
        v.as_object_mut().expect("an object"),
        "id_notificacao",
        &r.id_notificacao,
    );
    v
}

pub fn chatbot_answer(r: &ChatbotDuvidaResponse) -> Value {
    json!({
        "resposta": r.resposta,
        "modelo": r.modelo,
        "id_interacao": r.id_interacao,
        "tokens_entrada": r.tokens_entrada,
        "tokens_saida": r.tokens_saida,
        "offline": r.offline,
    })
}

pub fn registered_metrics(r: &RegisterMetricsResponse) -> Value {
    json!({
        "message": r.message,
        "id_interacao": r.id_interacao,
        "insights_servico": optional_status(&r.insights_servico),
    })
}

pub fn schedule_notified(r: &NotifyScheduleResponse) -> Value {
    json!({
        "message": r.message,
        "id_agendamento": r.id_agendamento,
        "notificacao_servico": optional_status(&r.notificacao_servico),
        "pendente": r.pendente,
    })
}
