//! Every shape's JSON text is byte for byte the text of the `serde_json::Value` the gateway
//! built before (the `was` module: the old code, kept as the contract), for answers with
//! every field set, with the optional ones empty, and with text that needs escaping.

use super::*;

/// The shapes as they were built until 2026-12-04: through `serde_json::Value`.
mod was {
    use aula_api::*;
    use serde_json::{json, Map, Value};

    fn put_if(obj: &mut Map<String, Value>, key: &str, value: &str) {
        if !value.is_empty() {
            obj.insert(key.into(), Value::String(value.into()));
        }
    }

    pub(super) fn status(s: &StatusResponse) -> Value {
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

    pub(super) fn course(c: &Course) -> Value {
        json!({
            "id": c.id,
            "nome": c.nome,
            "descricao": c.descricao,
            "carga_horaria": c.carga_horaria,
            "instrutor": c.instrutor,
            "categoria": c.categoria,
        })
    }

    pub(super) fn user_courses(r: &GetUserCoursesResponse) -> Value {
        json!({
            "message": r.message,
            "cursos_inscritos": r.cursos_inscritos.iter().map(course).collect::<Vec<_>>(),
        })
    }

    pub(super) fn media_item(m: &MediaItem) -> Value {
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

    pub(super) fn course_media(r: &GetCourseMediaResponse) -> Value {
        json!({
            "midia_curso": r.midia_curso,
            "itens": r.itens.iter().map(media_item).collect::<Vec<_>>(),
        })
    }

    pub(super) fn answer(r: &AskQuestionResponse) -> Value {
        json!({
            "resposta": r.resposta,
            "modelo": r.modelo,
            "id_interacao": r.id_interacao,
            "offline": r.offline,
        })
    }

    pub(super) fn notification(r: &SendNotificationResponse) -> Value {
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

    pub(super) fn chatbot_answer(r: &ChatbotDuvidaResponse) -> Value {
        json!({
            "resposta": r.resposta,
            "modelo": r.modelo,
            "id_interacao": r.id_interacao,
            "tokens_entrada": r.tokens_entrada,
            "tokens_saida": r.tokens_saida,
            "offline": r.offline,
        })
    }

    pub(super) fn registered_metrics(r: &RegisterMetricsResponse) -> Value {
        json!({
            "message": r.message,
            "id_interacao": r.id_interacao,
            "insights_servico": optional_status(&r.insights_servico),
        })
    }

    pub(super) fn schedule_notified(r: &NotifyScheduleResponse) -> Value {
        json!({
            "message": r.message,
            "id_agendamento": r.id_agendamento,
            "notificacao_servico": optional_status(&r.notificacao_servico),
            "pendente": r.pendente,
        })
    }
}

fn same<T: Serialize>(new: T, old: serde_json::Value) {
    let (new, old) = (
        serde_json::to_string(&new).unwrap(),
        serde_json::to_string(&old).unwrap(),
    );
    assert_eq!(new, old);
}

fn full_status() -> StatusResponse {
    StatusResponse {
        message: "Serviço de cursos funcionando \"bem\"\n".into(),
        servico: "cursos".into(),
        versao: "1.2.3".into(),
        contagens: [
            ("usuarios", 3),
            ("cursos", 12),
            ("inscricoes", -1),
            ("b", 0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        modo: "offline".into(),
    }
}

fn bare_status() -> StatusResponse {
    StatusResponse {
        message: "ok".into(),
        ..Default::default()
    }
}

#[test]
fn status_is_the_text_it_was() {
    for s in [full_status(), bare_status(), StatusResponse::default()] {
        same(status(&s), was::status(&s));
    }
}

#[test]
fn courses_and_media_are_the_text_they_were() {
    let course = Course {
        id: 1,
        nome: "Sistemas Distribuídos".into(),
        descricao: "gRPC, filas e consenso </script> \u{1}".into(),
        carga_horaria: 60,
        instrutor: "Ana".into(),
        categoria: "computação".into(),
    };
    for cursos_inscritos in [vec![], vec![course, Course::default()]] {
        let r = GetUserCoursesResponse {
            message: "Cursos do usuário 1".into(),
            cursos_inscritos,
        };
        same(user_courses(&r), was::user_courses(&r));
    }
    let item = MediaItem {
        id: i64::MAX,
        titulo: "Introdução".into(),
        tipo: "video".into(),
        url: "https://example.com/a?b=c&d=e".into(),
        duracao_segundos: 600,
        ordem: -2,
        descricao: "tab\there".into(),
        id_curso: "3".into(),
    };
    for itens in [vec![], vec![item, MediaItem::default()]] {
        let r = GetCourseMediaResponse {
            midia_curso: "Curso 3: 1 vídeo".into(),
            itens,
        };
        same(course_media(&r), was::course_media(&r));
    }
}

#[test]
fn answers_are_the_text_they_were() {
    let r = AskQuestionResponse {
        resposta: "Resposta: \"sim\"".into(),
        modelo: "offline".into(),
        id_interacao: "int-1".into(),
        offline: true,
    };
    same(answer(&r), was::answer(&r));
    let r = ChatbotDuvidaResponse {
        resposta: "Sobre aula 2".into(),
        modelo: "gemini".into(),
        id_interacao: "int-2".into(),
        tokens_entrada: 7,
        tokens_saida: 5,
        offline: false,
    };
    same(chatbot_answer(&r), was::chatbot_answer(&r));
}

#[test]
fn notifications_and_metrics_are_the_text_they_were() {
    for (embedded, id) in [
        (Some(full_status()), "n-1"),
        (Some(bare_status()), ""),
        (None, "n-2"),
        (None, ""),
    ] {
        let r = SendNotificationResponse {
            message: "Notificação enviada".into(),
            notificacao_servico: embedded.clone(),
            pendente: id.is_empty(),
            id_notificacao: id.into(),
        };
        same(notification(&r), was::notification(&r));
        let r = RegisterMetricsResponse {
            message: "Métricas registradas".into(),
            id_interacao: id.into(),
            insights_servico: embedded.clone(),
        };
        same(registered_metrics(&r), was::registered_metrics(&r));
        let r = NotifyScheduleResponse {
            message: "Agendamento notificado".into(),
            id_agendamento: id.into(),
            notificacao_servico: embedded,
            pendente: !id.is_empty(),
        };
        same(schedule_notified(&r), was::schedule_notified(&r));
    }
}
