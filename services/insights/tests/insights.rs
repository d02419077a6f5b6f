//! insights in-process: every RPC with its error paths, idempotency, statistics, persistence.
//! Runs on SQLite, or on PostgreSQL when AULA_TEST_DATABASE_URL is set.

use aula_api::{
    insights_service_client::InsightsServiceClient, Empty, GetCourseInsightsRequest,
    RecordInteractionRequest, RegisterMetricsRequest,
};
use aula_runtime::testing::{self, Reply, TestService};
use std::path::Path;
use tonic::{transport::Channel, Code};

type Client = InsightsServiceClient<Channel>;

/// The service on the data in `dir`, and a client of it.
async fn start(dir: &Path) -> (TestService, Client) {
    testing::start_in(insights::service(), dir, &[], Client::new).await
}

/// The service alone in a temporary directory of its own, and a client of it.
async fn alone() -> (tempfile::TempDir, TestService, Client) {
    testing::start_alone(insights::service(), &[], Client::new).await
}

fn interaction(
    id: &str,
    curso: &str,
    usuario: &str,
    ms: i64,
    modelo: &str,
    ok: bool,
) -> RecordInteractionRequest {
    RecordInteractionRequest {
        id_interacao: id.into(),
        id_curso: curso.into(),
        id_usuario: usuario.into(),
        latencia_ms: ms,
        modelo: modelo.into(),
        sucesso: ok,
    }
}

fn course(id: &str) -> GetCourseInsightsRequest {
    GetCourseInsightsRequest {
        id_curso: id.into(),
    }
}

fn metrics_of(id: &str) -> RegisterMetricsRequest {
    RegisterMetricsRequest {
        id_interacao: id.into(),
    }
}

fn assert_invalid(r: Result<impl std::fmt::Debug, tonic::Status>, field: &str) {
    let e = r.expect_err("an invalid request is refused");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with(field), "{field}: {e:?}");
}

async fn count(c: &mut Client) -> i64 {
    c.get_status(Empty {}).await.answer().contagens["interacoes"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_once_and_reports_course_statistics() {
    let (_dir, s, mut c) = alone().await;
    let status = c.get_status(Empty {}).await.answer();
    assert_eq!(status.message, "Insights: 0 interações registradas");
    assert_eq!(status.servico, "insights");

    let empty = c.get_course_insights(course("3")).await.answer();
    assert_eq!(empty.id_curso, "3");
    assert_eq!(empty.total_perguntas, 0);
    assert_eq!(empty.latencia_media_ms, 0.0);
    assert_eq!(empty.taxa_sucesso, 0.0);
    assert!(empty.perguntas_por_modelo.is_empty());
    assert!(empty.ultima_pergunta.is_none());

    let rec = |r| {
        let mut c = c.clone();
        async move { c.record_interaction(r).await.answer().registrada }
    };
    assert!(rec(interaction("i-1", "3", "1", 100, "gemini-2.5-flash", true)).await);
    assert!(
        !rec(interaction("i-1", "3", "1", 100, "gemini-2.5-flash", true)).await,
        "a repeat is not recorded"
    );
    assert!(rec(interaction("i-2", "3", "2", 300, "offline", false)).await);
    assert!(rec(interaction("i-3", "3", "1", 200, "gemini-2.5-flash", true)).await);
    assert!(rec(interaction("i-4", "3", "", 400, "", true)).await);
    assert!(rec(interaction("i-5", "4", "9", 50, "offline", true)).await);

    let i = c.get_course_insights(course("3")).await.answer();
    assert_eq!(i.total_perguntas, 4);
    assert!((i.latencia_media_ms - 250.0).abs() < 1e-9, "{i:?}");
    assert!((i.taxa_sucesso - 0.75).abs() < 1e-9, "{i:?}");
    assert_eq!(i.usuarios_distintos, 2);
    assert_eq!(i.perguntas_por_modelo["gemini-2.5-flash"], 2);
    assert_eq!(i.perguntas_por_modelo["offline"], 1);
    assert_eq!(i.perguntas_por_modelo["desconhecido"], 1);
    assert!(i.ultima_pergunta.unwrap().seconds > 1_700_000_000);
    assert_eq!(count(&mut c).await, 5);
    let metrics = s.metrics_text().await;
    assert!(
        metrics.contains("aula_interactions_recorded_total 5"),
        "{metrics}"
    );
    s.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_name_the_field() {
    let (_dir, s, mut c) = alone().await;
    assert_invalid(
        c.record_interaction(interaction("", "1", "1", 1, "m", true))
            .await,
        "id_interacao",
    );
    assert_invalid(
        c.record_interaction(interaction("a", "x", "1", 1, "m", true))
            .await,
        "id_curso",
    );
    assert_invalid(
        c.record_interaction(interaction("a", "1", "eu", 1, "m", true))
            .await,
        "id_usuario",
    );
    assert_invalid(
        c.record_interaction(interaction("a", "1", "1", -1, "m", true))
            .await,
        "latencia_ms",
    );
    for bad in ["", "abc", "0"] {
        assert_invalid(c.get_course_insights(course(bad)).await, "id_curso");
    }
    assert_invalid(c.register_metrics(metrics_of(" ")).await, "id_interacao");
    assert_eq!(count(&mut c).await, 0);
    s.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_metrics_keeps_the_seed_contract() {
    let (_dir, s, mut c) = alone().await;
    let r = c.register_metrics(metrics_of("abc-1")).await.answer();
    assert_eq!(r.message, "Métricas registradas para a interação abc-1");
    assert_eq!(r.id_interacao, "abc-1");
    let st = r.insights_servico.unwrap();
    assert_eq!(st.message, "Insights: 1 interações registradas");
    c.register_metrics(metrics_of("abc-1")).await.unwrap();
    assert_eq!(
        count(&mut c).await,
        1,
        "registering twice holds one interaction"
    );
    // The full record of an interaction first registered bare completes it, once.
    let first = c
        .record_interaction(interaction("abc-1", "2", "1", 10, "offline", true))
        .await
        .answer();
    assert!(first.registrada);
    let again = c
        .record_interaction(interaction("abc-1", "2", "1", 10, "offline", true))
        .await
        .answer();
    assert!(!again.registrada);
    let i = c.get_course_insights(course("2")).await.answer();
    assert_eq!(i.total_perguntas, 1);
    assert_eq!(count(&mut c).await, 1);
    s.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactions_survive_a_restart() {
    let (dir, s, mut c) = alone().await;
    c.record_interaction(interaction("p-1", "5", "1", 80, "offline", true))
        .await
        .unwrap();
    s.running.stop().await.unwrap();
    let (s, mut c) = start(dir.path()).await;
    let i = c.get_course_insights(course("5")).await.answer();
    assert_eq!(i.total_perguntas, 1);
    assert!(
        !c.record_interaction(interaction("p-1", "5", "1", 80, "offline", true))
            .await
            .answer()
            .registrada
    );
    s.running.stop().await.unwrap();
}
