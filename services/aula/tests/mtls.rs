//! Mutual TLS across the real services (issue #14): certificates written as `aula certs`
//! writes them, each service and the gateway with its own, real handshakes and calls.

mod common;

use aula_api::{
    cursos_service_client::CursosServiceClient,
    notificacoes_service_client::NotificacoesServiceClient, ListNotificationsRequest,
    SendNotificationRequest,
};
use aula_runtime::{
    healthcheck,
    metrics::Metrics,
    peers::PeerChannel,
    spec::{self, ServiceSpec},
    testing::{closed_url, spawn, TestService},
    tls::{certs, Tls},
    Env,
};
use std::{path::Path, time::Duration};
use tonic::Code;

const WAIT: Duration = Duration::from_secs(20);

fn tls(dir: &Path, name: &str) -> Tls {
    Tls::from_env(&Env::from_pairs(aula_runtime::tls::cert_env(dir, name)))
        .unwrap()
        .unwrap()
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

/// `GET path` on the gateway over plain HTTP/1.0; the status code and body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let code = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, out)
}

#[tokio::test]
async fn services_the_gateway_and_the_operator_work_over_mtls_and_nobody_else_does() {
    let data = tempfile::tempdir().unwrap();
    let certs_dir = tempfile::tempdir().unwrap();
    let c = certs_dir.path();
    let mut ids: Vec<&str> = spec::ALL.iter().map(|s| s.name).collect();
    ids.extend(["gateway", "operator"]);
    certs::write_dir(&certs::WriteOptions {
        out: c,
        trust_domain: "aula.test",
        namespace: "aula",
        identities: &ids,
        validity: Duration::from_secs(86_400),
        key_mode: 0o600,
    })
    .unwrap();
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
    let chatbot_addr = (
        "CHATBOT_ADDR".to_string(),
        closed_url().replace("http:", "https:"),
    );
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
    let sent = CursosServiceClient::new(as_identity(c, "operator", &spec::CURSOS, &cursos))
        .send_notification(SendNotificationRequest {
            id_usuario: "7".into(),
            message: "over mTLS".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!sent.pendente, "delivered, not queued: {sent:?}");
    let inbox = NotificacoesServiceClient::new(as_identity(
        c,
        "operator",
        &spec::NOTIFICACOES,
        &notificacoes,
    ))
    .list_notifications(ListNotificationsRequest {
        id_usuario: "7".into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
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
    let denied = NotificacoesServiceClient::new(as_identity(
        c,
        "cursos",
        &spec::NOTIFICACOES,
        &notificacoes,
    ))
    .list_notifications(ListNotificationsRequest {
        id_usuario: "7".into(),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");

    // A plaintext client is refused; the health check passes with a certificate.
    let plain = healthcheck::check(
        &notificacoes.url.replace("https:", "http:"),
        "",
        Duration::from_secs(3),
    )
    .await;
    assert!(plain.is_err(), "{plain:?}");
    for s in [&notificacoes, &midia, &cursos] {
        let status = healthcheck::check_with(
            &s.url,
            s.running.spec.grpc_service,
            Some(&tls(c, "midia")),
            Duration::from_secs(3),
        )
        .await
        .unwrap();
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving
        );
    }

    // The gateway calls cursos and midia over mTLS as `gateway`.
    let mut genv = Env::from_pairs(with(
        "gateway",
        vec![cursos.addr_var(), midia.addr_var(), notificacoes.addr_var()],
    ));
    genv.set("GATEWAY_DRAIN_DELAY", "0s");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = gateway::start(&genv, listener, None).await.unwrap();
    let (code, body) = common::eventually(WAIT, "the gateway answers over mTLS", || async {
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
    use aula_api::{
        cpar_service_client::CparServiceClient, insights_service_client::InsightsServiceClient,
        AskQuestionRequest, GetCourseInsightsRequest, GetScheduleRequest, NotifyScheduleRequest,
    };
    let data = tempfile::tempdir().unwrap();
    let certs_dir = tempfile::tempdir().unwrap();
    let c = certs_dir.path();
    let mut ids: Vec<&str> = spec::ALL.iter().map(|s| s.name).collect();
    ids.push("operator");
    certs::write_dir(&certs::WriteOptions {
        out: c,
        trust_domain: "aula.test",
        namespace: "aula",
        identities: &ids,
        validity: Duration::from_secs(86_400),
        key_mode: 0o600,
    })
    .unwrap();
    let p = data.path();
    let with = |name: &str, peers: &[&TestService]| {
        let mut e = aula_runtime::tls::cert_env(c, name);
        e.extend(peers.iter().map(|s| s.addr_var()));
        e
    };
    let notificacoes = spawn(notificacoes::service(), p, &with("notificacoes", &[]))
        .await
        .unwrap();
    let insights = spawn(insights::service(), p, &with("insights", &[]))
        .await
        .unwrap();
    let midia = spawn(midia::service(), p, &with("midia", &[]))
        .await
        .unwrap();
    let chatbot = spawn(chatbot::service(), p, &with("chatbot", &[&insights]))
        .await
        .unwrap();
    let cpar = spawn(cpar::service(), p, &with("cpar", &[&notificacoes]))
        .await
        .unwrap();
    let cursos = spawn(
        cursos::service(),
        p,
        &with("cursos", &[&midia, &chatbot, &notificacoes]),
    )
    .await
    .unwrap();
    let op = |spec: &ServiceSpec, s: &TestService| as_identity(c, "operator", spec, s);

    // cursos -> midia
    let media = CursosServiceClient::new(op(&spec::CURSOS, &cursos))
        .get_course_media(aula_api::GetCourseMediaRequest {
            id_curso: "1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!media.itens.is_empty(), "{media:?}");

    // cursos -> chatbot -> insights
    let mut insights_client = InsightsServiceClient::new(op(&spec::INSIGHTS, &insights));
    let before = insights_client
        .get_course_insights(GetCourseInsightsRequest {
            id_curso: "1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let answer = CursosServiceClient::new(op(&spec::CURSOS, &cursos))
        .ask_question(AskQuestionRequest {
            id_curso: "1".into(),
            aula_contexto: "Aula 1".into(),
            duvida: "O que é uma variável?".into(),
            id_usuario: "1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.resposta.is_empty(), "{answer:?}");
    common::eventually(WAIT, "the question to reach insights over mTLS", || {
        let mut insights = insights_client.clone();
        async move {
            let now = insights
                .get_course_insights(GetCourseInsightsRequest {
                    id_curso: "1".into(),
                })
                .await
                .ok()?
                .into_inner();
            (now.total_perguntas > before.total_perguntas).then_some(())
        }
    })
    .await;

    // cpar -> notificacoes
    let mut cpar_client = CparServiceClient::new(op(&spec::CPAR, &cpar));
    let schedule = cpar_client
        .get_schedule(GetScheduleRequest {
            id_agendamento: "1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let notified = cpar_client
        .notify_schedule(NotifyScheduleRequest {
            id_agendamento: "1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !notified.pendente,
        "delivered over mTLS, not queued: {notified:?}"
    );
    let inbox = NotificacoesServiceClient::new(op(&spec::NOTIFICACOES, &notificacoes))
        .list_notifications(ListNotificationsRequest {
            id_usuario: schedule.id_usuario.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!inbox.notificacoes.is_empty(), "{inbox:?}");

    for s in [cursos, cpar, chatbot, midia, insights, notificacoes] {
        s.running.stop().await.unwrap();
    }
}

/// `aula load` against a stack that speaks only mutual TLS: with the operator's `AULA_TLS_*` it
/// checks health and drives the calls over TLS (it used to report the stack down, asking health
/// without its certificate).
#[tokio::test]
async fn aula_load_drives_a_stack_over_mtls() {
    let data = tempfile::tempdir().unwrap();
    let certs_dir = tempfile::tempdir().unwrap();
    let c = certs_dir.path();
    certs::write_dir(&certs::WriteOptions {
        out: c,
        trust_domain: "aula.test",
        namespace: "aula",
        identities: &["cursos", "operator"],
        validity: Duration::from_secs(86_400),
        key_mode: 0o600,
    })
    .unwrap();
    let mut env = aula_runtime::tls::cert_env(c, "cursos");
    for peer in ["MIDIA_ADDR", "CHATBOT_ADDR", "NOTIFICACOES_ADDR"] {
        env.push((peer.into(), closed_url().replace("http:", "https:")));
    }
    let cursos = spawn(cursos::service(), data.path(), &env).await.unwrap();

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(["load", "--only", "GetUserCourses", "--rate", "100"])
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
        .env("CURSOS_ADDR", &cursos.url)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("aula load finishes")
        .expect("aula load runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "aula load failed:\n{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let total = &summary["total"];
    assert!(total["count"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(total["errors"].as_u64(), Some(0), "{summary}");
    cursos.running.stop().await.unwrap();
}
