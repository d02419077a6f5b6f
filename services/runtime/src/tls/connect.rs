//! The client side: a connection to a peer, in plaintext or TLS with our certificate.
//!
//! Peers' dialer ([`crate::peers`]) and the `healthcheck` subcommand connect through here. The
//! server's certificate must be signed by `AULA_TLS_CA` and valid for the host the address
//! names (`notificacoes`, `localhost`, `127.0.0.1`).

use super::{failure_reason, Tls};
use crate::metrics::Metrics;
use hyper_util::rt::TokioIo;
use metrics::Label;
use rustls::pki_types::ServerName;
use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::client::TlsStream;

/// A connection to a peer.
pub enum PeerIo {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// How to secure connections to one peer address: `None` for plaintext.
#[derive(Clone, Debug)]
pub struct ClientTls {
    pub tls: Tls,
    /// The name the server's certificate must be valid for: the address's host.
    pub server_name: ServerName<'static>,
}

impl ClientTls {
    /// TLS to `host` (a DNS name or an IP address literal).
    pub fn new(tls: Tls, host: &str) -> Result<Self, String> {
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|_| format!("{host:?} is not a host name or IP address"))?;
        Ok(Self { tls, server_name })
    }

    /// The TLS handshake over a connected socket.
    pub async fn handshake(&self, tcp: TcpStream) -> io::Result<PeerIo> {
        let connector = tokio_rustls::TlsConnector::from(self.tls.client_config());
        let stream = connector.connect(self.server_name.clone(), tcp).await?;
        Ok(PeerIo::Tls(Box::new(stream)))
    }
}

/// `aula_tls_handshake_failures_total{side="client",reason}`, for a failed handshake with a peer.
pub fn count_failure(metrics: &Metrics, e: &io::Error) -> &'static str {
    let reason = failure_reason(e);
    metrics
        .counter(
            "aula_tls_handshake_failures_total",
            vec![Label::new("side", "client"), Label::new("reason", reason)],
        )
        .increment(1);
    reason
}

/// Connects to `host:port`, in TLS when `tls` is given, all within `timeout`.
pub async fn connect(
    host: &str,
    port: u16,
    tls: Option<&ClientTls>,
    timeout: Duration,
) -> io::Result<TokioIo<PeerIo>> {
    let work = async {
        let tcp = TcpStream::connect((host, port)).await?;
        let _ = tcp.set_nodelay(true);
        match tls {
            Some(t) => t.handshake(tcp).await,
            None => Ok(PeerIo::Plain(tcp)),
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r.map(TokioIo::new),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no connection within {timeout:?}"),
        )),
    }
}

/// A connector for tonic's `Endpoint::connect_with_connector`: every connection to one
/// `host:port`, in TLS when configured (the URI tonic passes is ignored).
#[derive(Clone)]
pub struct Connector {
    pub host: String,
    pub port: u16,
    pub tls: Option<ClientTls>,
    pub timeout: Duration,
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<PeerIo>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<PeerIo>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(
            async move { connect(&this.host, this.port, this.tls.as_ref(), this.timeout).await },
        )
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            PeerIo::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            PeerIo::Tls($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
        }
    };
}

impl AsyncRead for PeerIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for PeerIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            PeerIo::Plain(s) => s.is_write_vectored(),
            PeerIo::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

/// `http://host:port` or `https://host:port` -> (TLS?, host, port).
pub fn split_addr(addr: &str) -> anyhow::Result<(bool, String, u16)> {
    let (tls, rest) = match addr.split_once("://") {
        Some(("http", rest)) => (false, rest),
        Some(("https", rest)) => (true, rest),
        _ => anyhow::bail!("{addr}: expected http://host:port or https://host:port"),
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = authority
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| anyhow::anyhow!("{addr}: expected host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        anyhow::bail!("{addr}: the host is empty");
    }
    Ok((tls, host.to_string(), port))
}

/// A channel to one server (`healthcheck`, `aula status`, tests): `https://` connects with
/// `tls` (our certificate; the server's verified against our CA), `http://` in plaintext.
/// Connects now, so an error says why.
pub async fn channel(
    addr: &str,
    tls: Option<&Tls>,
    timeout: Duration,
) -> anyhow::Result<tonic::transport::Channel> {
    let (secure, host, port) = split_addr(addr)?;
    let tls = match (secure, tls) {
        (true, Some(t)) => Some(ClientTls::new(t.clone(), &host).map_err(anyhow::Error::msg)?),
        (true, None) => anyhow::bail!(
            "{addr}: https:// needs a certificate: set AULA_TLS_CERT, AULA_TLS_KEY and AULA_TLS_CA"
        ),
        (false, _) => None,
    };
    let connector = Connector {
        host: host.clone(),
        port,
        tls,
        timeout,
    };
    // The scheme tonic sees stays http: the connector does TLS itself.
    tonic::transport::Endpoint::from_shared(format!("http://{host}:{port}"))
        .map_err(|e| anyhow::anyhow!("{addr}: {e}"))?
        .timeout(timeout)
        .connect_with_connector(connector)
        .await
        .map_err(|e| {
            let why = std::error::Error::source(&e).map_or(e.to_string(), |s| s.to_string());
            anyhow::anyhow!("{addr}: {why}")
        })
}
