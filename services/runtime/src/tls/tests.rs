//! Real TLS against a real server started by [`crate::server::start_on`]: certificates made
//! here with rcgen, handshakes by rustls, calls by tonic.

use super::{certs::DevCa, *};
use crate::{
    config::Settings,
    peers::PeerChannel,
    server::{self, ServiceDef},
    spec::NOTIFICACOES,
};
use rustls::pki_types::ServerName;
use std::{
    path::Path,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

const DAY: Duration = Duration::from_secs(86_400);

/// Writes `<name>.crt`/`<name>.key` issued by `ca`, and `ca.crt`.
fn issue(dir: &Path, ca: &DevCa, name: &str) {
    let i = ca.issue(name, "aula", DAY).unwrap();
    write(dir, &format!("{name}.crt"), &i.cert_pem);
    write(dir, &format!("{name}.key"), &i.key_pem);
}

/// A directory with a fresh CA's `ca.crt` and the certificates it issued to `names`.
fn with_ca(names: &[&str]) -> (tempfile::TempDir, DevCa) {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::new("aula.test", DAY).unwrap();
    write(dir.path(), "ca.crt", &ca.cert_pem());
    for name in names {
        issue(dir.path(), &ca, name);
    }
    (dir, ca)
}

/// A TLS client that trusts `ca` but has no certificate of its own (speaking HTTP/2).
fn without_certificate(ca: &DevCa) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap())
        .unwrap();
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// New certificates from `ca` for both sides, the server's key written before its
/// certificate; returns the server's new certificate.
fn rotate(dir: &Path, ca: &DevCa) -> String {
    let next = ca.issue("notificacoes", "aula", DAY).unwrap();
    write(dir, "notificacoes.key", &next.key_pem);
    write(dir, "notificacoes.crt", &next.cert_pem);
    issue(dir, ca, "cursos");
    next.cert_pem
}

