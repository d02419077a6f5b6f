//! The six services together, as users meet them: the seed's API end to end, each
//! cross-service chain, reflection and health on every port, drain, restart, outages.

mod common;

use aula_api::*;
use common::{eventually, spawn_in, spawn_platform};
use std::time::Duration;
use tonic::Code;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn the_seed_api_works_across_the_platform() {
    let p = spawn_platform().await;

    for s in p.all() {
        let mut health = HealthClient::new(s.channel());
        let r = health
            .check(HealthCheckRequest {
                service: s.running.spec.grpc_service.into(),
            })
            .await
            .unwrap();
        assert_eq!(
            r.into_inner().status(),
            ServingStatus::Serving,
            "{}",
            s.running.spec.name
        );
    }
    let status = p.cursos().get_status(Empty {}).await.unwrap().into_inner();
    assert!(!status.message.is_empty());

    // GetUserCourses reads real enrolments: the demo user is in at least two courses.
    let courses = p
        .cursos()
        .get_user_courses(GetUserCoursesRequest {
            id_usuario: "1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(courses.cursos_inscritos.len() >= 2, "{courses:?}");
    assert!(courses
        .cursos_inscritos
        .iter()
        .all(|c| c.id > 0 && !c.nome.is_empty()));

    // cursos -> midia
    let media = p
        .cursos()
        .get_course_media(GetCourseMediaRequest {
            id_curso: "1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !media.midia_curso.is_empty() && !media.itens.is_empty(),
        "{media:?}"
    );
    let direct = p
        .midia()
        .get_media(GetCourseMediaRequest {
            id_curso: "1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(direct.itens, media.itens);

    // cursos -> chatbot -> insights
    let before = p
        .insights()
        .get_course_insights(GetCourseInsightsRequest {
            id_curso: "1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let answer = p
        .cursos()
        .ask_question(AskQuestionRequest {
            id_curso: "1".into(),
            aula_contexto: "Aula 1".into(),
            duvida: "O que é uma variável?".into(),
            id_usuario: "1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !answer.resposta.is_empty() && !answer.id_interacao.is_empty(),
        "{answer:?}"
    );
    eventually(WAIT, "the question to reach insights", || {
        let mut insights = p.insights();
        async move {
            let now = insights
                .get_course_insights(GetCourseInsightsRequest {
                    id_curso: "1".into(),
                })
                .await
                .ok()?
                .into_inner();
            (now.total_perguntas > before.total_perguntas).then_some(())
        }
    })
    .await;

    // cursos -> notificacoes
    let sent = p
        .cursos()
        .send_notification(SendNotificationRequest {
            id_usuario: "77".into(),
            message: "Bem-vindo à plataforma".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!sent.pendente, "{sent:?}");
    assert!(sent.notificacao_servico.is_some());
    let inbox = p
        .notificacoes()
        .list_notifications(ListNotificationsRequest {
            id_usuario: "77".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inbox.notificacoes.len(), 1);
    assert_eq!(inbox.notificacoes[0].message, "Bem-vindo à plataforma");

    // cpar -> notificacoes: the appointment's own user is notified.
    let schedule = p
        .cpar()
        .get_schedule(GetScheduleRequest {
            id_agendamento: "1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let notified = p
        .cpar()
        .notify_schedule(NotifyScheduleRequest {
            id_agendamento: "1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(notified.id_agendamento, "1");
    assert!(
        notified.notificacao_servico.is_some() || notified.pendente,
        "{notified:?}"
    );
    eventually(WAIT, "the appointment notice", || {
        let mut n = p.notificacoes();
        let user = schedule.id_usuario.clone();
        let title = schedule.titulo.clone();
        async move {
            let inbox = n
                .list_notifications(ListNotificationsRequest {
                    id_usuario: user,
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner();
            inbox
                .notificacoes
                .iter()
                .any(|x| x.message.contains(&title))
                .then_some(())
        }
    })
    .await;

    // chatbot -> insights (the seed's RegisterMetrics)
    let registered = p
        .chatbot()
        .register_metrics(RegisterMetricsRequest {
            id_interacao: answer.id_interacao.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(registered.id_interacao, answer.id_interacao);
    assert!(registered.insights_servico.is_some());
}

#[tokio::test]
async fn enrolling_notifies_the_student_once() {
    let p = spawn_platform().await;
    for _ in 0..3 {
        p.cursos()
            .enroll(EnrollRequest {
                id_usuario: "500".into(),
                id_curso: "4".into(),
            })
            .await
            .unwrap();
    }
    let courses = p
        .cursos()
        .get_user_courses(GetUserCoursesRequest {
            id_usuario: "500".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        courses
            .cursos_inscritos
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        vec![4]
    );
    let inbox = eventually(WAIT, "the enrolment notice", || {
        let mut n = p.notificacoes();
        async move {
            let inbox = n
                .list_notifications(ListNotificationsRequest {
                    id_usuario: "500".into(),
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner();
            (!inbox.notificacoes.is_empty()).then_some(inbox)
        }
    })
    .await;
    // Give a duplicate the chance to show up before asserting there is none.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = p
        .notificacoes()
        .list_notifications(ListNotificationsRequest {
            id_usuario: "500".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.notificacoes.len(), 1, "{inbox:?}");
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_every_service() {
    use tonic_reflection::pb::{v1, v1alpha};
    let p = spawn_platform().await;
    for s in p.all() {
        let want = s.running.spec.grpc_service.to_string();
        let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(s.channel());
        let req = v1alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
            ),
        };
        let mut stream = alpha
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await
            .unwrap()
            .into_inner();
        let msg = stream.message().await.unwrap().unwrap();
        let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
            msg.message_response
        else {
            panic!("unexpected reflection answer")
        };
        let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
        assert!(names.contains(&want), "{names:?}");
        assert!(
            names.iter().any(|n| n == "grpc.health.v1.Health"),
            "{names:?}"
        );
        let others = aula_runtime::spec::ALL
            .iter()
            .filter(|o| o.grpc_service != want);
        assert!(
            others
                .clone()
                .all(|o| !names.iter().any(|n| n == o.grpc_service)),
            "only its own service: {names:?}"
        );

        let mut v1c = v1::server_reflection_client::ServerReflectionClient::new(s.channel());
        let req = v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1::server_reflection_request::MessageRequest::FileContainingSymbol(want.clone()),
            ),
        };
        let mut stream = v1c
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await
            .unwrap()
            .into_inner();
        let msg = stream.message().await.unwrap().unwrap();
        assert!(matches!(
            msg.message_response,
            Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
        ));
    }
}

#[tokio::test]
async fn health_turns_not_serving_when_a_service_drains() {
    let p = spawn_platform().await;
    let mut health = HealthClient::new(p.midia.channel());
    for name in ["", "services.MidiaConteudoService"] {
        let r = health
            .check(HealthCheckRequest {
                service: name.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status(), ServingStatus::Serving);
    }
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "services.MidiaConteudoService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );
    p.midia.running.drain();
    let next = tokio::time::timeout(WAIT, watch.message())
        .await
        .expect("an update")
        .unwrap()
        .unwrap();
    assert_eq!(next.status(), ServingStatus::NotServing);
}

#[tokio::test]
async fn data_survives_a_restart() {
    let p = spawn_platform().await;
    p.cursos()
        .enroll(EnrollRequest {
            id_usuario: "901".into(),
            id_curso: "3".into(),
        })
        .await
        .unwrap();
    p.cursos()
        .send_notification(SendNotificationRequest {
            id_usuario: "901".into(),
            message: "guardada".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let item = p
        .midia()
        .add_media(AddMediaRequest {
            id_curso: "3".into(),
            titulo: "Formulários".into(),
            tipo: "video".into(),
            url: "https://example.org/v.mp4".into(),
            duracao_segundos: 60,
            ordem: 9,
            descricao: "Formulários HTML".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let dir = p.stop().await;

    let p = spawn_in(dir).await;
    let courses = p
        .cursos()
        .get_user_courses(GetUserCoursesRequest {
            id_usuario: "901".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(courses.cursos_inscritos.iter().any(|c| c.id == 3));
    let inbox = p
        .notificacoes()
        .list_notifications(ListNotificationsRequest {
            id_usuario: "901".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        inbox.notificacoes.iter().any(|n| n.message == "guardada"),
        "{inbox:?}"
    );
    let media = p
        .midia()
        .get_media(GetCourseMediaRequest {
            id_curso: "3".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(media
        .itens
        .iter()
        .any(|m| m.id == item.id && m.titulo == "Formulários"));
}

#[tokio::test]
async fn a_dependency_down_degrades_one_feature_not_the_service() {
    let p = spawn_platform().await;
    // Warm the connection first, so the outage is a real one and not a never-connected peer.
    p.cursos()
        .get_course_media(GetCourseMediaRequest {
            id_curso: "2".into(),
        })
        .await
        .unwrap();
    let mut client = p.cursos();
    let common::Platform {
        dir: _dir,
        midia,
        cursos,
        ..
    } = p;
    midia.running.stop().await.unwrap();

    let err = client
        .get_course_media(GetCourseMediaRequest {
            id_curso: "2".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("midia"), "{err:?}");
    // cursos still serves its own data and stays SERVING.
    client
        .get_user_courses(GetUserCoursesRequest {
            id_usuario: "1".into(),
        })
        .await
        .unwrap();
    let mut health = HealthClient::new(cursos.channel());
    let r = health
        .check(HealthCheckRequest {
            service: "services.CursosService".into(),
        })
        .await
        .unwrap();
    assert_eq!(r.into_inner().status(), ServingStatus::Serving);
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let p = spawn_platform().await;
    let err = p
        .cursos()
        .get_user_courses(GetUserCoursesRequest {
            id_usuario: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("id_usuario"), "{err:?}");
    let err = p
        .cursos()
        .get_course_media(GetCourseMediaRequest {
            id_curso: "999".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = p
        .cpar()
        .notify_schedule(NotifyScheduleRequest {
            id_agendamento: "424242".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = p
        .chatbot()
        .resolve_duvida(ChatbotDuvidaRequest {
            duvida: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("duvida"), "{err:?}");
}

#[tokio::test]
async fn metrics_show_server_and_client_sides() {
    let p = spawn_platform().await;
    p.cursos()
        .get_course_media(GetCourseMediaRequest {
            id_curso: "1".into(),
        })
        .await
        .unwrap();
    let _ = p
        .cursos()
        .get_user_courses(GetUserCoursesRequest {
            id_usuario: String::new(),
        })
        .await;
    let text = p.cursos.metrics_text().await;
    assert!(text.contains(r#"grpc_server_handled_total{grpc_type="unary",grpc_service="services.CursosService",grpc_method="GetCourseMedia",grpc_code="OK"}"#), "{text}");
    assert!(
        text.contains(r#"grpc_method="GetUserCourses",grpc_code="InvalidArgument""#),
        "{text}"
    );
    assert!(text.contains(r#"grpc_client_handled_total{grpc_type="unary",grpc_service="services.MidiaConteudoService",grpc_method="GetMedia",grpc_code="OK"}"#), "{text}");
    assert!(
        text.contains("grpc_server_handling_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
    assert!(text.contains("aula_build_info"), "{text}");
    let midia = p.midia.metrics_text().await;
    assert!(
        midia.contains(r#"grpc_method="GetMedia",grpc_code="OK""#),
        "{midia}"
    );
    assert!(
        !midia.contains("services.CursosService"),
        "registries are per service: {midia}"
    );
}

#[tokio::test]
async fn questions_outside_a_course_are_recorded_too() {
    let p = spawn_platform().await;
    let held = |s: StatusResponse| s.contagens.values().copied().max().unwrap_or(0);
    let before = held(
        p.insights()
            .get_status(Empty {})
            .await
            .unwrap()
            .into_inner(),
    );
    // The seed's ResolveDuvida, called directly: no course, only a context and a question.
    let answer = p
        .chatbot()
        .resolve_duvida(ChatbotDuvidaRequest {
            aula_contexto: "Listas em Python guardam vários valores em ordem.".into(),
            duvida: "Como guardo vários valores?".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.resposta.is_empty());
    eventually(WAIT, "insights to hold the interaction", || {
        let mut insights = p.insights();
        async move {
            (held(insights.get_status(Empty {}).await.ok()?.into_inner()) > before).then_some(())
        }
    })
    .await;
}
