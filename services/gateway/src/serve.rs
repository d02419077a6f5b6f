//! The gateway's accept loop. `axum::serve` gives hyper no timer, so hyper never enforces a
//! header read timeout: 200 connections that send half a request line were held for as long as
//! their clients liked (#13). Here every connection is bounded:
//! - a new connection must send its first request within `GATEWAY_HEADER_TIMEOUT` (also
//!   covering the HTTP/1-or-2 detection, which has no timeout of its own);
//! - each later HTTP/1 request's headers must arrive within it too (hyper's
//!   `header_read_timeout`, with a timer), so an idle keep-alive connection closes after it;
//! - at most `GATEWAY_MAX_CONNECTIONS` are open; beyond it new ones wait in the kernel's
//!   accept queue instead of costing memory;
//! - on drain the listener closes, each connection finishes its requests and closes.

use crate::limits::HttpLimits;
use axum::{extract::ConnectInfo, Router};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt as _;

/// Streams per HTTP/2 connection (h2c clients): as for the gRPC services.
const MAX_CONCURRENT_STREAMS: u32 = 256;

/// Serves `app` on `listener` until `shutdown` resolves, then lets open connections finish
/// (the caller bounds how long with its grace period).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: &HttpLimits,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let stop = CancellationToken::new();
    let connections = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Small JSON answers must not wait for Nagle + delayed ACK (40 ms stalls).
        let _ = tcp.set_nodelay(true);
        connections.spawn(connection(
            builder.clone(),
            tcp,
            peer,
            app.clone(),
            limits.header_timeout,
            stop.clone(),
            slot,
        ));
    }
    // Closing the listener now makes new clients fail fast instead of waiting in its queue.
    drop(listener);
    stop.cancel();
    connections.close();
    connections.wait().await;
}

async fn connection(
    builder: Arc<auto::Builder<TokioExecutor>>,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    header_timeout: Duration,
    stop: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    let requested = Arc::new(Notify::new());
    let seen = requested.clone();
    let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
        seen.notify_one();
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req.map(axum::body::Body::new))
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
    tokio::pin!(conn);
    let first = tokio::time::timeout(header_timeout, requested.notified());
    tokio::pin!(first);
    let (mut waiting_first, mut stopping) = (true, false);
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            got = &mut first, if waiting_first => {
                if got.is_err() {
                    tracing::debug!(%peer, timeout = ?header_timeout, "no request within the header timeout; closing");
                    return;
                }
                waiting_first = false;
            }
            _ = stop.cancelled(), if !stopping => {
                conn.as_mut().graceful_shutdown();
                stopping = true;
            }
        }
    }
}