fn write(dir: &Path, file: &str, text: &str) {
    let tmp = dir.join(format!("{file}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, dir.join(file)).unwrap();
}

fn env_of(dir: &Path, name: &str) -> Vec<(String, String)> {
    let mut env = super::cert_env(dir, name);
    env.push(("AULA_TLS_RELOAD_INTERVAL".into(), "100ms".into()));
    env
}

fn tls_of(dir: &Path, name: &str) -> Tls {
    Tls::from_env(&Env::from_pairs(env_of(dir, name)))
        .unwrap()
        .unwrap()
}

/// notificacoes' port with no routes of its own: authorization answers before them, and an
/// allowed call gets UNIMPLEMENTED from the router.
async fn start(dir: &Path) -> server::Running {
    start_with(dir, &[]).await
}

async fn start_with(dir: &Path, extra: &[(&str, &str)]) -> server::Running {
    let def = ServiceDef {
        spec: NOTIFICACOES,
        migrations: None,
        demo: None,
        build: |_| Box::pin(async { Ok(tonic::service::Routes::default()) }),
    };
    let mut env = Env::from_pairs(env_of(dir, "notificacoes"));
    env.set("AULA_DATA_DIR", dir.display().to_string());
    for (k, v) in extra {
        env.set(*k, *v);
    }
    let settings = Settings::load(NOTIFICACOES, &env).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    server::start_on(def, settings, listener, None)
        .await
        .unwrap()
}

fn peer(addr: std::net::SocketAddr, tls: &Tls) -> PeerChannel {
    PeerChannel::with_tls(
        &NOTIFICACOES,
        &format!("https://{addr}"),
        Duration::from_secs(3),
        Duration::from_secs(1),
        &Metrics::new(),
        Some(tls),
    )
    .unwrap()
}

async fn health(ch: PeerChannel) -> Result<(), tonic::Status> {
    HealthClient::new(ch)
        .check(HealthCheckRequest::default())
        .await
        .map(|_| ())
}

/// SendNotification with an empty request: only who may call it matters here.
async fn send_notification(ch: PeerChannel) -> tonic::Status {
    aula_api::notificacoes_service_client::NotificacoesServiceClient::new(ch)
        .send_notification(aula_api::SendNotificationRequest::default())
        .await
        .expect_err("no route answers")
}

fn failures(running: &server::Running, reason: &str) -> u64 {
    let text = running.metrics.render();
    let key = format!(r#"aula_tls_handshake_failures_total{{side="server",reason="{reason}"}} "#);
    text.lines()
        .find_map(|l| l.strip_prefix(&key)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn settings_are_all_or_nothing() {
    assert_eq!(TlsSettings::from_env(&Env::default()).unwrap(), None);
    let err = TlsSettings::from_env(&Env::from_pairs([("AULA_TLS_CERT", "/c")])).unwrap_err();
    assert_eq!(err.var, "AULA_TLS_KEY");
    let err =
        TlsSettings::from_env(&Env::from_pairs([("AULA_TLS_CLIENT_AUTH", "none")])).unwrap_err();
    assert_eq!(err.var, "AULA_TLS_CLIENT_AUTH");
    let all = [
        ("AULA_TLS_CERT", "/c"),
        ("AULA_TLS_KEY", "/k"),
        ("AULA_TLS_CA", "/a"),
    ];
    let s = TlsSettings::from_env(&Env::from_pairs(all))
        .unwrap()
        .unwrap();
    assert_eq!(s.client_auth, ClientAuth::Require);
    assert_eq!(s.admin_identities, ["operator"]);
    let mut bad = Env::from_pairs(all);
    bad.set("AULA_TLS_CLIENT_AUTH", "optional");
    assert_eq!(
        TlsSettings::from_env(&bad).unwrap_err().var,
        "AULA_TLS_CLIENT_AUTH"
    );
    bad.set("AULA_TLS_CLIENT_AUTH", "none");
    bad.set("AULA_TLS_ADMIN_IDENTITIES", "alice, cursos");
    assert_eq!(
        TlsSettings::from_env(&bad).unwrap_err().var,
        "AULA_TLS_ADMIN_IDENTITIES"
    );
    // A missing file is named at start-up.
    let err = Tls::load(&s).unwrap_err();
    assert!(
        format!("{err:#}").starts_with("AULA_TLS_CERT: cannot read /c"),
        "{err:#}"
    );
}

#[tokio::test]
async fn mutual_tls_proves_who_calls_and_the_catalogue_decides_what_they_may_call() {
    let (dir, ca) = with_ca(&["notificacoes", "cursos", "midia", "operator", "gateway"]);
    let d = dir.path();
    let running = start(d).await;
    let addr = running.addr;

    // Any verified client gets health; the identity decides the RPCs.
    health(peer(addr, &tls_of(d, "midia"))).await.unwrap();
    let denied = send_notification(peer(addr, &tls_of(d, "midia"))).await;
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    assert!(
        denied.message().contains("midia")
            && denied
                .message()
                .contains("NotificacoesService/SendNotification"),
        "{}",
        denied.message()
    );
    for allowed in ["cursos", "operator"] {
        let s = send_notification(peer(addr, &tls_of(d, allowed))).await;
        assert_eq!(s.code(), tonic::Code::Unimplemented, "{allowed}: {s:?}");
    }
    let s = send_notification(peer(addr, &tls_of(d, "gateway"))).await;
    assert_eq!(
        s.code(),
        tonic::Code::PermissionDenied,
        "the gateway does not send notifications"
    );
    let text = running.metrics.render();
    assert!(text.contains(
        r#"aula_authz_denied_total{method="/services.NotificacoesService/SendNotification"} 2"#
    ));
    // When our certificate expires, as Unix time: a day from now, as issued.
    let expiry: f64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("aula_tls_certificate_expiry_seconds ")?
                .parse()
                .ok()
        })
        .expect("the expiry gauge is exported");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (expiry - now - DAY.as_secs_f64()).abs() < 600.0,
        "{expiry} vs {now}"
    );

    // The healthcheck subcommand's path, with a certificate valid for localhost.
    let tls = tls_of(d, "operator");
    let status = crate::healthcheck::check_with(
        &format!("https://localhost:{}", addr.port()),
        "",
        Some(&tls),
        Duration::from_secs(3),
    )
    .await
    .unwrap();
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    // A plaintext client is refused at the handshake.
    let plain =
        crate::healthcheck::check(&format!("http://{addr}"), "", Duration::from_secs(3)).await;
    assert!(plain.is_err(), "{plain:?}");
    assert_eq!(failures(&running, "not_tls"), 1);

    // A certificate from another CA is refused, by the server and by the client.
    let other = tempfile::tempdir().unwrap();
    let other_ca = DevCa::new("aula.test", DAY).unwrap();
    write(other.path(), "ca.crt", &ca.cert_pem()); // trusts the right server...
    issue(other.path(), &other_ca, "cursos"); // ...but holds a certificate the server does not
    let err = health(peer(addr, &tls_of(other.path(), "cursos")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert_eq!(failures(&running, "unknown_ca"), 1);
    write(other.path(), "ca.crt", &other_ca.cert_pem());
    issue(other.path(), &ca, "cursos"); // a good certificate, but a server it cannot trust
    let err = health(peer(addr, &tls_of(other.path(), "cursos")))
        .await
        .unwrap_err();
    assert!(err.message().contains("TLS handshake"), "{err:?}");

    // TLS without a client certificate is refused.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let stream = tokio_rustls::TlsConnector::from(without_certificate(&ca))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;
    // TLS 1.3 finishes the client's side of the handshake before the server refuses: the
    // refusal arrives on the first read.
    if let Ok(mut s) = stream {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
        let mut buf = [0u8; 64];
        let read = s.read(&mut buf).await;
        assert!(
            !matches!(read, Ok(n) if n > 0),
            "no HTTP/2 without a certificate: {read:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(failures(&running, "no_client_certificate"), 1);
    running.stop().await.unwrap();
}

/// `AULA_TLS_TRUST_DOMAIN`: a certificate the CA signed for another trust domain (a CA
/// shared across a mesh's domains) verifies, but names nobody, so it may call nothing but
/// health; the same name in our trust domain works.
#[tokio::test]
async fn a_spiffe_id_from_another_trust_domain_names_nobody() {
    let (dir, ca) = with_ca(&["notificacoes", "cursos"]);
    let d = dir.path();
    // The same CA key signing for another trust domain.
    let foreign_dir = tempfile::tempdir().unwrap();
    let f = foreign_dir.path();
    let foreign = DevCa::from_key("evil.test", ca.key_pem(), DAY).unwrap();
    write(f, "ca.crt", &ca.cert_pem());
    issue(f, &foreign, "cursos");
    let running = start_with(d, &[("AULA_TLS_TRUST_DOMAIN", "aula.test")]).await;
    let addr = running.addr;

    let ours = send_notification(peer(addr, &tls_of(d, "cursos"))).await;
    assert_eq!(ours.code(), tonic::Code::Unimplemented, "{ours:?}");
    let theirs = tls_of(f, "cursos");
    health(peer(addr, &theirs)).await.unwrap();
    let denied = send_notification(peer(addr, &theirs)).await;
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    assert!(
        denied
            .message()
            .contains("names no identity in trust domain aula.test"),
        "{}",
        denied.message()
    );
    running.stop().await.unwrap();

    // Our own certificate outside the trust domain stops the start, naming both.
    let mut env = Env::from_pairs(env_of(f, "cursos"));
    env.set("AULA_TLS_TRUST_DOMAIN", "aula.test");
    let err = Tls::from_env(&env).unwrap_err();
    assert!(
        format!("{err:#}").contains(
            "spiffe://evil.test/ns/aula/sa/cursos, outside AULA_TLS_TRUST_DOMAIN aula.test"
        ),
        "{err:#}"
    );
    // A value that is no trust domain, or one without TLS, is named.
    env.set("AULA_TLS_TRUST_DOMAIN", "spiffe://aula.test");
    assert_eq!(
        TlsSettings::from_env(&env).unwrap_err().var,
        "AULA_TLS_TRUST_DOMAIN"
    );
    let off = Env::from_pairs([("AULA_TLS_TRUST_DOMAIN", "aula.test")]);
    assert_eq!(
        TlsSettings::from_env(&off).unwrap_err().var,
        "AULA_TLS_TRUST_DOMAIN"
    );
}

/// Certificates, keys and the CA are rotated under load on both sides, three times, through
/// new and existing connections: no call fails, and new handshakes see the new certificate.
#[tokio::test]
async fn rotation_under_load_fails_no_call() {
    let (dir, ca) = with_ca(&["notificacoes", "cursos"]);
    let d = dir.path();
    let running = start(d).await;
    let addr = running.addr;
    let client = tls_of(d, "cursos");
    client.watch(&Metrics::new());

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (stop, ok, failed, client) = (stop.clone(), ok.clone(), failed.clone(), client.clone());
        workers.push(tokio::spawn(async move {
            let shared = peer(addr, &client);
            while !stop.load(Ordering::Relaxed) {
                // Half the workers reuse a connection, half make a new one per call.
                let ch = if w % 2 == 0 {
                    shared.clone()
                } else {
                    peer(addr, &client)
                };
                match health(ch).await {
                    Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        eprintln!("failed: {e:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    let served_cert = || async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let s = tokio_rustls::TlsConnector::from(client.client_config())
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        s.get_ref().1.peer_certificates().unwrap()[0].clone()
    };
    let wait_for = |pem: String| async move {
        let want = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let start = std::time::Instant::now();
        while served_cert().await != want {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "not picked up within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 1. New certificates and keys from the same CA.
    wait_for(rotate(d, &ca)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 2. A new CA: first trusted beside the old one, then issuing, then alone.
    let new_ca = DevCa::new("aula.test", DAY).unwrap();
    write(
        d,
        "ca.crt",
        &format!("{}{}", ca.cert_pem(), new_ca.cert_pem()),
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    wait_for(rotate(d, &new_ca)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    write(d, "ca.crt", &new_ca.cert_pem());
    tokio::time::sleep(Duration::from_millis(400)).await;

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("rotation under load: {ok} calls answered, {failed} failed");
    assert_eq!(failed, 0);
    assert!(ok > 50, "some load ran: {ok}");
    running.stop().await.unwrap();
}

/// `AULA_TLS_CLIENT_AUTH=none`: encryption and server authentication only. A client without a
/// certificate is served, nobody is identified, and nothing is authorized per RPC.
#[tokio::test]
async fn without_client_auth_tls_only_encrypts() {
    let (dir, ca) = with_ca(&["notificacoes"]);
    let running = start_with(dir.path(), &[("AULA_TLS_CLIENT_AUTH", "none")]).await;

    // A client that trusts the CA but has no certificate of its own.
    let config = without_certificate(&ca);
    let addr = running.addr;
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let config = config.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                let tls = tokio_rustls::TlsConnector::from(config)
                    .connect(ServerName::try_from("localhost").unwrap(), tcp)
                    .await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        }))
        .await
        .unwrap();
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    let status = aula_api::notificacoes_service_client::NotificacoesServiceClient::new(channel)
        .send_notification(aula_api::SendNotificationRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        tonic::Code::Unimplemented,
        "not authorized per RPC: {status:?}"
    );
    running.stop().await.unwrap();
}
