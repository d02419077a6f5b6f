//! The `healthcheck` subcommand every image runs as its HEALTHCHECK and `helm test` runs
//! against a Service: a gRPC health check, no shell or probe binary needed. With mTLS on it
//! connects with the process's own certificate (`AULA_TLS_*`), like a peer would.

use crate::tls::Tls;
use std::time::Duration;
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

/// Asks `addr` (`http://host:port`) for the health of `service` ("" for the server as a whole).
pub async fn check(addr: &str, service: &str, timeout: Duration) -> anyhow::Result<ServingStatus> {
    check_with(addr, service, None, timeout).await
}

/// [`check`], also over TLS: `https://host:port` connects with `tls`.
pub async fn check_with(
    addr: &str,
    service: &str,
    tls: Option<&Tls>,
    timeout: Duration,
) -> anyhow::Result<ServingStatus> {
    let channel = crate::tls::connect::channel(addr, tls, timeout).await?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("{addr}: {} {}", s.code(), s.message()))?;
    Ok(response.into_inner().status())
}
