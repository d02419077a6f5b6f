//! Every REST route of the seed, its JSON shape, and the errors a user sees.

mod common;

use common::spawn_app;
use serde_json::json;

#[tokio::test]
async fn status_routes_answer_each_service_s_status() {
    let app = spawn_app(&[]).await;
    for (path, servico) in [
        ("/cursos", "cursos"),
        ("/chatbot", "chatbot"),
        ("/cpar", "cpar"),
        ("/notificacoes", "notificacoes"),
        ("/insights", "insights"),
        ("/midia_conteudo", "midia"),
    ] {
        let body = app.get_as(path, 200).await;
        assert!(
            body["message"].as_str().unwrap().contains("funcionando"),
            "{path}: {body}"
        );
        assert_eq!(body["servico"], servico, "{path}: {body}");
        assert_eq!(
            app.seen.last(&format!("{servico}.GetStatus")).method,
            format!("{servico}.GetStatus")
        );
    }
    let (_, chatbot) = app.get("/chatbot").await;
    assert_eq!(chatbot["modo"], "offline");
    let (_, insights) = app.get("/insights").await;
    assert_eq!(insights["contagens"], json!({ "interacoes": 4 }));
    app.stop().await;
}

#[tokio::test]
async fn cursos_routes_keep_the_seed_shapes() {
    let app = spawn_app(&[]).await;

    let body = app
        .get_as("/cursos/ver_inscricoes_do_usuario/42", 200)
        .await;
    assert_eq!(body["message"], "Cursos do usuário 42");
    assert_eq!(
        body["cursos_inscritos"],
        json!([{
            "id": 1, "nome": "Sistemas Distribuídos", "descricao": "gRPC, filas e consenso",
            "carga_horaria": 60, "instrutor": "Ana", "categoria": "computação"
        }])
    );
    assert!(app
        .seen
        .last("cursos.GetUserCourses")
        .request
        .contains(r#"id_usuario: "42""#));

    let body = app.get_as("/cursos/consumir_midia_curso/3", 200).await;
    assert_eq!(body["midia_curso"], "Curso 3: 1 vídeo");
    assert_eq!(body["itens"][0]["titulo"], "Introdução");
    assert_eq!(body["itens"][0]["tipo"], "video");
    assert_eq!(body["itens"][0]["duracao_segundos"], 600);
    assert_eq!(body["itens"][0]["id_curso"], "3");

    let body = app
        .post_as(
            "/cursos/tirar_duvida/3",
            r#"{"aula_contexto": "aula 1", "duvida": "o que é gRPC?", "id_usuario": 42}"#,
            200,
        )
        .await;
    assert_eq!(body["resposta"], "Resposta para: o que é gRPC?");
    assert_eq!(body["offline"], true);
    let call = app.seen.last("cursos.AskQuestion").request;
    assert!(call.contains(r#"id_curso: "3""#), "{call}");
    assert!(call.contains(r#"aula_contexto: "aula 1""#), "{call}");
    assert!(call.contains(r#"id_usuario: "42""#), "{call}");

    let body = app.get_as("/cursos/enviar_notificacao/42", 200).await;
    let default = gateway::routes::DEFAULT_NOTIFICATION;
    assert_eq!(body["message"], common::notice_sent(default));
    assert_eq!(
        body["notificacao_servico"]["message"],
        "Notificação recebida"
    );
    assert_eq!(body["pendente"], false);

    let body = app
        .get_as(
            "/cursos/enviar_notificacao/42?message=Prova%20amanh%C3%A3",
            200,
        )
        .await;
    assert_eq!(body["message"], "Notificação enviada: Prova amanhã");
    app.stop().await;
}

#[tokio::test]
async fn chatbot_cpar_and_midia_routes_keep_the_seed_shapes() {
    let app = spawn_app(&[]).await;

    let body = app.post_as("/chatbot/duvida", common::QUESTION, 200).await;
    assert_eq!(body["resposta"], "Sobre aula 2: e REST?");
    assert_eq!(body["id_interacao"], "int-2");
    assert_eq!(body["tokens_saida"], 5);

    let body = app.get_as("/chatbot/registrar_metricas/int-2", 200).await;
    assert_eq!(body["message"], "Métricas registradas");
    assert_eq!(body["id_interacao"], "int-2");
    assert_eq!(body["insights_servico"]["message"], "Métricas recebidas");

    let body = app.get_as("/cpar/notificar_agendamento/5", 200).await;
    assert_eq!(body["message"], "Agendamento notificado");
    assert_eq!(body["id_agendamento"], "5");
    assert_eq!(
        body["notificacao_servico"]["message"],
        "Notificação recebida"
    );

    let body = app.get_as("/midia_conteudo/8", 200).await;
    assert_eq!(body["midia_curso"], "Curso 8: 1 vídeo");
    assert_eq!(body["itens"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_missing_body_or_field_is_400_naming_it() {
    let app = spawn_app(&[]).await;
    for path in ["/chatbot/duvida", "/cursos/tirar_duvida/1"] {
        let body = app.post_as(path, "", 400).await;
        assert!(body["erro"].as_str().unwrap().contains("missing"), "{body}");

        let body = app.post_as(path, "{not json", 400).await;
        assert!(body["erro"].as_str().unwrap().contains("JSON"), "{body}");

        let body = app.post_as(path, r#"{"duvida": "x"}"#, 400).await;
        assert_eq!(
            body,
            json!({ "erro": "aula_contexto: required field missing" })
        );

        let body = app.post_as(path, r#"{"aula_contexto": "x"}"#, 400).await;
        assert_eq!(body, json!({ "erro": "duvida: required field missing" }));
    }
    // None of them reached a service.
    assert!(app
        .seen
        .calls()
        .iter()
        .all(|c| c.method != "chatbot.ResolveDuvida" && c.method != "cursos.AskQuestion"));
    app.stop().await;
}

#[tokio::test]
async fn grpc_codes_become_http_statuses() {
    let app = spawn_app(&[]).await;
    let body = app
        .get_as("/cursos/ver_inscricoes_do_usuario/999", 404)
        .await;
    assert_eq!(body["erro"], "id_usuario 999: no such user");
    assert_eq!(body["codigo"], "NOT_FOUND");
    assert_eq!(body["servico"], "cursos");

    app.get_as("/midia_conteudo/999", 404).await;

    let body = app.get_as("/cursos/consumir_midia_curso/abc", 400).await;
    assert!(
        body["erro"].as_str().unwrap().starts_with("id_curso"),
        "{body}"
    );

    let body = app.get_as("/nada/aqui", 404).await;
    assert_eq!(body["erro"], "no such route: /nada/aqui");

    // Found by fuzz_gateway.rs: what axum cannot read is JSON naming the field, not its own
    // plain-text 400; a long path is quoted by a short prefix only.
    let body = app
        .get_as("/cursos/ver_inscricoes_do_usuario/%FF%00", 400)
        .await;
    assert!(
        body["erro"].as_str().unwrap().starts_with("id_usuario: "),
        "{body}"
    );
    let body = app
        .get_as("/cursos/enviar_notificacao/1?message=a&message=b", 400)
        .await;
    assert!(body["erro"].as_str().unwrap().contains("message"), "{body}");
    let (status, body) = app.get(&format!("/nada/{}", "x".repeat(10_000))).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["erro"].as_str().unwrap().len() < 200, "{body}");

    let delete = app.http.delete(format!("{}/cursos", app.base));
    let r = delete.send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    app.stop().await;
}

#[tokio::test]
async fn a_service_that_is_down_is_503_naming_it() {
    let app = spawn_app(&["midia"]).await;
    let body = app.get_as("/midia_conteudo/1", 503).await;
    common::assert_erro_names(&body, "midia");
    assert_eq!(body["servico"], "midia");
    assert_eq!(body["codigo"], "UNAVAILABLE");
    // The others still answer.
    let (status, _) = app.get("/cursos").await;
    assert_eq!(status, 200);
    app.stop().await;
}
