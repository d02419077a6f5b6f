//! midia's input limits (`aula_api::limits`): every field over its limit is INVALID_ARGUMENT
//! naming the field and the limit, bad input is quoted short, a course holds a bounded number of
//! items, and no `GetMedia` answer can outgrow one gRPC message, whatever was stored.

use aula_api::{
    limits, midia_conteudo_service_client::MidiaConteudoServiceClient as Client, AddMediaRequest,
    GetCourseMediaRequest,
};
use aula_runtime::testing::{
    assert_invalid, over_limit_cases, spawn_alone, start_alone, wide_text, Reply, SetText,
};
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
    let (_dir, svc, mut client) = start_alone(midia::service(), &[], Client::new).await;
    let huge = "9".repeat(1 << 20);
    let mut cases = over_limit_cases(
        add("1", "t"),
        &[
            ("titulo", limits::MEDIA_TITLE_CHARS, |r, t| r.titulo = t),
            ("descricao", limits::MEDIA_DESCRIPTION_CHARS, |r, t| {
                r.descricao = t
            }),
            ("url", limits::MEDIA_URL_CHARS, |r, t| {
                r.url = format!("https://h/{t}")
            }),
            ("tipo", limits::MEDIA_KIND_CHARS, |r, t| r.tipo = t),
        ],
    );
    // The case: a 3 MB title.
    let says = format!("at most {} characters", limits::MEDIA_TITLE_CHARS);
    cases.push((add("1", &"t".repeat(3 << 20)), "titulo", says));
    let not_web: [(&str, SetText<AddMediaRequest>, &str); 3] = [
        (
            "url",
            |r, _| r.url = "javascript:alert(1)".into(),
            "http(s)",
        ),
        (
            "url",
            |r, _| r.url = "data:text/html,<script>alert(1)</script>".into(),
            "http(s)",
        ),
        (
            "tipo",
            |r, _| r.tipo = "audio".repeat(3),
            "video, slides or texto",
        ),
    ];
    for (field, set, says) in not_web {
        let mut request = add("1", "t");
        set(&mut request, String::new());
        cases.push((request, field, says.into()));
    }
    cases.push((add(&huge, "t"), "id_curso", "positive integer".into()));
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
        .answer();
    assert_eq!(listed.itens.len(), 4);
    svc.assert_serving().await;
    svc.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_course_holds_a_bounded_number_of_items_and_its_answer_fits_one_message() {
    let (_dir, svc, mut client) = start_alone(midia::service(), &[], Client::new).await;
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
        .answer();
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
    let (_dir, svc) = spawn_alone(midia::service(), &[]).await;
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
    let mut client = Client::new(svc.channel());
    let media = client
        .get_media(GetCourseMediaRequest {
            id_curso: "7".into(),
        })
        .await
        .answer();
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
