//! The `healthcheck` subcommand every image runs as its HEALTHCHECK and `helm test` runs
//! against a Service: a gRPC health check, no shell or probe binary needed.

use std::time::Duration;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

/// Asks `addr` for the health of `service` ("" for the server as a whole).
pub async fn check(addr: &str, service: &str, timeout: Duration) -> anyhow::Result<ServingStatus> {
    let channel = tonic::transport::Endpoint::from_shared(addr.to_string())?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{addr}: {}",
                std::error::Error::source(&e).map_or(e.to_string(), |s| s.to_string())
            )
        })?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("{addr}: {} {}", s.code(), s.message()))?;
    Ok(response.into_inner().status())
}
