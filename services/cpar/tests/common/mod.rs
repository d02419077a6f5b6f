//! Shared helpers for cpar's tests.
#![allow(dead_code)]

use aula_api::{
    cpar_service_client::CparServiceClient, notificacoes_service_client::NotificacoesServiceClient,
    CancelScheduleRequest, CreateScheduleRequest, GetScheduleRequest, Notification, Schedule,
};
use aula_runtime::testing::{self, TestService};
// Not every test binary uses each helper.
#[allow(unused_imports)]
pub use aula_runtime::testing::{assert_code, eventually, Reply, SETTLE};
use std::{
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};
use tonic::transport::Channel;

pub type Cpar = CparServiceClient<Channel>;
pub type Notificacoes = NotificacoesServiceClient<Channel>;

/// cpar with `extra` variables (peer addresses, reminder timing).
pub async fn start_cpar(dir: &Path, extra: &[(&str, &str)]) -> TestService {
    testing::spawn(cpar::service(), dir, &testing::vars(extra))
        .await
        .expect("cpar starts")
}

/// cpar alone (its peers down) in a temporary directory of its own, and a client of it.
pub async fn cpar_alone() -> (tempfile::TempDir, TestService, Cpar) {
    testing::start_alone(cpar::service(), &[], Cpar::new).await
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
    let created = c
        .create_schedule(booking(user, titulo, starts_in_secs))
        .await;
    created.expect("CreateSchedule").into_inner()
}

pub async fn notifications_of(n: &mut Notificacoes, user: &str) -> Vec<Notification> {
    testing::notifications_of(n, user, false).await
}

pub fn schedule(id: &str) -> GetScheduleRequest {
    GetScheduleRequest {
        id_agendamento: id.into(),
    }
}

pub fn cancel(id: &str) -> CancelScheduleRequest {
    CancelScheduleRequest {
        id_agendamento: id.into(),
    }
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
