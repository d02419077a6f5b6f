//! `/livez` (the process runs), `/readyz` (it takes traffic: not draining) and `/healthz`
//! (every backend answers SERVING to a `grpc.health.v1` check).

use crate::state::AppState;
use aula_runtime::peers::code_name;
use axum::{extract::State, response::IntoResponse, Json};
use http::StatusCode;
use serde_json::{json, Map, Value};
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

pub async fn livez() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.host.is_draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        )
    } else {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    }
}

/// 200 when all six services are SERVING, else 503; the body has each service's answer.
pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let checks = state.backends.all().iter().map(|(spec, channel)| {
        let mut client = HealthClient::new(channel.clone());
        let timeout = state.health_timeout;
        async move {
            let mut request = tonic::Request::new(HealthCheckRequest {
                service: spec.grpc_service.to_string(),
            });
            request.set_timeout(timeout);
            let entry = match client.check(request).await {
                Ok(r) => {
                    let status = r.into_inner().status();
                    json!({ "status": status.as_str_name() })
                }
                Err(e) => json!({
                    "status": code_name(e.code()),
                    "erro": e.message(),
                }),
            };
            (spec.name, entry)
        }
    });
    let results = futures::future::join_all(checks).await;
    let all_serving = results
        .iter()
        .all(|(_, e)| e["status"] == ServingStatus::Serving.as_str_name());
    let services: Map<String, Value> = results
        .into_iter()
        .map(|(name, e)| (name.to_string(), e))
        .collect();
    let (code, overall) = if all_serving {
        (StatusCode::OK, "SERVING")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING")
    };
    (
        code,
        Json(json!({ "status": overall, "servicos": services })),
    )
}
