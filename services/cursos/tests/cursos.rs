//! cursos end to end: in-process servers, real gRPC clients, real SQLite (or PostgreSQL when
//! `AULA_TEST_DATABASE_URL` is set). notificacoes is pointed at a closed port here, so every
//! notice stays in the outbox where it can be counted.

mod common;

use aula_api::{AskQuestionRequest, Empty, ListCoursesRequest, SendNotificationRequest};
use aula_runtime::testing::{assert_status, execute};
use common::*;
use std::time::{Duration, Instant};
use tonic::Code;

fn assert_invalid(err: &tonic::Status, field: &str) {
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().starts_with(&format!("{field}: ")),
        "expected a message naming {field}: {}",
        err.message()
    );
}

fn page(page_size: i32, page_token: &str) -> ListCoursesRequest {
    ListCoursesRequest {
        page_size,
        page_token: page_token.into(),
    }
}

#[tokio::test]
async fn status_counts_the_demo_catalogue() {
    let (_dir, svc, mut client) = cursos_alone().await;
    let s = client.get_status(Empty {}).await.answer();
    let counts = [("cursos", 5), ("inscricoes", 2), ("outbox_pendentes", 0)];
    assert_status(&s, "cursos", &counts);
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn user_courses_come_from_real_enrolments() {
    let (_dir, svc, mut client) = cursos_alone().await;
    let r = client.get_user_courses(user("1")).await.answer();
    assert_eq!(r.message, "Usuário 1 está inscrito em 2 cursos");
    let nomes: Vec<&str> = r.cursos_inscritos.iter().map(|c| c.nome.as_str()).collect();
    assert_eq!(
        nomes,
        [
            "Introdução à Programação com Python",
            "Banco de Dados Relacionais"
        ]
    );
    assert!(r.cursos_inscritos.iter().all(|c| c.carga_horaria > 0
        && !c.instrutor.is_empty()
        && !c.descricao.is_empty()
        && !c.categoria.is_empty()));

    let r = client.get_user_courses(user("77")).await.answer();
    assert!(r.cursos_inscritos.is_empty());
    assert_eq!(r.message, "Usuário 77 não está inscrito em nenhum curso");

    for bad in ["", "abc"] {
        let err = client.get_user_courses(user(bad)).await.refusal();
        assert_invalid(&err, "id_usuario");
    }
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn list_courses_pages_through_the_catalogue() {
    let (_dir, svc, mut client) = cursos_alone().await;
    let all = client.list_courses(page(0, "")).await.answer();
    let ids: Vec<i32> = all.cursos.iter().map(|c| c.id).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    assert_eq!(all.next_page_token, "");

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = client.list_courses(page(2, &token)).await.answer();
        assert!(page.cursos.len() <= 2);
        seen.extend(page.cursos.iter().map(|c| c.id));
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, [1, 2, 3, 4, 5]);
    assert_eq!(pages, 3);

    let err = client.list_courses(page(-1, "")).await.refusal();
    assert_invalid(&err, "page_size");
    let err = client.list_courses(page(2, "not-a-token")).await.refusal();
    assert_invalid(&err, "page_token");
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn get_course_returns_the_course_or_not_found() {
    let (_dir, svc, mut client) = cursos_alone().await;
    let c = client.get_course(course("3")).await.answer();
    assert_eq!(c.id, 3);
    assert_eq!(c.nome, "Desenvolvimento Web com HTML, CSS e JavaScript");
    assert_eq!(c.carga_horaria, 60);

    let err = client.get_course(course("99")).await.refusal();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("99"), "{}", err.message());
    for bad in ["", "x", "0"] {
        assert_invalid(&client.get_course(course(bad)).await.refusal(), "id_curso");
    }
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn enroll_is_idempotent_queues_one_notice_and_unenroll_removes_it() {
    let (_dir, svc, mut client) = cursos_alone().await;

    let first = client.enroll(enroll("5", "4")).await.answer();
    assert!(first.nova_inscricao);
    assert_eq!(
        first.curso.as_ref().unwrap().nome,
        "Estruturas de Dados e Algoritmos"
    );
    assert!(first.message.contains("inscrito"), "{}", first.message);
    let again = client.enroll(enroll("5", "4")).await.answer();
    assert!(!again.nova_inscricao);
    assert!(again.message.contains("já estava"), "{}", again.message);

    let mine = client.get_user_courses(user("5")).await.answer();
    assert_eq!(mine.cursos_inscritos.len(), 1);
    assert_eq!(mine.cursos_inscritos[0].id, 4);

    // One notice for the new enrolment, none for the repeat (notificacoes is down: it waits).
    let s = client.get_status(Empty {}).await.answer();
    assert_eq!(s.contagens["outbox_pendentes"], 1);
    assert_eq!(s.contagens["inscricoes"], 3);
    let page = svc.running.metrics.render();
    assert!(
        page.lines().any(|l| l == "aula_enrolments_total 1"),
        "{page}"
    );

    let err = client.enroll(enroll("5", "99")).await.refusal();
    assert_eq!(err.code(), Code::NotFound);
    let err = client.enroll(enroll("", "1")).await.refusal();
    assert_invalid(&err, "id_usuario");
    assert_invalid(&client.enroll(enroll("5", "")).await.refusal(), "id_curso");

    assert!(client.unenroll(unenroll("5", "4")).await.answer().removida);
    assert!(!client.unenroll(unenroll("5", "4")).await.answer().removida);
    let err = client.unenroll(unenroll("5", "99")).await.refusal();
    assert_eq!(err.code(), Code::NotFound);
    let err = client.unenroll(unenroll("5", "abc")).await.refusal();
    assert_invalid(&err, "id_curso");
    let mine = client.get_user_courses(user("5")).await.answer();
    assert!(mine.cursos_inscritos.is_empty());
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn fifty_concurrent_enrolls_make_one_enrolment_and_one_notice() {
    let (_dir, svc, client) = cursos_alone().await;
    let calls = (0..50).map(|_| {
        let mut c = client.clone();
        tokio::spawn(async move { c.enroll(enroll("8", "3")).await })
    });
    let results = futures::future::join_all(calls).await;
    let mut new = 0;
    for r in results {
        let r = r.unwrap().expect("every concurrent Enroll succeeds");
        if r.into_inner().nova_inscricao {
            new += 1;
        }
    }
    assert_eq!(new, 1, "exactly one call created the enrolment");
    let mut client = client;
    let mine = client.get_user_courses(user("8")).await.answer();
    assert_eq!(mine.cursos_inscritos.len(), 1);
    let s = client.get_status(Empty {}).await.answer();
    assert_eq!(s.contagens["inscricoes"], 3);
    assert_eq!(s.contagens["outbox_pendentes"], 1, "one notice, not fifty");
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn enrolments_and_queued_notices_survive_a_restart() {
    let (dir, svc, mut client) = cursos_alone().await;
    client.enroll(enroll("9", "5")).await.unwrap();
    client.unenroll(unenroll("1", "2")).await.unwrap();
    svc.running.stop().await.unwrap();

    let (svc, mut client) = start_cursos(dir.path(), &[]).await;
    let r = client.get_user_courses(user("9")).await.answer();
    assert_eq!(r.cursos_inscritos.len(), 1);
    assert_eq!(r.cursos_inscritos[0].nome, "Redes de Computadores");
    let r = client.get_user_courses(user("1")).await.answer();
    assert_eq!(r.cursos_inscritos.len(), 1, "the unenrolment persisted too");
    let s = client.get_status(Empty {}).await.answer();
    assert_eq!(s.contagens["outbox_pendentes"], 1, "the queued notice too");
    // The demo data is not inserted again on restart.
    assert_eq!(s.contagens["cursos"], 5);
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn send_notification_is_queued_quickly_while_notificacoes_is_down() {
    let (_dir, svc, mut client) = cursos_alone().await;
    let started = Instant::now();
    let r = client
        .send_notification(notice("1", "Sua prova foi corrigida"))
        .await
        .answer();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(r.pendente);
    assert!(r.message.contains("fila"), "{}", r.message);
    assert!(r.id_notificacao.is_empty());

    // A retry with the caller's key while the first is still queued is the same notification.
    let keyed = SendNotificationRequest {
        chave_idempotencia: "teste-chave-1".into(),
        ..notice("1", "Aula remarcada")
    };
    assert!(
        client
            .send_notification(keyed.clone())
            .await
            .answer()
            .pendente
    );
    assert!(client.send_notification(keyed).await.answer().pendente);
    let s = client.get_status(Empty {}).await.answer();
    assert_eq!(s.contagens["outbox_pendentes"], 2);

    let err = client.send_notification(notice("", "x")).await.refusal();
    assert_invalid(&err, "id_usuario");
    let err = client.send_notification(notice("1", "   ")).await.refusal();
    assert_invalid(&err, "message");
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn get_course_media_comes_from_midia() {
    let dir = tempfile::tempdir().unwrap();
    let midia = start_midia(dir.path()).await;
    let (svc, mut client) = start_cursos(dir.path(), &[midia.addr_var()]).await;
    let r = client.get_course_media(media("1")).await.answer();
    assert_eq!(r.itens.len(), 4);
    assert_eq!(r.itens[0].titulo, "Introdução ao Python");
    assert!(r.midia_curso.starts_with("4 itens: "), "{}", r.midia_curso);

    let err = client.get_course_media(media("99")).await.refusal();
    assert_eq!(err.code(), Code::NotFound, "cursos owns the catalogue");
    let err = client.get_course_media(media("")).await.refusal();
    assert_invalid(&err, "id_curso");
    svc.running.stop().await.unwrap();
    midia.running.stop().await.unwrap();
}

#[tokio::test]
async fn midia_down_is_unavailable_naming_it_and_cursos_keeps_serving() {
    let (_dir, svc, mut client) = cursos_alone().await;
    let err = client.get_course_media(media("1")).await.refusal();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().starts_with("midia"), "{}", err.message());

    svc.assert_serving().await;
    client.get_status(Empty {}).await.unwrap();
    svc.running.stop().await.unwrap();
}

fn question(curso: &str, duvida: &str) -> AskQuestionRequest {
    AskQuestionRequest {
        id_curso: curso.into(),
        aula_contexto: "Aula 3: laços".into(),
        duvida: duvida.into(),
        id_usuario: "1".into(),
    }
}

#[tokio::test]
async fn ask_question_grounds_the_chatbot_in_the_course_and_its_media() {
    let dir = tempfile::tempdir().unwrap();
    let midia = start_midia(dir.path()).await;
    let bot = RecordingChatbot::default();
    let bot_url = serve_chatbot(bot.clone()).await;
    let (svc, mut client) = start_cursos(
        dir.path(),
        &[midia.addr_var(), ("CHATBOT_ADDR".into(), bot_url)],
    )
    .await;
    let r = client
        .ask_question(question("1", "Quando uso while em vez de for?"))
        .await
        .answer();
    assert_eq!(r.modelo, "stand-in");
    assert_eq!(r.id_interacao, "int-1");
    assert!(r.offline);
    assert!(r.resposta.contains("Quando uso while"), "{}", r.resposta);

    let asked = bot.asked.lock().unwrap().pop();
    let asked = asked.expect("the chatbot was asked");
    assert_eq!(asked.id_curso, "1");
    assert_eq!(asked.nome_curso, "Introdução à Programação com Python");
    assert!(asked.descricao_curso.contains("Python 3"));
    assert_eq!(asked.aula_contexto, "Aula 3: laços");
    assert_eq!(asked.duvida, "Quando uso while em vez de for?");
    assert_eq!(asked.id_usuario, "1");
    assert_eq!(asked.material.len(), 4);
    let video = &asked.material[2];
    assert_eq!(video.titulo, "Estruturas de controle: if, for e while");
    assert_eq!(video.tipo, "video");
    assert!(video.descricao.contains("while"));

    // Without midia the question is still answered, from the course alone.
    midia.running.stop().await.unwrap();
    let r = client.ask_question(question("1", "O que é uma variável?"));
    let r = r.await.answer();
    assert!(r.resposta.contains("descrição do curso"), "{}", r.resposta);
    let asked = bot.asked.lock().unwrap().pop().unwrap();
    assert!(asked.material.is_empty());
    assert_eq!(asked.nome_curso, "Introdução à Programação com Python");

    let err = client.ask_question(question("99", "Oi?")).await.refusal();
    assert_eq!(err.code(), Code::NotFound);
    let err = client.ask_question(question("1", "  ")).await.refusal();
    assert_invalid(&err, "duvida");
    let err = client.ask_question(question("", "Oi?")).await.refusal();
    assert_invalid(&err, "id_curso");
    let not_a_number = AskQuestionRequest {
        id_usuario: "ana".into(),
        ..question("1", "Oi?")
    };
    let err = client.ask_question(not_a_number).await.refusal();
    assert_invalid(&err, "id_usuario");
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn chatbot_down_is_unavailable_naming_it() {
    let (_dir, svc, mut client) = cursos_alone().await;
    let asked = question("2", "O que é uma chave estrangeira?");
    let err = client.ask_question(asked).await.refusal();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().starts_with("chatbot"), "{}", err.message());
    client.get_status(Empty {}).await.unwrap();
    svc.running.stop().await.unwrap();
}

/// GetStatus' counts are kept by the writes in their own transactions (migration
/// 0002_contagens), not counted by a scan of the enrolments (24 ms at a million): exact after
/// concurrent enrolments and removals, and after rows written behind the service's back.
#[tokio::test]
async fn status_counts_stay_exact_under_concurrent_writes() {
    use sqlx::Row as _;
    let (_dir, svc, client) = cursos_alone().await;
    let writers = (0..8u32).map(|w| {
        let mut c = client.clone();
        tokio::spawn(async move {
            for course in 1..=5u32 {
                // Writers 0 and 1 enrol the same user: each enrolment is made once.
                let u = (100 + w.max(1)).to_string();
                let id = course.to_string();
                c.enroll(enroll(&u, &id)).await.unwrap();
                if course % 2 == 0 {
                    c.unenroll(unenroll(&u, &id)).await.unwrap();
                }
            }
        })
    });
    let mut sql = svc.sql().await;
    let behind =
        "INSERT INTO inscricoes (id_usuario, id_curso, criada_ms) VALUES (9, 1, 0), (9, 2, 0)";
    execute(&mut sql, behind).await;
    for r in futures::future::join_all(writers).await {
        r.unwrap();
    }
    execute(
        &mut sql,
        "DELETE FROM inscricoes WHERE id_usuario = 9 AND id_curso = 2",
    )
    .await;
    let truth =
        sqlx::query("SELECT (SELECT COUNT(*) FROM cursos), (SELECT COUNT(*) FROM inscricoes)")
            .fetch_one(&mut sql)
            .await
            .unwrap();
    let truth: (i64, i64) = (truth.get(0), truth.get(1));
    // The demo's 2, 7 users with courses 1, 3 and 5 (the even ones removed), user 9's one.
    assert_eq!(truth, (5, 2 + 7 * 3 + 1));
    tokio::time::sleep(cursos::grpc::STATUS_TTL + Duration::from_millis(50)).await;
    let s = client.clone().get_status(Empty {}).await.answer();
    assert_eq!((s.contagens["cursos"], s.contagens["inscricoes"]), truth);
    svc.running.stop().await.unwrap();
}
