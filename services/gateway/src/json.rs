//! Protobuf messages as the JSON the seed's REST API returned: the seed's field names first,
//! the API's extensions beside them (empty extensions are left out, so old clients see the
//! shapes they know).
//!
//! Each shape is a struct of borrowed fields serialized straight into the response body:
//! building a `serde_json::Value` first cost a map node, a key and a copy of every string per
//! field (~25k instructions per `GET /cursos/ver_inscricoes_do_usuario/1`, callgrind).
//!
//! **Field order is key order.** The JSON text must stay byte for byte what it was when it
//! went through `serde_json::Map`, a `BTreeMap` (serde_json's `preserve_order` is off): keys in
//! alphabetical order, as Flask's `jsonify` sorted them too. So every struct below lists its
//! fields alphabetically; `tests.rs` compares each shape with the `Value` it replaced.

use aula_api::{
    AskQuestionResponse, ChatbotDuvidaResponse, Course, GetCourseMediaResponse,
    GetUserCoursesResponse, MediaItem, NotifyScheduleResponse, RegisterMetricsResponse,
    SendNotificationResponse, StatusResponse,
};
use serde::{Serialize, Serializer};
use std::collections::HashMap;

#[cfg(test)]
mod tests;

/// A service's status; `contagens`, `modo`, `servico` and `versao` only when set.
#[derive(Serialize)]
pub struct Status<'a> {
    #[serde(skip_serializing_if = "Counts::is_empty")]
    contagens: Counts<'a>,
    message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    modo: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    servico: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    versao: &'a str,
}

pub fn status(s: &StatusResponse) -> Status<'_> {
    Status {
        contagens: Counts(&s.contagens),
        message: &s.message,
        modo: &s.modo,
        servico: &s.servico,
        versao: &s.versao,
    }
}

/// The counts, by name in alphabetical order (the protobuf map is a `HashMap`, in no order).
struct Counts<'a>(&'a HashMap<String, i64>);

impl Counts<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Counts<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut sorted: Vec<(&String, &i64)> = self.0.iter().collect();
        sorted.sort_unstable_by_key(|(name, _)| *name);
        serializer.collect_map(sorted)
    }
}

/// A status some answers embed: `null` when the service sent none.
fn optional_status(s: &Option<StatusResponse>) -> Option<Status<'_>> {
    s.as_ref().map(status)
}

/// A list serialized item by item through `shape`, with no vector of shapes built first.
struct Each<'a, T, O>(&'a [T], fn(&'a T) -> O);

impl<T, O: Serialize> Serialize for Each<'_, T, O> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(self.1))
    }
}

#[derive(Serialize)]
pub struct CourseJson<'a> {
    carga_horaria: i32,
    categoria: &'a str,
    descricao: &'a str,
    id: i32,
    instrutor: &'a str,
    nome: &'a str,
}

pub fn course(c: &Course) -> CourseJson<'_> {
    CourseJson {
        carga_horaria: c.carga_horaria,
        categoria: &c.categoria,
        descricao: &c.descricao,
        id: c.id,
        instrutor: &c.instrutor,
        nome: &c.nome,
    }
}

#[derive(Serialize)]
pub struct UserCourses<'a> {
    cursos_inscritos: Each<'a, Course, CourseJson<'a>>,
    message: &'a str,
}

pub fn user_courses(r: &GetUserCoursesResponse) -> UserCourses<'_> {
    UserCourses {
        cursos_inscritos: Each(&r.cursos_inscritos, course),
        message: &r.message,
    }
}

#[derive(Serialize)]
pub struct MediaItemJson<'a> {
    descricao: &'a str,
    duracao_segundos: i32,
    id: i64,
    id_curso: &'a str,
    ordem: i32,
    tipo: &'a str,
    titulo: &'a str,
    url: &'a str,
}

pub fn media_item(m: &MediaItem) -> MediaItemJson<'_> {
    MediaItemJson {
        descricao: &m.descricao,
        duracao_segundos: m.duracao_segundos,
        id: m.id,
        id_curso: &m.id_curso,
        ordem: m.ordem,
        tipo: &m.tipo,
        titulo: &m.titulo,
        url: &m.url,
    }
}

#[derive(Serialize)]
pub struct CourseMedia<'a> {
    itens: Each<'a, MediaItem, MediaItemJson<'a>>,
    midia_curso: &'a str,
}

pub fn course_media(r: &GetCourseMediaResponse) -> CourseMedia<'_> {
    CourseMedia {
        itens: Each(&r.itens, media_item),
        midia_curso: &r.midia_curso,
    }
}

#[derive(Serialize)]
pub struct Answer<'a> {
    id_interacao: &'a str,
    modelo: &'a str,
    offline: bool,
    resposta: &'a str,
}

pub fn answer(r: &AskQuestionResponse) -> Answer<'_> {
    Answer {
        id_interacao: &r.id_interacao,
        modelo: &r.modelo,
        offline: r.offline,
        resposta: &r.resposta,
    }
}

/// `id_notificacao` only when set.
#[derive(Serialize)]
pub struct Notification<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    id_notificacao: &'a str,
    message: &'a str,
    notificacao_servico: Option<Status<'a>>,
    pendente: bool,
}

pub fn notification(r: &SendNotificationResponse) -> Notification<'_> {
    Notification {
        id_notificacao: &r.id_notificacao,
        message: &r.message,
        notificacao_servico: optional_status(&r.notificacao_servico),
        pendente: r.pendente,
    }
}

#[derive(Serialize)]
pub struct ChatbotAnswer<'a> {
    id_interacao: &'a str,
    modelo: &'a str,
    offline: bool,
    resposta: &'a str,
    tokens_entrada: i32,
    tokens_saida: i32,
}

pub fn chatbot_answer(r: &ChatbotDuvidaResponse) -> ChatbotAnswer<'_> {
    ChatbotAnswer {
        id_interacao: &r.id_interacao,
        modelo: &r.modelo,
        offline: r.offline,
        resposta: &r.resposta,
        tokens_entrada: r.tokens_entrada,
        tokens_saida: r.tokens_saida,
    }
}

#[derive(Serialize)]
pub struct RegisteredMetrics<'a> {
    id_interacao: &'a str,
    insights_servico: Option<Status<'a>>,
    message: &'a str,
}

pub fn registered_metrics(r: &RegisterMetricsResponse) -> RegisteredMetrics<'_> {
    RegisteredMetrics {
        id_interacao: &r.id_interacao,
        insights_servico: optional_status(&r.insights_servico),
        message: &r.message,
    }
}

#[derive(Serialize)]
pub struct ScheduleNotified<'a> {
    id_agendamento: &'a str,
    message: &'a str,
    notificacao_servico: Option<Status<'a>>,
    pendente: bool,
}

pub fn schedule_notified(r: &NotifyScheduleResponse) -> ScheduleNotified<'_> {
    ScheduleNotified {
        id_agendamento: &r.id_agendamento,
        message: &r.message,
        notificacao_servico: optional_status(&r.notificacao_servico),
        pendente: r.pendente,
    }
}
