//! Every metric a scrape shows is explained (`# HELP`), on every service and the gateway, after
//! the whole mix of the API has run; and the metrics port answers only on /metrics.

mod common;

use common::spawn_platform;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Names with a `# TYPE` line and no `# HELP` line.
fn unexplained(page: &str) -> Vec<String> {
    let helped: Vec<&str> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    page.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| !helped.contains(name))
        .map(str::to_string)
        .collect()
}

/// The status line of `GET path` on `host:port`.
async fn status_of(host: &str, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_has_help_and_only_metrics_answers() {
    let p = spawn_platform().await;
    let mut gateway_env = aula_runtime::Env::from_pairs(p.all().iter().map(|s| s.addr_var()));
    gateway_env.set("AULA_METRICS_LISTEN", "127.0.0.1:0");
    let metrics = aula_runtime::metrics::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = gateway::start(&gateway_env, listener, Some(metrics))
        .await
        .unwrap();
    let gateway_metrics = gateway.metrics_addr().unwrap().to_string();
    let api = gateway.addr().to_string();

    // Every RPC of the mix, through real clients.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_aula"))
        .args([
            "load",
            "--rate",
            "100",
            "--duration",
            "1s",
            "--warmup",
            "0s",
        ])
        .args(["--max-error-ratio", "1"])
        .envs(p.all().iter().map(|s| s.addr_var()))
        .env_remove("GEMINI_API_KEY")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for path in ["/healthz", "/readyz", "/cursos"] {
        status_of(&api, path).await;
    }

    for s in p.all() {
        let page = s.metrics_text().await;
        assert!(page.contains("grpc_server_handled_total"), "{page}");
        let missing = unexplained(&page);
        assert!(missing.is_empty(), "{}: no # HELP for {missing:?}", s.url);
    }
    let page = status_of(&gateway_metrics, "/metrics").await;
    assert!(page.contains("200"), "{page}");
    let gateway_page = {
        let mut s = tokio::net::TcpStream::connect(&gateway_metrics)
            .await
            .unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    let missing = unexplained(&gateway_page);
    assert!(missing.is_empty(), "gateway: no # HELP for {missing:?}");

    for path in ["/", "/metricz", "/metrics/x"] {
        let status = status_of(&gateway_metrics, path).await;
        assert!(status.contains("404"), "{path}: {status}");
    }
    gateway.stop().await.unwrap();
}
