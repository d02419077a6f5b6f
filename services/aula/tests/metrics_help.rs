//! Every metric a scrape shows is explained (`# HELP`), on every service and the gateway, after
//! the whole mix of the API has run; and the metrics port answers only on /metrics.

mod common;

use common::{http_get, output_within, spawn_platform};
use std::time::Duration;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_has_help_and_only_metrics_answers() {
    let p = spawn_platform().await;
    let metrics = aula_runtime::metrics::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let settings = common::pairs(&[("AULA_METRICS_LISTEN", "127.0.0.1:0")]);
    let gateway = p.start_gateway(&settings, Some(metrics)).await;
    let gateway_metrics = gateway.metrics_addr().unwrap();

    // Every RPC of the mix, through real clients.
    let mut load = tokio::process::Command::new(env!("CARGO_BIN_EXE_aula"));
    load.args([
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
    .env_remove("GEMINI_API_KEY");
    let out = output_within(&mut load, Duration::from_secs(60), "aula load finishes").await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for path in ["/healthz", "/readyz", "/cursos"] {
        http_get(gateway.addr(), path).await;
    }

    for s in p.all() {
        let page = s.metrics_text().await;
        assert!(page.contains("grpc_server_handled_total"), "{page}");
        let missing = unexplained(&page);
        assert!(missing.is_empty(), "{}: no # HELP for {missing:?}", s.url);
    }
    let (code, gateway_page) = http_get(gateway_metrics, "/metrics").await;
    assert_eq!(code, 200, "{gateway_page}");
    let missing = unexplained(&gateway_page);
    assert!(missing.is_empty(), "gateway: no # HELP for {missing:?}");

    for path in ["/", "/metricz", "/metrics/x"] {
        let (code, page) = http_get(gateway_metrics, path).await;
        assert_eq!(code, 404, "{path}: {page}");
    }
    gateway.stop().await.unwrap();
}
