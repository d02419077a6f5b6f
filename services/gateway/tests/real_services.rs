//! The gateway in front of the real cursos and midia services (SQLite, demo data), started
//! in-process by the runtime's test harness; cursos calls midia for a course's media.

mod common;

use aula_runtime::testing;

#[tokio::test]
async fn the_seed_routes_over_real_cursos_and_midia() {
    let (dir, midia) = testing::spawn_alone(midia::service(), &[]).await;
    let cursos = testing::spawn(cursos::service(), dir.path(), &[midia.addr_var()])
        .await
        .unwrap();
    // The other four are down: nothing listens where they would be.
    let down = ["chatbot", "cpar", "notificacoes", "insights"];
    let real = [("CURSOS_ADDR", &*cursos.url), ("MIDIA_ADDR", &*midia.url)];
    let app = common::spawn_app_with(&down, &real).await;

    let body = app.get_as("/cursos", 200).await;
    assert!(!body["message"].as_str().unwrap().is_empty(), "{body}");

    // The demo data enrols user 1 in courses 1 and 2.
    let body = app.get_as("/cursos/ver_inscricoes_do_usuario/1", 200).await;
    let ids: Vec<i64> = body["cursos_inscritos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2], "{body}");
    assert!(body["cursos_inscritos"][0]["nome"].as_str().unwrap().len() > 3);

    let body = app
        .get_as("/cursos/ver_inscricoes_do_usuario/abc", 400)
        .await;
    common::assert_erro_names(&body, "id_usuario");

    // cursos -> midia, and midia directly, tell the same story.
    let (status, via_cursos) = app.get("/cursos/consumir_midia_curso/1").await;
    assert_eq!(status, 200, "{via_cursos}");
    let (status, direct) = app.get("/midia_conteudo/1").await;
    assert_eq!(status, 200, "{direct}");
    assert!(!direct["itens"].as_array().unwrap().is_empty(), "{direct}");
    assert_eq!(via_cursos["itens"], direct["itens"]);

    let body = app.get_as("/healthz", 503).await;
    assert_eq!(body["servicos"]["cursos"]["status"], "SERVING", "{body}");
    assert_eq!(body["servicos"]["midia"]["status"], "SERVING", "{body}");
    assert_eq!(
        body["servicos"]["chatbot"]["status"], "UNAVAILABLE",
        "{body}"
    );

    app.stop().await;
    cursos.running.stop().await.unwrap();
    midia.running.stop().await.unwrap();
}
