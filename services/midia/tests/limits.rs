//! midia's input limits (`aula_api::limits`): every field over its limit is INVALID_ARGUMENT
//! naming the field and the limit, bad input is quoted short, a course holds a bounded number of
//! items, and no `GetMedia` answer can outgrow one gRPC message, whatever was stored.

use aula_api::{
    limits, midia_conteudo_service_client::MidiaConteudoServiceClient, AddMediaRequest,
    GetCourseMediaRequest,
};
use aula_runtime::testing::{assert_invalid, spawn, wide_text};
use prost::Message as _;
use tonic::Code;

fn add(id_curso: &str, titulo: &str) -> AddMediaRequest {
    AddMediaRequest {
        id_curso: id_curso.into(),
        titulo: titulo.into(),
        tipo: "video".into(),
        url: "https://midia.aula.dev/x.mp4".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn every_field_is_bounded_and_bad_input_is_quoted_short() {
    let dir = tempfile::tempdir().unwrap();
    let svc = spawn(midia::service(), dir.path(), &[]).await.unwrap();
    let mut client = MidiaConteudoServiceClient::new(svc.channel());
    let too_long = |n: usize| "a".repeat(n + 1);
    let huge = "9".repeat(1 << 20);
    let cases: Vec<(AddMediaRequest, &str, String)> = vec![
        // The case: a 3 MB title.
        (
            add("1", &"t".repeat(3 << 20)),
            "titulo",
            format!("at most {} characters", limits::MEDIA_TITLE_CHARS),
        ),
        (
            add("1", &too_long(limits::MEDIA_TITLE_CHARS)),
            "titulo",
            format!("at most {} characters", limits::MEDIA_TITLE_CHARS),
        ),
        (
            AddMediaRequest {
                descricao: too_long(limits::MEDIA_DESCRIPTION_CHARS),
                ..add("1", "t")
            },
            "descricao",
            format!("at most {} characters", limits::MEDIA_DESCRIPTION_CHARS),
        ),
        (
            AddMediaRequest {
                url: format!("https://h/{}", too_long(limits::MEDIA_URL_CHARS)),
                ..add("1", "t")
            },
            "url",
            format!("at most {} characters", limits::MEDIA_URL_CHARS),
        ),
        (
            AddMediaRequest {
                url: "javascript:alert(1)".into(),
                ..add("1", "t")
            },
            "url",
            "http(s)".into(),
        ),
        (
            AddMediaRequest {
                url: "data:text/html,<script>alert(1)</script>".into(),
                ..add("1", "t")
            },
            "url",
            "http(s)".into(),
        ),
        (
            AddMediaRequest {
                tipo: too_long(limits::MEDIA_KIND_CHARS),
                ..add("1", "t")
            },
            "tipo",
            format!("at most {} characters", limits::MEDIA_KIND_CHARS),
        ),
        (
            AddMediaRequest {
                tipo: "audio".repeat(3),
                ..add("1", "t")
            },
            "tipo",
            "video, slides or texto".into(),
        ),
        (add(&huge, "t"), "id_curso", "positive integer".into()),
    ];
    for (request, field, says) in cases {
        assert_invalid(client.add_media(request).await, field, &says);
    }
    let get = GetCourseMediaRequest {
        id_curso: huge.clone(),
    };
    assert_invalid(client.get_media(get).await, "id_curso", "positive integer");
    // Nothing was stored, and the service answers as before.
    let listed = client
        .get_media(GetCourseMediaRequest {
            id_curso: "1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.itens.len(), 4);
    svc.assert_serving().await;
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_course_holds_a_bounded_number_of_items_and_its_answer_fits_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let svc = spawn(midia::service(), dir.path(), &[]).await.unwrap();
    let mut client = MidiaConteudoServiceClient::new(svc.channel());
    // The largest items the limits allow, in 4-byte characters.
    let item = AddMediaRequest {
        id_curso: "42".into(),
        titulo: wide_text(limits::MEDIA_TITLE_CHARS),
        tipo: "texto".into(),
        url: format!("https://h/{}", "u".repeat(limits::MEDIA_URL_CHARS - 10)),
        duracao_segundos: 60,
        ordem: 0,
        descricao: wide_text(limits::MEDIA_DESCRIPTION_CHARS),
    };
    for _ in 0..limits::MEDIA_PER_COURSE {
        client.add_media(item.clone()).await.unwrap();
    }
    let full = client.add_media(item.clone()).await.unwrap_err();
    assert_eq!(full.code(), Code::FailedPrecondition, "{full:?}");
    assert!(
        full.message().starts_with(&format!(
            "id_curso 42: the course already has {}",
            limits::MEDIA_PER_COURSE
        )),
        "{full:?}"
    );
    let media = client
        .get_media(GetCourseMediaRequest {
            id_curso: "42".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(media.itens.len(), limits::MEDIA_PER_COURSE);
    assert!(
        media.encoded_len() < limits::MESSAGE_BYTES,
        "{}",
        media.encoded_len()
    );
    // Other courses are not affected by a full one.
    client.add_media(add("43", "t")).await.unwrap();
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn items_stored_before_the_limits_are_shown_clipped() {
    use sqlx::Executor as _;
    let dir = tempfile::tempdir().unwrap();
    let svc = spawn(midia::service(), dir.path(), &[]).await.unwrap();
    // What an AddMedia of the issue stored before the limits: a 3 MB title, which made this
    // course's GetMedia exceed the 4 MiB message limit for every client.
    let mut db = svc.sql().await;
    db.execute(
        sqlx::query(
            "INSERT INTO midias (id_curso, titulo, tipo, url, duracao_segundos, ordem, descricao, criada_ms) \
             VALUES (7, $1, 'video', 'https://h/x', 0, 1, $2, 0)",
        )
        .bind("t".repeat(3 << 20))
        .bind("d ".repeat(1 << 20)),
    )
    .await
    .unwrap();
    let mut client = MidiaConteudoServiceClient::new(svc.channel());
    let media = client
        .get_media(GetCourseMediaRequest {
            id_curso: "7".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let item = &media.itens[0];
    assert_eq!(item.titulo.chars().count(), limits::MEDIA_TITLE_CHARS);
    assert_eq!(
        item.descricao.chars().count(),
        limits::MEDIA_DESCRIPTION_CHARS
    );
    assert!(
        media.midia_curso.len() < 1000,
        "{}",
        media.midia_curso.len()
    );
    svc.running.stop().await.unwrap();
}
