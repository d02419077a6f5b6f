//! The metrics the dashboards rely on (docs/CONFIG.md): `aula_gemini_requests_total{outcome}`,
//! `aula_gemini_request_duration_seconds`, `aula_gemini_tokens_total{direction}`, as a scrape
//! of the chatbot's registry shows them.

mod common;

use aula_runtime::metrics::Metrics;
use chatbot::gemini::GeminiMetrics;
use common::*;

/// The value of the series `series` (name and labels, as the exposition writes them).
fn value(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in:\n{page}"))
        .parse()
        .unwrap()
}

// A multi-threaded runtime: the handles record wherever the calls are polled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_latency_and_tokens_are_counted() {
    let registry = Metrics::new();
    let gemini = StandIn::start(ok("sim")).await;
    gemini.push([
        error(429, "RESOURCE_EXHAUSTED", "q"),
        error(429, "RESOURCE_EXHAUSTED", "q"),
        error(429, "RESOURCE_EXHAUSTED", "q"),
    ]);
    let client = gemini.client();
    client.set_metrics(GeminiMetrics::register(&registry));
    client.answer(&question(), None).await.unwrap_err();
    // The second call from a task of its own.
    let spawned = client.clone();
    tokio::spawn(async move { spawned.answer(&question(), None).await })
        .await
        .unwrap()
        .unwrap();
    client.answer(&question(), None).await.unwrap();

    let page = registry.render();
    let requests = "aula_gemini_requests_total";
    assert_eq!(
        value(&page, &format!(r#"{requests}{{outcome="quota"}}"#)),
        1.0
    );
    assert_eq!(value(&page, &format!(r#"{requests}{{outcome="ok"}}"#)), 2.0);
    assert_eq!(
        value(&page, "aula_gemini_request_duration_seconds_count"),
        3.0
    );
    let tokens = "aula_gemini_tokens_total";
    assert_eq!(
        value(&page, &format!(r#"{tokens}{{direction="input"}}"#)),
        22.0
    );
    assert_eq!(
        value(&page, &format!(r#"{tokens}{{direction="output"}}"#)),
        14.0
    );
    // Another service's registry in the same process sees none of it.
    assert!(!Metrics::new().render().contains(requests));
}
