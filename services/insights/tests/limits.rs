//! insights' input limits (`aula_api::limits`, the ones the chatbot holds its records to): every
//! field over its limit is INVALID_ARGUMENT naming the field and the limit, a 1 MB bad id comes
//! back as a short message, and insights keeps serving.

use aula_api::{
    insights_service_client::InsightsServiceClient, limits, GetCourseInsightsRequest,
    RecordInteractionRequest, RegisterMetricsRequest,
};
use aula_runtime::testing::{assert_invalid, spawn};

fn record(id_interacao: &str) -> RecordInteractionRequest {
    RecordInteractionRequest {
        id_interacao: id_interacao.into(),
        modelo: "offline-bm25".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn every_field_is_bounded_and_bad_input_is_quoted_short() {
    let dir = tempfile::tempdir().unwrap();
    let svc = spawn(insights::service(), dir.path(), &[]).await.unwrap();
    let mut c = InsightsServiceClient::new(svc.channel());
    let over = |limit: usize| ("a".repeat(limit + 1), format!("at most {limit} characters"));

    let (text, says) = over(limits::INTERACTION_ID_CHARS);
    assert_invalid(
        c.record_interaction(record(&text)).await,
        "id_interacao",
        &says,
    );
    let r = RegisterMetricsRequest { id_interacao: text };
    assert_invalid(c.register_metrics(r).await, "id_interacao", &says);
    let (text, says) = over(limits::MODEL_CHARS);
    let r = RecordInteractionRequest {
        modelo: text,
        ..record("i-1")
    };
    assert_invalid(c.record_interaction(r).await, "modelo", &says);

    let huge = "4".repeat(1 << 20);
    let id = "must be a positive integer";
    let r = RecordInteractionRequest {
        id_curso: huge.clone(),
        ..record("i-2")
    };
    assert_invalid(c.record_interaction(r).await, "id_curso", id);
    let r = RecordInteractionRequest {
        id_usuario: huge.clone(),
        ..record("i-3")
    };
    assert_invalid(c.record_interaction(r).await, "id_usuario", id);
    let r = GetCourseInsightsRequest { id_curso: huge };
    assert_invalid(c.get_course_insights(r).await, "id_curso", id);
    svc.assert_serving().await;
    svc.running.stop().await.unwrap();
}
