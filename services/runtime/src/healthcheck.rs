//! The `healthcheck` subcommand every image runs as its HEALTHCHECK and `helm test` runs
//! against a Service: a gRPC health check, no shell or probe binary needed. With mTLS on it
//! connects with the process's own certificate (`AULA_TLS_*`), like a peer would. The gateway's
//! is `GET /readyz` over a plain HTTP/1.1 connection, so its image needs no curl and the
//! binary no HTTP client library.

use crate::tls::Tls;
use anyhow::{bail, Context as _};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// `http://host:port[/...]` -> (`host:port`, `host`).
fn authority(addr: &str) -> anyhow::Result<(String, String)> {
    let rest = addr
        .strip_prefix("http://")
        .with_context(|| format!("{addr}: expected http://host:port"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        bail!("{addr}: the host is empty");
    }
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => h.to_string(),
        _ => authority.to_string(),
    };
    let connect = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((connect, host))
}

/// The HTTP status `GET /readyz` answers at `addr`.
pub async fn readyz_status(addr: &str, timeout: Duration) -> anyhow::Result<u16> {
    let (connect, host) = authority(addr)?;
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&connect)
            .await
            .with_context(|| format!("{addr}: cannot connect"))?;
        let request =
            format!("GET /readyz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: gateway-healthcheck\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut head = Vec::with_capacity(256);
        let mut buf = [0u8; 256];
        // The status line is all we need.
        while !head.windows(2).any(|w| w == b"\r\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head);
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .with_context(|| format!("{addr}: not an HTTP response: {:?}", line.lines().next()))?;
        anyhow::Ok(status)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| anyhow::anyhow!("{addr}: no answer within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        assert_eq!(
            authority("http://127.0.0.1:8080").unwrap(),
            ("127.0.0.1:8080".into(), "127.0.0.1".into())
        );
        assert_eq!(
            authority("http://gateway/").unwrap(),
            ("gateway:80".into(), "gateway".into())
        );
        assert!(authority("127.0.0.1:8080").is_err());
    }
}
