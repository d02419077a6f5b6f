//! The six services together, as users meet them: the seed's API end to end, each
//! cross-service chain, reflection and health on every port, drain, restart, outages.

mod common;

use aula_api::*;
use aula_runtime::testing::Reply;
use common::{eventually, spawn_in, spawn_platform, WAIT};
use std::time::Duration;
use tonic::Code;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

#[tokio::test]
async fn the_seed_api_works_across_the_platform() {
    let p = spawn_platform().await;

    for s in p.all() {
        s.assert_serving().await;
    }
    let status = p.cursos().get_status(Empty {}).await.answer();
    assert!(!status.message.is_empty());

    // GetUserCourses reads real enrolments: the demo user is in at least two courses.
    let courses = p.user_courses("1").await;
    assert!(courses.cursos_inscritos.len() >= 2, "{courses:?}");
    assert!(courses
        .cursos_inscritos
        .iter()
        .all(|c| c.id > 0 && !c.nome.is_empty()));

    // cursos -> midia
    let media = p.course_media("1").await;
    assert!(
        !media.midia_curso.is_empty() && !media.itens.is_empty(),
        "{media:?}"
    );
    assert_eq!(p.media("1").await.itens, media.itens);

    let answer = p.a_question_reaches_insights().await;

    // cursos -> notificacoes
    let sent = p.send_notification("77", "Bem-vindo à plataforma").await;
    assert!(!sent.pendente, "{sent:?}");
    assert!(sent.notificacao_servico.is_some());
    let inbox = p.inbox("77").await;
    assert_eq!(inbox.notificacoes.len(), 1);
    assert_eq!(inbox.notificacoes[0].message, "Bem-vindo à plataforma");

    let notified = p.an_appointment_notice_arrives().await;
    assert!(
        notified.notificacao_servico.is_some() || notified.pendente,
        "{notified:?}"
    );

    // chatbot -> insights (the seed's RegisterMetrics)
    let interaction = RegisterMetricsRequest {
        id_interacao: answer.id_interacao.clone(),
    };
    let registered = p.chatbot().register_metrics(interaction).await;
    let registered = registered.unwrap().into_inner();
    assert_eq!(registered.id_interacao, answer.id_interacao);
    assert!(registered.insights_servico.is_some());
}

#[tokio::test]
async fn enrolling_notifies_the_student_once() {
    let p = spawn_platform().await;
    for _ in 0..3 {
        p.enroll("500", "4").await;
    }
    let courses = p.user_courses("500").await;
    assert_eq!(
        courses
            .cursos_inscritos
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        vec![4]
    );
    let inbox = eventually(WAIT, "the enrolment notice", || async {
        let inbox = p.try_inbox("500").await.ok()?;
        (!inbox.notificacoes.is_empty()).then_some(inbox)
    })
    .await;
    // Give a duplicate the chance to show up before asserting there is none.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = p.inbox("500").await;
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
        let listed = alpha
            .server_reflection_info(tokio_stream::iter([req]))
            .await;
        let msg = listed.answer().message().await.unwrap().unwrap();
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
        let found = v1c.server_reflection_info(tokio_stream::iter([req])).await;
        let msg = found.answer().message().await.unwrap().unwrap();
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
        let check = HealthCheckRequest {
            service: name.into(),
        };
        let r = health.check(check).await.answer();
        assert_eq!(r.status(), ServingStatus::Serving);
    }
    let watch = HealthCheckRequest {
        service: "services.MidiaConteudoService".into(),
    };
    let mut watch = health.watch(watch).await.answer();
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
    p.enroll("901", "3").await;
    p.send_notification("901", "guardada").await;
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
        .answer();
    let dir = p.stop().await;

    let p = spawn_in(dir).await;
    let courses = p.user_courses("901").await;
    assert!(courses.cursos_inscritos.iter().any(|c| c.id == 3));
    let inbox = p.inbox("901").await;
    assert!(
        inbox.notificacoes.iter().any(|n| n.message == "guardada"),
        "{inbox:?}"
    );
    let media = p.media("3").await;
    assert!(media
        .itens
        .iter()
        .any(|m| m.id == item.id && m.titulo == "Formulários"));
}

#[tokio::test]
async fn a_dependency_down_degrades_one_feature_not_the_service() {
    let p = spawn_platform().await;
    // Warm the connection first, so the outage is a real one and not a never-connected peer.
    p.course_media("2").await;
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
    let own = GetUserCoursesRequest {
        id_usuario: "1".into(),
    };
    client.get_user_courses(own).await.unwrap();
    cursos.assert_serving().await;
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let p = spawn_platform().await;
    let err = p.try_user_courses("").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("id_usuario"), "{err:?}");
    let err = p.try_course_media("999").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let notify = NotifyScheduleRequest {
        id_agendamento: "424242".into(),
        ..Default::default()
    };
    let err = p.cpar().notify_schedule(notify).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let duvida = ChatbotDuvidaRequest {
        duvida: String::new(),
        ..Default::default()
    };
    let err = p.chatbot().resolve_duvida(duvida).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("duvida"), "{err:?}");
}

#[tokio::test]
async fn metrics_show_server_and_client_sides() {
    let p = spawn_platform().await;
    p.course_media("1").await;
    let _ = p.try_user_courses("").await;
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
    let before = held(p.insights().get_status(Empty {}).await.answer());
    // The seed's ResolveDuvida, called directly: no course, only a context and a question.
    let question = ChatbotDuvidaRequest {
        aula_contexto: "Listas em Python guardam vários valores em ordem.".into(),
        duvida: "Como guardo vários valores?".into(),
        ..Default::default()
    };
    let answer = p.chatbot().resolve_duvida(question).await;
    let answer = answer.unwrap().into_inner();
    assert!(!answer.resposta.is_empty());
    eventually(WAIT, "insights to hold the interaction", || {
        let mut insights = p.insights();
        async move {
            (held(insights.get_status(Empty {}).await.ok()?.into_inner()) > before).then_some(())
        }
    })
    .await;
}
