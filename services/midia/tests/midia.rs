//! midia end to end: in-process server, real gRPC client, real SQLite (or PostgreSQL when
//! `AULA_TEST_DATABASE_URL` is set).

use aula_api::{
    midia_conteudo_service_client::MidiaConteudoServiceClient, AddMediaRequest, Empty,
    GetCourseMediaRequest,
};
use aula_runtime::testing::{self, assert_status, Reply, TestService};
use std::path::Path;
use tonic::{transport::Channel, Code};

async fn start(dir: &Path) -> (TestService, MidiaConteudoServiceClient<Channel>) {
    testing::start_in(midia::service(), dir, &[], MidiaConteudoServiceClient::new).await
}

/// midia alone in a temporary directory of its own, and a client of it.
async fn alone() -> (
    tempfile::TempDir,
    TestService,
    MidiaConteudoServiceClient<Channel>,
) {
    testing::start_alone(midia::service(), &[], MidiaConteudoServiceClient::new).await
}

fn media(id_curso: &str) -> GetCourseMediaRequest {
    GetCourseMediaRequest {
        id_curso: id_curso.into(),
    }
}

fn valid_add() -> AddMediaRequest {
    AddMediaRequest {
        id_curso: "2".into(),
        titulo: "Índices e desempenho de consultas".into(),
        tipo: "video".into(),
        url: "https://midia.aula.dev/cursos/2/04-indices.mp4".into(),
        duracao_segundos: 780,
        ordem: 0,
        descricao: "Árvores B, índices compostos e como ler um plano de execução.".into(),
    }
}

#[tokio::test]
async fn status_counts_the_demo_media() {
    let (_dir, svc, mut client) = alone().await;
    let status = client.get_status(Empty {}).await.answer();
    assert_status(&status, "midia", &[("cursos", 5), ("midias", 17)]);
    assert!(!status.message.is_empty());
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn get_media_lists_a_course_in_order_with_a_readable_summary() {
    let (_dir, svc, mut client) = alone().await;
    let r = client.get_media(media("1")).await.answer();
    assert_eq!(r.itens.len(), 4);
    let ordens: Vec<i32> = r.itens.iter().map(|i| i.ordem).collect();
    assert_eq!(ordens, vec![1, 2, 3, 4]);
    let first = &r.itens[0];
    assert_eq!(first.titulo, "Introdução ao Python");
    assert_eq!(first.tipo, "video");
    assert_eq!(first.id_curso, "1");
    assert_eq!(first.duracao_segundos, 720);
    assert!(first.url.starts_with("https://"));
    assert!(!first.descricao.is_empty());
    assert!(
        r.midia_curso
            .starts_with("4 itens: Vídeo 'Introdução ao Python' (12 min), Slides 'Variáveis"),
        "{}",
        r.midia_curso
    );
    for id in 2..=5 {
        let r = client.get_media(media(&id.to_string())).await.answer();
        assert!((2..=4).contains(&r.itens.len()), "course {id}");
        assert!(r.itens.iter().all(|i| i.id_curso == id.to_string()));
    }
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_course_without_media_is_an_empty_list_not_an_error() {
    let (_dir, svc, mut client) = alone().await;
    let r = client.get_media(media("999")).await.answer();
    assert!(r.itens.is_empty());
    assert_eq!(r.midia_curso, "Nenhuma mídia cadastrada para o curso 999");
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn bad_course_ids_are_invalid_naming_the_field() {
    let (_dir, svc, mut client) = alone().await;
    for bad in ["", "abc", "0", "-3", "1.5"] {
        let err = client.get_media(media(bad)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}");
        assert!(err.message().starts_with("id_curso: "), "{}", err.message());
    }
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn add_media_appends_after_the_demo_items_and_persists_across_a_restart() {
    let (dir, svc, mut client) = alone().await;
    let added = client.add_media(valid_add()).await.answer();
    // New ids continue after the demo rows' explicit ids (PostgreSQL's sequence too).
    assert!(added.id > 17, "id {}", added.id);
    assert_eq!(added.ordem, 4, "after course 2's three demo items");
    assert_eq!(added.id_curso, "2");
    assert_eq!(added.tipo, "video");

    let placed = client
        .add_media(AddMediaRequest {
            titulo: "Boas-vindas".into(),
            tipo: "TEXTO".into(),
            ordem: 10,
            duracao_segundos: 0,
            ..valid_add()
        })
        .await
        .answer();
    assert_eq!(placed.ordem, 10);
    assert_eq!(placed.tipo, "texto");
    assert!(placed.id > added.id);

    // A course with no media yet starts at 1.
    let fresh = client
        .add_media(AddMediaRequest {
            id_curso: "42".into(),
            ..valid_add()
        })
        .await
        .answer();
    assert_eq!(fresh.ordem, 1);

    svc.running.stop().await.unwrap();
    let (svc, mut client) = start(dir.path()).await;
    let r = client.get_media(media("2")).await.answer();
    let titulos: Vec<&str> = r.itens.iter().map(|i| i.titulo.as_str()).collect();
    assert_eq!(titulos.len(), 5);
    assert_eq!(titulos[3], "Índices e desempenho de consultas");
    assert_eq!(titulos[4], "Boas-vindas");
    assert!(r.midia_curso.starts_with("5 itens: "), "{}", r.midia_curso);
    assert!(r
        .midia_curso
        .contains("Vídeo 'Índices e desempenho de consultas' (13 min)"));
    let status = client.get_status(Empty {}).await.answer();
    assert_eq!(status.contagens["midias"], 20);
    assert_eq!(status.contagens["cursos"], 6);
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn add_media_names_the_bad_field() {
    let (_dir, svc, mut client) = alone().await;
    let cases: Vec<(&str, AddMediaRequest)> = vec![
        (
            "id_curso",
            AddMediaRequest {
                id_curso: String::new(),
                ..valid_add()
            },
        ),
        (
            "id_curso",
            AddMediaRequest {
                id_curso: "dois".into(),
                ..valid_add()
            },
        ),
        (
            "titulo",
            AddMediaRequest {
                titulo: "  ".into(),
                ..valid_add()
            },
        ),
        (
            "tipo",
            AddMediaRequest {
                tipo: String::new(),
                ..valid_add()
            },
        ),
        (
            "tipo",
            AddMediaRequest {
                tipo: "podcast".into(),
                ..valid_add()
            },
        ),
        (
            "url",
            AddMediaRequest {
                url: String::new(),
                ..valid_add()
            },
        ),
        (
            "duracao_segundos",
            AddMediaRequest {
                duracao_segundos: -5,
                ..valid_add()
            },
        ),
        (
            "ordem",
            AddMediaRequest {
                ordem: -1,
                ..valid_add()
            },
        ),
    ];
    for (field, request) in cases {
        let err = client.add_media(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert!(
            err.message().starts_with(&format!("{field}: ")),
            "{field}: {}",
            err.message()
        );
    }
    // Nothing was stored.
    let status = client.get_status(Empty {}).await.answer();
    assert_eq!(status.contagens["midias"], 17);
    svc.running.stop().await.unwrap();
}
