//! cursos' outbox against a scripted notificacoes (issue #13): a refusal for good is a dead
//! letter at once, transient failures are retried up to the attempt cap and then given up, an
//! immediate attempt cut off by its timeout hands the row straight back (redelivery within
//! seconds, not after a 30 s lease), and a notificacoes known to be down is not dialed by every
//! call.

mod common;

use aula_api::{
    stubbed::notificacoes_service_server::{NotificacoesService, NotificacoesServiceServer},
    Empty, SendNotificationRequest, SendNotificationResponse,
};
use aula_runtime::testing::Reply;
use common::{closed_url, cursos_with, eventually, start_cursos, vars, SETTLE};
use sqlx::Row;
use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tonic::{Code, Request, Response, Status};

/// What the scripted notificacoes does with each `SendNotification`, in order; once the
/// script is empty it stores the notification.
#[derive(Clone, Copy, Debug)]
enum Step {
    Fail(Code),
    /// Answers OK after this long.
    Slow(Duration),
}

#[derive(Clone, Default)]
struct Scripted {
    script: Arc<Mutex<VecDeque<Step>>>,
    calls: Arc<Mutex<usize>>,
    stored: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        let s = Self::default();
        s.script.lock().unwrap().extend(steps);
        s
    }
    fn calls(&self) -> usize {
        *self.calls.lock().unwrap()
    }
    fn stored(&self) -> usize {
        self.stored.lock().unwrap().len()
    }
}

#[tonic::async_trait]
impl NotificacoesService for Scripted {
    async fn send_notification(
        &self,
        r: Request<SendNotificationRequest>,
    ) -> Result<Response<SendNotificationResponse>, Status> {
        *self.calls.lock().unwrap() += 1;
        let step = self.script.lock().unwrap().pop_front();
        match step {
            Some(Step::Fail(code)) => return Err(Status::new(code, "scripted refusal")),
            Some(Step::Slow(d)) => tokio::time::sleep(d).await,
            None => {}
        }
        let key = r.into_inner().chave_idempotencia;
        let mut stored = self.stored.lock().unwrap();
        if !stored.contains(&key) {
            stored.push(key);
        }
        Ok(Response::new(SendNotificationResponse {
            id_notificacao: stored.len().to_string(),
            ..Default::default()
        }))
    }
}

async fn serve(fake: Scripted) -> String {
    let routes = tonic::service::Routes::new(NotificacoesServiceServer::new(fake));
    aula_runtime::testing::serve_fake(routes).await
}

fn notice(user: &str) -> SendNotificationRequest {
    SendNotificationRequest {
        id_usuario: user.into(),
        message: "Aula amanhã".into(),
        chave_idempotencia: String::new(),
        origem: String::new(),
    }
}

/// (attempts, dead letter?, last error) of every outbox row.
async fn rows(svc: &aula_runtime::testing::TestService) -> Vec<(i64, bool, Option<String>)> {
    let mut sql = svc.sql().await;
    sqlx::query(
        "SELECT CAST(tentativas AS BIGINT), CASE WHEN morta_ms IS NULL THEN 0 ELSE 1 END, ultimo_erro \
         FROM outbox ORDER BY id",
    )
    .fetch_all(&mut sql)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get::<i64, _>(1) == 1, r.get(2)))
    .collect()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_refusal_for_good_is_a_dead_letter_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Scripted::new([Step::Fail(Code::InvalidArgument); 10]);
    let url = serve(fake.clone()).await;
    let (svc, mut client) = start_cursos(dir.path(), &vars(&[("NOTIFICACOES_ADDR", &url)])).await;
    let r = client.send_notification(notice("7")).await.unwrap();
    assert!(r.into_inner().pendente, "not delivered now");
    let rows = eventually(SETTLE, "the message given up", || async {
        let r = rows(&svc).await;
        r.iter().all(|(_, dead, _)| *dead).then_some(r)
    })
    .await;
    assert_eq!(rows.len(), 1);
    let (attempts, _, error) = &rows[0];
    assert_eq!(*attempts, 1, "no retry of a refusal for good");
    assert!(
        error.as_deref().unwrap_or("").contains("InvalidArgument"),
        "{error:?}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.calls(), 1, "a dead letter is not delivered again");
    let s = client.get_status(Empty {}).await.answer();
    assert_eq!(
        s.contagens["outbox_pendentes"], 0,
        "a dead letter is not pending"
    );
    let text = eventually(SETTLE, "the dead-letter gauge", || async {
        let t = svc.metrics_text().await;
        (metric(&t, "aula_outbox_dead_letters") == 1.0).then_some(t)
    })
    .await;
    assert_eq!(metric(&text, "aula_outbox_dead_letters_total"), 1.0);
}

