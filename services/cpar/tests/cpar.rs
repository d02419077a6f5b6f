//! cpar's appointment RPCs with their error paths, paging and persistence (no notificacoes
//! needed). Runs on SQLite, or on PostgreSQL when AULA_TEST_DATABASE_URL is set.

mod common;

use aula_api::{CreateScheduleRequest, Empty, ListSchedulesRequest, NotifyScheduleRequest};
use common::*;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_appointment_and_status() {
    let (_dir, s, mut c) = cpar_alone().await;
    let demo = c.get_schedule(schedule("1")).await.answer();
    assert_eq!(demo.id_usuario, "1");
    assert_eq!(demo.titulo, "Plantão de dúvidas de Python");
    assert_eq!(demo.estado, "agendado");
    assert!(demo.inicio.unwrap().seconds > 1_800_000_000);
    let status = c.get_status(Empty {}).await.answer();
    assert_eq!(status.servico, "cpar");
    assert_eq!(status.contagens["agendamentos"], 1);
    assert_eq!(status.contagens["notificacoes_pendentes"], 0);
    s.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_cancel_with_error_paths() {
    let (_dir, s, mut c) = cpar_alone().await;

    let mut bad = booking("2", "Revisão", 3600);
    bad.id_usuario = String::new();
    assert_code(
        c.create_schedule(bad).await,
        Code::InvalidArgument,
        "id_usuario",
    );
    assert_code(
        c.create_schedule(booking("2", "  ", 3600)).await,
        Code::InvalidArgument,
        "titulo",
    );
    assert_code(
        c.create_schedule(booking("2", "Revisão", -60)).await,
        Code::InvalidArgument,
        "inicio",
    );
    assert_code(
        c.create_schedule(CreateScheduleRequest {
            inicio: None,
            ..booking("2", "Revisão", 3600)
        })
        .await,
        Code::InvalidArgument,
        "inicio",
    );
    assert_code(
        c.create_schedule(CreateScheduleRequest {
            duracao_minutos: 0,
            ..booking("2", "Revisão", 3600)
        })
        .await,
        Code::InvalidArgument,
        "duracao_minutos",
    );

    let created = create(&mut c, "2", "Revisão de SQL", 7200).await;
    assert_eq!(created.estado, "agendado");
    assert!(!created.lembrete_enviado);
    assert_eq!(created.duracao_minutos, 30);
    let got = c
        .get_schedule(schedule(&created.id_agendamento))
        .await
        .answer();
    assert_eq!(got, created);

    let cancelled = c
        .cancel_schedule(cancel(&created.id_agendamento))
        .await
        .answer();
    assert_eq!(cancelled.estado, "cancelado");

    for id in ["999", "x", ""] {
        let code = if id == "999" {
            Code::NotFound
        } else {
            Code::InvalidArgument
        };
        let starts = if id == "999" {
            "id_agendamento 999: no such appointment"
        } else {
            "id_agendamento"
        };
        assert_code(c.get_schedule(schedule(id)).await, code, starts);
        assert_code(c.cancel_schedule(cancel(id)).await, code, starts);
        assert_code(
            c.notify_schedule(NotifyScheduleRequest {
                id_agendamento: id.into(),
                ..Default::default()
            })
            .await,
            code,
            starts,
        );
    }
    s.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_without_repeats_while_new_appointments_arrive() {
    let (_dir, s, mut c) = cpar_alone().await;
    for i in 0..5 {
        create(&mut c, "3", &format!("a{i}"), 7200 + i).await;
    }
    create(&mut c, "4", "de outro", 7200).await;
    let page = |token: String| ListSchedulesRequest {
        id_usuario: "3".into(),
        page_size: 2,
        page_token: token,
    };
    let first = c.list_schedules(page(String::new())).await.answer();
    let mut seen: Vec<String> = first
        .agendamentos
        .iter()
        .map(|a| a.titulo.clone())
        .collect();
    create(&mut c, "3", "a5", 7300).await;
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let p = c.list_schedules(page(token)).await.answer();
        seen.extend(p.agendamentos.iter().map(|a| a.titulo.clone()));
        token = p.next_page_token;
    }
    assert_eq!(seen, ["a0", "a1", "a2", "a3", "a4", "a5"]);

    assert_code(
        c.list_schedules(ListSchedulesRequest {
            id_usuario: "3".into(),
            page_size: -1,
            page_token: String::new(),
        })
        .await,
        Code::InvalidArgument,
        "page_size",
    );
    assert_code(
        c.list_schedules(ListSchedulesRequest::default()).await,
        Code::InvalidArgument,
        "id_usuario",
    );
    s.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appointments_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_cpar(dir.path(), &[]).await;
    let created = create(&mut cpar(&s), "5", "Persistente", 7200).await;
    s.running.stop().await.unwrap();
    let s = start_cpar(dir.path(), &[]).await;
    let got = cpar(&s)
        .get_schedule(schedule(&created.id_agendamento))
        .await
        .answer();
    assert_eq!(got, created);
    s.running.stop().await.unwrap();
}
