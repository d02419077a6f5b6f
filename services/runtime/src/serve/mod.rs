//! Serving a gRPC service's connections: hyper's HTTP/2 server, driven by the runtime.
//!
//! tonic's `Server` hides hyper's executor and adapts the service so that our layers run only
//! when a stream's task is first polled, too late to shed load ([`crate::arrival`] says why).
//! So the runtime accepts and serves connections itself, doing what tonic's serve loop did:
//! - HTTP/2 only, with the limits of [`crate::limits::Limits::http2`] (streams advertised in
//!   SETTINGS, the reset-flood mitigations, keepalive PINGs);
//! - what the transport knows of the peer ([`Connected`]) in every request's extensions;
//! - GOAWAY at `AULA_MAX_CONNECTION_AGE` (the grace after it is [`crate::connections`]'s);
//! - on shutdown: the listener closed at once (new clients are refused rather than left
//!   waiting in its queue), GOAWAY on every connection, and the open calls left to finish.
//!
//! Connections whose calls are refused read their next ones later ([`paced`]); admitted calls
//! start in turn, a connection's only open call ahead of busy connections' ([`starts`]);
//! answers leave in shared writes ([`batched`]).
//!
//! Should the future be dropped (the drain's grace ran out), its connections are closed with
//! it rather than left running on their own.

use crate::arrival::{Arrival, Arrived, StreamExec};
use batched::Batched;
use futures::{Stream, StreamExt as _};
use hyper_util::rt::TokioIo;
use paced::{Active, Debt, Paced};
use std::{future::Future, sync::Arc, time::Duration};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::transport::server::Connected;

pub mod batched;
pub mod paced;
pub mod starts;

type Builder = hyper::server::conn::http2::Builder<StreamExec>;
type Req = http::Request<tonic::body::Body>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves `stack` on the connections of `incoming` until `shutdown` resolves, then lets the
/// open connections finish their calls and returns when all are closed.
pub async fn serve<I, IO, S, B>(
    incoming: I,
    stack: S,
    builder: Builder,
    max_age: Duration,
    shutdown: impl Future<Output = ()>,
) where
    I: Stream<Item = std::io::Result<IO>>,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    IO::ConnectInfo: Clone + Send + Sync + 'static,
    S: tower_service::Service<Req, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Arrived + Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let builder = Arc::new(builder);
    let drain = CancellationToken::new();
    // Cancelled when this future ends or is dropped: the connections end with it.
    let stop = CancellationToken::new();
    let _stop_on_drop = stop.clone().drop_guard();
    let connections = TaskTracker::new();
    // The connections with calls open, among which the queue's places are shared (paced.rs).
    let active = Active::default();
    {
        // Scoped: dropping `incoming` closes the listener (for TLS, its accept task).
        let mut incoming = std::pin::pin!(incoming);
        tokio::pin!(shutdown);
        loop {
            let io = tokio::select! {
                _ = &mut shutdown => break,
                next = incoming.next() => match next {
                    Some(Ok(io)) => io,
                    // Out of file descriptors and the like: a short pause rather than a
                    // spin (TLS connections come already accepted: their loop pauses).
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    None => break,
                },
            };
            let debt = Debt::new(active.clone());
            let service = Arrival::new(stack.clone(), io.connect_info(), debt.clone());
            connections.spawn(connection(
                builder.clone(),
                Paced::new(io, debt),
                service,
                max_age,
                drain.clone(),
                stop.clone(),
            ));
        }
    }
    drain.cancel();
    connections.close();
    connections.wait().await;
}

/// One connection, until it closes: GOAWAY at its age or at the drain, whichever first.
async fn connection<IO, S, C, B>(
    builder: Arc<Builder>,
    io: IO,
    service: Arrival<S, C>,
    max_age: Duration,
    drain: CancellationToken,
    stop: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    C: Clone + Send + Sync + 'static,
    S: tower_service::Service<Req, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Arrived + Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let conn = builder.serve_connection(TokioIo::new(Batched::new(io)), service);
    tokio::pin!(conn);
    let aged = tokio::time::sleep(max_age);
    tokio::pin!(aged);
    let mut closing = false;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = &mut aged, if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = drain.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests;
