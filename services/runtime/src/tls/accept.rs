//! The server side: accepted sockets become TLS connections before hyper sees them.
//!
//! Handshakes run on their own tasks, so a slow or silent client never holds up the accept
//! loop, each within [`HANDSHAKE_TIMEOUT`], at most [`MAX_HANDSHAKES`] at a time. A failed
//! one is counted in `aula_tls_handshake_failures_total{side="server",reason}` and the socket
//! closed. The client's identity is read once per connection from its verified certificate
//! and carried in [`TlsConnectInfo`], which the server puts into each request's extensions
//! ([`crate::arrival`]); the authorization layer ([`crate::authz`]) turns it into a
//! [`ServiceIdentity`].

use super::{cert::Leaf, failure_reason, Tls};
use crate::{identity::ServiceIdentity, metrics::Metrics};
use futures::StreamExt;
use metrics::Label;
use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::{mpsc, Semaphore},
};
use tokio_rustls::server::TlsStream;
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

/// A client that has not finished its handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; connections beyond are closed at once (and counted).
pub const MAX_HANDSHAKES: usize = 1024;

/// What the server knows about a TLS connection, in each request's extensions.
#[derive(Debug, Clone)]
pub struct TlsConnectInfo {
    pub tcp: TcpConnectInfo,
    /// The identity proved by the client's certificate (`None` without client auth, or when
    /// the certificate names no identity).
    pub identity: Option<ServiceIdentity>,
}

/// An accepted connection after its handshake.
pub struct TlsConn {
    io: TlsStream<TcpStream>,
    info: TlsConnectInfo,
}

impl Connected for TlsConn {
    type ConnectInfo = TlsConnectInfo;

    fn connect_info(&self) -> TlsConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The stream of TLS connections accepted from `tcp` (for [`crate::serve::serve`]). The
/// accept loop ends when the server drops the stream (shutdown).
pub fn incoming(
    mut tcp: TcpIncoming,
    tls: Tls,
    metrics: &Metrics,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<TlsConn>> {
    let (tx, rx) = mpsc::channel::<io::Result<TlsConn>>(64);
    let metrics = metrics.clone();
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = tcp.next() => a,
                _ = tx.closed() => return,
            };
            let socket = match accepted {
                Some(Ok(s)) => s,
                Some(Err(e)) => {
                    // Out of file descriptors and the like: hyper's answer, a short pause.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                None => return,
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                count_failure(&metrics, "too_many_handshakes");
                continue; // dropping the socket closes it
            };
            let config = tls.server_config();
            let trust_domain = tls.settings().trust_domain.clone();
            let tx = tx.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let tcp_info = socket.connect_info();
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                let result = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket))
                    .await
                    .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()));
                match result {
                    Ok(io) => {
                        let identity = io
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .and_then(|leaf| Leaf::parse(leaf).ok())
                            .and_then(|leaf| leaf.identity(trust_domain.as_deref()));
                        let info = TlsConnectInfo {
                            tcp: tcp_info,
                            identity,
                        };
                        let _ = tx.send(Ok(TlsConn { io, info })).await;
                    }
                    Err(e) => {
                        let reason = failure_reason(&e);
                        count_failure(&metrics, reason);
                        tracing::debug!(remote = ?tcp_info.remote_addr, reason, error = %e, "TLS handshake failed");
                    }
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// `aula_tls_handshake_failures_total{side="server",reason}`.
fn count_failure(metrics: &Metrics, reason: &'static str) {
    metrics
        .counter(
            "aula_tls_handshake_failures_total",
            vec![Label::new("side", "server"), Label::new("reason", reason)],
        )
        .increment(1);
}
