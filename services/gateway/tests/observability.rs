//! Metrics on the metrics port (route templates, never raw paths) and trace context carried
//! from the HTTP request to the gRPC services.

mod common;

use common::spawn_app;
use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::layer::SubscriberExt;

/// Spans with OpenTelemetry contexts (no exporter), as `Telemetry::init` installs with OTLP.
fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("gateway-tests")));
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

#[tokio::test]
async fn metrics_use_route_templates() {
    let app = spawn_app(&["midia"]).await;
    for id in ["1", "2", "999"] {
        app.get(&format!("/cursos/ver_inscricoes_do_usuario/{id}"))
            .await;
    }
    app.get("/midia_conteudo/4").await;
    app.post("/chatbot/duvida", "{}").await;
    app.get("/no/such/route").await;

    let text = app.metrics_text().await;
    for line in [
        r#"http_requests_total{method="GET",route="/cursos/ver_inscricoes_do_usuario/{id}",status="200"} 2"#,
        r#"http_requests_total{method="GET",route="/cursos/ver_inscricoes_do_usuario/{id}",status="404"} 1"#,
        r#"http_requests_total{method="GET",route="/midia_conteudo/{id}",status="503"} 1"#,
        r#"http_requests_total{method="POST",route="/chatbot/duvida",status="400"} 1"#,
        r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"http_request_duration_seconds_count{method="GET",route="/cursos/ver_inscricoes_do_usuario/{id}"} 3"#,
        r#"grpc_client_handled_total{grpc_type="unary",grpc_service="services.CursosService",grpc_method="GetUserCourses",grpc_code="OK"} 2"#,
        r#"grpc_client_handled_total{grpc_type="unary",grpc_service="services.CursosService",grpc_method="GetUserCourses",grpc_code="NotFound"} 1"#,
        r#"grpc_client_handled_total{grpc_type="unary",grpc_service="services.MidiaConteudoService",grpc_method="GetMedia",grpc_code="Unavailable"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        !text.contains("ver_inscricoes_do_usuario/1\""),
        "raw paths leak: {text}"
    );
    assert!(!text.contains("/no/such/route"), "raw paths leak: {text}");
    app.stop().await;
}

#[tokio::test]
async fn trace_context_reaches_the_services() {
    init_tracing();
    let app = spawn_app(&[]).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let incoming = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let r = app
        .http
        .post(format!("{}/cursos/tirar_duvida/1", app.base))
        .header("traceparent", &incoming)
        .body(r#"{"aula_contexto": "a", "duvida": "b"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let seen = app.seen.last("cursos.AskQuestion");
    let tp = seen.traceparent.expect("the service got a traceparent");
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    assert_eq!(parts[1], trace_id, "same trace: {tp}");
    assert_ne!(
        parts[2], "00f067aa0ba902b7",
        "a child span of the gateway's: {tp}"
    );

    // Without a traceparent the gateway starts a trace and still propagates it.
    app.get("/cpar").await;
    let tp = app
        .seen
        .last("cpar.GetStatus")
        .traceparent
        .expect("a traceparent");
    assert_ne!(tp.split('-').nth(1), Some(trace_id), "{tp}");
    app.stop().await;
}
