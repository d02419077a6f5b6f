//! Shared helpers for cpar's tests.
#![allow(dead_code)]

use aula_api::{
    cpar_service_client::CparServiceClient, notificacoes_service_client::NotificacoesServiceClient,
    CreateScheduleRequest, ListNotificationsRequest, Notification, Schedule,
};
use aula_runtime::testing::{self, TestService};
// Not every test binary uses each helper.
#[allow(unused_imports)]
pub use aula_runtime::testing::{eventually, SETTLE};
use std::{
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};
use tonic::{transport::Channel, Code};

pub type Cpar = CparServiceClient<Channel>;
pub type Notificacoes = NotificacoesServiceClient<Channel>;

/// cpar with `extra` variables (peer addresses, reminder timing).
pub async fn start_cpar(dir: &Path, extra: &[(&str, &str)]) -> TestService {
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    testing::spawn(cpar::service(), dir, &extra)
        .await
        .expect("cpar starts")
}

pub async fn start_notificacoes(dir: &Path) -> TestService {
    testing::spawn(notificacoes::service(), dir, &[])
        .await
        .expect("notificacoes starts")
}

pub fn cpar(s: &TestService) -> Cpar {
    CparServiceClient::new(s.channel())
}

pub fn notificacoes(s: &TestService) -> Notificacoes {
    NotificacoesServiceClient::new(s.channel())
}

/// A timestamp `secs` from now.
pub fn in_secs(secs: i64) -> prost_types::Timestamp {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    prost_types::Timestamp {
        seconds: now + secs,
        nanos: 0,
    }
}

pub fn booking(user: &str, titulo: &str, starts_in_secs: i64) -> CreateScheduleRequest {
    CreateScheduleRequest {
        id_usuario: user.into(),
        titulo: titulo.into(),
        inicio: Some(in_secs(starts_in_secs)),
        duracao_minutos: 30,
    }
}

pub async fn create(c: &mut Cpar, user: &str, titulo: &str, starts_in_secs: i64) -> Schedule {
    c.create_schedule(booking(user, titulo, starts_in_secs))
        .await
        .expect("CreateSchedule")
        .into_inner()
}

pub async fn notifications_of(n: &mut Notificacoes, user: &str) -> Vec<Notification> {
    n.list_notifications(ListNotificationsRequest {
        id_usuario: user.into(),
        unread_only: false,
        page_size: 100,
        page_token: String::new(),
    })
    .await
    .expect("ListNotifications")
    .into_inner()
    .notificacoes
}

/// The outbox is empty: everything cpar queued was delivered.
pub async fn outbox_drained(c: &Cpar) {
    eventually(SETTLE, "cpar's outbox to drain", || {
        let mut c = c.clone();
        async move {
            let s = c.get_status(aula_api::Empty {}).await.ok()?.into_inner();
            (s.contagens["notificacoes_pendentes"] == 0).then_some(())
        }
    })
    .await;
}

pub fn assert_code<T: std::fmt::Debug>(r: Result<T, tonic::Status>, code: Code, starts: &str) {
    let e = r.expect_err("the request is refused");
    assert_eq!(e.code(), code, "{e:?}");
    assert!(e.message().starts_with(starts), "{starts}: {e:?}");
}
