//! The gateway in front of the real cursos and midia services (SQLite, demo data), started
//! in-process by the runtime's test harness; cursos calls midia for a course's media.

use aula_runtime::{config::Env, testing};
use serde_json::Value;

#[tokio::test]
async fn the_seed_routes_over_real_cursos_and_midia() {
    let dir = tempfile::tempdir().unwrap();
    let midia = testing::spawn(midia::service(), dir.path(), &[])
        .await
        .unwrap();
    let cursos = testing::spawn(cursos::service(), dir.path(), &[midia.addr_var()])
        .await
        .unwrap();

    let mut env = Env::from_pairs([
        ("AULA_PEER_TIMEOUT", "5s"),
        ("AULA_DNS_REFRESH", "1s"),
        ("GATEWAY_DRAIN_DELAY", "0s"),
    ]);
    for (k, v) in [cursos.addr_var(), midia.addr_var()] {
        env.set(k, v);
    }
    // The other four are down: nothing listens where they would be.
    for name in ["CHATBOT", "CPAR", "NOTIFICACOES", "INSIGHTS"] {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        env.set(
            format!("{name}_ADDR"),
            format!("http://{}", l.local_addr().unwrap()),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = gateway::start(&env, listener, None).await.unwrap();
    let base = format!("http://{}", gw.addr());
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let req = http.get(format!("{base}{path}"));
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };

    let (status, body) = get("/cursos").await;
    assert_eq!(status, 200, "{body}");
    assert!(!body["message"].as_str().unwrap().is_empty(), "{body}");

    // The demo data enrols user 1 in courses 1 and 2.
    let (status, body) = get("/cursos/ver_inscricoes_do_usuario/1").await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<i64> = body["cursos_inscritos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2], "{body}");
    assert!(body["cursos_inscritos"][0]["nome"].as_str().unwrap().len() > 3);

    let (status, body) = get("/cursos/ver_inscricoes_do_usuario/abc").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["erro"].as_str().unwrap().contains("id_usuario"),
        "{body}"
    );

    // cursos -> midia, and midia directly, tell the same story.
    let (status, via_cursos) = get("/cursos/consumir_midia_curso/1").await;
    assert_eq!(status, 200, "{via_cursos}");
    let (status, direct) = get("/midia_conteudo/1").await;
    assert_eq!(status, 200, "{direct}");
    assert!(!direct["itens"].as_array().unwrap().is_empty(), "{direct}");
    assert_eq!(via_cursos["itens"], direct["itens"]);

    let (status, body) = get("/healthz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["servicos"]["cursos"]["status"], "SERVING", "{body}");
    assert_eq!(body["servicos"]["midia"]["status"], "SERVING", "{body}");
    assert_eq!(
        body["servicos"]["chatbot"]["status"], "UNAVAILABLE",
        "{body}"
    );

    gw.stop().await.unwrap();
    cursos.running.stop().await.unwrap();
    midia.running.stop().await.unwrap();
}
