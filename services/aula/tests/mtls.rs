//! Mutual TLS across the real services (issue #14): certificates written as `aula certs`
//! writes them, each service and the gateway with its own, real handshakes and calls.

mod common;

use aula_api::{
    notificacoes_service_client::NotificacoesServiceClient, ListNotificationsRequest,
    SendNotificationRequest,
};
use aula_runtime::testing::Reply;
use aula_runtime::{
    healthcheck,
    metrics::Metrics,
    peers::PeerChannel,
    spec::{self, ServiceSpec},
    testing::{closed_url, spawn, TestService},
    tls::{certs, Tls},
    Env,
};
use common::{eventually, http_get, output_within, WAIT};
use std::{path::Path, time::Duration};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

fn tls(dir: &Path, name: &str) -> Tls {
    Tls::from_env(&Env::from_pairs(aula_runtime::tls::cert_env(dir, name)))
        .unwrap()
        .unwrap()
}

/// Writes a development CA and a certificate for each of `identities` to a new directory, as
/// `aula certs` does.
fn write_certs(identities: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    certs::write_dir(&certs::WriteOptions {
        out: dir.path(),
        trust_domain: "aula.test",
        namespace: "aula",
        identities,
        validity: Duration::from_secs(86_400),
        key_mode: 0o600,
    })
    .unwrap();
    dir
}

/// The six services' names and `more`.
fn services_and<'a>(more: &[&'a str]) -> Vec<&'a str> {
    let mut ids: Vec<&str> = spec::ALL.iter().map(|s| s.name).collect();
    ids.extend(more);
    ids
}

/// A peer address where nothing listens, for a service that speaks TLS.
fn closed_https() -> String {
    closed_url().replace("http:", "https:")
}

/// A channel to `service` presenting `identity`'s certificate.
fn as_identity(
    dir: &Path,
    identity: &str,
    spec: &ServiceSpec,
    service: &TestService,
) -> PeerChannel {
    PeerChannel::with_tls(
        spec,
        &service.url,
        Duration::from_secs(5),
        Duration::from_secs(1),
        &Metrics::new(),
        Some(&tls(dir, identity)),
    )
    .unwrap()
}

