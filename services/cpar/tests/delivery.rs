//! cpar -> notificacoes: notices and reminders through the outbox, an outage of notificacoes,
//! and reminders sent once with two cpar replicas on one database. Runs on SQLite, or on
//! PostgreSQL when AULA_TEST_DATABASE_URL is set.

mod common;

use aula_api::NotifyScheduleRequest;
use aula_runtime::{config::Settings, server, testing};
use common::*;
use std::time::{Duration, Instant};

fn notify(id: &str) -> NotifyScheduleRequest {
    NotifyScheduleRequest {
        id_agendamento: id.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_schedule_reaches_the_appointments_user() {
    let dir = tempfile::tempdir().unwrap();
    let n = start_notificacoes(dir.path()).await;
    let (k, v) = n.addr_var();
    let s = start_cpar(dir.path(), &[(&k, &v)]).await;
    let mut c = cpar(&s);
    let a = create(&mut c, "6", "Monitoria de Álgebra", 7200).await;

    let r = c.notify_schedule(notify(&a.id_agendamento)).await.answer();
    assert!(!r.pendente, "{r:?}");
    assert_eq!(r.id_agendamento, a.id_agendamento);
    assert!(r.message.contains("usuário 6"), "{r:?}");
    assert_eq!(r.notificacao_servico.unwrap().servico, "notificacoes");

    let got = notifications_of(&mut notificacoes(&n), "6").await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].origem, "cpar");
    assert!(got[0].message.contains("Monitoria de Álgebra"), "{got:?}");
    assert!(got[0].message.contains("(UTC)"), "names the start: {got:?}");
    outbox_drained(&c).await;
    s.running.stop().await.unwrap();
    n.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_notificacoes_delays_the_notice_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A port chosen up front: nothing listens on it until notificacoes starts there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("http://127.0.0.1:{port}");
    let s = start_cpar(dir.path(), &[("NOTIFICACOES_ADDR", &addr)]).await;
    let mut c = cpar(&s);

    let started = Instant::now();
    let r = c.notify_schedule(notify("1")).await.answer();
    assert!(r.pendente, "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered while notificacoes is down, in {:?}",
        started.elapsed()
    );

    let def = notificacoes::service();
    let settings = Settings::load(def.spec, &testing::env(&def, dir.path(), &[])).unwrap();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let n = server::start_on(def, settings, listener, None)
        .await
        .unwrap();
    let mut nc = aula_api::notificacoes_service_client::NotificacoesServiceClient::new(
        testing::channel(&addr),
    );
    let from_cpar = |all: Vec<aula_api::Notification>| {
        all.into_iter()
            .filter(|x| x.origem == "cpar")
            .collect::<Vec<_>>()
    };
    eventually(SETTLE, "the queued notice to arrive", || {
        let mut nc = nc.clone();
        async move { (!from_cpar(notifications_of(&mut nc, "1").await).is_empty()).then_some(()) }
    })
    .await;
    outbox_drained(&c).await;
    let got = from_cpar(notifications_of(&mut nc, "1").await);
    assert_eq!(got.len(), 1, "delivered exactly once: {got:?}");
    assert!(got[0].message.contains("Plantão de dúvidas de Python"));
    s.running.stop().await.unwrap();
    n.stop().await.unwrap();
}

async fn reminders_for(n: &mut Notificacoes, user: &str) -> Vec<aula_api::Notification> {
    notifications_of(n, user)
        .await
        .into_iter()
        .filter(|x| x.message.starts_with("Lembrete"))
        .collect()
}

fn reminders_sent(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("aula_reminders_sent_total "))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appointment_starting_soon_gets_one_reminder() {
    let dir = tempfile::tempdir().unwrap();
    let n = start_notificacoes(dir.path()).await;
    let (k, v) = n.addr_var();
    let s = start_cpar(dir.path(), &[(&k, &v), ("CPAR_REMINDER_INTERVAL", "200ms")]).await;
    let mut c = cpar(&s);
    let mut nc = notificacoes(&n);
    let soon = create(&mut c, "7", "Plantão de Redes", 600).await;
    let later = create(&mut c, "7", "Plantão distante", 3 * 3600).await;

    eventually(SETTLE, "the reminder", || {
        let mut nc = nc.clone();
        async move { (!reminders_for(&mut nc, "7").await.is_empty()).then_some(()) }
    })
    .await;
    outbox_drained(&c).await;
    // A few more rounds of the worker must not send it again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    outbox_drained(&c).await;
    let got = reminders_for(&mut nc, "7").await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].message.contains("Plantão de Redes"), "{got:?}");
    assert!(got[0].message.contains("(UTC)"), "names the start: {got:?}");

    let get = |id: String| {
        let mut c = c.clone();
        async move { c.get_schedule(schedule(&id)).await.answer() }
    };
    assert!(get(soon.id_agendamento).await.lembrete_enviado);
    assert!(
        !get(later.id_agendamento).await.lembrete_enviado,
        "outside the lead"
    );
    assert_eq!(reminders_sent(&s.metrics_text().await), 1);
    s.running.stop().await.unwrap();
    n.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_database_send_each_reminder_once() {
    let dir = tempfile::tempdir().unwrap();
    let n = start_notificacoes(dir.path()).await;
    let (k, v) = n.addr_var();
    let env = [
        (k.as_str(), v.as_str()),
        ("CPAR_REMINDER_INTERVAL", "200ms"),
    ];
    // Same data directory: the same SQLite file (or the same PostgreSQL schema).
    let a = start_cpar(dir.path(), &env).await;
    let b = start_cpar(dir.path(), &env).await;
    let mut ca = cpar(&a);
    let titles: Vec<String> = (0..5).map(|i| format!("Plantão concorrido {i}")).collect();
    for (i, t) in titles.iter().enumerate() {
        create(&mut ca, "8", t, 600 + i as i64).await;
    }
    let mut nc = notificacoes(&n);
    eventually(SETTLE, "every reminder", || {
        let mut nc = nc.clone();
        async move { (reminders_for(&mut nc, "8").await.len() >= 5).then_some(()) }
    })
    .await;
    outbox_drained(&ca).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    outbox_drained(&ca).await;
    let got = reminders_for(&mut nc, "8").await;
    for t in &titles {
        let n = got
            .iter()
            .filter(|x| x.message.contains(t.as_str()))
            .count();
        assert_eq!(n, 1, "{t}: {got:?}");
    }
    assert_eq!(got.len(), 5);
    let sent = reminders_sent(&a.metrics_text().await) + reminders_sent(&b.metrics_text().await);
    assert_eq!(sent, 5, "claimed once across both replicas");
    a.running.stop().await.unwrap();
    b.running.stop().await.unwrap();
    n.running.stop().await.unwrap();
}
