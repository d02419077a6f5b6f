//! `/healthz` (the services' health), `/livez`, `/readyz`, the drain, and `gateway healthcheck`.

mod common;

use common::{assert_erro_names, spawn_app, spawn_app_with};
use std::time::Duration;

/// A long drain: the listener stays open while /readyz says 503.
const SLOW_DRAIN: &[(&str, &str)] = &[
    ("GATEWAY_DRAIN_DELAY", "30s"),
    ("AULA_SHUTDOWN_GRACE", "60s"),
];

#[tokio::test]
async fn healthz_is_200_when_every_service_serves() {
    let app = spawn_app(&[]).await;
    let body = app.get_as("/healthz", 200).await;
    assert_eq!(body["status"], "SERVING");
    for name in common::all() {
        assert_eq!(
            body["servicos"][name]["status"], "SERVING",
            "{name}: {body}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn healthz_is_503_when_one_service_is_down() {
    let app = spawn_app(&["insights"]).await;
    let body = app.get_as("/healthz", 503).await;
    assert_eq!(body["status"], "NOT_SERVING");
    assert_eq!(
        body["servicos"]["insights"]["status"], "UNAVAILABLE",
        "{body}"
    );
    assert_erro_names(&body["servicos"]["insights"], "insights");
    assert_eq!(body["servicos"]["cursos"]["status"], "SERVING", "{body}");
    // Liveness and readiness are the gateway's own, not its backends'.
    assert_eq!(app.get("/livez").await.0, 200);
    assert_eq!(app.get("/readyz").await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn draining_turns_readyz_503_then_stops() {
    let app = spawn_app_with(&[], SLOW_DRAIN).await;
    let addr = app.base.clone();
    let readyz = || aula_runtime::healthcheck::readyz_status(&addr, Duration::from_secs(5));
    assert_eq!(readyz().await.unwrap(), 200);
    app.gateway.drain();
    assert!(app.gateway.is_draining());
    let body = app.get_as("/readyz", 503).await;
    assert_eq!(body["status"], "draining");
    assert_eq!(readyz().await.unwrap(), 503);
    // Still serving requests while not ready.
    assert_eq!(app.get("/cursos").await.0, 200);
    assert_eq!(app.get("/livez").await.0, 200);
    // The drain delay is long on purpose; the test runtime ends the gateway with the test.
    drop(app);
}

#[tokio::test]
async fn stop_closes_idle_connections_and_returns() {
    use tokio::io::AsyncReadExt;
    let app = spawn_app(&[]).await;
    // An idle keep-alive connection: the drain must close it rather than wait for it.
    let mut idle = tokio::net::TcpStream::connect(app.gateway.addr())
        .await
        .unwrap();
    app.stop().await;
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(30), idle.read(&mut buf))
        .await
        .expect("the idle connection was closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "EOF on the idle connection");
}

#[tokio::test]
async fn the_healthcheck_subcommand_follows_readyz() {
    let app = spawn_app_with(&[], SLOW_DRAIN).await;
    let bin = env!("CARGO_BIN_EXE_gateway");
    let check = || {
        tokio::process::Command::new(bin)
            .args(["healthcheck", "--addr", &app.base, "--timeout", "10s"])
            .output()
    };
    let ready = check().await.unwrap();
    assert!(ready.status.success(), "{ready:?}");
    app.gateway.drain();
    let draining = check().await.unwrap();
    assert!(!draining.status.success(), "{draining:?}");
    assert!(
        String::from_utf8_lossy(&draining.stdout).contains("503"),
        "{draining:?}"
    );
    drop(app);
}