#[tokio::test]
async fn services_the_gateway_and_the_operator_work_over_mtls_and_nobody_else_does() {
    let data = tempfile::tempdir().unwrap();
    let certs_dir = write_certs(&services_and(&["gateway", "operator"]));
    let c = certs_dir.path();
    let p = data.path();
    let with = |name: &str, more: Vec<(String, String)>| {
        let mut e = aula_runtime::tls::cert_env(c, name);
        e.extend(more);
        e
    };
    let notificacoes = spawn(notificacoes::service(), p, &with("notificacoes", vec![]))
        .await
        .unwrap();
    let midia = spawn(midia::service(), p, &with("midia", vec![]))
        .await
        .unwrap();
    let chatbot_addr = ("CHATBOT_ADDR".to_string(), closed_https());
    let cursos = spawn(
        cursos::service(),
        p,
        &with(
            "cursos",
            vec![notificacoes.addr_var(), midia.addr_var(), chatbot_addr],
        ),
    )
    .await
    .unwrap();
    assert!(cursos.url.starts_with("https://"), "{}", cursos.url);

    // The operator (an admin identity) asks cursos to notify a user: cursos -> notificacoes
    // as `cursos`, allowed by the catalogue.
    let operator = common::tls_channel(&cursos.url, &tls(c, "operator"));
    let sent = common::send_notification(operator, "7", "over mTLS").await;
    assert!(!sent.pendente, "delivered, not queued: {sent:?}");
    // User 7's inbox, asked of notificacoes by `identity`.
    let inbox_as = |identity: &str| {
        let notificacoes = as_identity(c, identity, &spec::NOTIFICACOES, &notificacoes);
        let user = ListNotificationsRequest {
            id_usuario: "7".into(),
            ..Default::default()
        };
        async move {
            let mut client = NotificacoesServiceClient::new(notificacoes);
            client.list_notifications(user).await
        }
    };
    let inbox = inbox_as("operator").await.answer();
    assert!(
        format!("{inbox:?}").contains("over mTLS"),
        "the notification arrived: {inbox:?}"
    );

    // midia may not send notifications; cursos may not read inboxes.
    let denied =
        NotificacoesServiceClient::new(as_identity(c, "midia", &spec::NOTIFICACOES, &notificacoes))
            .send_notification(SendNotificationRequest {
                id_usuario: "7".into(),
                message: "spoofed".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(
        denied.message().contains("midia")
            && denied
                .message()
                .contains("services.NotificacoesService/SendNotification"),
        "{}",
        denied.message()
    );
    let denied = inbox_as("cursos").await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");

    // A plaintext client is refused; the health check passes with a certificate.
    let plain = healthcheck::check(
        &notificacoes.url.replace("https:", "http:"),
        "",
        Duration::from_secs(3),
    )
    .await;
    assert!(plain.is_err(), "{plain:?}");
    let midia_certificate = tls(c, "midia");
    for s in [&notificacoes, &midia, &cursos] {
        let service = s.running.spec.grpc_service;
        let timeout = Duration::from_secs(3);
        let check = healthcheck::check_with(&s.url, service, Some(&midia_certificate), timeout);
        assert_eq!(check.await.unwrap(), ServingStatus::Serving, "{service}");
    }

    // The gateway calls cursos and midia over mTLS as `gateway`.
    let mut genv = Env::from_pairs(with(
        "gateway",
        vec![cursos.addr_var(), midia.addr_var(), notificacoes.addr_var()],
    ));
    genv.set("GATEWAY_DRAIN_DELAY", "0s");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = gateway::start(&genv, listener, None).await.unwrap();
    let (code, body) = eventually(WAIT, "the gateway answers over mTLS", || async {
        let r = http_get(gw.addr(), "/cursos/ver_inscricoes_do_usuario/1").await;
        (r.0 == 200).then_some(r)
    })
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = http_get(gw.addr(), "/midia_conteudo/1").await;
    assert_eq!(code, 200, "{body}");
    // cursos' SendNotification is the gateway's to call; notificacoes' inbox is not.
    let (code, body) = http_get(gw.addr(), "/cursos/enviar_notificacao/7").await;
    assert_eq!(code, 200, "{body}");

    gw.stop().await.unwrap();
    for s in [cursos, midia, notificacoes] {
        s.running.stop().await.unwrap();
    }
}

/// Every chain between the services works with mTLS and authorization on: the catalogue lists
/// every call the services make (a missing entry would refuse it in production).
#[tokio::test]
async fn every_chain_between_the_services_works_over_mtls() {
    let certs_dir = write_certs(&services_and(&["operator"]));
    let c = certs_dir.path();
    let own_certificate = |name: &str| aula_runtime::tls::cert_env(c, name);
    let data = tempfile::tempdir().unwrap();
    let p = common::spawn_each(data, own_certificate, Some(tls(c, "operator"))).await;
    assert!(p.cursos.url.starts_with("https://"), "{}", p.cursos.url);

    // cursos -> midia
    let media = p.course_media("1").await;
    assert!(!media.itens.is_empty(), "{media:?}");

    p.a_question_reaches_insights().await;

    let notified = p.an_appointment_notice_arrives().await;
    assert!(
        !notified.pendente,
        "delivered over mTLS, not queued: {notified:?}"
    );
    p.stop().await;
}

/// `aula load` against a stack that speaks only mutual TLS: with the operator's `AULA_TLS_*` it
/// checks health and drives the calls over TLS (it used to report the stack down, asking health
/// without its certificate).
#[tokio::test]
async fn aula_load_drives_a_stack_over_mtls() {
    let data = tempfile::tempdir().unwrap();
    let certs_dir = write_certs(&["cursos", "operator"]);
    let c = certs_dir.path();
    let mut env = aula_runtime::tls::cert_env(c, "cursos");
    for peer in ["MIDIA_ADDR", "CHATBOT_ADDR", "NOTIFICACOES_ADDR"] {
        env.push((peer.into(), closed_https()));
    }
    let cursos = spawn(cursos::service(), data.path(), &env).await.unwrap();

    let mut load = tokio::process::Command::new(env!("CARGO_BIN_EXE_aula"));
    load.args(["load", "--only", "GetUserCourses", "--rate", "100"])
        .args([
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--max-error-ratio",
            "0",
        ])
        .args(["--json", "-"])
        .envs(aula_runtime::tls::cert_env(c, "operator"))
        .env("CURSOS_ADDR", &cursos.url);
    let out = output_within(&mut load, Duration::from_secs(60), "aula load finishes").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "aula load failed:\n{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let total = &summary["total"];
    assert!(total["count"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(total["errors"].as_u64(), Some(0), "{summary}");
    cursos.running.stop().await.unwrap();
}