#[tokio::test]
async fn transient_failures_are_retried_up_to_the_cap_then_given_up() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Scripted::new([Step::Fail(Code::Unavailable); 10]);
    let url = serve(fake.clone()).await;
    let (svc, mut client) = start_cursos(
        dir.path(),
        &vars(&[
            ("NOTIFICACOES_ADDR", &url),
            ("AULA_OUTBOX_MAX_ATTEMPTS", "3"),
        ]),
    )
    .await;
    client.send_notification(notice("7")).await.unwrap();
    let rows = eventually(SETTLE, "the message given up after 3 attempts", || async {
        let r = rows(&svc).await;
        r.iter().all(|(_, dead, _)| *dead).then_some(r)
    })
    .await;
    assert_eq!(rows[0].0, 3, "{rows:?}");
    assert_eq!(fake.calls(), 3);
    assert_eq!(fake.stored(), 0);

    // Below the cap, a transient failure is retried until it is delivered.
    let fake = Scripted::new([Step::Fail(Code::Unavailable), Step::Fail(Code::Internal)]);
    let url = serve(fake.clone()).await;
    let (_dir, _svc, mut client) = cursos_with(&[("NOTIFICACOES_ADDR", &url)]).await;
    client.send_notification(notice("8")).await.unwrap();
    eventually(SETTLE, "delivered on the third attempt", || async {
        (fake.stored() == 1).then_some(())
    })
    .await;
    assert_eq!(fake.calls(), 3);
}

#[tokio::test]
async fn a_cut_off_immediate_attempt_is_redelivered_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    // The first call outlasts the immediate attempt's 1.5 s; the next ones answer at once.
    let fake = Scripted::new([Step::Slow(Duration::from_secs(4))]);
    let url = serve(fake.clone()).await;
    let (_svc, mut client) = start_cursos(dir.path(), &vars(&[("NOTIFICACOES_ADDR", &url)])).await;
    let started = Instant::now();
    let r = client.send_notification(notice("9")).await.unwrap();
    assert!(r.into_inner().pendente);
    eventually(SETTLE, "a second delivery attempt", || async {
        (fake.calls() >= 2).then_some(())
    })
    .await;
    // Before, the cut-off attempt left a 30 s lease on the row.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "redelivery started after {:?}",
        started.elapsed()
    );
    eventually(SETTLE, "delivered once", || async {
        (fake.stored() == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_notificacoes_known_down_is_not_dialed_by_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, mut client) =
        start_cursos(dir.path(), &[("NOTIFICACOES_ADDR".into(), closed_url())]).await;
    // The first call finds notificacoes down.
    client.send_notification(notice("1")).await.unwrap();
    let attempts = |t: &str| {
        metric(
            t,
            r#"aula_peer_connect_attempts_total{peer="notificacoes"}"#,
        )
    };
    let before = attempts(&svc.metrics_text().await);
    for u in 2..=41 {
        let r = client.send_notification(notice(&u.to_string())).await;
        assert!(r.unwrap().into_inner().pendente, "queued, not failed");
    }
    let after = attempts(&svc.metrics_text().await);
    // The reconnect backoff (250 ms doubling to 2 s) allows a few dials in the meantime, by
    // the worker; 40 calls must not each make one.
    assert!(
        after - before <= 8.0,
        "40 calls made {} connection attempts",
        after - before
    );
    let s = client.get_status(Empty {}).await.answer();
    assert_eq!(s.contagens["outbox_pendentes"], 41, "every call is queued");
}
