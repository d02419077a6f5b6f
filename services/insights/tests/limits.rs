//! insights' input limits (`aula_api::limits`, the ones the chatbot holds its records to): every
//! field over its limit is INVALID_ARGUMENT naming the field and the limit, a 1 MB bad id comes
//! back as a short message, and insights keeps serving.

use aula_api::{
    insights_service_client::InsightsServiceClient as Client, limits, GetCourseInsightsRequest,
    RecordInteractionRequest, RegisterMetricsRequest,
};
use aula_runtime::testing::{assert_invalid, over_limit, start_alone, NOT_AN_ID};

fn record(id_interacao: &str) -> RecordInteractionRequest {
    RecordInteractionRequest {
        id_interacao: id_interacao.into(),
        modelo: "offline-bm25".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn every_field_is_bounded_and_bad_input_is_quoted_short() {
    let (_dir, svc, mut c) = start_alone(insights::service(), &[], Client::new).await;

    let (text, says) = over_limit(limits::INTERACTION_ID_CHARS);
    let r = c.record_interaction(record(&text)).await;
    assert_invalid(r, "id_interacao", &says);
    let r = RegisterMetricsRequest { id_interacao: text };
    assert_invalid(c.register_metrics(r).await, "id_interacao", &says);
    let (modelo, says) = over_limit(limits::MODEL_CHARS);
    let r = RecordInteractionRequest {
        modelo,
        ..record("i-1")
    };
    assert_invalid(c.record_interaction(r).await, "modelo", &says);

    let huge = "4".repeat(1 << 20);
    let mut r = record("i-2");
    r.id_curso = huge.clone();
    assert_invalid(c.record_interaction(r).await, "id_curso", NOT_AN_ID);
    let mut r = record("i-3");
    r.id_usuario = huge.clone();
    assert_invalid(c.record_interaction(r).await, "id_usuario", NOT_AN_ID);
    let r = GetCourseInsightsRequest { id_curso: huge };
    assert_invalid(c.get_course_insights(r).await, "id_curso", NOT_AN_ID);
    svc.assert_serving().await;
    svc.running.stop().await.unwrap();
}
